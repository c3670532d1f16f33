// Remote check-in on the person's own phone (/remote#<token>): the link an officer sent. The
// token is in the URL's fragment, which the browser never sends to a server; this page sends it
// in the X-Checkin-Token header. The page asks what the link is for, then, at the person's tap,
// for the camera (a preview) and the position, shows the gateway's liveness challenge, films
// the answer with the camera opened again after the prompt (../capture.js, as the kiosk does)
// and sends the frames with the position; the gateway
// verifies the face against the enrollment and the position against the person's zones.

import { h, replace } from "../dom.js";
import { captureFrames, openCamera, stopCamera } from "../capture.js";

const STRINGS = {
  "zh-CN": {
    title: "远程签到", lang: "English", loading: "正在打开签到链接…",
    for: "{name}，您好", expires: "请在 {time} 前完成签到（还可尝试 {n} 次）。",
    explain: "签到需要使用手机的摄像头（核验本人）和位置信息（核验所在区域）。请在光线充足处正对摄像头。",
    start: "开始签到", again: "再试一次",
    locating: "正在获取位置…", camera: "正在打开摄像头…", look: "请正对摄像头", checking: "正在核验，请稍候…",
    no_token: "链接不完整：请打开民警发送的完整链接。", insecure: "此页面须通过 https:// 打开才能使用摄像头和定位：请联系民警。",
    busy: "正在核验上一次签到，请稍后再试。",
    no_camera: "无法使用摄像头：{detail}。请在浏览器设置中允许本网站使用摄像头后重试。",
    no_position: "无法获取位置：{detail}。请打开定位并允许本网站获取位置后重试。",
    s404: "签到链接无效：请向民警索取新的链接。", s409: "该签到链接已使用：如需再次签到，请向民警索取新的链接。",
    s410: "该签到链接已过期或已被撤回：请向民警索取新的链接。", s429: "尝试过于频繁，请稍后再试。", error: "未完成：{detail}",
    accepted: "签到成功", rejected: "签到未通过：{reason}", retry: "请重新签到：{reason}",
    "v.ok": "位置核验：在规定区域内", "v.breach": "位置核验：不在规定区域内（已通知民警）", "v.uncertain": "位置核验：无法确定（定位精度不足或靠近边界）",
    "v.no_zones": "位置核验：未设定活动区域", where: "位置 {lat}, {lon}（精度 {acc} 米）", left: "还可尝试 {n} 次。", closed: "本链接已失效，可以关闭此页面。",
  },
  en: {
    title: "Remote check-in", lang: "中文", loading: "Opening the check-in link…",
    for: "Hello, {name}", expires: "Please check in before {time} ({n} attempts left).",
    explain: "The check-in uses your phone's camera (to verify it is you) and its location (to verify where you are). Face the camera in good light.",
    start: "Start check-in", again: "Try again",
    locating: "Finding your location…", camera: "Opening the camera…", look: "Look at the camera", checking: "Checking, please wait…",
    no_token: "This link is incomplete: open the whole link your officer sent.",
    insecure: "This page must be opened over https:// to use the camera and location: tell your officer.", busy: "The last check-in is still being checked: try again in a moment.",
    no_camera: "No camera: {detail}. Allow this site to use the camera in the browser's settings and try again.",
    no_position: "No location: {detail}. Turn location on, allow this site to use it and try again.",
    s404: "This check-in link is not valid: ask your officer for a new one.", s409: "This check-in link was used already: ask your officer for a new one.",
    s410: "This check-in link expired or was withdrawn: ask your officer for a new one.", s429: "Too many attempts: wait a minute and try again.",
    error: "Not done: {detail}",
    accepted: "Checked in", rejected: "Check-in refused: {reason}", retry: "Please check in again: {reason}",
    "v.ok": "Location: inside your allowed area", "v.breach": "Location: outside your allowed area (your officer is told)",
    "v.uncertain": "Location: cannot be confirmed (too coarse, or near a border)", "v.no_zones": "Location: no area is set for you",
    where: "Position {lat}, {lon} (accuracy {acc} m)", left: "{n} attempts left.", closed: "This link is used up; you can close this page.",
  },
};
const LANG_KEY = "gateway.remote.lang";
const TOKEN_KEY = "gateway.remote.token";
const FRAMES = 5;  // without a challenge (active_liveness.required false), as the kiosk
const FRAME_MS = 180;

