// Remote video sessions (远程视频): set one up (a kiosk to call, parties to send a join link
// to), join or answer one in the call window (static/call_dock.js), and the sessions of the
// last days with their proceedings. Updates come pushed (`call`).

import { h, replace, select, formParts, submitting } from "../dom.js";
import { openCall } from "../call_dock.js";

export const strings = {
  en: {
    title: "Video sessions", new: "New session", kind: "Kind", person: "Supervised person", none_person: "—", kiosk: "Call a kiosk",
    no_kiosk: "no kiosk", links: "Parties with a join link", label: "Name in the session", party_person: "Is the supervised person",
    add_party: "Add a party", start: "Start and join", created: "Send each party their link (shown once):", copy: "Copy", copied: "Copied",
    running: "Running now", ended: "Ended", empty: "No sessions.", join: "Join", answer: "Answer", proceeding: "Proceeding #{id}",
    "col.kind": "Kind", "col.person": "Person", "col.parties": "Parties", "col.started": "Started", "col.state": "State", "col.by": "By",
    "state.ringing": "ringing", "state.active": "running", "state.ended": "ended",
    "kind.talk": "talk", "kind.mediation": "mediation", "kind.education": "education (identity checks)", "kind.reception": "reception",
    "kind.announcement": "announcement", "kind.warning": "warning", "kind.release": "release",
  },
  "zh-CN": {
    title: "远程视频", new: "发起会话", kind: "类型", person: "矫正对象", none_person: "—", kiosk: "呼叫自助终端",
    no_kiosk: "不呼叫终端", links: "通过链接加入的参与方", label: "会话中的称呼", party_person: "即矫正对象本人",
    add_party: "添加参与方", start: "发起并加入", created: "请把链接分别发给各参与方（只显示一次）：", copy: "复制", copied: "已复制",
    running: "进行中", ended: "已结束", empty: "暂无会话。", join: "加入", answer: "接听", proceeding: "执法过程 #{id}",
    "col.kind": "类型", "col.person": "人员", "col.parties": "参与方", "col.started": "开始", "col.state": "状态", "col.by": "发起人",
    "state.ringing": "呼叫中", "state.active": "进行中", "state.ended": "已结束",
    "kind.talk": "谈话", "kind.mediation": "调解", "kind.education": "教育（核验身份）", "kind.reception": "报到",
    "kind.announcement": "宣告", "kind.warning": "训诫", "kind.release": "解矫",
  },
};

const KINDS = ["talk", "mediation", "education", "reception", "announcement", "warning", "release"];

