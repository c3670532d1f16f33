// The kiosk's outbox in IndexedDB: what the terminal did while the gateway was out of reach
// (events and check-ins), kept across reloads and power cuts, sent in order when it is back.
// Each item carries its own id (event_id, client_ref), so a send whose answer was lost is
// sent again and applied once by the gateway.

const DB = "gateway-kiosk";
const STORE = "outbox";

function open() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "seq", autoIncrement: true });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function run(mode, fn) {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const out = fn(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(out?.result ?? out);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

/** Add an item ({type: "event"|"checkin", ...}); resolves once it is on disk. */
export function push(item) { return run("readwrite", (s) => s.add({ ...item, queued_at: new Date().toISOString() })); }

/** Every queued item, oldest first. */
export function all() { return run("readonly", (s) => s.getAll()); }

/** Store a changed item again (same seq: its place in the queue). */
export function put(item) { return run("readwrite", (s) => s.put(item)); }

/** Remove an item once the gateway has it. */
export function drop(seq) { return run("readwrite", (s) => s.delete(seq)); }
