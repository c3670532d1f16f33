// Evidence: body-worn camera uploads (and proceeding evidence) with thumbnails, filters,
// a player, the custody log and a signed export; uploads still in flight with live progress
// (`upload.progress` over the event socket, throttled by the server).
// Files are played from a blob: the console's CSP allows media only from blob:.

import { h, replace, notice } from "../dom.js";

export const strings = {
  en: {
    "in_flight": "Uploads in progress",
    "no_uploads": "No uploads in progress.",
    "none": "No evidence matches.",
    "device": "Device",
    "officer": "Officer",
    "person": "Person",
    "case": "Case",
    "since": "Recorded from",
    "until": "to",
    "search": "Search",
    "col.thumb": "",
    "col.recorded": "Recorded",
    "col.file": "File",
    "col.device": "Device",
    "col.officer": "Officer",
    "col.person": "Person",
    "col.case": "Case",
    "col.duration": "Duration",
    "col.size": "Size",
    "col.state": "State",
    "col.progress": "Progress",
    "state.stored": "stored",
    "state.quarantined": "quarantined",
    "play": "Play",
    "export": "Export manifest",
    "exported": "Signed manifest downloaded.",
    "custody": "Custody log",
    "action.received": "received",
    "action.verified": "verified",
    "action.viewed": "viewed",
    "action.exported": "exported",
    "quarantine": "Quarantined: {reason}",
  },
  "zh-CN": {
    "in_flight": "正在上传",
    "no_uploads": "没有正在进行的上传。",
    "none": "没有符合条件的证据。",
    "device": "设备",
    "officer": "民警",
    "person": "人员",
    "case": "案号",
    "since": "录制时间从",
    "until": "至",
    "search": "查询",
    "col.thumb": "",
    "col.recorded": "录制时间",
    "col.file": "文件",
    "col.device": "设备",
    "col.officer": "民警",
    "col.person": "人员",
    "col.case": "案号",
    "col.duration": "时长",
    "col.size": "大小",
    "col.state": "状态",
    "col.progress": "进度",
    "state.stored": "已入库",
    "state.quarantined": "已隔离",
    "play": "播放",
    "export": "导出签名清单",
    "exported": "已下载签名清单。",
    "custody": "保管记录",
    "action.received": "接收",
    "action.verified": "校验",
    "action.viewed": "查看",
    "action.exported": "导出",
    "quarantine": "已隔离：{reason}",
  },
};

let objectUrl = null;

export function dispose() {
  if (objectUrl) URL.revokeObjectURL(objectUrl);
  objectUrl = null;
}