export async function render(root, ctx) {
  const { t } = ctx;
  const canWrite = ctx.can("proceedings.write");
  const [persons, devices] = canWrite ? await Promise.all([ctx.api("/api/persons"), ctx.api("/api/devices")]) : [[], []];
  const kiosks = devices.filter((d) => d.kind === "kiosk");
  const running = h("tbody");
  const ended = h("tbody");

  function row(c) {
    const person = c.person_id ? ctx.link("person", { id: c.person_id }, c.person_id) : "";
    const action = c.state === "ended"
      ? (c.proceeding_id ? ctx.link("recordings", {}, t("proceeding", { id: c.proceeding_id })) : "")
      : canWrite ? h("button", { class: ["btn", c.state === "ringing" ? "btn-primary" : ""], type: "button", dataset: { action: "join" },
        onclick: () => openCall(c.id, c.kind) }, c.state === "ringing" ? t("answer") : t("join")) : "";
    return h("tr", { dataset: { id: c.id, state: c.state } },
      h("td", {}, ctx.fmt.time(c.created_at)),
      h("td", {}, t(`kind.${c.kind}`)),
      h("td", {}, person),
      h("td", {}, c.parties.map((p) => h("span", { class: "chip", dataset: { state: p.state } }, p.label))),
      h("td", {}, c.created_by),
      h("td", {}, h("span", { class: "badge" }, t(`state.${c.state}`))),
      h("td", {}, action));
  }

  async function load() {
    const calls = await ctx.api("/api/calls?limit=100");
    const now = calls.filter((c) => c.state !== "ended");
    const old = calls.filter((c) => c.state === "ended");
    replace(running, ...(now.length ? now.map(row) : [h("tr", {}, h("td", { colspan: 7, class: "muted" }, t("empty")))]));
    replace(ended, ...(old.length ? old.map(row) : [h("tr", {}, h("td", { colspan: 7, class: "muted" }, t("empty")))]));
  }

  const head = () => h("thead", {}, h("tr", {}, ...["col.started", "col.kind", "col.person", "col.parties", "col.by", "col.state"].map((k) => h("th", {}, t(k))), h("th")));
  const parts = [];
  if (canWrite) parts.push(newSession());
  parts.push(h("h2", {}, t("running")), h("table", { class: "table calls-running" }, head(), running),
    h("h2", {}, t("ended")), h("table", { class: "table calls-ended" }, head(), ended));
  replace(root, ...parts);
  await load();
  let timer = null;
  ctx.on("call", () => { clearTimeout(timer); timer = setTimeout(() => load().catch(() => {}), 300); });
  if (ctx.params.answer) openCall(ctx.params.answer);

  function newSession() {
    const personOpts = [["", t("none_person")], ...persons.map((p) => [p.id, `${p.name} (${p.id})`])];
    const kind = select(KINDS.map((k) => [k, t(`kind.${k}`)]), "talk", { name: "kind" });
    const person = select(personOpts, ctx.params.person || "", { name: "person_id" });
    const kiosk = select([["", t("no_kiosk")], ...kiosks.map((k) => [k.id, k.name || k.id])], "", { name: "device_id" });
    const partyRows = h("div", { class: "call-party-rows" });
    const addParty = () => partyRows.append(h("div", { class: "call-party-row" },
      h("label", {}, t("label"), h("input", { name: "label", maxlength: 100 })),
      h("label", { class: "check" }, h("input", { type: "checkbox", name: "is_person" }), t("party_person"))));
    addParty();
    const out = h("div", { class: "call-links" });
    const p = formParts(t("start"));
    const form = h("form", { class: "form call-new", onsubmit: submitting(p, (e) => e.message, async () => {
      const parties = [];
      if (kiosk.value) parties.push({ role: "kiosk", device_id: kiosk.value });
      for (const r of partyRows.querySelectorAll(".call-party-row")) {
        const label = r.querySelector("[name=label]").value.trim();
        if (!label) continue;
        const isPerson = r.querySelector("[name=is_person]").checked && person.value;
        parties.push({ role: "link", label, ...(isPerson ? { person_id: person.value } : {}) });
      }
      const made = await ctx.api("/api/calls", { json: { kind: kind.value, person_id: person.value || null, parties } });
      replace(out, ...(made.links.length ? [h("p", {}, t("created")), h("ul", {}, ...made.links.map(linkItem))] : []));
      openCall(made.session.id, made.session.kind);
      await load();
    }) },
    h("h2", {}, t("new")),
    h("label", {}, t("kind"), kind), h("label", {}, t("person"), person), h("label", {}, t("kiosk"), kiosk),
    h("fieldset", {}, h("legend", {}, t("links")), partyRows,
      h("button", { class: "btn btn-quiet", type: "button", onclick: addParty }, t("add_party"))),
    p.submit, p.msg, out);
    return form;
  }

  function linkItem(l) {
    const input = h("input", { class: "mono call-link", readonly: true, value: l.url, dataset: { party: l.label } });
    const btn = h("button", { class: "btn btn-quiet", type: "button", onclick: async () => {
      try { await navigator.clipboard.writeText(l.url); btn.textContent = t("copied"); } catch { input.select(); }
    } }, t("copy"));
    return h("li", {}, h("span", {}, l.label), " ", input, " ", btn);
  }
}
