// The signed-in user's own account: who they are, their unit, and a new password (the
// current one is asked again; the user's other sessions end, this one continues).

import { formParts, h, replace, submitting } from "../dom.js";

export const strings = {
  en: {
    "who": "Signed in as {name} ({role}), unit {unit}.",
    "title": "Change my password", "current": "Current password", "new": "New password (8 characters or more)",
    "submit": "Change password", "done": "Password changed. Your other sessions have ended.", "error": "Not done: {detail}",
  },
  "zh-CN": {
    "who": "当前用户：{name}（{role}），所属单位：{unit}。",
    "title": "修改我的密码", "current": "当前密码", "new": "新密码（至少 8 位）",
    "submit": "修改密码", "done": "密码已修改，您在其他设备上的登录已失效。", "error": "未完成：{detail}",
  },
};

export async function render(root, ctx) {
  const { t } = ctx;
  if (!document.querySelector('link[data-page-css="units"]')) {
    document.head.append(h("link", { rel: "stylesheet", href: "/static/pages/units.css", dataset: { pageCss: "units" } }));
  }
  const me = await ctx.api("/api/auth/me");
  const parts = formParts(t("submit"));
  const current = h("input", { type: "password", name: "current_password", required: true, autocomplete: "current-password" });
  const next = h("input", { type: "password", name: "new_password", required: true, minlength: 8, maxlength: 200, autocomplete: "new-password" });
  replace(root,
    h("p", { class: "account-who" }, t("who", { name: me.username, role: me.role, unit: me.unit_id })),
    h("section", { class: "units-section" }, h("h2", {}, t("title")), h("form", {
      class: ["units-form", "password-form"],
      onsubmit: submitting(parts, (e) => t("error", { detail: e.message }), async () => {
        await ctx.api("/api/auth/password", { json: { current_password: current.value, new_password: next.value } });
        current.value = "";
        next.value = "";
        return t("done");
      }),
    }, h("label", {}, t("current"), current), h("label", {}, t("new"), next), h("div", {}, parts.submit), parts.msg, parts.ok)));
}
