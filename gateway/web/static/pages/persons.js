// Supervised persons: GET /api/persons with a search box; a row opens the
// person's own page (`person`, params {id}). With persons.write, a form registers a person
// (category, supervision level, unit, responsible officer, notes) and opens their page.

import { formParts, h, replace, submitting } from "../dom.js";
import { personFields } from "../person_form.js";

export const strings = {
  en: {
    "search": "Search by name or ID",
    "col.name": "Name",
    "col.id": "ID",
    "col.category": "Category",
    "col.active": "Status",
    "col.updated": "Updated",
    "active": "Active",
    "inactive": "Inactive",
    "count": "{n} persons",
    "none": "No persons found.",
    "add": "Register a person",
    "add.submit": "Register",
    "error": "Not done: {detail}",
  },
  "zh-CN": {
    "search": "按姓名或编号搜索",
    "col.name": "姓名",
    "col.id": "编号",
    "col.category": "类别",
    "col.active": "状态",
    "col.updated": "更新时间",
    "active": "在矫",
    "inactive": "已解除",
    "count": "共 {n} 人",
    "none": "未找到人员。",
    "add": "登记人员",
    "add.submit": "登记",
    "error": "未完成：{detail}",
  },
};

let timer = null;

export function dispose() {
  clearTimeout(timer);
}

export async function render(root, ctx) {
  const { t } = ctx;
  const tbody = h("tbody");
  const count = h("span", { class: "muted" });
  const search = h("input", { type: "search", name: "q", value: ctx.params.q || "", placeholder: t("search"), "aria-label": t("search"), maxlength: 100 });
  let seq = 0;

  replace(root,
    h("div", { class: "toolbar" }, search, h("span", { class: "spacer" }), count),
    h("div", { class: "table-wrap" },
      h("table", { class: "data persons" },
        h("thead", {}, h("tr", {},
          h("th", {}, t("col.name")), h("th", {}, t("col.id")), h("th", {}, t("col.category")),
          h("th", {}, t("col.active")), h("th", {}, t("col.updated")))),
        tbody)));

  async function load() {
    const mine = ++seq;
    const q = search.value.trim();
    const list = await ctx.api(`/api/persons${q ? `?${new URLSearchParams({ q })}` : ""}`);
    if (mine !== seq) return;  // a later search already answered
    count.textContent = t("count", { n: list.length });
    replace(tbody, list.length === 0
      ? h("tr", { class: "empty" }, h("td", { colspan: 5, class: "muted" }, t("none")))
      : list.map((p) => h("tr", {
        class: "clickable", dataset: { id: p.id }, tabindex: 0,
        onclick: (ev) => { if (!ev.target.closest("a")) ctx.navigate("person", { id: p.id }); },
        onkeydown: (ev) => { if (ev.key === "Enter") ctx.navigate("person", { id: p.id }); },
      },
      h("td", {}, ctx.link("person", { id: p.id }, p.name)),
      h("td", { class: "mono" }, p.id),
      h("td", {}, p.category || h("span", { class: "muted" }, "—")),
      h("td", {}, p.active ? t("active") : h("span", { class: "muted" }, t("inactive"))),
      h("td", { class: "nowrap" }, ctx.fmt.time(p.updated_at)))));
  }

  search.addEventListener("input", () => {
    clearTimeout(timer);
    // Wait for a pause in typing rather than querying on every key.
    timer = setTimeout(() => {
      const q = search.value.trim();
      history.replaceState({}, "", `${location.pathname}${q ? `?${new URLSearchParams({ q })}` : ""}`);
      load().catch((e) => { if (e.name !== "AbortError") count.textContent = t("error", { detail: e.message }); });
    }, 250);
  });

  // the form's lists (units, officers) load beside the persons, not after them
  const form = ctx.can("persons.write") ? addForm(ctx) : null;
  form?.catch(() => {});  // awaited below; this only keeps a failure while the list loads from being "unhandled"
  await load();
  if (form) root.append(await form);
}

async function addForm(ctx) {
  const { t } = ctx;
  const fields = await personFields(ctx, null);
  const parts = formParts(t("add.submit"));
  return h("details", { class: "person-add" }, h("summary", {}, t("add")), h("form", {
    class: ["units-form", "person-form"],
    onsubmit: submitting(parts, (e) => t("error", { detail: e.message }), async () => {
      const p = await ctx.api("/api/persons", { json: fields.body(true) });
      ctx.navigate("person", { id: p.id });
    }),
  }, fields.elements, h("div", {}, parts.submit), parts.msg));
}
