// Console users (admins, users.write): the users of the admin's units; create one in a unit
// with a role; change a role, move to another unit, disable or enable, reset a password.
// Every change revokes the user's sessions (server side). The server's refusal is shown
// next to the form or the row that asked.

import { formParts, h, replace, select, submitting } from "../dom.js";

export const strings = {
  en: {
    "col.username": "User", "col.role": "Role", "col.unit": "Unit", "col.state": "State", "col.actions": "Change",
    "state.active": "active", "state.disabled": "disabled",
    "role.admin": "Administrator", "role.officer": "Officer", "role.monitor": "Monitor",
    "add.title": "Add a user", "add.username": "User name", "add.password": "Password (8 characters or more)",
    "add.role": "Role", "add.unit": "Unit", "add.submit": "Add user", "add.done": "User {name} added.",
    "disable": "Disable", "enable": "Enable", "reset": "New password", "reset.placeholder": "new password", "saved": "Saved.",
    "error": "Not done: {detail}",
  },
  "zh-CN": {
    "col.username": "用户", "col.role": "角色", "col.unit": "单位", "col.state": "状态", "col.actions": "修改",
    "state.active": "启用", "state.disabled": "已停用",
    "role.admin": "管理员", "role.officer": "矫正工作人员", "role.monitor": "监控值守人员",
    "add.title": "新增用户", "add.username": "用户名", "add.password": "密码（至少 8 位）",
    "add.role": "角色", "add.unit": "单位", "add.submit": "新增用户", "add.done": "已新增用户：{name}",
    "disable": "停用", "enable": "启用", "reset": "重置密码", "reset.placeholder": "新密码", "saved": "已保存。",
    "error": "未完成：{detail}",
  },
};

const ROLES = ["admin", "officer", "monitor"];

export async function render(root, ctx) {
  const { t } = ctx;
  if (!document.querySelector('link[data-page-css="units"]')) {
    document.head.append(h("link", { rel: "stylesheet", href: "/static/pages/units.css", dataset: { pageCss: "units" } }));
  }
  const tbody = h("tbody");
  const forms = h("div", { class: "units-forms" });
  let units = [];
  const roleOptions = () => ROLES.map((r) => [r, t(`role.${r}`)]);
  const unitOptions = () => units.map((u) => [u.id, `${"\u00a0\u00a0".repeat(Math.max(0, u.path.split("/").filter(Boolean).length - 1))}${u.name}`]);

  async function change(u, body, msg) {
    msg.hidden = true;
    try {
      await ctx.api(`/api/users/${u.id}`, { method: "PATCH", json: body });
      await load();
    } catch (e) {
      if (e?.name === "AbortError") return;
      msg.textContent = t("error", { detail: e.message });
      msg.hidden = false;
    }
  }

  function row(u) {
    const msg = h("div", { class: "form-error small", role: "alert", hidden: true });
    const role = select(roleOptions(), u.role, { name: "role", onchange: () => change(u, { role: role.value }, msg) });
    const unit = select(unitOptions(), u.unit_id, { name: "unit_id", onchange: () => change(u, { unit_id: unit.value }, msg) });
    const password = h("input", { type: "password", name: "password", minlength: 8, maxlength: 200, placeholder: t("reset.placeholder"), autocomplete: "new-password" });
    return h("tr", { dataset: { id: u.id, username: u.username, disabled: u.disabled ? "1" : "0" } },
      h("td", { class: "mono" }, u.username),
      h("td", {}, role),
      h("td", {}, unit),
      h("td", {}, t(u.disabled ? "state.disabled" : "state.active")),
      h("td", {},
        h("button", { type: "button", class: "btn btn-quiet btn-toggle", onclick: () => change(u, { disabled: !u.disabled }, msg) }, t(u.disabled ? "enable" : "disable")),
        " ", password,
        h("button", { type: "button", class: "btn btn-quiet btn-reset", onclick: () => change(u, { password: password.value }, msg) }, t("reset")),
        msg));
  }

  function addForm() {
    const parts = formParts(t("add.submit"));
    const username = h("input", { name: "username", required: true, maxlength: 64, autocomplete: "off" });
    const password = h("input", { name: "password", type: "password", required: true, minlength: 8, maxlength: 200, autocomplete: "new-password" });
    const role = select(roleOptions(), "officer", { name: "role" });
    const unit = select(unitOptions(), units[0]?.id || "", { name: "unit_id" });
    return h("section", { class: "units-section" }, h("h2", {}, t("add.title")), h("form", {
      class: ["units-form", "users-add"],
      onsubmit: submitting(parts, (e) => t("error", { detail: e.message }), async () => {
        const u = await ctx.api("/api/users", { json: { username: username.value.trim(), password: password.value, role: role.value, unit_id: unit.value } });
        await load();
        // load() rebuilt the forms: the message goes on the new one
        const fresh = forms.querySelector("form.users-add [role=status]");
        if (fresh) { fresh.textContent = t("add.done", { name: u.username }); fresh.hidden = false; }
      }),
    }, h("label", {}, t("add.username"), username), h("label", {}, t("add.password"), password),
    h("label", {}, t("add.role"), role), h("label", {}, t("add.unit"), unit), h("div", {}, parts.submit), parts.msg, parts.ok));
  }

  async function load() {
    const [list, tree] = await Promise.all([ctx.api("/api/users"), ctx.api("/api/units")]);
    units = [...tree].sort((a, b) => a.path.localeCompare(b.path));
    replace(tbody, list.map(row));
    replace(forms, addForm());
  }

  replace(root,
    h("div", { class: "table-wrap" },
      h("table", { class: "data users" },
        h("thead", {}, h("tr", {}, ["username", "role", "unit", "state", "actions"].map((c) => h("th", {}, t(`col.${c}`))))),
        tbody)),
    forms);
  await load();
}