let lang = localStorage.getItem(LANG_KEY) || document.documentElement.dataset.defaultLang || "zh-CN";
if (!STRINGS[lang]) lang = "zh-CN";
const t = (k, vars) => (STRINGS[lang][k] ?? STRINGS.en[k] ?? k).replace(/\{(\w+)\}/g, (_, v) => String(vars?.[v] ?? ""));
const main = document.getElementById("r-main");
let shown = () => {};  // the screen now on show, drawn again when the language changes
let stream = null;

// The token: from the fragment once, then kept for this tab only (a reload still works), and
// taken out of the address bar so that a screenshot or a shared address does not carry it.
const fromHash = decodeURIComponent(location.hash.slice(1));
if (fromHash) {
  sessionStorage.setItem(TOKEN_KEY, fromHash);
  history.replaceState(null, "", location.pathname);
}
const token = sessionStorage.getItem(TOKEN_KEY);

class Refused extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

async function call(path, init = {}) {
  const res = await fetch(path, { ...init, headers: { ...(init.headers || {}), "X-Checkin-Token": token } });
  const body = res.headers.get("content-type")?.includes("json") ? await res.json() : null;
  if (!res.ok) throw new Refused(res.status, typeof body?.detail === "string" ? body.detail : JSON.stringify(body?.detail ?? res.statusText));
  return body;
}

function show(draw) {
  shown = draw;
  draw();
}

function screen(...children) {
  replace(main, ...children);
}

function big(label, onclick, cls = "") {
  return h("button", { type: "button", class: ["r-btn", cls], onclick }, label);
}

function refusal(e) {
  stopCamera(stream);
  stream = null;
  const busy = e instanceof Refused && e.status === 409 && /being decided/.test(e.message);
  const text = busy ? t("busy") : e instanceof Refused && t(`s${e.status}`) !== `s${e.status}` ? t(`s${e.status}`) : t("error", { detail: e.message });
  show(() => screen(h("div", { class: "r-done", dataset: { state: "refused", status: String(e.status ?? "") } }, h("p", { class: "r-big" }, text))));
}

