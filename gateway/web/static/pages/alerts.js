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
    // handling (assign, assess, dispose, feed back, level, notes), filters and export
    "filter.kind": "Kind",
    "filter.since": "From",
    "filter.until": "Until",
    "export": "Export CSV",
    "details": "Details",
    "detail.title": "Alert #{id}",
    "detail.close": "Close",
    "history": "History",
    "deliveries": "Sent to the field",
    "deliveries.none": "Nothing was sent to a channel for this alert.",
    "delivery.sent": "delivered",
    "delivery.pending": "waiting to be sent",
    "delivery.dead": "failed",
    "delivery.retry": "Send again",
    "assigned.to": "Assigned to {unit}",
    "assigned.none": "Not assigned",
    "action.opened": "Opened",
    "action.acknowledged": "Acknowledged",
    "action.resolved": "Resolved",
    "action.escalated": "Escalated",
    "action.assigned": "Assigned",
    "action.assessed": "Assessed",
    "action.disposed": "Disposed",
    "action.fed_back": "Fed back",
    "action.level": "Level changed",
    "action.note": "Note",
    "form.assign": "Assign",
    "form.unit": "Unit",
    "form.assignee": "Officer (user name, optional)",
    "form.assess": "Assessment",
    "form.dispose": "Disposal",
    "form.disposal_note": "Disposal note (optional)",
    "form.feedback": "Feedback (closes the alert)",
    "form.level": "Level",
    "form.reason": "Reason",
    "form.note": "Note",
    "do.assign": "Assign",
    "do.assess": "Record assessment",
    "do.dispose": "Record disposal",
    "do.feedback": "Feed back and close",
    "do.level": "Change level",
    "do.note": "Add note",
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
    // 处置流程（指派、研判、处置、反馈、调级、备注）、筛选与导出
    "filter.kind": "类型",
    "filter.since": "起",
    "filter.until": "止",
    "export": "导出 CSV",
    "details": "详情",
    "detail.title": "告警 #{id}",
    "detail.close": "关闭",
    "history": "处置记录",
    "deliveries": "推送记录",
    "deliveries.none": "该告警没有推送到任何渠道。",
    "delivery.sent": "已送达",
    "delivery.pending": "待发送",
    "delivery.dead": "发送失败",
    "delivery.retry": "重新发送",
    "assigned.to": "已指派：{unit}",
    "assigned.none": "未指派",
    "action.opened": "产生",
    "action.acknowledged": "确认",
    "action.resolved": "解除",
    "action.escalated": "升级",
    "action.assigned": "指派",
    "action.assessed": "研判",
    "action.disposed": "处置",
    "action.fed_back": "反馈",
    "action.level": "调整级别",
    "action.note": "备注",
    "form.assign": "指派",
    "form.unit": "单位",
    "form.assignee": "民警（用户名，可选）",
    "form.assess": "研判意见",
    "form.dispose": "处置方式",
    "form.disposal_note": "处置说明（可选）",
    "form.feedback": "反馈（反馈后告警关闭）",
    "form.level": "级别",
    "form.reason": "原因",
    "form.note": "备注",
    "do.assign": "指派",
    "do.assess": "提交研判",
    "do.dispose": "提交处置",
    "do.feedback": "反馈并关闭",
    "do.level": "调整级别",
    "do.note": "添加备注",
  },
};

const LEVELS = ["red", "orange", "yellow", "blue"];
const KINDS = ["exclusion_breach", "tamper", "sos", "inclusion_exit", "curfew", "lost_contact", "no_fix", "checkin_failed",
  "checkin_missed", "checkin_out_of_zone", "low_battery", "camera_offline", "kiosk_offline", "recording_failed", "disk_full", "upload_quarantined"];
