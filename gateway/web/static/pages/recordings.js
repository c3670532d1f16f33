// Recordings: a camera's segments of one day on a 24-hour time bar (gaps in red, segments
// under hold marked), click to play; proceedings with their manifest hash, play and export.
// Segments are fetched as blobs: the console's CSP allows media only from blob:.

import { h, replace, notice, select } from "../dom.js";

export const strings = {
  en: {
    "camera": "Camera",
    "day": "Day",
    "none": "No recordings for this camera on this day.",
    "proceedings": "Proceedings",
    "col.id": "#",
    "col.kind": "Kind",
    "col.person": "Person",
    "col.case": "Case",
    "col.start": "Start",
    "col.stop": "Stop",
    "col.state": "State",
    "col.hash": "Manifest SHA-256",
    "col.attendance": "Seen (faces)",
    "verify": "Verify",
    "verified": "intact: {n} segments re-hashed",
    "broken": "NOT intact: {problems}",
    "play": "Play",
    "export": "Export",
    "gap": "gap {s} s",
    "no_cameras": "No cameras configured.",
  },
  "zh-CN": {
    "camera": "摄像机",
    "day": "日期",
    "none": "该摄像机当天没有录像。",
    "proceedings": "执法过程",
    "col.id": "编号",
    "col.kind": "类型",
    "col.person": "人员",
    "col.case": "案号",
    "col.start": "开始",
    "col.stop": "结束",
    "col.state": "状态",
    "col.hash": "清单 SHA-256",
    "col.attendance": "到场人员（人脸）",
    "verify": "校验",
    "verified": "完整：已重新校验 {n} 个片段",
    "broken": "不完整：{problems}",
    "play": "播放",
    "export": "导出",
    "gap": "中断 {s} 秒",
    "no_cameras": "尚未配置摄像机。",
  },
};

let objectUrl = null;

const pad = (n) => String(n).padStart(2, "0");

/** The browser's local calendar date as YYYY-MM-DD (toISOString would give the UTC one). */
export function localDay(d = new Date()) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** [start, end) of a local calendar day "YYYY-MM-DD", as Dates (a DST day is 23 or 25 h long). */
export function dayWindow(day) {
  const [y, m, d] = day.split("-").map(Number);
  return [new Date(y, m - 1, d), new Date(y, m - 1, d + 1)];
}

export function dispose() {
  if (objectUrl) URL.revokeObjectURL(objectUrl);
  objectUrl = null;
}

