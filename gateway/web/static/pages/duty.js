// The duty roster (GET /api/duty) of the user's units for the coming days, a form to add a
// shift (duty.write), who is on duty now (GET /api/duty/now: a unit without a shift is
// covered by its nearest ancestor's duty officer, and the page says so), and the handover
// view at a shift change (GET /api/duty/handover), laid out to be printed (pages/duty.css).
// Names, notes and alert texts come from users: they only ever become text nodes.

import { ApiError } from "../api.js";
import { h, replace, select } from "../dom.js";
import { parseTime } from "../i18n.js";

export const strings = {
  en: {
    "unit": "Unit",
    "unit.all": "All my units",
    "days": "Days",
    "days.n": "{n} days",
    "now.title": "On duty now",
    "now.none": "No one is on duty for this unit now.",
    "now.inherited": "No shift of its own: covered by {unit}.",
    "now.until": "until {time}",
    "roster.title": "Roster",
    "roster.none": "No shifts in these days.",
    "col.unit": "Unit",
    "col.name": "On duty",
    "col.starts": "From",
    "col.ends": "Until",
    "col.channel": "Delivery",
    "col.note": "Note",
    "col.actions": "",
    "on_now": "on duty",
    "delete": "Delete",
    "delete.confirm": "Delete the shift of {name}?",
    "form.title": "Add a shift",
    "form.unit": "Unit ID",
    "form.officer": "Officer (user name, optional)",
    "form.name": "Name shown",
    "form.starts": "From",
    "form.ends": "Until",
    "form.channel": "Channel (optional)",
    "form.address": "E-mail (optional)",
    "form.note": "Note (optional)",
    "form.submit": "Add shift",
    "form.added": "Shift added.",
    "form.bad_time": "Enter both times.",
    "handover.title": "Handover",
    "handover.at": "Shift change at",
    "handover.show": "Show",
    "handover.print": "Print",
    "handover.heading": "Handover of {unit} at {time}",
    "handover.outgoing": "Outgoing",
    "handover.incoming": "Incoming",
    "handover.no_shift": "none",
    "handover.alerts": "Open alerts ({n})",
    "handover.truncated": "Only the oldest {shown} of {n} open alerts are listed.",
    "handover.none": "No open alerts for this unit and the units below it.",
    "col.level": "Level",
    "col.kind": "Alert",
    "col.state": "State",
    "col.person": "Person",
    "col.opened": "Opened",
    "col.assigned": "Assigned to",
    "col.last_note": "Last note",
    "printed": "Printed {time} by {user}",
  },
  "zh-CN": {
    "unit": "单位",
    "unit.all": "我的全部单位",
    "days": "天数",
    "days.n": "{n} 天",
    "now.title": "当前值班",
    "now.none": "本单位当前无人值班。",
    "now.inherited": "本单位无值班安排，由{unit}值班人员负责。",
    "now.until": "至 {time}",
    "roster.title": "值班表",
    "roster.none": "所选日期内没有值班安排。",
    "col.unit": "单位",
    "col.name": "值班人员",
    "col.starts": "开始",
    "col.ends": "结束",
    "col.channel": "推送渠道",
    "col.note": "备注",
    "col.actions": "",
    "on_now": "值班中",
    "delete": "删除",
    "delete.confirm": "确定删除{name}的值班安排？",
    "form.title": "新增值班",
    "form.unit": "单位编号",
    "form.officer": "值班人员账号（可选）",
    "form.name": "显示姓名",
    "form.starts": "开始时间",
    "form.ends": "结束时间",
    "form.channel": "推送渠道（可选）",
    "form.address": "电子邮箱（可选）",
    "form.note": "备注（可选）",
    "form.submit": "新增值班",
    "form.added": "已新增值班。",
    "form.bad_time": "请填写开始和结束时间。",
    "handover.title": "交接班",
    "handover.at": "交接时间",
    "handover.show": "查看",
    "handover.print": "打印",
    "handover.heading": "{unit} 交接班记录（{time}）",
    "handover.outgoing": "交班",
    "handover.incoming": "接班",
    "handover.no_shift": "无",
    "handover.alerts": "未处理告警（{n} 条）",
    "handover.truncated": "仅列出最早的 {shown} 条，共 {n} 条未处理告警。",
    "handover.none": "本单位及下级单位没有未处理的告警。",
    "col.level": "级别",
    "col.kind": "告警",
    "col.state": "状态",
    "col.person": "人员",
    "col.opened": "发生时间",
    "col.assigned": "指派给",
    "col.last_note": "最近备注",
    "printed": "{user} 打印于 {time}",
  },
};

const DAYS = [1, 3, 7, 14];
const DAY_MS = 86400000;
const pad = (n) => String(n).padStart(2, "0");
let timers = [];