const DAY = /^\d{4}-\d{2}-\d{2}$/;
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
    kind: KINDS.includes(ctx.params.kind) ? ctx.params.kind : "",
    since: DAY.test(ctx.params.since || "") ? ctx.params.since : "",
    until: DAY.test(ctx.params.until || "") ? ctx.params.until : "",
  };
  const kindName = (k) => (t(`kind.${k}`) === `kind.${k}` ? k : t(`kind.${k}`));
  const alerts = new Map();  // id -> alert
  const rows = new Map();    // id -> {tr, note, error}
  const persons = new Map(); // id -> name
  let loading = null;        // alerts pushed while a list request is in flight
  let open = null;           // the alert shown in detail: {id, head, history, forms}
  let units = null;      // [{id, name, path}] from /api/units, or null (not available)
  let disposals = null;  // [{id, labels}]
  const unitName = (id) => units?.find((u) => u.id === id)?.name || id;
  const disposalName = (id) => disposals?.find((d) => d.id === id)?.labels?.[ctx.lang] || id;
  let sound = false;
  try { sound = localStorage.getItem(SOUND_KEY) === "1"; } catch { /* storage disabled */ }

  const stateSel = select([
    ["ongoing", t("state.ongoing")], ["open", t("state.open")], ["acknowledged", t("state.acknowledged")],
    ["resolved", t("state.resolved")], ["", t("all")],
  ], filters.state, { name: "state", onchange: (e) => setFilter("state", e.target.value) });
  const levelSel = select([["", t("all")], ...LEVELS.map((l) => [l, t(`level.${l}`)])], filters.level,
    { name: "level", onchange: (e) => setFilter("level", e.target.value) });
  const kindSel = select([["", t("all")], ...KINDS.map((k) => [k, kindName(k)])], filters.kind,
    { name: "kind", onchange: (e) => setFilter("kind", e.target.value) });
  const sinceIn = h("input", { type: "date", name: "since", value: filters.since, onchange: (e) => setFilter("since", e.target.value) });
  const untilIn = h("input", { type: "date", name: "until", value: filters.until, onchange: (e) => setFilter("until", e.target.value) });
  const exportLink = ctx.can("alerts.export") ? h("a", { class: "btn btn-quiet export-csv", href: "/api/alerts/export.csv", download: "" }, t("export")) : null;
  const detail = h("section", { class: "alert-detail notice", hidden: true, "aria-live": "polite" });
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
      h("label", {}, t("filter.kind"), kindSel),
      h("label", {}, t("filter.since"), sinceIn),
      h("label", {}, t("filter.until"), untilIn),
      h("label", {}, soundBox, t("sound")),
      exportLink,
      h("span", { class: "spacer" }),
      summary),
    problem,
    detail,
    h("div", { class: "table-wrap" },
      h("table", { class: "data alerts" },
        h("thead", {}, h("tr", {},
          h("th", {}, t("col.level")), h("th", {}, t("col.alert")), h("th", {}, t("col.state")),
          h("th", { class: "num" }, t("col.count")), h("th", {}, t("col.person")), h("th", {}, t("col.device")),
          h("th", {}, t("col.opened")), h("th", { class: "num" }, t("col.actions")))),
        tbody)));

  /** The filters as the API reads them: days are local midnights, the end day included. */
  function query() {
    const q = new URLSearchParams();
    for (const k of ["state", "level", "kind"]) if (filters[k]) q.set(k, filters[k]);
    if (filters.since) q.set("since", new Date(`${filters.since}T00:00:00`).toISOString());
    if (filters.until) {
      const end = new Date(`${filters.until}T00:00:00`);
      end.setDate(end.getDate() + 1);
      q.set("until", end.toISOString());
    }
    return q;
  }

  function matches(a) {
    if (filters.level && a.level !== filters.level) return false;
    if (filters.kind && a.kind !== filters.kind) return false;
    const q = query();
    const opened = parseTime(a.opened_at)?.getTime() ?? 0;
    if (q.has("since") && opened < new Date(q.get("since")).getTime()) return false;
    if (q.has("until") && opened >= new Date(q.get("until")).getTime()) return false;
    if (filters.state === "ongoing") return a.state === "open" || a.state === "acknowledged";
    return !filters.state || a.state === filters.state;
  }

  function setFilter(key, value) {
    filters[key] = value;
    const q = new URLSearchParams(Object.entries(filters).filter(([, v]) => v)).toString();
    history.replaceState({}, "", `${location.pathname}${q ? `?${q}` : ""}`);
    if (exportLink) exportLink.href = `/api/alerts/export.csv?${query()}`;
    reload();
  }
  if (exportLink) exportLink.href = `/api/alerts/export.csv?${query()}`;

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
    buttons.push(h("button", { type: "button", class: "btn btn-quiet btn-details", onclick: () => openDetail(a.id) }, t("details")));
    const escalated = a.original_level && a.original_level !== a.level;
    replace(tr,
      h("td", {}, h("span", { class: ["level", `level-${a.level}`] }, t(`level.${a.level}`))),
      h("td", { class: "alert-cell" },
        h("div", { class: "alert-kind" }, kindName(a.kind)),
        a.message ? h("div", { class: "alert-message" }, a.message) : null,
        escalated ? h("div", { class: "alert-message" }, t("escalated", { level: t(`level.${a.original_level}`) })) : null),
      h("td", {}, h("span", { class: ["state", `state-${a.state}`] }, t(`state.${a.state}`)),
        who ? h("div", { class: "muted nowrap small" }, t("by", { user: who })) : null,
        a.assigned_unit_id ? h("div", { class: "muted nowrap small assigned" },
          t("assigned.to", { unit: unitName(a.assigned_unit_id) + (a.assignee ? ` / ${a.assignee}` : "") })) : null),
      h("td", { class: "num count" }, `×${a.count}`),
      h("td", { class: "person-cell" }, personCell(a)),
      h("td", { class: "mono" }, a.device_id || h("span", { class: "muted" }, "—")),
      h("td", { class: "nowrap" }, ctx.fmt.time(a.opened_at),
        row.ago = h("div", { class: "muted small", title: ctx.fmt.time(a.updated_at) }, t("updated", { ago: ctx.fmt.ago(a.updated_at) }))),
      h("td", {},
        h("div", { class: "actions" }, buttons.length > 1 ? row.note : null, buttons),
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
    if (open && open.id === a.id) showDetail(alerts.get(a.id));
  }

  // ---- one alert: its history and the handling actions ----------------------------------
  // The forms are built once per opened alert (what is typed survives pushes); the summary
  // and the history are redrawn on every change of the alert.

  function openDetail(id) {
    showAlert(id).catch((e) => {
      if (e.name === "AbortError") return;
      problem.textContent = t("error", { detail: e.message });
      problem.hidden = false;
    });
  }

  async function showAlert(id) {
    const q = new URLSearchParams(location.search);
    q.set("id", id);
    history.replaceState({}, "", `${location.pathname}?${q}`);
    const [a] = await Promise.all([
      ctx.api(`/api/alerts/${id}`),
      disposals ? null : ctx.api("/api/alerts/disposals").then((d) => { disposals = d; }).catch(() => { disposals = []; }),
      units || !ctx.can("alerts.assign") ? null : ctx.api("/api/units").then((u) => { units = Array.isArray(u) ? u : null; }).catch(() => { units = null; }),
    ]);
    open = { id, head: h("div", { class: "alert-detail-head" }), history: h("ol", { class: "alert-history" }), forms: buildForms(id),
      deliveries: h("ul", { class: "alert-deliveries" }) };
    replace(detail,
      h("div", { class: "toolbar" }, h("h2", {}, t("detail.title", { id })), h("span", { class: "spacer" }),
        h("button", { type: "button", class: "btn btn-quiet", onclick: closeDetail }, t("detail.close"))),
      open.head, h("h3", {}, t("history")), open.history, h("h3", {}, t("deliveries")), open.deliveries, open.forms.root);
    showDeliveries(id);
    detail.dataset.id = id;
    detail.hidden = false;
    alerts.set(a.id, newer(alerts.get(a.id), a));
    showDetail(alerts.get(a.id));
  }

  // Where the alert's changes went (the outbox): channel, change, state and the last error;
  // an admin sends a dead letter again from here.
  async function showDeliveries(id) {
    let list;
    try {
      list = await ctx.api(`/api/outbox/alerts/${id}`);
    } catch (e) {
      if (e.name === "AbortError") return;
      list = [];
    }
    if (!open || open.id !== id) return;
    const name = (change) => (t(`action.${change}`) === `action.${change}` ? change : t(`action.${change}`));
    replace(open.deliveries, list.length === 0
      ? h("li", { class: "muted small" }, t("deliveries.none"))
      : list.map((d) => h("li", { class: "delivery", dataset: { state: d.state, channel: d.channel } },
        h("span", { class: "muted small nowrap" }, ctx.fmt.time(d.created_at)), " ",
        h("strong", {}, d.channel), d.address ? ` (${d.address})` : "", " · ", name(d.change), " · ",
        h("span", { class: "delivery-state" }, t(`delivery.${d.state}`)),
        d.state !== "sent" && d.last_error ? h("div", { class: "small muted delivery-error" }, d.last_error) : null,
        d.state === "dead" && ctx.can("outbox.admin")
          ? h("button", { type: "button", class: "btn btn-quiet", onclick: async () => {
            await ctx.api(`/api/outbox/${d.id}/retry`, { method: "POST" });
            showDeliveries(id);
          } }, t("delivery.retry"))
          : null)));
  }

  function closeDetail() {
    open = null;
    detail.hidden = true;
    replace(detail);
    const q = new URLSearchParams(location.search);
    q.delete("id");
    history.replaceState({}, "", `${location.pathname}${q.size ? `?${q}` : ""}`);
  }

  function showDetail(a) {
    const line = (label, value) => (value ? h("div", { class: "small" }, h("span", { class: "muted" }, `${label}: `), value) : null);
    replace(open.head,
      h("div", {}, h("span", { class: ["level", `level-${a.level}`] }, t(`level.${a.level}`)), " ", kindName(a.kind), " · ",
        h("span", { class: ["state", `state-${a.state}`] }, t(`state.${a.state}`))),
      h("div", { class: "small assigned" }, a.assigned_unit_id
        ? t("assigned.to", { unit: unitName(a.assigned_unit_id) + (a.assignee ? ` / ${a.assignee}` : "") }) : t("assigned.none")),
      line(t("action.assessed"), a.assessment),
      line(t("action.disposed"), a.disposal ? disposalName(a.disposal) + (a.disposal_note ? ` — ${a.disposal_note}` : "") : null),
      line(t("action.fed_back"), a.feedback));
    replace(open.history, (a.notes || []).map((n) => h("li", { class: "history-item", dataset: { action: n.action } },
      h("span", { class: "muted small nowrap" }, ctx.fmt.time(n.at)), " ",
      h("strong", {}, t(`action.${n.action}`) === `action.${n.action}` ? n.action : t(`action.${n.action}`)), " ",
      h("span", { class: "muted" }, n.author), n.text ? h("div", { class: "history-text" }, n.text) : null)));
    const closed = a.state === "resolved";
    for (const [name, form] of Object.entries(open.forms.byAction)) form.hidden = closed && name !== "notes";
    if (open.forms.disposalSel && !open.forms.disposalSel.options.length && disposals) {
      replace(open.forms.disposalSel, disposals.map((d) => h("option", { value: d.id }, d.labels?.[ctx.lang] || d.id)));
    }
  }

  function buildForms(id) {
    const byAction = {};
    const root = h("div", { class: "handle-forms" });
    function form(action, perm, fields, label, body) {
      if (!ctx.can(perm)) return;
      const error = h("p", { class: "form-error", role: "alert" });
      const button = h("button", { type: "submit", class: "btn btn-primary" }, label);
      const el = h("form", { class: "handle-form", dataset: { action }, onsubmit: async (e) => {
        e.preventDefault();
        error.textContent = "";
        button.disabled = true;
        try {
          apply(await ctx.api(`/api/alerts/${id}/${action}`, { method: "POST", json: body() }));
          el.reset();
        } catch (err) {
          if (err.name !== "AbortError") error.textContent = t("error", { detail: err.message });
        } finally {
          button.disabled = false;
        }
      } }, fields, button, error);
      byAction[action] = el;
      root.append(el);
    }
    const field = (label, input) => h("label", {}, label, input);
    const value = (el) => el.value.trim();

    const unitSel = units
      ? select(units.map((u) => [u.id, u.name || u.id]), "", { name: "unit_id" })
      : h("input", { type: "text", name: "unit_id", maxlength: 64, required: true });
    const assignee = h("input", { type: "text", name: "assignee", maxlength: 64 });
    form("assign", "alerts.assign", [field(t("form.unit"), unitSel), field(t("form.assignee"), assignee)], t("do.assign"),
      () => ({ unit_id: value(unitSel), assignee: value(assignee) || null }));
    const assessment = h("textarea", { name: "assessment", maxlength: 4000, rows: 2, required: true });
    form("assess", "alerts.handle", [field(t("form.assess"), assessment)], t("do.assess"), () => ({ note: value(assessment) }));
    const disposalSel = h("select", { name: "disposal" });
    const disposalNote = h("input", { type: "text", name: "disposal_note", maxlength: 4000 });
    form("dispose", "alerts.handle", [field(t("form.dispose"), disposalSel), field(t("form.disposal_note"), disposalNote)], t("do.dispose"),
      () => ({ disposal: disposalSel.value, note: value(disposalNote) || null }));
    const fb = h("textarea", { name: "feedback", maxlength: 4000, rows: 2, required: true });
    form("feedback", "alerts.handle", [field(t("form.feedback"), fb)], t("do.feedback"), () => ({ note: value(fb) }));
    const levelSel = select(LEVELS.map((l) => [l, t(`level.${l}`)]), "red", { name: "level" });
    const reason = h("input", { type: "text", name: "reason", maxlength: 2000, required: true });
    form("level", "alerts.handle", [field(t("form.level"), levelSel), field(t("form.reason"), reason)], t("do.level"),
      () => ({ level: levelSel.value, reason: value(reason) }));
    const noteText = h("input", { type: "text", name: "text", maxlength: 4000, required: true });
    form("notes", "alerts.note", [field(t("form.note"), noteText)], t("do.note"), () => ({ text: value(noteText) }));
    return { root, byAction, disposalSel: byAction.dispose ? disposalSel : null };
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
    const q = query();
    q.set("limit", "500");
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
  // a link from a channel's message (…/console/alerts?id=N) opens that alert
  if (/^\d+$/.test(ctx.params.id || "")) openDetail(Number(ctx.params.id));
}
