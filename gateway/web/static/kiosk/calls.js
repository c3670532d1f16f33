// Video calls at the kiosk: a call from an officer rings on the terminal (it asks the gateway
// every few seconds while the home screen shows), and "call the duty officer" opens a video
// session that rings on the consoles. Both go through the shared call client.

import { h } from "../dom.js";
import { connect } from "../call_client.js";

const STRINGS = {
  "zh-CN": { ringing: "民警来电（{kind}）", answer: "接听", decline: "拒绝", mute: "静音", unmute: "取消静音", hangup: "挂断",
    calling: "正在呼叫值班民警，请稍候…", connecting: "正在连接…", connected: "通话中", reconnecting: "连接中断，正在重新连接…",
    ended: "通话已结束", home: "返回首页", failed: "通话未接通：{msg}", "kind.talk": "谈话", "kind.mediation": "调解", "kind.education": "教育",
    "kind.reception": "报到", "kind.announcement": "宣告", "kind.warning": "训诫", "kind.release": "解矫" },
  en: { ringing: "An officer is calling ({kind})", answer: "Answer", decline: "Decline", mute: "Mute", unmute: "Unmute", hangup: "Hang up",
    calling: "Calling the duty officer, please wait…", connecting: "Connecting…", connected: "In the call", reconnecting: "Connection lost: reconnecting…",
    ended: "The call has ended", home: "Home", failed: "The call did not go through: {msg}", "kind.talk": "talk", "kind.mediation": "mediation",
    "kind.education": "education", "kind.reception": "reception", "kind.announcement": "announcement", "kind.warning": "warning", "kind.release": "release" },
};

/** `call(path, init)`: the app's fetch with the kiosk key; `screen`, `big`, `home`: its screens. */
export function kioskCalls({ call, screen, big, home, lang }) {
  const t = (k, vars) => ((STRINGS[lang] || STRINGS["zh-CN"])[k] ?? STRINGS.en[k] ?? k).replace(/\{(\w+)\}/g, (_, v) => String(vars?.[v] ?? ""));
  let inCall = false;
  const json = (body) => ({ method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

  async function poll() {
    if (inCall || !document.querySelector(".k-home")) return;
    let ring;
    try { ring = (await call("/api/kiosk/calls")).call; } catch { return; }
    if (!ring || inCall || !document.querySelector(".k-home")) return;
    screen(h("div", { class: "k-ringing", dataset: { session: ring.session_id } },
      h("p", { class: "k-big" }, t("ringing", { kind: t(`kind.${ring.kind}`) })),
      h("div", { class: "k-row" },
        big(t("decline"), async () => { try { await call(`/api/kiosk/calls/${ring.session_id}/leave`, { method: "POST" }); } catch { /* gone */ } home(); }),
        big(t("answer"), () => inSession(ring.session_id, t("connecting")), "k-primary k-answer"))));
  }

  async function callOfficer(personId) {
    let ring;
    try {
      ring = await call("/api/kiosk/calls", json(personId ? { person_id: personId } : {}));
    } catch (e) {
      return false;  // the alert for the duty officer went through the outbox anyway
    }
    await inSession(ring.session_id, t("calling"));
    return true;
  }

  async function inSession(sessionId, first) {
    inCall = true;
    const video = h("video", { class: "k-call-video", autoplay: true, playsinline: true });
    const state = h("p", { class: "k-big k-call-state", role: "status", dataset: { state: "connecting" } }, first);
    const muteBtn = big(t("mute"), null, "k-mute");
    const hangBtn = big(t("hangup"), null, "k-sos k-hangup");
    screen(h("div", { class: "k-call", dataset: { session: sessionId } }, video, state, h("div", { class: "k-row" }, muteBtn, hangBtn)));
    let conn = null;
    let muted = false;
    const finish = (text) => {
      inCall = false;
      conn?.hangup();
      screen(h("div", { class: "k-done", dataset: { state: "ended" } }, h("p", { class: "k-big" }, text), big(t("home"), home, "k-primary")));
    };
    try {
      conn = await connect({
        video,
        join: (sdp) => call(`/api/kiosk/calls/${sessionId}/join`, json({ sdp })),
        onState: (s, err) => {
          state.dataset.state = s;
          if (s === "failed") finish(err?.status === 404 ? t("ended") : t("failed", { msg: err?.message || "" }));
          else if (s !== "ended") state.textContent = s === "connecting" ? first : t(s);
        },
      });
    } catch (e) {
      finish(t("failed", { msg: e.message }));
      return;
    }
    muteBtn.onclick = () => { muted = !muted; conn.mute(muted); muteBtn.textContent = muted ? t("unmute") : t("mute"); };
    hangBtn.onclick = async () => {
      try { await call(`/api/kiosk/calls/${sessionId}/leave`, { method: "POST" }); } catch { /* ended already */ }
      finish(t("ended"));
    };
    // the officer hanging up ends the session: the connection closes, joining again is
    // refused (404), and the client says "failed": the screen says the call has ended
  }

  return { poll, callOfficer, busy: () => inCall };
}