export function dispose() {
  for (const id of timers) clearTimeout(id);
  timers = [];
}

function pageCss() {
  if (!document.querySelector('link[data-page-css="duty"]')) {
    document.head.append(h("link", { rel: "stylesheet", href: "/static/pages/duty.css", dataset: { pageCss: "duty" } }));
  }
}

/** A Date as the value of an <input type="datetime-local"> (the browser's local time). */
function localValue(d) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** An <input type="datetime-local"> value (local time) as UTC ISO 8601, or null. */
function fromLocal(value) {
  if (!value) return null;
  const d = new Date(value);  // a date-time without an offset is local time
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/** The units the user may pick: GET /api/units when this gateway has it, else none. */
async function loadUnits(ctx) {
  try {
    const list = await ctx.api("/api/units");
    return [...list].sort((a, b) => a.path.localeCompare(b.path));
  } catch (e) {
    if (e instanceof ApiError && (e.status === 404 || e.status === 403)) return [];
    throw e;
  }
}

function depth(u) {
  return Math.max(0, u.path.split("/").filter(Boolean).length - 1);
}

export async function render(root, ctx) {
  const { t } = ctx;
  pageCss();
  const writer = ctx.can("duty.write");
  const units = await loadUnits(ctx);
  const unitNames = new Map(units.map((u) => [u.id, u.name]));
  const state = {
    unit: ctx.params.unit && /^[\w.@-]{1,64}$/.test(ctx.params.unit) ? ctx.params.unit : "",
    days: DAYS.includes(Number(ctx.params.days)) ? Number(ctx.params.days) : 7,
  };
  const unitLabel = (u) => `${"\u00a0\u00a0".repeat(depth(u))}${u.name}`;
  const unitOptions = (first) => [...(first ? [first] : []), ...units.map((u) => [u.id, unitLabel(u)])];
  const q = (params) => {
    const s = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v !== null && v !== undefined)).toString();
    return s ? `?${s}` : "";
  };

  // toolbar: unit and how many days ahead
  const unitSel = units.length
    ? select(unitOptions(["", t("unit.all")]), state.unit, { name: "unit" })
    : h("input", { name: "unit", value: state.unit, placeholder: t("unit.all"), maxlength: 64, size: 16 });
  const daysSel = select(DAYS.map((n) => [String(n), t("days.n", { n })]), String(state.days), { name: "days" });
  const onFilter = () => {
    state.unit = unitSel.value.trim();
    state.days = Number(daysSel.value);
    history.replaceState({}, "", `${location.pathname}${q({ unit: state.unit, days: state.days === 7 ? "" : state.days })}`);
    reload().catch(shown);
  };
  unitSel.addEventListener("change", onFilter);
  daysSel.addEventListener("change", onFilter);

  const nowBox = h("div", { class: "duty-now-body" });
  const rosterBody = h("tbody");
  const rosterMsg = h("p", { class: "form-error", role: "alert", hidden: true });
  const handoverBox = h("div", { class: "duty-handover-body" });
  const atInput = h("input", { type: "datetime-local", name: "at", value: localValue(new Date()) });

  function shown(e) {
    if (e?.name === "AbortError") return;
    rosterMsg.hidden = false;
    rosterMsg.textContent = t("error", { detail: e?.message || String(e) });
  }

  // --- who is on duty now
  async function loadNow() {
    const now = await ctx.api(`/api/duty/now${q({ unit_id: state.unit })}`);
    const items = now.shifts.map((s) => h("li", { dataset: { id: s.id } },
      h("strong", { class: "duty-name" }, s.name),
      s.officer && s.officer !== s.name ? h("span", { class: "muted mono" }, ` (${s.officer})`) : null,
      " · ", h("span", {}, s.unit_name), " · ",
      h("span", { class: "muted" }, t("now.until", { time: ctx.fmt.time(s.ends_at) }))));
    replace(nowBox,
      now.shifts.length ? h("ul", { class: "duty-now-list" }, items) : h("p", { class: "muted" }, t("now.none")),
      now.inherited ? h("p", { class: "duty-inherited", dataset: { coveredBy: now.covered_by } }, t("now.inherited", { unit: now.covered_by_name || now.covered_by })) : null);
  }

  // --- the roster
  function rosterRow(s, nowMs) {
    const on = parseTime(s.starts_at) <= nowMs && nowMs < parseTime(s.ends_at);
    const del = writer ? h("button", {
      class: "btn btn-quiet", type: "button",
      onclick: async () => {
        if (!window.confirm(t("delete.confirm", { name: s.name }))) return;
        try {
          await ctx.api(`/api/duty/${s.id}`, { method: "DELETE" });
          await reload();
        } catch (e) { shown(e); }
      },
    }, t("delete")) : null;
    return h("tr", { dataset: { id: s.id, unit: s.unit_id, now: on ? "1" : "0" } },
      h("td", {}, s.unit_name),
      h("td", {}, h("span", { class: "duty-name" }, s.name),
        s.officer && s.officer !== s.name ? h("span", { class: "muted mono" }, ` (${s.officer})`) : null,
        on ? h("span", { class: "chip chip-ok" }, t("on_now")) : null),
      h("td", { class: "nowrap" }, ctx.fmt.time(s.starts_at)),
      h("td", { class: "nowrap" }, ctx.fmt.time(s.ends_at)),
      h("td", {}, [s.channel, s.address].filter(Boolean).join(" · ") || h("span", { class: "muted" }, "—")),
      h("td", {}, s.note || ""),
      h("td", {}, del));
  }

  async function loadRoster() {
    const start = new Date();
    start.setHours(0, 0, 0, 0);  // from the start of today, local time
    const until = new Date(start.getTime() + state.days * DAY_MS);
    const list = await ctx.api(`/api/duty${q({ unit_id: state.unit, since: start.toISOString(), until: until.toISOString() })}`);
    const nowMs = Date.now();
    replace(rosterBody, list.length
      ? list.map((s) => rosterRow(s, nowMs))
      : h("tr", { class: "empty" }, h("td", { colspan: 7, class: "muted" }, t("roster.none"))));
  }

  // --- the form
  function shiftForm() {
    const start = new Date();
    start.setMinutes(0, 0, 0);
    start.setHours(start.getHours() + 1);
    const end = new Date(start.getTime() + 12 * 3600000);
    const f = {
      unit: units.length
        ? select(unitOptions(null), state.unit || ctx.user.unit_id || units[0].id, { name: "unit_id" })
        : h("input", { name: "unit_id", required: true, maxlength: 64, value: state.unit || ctx.user.unit_id || "" }),
      officer: h("input", { name: "officer", maxlength: 64, autocomplete: "off" }),
      name: h("input", { name: "name", maxlength: 200 }),
      starts: h("input", { type: "datetime-local", name: "starts_at", required: true, value: localValue(start) }),
      ends: h("input", { type: "datetime-local", name: "ends_at", required: true, value: localValue(end) }),
      channel: h("input", { name: "channel", maxlength: 64 }),
      address: h("input", { name: "address", type: "email", maxlength: 320 }),
      note: h("input", { name: "note", maxlength: 2000 }),
    };
    const msg = h("p", { class: "form-error", role: "alert", hidden: true });
    const ok = h("p", { class: "muted", role: "status", hidden: true });
    const submit = h("button", { class: "btn btn-primary", type: "submit" }, t("form.submit"));
    const form = h("form", {
      class: "duty-form", novalidate: true,
      onsubmit: async (ev) => {
        ev.preventDefault();
        msg.hidden = true;
        ok.hidden = true;
        const startsAt = fromLocal(f.starts.value);
        const endsAt = fromLocal(f.ends.value);
        if (!startsAt || !endsAt) {
          msg.textContent = t("form.bad_time");
          msg.hidden = false;
          return;
        }
        const body = { unit_id: f.unit.value.trim(), starts_at: startsAt, ends_at: endsAt };
        for (const k of ["officer", "name", "channel", "address", "note"]) {
          const v = f[k].value.trim();
          if (v) body[k] = v;
        }
        submit.disabled = true;
        try {
          await ctx.api("/api/duty", { json: body });
          for (const k of ["officer", "name", "note"]) f[k].value = "";
          ok.textContent = t("form.added");
          ok.hidden = false;
          await reload();
        } catch (e) {
          if (e?.name === "AbortError") return;
          msg.textContent = t("error", { detail: e.message });
          msg.hidden = false;
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("label", {}, units.length ? t("unit") : t("form.unit"), f.unit),
    h("label", {}, t("form.officer"), f.officer),
    h("label", {}, t("form.name"), f.name),
    h("label", {}, t("form.starts"), f.starts),
    h("label", {}, t("form.ends"), f.ends),
    h("label", {}, t("form.channel"), f.channel),
    h("label", {}, t("form.address"), f.address),
    h("label", {}, t("form.note"), f.note),
    h("div", { class: "duty-form-actions" }, submit),
    msg, ok);
    return h("section", { class: "duty-section duty-add duty-no-print" }, h("h2", {}, t("form.title")), form);
  }

  // --- the handover
  function shiftList(list) {
    if (!list.length) return h("span", { class: "muted" }, t("handover.no_shift"));
    return list.map((s, i) => [i ? "; " : "", h("span", { class: "duty-name" }, s.name), " ",
      h("span", { class: "muted nowrap" }, `${ctx.fmt.time(s.starts_at)} – ${ctx.fmt.time(s.ends_at)}`)]);
  }

  function alertRow(a) {
    const person = a.person_id ? ctx.link("person", { id: a.person_id }, a.person_name || a.person_id) : h("span", { class: "muted" }, "—");
    const assigned = [a.assignee, a.assigned_unit_id ? unitNames.get(a.assigned_unit_id) || a.assigned_unit_id : null].filter(Boolean).join(" · ");
    const note = a.last_note
      ? [h("span", { class: "muted" }, `${a.last_note.author}, ${ctx.fmt.time(a.last_note.at)}: `), a.last_note.text || a.last_note.action]
      : "";
    return h("tr", { dataset: { id: a.id, level: a.level, state: a.state } },
      h("td", {}, h("span", { class: ["level", `level-${a.level}`] }, t(`level.${a.level}`))),
      h("td", {}, t(`kind.${a.kind}`), a.message ? h("div", { class: "muted small" }, a.message) : null),
      h("td", {}, t(`state.${a.state}`)),
      h("td", {}, person),
      h("td", { class: "nowrap" }, ctx.fmt.time(a.opened_at)),
      h("td", {}, assigned || h("span", { class: "muted" }, "—")),
      h("td", {}, note));
  }

  async function loadHandover() {
    const at = fromLocal(atInput.value) || new Date().toISOString();
    const ho = await ctx.api(`/api/duty/handover${q({ unit_id: state.unit, at })}`);
    replace(handoverBox,
      h("h3", { class: "duty-handover-heading" }, t("handover.heading", { unit: ho.unit_name, time: ctx.fmt.time(ho.at) })),
      h("dl", { class: "duty-shifts" },
        h("dt", {}, t("handover.outgoing")), h("dd", { class: "duty-outgoing" }, shiftList(ho.outgoing)),
        h("dt", {}, t("handover.incoming")), h("dd", { class: "duty-incoming" }, shiftList(ho.incoming))),
      h("h4", {}, t("handover.alerts", { n: ho.total_alerts })),
      ho.truncated ? h("p", { class: "muted" }, t("handover.truncated", { shown: ho.alerts.length, n: ho.total_alerts })) : null,
      ho.alerts.length
        ? h("div", { class: "table-wrap" }, h("table", { class: "data handover-alerts" },
          h("thead", {}, h("tr", {},
            h("th", {}, t("col.level")), h("th", {}, t("col.kind")), h("th", {}, t("col.state")), h("th", {}, t("col.person")),
            h("th", {}, t("col.opened")), h("th", {}, t("col.assigned")), h("th", {}, t("col.last_note")))),
          h("tbody", {}, ho.alerts.map(alertRow))))
        : h("p", { class: "muted duty-handover-empty" }, t("handover.none")),
      h("p", { class: "duty-print-only muted small" }, t("printed", { time: ctx.fmt.time(new Date()), user: ctx.user.username })));
  }

  async function reload() {
    rosterMsg.hidden = true;
    await Promise.all([loadNow(), loadRoster(), loadHandover()]);
  }

  replace(root,
    h("div", { class: "toolbar duty-no-print" },
      h("label", {}, t("unit"), unitSel),
      h("label", {}, t("days"), daysSel)),
    rosterMsg,
    h("section", { class: "duty-section duty-now duty-no-print" }, h("h2", {}, t("now.title")), nowBox),
    h("section", { class: "duty-section duty-roster duty-no-print" }, h("h2", {}, t("roster.title")),
      h("div", { class: "table-wrap" }, h("table", { class: "data duty-roster-table" },
        h("thead", {}, h("tr", {},
          h("th", {}, t("col.unit")), h("th", {}, t("col.name")), h("th", {}, t("col.starts")), h("th", {}, t("col.ends")),
          h("th", {}, t("col.channel")), h("th", {}, t("col.note")), h("th", {}, t("col.actions")))),
        rosterBody))),
    writer ? shiftForm() : null,
    h("section", { class: "duty-section duty-handover" },
      h("h2", { class: "duty-no-print" }, t("handover.title")),
      h("div", { class: "toolbar duty-no-print" },
        h("label", {}, t("handover.at"), atInput),
        h("button", { class: "btn", type: "button", name: "show", onclick: () => loadHandover().catch(shown) }, t("handover.show")),
        h("button", { class: "btn", type: "button", name: "print", onclick: () => window.print() }, t("handover.print"))),
      handoverBox));

  await reload();

  // alerts change under the handover: refetch it shortly after (a burst gives one request)
  let pending = null;
  const later = () => {
    if (pending !== null) return;
    pending = setTimeout(() => { pending = null; loadHandover().catch(shown); }, 1000);
    timers.push(pending);
  };
  ctx.on("alert", later);
  ctx.on("hello", () => reload().catch(shown));
}