function fmtTime(iso) {
  return new Date(iso).toLocaleString(lang, { month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

function intro(link) {
  show(() => screen(h("div", { class: "r-intro", dataset: { attempts: String(link.attempts_left) } },
    h("p", { class: "r-big" }, t("for", { name: link.person_name || "" })),
    h("p", {}, t("expires", { time: fmtTime(link.expires_at), n: link.attempts_left })),
    h("p", { class: "r-muted" }, t("explain")),
    big(t("start"), () => checkIn(link), "r-primary r-start"))));
}

function locate() {
  return new Promise((resolve, reject) => {
    if (!navigator.geolocation) { reject(new Error("geolocation unavailable")); return; }
    navigator.geolocation.getCurrentPosition(resolve, (err) => reject(new Error(err.message || `error ${err.code}`)),
      { enableHighAccuracy: true, timeout: 30000, maximumAge: 0 });
  });
}

// The order (docs/remote-checkin.md, "Timing of the answer"): the camera is opened first as a
// preview while the phone locates itself (the permission prompts come now, and the person
// frames their face); with the position, the challenge is fetched, the preview stopped and the
// prompt shown; only then is the camera opened again and its first frames are the answer,
// filmed from the moment the person can start it (as the kiosk terminal does, docs/kiosk.md).
async function checkIn(link) {
  const video = h("video", { autoplay: true, muted: true, playsinline: true, class: "r-video" });
  const say = h("p", { class: "r-big", role: "status", dataset: { step: "locating" } }, t("locating"));
  shown = () => {};  // mid-way: the words change as it goes
  screen(h("div", { class: "r-camera" }, video, say));
  const step = (name, text) => { say.dataset.step = name; say.textContent = text; };
  const where = locate();
  where.catch(() => {});  // judged below, after the camera
  try {
    stream = await openCamera(video, { width: 640, height: 480, facingMode: "user" });  // the preview
  } catch (e) {
    failed(t("no_camera", { detail: e.message || e.name }));
    return;
  }
  let pos;
  try {
    pos = await where;
  } catch (e) {
    failed(t("no_position", { detail: e.message }));
    return;
  }
  let challenge = null;
  try {
    if (link.challenge_required) challenge = await call("/api/remote/challenges", { method: "POST" });
  } catch (e) {
    refusal(e);
    return;
  }
  // the prompt, then the camera again: its first frame is the first of the answer
  stopCamera(stream);
  stream = null;
  step("prompt", challenge ? (challenge.prompt[lang] || challenge.prompt.en) : t("look"));
  say.dataset.challenge = challenge?.kind || "";
  try {
    stream = await openCamera(video, { width: 640, height: 480, facingMode: "user" });
  } catch (e) {
    failed(t("no_camera", { detail: e.message || e.name }));
    return;
  }
  say.dataset.filming = "1";
  const frames = await captureFrames(video, challenge?.frames_wanted ?? FRAMES, challenge?.interval_ms ?? FRAME_MS);
  stopCamera(stream);
  stream = null;
  delete say.dataset.filming;
  step("checking", t("checking"));
  const form = new FormData();
  form.append("lat", String(pos.coords.latitude));
  form.append("lon", String(pos.coords.longitude));
  form.append("accuracy_m", String(pos.coords.accuracy ?? 0));
  form.append("taken_at", new Date(pos.timestamp || Date.now()).toISOString());
  if (challenge) form.append("challenge_id", challenge.challenge_id);
  frames.forEach((blob, i) => form.append("frames", blob, `frame-${i}.jpg`));
  let d;
  try {
    d = await call("/api/remote/checkins", { method: "POST", body: form });
  } catch (e) {
    if (e instanceof Refused && e.status === 422 && link.attempts_left > 1) {  // bad frames: the link still holds
      link.attempts_left -= 1;
      failed(t("error", { detail: e.message }), link);
      return;
    }
    refusal(e);
    return;
  }
  link.attempts_left = d.attempts_left;
  show(() => result(d, link));
}

function failed(text, link = null) {
  stopCamera(stream);
  stream = null;
  show(() => screen(h("div", { class: "r-done", dataset: { state: "error" } }, h("p", { class: "r-big" }, text),
    link ? big(t("again"), () => checkIn(link), "r-primary r-again") : null)));
}

function result(d, link) {
  const p = d.position;
  const again = d.result === "retry" && d.link_state === "unused";
  screen(h("div", { class: "r-done", dataset: { state: d.result, checkin: String(d.checkin_id ?? "") } },
    h("p", { class: "r-big" }, t(d.result, { reason: d.reason })),
    h("div", { class: "r-where", dataset: { verdict: p.verdict } },
      h("p", {}, t(`v.${p.verdict}`)),
      h("p", { class: "r-muted" }, t("where", { lat: p.lat.toFixed(5), lon: p.lon.toFixed(5), acc: Math.round(p.accuracy_m) }))),
    again ? [h("p", {}, t("left", { n: d.attempts_left })), big(t("again"), () => checkIn(link), "r-primary r-again")] : h("p", { class: "r-muted" }, t("closed"))));
}

function setLang(next) {
  lang = next;
  localStorage.setItem(LANG_KEY, lang);
  document.documentElement.lang = lang;
  document.title = t("title");
  document.getElementById("r-title").textContent = t("title");
  document.getElementById("r-lang").textContent = t("lang");
  shown();
}

document.getElementById("r-lang").addEventListener("click", () => setLang(lang === "zh-CN" ? "en" : "zh-CN"));
setLang(lang);
if (!token || !window.isSecureContext) {
  // without a secure context (https, or this machine) browsers give no camera and no position
  show(() => screen(h("div", { class: "r-done", dataset: { state: "refused", status: "" } }, h("p", { class: "r-big" }, t(token ? "insecure" : "no_token")))));
} else {
  screen(h("p", { class: "r-big" }, t("loading")));
  call("/api/remote/link").then(intro, refusal);
}
document.body.dataset.ready = "1";
