// The join page of a remote video session (/call#<token>): a party opens the link the officer
// sent them (a phone, a PC), sees what it is for, joins with camera and microphone, and sees
// and hears everyone (one composite picture from the gateway). The token comes in the URL's
// fragment, which browsers never send to a server (so it is in no access log); it is kept in
// this tab's sessionStorage so that a reload joins again, and removed from the address bar.

import { h, replace } from "../dom.js";
import { connect } from "../call_client.js";

const STRINGS = {
  "zh-CN": {
    title: "远程视频", invite: "{officer}邀请您参加远程{kind}。", as: "您在会话中的称呼：{label}", join: "加入", mute: "静音", unmute: "取消静音",
    leave: "离开", left: "您已离开会话。", ended: "会话已结束。", connecting: "正在连接…", connected: "已连接", reconnecting: "连接中断，正在重新加入…",
    failed: "无法加入：{msg}", no_link: "链接无效：请使用民警发给您的完整链接。", unknown: "此链接无效。", expired: "此链接已过期或会话已结束。",
    camera: "请允许使用摄像头和麦克风。", officer: "民警",
    "kind.talk": "谈话", "kind.mediation": "调解", "kind.education": "教育", "kind.reception": "报到", "kind.announcement": "宣告",
    "kind.warning": "训诫", "kind.release": "解矫",
  },
  en: {
    title: "Video session", invite: "{officer} invites you to a remote {kind} session.", as: "Your name in the session: {label}", join: "Join", mute: "Mute",
    unmute: "Unmute", leave: "Leave", left: "You left the session.", ended: "The session has ended.", connecting: "Connecting…", connected: "Connected",
    reconnecting: "Connection lost: joining again…", failed: "Could not join: {msg}", no_link: "This link is incomplete: use the whole link you were sent.",
    unknown: "This link is not valid.", expired: "This link has expired, or the session has ended.", camera: "Please allow the camera and microphone.",
    officer: "The officer",
    "kind.talk": "talk", "kind.mediation": "mediation", "kind.education": "education", "kind.reception": "reception", "kind.announcement": "announcement",
    "kind.warning": "warning", "kind.release": "release",
  },
};
const TOKEN_KEY = "gateway.call.token";

// zh-CN first; a browser set to English gets English
const lang = (navigator.language || "").toLowerCase().startsWith("en") ? "en" : "zh-CN";
const t = (k, vars) => (STRINGS[lang][k] ?? STRINGS.en[k] ?? k).replace(/\{(\w+)\}/g, (_, v) => String(vars?.[v] ?? ""));
const main = document.getElementById("c-main");

const fromHash = location.hash.slice(1);
if (fromHash) {
  sessionStorage.setItem(TOKEN_KEY, fromHash);
  history.replaceState(null, "", location.pathname);
}
const token = sessionStorage.getItem(TOKEN_KEY);

async function linkApi(path, init = {}) {
  const res = await fetch(path, { ...init, headers: { ...(init.headers || {}), "X-Call-Token": token } });
  const body = res.headers.get("content-type")?.includes("json") ? await res.json() : null;
  if (!res.ok) {
    const err = new Error(typeof body?.detail === "string" ? body.detail : res.statusText);
    err.status = res.status;
    throw err;
  }
  return body;
}

function problem(text) {
  replace(main, h("h1", { class: "c-title" }, t("title")), h("p", { class: "c-error", role: "alert" }, text));
}

async function start() {
  document.documentElement.lang = lang;
  document.title = t("title");
  if (!token) return problem(t("no_link"));
  let info;
  try {
    info = await linkApi("/api/call-link");
  } catch (e) {
    return problem(e.status === 404 ? t("unknown") : e.status === 410 ? t("expired") : t("failed", { msg: e.message }));
  }
  replace(main, h("section", { class: "c-invite", dataset: { session: info.session_id } },
    h("h1", { class: "c-title" }, t("title")),
    h("p", {}, t("invite", { officer: info.officer || t("officer"), kind: t(`kind.${info.kind}`) })),
    h("p", { class: "c-text" }, t("as", { label: info.label })),
    h("p", { class: "c-text" }, t("camera")),
    h("button", { type: "button", class: "c-btn c-primary c-join", onclick: join }, t("join"))));
  document.body.dataset.ready = "1";
}

async function join() {
  const video = h("video", { class: "c-video", autoplay: true, playsinline: true });
  const state = h("p", { class: "c-state", role: "status", dataset: { state: "connecting" } }, t("connecting"));
  let muted = false;
  const muteBtn = h("button", { type: "button", class: "c-btn c-mute" }, t("mute"));
  const leaveBtn = h("button", { type: "button", class: "c-btn c-danger c-leave" }, t("leave"));
  replace(main, h("h1", { class: "c-title" }, t("title")), video, state, h("div", { class: "c-row" }, muteBtn, leaveBtn));
  let conn;
  try {
    conn = await connect({
      video,
      join: (sdp) => linkApi("/api/call-link/join", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ sdp }) }),
      onState: (s, err) => {
        state.dataset.state = s;
        state.textContent = s === "failed" ? (err?.status === 410 ? t("ended") : t("failed", { msg: err?.message || "" })) : t(s);
      },
    });
  } catch (e) {
    return problem(t("failed", { msg: e.message }));
  }
  muteBtn.onclick = () => { muted = !muted; conn.mute(muted); muteBtn.textContent = muted ? t("unmute") : t("mute"); };
  leaveBtn.onclick = async () => {
    conn.hangup();
    try { await linkApi("/api/call-link/leave", { method: "POST" }); } catch { /* ended already */ }
    sessionStorage.removeItem(TOKEN_KEY);
    problem(t("left"));
  };
}

start();