function mb(n) {
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export async function render(root, ctx) {
  const { t } = ctx;
  const f = { device_id: ctx.params.device_id || "", officer: ctx.params.officer || "", person_id: ctx.params.person_id || "", case_ref: ctx.params.case_ref || "", since: "", until: "" };
  const input = (key, type = "text") => h("input", { type, value: f[key], dataset: { filter: key }, oninput: (e) => { f[key] = e.target.value; } });
  const upBody = h("tbody");
  const upEmpty = h("p", { class: "muted" }, t("no_uploads"));
  const evBody = h("tbody");
  const evEmpty = h("p", { class: "muted" });
  const detail = h("div", { class: "evidence-detail" });
  const video = h("video", { controls: true, class: "player evidence-player", hidden: true });

  // -- uploads in flight ---------------------------------------------------
  const rows = new Map();
  function upsertUpload(u) {
    if (u.state && u.state !== "receiving") {
      rows.get(u.upload_id || u.id)?.remove();
      rows.delete(u.upload_id || u.id);
      upEmpty.hidden = rows.size > 0;
      return;
    }
    const id = u.upload_id || u.id;
    const pct = u.length ? Math.floor((u.offset / u.length) * 100) : 0;
    const bar = h("progress", { max: 100, value: pct });
    const cells = [h("td", {}, u.device_id), h("td", {}, u.filename || ""), h("td", {}, bar, ` ${pct}% · ${mb(u.offset)} / ${mb(u.length)}`)];
    let tr = rows.get(id);
    if (tr) replace(tr, ...cells);
    else {
      tr = h("tr", { dataset: { upload: id } }, ...cells);
      rows.set(id, tr);
      upBody.append(tr);
    }
    tr.dataset.offset = String(u.offset);
    upEmpty.hidden = true;
  }
  async function loadUploads() {
    const list = await ctx.api("/api/uploads/");
    rows.forEach((tr) => tr.remove());
    rows.clear();
    list.forEach(upsertUpload);
    upEmpty.hidden = rows.size > 0;
  }

  // -- evidence list -------------------------------------------------------
  async function loadEvidence() {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(f)) {
      if (!v) continue;
      q.set(k, k === "since" || k === "until" ? new Date(v).toISOString() : v);
    }
    const list = await ctx.api(`/api/evidence?${q}`);
    evEmpty.textContent = list.length ? "" : t("none");
    replace(evBody, list.map((e) => h("tr", { dataset: { id: e.id, state: e.state }, class: e.state === "quarantined" ? "level-yellow" : null },
      h("td", {}, e.has_thumbnail ? h("img", { src: `/api/evidence/${e.id}/thumbnail.jpg`, alt: "", loading: "lazy", class: "evidence-thumb" }) : ""),
      h("td", {}, e.recorded_at ? ctx.fmt.time(e.recorded_at) : ""),
      h("td", {}, e.filename || ""),
      h("td", {}, e.device_id || ""),
      h("td", {}, e.officer || ""),
      h("td", {}, e.person_id || ""),
      h("td", {}, e.case_ref || ""),
      h("td", {}, e.media && e.media.duration_s ? `${Math.round(e.media.duration_s)} s` : ""),
      h("td", {}, mb(e.size)),
      h("td", {}, t(`state.${e.state}`)),
      h("td", {}, h("button", { class: "btn", onclick: () => show(e.id) }, e.state === "stored" ? t("play") : "…")))));
  }

  async function show(id) {
    const e = await ctx.api(`/api/evidence/${id}`);
    const custody = h("table", { class: "data custody" },
      h("tbody", {}, e.custody.map((c) => h("tr", { dataset: { action: c.action } },
        h("td", {}, ctx.fmt.time(c.at)), h("td", {}, t(`action.${c.action}`)), h("td", {}, c.actor)))));
    const head = [
      h("h2", {}, e.filename || `#${e.id}`),
      h("p", { class: "mono" }, `SHA-256 ${e.sha256}`),
      e.media && e.media.video_codec ? h("p", { class: "muted" }, `${e.media.container} · ${e.media.video_codec} ${e.media.width}×${e.media.height}` +
        (e.media.gps && e.media.gps.length ? ` · GPS ${e.media.gps[0].lat}, ${e.media.gps[0].lon}` : "")) : null,
      e.state === "quarantined" ? notice("warning", t("quarantine", { reason: e.quarantine_reason || "" }), "") : null,
      e.state === "stored" && ctx.can("evidence.export") ? h("button", { class: "btn", dataset: { export: e.id }, onclick: () => exportManifest(e.id) }, t("export")) : null,
      h("h3", {}, t("custody")), custody,
    ];
    replace(detail, ...head.filter(Boolean));
    if (e.state === "stored") {
      const res = await ctx.api(`/api/evidence/${id}/file`, { raw: true });
      dispose();
      objectUrl = URL.createObjectURL(await res.blob());
      video.src = objectUrl;
      video.hidden = false;
      video.play().catch(() => {});
      // the server logged the viewing: show the fresh custody log
      const fresh = await ctx.api(`/api/evidence/${id}`);
      replace(custody, h("tbody", {}, fresh.custody.map((c) => h("tr", { dataset: { action: c.action } },
        h("td", {}, ctx.fmt.time(c.at)), h("td", {}, t(`action.${c.action}`)), h("td", {}, c.actor)))));
    } else {
      video.hidden = true;
    }
  }

  async function exportManifest(id) {
    const manifest = await ctx.api(`/api/evidence/${id}/export`, { method: "POST" });
    const url = URL.createObjectURL(new Blob([JSON.stringify(manifest, null, 2)], { type: "application/json" }));
    const a = h("a", { href: url, download: `evidence-${id}-manifest.json` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
    await show(id);
  }

  const th = (keys) => h("thead", {}, h("tr", {}, keys.map((k) => h("th", {}, t(k)))));
  replace(root,
    h("h2", {}, t("in_flight")),
    h("div", { class: "table-wrap" }, h("table", { class: "data uploads" }, th(["col.device", "col.file", "col.progress"]), upBody)), upEmpty,
    h("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); loadEvidence(); } },
      h("label", {}, t("device"), " ", input("device_id")), " ",
      h("label", {}, t("officer"), " ", input("officer")), " ",
      h("label", {}, t("person"), " ", input("person_id")), " ",
      h("label", {}, t("case"), " ", input("case_ref")), " ",
      h("label", {}, t("since"), " ", input("since", "datetime-local")), " ",
      h("label", {}, t("until"), " ", input("until", "datetime-local")), " ",
      h("button", { class: "btn btn-primary", type: "submit" }, t("search"))),
    h("div", { class: "table-wrap" }, h("table", { class: "data evidence" },
      th(["col.thumb", "col.recorded", "col.file", "col.device", "col.officer", "col.person", "col.case", "col.duration", "col.size", "col.state", ""].map((k) => k || "col.thumb")),
      evBody)), evEmpty,
    video, detail);
  await Promise.all([loadUploads(), loadEvidence()]);
  ctx.on("upload.progress", upsertUpload);
  ctx.on("upload.completed", () => loadEvidence());
  ctx.on("hello", () => { loadUploads(); loadEvidence(); });
}
