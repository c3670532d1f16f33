// Devices and their health: GET /api/devices, then `device.state` and
// `device.status` pushes applied to the rows in place. Admins register, change, re-key and
// disable devices here (static/device_forms.js); a camera added or changed takes effect at
// once (the server publishes the change to the camera area), without a restart.

import { h, replace, select } from "../dom.js";
import { changeForm, changeTitle, deviceLabel, registerForm, rowActions } from "../device_forms.js";

export const strings = {
  en: {
    "filter.kind": "Kind",
    "filter.state": "State",
    "col.id": "ID",
    "col.name": "Name",
    "col.kind": "Kind",
    "col.state": "State",
    "col.battery": "Battery",
    "col.last_seen": "Last seen",
    "col.person": "Person",
    "col.actions": "Change",
    "disabled": "disabled",
    "summary": "{online} online · {offline} offline · {unknown} unknown",
    "none": "No devices.",
  },
  "zh-CN": {
    "filter.kind": "类型",
    "filter.state": "状态",
    "col.id": "编号",
    "col.name": "名称",
    "col.kind": "类型",
    "col.state": "状态",
    "col.battery": "电量",
    "col.last_seen": "最后在线",
    "col.person": "人员",
    "col.actions": "操作",
    "disabled": "已停用",
    "summary": "在线 {online} · 离线 {offline} · 未知 {unknown}",
    "none": "暂无设备。",
  },
};

const KINDS = ["camera", "tracker", "bodycam", "kiosk"];
const STATES = ["online", "offline", "unknown"];
const LOW_BATTERY = 20;

let interval = null;

export function dispose() {
  clearInterval(interval);
  interval = null;
}

