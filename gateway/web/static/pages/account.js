// The signed-in user's own account: who they are, their unit, and a new password (the
// current one is asked again; the user's other sessions end, this one continues).

import { h, replace } from "../dom.js";

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
  const msg = h("p", { class: "form-error", role: "alert", hidden: true });
  const ok = h("p", { class: "muted", role: "status", hidden: true });
  const current = h("input", { type: "password", name: "current_password", required: true, autocomplete: "current-password" });
  const next = h("input", { type: "password", name: "new_password", required: true, minlength: 8, maxlength: 200, autocomplete: "new-password" });
  const submit = h("button", { class: "btn btn-primary", type: "submit" }, t("submit"));
  replace(root,
    h("p", { class: "account-who" }, t("who", { name: me.username, role: me.role, unit: me.unit_id })),
    h("section", { class: "units-section" }, h("h2", {}, t("title")), h("form", {
      class: ["units-form", "password-form"],
      onsubmit: async (ev) => {
        ev.preventDefault();
        msg.hidden = true;
        ok.hidden = true;
        submit.disabled = true;
        try {
          await ctx.api("/api/auth/password", { json: { current_password: current.value, new_password: next.value } });
          current.value = "";
          next.value = "";
          ok.textContent = t("done");
          ok.hidden = false;
        } catch (e) {
          if (e?.name === "AbortError") return;
          msg.textContent = t("error", { detail: e.message });
          msg.hidden = false;
        } finally {
          submit.disabled = false;
        }
      },
    }, h("label", {}, t("current"), current), h("label", {}, t("new"), next), h("div", {}, submit), msg, ok)));
}
