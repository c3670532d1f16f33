// The wall screen (/console/wall) for a command centre: full width, large figures, a grid of
// live tiles rotating through the cameras, the newest red and orange alerts. Nothing to
// click: it keeps itself current from the pushes, reloads everything after a reconnect
// (network or gateway restart) and retries on its own when a request fails.

import { h, replace } from "../dom.js";
import { closeAll, play } from "./live.js";

export const strings = {
  en: { persons: "persons", online: "devices online", offline: "offline", alerts: "Red and orange alerts", none: "No red or orange alert open.",
    cameras: "Cameras", no_cameras: "No camera online." },
  "zh-CN": { persons: "在管人员", online: "设备在线", offline: "离线", alerts: "红色、橙色告警", none: "当前没有红色或橙色告警。",
    cameras: "实时画面", no_cameras: "没有在线的摄像机。" },
};

const TILES = 4;
const ROTATE_MS = 20_000;
const RETRY_MS = 5_000;
let rotation = null;
let retry = null;

export function dispose() {
  clearInterval(rotation);
  clearTimeout(retry);
  rotation = retry = null;
  closeAll();
}

export async function render(root, ctx) {
  const { t } = ctx;
  const figures = h("div", { class: "wall-figures" });
  const alerts = h("ul", { class: "wall-alerts" });
  const tiles = h("div", { class: "wall-tiles" });
  replace(root, h("div", { class: "wall-grid" },
    h("div", {}, figures, h("h2", {}, t("cameras")), tiles),
    h("div", {}, h("h2", {}, t("alerts")), alerts)));
  let offset = 0;
  let cameras = [];

  function drawTiles() {
    closeAll();
    const online = cameras.filter((c) => c.state === "online");
    if (!online.length) { replace(tiles, h("p", { class: "muted" }, t("no_cameras"))); return; }
    const shown = Array.from({ length: Math.min(TILES, online.length) }, (_, i) => online[(offset + i) % online.length]);
    replace(tiles, shown.map((cam) => {
      const video = h("video", { autoplay: true, muted: true, playsinline: true });
      video.muted = true;
      const status = h("span", { class: "muted" });
      play(ctx, cam.id, video, status);
      return h("figure", { class: "live-tile", dataset: { camera: cam.id } }, video, h("figcaption", {}, cam.name || cam.id, " ", status));
    }));
  }

  async function loadFigures() {
    const d = await ctx.api("/api/dashboard");
    const devices = Object.values(d.devices).reduce((n, c) => ({ online: n.online + c.online, offline: n.offline + c.offline }), { online: 0, offline: 0 });
    replace(figures,
      ["red", "orange"].map((l) => h("div", { class: ["level-figure", `level-${l}`], dataset: { level: l, value: String(d.open_alerts[l]) } },
        h("span", { class: "big" }, String(d.open_alerts[l])), ctx.t(`level.${l}`))),
      h("div", { class: "level-figure", dataset: { role: "persons" } }, h("span", { class: "big" }, String(d.persons)), t("persons")),
      h("div", { class: "level-figure", dataset: { role: "online" } }, h("span", { class: "big" }, String(devices.online)), t("online")),
      h("div", { class: "level-figure", dataset: { role: "offline" } }, h("span", { class: "big" }, String(devices.offline)), t("offline")));
  }

  async function loadAlerts() {
    const list = (await ctx.api("/api/alerts?state=ongoing&limit=200")).filter((a) => a.level === "red" || a.level === "orange");
    replace(alerts, list.length ? list.slice(0, 12).map((a) => h("li", { class: `level-${a.level}`, dataset: { id: String(a.id), level: a.level } },
      `${ctx.fmt.time(a.opened_at)} · ${ctx.t(`kind.${a.kind}`)} · ${a.person_id || a.device_id || ""}`)) : h("li", { class: "muted" }, t("none")));
  }

  async function loadAll() {
    clearTimeout(retry);
    try {
      cameras = await ctx.api("/api/cameras");
      await Promise.all([loadFigures(), loadAlerts()]);
      drawTiles();
    } catch (e) {
      if (e.name === "AbortError") return;
      retry = setTimeout(loadAll, RETRY_MS);  // the gateway may be restarting
    }
  }

  let pending = null;
  const soon = () => { clearTimeout(pending); pending = setTimeout(() => Promise.all([loadFigures(), loadAlerts()]).catch(() => loadAll()), 500); };
  ctx.on("alert", soon);
  ctx.on("device.state", soon);
  ctx.on("hello", () => loadAll());  // reconnected: everything again, tiles included
  ctx.on("camera.health", (msg) => {
    const cam = cameras.find((c) => c.id === msg.camera_id);
    if (cam && cam.state !== msg.state) { cam.state = msg.state; drawTiles(); }
  });
  rotation = setInterval(() => { offset += TILES; drawTiles(); }, ROTATE_MS);
  await loadAll();
}
