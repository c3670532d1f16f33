// The console's call window: a panel that stays while the officer moves between pages. It
// rings when a kiosk calls the duty officer (pushed `call` messages), joins a session
// (call_client.js), lists the parties with their state and last identity check, and has
// mute, "start verification" and hang-up.

import { h, replace } from "./dom.js";
import { api } from "./api.js";
import { connect } from "./call_client.js";

const STRINGS = {
  en: {
    ringing: "{from} is calling ({kind})", answer: "Answer", dismiss: "Dismiss", mute: "Mute", unmute: "Unmute",
    verify: "Start verification", hangup: "Hang up", hangup_confirm: "End the session for everyone? Its recording is sealed as a proceeding.",
    connecting: "Connecting…", connected: "Connected", reconnecting: "Connection lost: joining again…", ended: "Session ended",
    failed: "Could not join: {msg}", sealed: "Sealed as proceeding #{id}", close: "Close", session: "Session {id} · {kind}",
    "state.invited": "invited", "state.connected": "connected", "state.dropped": "connection lost", "state.left": "left",
    "check.present": "verified", "check.impostor": "NOT the enrolled person", "check.absent": "nobody in front of the camera", "check.uncertain": "uncertain",
    checked: "{label}: {outcome}", nobody_to_check: "No supervised person in this session to check.",
    "kind.talk": "talk", "kind.mediation": "mediation", "kind.education": "education", "kind.reception": "reception",
    "kind.announcement": "announcement", "kind.warning": "warning", "kind.release": "release", kiosk: "a kiosk",
  },
  "zh-CN": {
    ringing: "{from} 正在呼叫（{kind}）", answer: "接听", dismiss: "忽略", mute: "静音", unmute: "取消静音",
    verify: "开始核验", hangup: "挂断", hangup_confirm: "为所有人结束本次会话？录像将封存为执法过程。",
    connecting: "正在连接…", connected: "已连接", reconnecting: "连接中断，正在重新加入…", ended: "会话已结束",
    failed: "无法加入：{msg}", sealed: "已封存为执法过程 #{id}", close: "关闭", session: "会话 {id} · {kind}",
    "state.invited": "已邀请", "state.connected": "已连接", "state.dropped": "连接中断", "state.left": "已离开",
    "check.present": "核验通过", "check.impostor": "非本人", "check.absent": "镜头前无人", "check.uncertain": "无法确定",
    checked: "{label}：{outcome}", nobody_to_check: "本次会话中没有需要核验的矫正对象。",
    "kind.talk": "谈话", "kind.mediation": "调解", "kind.education": "教育", "kind.reception": "报到",
    "kind.announcement": "宣告", "kind.warning": "训诫", "kind.release": "解矫", kiosk: "自助终端",
  },
};

let env = null;  // {lang(), can(permission)}
let dock = null;
const rings = new Map();  // session id -> message
let current = null;  // {id, kind, conn, parties, state, note}

function t(key, vars) {
  const table = STRINGS[env.lang()] || STRINGS.en;
  return (table[key] ?? STRINGS.en[key] ?? key).replace(/\{(\w+)\}/g, (_, v) => String(vars?.[v] ?? ""));
}

/** Set up the dock once, with the push socket of the console. */
export function installCallDock(socket, { lang, can }) {
  env = { lang, can };
  dock = h("aside", { id: "call-dock", class: "call-dock", hidden: true, "aria-live": "polite" });
  document.body.append(dock);
  socket.on("call", onMessage);
}

function onMessage(msg) {
  if (current && msg.session_id === current.id) {
    current.parties = msg.parties || current.parties;
    if (msg.state === "ended") {
      current.conn?.hangup();
      current.state = "ended";
      if (msg.proceeding_id) current.note = t("sealed", { id: msg.proceeding_id });
    }
  }
  if (msg.state === "ringing" && env.can("proceedings.write") && current?.id !== msg.session_id) rings.set(msg.session_id, msg);
  else rings.delete(msg.session_id);
  draw();
}

