// The audit log (admins): newest first, filter by actor and action prefix,
// older entries on demand. Every entry carries its hash-chain link.

import { h, replace } from "../dom.js";

export const strings = {
  en: {
    "actor": "User",
    "action": "Action starts with",
    "apply": "Filter",
    "more": "Older entries",
    "col.at": "Time",
    "col.actor": "User",
    "col.action": "Action",
    "col.target": "Target",
    "col.details": "Details",
    "none": "No entries.",
  },
  "zh-CN": {
    "actor": "用户",
    "action": "操作（前缀）",
    "apply": "筛选",
    "more": "更早的记录",
    "col.at": "时间",
    "col.actor": "用户",
    "col.action": "操作",
    "col.target": "对象",
    "col.details": "详情",
    "none": "暂无记录。",
  },
};

const PAGE = 100;

export async function render(root, ctx) {
  const { t } = ctx;
  const actor = h("input", { type: "text", name: "actor", value: ctx.params.actor || "", maxlength: 64 });
  const action = h("input", { type: "text", name: "action", value: ctx.params.action || "", maxlength: 64, placeholder: "alert." });
  const tbody = h("tbody");
  const more = h("button", { type: "button", class: "btn", hidden: true, onclick: () => run(true) }, t("more"));
  const problem = h("p", { class: "row-error", role: "alert", hidden: true });
  let oldest = null;

  const form = h("form", { class: "toolbar", onsubmit: (ev) => { ev.preventDefault(); run(false); } },
    h("label", {}, t("actor"), actor),
    h("label", {}, t("action"), action),
    h("button", { type: "submit", class: "btn" }, t("apply")));
  replace(root,
    form,
    problem,
    h("div", { class: "table-wrap" },
      h("table", { class: "data audit" },
        h("thead", {}, h("tr", {},
          h("th", {}, t("col.at")), h("th", {}, t("col.actor")), h("th", {}, t("col.action")),
          h("th", {}, t("col.target")), h("th", {}, t("col.details")))),
        tbody)),
    h("p", {}, more));

  async function load(older) {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (actor.value.trim()) q.set("actor", actor.value.trim());
    if (action.value.trim()) q.set("action", action.value.trim());
    if (older && oldest !== null) q.set("before_id", String(oldest));
    const list = await ctx.api(`/api/audit?${q}`);
    if (!older) tbody.replaceChildren();
    for (const e of list) {
      tbody.append(h("tr", { dataset: { id: e.id } },
        h("td", { class: "nowrap" }, ctx.fmt.time(e.at)),
        h("td", {}, e.actor),
        h("td", { class: "mono" }, e.action),
        h("td", { class: "mono" }, e.target || ""),
        h("td", { class: "mono muted" }, e.details && Object.keys(e.details).length ? JSON.stringify(e.details) : "")));
    }
    if (list.length) oldest = list[list.length - 1].id;
    if (!tbody.children.length) tbody.append(h("tr", { class: "empty" }, h("td", { colspan: 5, class: "muted" }, t("none"))));
    more.hidden = list.length < PAGE;
  }

  function run(older) {
    load(older).then(() => { problem.hidden = true; }).catch((e) => {
      if (e.name === "AbortError") return;
      problem.textContent = t("error", { detail: e.message });
      problem.hidden = false;
    });
  }

  await load(false);
}
