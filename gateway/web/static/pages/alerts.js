// The live alert feed: the list from GET /api/alerts, then WebSocket `alert`
// messages applied in place. Rows are updated, not rebuilt, so a note being
// typed survives the arrival of other alerts.

import { h, replace, select } from "../dom.js";
import { parseTime } from "../i18n.js";

export const strings = {
  en: {
    "filter.state": "State",
    "filter.level": "Level",
    "sound": "Sound for new red alerts",
    "total": "{n} shown",
    "col.level": "Level",
    "col.alert": "Alert",
    "col.state": "State",
    "col.count": "Count",
    "col.person": "Person",
    "col.device": "Device",
    "col.opened": "Opened",
    "updated": "updated {ago}",
    "col.actions": "Actions",
    "note": "Note (optional)",
    "ack": "Acknowledge",
    "resolve": "Resolve",
    "by": "by {user}",
    "none": "No alerts match these filters.",
    "escalated": "escalated from {level}",
  },
  "zh-CN": {
    "filter.state": "状态",
    "filter.level": "级别",
    "sound": "新红色告警时发出提示音",
    "total": "共 {n} 条",
    "col.level": "级别",
    "col.alert": "告警",
    "col.state": "状态",
    "col.count": "次数",
    "col.person": "人员",
    "col.device": "设备",
    "col.opened": "发生时间",
    "updated": "更新于{ago}",
    "col.actions": "处理",
    "note": "备注（可选）",
    "ack": "确认",
    "resolve": "解除",
    "by": "处理人：{user}",
    "none": "没有符合条件的告警。",
    "escalated": "由{level}升级",
  },
};

const LEVELS = ["red", "orange", "yellow", "blue"];
const STATE_RANK = { open: 0, acknowledged: 1, resolved: 2 };
const SOUND_KEY = "gw.alertSound";
const FRESH_MS = 10000;

let timers = [];
let intervals = [];
let audio = null;

export function dispose() {
  for (const id of timers) clearTimeout(id);
  for (const id of intervals) clearInterval(id);
  timers = [];
  intervals = [];
}

/** The later of two versions of one alert: states only move forward, then newest update wins. */
function newer(a, b) {
  if (!a) return b;
  if (!b) return a;
  const sa = STATE_RANK[a.state] ?? 0;
  const sb = STATE_RANK[b.state] ?? 0;
  if (sa !== sb) return sa > sb ? a : b;
  const ta = parseTime(a.updated_at)?.getTime() ?? 0;
  const tb = parseTime(b.updated_at)?.getTime() ?? 0;
  if (ta !== tb) return ta > tb ? a : b;
  return (b.count ?? 0) >= (a.count ?? 0) ? b : a;
}

function byUrgency(a, b) {
  const l = LEVELS.indexOf(a.level) - LEVELS.indexOf(b.level);
  if (l) return l;
  const s = (STATE_RANK[a.state] ?? 0) - (STATE_RANK[b.state] ?? 0);
  if (s) return s;
  return (parseTime(b.updated_at)?.getTime() ?? 0) - (parseTime(a.updated_at)?.getTime() ?? 0) || b.id - a.id;
}

function beep() {
  // Two short tones; browsers allow audio only after a user gesture on the
  // page, which the sound checkbox provides.
  try {
    audio = audio || new AudioContext();
    const now = audio.currentTime;
    for (const [i, freq] of [[0, 880], [1, 660]]) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, now + i * 0.25);
      gain.gain.exponentialRampToValueAtTime(0.25, now + i * 0.25 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.25 + 0.22);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + i * 0.25);
      osc.stop(now + i * 0.25 + 0.24);
    }
  } catch (e) {
    console.warn("alert sound unavailable", e);
  }
}

