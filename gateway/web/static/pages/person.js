// One supervised person (params {id}): details, enrollment photos with their
// quality verdicts, enrollment from the browser, track playback on a map
// (../track_player.js) and the merged timeline (../timeline.js).

import { h, replace, notice } from "../dom.js";
import { personFields } from "../person_form.js";
import { personTimeline, strings as timelineStrings } from "../timeline.js";
import { trackPlayer, strings as playerStrings } from "../track_player.js";
import { checkinLinks, strings as linkStrings } from "../checkin_links.js";

const own = {
  en: {
    "photos": "Enrollment photos",
    "upload": "Add photo",
    "camera": "Take a photo with the camera",
    "capture": "Capture and enroll",
    "camera_failed": "No camera: {detail}",
    "uploading": "Checking photo…",
    "accepted": "Accepted",
    "refused": "Refused: {reasons}",
    "no_photos": "No enrollment photos yet: check-ins cannot be verified.",
    "delete": "Remove",
    "confirm_delete": "Remove this enrollment photo?",
    "metrics": "face {face_px} px · sharpness {sharpness} · brightness {brightness}",
    "timeline": "Timeline", "track": "Track playback",
    "edit": "Edit",
    "save": "Save",
    "saved": "Saved.",
    "deactivate": "End supervision (deactivate)",
    "confirm_deactivate": "Mark this person as no longer supervised? Their records stay.",
    "inactive": "no longer supervised",
    "devices": "Devices",
    "no_devices": "No device is bound to this person.",
    "d.id": "Device", "d.kind": "Kind", "d.state": "State", "d.seen": "Last seen", "d.battery": "Battery",
    "level.strict": "strict supervision", "level.ordinary": "ordinary supervision", "level.lenient": "lenient supervision",
    "officer": "officer {name}",
    "error": "Not done: {detail}",
    "proceedings": "Proceedings",
    "video_call": "Video session with this person",
    "p.remote": "remote video session",
    "p.camera": "Camera", "p.kind": "Kind", "p.case": "Case reference", "p.start": "Start", "p.stop": "Stop and seal",
    "p.recording": "recording since {t}", "p.sealed": "sealed", "no_proceedings": "No proceeding with this person yet.",
    "kind.reception": "reception", "kind.announcement": "announcement", "kind.warning": "admonition", "kind.talk": "talk",
    "kind.mediation": "mediation", "kind.education": "education", "kind.release": "release",
  },
  "zh-CN": {
    "photos": "建档照片",
    "upload": "添加照片",
    "camera": "用摄像头拍照",
    "capture": "拍照并建档",
    "camera_failed": "无法使用摄像头：{detail}",
    "uploading": "正在检查照片…",
    "accepted": "已采用",
    "refused": "未采用：{reasons}",
    "no_photos": "尚无建档照片：无法核验签到。",
    "delete": "删除",
    "confirm_delete": "删除这张建档照片？",
    "metrics": "人脸 {face_px} 像素 · 清晰度 {sharpness} · 亮度 {brightness}",
    "timeline": "时间线", "track": "轨迹回放",
    "edit": "编辑",
    "save": "保存",
    "saved": "已保存。",
    "deactivate": "解除矫正（停用）",
    "confirm_deactivate": "确认该人员已解除矫正？其记录将保留。",
    "inactive": "已解除矫正",
    "devices": "设备",
    "no_devices": "该人员没有绑定设备。",
    "d.id": "设备", "d.kind": "类型", "d.state": "状态", "d.seen": "最后在线", "d.battery": "电量",
    "level.strict": "严管", "level.ordinary": "普管", "level.lenient": "宽管",
    "officer": "责任人 {name}",
    "error": "未完成：{detail}",
    "proceedings": "执法活动",
    "video_call": "与该人员远程视频",
    "p.remote": "远程视频",
    "p.camera": "摄像机", "p.kind": "类型", "p.case": "案件编号", "p.start": "开始", "p.stop": "结束并封存",
    "p.recording": "自 {t} 起录制中", "p.sealed": "已封存", "no_proceedings": "该人员尚无执法活动。",
    "kind.reception": "报到", "kind.announcement": "宣告", "kind.warning": "警告训诫", "kind.talk": "谈话",
    "kind.mediation": "调解", "kind.education": "教育", "kind.release": "解矫",
  },
};

export const strings = Object.fromEntries(["en", "zh-CN"].map((lang) => [lang, { ...timelineStrings[lang], ...playerStrings[lang], ...linkStrings[lang], ...own[lang] }]));

let shownPlayer = null;

