// The person page's remote check-in links (persons.write): "Send check-in link" makes a one-time
// link valid for the chosen minutes and shows it once, with a copy button and its expiry (the
// gateway keeps only the token's hash, so it cannot be shown again); the person's links are
// listed with their state, and an unused one can be withdrawn.
//
// For tests: the section is .checkin-links; the new link's address is input.link-url; each
// link is a row tr[data-id][data-state] in table.links.
import { h, replace } from "./dom.js";

export const strings = {
  en: {
    "cl.title": "Remote check-in", "cl.send": "Send check-in link", "cl.minutes": "Valid for", "cl.min": "{n} min", "cl.note": "Note",
    "cl.made": "Send this link to the person (text message, WeChat). It is shown only now.", "cl.copy": "Copy", "cl.copied": "Copied",
    "cl.until": "valid until {t}", "cl.none": "No check-in link sent yet.", "cl.revoke": "Withdraw", "cl.confirm_revoke": "Withdraw this link?",
    "cl.col.created": "Sent", "cl.col.by": "By", "cl.col.expires": "Valid until", "cl.col.state": "State", "cl.col.attempts": "Attempts",
    "cl.col.result": "Result", "cl.col.note": "Note",
    "cl.state.unused": "unused", "cl.state.used": "used", "cl.state.expired": "expired", "cl.state.revoked": "withdrawn", "cl.state.exhausted": "attempts used up",
    "cl.checkin": "check-in #{id}: {result}", "cl.error": "Not done: {detail}",
  },
  "zh-CN": {
    "cl.title": "远程签到", "cl.send": "发送签到链接", "cl.minutes": "有效时间", "cl.min": "{n} 分钟", "cl.note": "备注",
    "cl.made": "请将此链接发送给该人员（短信、微信），链接只显示这一次。", "cl.copy": "复制", "cl.copied": "已复制",
    "cl.until": "有效至 {t}", "cl.none": "尚未发送签到链接。", "cl.revoke": "撤回", "cl.confirm_revoke": "撤回此签到链接？",
    "cl.col.created": "发送时间", "cl.col.by": "发送人", "cl.col.expires": "有效至", "cl.col.state": "状态", "cl.col.attempts": "尝试次数",
    "cl.col.result": "结果", "cl.col.note": "备注",
    "cl.state.unused": "未使用", "cl.state.used": "已使用", "cl.state.expired": "已过期", "cl.state.revoked": "已撤回", "cl.state.exhausted": "尝试次数已用完",
    "cl.checkin": "签到 #{id}：{result}", "cl.error": "未完成：{detail}",
  },
};

const MINUTES = [5, 15, 30, 60, 120];

/** {el, reload()} for the person `personId`. */
export function checkinLinks(ctx, personId) {
  const { t } = ctx;
  const base = `/api/persons/${encodeURIComponent(personId)}/checkin-links`;
  const minutes = h("select", { name: "valid_minutes" }, MINUTES.map((n) => h("option", { value: String(n), selected: n === 15 }, t("cl.min", { n }))));
  const note = h("input", { name: "note", maxlength: 500, class: "cl-note" });
  const made = h("div", { class: "link-made", hidden: true, role: "status" });
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const tbody = h("tbody");
  const table = h("table", { class: "data links" },
    h("thead", {}, h("tr", {}, ["created", "by", "expires", "state", "attempts", "result", "note", ""].map((c) => h("th", {}, c ? t(`cl.col.${c}`) : "")))), tbody);
  const empty = h("p", { class: "muted", hidden: true }, t("cl.none"));

  function showMade(link) {
    const url = h("input", { class: "link-url mono", readonly: true, value: link.url, "aria-label": t("cl.title"), size: 60 });
    const copied = h("span", { class: "muted small", role: "status" });
    const copy = h("button", { type: "button", class: "btn btn-copy", onclick: async () => {
      url.select();
      try {
        await navigator.clipboard.writeText(link.url);
      } catch {
        document.execCommand?.("copy");  // without the async clipboard (plain http): the selection
      }
      copied.textContent = t("cl.copied");
    } }, t("cl.copy"));
    replace(made, h("p", {}, t("cl.made")), h("div", { class: "toolbar" }, url, " ", copy, " ", copied),
      h("p", { class: "muted", dataset: { role: "expiry" } }, t("cl.until", { t: ctx.fmt.time(link.expires_at) })));
    made.hidden = false;
    made.dataset.id = String(link.id);
  }

  function row(l) {
    const result = l.checkin_id ? ctx.link("checkins", {}, t("cl.checkin", { id: l.checkin_id, result: t(`result.${l.result}`) })) : "–";
    const revoke = l.state === "unused" ? h("button", { type: "button", class: "btn btn-quiet btn-revoke", onclick: async () => {
      if (!confirm(t("cl.confirm_revoke"))) return;
      try {
        await ctx.api(`${base}/${l.id}`, { method: "DELETE" });
        await reload();
      } catch (e) { if (e?.name !== "AbortError") fail(e); }
    } }, t("cl.revoke")) : null;
    return h("tr", { dataset: { id: String(l.id), state: l.state } },
      h("td", { class: "nowrap" }, ctx.fmt.time(l.created_at)), h("td", {}, l.created_by), h("td", { class: "nowrap" }, ctx.fmt.time(l.expires_at)),
      h("td", {}, h("span", { class: ["chip", `link-${l.state}`] }, t(`cl.state.${l.state}`))), h("td", {}, `${l.attempts} / ${l.max_attempts}`),
      h("td", {}, result), h("td", {}, l.note || ""), h("td", {}, revoke));
  }

  function fail(e) {
    error.textContent = t("cl.error", { detail: e.message });
    error.hidden = false;
  }

  async function reload() {
    const list = await ctx.api(base);
    replace(tbody, list.map(row));
    table.hidden = !list.length;
    empty.hidden = !!list.length;
  }

  const send = h("button", { type: "submit", class: "btn btn-primary btn-send-link" }, t("cl.send"));
  const form = h("form", { class: "toolbar link-form", onsubmit: async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    send.disabled = true;
    try {
      const link = await ctx.api(base, { json: { valid_minutes: Number(minutes.value), note: note.value.trim() || null } });
      note.value = "";
      showMade(link);
      await reload();
    } catch (e) {
      if (e?.name !== "AbortError") fail(e);
    } finally {
      send.disabled = false;
    }
  } }, h("label", {}, t("cl.minutes"), " ", minutes), " ", h("label", {}, t("cl.note"), " ", note), " ", send);

  const el = h("section", { class: "checkin-links" }, form, error, made, h("div", { class: "table-wrap" }, table), empty);
  return { el, reload };
}
