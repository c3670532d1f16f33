// One WebSocket to /api/events for the whole console, reconnecting with
// backoff. Messages are `{"type": topic, ...}`; handlers subscribe by topic.
// Every (re)connection starts with the server's `{"type": "hello"}`, which
// pages use to refetch what they may have missed while disconnected.

const MIN_DELAY_MS = 500;
const MAX_DELAY_MS = 15000;

export class EventSocket {
  constructor(url) {
    this.url = url;
    this.handlers = new Map();   // topic -> Set(handler)
    this.stateListeners = new Set();
    this.state = "connecting";
    this.delay = MIN_DELAY_MS;
    this.ws = null;
    this.timer = null;
    this.stopped = false;
    // Called when a connection closes before the server said hello: the
    // server refuses sockets without a valid session, so the shell checks it.
    this.onRefused = null;
  }

  start() { this.stopped = false; this.connect(); }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000, "bye");
  }

  on(topic, handler) {
    if (!this.handlers.has(topic)) this.handlers.set(topic, new Set());
    this.handlers.get(topic).add(handler);
    return () => this.handlers.get(topic)?.delete(handler);
  }

  onState(listener) {
    this.stateListeners.add(listener);
    listener(this.state);
    return () => this.stateListeners.delete(listener);
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    for (const l of this.stateListeners) l(state);
  }

  connect() {
    this.setState("connecting");
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (e) {
      this.retry();
      return;
    }
    this.ws = ws;
    let greeted = false;
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      if (msg.type === "hello") { greeted = true; this.delay = MIN_DELAY_MS; this.setState("open"); }
      this.dispatch(msg);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      if (!greeted) this.onRefused?.();
      this.retry();
    };
    ws.onerror = () => { /* onclose follows and retries */ };
  }

  retry() {
    this.setState("closed");
    clearTimeout(this.timer);
    // Jitter spreads the reconnects of many consoles after a gateway restart.
    const wait = this.delay * (0.75 + Math.random() * 0.5);
    this.delay = Math.min(this.delay * 2, MAX_DELAY_MS);
    this.timer = setTimeout(() => this.connect(), wait);
  }

  dispatch(msg) {
    for (const topic of [msg.type, "*"]) {
      const set = this.handlers.get(topic);
      if (!set) continue;
      for (const handler of [...set]) {
        try { handler(msg); } catch (e) { console.error(`handler for ${topic} failed`, e); }
      }
    }
  }
}

export function eventsUrl() {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/api/events`;
}