export async function render(root, ctx) {
  const { t } = ctx;
  const id = ctx.params.id;
  if (!id) {
    replace(root, notice("error", t("error"), "?id="));
    return;
  }
  const enc = encodeURIComponent(id);
  const [person, photos, devices] = await Promise.all([
    ctx.api(`/api/persons/${enc}`),
    ctx.api(`/api/persons/${enc}/photos`),
    ctx.api("/api/devices"),
  ]);
  const mine = devices.filter((d) => d.person_id === id);
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
  // A photo from the browser's camera (getUserMedia), enrolled like a file.
  let stream = null;
  const preview = h("video", { class: "enroll-preview", autoplay: true, muted: true, playsinline: true, hidden: true });
  const captureBtn = h("button", { type: "button", class: "btn btn-capture", hidden: true, onclick: async () => {
    const canvas = document.createElement("canvas");
    canvas.width = preview.videoWidth;
    canvas.height = preview.videoHeight;
    canvas.getContext("2d").drawImage(preview, 0, 0);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.92));
    stopCamera();
    await enroll(blob, "camera.jpg");
  } }, t("capture"));
  function stopCamera() {
    if (stream) for (const tr of stream.getTracks()) tr.stop();
    stream = null;
    preview.hidden = captureBtn.hidden = true;
  }
  ctx.signal.addEventListener("abort", stopCamera);
  const cameraBtn = h("button", { type: "button", class: "btn btn-camera", onclick: async () => {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 1280 }, height: { ideal: 720 } }, audio: false });
      preview.srcObject = stream;
      preview.hidden = captureBtn.hidden = false;
    } catch (e) {
      status.textContent = t("camera_failed", { detail: e.message || e.name });
    }
  } }, t("camera"));

  async function enroll(blob, name) {
    const form = new FormData();
    form.append("file", blob, name);
    status.textContent = t("uploading");
    delete status.dataset.verdict;
    try {
      await ctx.api(`/api/persons/${enc}/photos`, { body: form });
      status.textContent = t("accepted");
      status.dataset.verdict = "accepted";
      draw(await ctx.api(`/api/persons/${enc}/photos`));
    } catch (e) {
      const reasons = e.body?.detail?.verdict?.reasons;
      status.textContent = t("refused", { reasons: reasons ? reasons.join("; ") : e.message });
      status.dataset.verdict = "refused";
    }
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

  if (shownPlayer) shownPlayer.pause();  // rendered again (after an edit): the old one stops
  const player = shownPlayer = trackPlayer(ctx, id);
  const timeline = personTimeline(ctx, id, {
    onPlay: (range) => { player.load(range); player.el.scrollIntoView({ block: "nearest" }); },
    onRange: (range) => player.load(range),
  });

  const links = ctx.can("persons.write") ? checkinLinks(ctx, id) : null;
  if (links) await links.reload();

  const facts = [person.category, person.supervision_level ? t(`level.${person.supervision_level}`) : null, person.unit_id,
    person.officer ? t("officer", { name: person.officer }) : null, person.active ? null : t("inactive")].filter(Boolean);
  replace(root,
    h("p", { class: "person-head", dataset: { active: person.active ? "1" : "0" } },
      h("strong", {}, person.name), " ", h("span", { class: "mono muted" }, person.id), facts.length ? ` · ${facts.join(" · ")}` : ""),
    ctx.can("persons.write") ? await editForm() : null,
    h("h2", {}, t("devices")),
    mine.length
      ? h("div", { class: "table-wrap" }, h("table", { class: "data person-devices" },
        h("thead", {}, h("tr", {}, ["id", "kind", "state", "seen", "battery"].map((c) => h("th", {}, t(`d.${c}`))))),
        h("tbody", {}, mine.map((d) => h("tr", { dataset: { id: d.id, state: d.state } },
          h("td", { class: "mono" }, d.id, d.name ? h("span", { class: "muted" }, ` ${d.name}`) : null), h("td", {}, d.kind),
          h("td", {}, h("span", { class: ["state", `state-${d.state}`] }, d.state)),
          h("td", { class: "nowrap" }, d.last_seen_at ? ctx.fmt.time(d.last_seen_at) : "—"),
          h("td", {}, d.battery != null ? `${d.battery}%` : "—"))))))
      : h("p", { class: "muted" }, t("no_devices")),
    links ? [h("h2", {}, t("cl.title")), links.el] : null,
    h("h2", {}, t("proceedings")),
    ctx.can("proceedings.write") ? h("p", {}, ctx.link("calls", { person: id }, t("video_call"))) : null,
    await proceedingsSection(),
    h("h2", {}, t("photos")),
    canEnroll ? h("div", { class: "toolbar" }, h("label", { class: "btn" }, t("upload"), " ", file), " ", cameraBtn, " ", captureBtn, status) : null,
    canEnroll ? preview : null,
    gallery,
    h("h2", {}, t("track")), player.el,
    h("h2", {}, t("timeline")), timeline.el);
  await Promise.all([timeline.reload(), player.load()]);
  // Proceedings with this person: the list, stop for a running one, and a start form
  // (proceedings.write; the cameras the user may view).
  async function proceedingsSection() {
    const box = h("div", { class: "person-proceedings" });
    const canWrite = ctx.can("proceedings.write") && ctx.can("live.view");
    const cams = canWrite ? await ctx.api("/api/cameras") : [];
    const KINDS = ["reception", "announcement", "warning", "talk", "mediation", "education", "release"];
    async function draw() {
      const list = await ctx.api(`/api/proceedings?person_id=${enc}`);
      const err = h("span", { class: "form-error small", role: "alert" });
      const rows = list.map((p) => h("li", { dataset: { id: String(p.id), state: p.state } }, `#${p.id} · ${t(`kind.${p.kind}`)} · ${p.camera_ids.length ? "" : `${t("p.remote")} · `}${p.case_ref || ""} · `,
        p.state === "recording" ? t("p.recording", { t: ctx.fmt.time(p.started_at) }) : t("p.sealed"),
        p.state === "recording" && canWrite ? h("button", { type: "button", class: "btn btn-quiet btn-stop", onclick: async () => {
          try { await ctx.api(`/api/proceedings/${p.id}/stop`, { method: "POST" }); await draw(); } catch (e) { if (e.name !== "AbortError") err.textContent = e.message; }
        } }, t("p.stop")) : null));
      const cam = canWrite ? h("select", { name: "camera" }, cams.map((c) => h("option", { value: c.id }, c.name || c.id))) : null;
      const kind = canWrite ? h("select", { name: "kind" }, KINDS.map((k) => h("option", { value: k }, t(`kind.${k}`)))) : null;
      const ref = canWrite ? h("input", { name: "case_ref", maxlength: 100 }) : null;
      replace(box, rows.length ? h("ul", {}, rows) : h("p", { class: "muted" }, t("no_proceedings")),
        canWrite && cams.length ? h("form", { class: "proc-start", onsubmit: async (ev) => {
          ev.preventDefault();
          try {
            await ctx.api("/api/proceedings", { json: { camera_ids: [cam.value], kind: kind.value, person_id: id, case_ref: ref.value.trim() || null } });
            await draw();
          } catch (e) { if (e.name !== "AbortError") err.textContent = e.message; }
        } }, h("label", {}, t("p.camera"), cam), " ", h("label", {}, t("p.kind"), kind), " ", h("label", {}, t("p.case"), ref), " ",
        h("button", { type: "submit", class: "btn btn-start" }, t("p.start"))) : null, err);
    }
    await draw();
    return box;
  }

  async function editForm() {
    const fields = await personFields(ctx, person);
    const msg = h("p", { class: "form-error", role: "alert", hidden: true });
    const ok = h("p", { class: "muted", role: "status", hidden: true });
    const submit = h("button", { class: "btn btn-primary", type: "submit" }, t("save"));
    const deactivate = person.active ? h("button", { type: "button", class: "btn btn-quiet btn-deactivate", onclick: async () => {
      if (!confirm(t("confirm_deactivate"))) return;
      try {
        await ctx.api(`/api/persons/${enc}`, { method: "DELETE" });
        await render(root, ctx);
      } catch (e) {
        if (e?.name === "AbortError") return;
        msg.textContent = t("error", { detail: e.message });
        msg.hidden = false;
      }
    } }, t("deactivate")) : null;
    return h("details", { class: "person-edit" }, h("summary", {}, t("edit")), h("form", {
      class: ["units-form", "person-form"],
      onsubmit: async (ev) => {
        ev.preventDefault();
        msg.hidden = true;
        submit.disabled = true;
        try {
          await ctx.api(`/api/persons/${enc}`, { method: "PATCH", json: fields.body(false) });
          await render(root, ctx);
        } catch (e) {
          if (e?.name === "AbortError") return;
          msg.textContent = t("error", { detail: e.message });
          msg.hidden = false;
        } finally {
          submit.disabled = false;
        }
      },
    }, fields.elements, h("div", {}, submit, " ", deactivate), msg, ok));
  }

  ctx.on("checkin", (msg) => {
    if (msg.person_id !== id) return;
    timeline.reload();  // the first page again: a person has few check-ins a minute
    links?.reload();  // a remote check-in uses its link up
  });
}
