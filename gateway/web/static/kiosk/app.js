// The kiosk terminal's app (/kiosk): pairing with a one-time code from the console, then
// check-ins with the camera, written reports (思想汇报), leave requests, a call for the duty
// officer and SOS, with large touch targets, zh-CN first.
//
// The terminal acts with its own device key (kept in localStorage: the kiosk is a dedicated
// machine, and the key only lets it act as this kiosk). Everything it does goes through the
// outbox (queue.js) and is sent from there: while the gateway is out of reach the screen says
// so and the work waits on disk; when it is back the queue is sent in order, each item once
// (events by event_id, check-ins by client_ref; the gateway applies a replay once).

import { h, replace } from "../dom.js";
import * as queue from "./queue.js";
import { kioskCalls } from "./calls.js";
import { captureFrames, openCamera, stopCamera as stopStream } from "../capture.js";

const STRINGS = {
  "zh-CN": {
    title: "自助终端", pair_title: "终端配对", pair_help: "请输入管理后台显示的 8 位配对码。", pair: "配对", clear: "清除",
    paired: "已配对：{name}", online: "在线", offline: "离线：操作已保存，恢复连接后自动提交（待提交 {n} 项）", sending: "正在提交 {n} 项…",
    checkin: "签到", report: "思想汇报", leave: "请假申请", call: "呼叫值班民警", sos: "紧急求助",
    person: "人员编号", next: "下一步", back: "返回", submit: "提交", text: "内容", from: "开始日期", to: "结束日期", reason: "事由",
    look: "请正对摄像头", hold: "请保持不动…", capturing: "正在采集…", no_camera: "无法使用摄像头：{detail}",
    accepted: "签到成功", rejected: "签到未通过：{reason}", retry: "请重新签到：{reason}", queued: "已保存，恢复连接后自动提交",
    sent: "已提交", sos_confirm: "确认发出紧急求助？", sos_sent: "紧急求助已发出，请原地等待。", call_sent: "已通知值班民警，请稍候。",
    error: "未完成：{detail}", home: "返回首页", challenge: "请{action}",
  },
  en: {
    title: "Self-service kiosk", pair_title: "Pair this terminal", pair_help: "Type the 8-digit pairing code shown in the console.", pair: "Pair", clear: "Clear",
    paired: "Paired: {name}", online: "Online", offline: "Offline: what you do is kept and sent when the gateway is back ({n} waiting)", sending: "Sending {n}…",
    checkin: "Check in", report: "Written report", leave: "Leave request", call: "Call the duty officer", sos: "SOS",
    person: "Person ID", next: "Next", back: "Back", submit: "Submit", text: "Text", from: "From", to: "To", reason: "Reason",
    look: "Look at the camera", hold: "Hold still…", capturing: "Capturing…", no_camera: "No camera: {detail}",
    accepted: "Checked in", rejected: "Check-in refused: {reason}", retry: "Please check in again: {reason}", queued: "Kept; sent when the gateway is back",
    sent: "Sent", sos_confirm: "Send an SOS?", sos_sent: "SOS sent. Please wait here.", call_sent: "The duty officer has been called. Please wait.",
    error: "Not done: {detail}", home: "Home", challenge: "Please {action}",
  },
};
// shown when the terminal picks the challenge itself (the gateway out of reach); the gateway's
// own prompts come with its challenges
const PROMPTS = {
  turn_left: { "zh-CN": "请慢慢把头转向左边", en: "Slowly turn your head to your left" },
  turn_right: { "zh-CN": "请慢慢把头转向右边", en: "Slowly turn your head to your right" },
  blink: { "zh-CN": "请眨眼", en: "Blink your eyes" },
  closer: { "zh-CN": "请慢慢靠近摄像头，并眨一下眼", en: "Slowly move closer to the camera and blink" },
};
const LANG_KEY = "gateway.kiosk.lang";
const REQUIRED_KEY = "gateway.kiosk.challenge_required";
const KEY = "gateway.kiosk.device";
const FRAMES = 5;
const FRAME_MS = 180;
const FLUSH_MS = 5000;
const BEAT_MS = 30000;

