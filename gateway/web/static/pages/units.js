// Organisation units (GET /api/units): the tree the user reaches (their unit and every unit
// below it), indented by depth. Administrators add a child unit (POST /api/units) and
// rename or move a unit (PATCH /api/units/{id}); the server refuses what is not theirs.

import { formParts, h, replace, select, submitting } from "../dom.js";

export const strings = {
  en: {
    "col.name": "Name",
    "col.id": "ID",
    "col.parent": "Parent",
    "col.source": "Source",
    "col.updated": "Updated",
    "count": "{n} units",
    "none": "No units.",
    "add.title": "Add a unit",
    "add.id": "ID (lower-case letters, digits, - _)",
    "add.name": "Name",
    "add.parent": "Under",
    "add.submit": "Add unit",
    "add.done": "Unit {name} added.",
    "edit.title": "Rename or move a unit",
    "edit.unit": "Unit",
    "edit.name": "New name",
    "edit.parent": "Move under",
    "edit.submit": "Save",
    "edit.done": "Unit {name} saved.",
    "source.system": "system",
    "source.config": "configuration",
    "source.api": "console",
  },
  "zh-CN": {
    "col.name": "名称",
    "col.id": "编号",
    "col.parent": "上级单位",
    "col.source": "来源",
    "col.updated": "更新时间",
    "count": "共 {n} 个单位",
    "none": "暂无单位。",
    "add.title": "新增下级单位",
    "add.id": "编号（小写字母、数字、- _）",
    "add.name": "名称",
    "add.parent": "上级单位",
    "add.submit": "新增单位",
    "add.done": "已新增单位：{name}",
    "edit.title": "重命名或调整隶属",
    "edit.unit": "单位",
    "edit.name": "新名称",
    "edit.parent": "调整到",
    "edit.submit": "保存",
    "edit.done": "已保存单位：{name}",
    "source.system": "系统",
    "source.config": "配置文件",
    "source.api": "控制台",
  },
};

function depth(u) {
  return Math.max(0, u.path.split("/").filter(Boolean).length - 1);
}

export async function render(root, ctx) {
  const { t } = ctx;
  if (!document.querySelector('link[data-page-css="units"]')) {
    document.head.append(h("link", { rel: "stylesheet", href: "/static/pages/units.css", dataset: { pageCss: "units" } }));
  }
  // the units API names its own permission; an administrator may in any case
  const admin = ctx.can("units.write") || ctx.user.role === "admin";
  let units = [];
  const tbody = h("tbody");
  const count = h("span", { class: "muted" });
  const forms = h("div", { class: "units-forms" });

  async function load() {
    units = [...await ctx.api("/api/units")].sort((a, b) => a.path.localeCompare(b.path));
    const names = new Map(units.map((u) => [u.id, u.name]));
    count.textContent = t("count", { n: units.length });
    replace(tbody, units.length === 0
      ? h("tr", { class: "empty" }, h("td", { colspan: 5, class: "muted" }, t("none")))
      : units.map((u) => h("tr", { dataset: { id: u.id, depth: depth(u) } },
        // the indent is computed per row: set through the CSSOM, as the CSP allows
        h("td", { class: "unit-name", style: { paddingLeft: `${12 + depth(u) * 22}px` } }, u.name),
        h("td", { class: "mono" }, u.id),
        h("td", {}, u.parent_id ? names.get(u.parent_id) || u.parent_id : h("span", { class: "muted" }, "—")),
        h("td", {}, t(`source.${u.source}`)),
        h("td", { class: "nowrap" }, ctx.fmt.time(u.updated_at)))));
    if (admin) replace(forms, addForm(), editForm());
  }

  const options = () => units.map((u) => [u.id, `${"\u00a0\u00a0".repeat(depth(u))}${u.name}`]);

  function form(cls, title, fields, submitLabel, send) {
    const parts = formParts(submitLabel);
    const el = h("form", {
      class: ["units-form", cls],
      onsubmit: submitting(parts, (e) => t("error", { detail: e.message }), async () => {
        const done = await send();
        await load();
        // load() rebuilt the forms: the message goes on the new one
        const fresh = forms.querySelector(`form.${cls} [role=status]`);
        if (fresh) { fresh.textContent = done; fresh.hidden = false; }
      }),
    }, fields, h("div", {}, parts.submit), parts.msg, parts.ok);
    return h("section", { class: "units-section" }, h("h2", {}, title), el);
  }

  function addForm() {
    const id = h("input", { name: "id", required: true, maxlength: 64, pattern: "[a-z0-9][a-z0-9_\\-]{0,63}", autocomplete: "off" });
    const name = h("input", { name: "name", required: true, maxlength: 200 });
    const parent = select(options(), units[0]?.id || "", { name: "parent_id" });
    return form("units-add", t("add.title"), [
      h("label", {}, t("add.parent"), parent), h("label", {}, t("add.id"), id), h("label", {}, t("add.name"), name),
    ], t("add.submit"), async () => {
      const u = await ctx.api("/api/units", { json: { id: id.value.trim(), name: name.value.trim(), parent_id: parent.value } });
      return t("add.done", { name: u.name });
    });
  }

  function editForm() {
    const unit = select(options(), units[0]?.id || "", { name: "unit" });
    const name = h("input", { name: "name", maxlength: 200 });
    const parent = select([["", "—"], ...options()], "", { name: "parent_id" });
    const fill = () => {
      const u = units.find((x) => x.id === unit.value);
      name.value = u?.name || "";
      parent.value = "";
    };
    unit.addEventListener("change", fill);
    fill();
    return form("units-edit", t("edit.title"), [
      h("label", {}, t("edit.unit"), unit), h("label", {}, t("edit.name"), name), h("label", {}, t("edit.parent"), parent),
    ], t("edit.submit"), async () => {
      const u = units.find((x) => x.id === unit.value);
      const body = {};
      if (name.value.trim() && name.value.trim() !== u?.name) body.name = name.value.trim();
      if (parent.value && parent.value !== u?.parent_id) body.parent_id = parent.value;
      const saved = await ctx.api(`/api/units/${encodeURIComponent(unit.value)}`, { method: "PATCH", json: body });
      return t("edit.done", { name: saved.name });
    });
  }

  replace(root,
    h("div", { class: "toolbar" }, h("span", { class: "spacer" }), count),
    h("div", { class: "table-wrap" },
      h("table", { class: "data units" },
        h("thead", {}, h("tr", {},
          h("th", {}, t("col.name")), h("th", {}, t("col.id")), h("th", {}, t("col.parent")),
          h("th", {}, t("col.source")), h("th", {}, t("col.updated")))),
        tbody)),
    forms);
  await load();
}
