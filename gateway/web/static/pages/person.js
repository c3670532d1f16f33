// One supervised person (params {id}): details, enrollment photos with their
// quality verdicts, enrollment from the browser, and the timeline (positions,
// alerts, check-ins, face sightings, proceedings) from /api/persons/{id}/timeline.

import { h, replace, notice } from "../dom.js";

export const strings = {
  en: {
    "photos": "Enrollment photos",
    "upload": "Add photo",
    "uploading": "Checking photo…",
    "accepted": "Accepted",
    "refused": "Refused: {reasons}",
    "no_photos": "No enrollment photos yet: check-ins cannot be verified.",
    "delete": "Remove",
    "confirm_delete": "Remove this enrollment photo?",
    "metrics": "face {face_px} px · sharpness {sharpness} · brightness {brightness}",
    "timeline": "Timeline",
    "no_timeline": "Nothing recorded yet.",
    "t.position": "Position",
    "t.alert": "Alert",
    "t.checkin": "Check-in",
    "t.face_match": "Seen on camera",
    "t.proceeding": "Proceeding",
    "distance": "distance {d} (threshold {thr})",
    "result.accepted": "accepted",
    "result.rejected": "rejected",
    "result.retry": "retry",
  },
  "zh-CN": {
    "photos": "建档照片",
    "upload": "添加照片",
    "uploading": "正在检查照片…",
    "accepted": "已采用",
    "refused": "未采用：{reasons}",
    "no_photos": "尚无建档照片：无法核验签到。",
    "delete": "删除",
    "confirm_delete": "删除这张建档照片？",
    "metrics": "人脸 {face_px} 像素 · 清晰度 {sharpness} · 亮度 {brightness}",
    "timeline": "时间线",
    "no_timeline": "暂无记录。",
    "t.position": "位置",
    "t.alert": "告警",
    "t.checkin": "签到",
    "t.face_match": "摄像头识别",
    "t.proceeding": "执法活动",
    "distance": "距离 {d}（阈值 {thr}）",
    "result.accepted": "通过",
    "result.rejected": "未通过",
    "result.retry": "请重试",
  },
};

export async function render(root, ctx) {
  const { t } = ctx;
  const id = ctx.params.id;
  if (!id) {
    replace(root, notice("error", t("error"), "?id="));
    return;
  }
  const enc = encodeURIComponent(id);
  const [person, photos, timeline] = await Promise.all([
    ctx.api(`/api/persons/${enc}`),
    ctx.api(`/api/persons/${enc}/photos`),
    ctx.api(`/api/persons/${enc}/timeline?limit=200`),
  ]);
  const gallery = h("div", { class: "photos" });
  const status = h("p", { class: "muted", role: "status" });
  const file = h("input", { type: "file", accept: "image/jpeg,image/png,image/webp", "aria-label": t("upload"), name: "photo" });
  const canEnroll = ctx.can("faces.enroll");

  function card(p) {
    const q = p.quality || {};
    return h("figure", { class: "photo", dataset: { id: p.id } },
      canEnroll ? h("img", { src: p.url, alt: person.name, loading: "lazy" }) : null,
      h("figcaption", {},
        h("span", { class: "chip" }, t("accepted")), " ",
        h("span", { class: "muted" }, t("metrics", { face_px: q.face_px ?? "?", sharpness: q.sharpness ?? "?", brightness: q.brightness ?? "?" })),
        canEnroll ? h("button", { class: "btn", type: "button", onclick: () => remove(p) }, t("delete")) : null));
  }
  function draw(list) {
    replace(gallery, list.length ? list.map(card) : h("p", { class: "muted" }, t("no_photos")));
  }
  async function remove(p) {
    if (!confirm(t("confirm_delete"))) return;
    await ctx.api(`/api/persons/${enc}/photos/${p.id}`, { method: "DELETE" });
    draw(await ctx.api(`/api/persons/${enc}/photos`));
  }
  file.addEventListener("change", async () => {
    if (!file.files.length) return;
    const form = new FormData();
    form.append("file", file.files[0]);
    status.textContent = t("uploading");
    try {
      await ctx.api(`/api/persons/${enc}/photos`, { body: form });
      status.textContent = t("accepted");
      draw(await ctx.api(`/api/persons/${enc}/photos`));
    } catch (e) {
      const reasons = e.body?.detail?.verdict?.reasons;
      status.textContent = t("refused", { reasons: reasons ? reasons.join("; ") : e.message });
      status.dataset.verdict = "refused";
    }
    file.value = "";
  });
  draw(photos);

  const rows = timeline.items.slice().reverse().map((i) => {
    let what = "";
    if (i.type === "checkin") what = `${t("result." + i.result)} · ${i.kiosk_id} · ${t("distance", { d: i.distance ?? "–", thr: i.threshold ?? "–" })}${i.reason ? " · " + i.reason : ""}`;
    else if (i.type === "face_match") what = `${i.camera_id} · ${i.distance ?? ""}`;
    else if (i.type === "alert") what = `${i.alert.level} · ${i.alert.kind} · ${i.alert.state}`;
    else if (i.type === "position") what = `${i.lat.toFixed(5)}, ${i.lon.toFixed(5)}`;
    else if (i.type === "proceeding") what = `${i.kind} ${i.case_ref || ""} · ${i.state}`;
    return h("tr", { dataset: { type: i.type } },
      h("td", {}, ctx.fmt.time(i.at)), h("td", {}, t("t." + i.type)),
      h("td", {}, i.type === "checkin" ? h("img", { src: `/api/checkins/${i.id}/thumbnail.jpg`, alt: "", width: 48, height: 48, loading: "lazy" }) : null, " ", what));
  });

  replace(root,
    h("p", {}, h("strong", {}, person.name), " ", h("span", { class: "mono muted" }, person.id), person.category ? ` · ${person.category}` : ""),
    h("h2", {}, t("photos")),
    canEnroll ? h("div", { class: "toolbar" }, h("label", { class: "btn" }, t("upload"), " ", file), status) : null,
    gallery,
    h("h2", {}, t("timeline")),
    rows.length
      ? h("div", { class: "table-wrap" }, h("table", { class: "data timeline" }, h("tbody", {}, rows)))
      : h("p", { class: "muted" }, t("no_timeline")));
  ctx.on("checkin", async (msg) => {
    if (msg.person_id !== id) return;
    // cheap enough: a person has few events per minute
    const fresh = await ctx.api(`/api/persons/${enc}/timeline?limit=200`);
    if (fresh.items.length !== timeline.items.length) render(root, ctx);
  });
}