let lang = localStorage.getItem(LANG_KEY) || document.documentElement.dataset.defaultLang || "zh-CN";
if (!STRINGS[lang]) lang = "zh-CN";
const t = (k, vars) => (STRINGS[lang][k] ?? STRINGS.en[k] ?? k).replace(/\{(\w+)\}/g, (_, v) => String(vars?.[v] ?? ""));
const main = document.getElementById("k-main");
const net = document.getElementById("k-net");
let device = JSON.parse(localStorage.getItem(KEY) || "null");
let online = null;
let stream = null;

class Offline extends Error {}

/** fetch with the kiosk's key; a network failure is Offline, a refusal an Error with the server's detail. */
async function call(path, init = {}) {
  let res;
  try {
    res = await fetch(path, { ...init, headers: { ...(init.headers || {}), ...(device ? { "X-Device-Key": device.key } : {}) } });
  } catch (e) {
    setOnline(false);
    throw new Offline(String(e));
  }
  setOnline(true);
  if (res.status === 401 && device) { forget(); throw new Error("this terminal's key no longer works: pair it again"); }
  const body = res.headers.get("content-type")?.includes("json") ? await res.json() : null;
  if (!res.ok) {
    const err = new Error(typeof body?.detail === "string" ? body.detail : JSON.stringify(body?.detail ?? res.statusText));
    err.status = res.status;
    throw err;
  }
  return body;
}

function forget() {
  device = null;
  localStorage.removeItem(KEY);
  pairing();
}

async function setOnline(state) {
  online = state;
  const waiting = (await queue.all().catch(() => [])).length;
  net.dataset.state = state ? "online" : "offline";
  net.textContent = state ? (waiting ? t("sending", { n: waiting }) : t("online")) : t("offline", { n: waiting });
  document.body.dataset.net = net.dataset.state;
  document.body.dataset.queued = String(waiting);
}

// -- the outbox ----------------------------------------------------------
let flushing = null;

/** Send what is queued, oldest first; stops at the first item the gateway cannot take now. */
function flush() {
  flushing ||= (async () => {
    try {
      // until the queue is empty: what is queued while sending goes in the same run
      for (let items = await queue.all(); items.length; items = await queue.all()) {
        const item = items[0];
        try {
          if (item.type === "event") await call("/api/kiosk/events", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ events: [item.event] }) });
          else if (item.type === "checkin") item.result = await sendCheckin(item);
        } catch (e) {
          if (item.type === "checkin" && item.challenge_id && [404, 409, 410].includes(e.status) && /challenge/.test(e.message)) {
            // its challenge lapsed while it waited: the frames still answer that kind, as one
            // the terminal chose (judged the same way, marked so, with the lapsed one named)
            item.offline_challenge = item.challenge_kind;
            item.lapsed_challenge_id = item.challenge_id;
            delete item.challenge_id;
            await queue.put(item);
            continue;
          }
          if (e instanceof Offline || e.status === 409 || e.status === 429 || e.status >= 500) return;  // later, in order
          item.error = e.message;  // refused for good (bad input): kept in the log, not sent again
        }
        await queue.drop(item.seq);
        document.dispatchEvent(new CustomEvent("kiosk-sent", { detail: item }));
      }
    } finally {
      flushing = null;
      if (online !== null) setOnline(online);
    }
  })();
  return flushing;
}

function sendCheckin(item) {
  const form = new FormData();
  form.append("person_id", item.person_id);
  form.append("client_ref", item.client_ref);
  if (item.made_at) form.append("made_at", item.made_at);  // queued offline: it counts when it was made
  if (item.challenge_id) form.append("challenge_id", item.challenge_id);
  else if (item.offline_challenge) form.append("offline_challenge", item.offline_challenge);
  if (item.lapsed_challenge_id) form.append("lapsed_challenge_id", item.lapsed_challenge_id);
  item.frames.forEach((blob, i) => form.append("frames", blob, `frame-${i}.jpg`));
  return call("/api/kiosk/checkins", { method: "POST", body: form });
}

/** Queue an item and try to send it now; resolves with the item as sent, or queued. */
async function submit(item) {
  const seq = await queue.push(item);
  await flush();
  const still = (await queue.all()).some((q) => q.seq === seq);
  return { queued: still };
}

function event(kind, payload) {
  return { type: "event", event: { event_id: crypto.randomUUID(), kind, occurred_at: new Date().toISOString(), payload } };
}

// -- screens ---------------------------------------------------------------
function screen(...children) {
  stopCamera();
  replace(main, ...children);
}