/** Join a session (the calls page's Join and Answer buttons; a ringing call's Answer). */
export async function openCall(sessionId, kind = "") {
  if (current?.id === sessionId && current.state !== "ended") return;
  current?.conn?.hangup();
  rings.delete(sessionId);
  current = { id: sessionId, kind, conn: null, parties: [], state: "connecting", note: "", muted: false };
  const mine = current;
  draw();
  const video = dock.querySelector("video.call-video");
  try {
    mine.conn = await connect({
      video,
      join: (sdp) => api(`/api/calls/${encodeURIComponent(sessionId)}/join`, { json: { sdp } }),
      onState: (state, err) => {
        if (mine !== current) return;
        mine.state = state;
        if (state === "failed") mine.note = t("failed", { msg: err?.message || "" });
        draw();
      },
    });
  } catch (e) {
    mine.state = "failed";
    mine.note = t("failed", { msg: e.message });
    draw();
  }
}

function draw() {
  if (!dock) return;
  const parts = [];
  for (const [id, msg] of rings) {
    const from = (msg.parties || []).find((p) => p.role === "kiosk")?.label || t("kiosk");
    parts.push(h("div", { class: "call-ring", dataset: { session: id } },
      h("span", {}, t("ringing", { from, kind: t(`kind.${msg.kind}`) })),
      h("button", { class: "btn btn-primary call-answer", type: "button", onclick: () => answer(id, msg.kind) }, t("answer")),
      h("button", { class: "btn btn-quiet", type: "button", onclick: () => { rings.delete(id); draw(); } }, t("dismiss"))));
  }
  if (current) parts.push(callWindow());
  dock.hidden = parts.length === 0;
  // the <video> stays the same element across redraws: its stream keeps playing
  const video = dock.querySelector("video.call-video") || h("video", { class: "call-video", autoplay: true, playsinline: true });
  replace(dock, ...parts);
  const slot = dock.querySelector(".call-video-slot");
  if (slot) slot.append(video);
}

async function answer(id, kind) {
  try {
    await api(`/api/calls/${encodeURIComponent(id)}/answer`, { method: "POST" });
  } catch (e) {
    rings.delete(id);
    draw();
    return;
  }
  openCall(id, kind);
}

function callWindow() {
  const c = current;
  const live = c.state !== "ended" && c.state !== "failed";
  const list = h("ul", { class: "call-parties" }, ...c.parties.map((p) => h("li", { dataset: { party: p.id, state: p.state, role: p.role } },
    h("span", { class: "call-party-label" }, p.label), " ",
    h("span", { class: "badge call-party-state" }, t(`state.${p.state}`)),
    p.last_check ? h("span", { class: "badge call-check", dataset: { outcome: p.last_check.outcome } }, t(`check.${p.last_check.outcome}`)) : "")));
  const buttons = live ? [
    h("button", { class: "btn call-mute", type: "button", onclick: () => { c.muted = !c.muted; c.conn?.mute(c.muted); draw(); } }, c.muted ? t("unmute") : t("mute")),
    h("button", { class: "btn call-verify", type: "button", onclick: () => verify(c) }, t("verify")),
    h("button", { class: "btn btn-danger call-hangup", type: "button", onclick: () => hangup(c) }, t("hangup")),
  ] : [h("button", { class: "btn call-close", type: "button", onclick: () => { current = null; draw(); } }, t("close"))];
  return h("section", { class: "call-window", dataset: { session: c.id, state: c.state } },
    h("header", { class: "call-head" }, t("session", { id: c.id, kind: t(`kind.${c.kind}`) })),
    h("div", { class: "call-video-slot" }),
    h("p", { class: "call-status" }, t(c.state)),
    c.note ? h("p", { class: "call-note" }, c.note) : "",
    list,
    h("div", { class: "call-buttons" }, ...buttons));
}

async function verify(c) {
  try {
    const results = await api(`/api/calls/${encodeURIComponent(c.id)}/verify`, { method: "POST" });
    c.note = results.length ? results.map((r) => t("checked", { label: r.label, outcome: t(`check.${r.outcome}`) })).join("；") : t("nobody_to_check");
  } catch (e) {
    c.note = e.message;
  }
  draw();
}

async function hangup(c) {
  if (!confirm(t("hangup_confirm"))) return;
  try {
    const r = await api(`/api/calls/${encodeURIComponent(c.id)}/hangup`, { method: "POST" });
    c.note = t("sealed", { id: r.proceeding_id });
  } catch (e) {
    c.note = e.message;
  }
  c.conn?.hangup();
  c.state = "ended";
  draw();
}