export async function render(root, ctx) {
  const { t } = ctx;
  const cams = await ctx.api("/api/cameras");
  const today = localDay();
  // no camera: still the proceedings (remote video sessions are recorded without one)
  let camera = cams.some((c) => c.id === ctx.params.camera) ? ctx.params.camera : cams[0]?.id;
  let day = /^\d{4}-\d{2}-\d{2}$/.test(ctx.params.day || "") ? ctx.params.day : today;

  const video = h("video", { controls: true, class: "player recording-player" });
  const now = h("p", { class: "muted" });
  const bar = h("div", { class: "timebar" });
  const axis = h("div", { class: "timebar-axis" });
  const procBody = h("tbody");
  const camSel = select(cams.map((c) => [c.id, c.name || c.id]), camera, { onchange: (e) => { camera = e.target.value; load(); } });
  const daySel = h("input", { type: "date", value: day, onchange: (e) => { if (!e.target.value) return; day = e.target.value; load(); } });

  async function playSegment(seg) {
    // a remote video session's recording is its one segment, named call-<session id>
    const call = !seg.id && seg.camera_id?.startsWith("call-") ? seg.camera_id.slice(5) : null;
    const res = await ctx.api(call ? `/api/calls/${encodeURIComponent(call)}/recording` : `/api/recordings/${seg.id}/file`, { raw: true });
    dispose();
    objectUrl = URL.createObjectURL(await res.blob());
    video.src = objectUrl;
    now.textContent = `${ctx.fmt.time(seg.started_at)} – ${seg.ended_at ? ctx.fmt.time(seg.ended_at) : "…"} · ${seg.sha256 || ""}`;
    video.play().catch(() => {});
  }

  async function playList(segs) {
    for (const seg of segs) {
      await playSegment(seg);
      await new Promise((resolve) => video.addEventListener("ended", resolve, { once: true }));
    }
  }

  async function load() {
    if (!camera) return;
    const [since, until] = dayWindow(day);
    const segs = await ctx.api(`/api/recordings?camera_id=${encodeURIComponent(camera)}&since=${since.toISOString()}&until=${until.toISOString()}`);
    // the bar spans what was recorded that day (zoomed in), not 24 h where a minute is a hairline
    const t0 = segs.length ? Math.max(+since, Math.min(...segs.map((s) => +new Date(s.started_at)))) : +since;
    const t1 = segs.length ? Math.min(+until, Math.max(...segs.map((s) => +new Date(s.ended_at || s.started_at)))) : +until;
    const span = Math.max(t1 - t0, 1000);
    const pos = (iso) => Math.max(0, Math.min(1, (new Date(iso) - t0) / span)) * 100;
    replace(axis, [0, 0.25, 0.5, 0.75, 1].map((f) => h("span", {}, ctx.fmt.time(new Date(t0 + f * span).toISOString()))));
    replace(bar, segs.map((s) => {
      const left = pos(s.started_at);
      const right = s.ended_at ? pos(s.ended_at) : left + 0.2;
      const gap = s.kind === "gap";
      return h("div", {
        class: ["seg", gap ? "seg-gap" : "seg-rec", s.hold ? "seg-hold" : null], dataset: { id: s.id },
        title: gap ? t("gap", { s: s.duration_s }) : ctx.fmt.time(s.started_at),
        style: { left: `${left}%`, width: `${Math.max(right - left, 0.2)}%` },  // computed: CSSOM, allowed by the CSP
        onclick: gap ? null : () => playSegment(s),
      });
    }));
    if (!segs.length) now.textContent = t("none");
  }

  async function loadProceedings() {
    const list = await ctx.api("/api/proceedings");
    replace(procBody, list.map((p) => h("tr", { dataset: { id: p.id } },
      h("td", {}, p.id), h("td", {}, p.kind), h("td", {}, p.person_id || ""), h("td", {}, p.case_ref || ""),
      h("td", {}, ctx.fmt.time(p.started_at)), h("td", {}, p.stopped_at ? ctx.fmt.time(p.stopped_at) : ""),
      h("td", {}, p.state), h("td", {}, h("code", {}, (p.manifest_sha256 || "").slice(0, 16))),
      h("td", { class: "attendance" }, (p.attendance || []).map((a) => h("span", { class: "chip", dataset: { person: a.person_id } },
        `${a.person_id} ${ctx.fmt.time(a.first_seen).slice(-8)}–${ctx.fmt.time(a.last_seen).slice(-8)}`))),
      h("td", {},
        p.manifest ? h("button", { class: "btn", onclick: () => playList(p.manifest.segments.map((s) => ({ id: s.recording_id, ...s }))) }, t("play")) : null,
        " ",
        p.manifest && ctx.can("evidence.export") ? h("a", { class: "btn", href: `/api/proceedings/${p.id}/export` }, t("export")) : null,
        " ",
        p.manifest && ctx.can("evidence.read") ? verifyButton(p) : null))));
  }

  function verifyButton(p) {
    const out = h("span", { class: "verify-result", role: "status" });
    return h("span", {}, h("button", { type: "button", class: "btn btn-verify", onclick: async () => {
      out.textContent = "…";
      try {
        const v = await ctx.api(`/api/proceedings/${p.id}/verify`, { method: "POST" });
        out.dataset.ok = v.ok ? "1" : "0";
        out.textContent = v.ok ? t("verified", { n: v.segments }) : t("broken", { problems: v.problems.join("; ") });
      } catch (e) { if (e.name !== "AbortError") out.textContent = e.message; }
    } }, t("verify")), " ", out);
  }

  replace(root,
    ...(cams.length ? [h("div", { class: "toolbar" }, h("label", {}, t("camera"), " ", camSel), " ", h("label", {}, t("day"), " ", daySel)), bar, axis]
      : [notice("info", t("no_cameras"), "")]),
    video, now,
    h("h2", {}, t("proceedings")),
    h("div", { class: "table-wrap" }, h("table", { class: "data" },
      h("thead", {}, h("tr", {}, ["col.id", "col.kind", "col.person", "col.case", "col.start", "col.stop", "col.state", "col.hash", "col.attendance", ""].map((k) => h("th", {}, k ? t(k) : "")))),
      procBody)));
  await Promise.all([load(), loadProceedings()]);
  ctx.on("proceeding", () => loadProceedings());
  ctx.on("recording.gap", (m) => { if (m.camera_id === camera) load(); });
}