function big(label, onclick, cls = "") {
  return h("button", { type: "button", class: ["k-btn", cls], onclick }, label);
}

function pairing() {
  document.getElementById("k-title").textContent = t("pair_title");
  const code = h("input", { id: "k-code", inputmode: "numeric", autocomplete: "off", maxlength: 9, class: "k-code", "aria-label": t("pair_title") });
  const msg = h("p", { class: "k-error", role: "alert", hidden: true });
  const keys = [..."123456789", "C", "0", "⌫"].map((k) => big(k === "C" ? t("clear") : k, () => {
    if (k === "C") code.value = "";
    else if (k === "⌫") code.value = code.value.slice(0, -1);
    else if (code.value.replace(/\D/g, "").length < 8) code.value += k;
  }, "k-key"));
  const form = h("form", { class: "k-pair", onsubmit: async (ev) => {
    ev.preventDefault();
    msg.hidden = true;
    try {
      const d = await call("/api/kiosk/pair", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ code: code.value }) });
      device = { id: d.device_id, name: d.name || d.device_id, location: d.location, key: d.key };
      localStorage.setItem(KEY, JSON.stringify(device));
      home();
      beat();
    } catch (e) {
      msg.textContent = e instanceof Offline ? t("offline", { n: 0 }) : t("error", { detail: e.message });
      msg.hidden = false;
    }
  } }, h("p", {}, t("pair_help")), code, h("div", { class: "k-keypad" }, keys), msg, h("button", { type: "submit", class: "k-btn k-primary" }, t("pair")));
  screen(form);
}

function home() {
  document.getElementById("k-title").textContent = device.location ? `${device.name} · ${device.location}` : device.name;
  screen(h("div", { class: "k-home", dataset: { kiosk: device.id } },
    big(t("checkin"), checkinScreen, "k-checkin"),
    big(t("report"), () => textScreen("report"), "k-report"),
    big(t("leave"), leaveScreen, "k-leave"),
    big(t("call"), callOfficer, "k-call"),
    big(t("sos"), () => { if (confirm(t("sos_confirm"))) quick("sos", t("sos_sent")); }, "k-sos")));
}

function personField() {
  return h("input", { name: "person_id", required: true, maxlength: 64, autocomplete: "off", class: "k-input" });
}

function done(text, state) {
  screen(h("div", { class: "k-done", dataset: { state } }, h("p", { class: "k-big" }, text), big(t("home"), home, "k-primary")));
}

/** The duty officer is told (an alert, through the outbox even when offline); online, a
 * video call rings on the consoles too. */
async function callOfficer() {
  const r = await submit(event("call_officer", {}));
  if (r.queued || !(await calls.callOfficer())) done(r.queued ? t("queued") : t("call_sent"), r.queued ? "queued" : "sent");
}

async function quick(kind, text) {
  const r = await submit(event(kind, {}));
  done(r.queued ? t("queued") : text, r.queued ? "queued" : "sent");
}

function textScreen(kind) {
  const person = personField();
  const text = h("textarea", { name: "text", required: true, maxlength: 5000, rows: 8, class: "k-input" });
  screen(h("form", { class: "k-form", dataset: { kind }, onsubmit: async (ev) => {
    ev.preventDefault();
    const r = await submit(event(kind, { person_id: person.value.trim(), text: text.value }));
    done(r.queued ? t("queued") : t("sent"), r.queued ? "queued" : "sent");
  } }, h("h2", {}, t(kind)), h("label", {}, t("person"), person), h("label", {}, t("text"), text),
  h("div", { class: "k-row" }, big(t("back"), home), h("button", { type: "submit", class: "k-btn k-primary" }, t("submit")))));
}

function leaveScreen() {
  const person = personField();
  const from = h("input", { type: "date", name: "from", required: true, class: "k-input" });
  const to = h("input", { type: "date", name: "to", required: true, class: "k-input" });
  const reason = h("textarea", { name: "reason", required: true, maxlength: 2000, rows: 4, class: "k-input" });
  screen(h("form", { class: "k-form", dataset: { kind: "leave_request" }, onsubmit: async (ev) => {
    ev.preventDefault();
    const r = await submit(event("leave_request", { person_id: person.value.trim(), from: from.value, to: to.value, reason: reason.value }));
    done(r.queued ? t("queued") : t("sent"), r.queued ? "queued" : "sent");
  } }, h("h2", {}, t("leave")), h("label", {}, t("person"), person), h("label", {}, t("from"), from), h("label", {}, t("to"), to),
  h("label", {}, t("reason"), reason), h("div", { class: "k-row" }, big(t("back"), home), h("button", { type: "submit", class: "k-btn k-primary" }, t("submit")))));
}

