// Live view: a grid of camera tiles (WHEP, the camera's own H.264, nothing transcoded) with
// each camera's state; a click opens one camera full size, Escape or Back returns to the grid.
// With proceedings.write a proceeding (reception, announcement, admonition, talk, mediation,
// education, release) is started and stopped from a tile; a tile shows a recording badge
// while one runs on its camera, and the sealed proceeding's export link and manifest hash.

import { h, replace, notice, select } from "../dom.js";

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
    "recording": "recording",
    "start": "Start proceeding",
    "stop": "Stop and seal",
    "no_person": "no person",
    "case_ref": "case reference",
    "sealed": "Sealed #{id}",
    "export": "Export",
    "kind.reception": "reception", "kind.announcement": "announcement", "kind.warning": "admonition", "kind.talk": "talk",
    "kind.mediation": "mediation", "kind.education": "education", "kind.release": "release",
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
    "recording": "录制中",
    "start": "开始执法活动",
    "stop": "结束并封存",
    "no_person": "不关联人员",
    "case_ref": "案件编号",
    "sealed": "已封存 #{id}",
    "export": "导出",
    "kind.reception": "报到", "kind.announcement": "宣告", "kind.warning": "警告训诫", "kind.talk": "谈话",
    "kind.mediation": "调解", "kind.education": "教育", "kind.release": "解矫",
  },
};

const sessions = new Set();  // {pc, location}

export function dispose() {
  for (const s of sessions) close(s);
  sessions.clear();
}

/** Close every live session this module opened (the wall screen rotates its tiles). */
export function closeAll() {
  for (const s of sessions) close(s);
  sessions.clear();
}

function close(s) {
  try { s.pc.close(); } catch (_) { /* already closed */ }
  if (s.location && s.ctx) s.ctx.api(s.location, { method: "DELETE" }).catch(() => {});
}

export async function play(ctx, cameraId, video, status) {
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
  const KINDS = ["reception", "announcement", "warning", "talk", "mediation", "education", "release"];
  const canWrite = ctx.can("proceedings.write");
  const canExport = ctx.can("evidence.export");
  const running = new Map();  // proceeding id -> proceeding (recording)
  const sealed = new Map();   // camera id -> the proceeding last sealed here
  const boxes = new Map();    // camera id -> its controls
  const persons = canWrite ? (await ctx.api("/api/persons")).map((p) => [p.id, `${p.name} (${p.id})`]) : [];
  for (const p of await ctx.api("/api/proceedings")) if (p.state === "recording") running.set(p.id, p);
  const recFor = (camId) => [...running.values()].find((p) => p.camera_ids.includes(camId));

  function controls(cam) {
    const box = h("div", { class: "proc-controls", onclick: (ev) => ev.stopPropagation() });
    boxes.set(cam.id, box);
    drawControls(cam.id);
    return box;
  }

  function drawControls(camId) {
    const box = boxes.get(camId);
    if (!box) return;
    const p = recFor(camId);
    const err = h("span", { class: "form-error small", role: "alert" });
    if (p) {
      replace(box, h("span", { class: "rec-badge", dataset: { proceeding: String(p.id) } }, "● ", t("recording"), " · ", t(`kind.${p.kind}`)), " ",
        canWrite ? h("button", { type: "button", class: "btn btn-quiet btn-stop", onclick: async () => {
          try {
            const done = await ctx.api(`/api/proceedings/${p.id}/stop`, { method: "POST" });
            running.delete(p.id);
            for (const c of done.camera_ids) sealed.set(c, done);
            for (const c of done.camera_ids) drawControls(c);
          } catch (e) { if (e.name !== "AbortError") err.textContent = e.message; }
        } }, t("stop")) : null, err);
      return;
    }
    const last = sealed.get(camId);
    const done = last ? h("span", { class: "sealed", dataset: { proceeding: String(last.id) } }, t("sealed", { id: last.id }), " ",
      h("span", { class: "mono muted small" }, (last.manifest_sha256 || "").slice(0, 16)), " ",
      canExport ? h("a", { href: `/api/proceedings/${last.id}/export`, download: "" }, t("export")) : null) : null;
    if (!canWrite) { replace(box, done); return; }
    const kind = select(KINDS.map((k) => [k, t(`kind.${k}`)]), "talk", { name: "kind" });
    const person = select([["", t("no_person")], ...persons], "", { name: "person_id" });
    const ref = h("input", { name: "case_ref", maxlength: 100, placeholder: t("case_ref"), size: 10 });
    replace(box, done, h("form", { class: "proc-start", onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const started = await ctx.api("/api/proceedings", { json: { camera_ids: [camId], kind: kind.value, person_id: person.value || null, case_ref: ref.value.trim() || null } });
        running.set(started.id, started);
        for (const c of started.camera_ids) drawControls(c);
      } catch (e) { if (e.name !== "AbortError") err.textContent = e.message; }
    } }, kind, " ", person, " ", ref, " ", h("button", { type: "submit", class: "btn btn-quiet btn-start" }, t("start")), " ", err));
  }

  ctx.on("proceeding", async (msg) => {
    if (msg.state === "recording") running.set(msg.proceeding_id, await ctx.api(`/api/proceedings/${msg.proceeding_id}`));
    else {
      running.delete(msg.proceeding_id);
      const done = await ctx.api(`/api/proceedings/${msg.proceeding_id}`);
      for (const c of done.camera_ids) sealed.set(c, done);
    }
    for (const c of msg.camera_ids || []) drawControls(c);
  });

  const badge = (state) => h("span", { class: ["badge", `state-${state}`], dataset: { state } }, t(`state.${state}`));

  function full(cam) {
    dispose();
    boxes.clear();
    ctx.params.camera = cam.id;
    const video = h("video", { autoplay: true, muted: true, playsinline: true, class: "live-full" });
    video.muted = true;
    const status = h("p", { class: "muted" }, t("connecting"));
    const b = badge(cam.state);
    tiles.set(cam.id, { badge: b });
    replace(root, h("div", { class: "live-single", dataset: { camera: cam.id } },
      h("p", {}, h("button", { class: "btn", onclick: grid }, t("back")), " ", h("strong", {}, cam.name || cam.id), " ", b,
        " ", h("a", { href: `/api/cameras/${encodeURIComponent(cam.id)}/snapshot.jpg`, target: "_blank" }, t("snapshot"))),
      controls(cam), video, status));
    play(ctx, cam.id, video, status);
  }

  function grid() {
    dispose();
    tiles.clear();
    boxes.clear();
    replace(root, h("div", { class: "live-grid" },
      cams.map((cam) => {
        const video = h("video", { autoplay: true, muted: true, playsinline: true });
        video.muted = true;
        const status = h("span", { class: "muted" }, cam.state === "online" ? t("connecting") : "");
        const b = badge(cam.state);
        tiles.set(cam.id, { badge: b });
        if (cam.state === "online") play(ctx, cam.id, video, status);
        return h("figure", { class: "live-tile", dataset: { camera: cam.id }, onclick: () => full(cam) },
          video, h("figcaption", {}, h("strong", {}, cam.name || cam.id), " ", cam.room ? `· ${cam.room} ` : "", b, " ", status), controls(cam));
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
