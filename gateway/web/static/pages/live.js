// Live view: a grid of camera tiles (WHEP, the camera's own H.264, nothing transcoded) with
// each camera's state; a click opens one camera full size, Escape or Back returns to the grid.

import { h, replace, notice } from "../dom.js";

export const strings = {
  en: {
    "none": "No cameras configured.",
    "back": "Back to all cameras",
    "state.online": "online",
    "state.offline": "offline",
    "state.auth_failed": "wrong credentials",
    "state.unreachable": "unreachable",
    "connecting": "connecting…",
    "failed": "live view failed: {msg}",
    "snapshot": "Snapshot",
  },
  "zh-CN": {
    "none": "尚未配置摄像机。",
    "back": "返回全部摄像机",
    "state.online": "在线",
    "state.offline": "离线",
    "state.auth_failed": "认证失败",
    "state.unreachable": "无法连接",
    "connecting": "连接中…",
    "failed": "实时画面失败：{msg}",
    "snapshot": "截图",
  },
};

const sessions = new Set();  // {pc, location}

export function dispose() {
  for (const s of sessions) close(s);
  sessions.clear();
}

function close(s) {
  try { s.pc.close(); } catch (_) { /* already closed */ }
  if (s.location && s.ctx) s.ctx.api(s.location, { method: "DELETE" }).catch(() => {});
}

async function play(ctx, cameraId, video, status) {
  const pc = new RTCPeerConnection();
  const s = { pc, location: null, ctx };
  sessions.add(s);
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.ontrack = (ev) => { video.srcObject = ev.streams[0] || new MediaStream([ev.track]); };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && resolve());
    setTimeout(resolve, 2000);
  });
  try {
    const res = await ctx.api(`/api/cameras/${encodeURIComponent(cameraId)}/whep`, {
      method: "POST", body: pc.localDescription.sdp, headers: { "Content-Type": "application/sdp" }, raw: true,
    });
    s.location = res.headers.get("Location");
    await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
    status.textContent = "";
  } catch (e) {
    if (e.name === "AbortError") return s;
    status.textContent = ctx.t("failed", { msg: e.message });
  }
  return s;
}

export async function render(root, ctx) {
  const { t } = ctx;
  const cams = await ctx.api("/api/cameras");
  if (!cams.length) {
    replace(root, notice("info", t("none"), ""));
    return;
  }
  const tiles = new Map();  // id -> {badge}

  const badge = (state) => h("span", { class: ["badge", `state-${state}`], dataset: { state } }, t(`state.${state}`));

  function full(cam) {
    dispose();
    ctx.params.camera = cam.id;
    const video = h("video", { autoplay: true, muted: true, playsinline: true, class: "live-full" });
    video.muted = true;
    const status = h("p", { class: "muted" }, t("connecting"));
    const b = badge(cam.state);
    tiles.set(cam.id, { badge: b });
    replace(root, h("div", { class: "live-single", dataset: { camera: cam.id } },
      h("p", {}, h("button", { class: "btn", onclick: grid }, t("back")), " ", h("strong", {}, cam.name || cam.id), " ", b,
        " ", h("a", { href: `/api/cameras/${encodeURIComponent(cam.id)}/snapshot.jpg`, target: "_blank" }, t("snapshot"))),
      video, status));
    play(ctx, cam.id, video, status);
  }

  function grid() {
    dispose();
    tiles.clear();
    replace(root, h("div", { class: "live-grid" },
      cams.map((cam) => {
        const video = h("video", { autoplay: true, muted: true, playsinline: true });
        video.muted = true;
        const status = h("span", { class: "muted" }, cam.state === "online" ? t("connecting") : "");
        const b = badge(cam.state);
        tiles.set(cam.id, { badge: b });
        if (cam.state === "online") play(ctx, cam.id, video, status);
        return h("figure", { class: "live-tile", dataset: { camera: cam.id }, onclick: () => full(cam) },
          video, h("figcaption", {}, h("strong", {}, cam.name || cam.id), " ", cam.room ? `· ${cam.room} ` : "", b, " ", status));
      })));
  }

  ctx.on("camera.health", (msg) => {
    const cam = cams.find((c) => c.id === msg.camera_id);
    if (!cam) return;
    const was = cam.state;
    cam.state = msg.state;
    const tile = tiles.get(cam.id);
    if (tile) tile.badge.replaceWith(tile.badge = badge(msg.state));
    if (was !== "online" && msg.state === "online" && !ctx.params.camera) grid();
  });

  const wanted = cams.find((c) => c.id === ctx.params.camera);
  if (wanted) full(wanted); else grid();
}