export async function render(root, ctx) {
  const { t } = ctx;
  const filters = {
    kind: KINDS.includes(ctx.params.kind) ? ctx.params.kind : "",
    state: STATES.includes(ctx.params.state) ? ctx.params.state : "",
  };
  const devices = new Map();  // id -> device
  const rows = new Map();     // id -> {tr, seen}
  const persons = new Map();  // id -> name
  const tbody = h("tbody");
  const summary = h("span", { class: "muted" });
  const admin = ctx.can("devices.write");
  const empty = h("tr", { class: "empty" }, h("td", { colspan: admin ? 8 : 7, class: "muted" }, t("none")));
  const keyShown = h("div", { class: "key-shown" });
  const adminArea = h("div", { class: "device-admin" });
  let unitOptions = [];
  let personOptions = [];

  const onFilter = (key) => (e) => {
    filters[key] = e.target.value;
    const q = new URLSearchParams(Object.entries(filters).filter(([, v]) => v)).toString();
    history.replaceState({}, "", `${location.pathname}${q ? `?${q}` : ""}`);
    draw();
  };
  replace(root,
    h("div", { class: "toolbar" },
      h("label", {}, t("filter.kind"), select([["", t("all")], ...KINDS.map((k) => [k, t(`device.${k}`)])], filters.kind, { name: "kind", onchange: onFilter("kind") })),
      h("label", {}, t("filter.state"), select([["", t("all")], ...STATES.map((s) => [s, t(`device.${s}`)])], filters.state, { name: "state", onchange: onFilter("state") })),
      h("span", { class: "spacer" }),
      summary),
    h("div", { class: "table-wrap" },
      h("table", { class: "data devices" },
        h("thead", {}, h("tr", {},
          h("th", {}, t("col.state")), h("th", {}, t("col.id")), h("th", {}, t("col.name")), h("th", {}, t("col.kind")),
          h("th", { class: "num" }, t("col.battery")), h("th", {}, t("col.last_seen")), h("th", {}, t("col.person")),
          admin ? h("th", {}, t("col.actions")) : null)),
        tbody)),
    keyShown,
    adminArea);

  function stateOf(d) {
    return STATES.includes(d.state) ? d.state : "unknown";
  }

  function fill(row, d) {
    const st = stateOf(d);
    row.tr.dataset.state = st;
    row.seen = h("td", { class: "nowrap", title: d.last_seen_at ? ctx.fmt.time(d.last_seen_at) : "" }, d.last_seen_at ? ctx.fmt.ago(d.last_seen_at) : "—");
    replace(row.tr,
      h("td", {}, h("span", { class: ["dstate", `dstate-${st}`], title: d.state_reason || "" }, t(`device.${st}`))),
      h("td", { class: "mono" }, d.id),
      h("td", {}, d.name || "", d.enabled === false ? h("span", { class: "muted" }, ` (${t("disabled")})`) : null),
      h("td", {}, t(`device.${d.kind}`)),
      h("td", { class: ["num", d.battery != null && d.battery <= LOW_BATTERY ? "battery-low" : null] }, d.battery != null ? `${d.battery}%` : "—"),
      row.seen,
      h("td", {}, d.person_id ? ctx.link("person", { id: d.person_id }, persons.get(d.person_id) || d.person_id) : h("span", { class: "muted" }, "—")),
      admin ? h("td", { class: "nowrap" }, rowActions(ctx, d, keyShown, load)) : null);
  }

  function draw() {
    const list = [...devices.values()]
      .filter((d) => (!filters.kind || d.kind === filters.kind) && (!filters.state || stateOf(d) === filters.state))
      .sort((a, b) => KINDS.indexOf(a.kind) - KINDS.indexOf(b.kind) || a.id.localeCompare(b.id));
    const keep = new Set(list.map((d) => d.id));
    for (const [id, row] of rows) if (!keep.has(id)) { row.tr.remove(); rows.delete(id); }
    list.forEach((d, i) => {
      let row = rows.get(d.id);
      if (!row) { row = { tr: h("tr", { dataset: { id: d.id } }) }; rows.set(d.id, row); }
      if (row.shown !== d) { fill(row, d); row.shown = d; }
      if (tbody.children[i] !== row.tr) tbody.insertBefore(row.tr, tbody.children[i] || null);
    });
    if (list.length === 0) tbody.append(empty); else empty.remove();
    const n = { online: 0, offline: 0, unknown: 0 };
    for (const d of devices.values()) n[stateOf(d)] += 1;
    summary.textContent = t("summary", n);
  }

  function patch(id, changes) {
    const d = devices.get(id);
    if (!d) return false;
    devices.set(id, { ...d, ...changes });
    draw();
    return true;
  }

  async function load() {
    const list = await ctx.api("/api/devices");
    devices.clear();
    for (const d of list) devices.set(d.id, d);
    draw();
  }

  const unlisted = new Set();  // ids refetched for once and still not listed (not registered)
  ctx.on("device.state", (msg) => {
    const changes = { state: msg.state, state_reason: msg.reason ?? null };
    if (msg.state === "online" && msg.at) changes.last_seen_at = msg.at;
    if (patch(msg.device_id, changes) || unlisted.has(msg.device_id)) return;
    // A device added since the list was fetched: fetch it again, once per id.
    unlisted.add(msg.device_id);
    load().then(() => { if (devices.has(msg.device_id)) unlisted.delete(msg.device_id); }).catch((e) => console.warn(e));
  });
  ctx.on("device.status", (msg) => {
    if (msg.battery != null) patch(msg.device_id, { battery: msg.battery });
  });
  ctx.on("hello", () => load().catch((e) => console.warn("reload after reconnect failed", e)));
  interval = setInterval(() => {
    for (const row of rows.values()) {
      if (row.shown?.last_seen_at) row.seen.textContent = ctx.fmt.ago(row.shown.last_seen_at);
    }
  }, 30000);

  const personsLoaded = ctx.api("/api/persons").then((list) => {
    for (const p of list) persons.set(p.id, p.name);
    for (const row of rows.values()) row.shown = null;
    draw();
  }).catch(() => { /* names are a nicety; ids still show */ });

  const unitsLoaded = admin ? ctx.api("/api/units") : null;  // beside the list, not after it
  unitsLoaded?.catch(() => {});  // awaited in drawAdmin; this only keeps a failure meanwhile from being "unhandled"
  await load();
  if (admin) await drawAdmin();

  async function drawAdmin() {
    const [units] = await Promise.all([unitsLoaded, personsLoaded]);
    unitOptions = [...units].sort((a, b) => a.path.localeCompare(b.path))
      .map((u) => [u.id, `${"\u00a0\u00a0".repeat(Math.max(0, u.path.split("/").filter(Boolean).length - 1))}${u.name}`]);
    personOptions = [...persons.entries()].map(([id, name]) => [id, `${name} (${id})`]);
    const which = select([], "", { name: "device" });
    const holder = h("div");
    const showChange = () => {
      const d = devices.get(which.value);
      replace(holder, d ? changeForm(ctx, d, unitOptions, personOptions, async () => { await load(); }) : null);
    };
    // the list of devices to change follows registrations; the register form (and a key it
    // shows once) stays as it is
    const refresh = () => {
      const current = which.value;
      replace(which, [...devices.values()].map((d) => h("option", { value: d.id }, d.id)));
      which.value = devices.has(current) ? current : which.options[0]?.value || "";
      showChange();
    };
    which.addEventListener("change", showChange);
    refresh();
    replace(adminArea,
      await registerForm(ctx, unitOptions, personOptions, async () => { await load(); refresh(); }),
      h("details", { class: "device-edit" }, h("summary", {}, changeTitle(ctx)), h("label", {}, deviceLabel(ctx), which), holder));
  }
}