export async function render(root, ctx) {
  const { t } = ctx;
  const filters = {
    state: ["ongoing", "open", "acknowledged", "resolved", ""].includes(ctx.params.state) ? ctx.params.state : "ongoing",
    level: LEVELS.includes(ctx.params.level) ? ctx.params.level : "",
  };
  const alerts = new Map();  // id -> alert
  const rows = new Map();    // id -> {tr, note, error}
  const persons = new Map(); // id -> name
  let loading = null;        // alerts pushed while a list request is in flight
  let sound = false;
  try { sound = localStorage.getItem(SOUND_KEY) === "1"; } catch { /* storage disabled */ }

  const stateSel = select([
    ["ongoing", t("state.ongoing")], ["open", t("state.open")], ["acknowledged", t("state.acknowledged")],
    ["resolved", t("state.resolved")], ["", t("all")],
  ], filters.state, { name: "state", onchange: (e) => setFilter("state", e.target.value) });
  const levelSel = select([["", t("all")], ...LEVELS.map((l) => [l, t(`level.${l}`)])], filters.level,
    { name: "level", onchange: (e) => setFilter("level", e.target.value) });
  const soundBox = h("input", { type: "checkbox", checked: sound, onchange: (e) => {
    sound = e.target.checked;
    try { localStorage.setItem(SOUND_KEY, sound ? "1" : "0"); } catch { /* storage disabled */ }
    if (sound) beep();
  } });
  const summary = h("div", { class: "summary", "aria-live": "polite" });
  const problem = h("p", { class: "row-error", role: "alert", hidden: true });
  const reload = () => load().then(() => { problem.hidden = true; }).catch((e) => {
    if (e.name === "AbortError") return;
    problem.textContent = t("error", { detail: e.message });
    problem.hidden = false;
  });
  const tbody = h("tbody");
  const empty = h("tr", { class: "empty" }, h("td", { colspan: 8, class: "muted" }, t("none")));

  replace(root,
    h("div", { class: "toolbar" },
      h("label", {}, t("filter.state"), stateSel),
      h("label", {}, t("filter.level"), levelSel),
      h("label", {}, soundBox, t("sound")),
      h("span", { class: "spacer" }),
      summary),
    problem,
    h("div", { class: "table-wrap" },
      h("table", { class: "data alerts" },
        h("thead", {}, h("tr", {},
          h("th", {}, t("col.level")), h("th", {}, t("col.alert")), h("th", {}, t("col.state")),
          h("th", { class: "num" }, t("col.count")), h("th", {}, t("col.person")), h("th", {}, t("col.device")),
          h("th", {}, t("col.opened")), h("th", { class: "num" }, t("col.actions")))),
        tbody)));

  function matches(a) {
    if (filters.level && a.level !== filters.level) return false;
    if (filters.state === "ongoing") return a.state === "open" || a.state === "acknowledged";
    return !filters.state || a.state === filters.state;
  }

  function setFilter(key, value) {
    filters[key] = value;
    const q = new URLSearchParams(Object.entries(filters).filter(([, v]) => v)).toString();
    history.replaceState({}, "", `${location.pathname}${q ? `?${q}` : ""}`);
    reload();
  }

  function personCell(a) {
    if (!a.person_id) return h("span", { class: "muted" }, "—");
    const name = persons.get(a.person_id);
    return ctx.link("person", { id: a.person_id }, name || "", h("span", { class: "muted mono" }, a.person_id));
  }

  async function act(id, action) {
    const row = rows.get(id);
    const note = row.note.value.trim();
    for (const b of row.tr.querySelectorAll("button")) b.disabled = true;
    row.error.textContent = "";
    try {
      const updated = await ctx.api(`/api/alerts/${id}/${action}`, { method: "POST", json: { note: note || null } });
      row.note.value = "";
      apply(updated);
    } catch (e) {
      if (e.name === "AbortError") return;
      row.error.textContent = t("error", { detail: e.message });
      for (const b of row.tr.querySelectorAll("button")) b.disabled = false;
    }
  }

  function fillRow(row, a) {
    const { tr } = row;
    tr.dataset.level = a.level;
    tr.dataset.state = a.state;
    const who = a.state === "resolved" ? a.resolved_by : a.state === "acknowledged" ? a.acknowledged_by : null;
    const buttons = [];
    if (a.state === "open" && ctx.can("alerts.ack")) {
      buttons.push(h("button", { type: "button", class: "btn btn-ack", onclick: () => act(a.id, "ack") }, t("ack")));
    }
    if (a.state !== "resolved" && ctx.can("alerts.resolve")) {
      buttons.push(h("button", { type: "button", class: "btn btn-resolve", onclick: () => act(a.id, "resolve") }, t("resolve")));
    }
    const escalated = a.original_level && a.original_level !== a.level;
    replace(tr,
      h("td", {}, h("span", { class: ["level", `level-${a.level}`] }, t(`level.${a.level}`))),
      h("td", { class: "alert-cell" },
        h("div", { class: "alert-kind" }, t(`kind.${a.kind}`) === `kind.${a.kind}` ? a.kind : t(`kind.${a.kind}`)),
        a.message ? h("div", { class: "alert-message" }, a.message) : null,
        escalated ? h("div", { class: "alert-message" }, t("escalated", { level: t(`level.${a.original_level}`) })) : null),
      h("td", {}, h("span", { class: ["state", `state-${a.state}`] }, t(`state.${a.state}`)),
        who ? h("div", { class: "muted nowrap small" }, t("by", { user: who })) : null),
      h("td", { class: "num count" }, `×${a.count}`),
      h("td", { class: "person-cell" }, personCell(a)),
      h("td", { class: "mono" }, a.device_id || h("span", { class: "muted" }, "—")),
      h("td", { class: "nowrap" }, ctx.fmt.time(a.opened_at),
        row.ago = h("div", { class: "muted small", title: ctx.fmt.time(a.updated_at) }, t("updated", { ago: ctx.fmt.ago(a.updated_at) }))),
      h("td", {},
        h("div", { class: "actions" }, buttons.length ? row.note : null, buttons),
        row.error));
  }

  function draw() {
    const list = [...alerts.values()].filter(matches).sort(byUrgency);
    const keep = new Set(list.map((a) => a.id));
    for (const [id, row] of rows) {
      if (!keep.has(id)) { row.tr.remove(); rows.delete(id); }
    }
    list.forEach((a, i) => {
      let row = rows.get(a.id);
      if (!row) {
        row = {
          tr: h("tr", { class: "alert-row", dataset: { id: a.id } }),
          note: h("input", { type: "text", class: "note", maxlength: 2000, placeholder: t("note"), "aria-label": t("note") }),
          error: h("div", { class: "row-error", role: "alert" }),
        };
        rows.set(a.id, row);
      }
      if (row.shown !== a) { fillRow(row, a); row.shown = a; }
      // Move only rows that are out of place, so a focused note input keeps focus.
      if (tbody.children[i] !== row.tr) tbody.insertBefore(row.tr, tbody.children[i] || null);
    });
    if (list.length === 0) tbody.append(empty); else empty.remove();
    const counts = Object.fromEntries(LEVELS.map((l) => [l, 0]));
    for (const a of list) counts[a.level] = (counts[a.level] || 0) + 1;
    replace(summary,
      LEVELS.map((l) => h("span", { class: "chip", dataset: { level: l } }, h("span", { class: ["dot", `dot-${l}`] }), `${t(`level.${l}`)} ${counts[l]}`)),
      h("span", { class: "muted", dataset: { total: list.length } }, t("total", { n: list.length })));
  }

  function apply(a) {
    alerts.set(a.id, newer(alerts.get(a.id), a));
    draw();
  }

  function markFresh(id) {
    const row = rows.get(id);
    if (!row) return;
    row.tr.classList.add("fresh");
    timers.push(setTimeout(() => row.tr.classList.remove("fresh"), FRESH_MS));
  }

  async function load() {
    const pushed = new Map();
    loading = pushed;
    const q = new URLSearchParams({ limit: "500" });
    if (filters.state) q.set("state", filters.state);
    if (filters.level) q.set("level", filters.level);
    const list = await ctx.api(`/api/alerts?${q}`);
    if (loading !== pushed) return;  // a newer load started
    loading = null;
    alerts.clear();
    for (const a of list) alerts.set(a.id, a);
    for (const a of pushed.values()) alerts.set(a.id, newer(alerts.get(a.id), a));
    draw();
  }

  ctx.on("alert", (msg) => {
    const a = msg.alert;
    if (!a || typeof a.id !== "number") return;
    if (loading) loading.set(a.id, newer(loading.get(a.id), a));
    apply(a);
    if (msg.change === "opened" || msg.change === "escalated") {
      markFresh(a.id);
      if (a.level === "red" && sound && matches(a)) beep();
    }
  });
  // After a reconnect, the list is the only way to learn what happened meanwhile.
  ctx.on("hello", reload);
  // "3 minutes ago" must not stay "just now" on a screen left open all shift.
  intervals.push(setInterval(() => {
    for (const row of rows.values()) if (row.shown) row.ago.textContent = t("updated", { ago: ctx.fmt.ago(row.shown.updated_at) });
  }, 30000));

  ctx.api("/api/persons").then((list) => {
    for (const p of list) persons.set(p.id, p.name);
    for (const row of rows.values()) row.shown = null;
    draw();
  }).catch(() => { /* names are a nicety; ids still show */ });

  await load();
}