function stopCamera() {
  stopStream(stream);
  stream = null;
}

function checkinScreen() {
  const person = personField();
  screen(h("form", { class: "k-form", dataset: { kind: "checkin" }, onsubmit: (ev) => { ev.preventDefault(); camera(person.value.trim()); } },
    h("h2", {}, t("checkin")), h("label", {}, t("person"), person),
    h("div", { class: "k-row" }, big(t("back"), home), h("button", { type: "submit", class: "k-btn k-primary" }, t("next")))));
}

async function camera(personId) {
  const video = h("video", { autoplay: true, muted: true, playsinline: true, class: "k-video" });
  const say = h("p", { class: "k-big", role: "status" }, t("look"));
  screen(h("div", { class: "k-camera" }, video, say));
  // active liveness: the gateway's challenge; out of reach, one the terminal picks
  let challenge = null;
  let chosen = null;
  if (localStorage.getItem(REQUIRED_KEY) !== "false") {
    try {
      challenge = await call("/api/kiosk/challenges", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ person_id: personId }) });
    } catch (e) {
      if (!(e instanceof Offline)) { done(t("error", { detail: e.message }), "error"); return; }
      const kinds = Object.keys(PROMPTS);
      chosen = kinds[crypto.getRandomValues(new Uint32Array(1))[0] % kinds.length];
    }
  }
  const kind = challenge?.kind || chosen;
  // The prompt first, then the camera: the person reads it while the camera starts, and the
  // frames sent are the camera's first ones, filmed from the moment the answer can begin
  // (docs/kiosk.md, "Timing of the answer").
  say.textContent = challenge ? (challenge.prompt[lang] || challenge.prompt.en) : kind ? PROMPTS[kind][lang] : t("capturing");
  say.dataset.challenge = kind || "";
  try {
    stream = await openCamera(video);
  } catch (e) {
    done(t("no_camera", { detail: e.message }), "error");
    return;
  }
  say.dataset.filming = "1";
  const wanted = challenge?.frames_wanted ?? (kind ? 8 : FRAMES);
  const every = challenge?.interval_ms ?? (kind ? 150 : FRAME_MS);
  const frames = await captureFrames(video, wanted, every);
  stopCamera();
  const clientRef = `ci-${crypto.randomUUID()}`;
  let answer = null;
  const seen = (ev) => { if (ev.detail.client_ref === clientRef) answer = ev.detail; };
  document.addEventListener("kiosk-sent", seen);
  const r = await submit({ type: "checkin", person_id: personId, client_ref: clientRef, made_at: new Date().toISOString(), frames, challenge_id: challenge?.challenge_id,
    challenge_kind: kind, offline_challenge: challenge ? undefined : chosen || undefined });
  document.removeEventListener("kiosk-sent", seen);
  if (r.queued || !answer) { done(t("queued"), "queued"); return; }
  if (answer.error) { done(t("error", { detail: answer.error }), "error"); return; }
  const d = answer.result;
  done(t(d.result, { reason: d.reason }), d.result);
}

async function beat() {
  if (!device) return;
  try {
    const ack = await call("/api/kiosk/heartbeat", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ state: "ok" }) });
    localStorage.setItem(REQUIRED_KEY, String(ack.challenge_required !== false));
    document.body.dataset.challenges = String(ack.challenge_required !== false);
  } catch { /* the banner says it */ }
  await flush();
}

const calls = kioskCalls({ call, screen, big, home, lang });
const CALL_POLL_MS = 3000;

document.documentElement.lang = lang;
document.title = t("title");
setInterval(() => { if (device && online) calls.poll(); }, CALL_POLL_MS);
window.addEventListener("online", () => beat());
setInterval(() => { if (device) flush(); }, FLUSH_MS);
setInterval(beat, BEAT_MS);
if (device) { home(); beat(); } else pairing();
document.body.dataset.ready = "1";
