// Check-in log (thumbnails, results, distances against the threshold, reasons)
// with live updates, and "seen in room": who the cameras recognised recently.

import { h, replace } from "../dom.js";
import { positionView, sourceText, strings as positionStrings } from "../position_verdict.js";

const own = {
  en: {
    "col.time": "Time", "col.person": "Person", "col.kiosk": "Kiosk", "col.result": "Result",
    "col.distance": "Distance / threshold", "col.reason": "Reason", "col.position": "Position", "col.photo": "Photo",
    "none": "No check-ins yet.",
    "seen": "Seen in room (last hour)",
    "unknown": "Unknown person",
    "no_seen": "Nobody recognised on the cameras in the last hour.",
    "result.accepted": "accepted", "result.rejected": "rejected", "result.retry": "retry",
    "received": "made offline; reached the gateway {t}",
  },
  "zh-CN": {
    "col.time": "时间", "col.person": "人员", "col.kiosk": "终端", "col.result": "结果",
    "col.distance": "距离 / 阈值", "col.reason": "原因", "col.position": "位置", "col.photo": "照片",
    "none": "暂无签到记录。",
    "seen": "室内识别（最近一小时）",
    "unknown": "未知人员",
    "no_seen": "最近一小时摄像头未识别到人员。",
    "result.accepted": "通过", "result.rejected": "未通过", "result.retry": "请重试",
    "received": "离线时签到，{t} 送达",
  },
};

export const strings = Object.fromEntries(["en", "zh-CN"].map((lang) => [lang, { ...positionStrings[lang], ...own[lang] }]));

export async function render(root, ctx) {
  const { t } = ctx;
  const tbody = h("tbody");
  const seenBox = h("div", { class: "seen" });

  function row(c) {
    const id = c.id ?? c.checkin_id;
    return h("tr", { dataset: { id, result: c.result } },
      h("td", {}, ctx.fmt.time(c.at), c.received_at ? h("div", { class: "muted small received" }, t("received", { t: ctx.fmt.time(c.received_at) })) : null),
      h("td", {}, ctx.link("person", { id: c.person_id }, c.person_id)),
      h("td", { class: "mono" }, sourceText(t, c.kiosk_id)),
      h("td", {}, h("span", { class: "chip" }, t("result." + c.result))),
      h("td", { class: "mono" }, `${c.distance ?? "–"} / ${c.threshold ?? "–"}`),
      h("td", {}, c.reason || ""),
      h("td", {}, positionView(t, c.position) || "–"),
      h("td", {}, h("img", { src: `/api/checkins/${id}/thumbnail.jpg`, alt: "", width: 64, height: 64, loading: "lazy" })));
  }
  async function loadLog() {
    const list = await ctx.api("/api/checkins?limit=200");
    replace(tbody, list.length ? list.map(row) : h("tr", {}, h("td", { colspan: 8, class: "muted" }, t("none"))));
  }
  async function loadSeen() {
    const data = await ctx.api("/api/faces/seen?minutes=60");
    const cams = Object.entries(data.cameras);
    replace(seenBox, cams.length ? cams.map(([cam, people]) =>
      h("div", { class: "seen-camera", dataset: { camera: cam } },
        h("h3", {}, cam),
        h("ul", {}, people.map((p) => h("li", { dataset: { person: p.person_id || "" } },
          p.snapshot ? h("img", { src: p.snapshot, alt: "", width: 40, height: 40, loading: "lazy" }) : null, " ",
          p.person_id ? ctx.link("person", { id: p.person_id }, p.person_id) : t("unknown"),
          " · ", h("span", { class: "muted" }, ctx.fmt.ago(p.last_seen))))))) : h("p", { class: "muted" }, t("no_seen")));
  }

  replace(root,
    h("div", { class: "table-wrap" }, h("table", { class: "data checkins" },
      h("thead", {}, h("tr", {}, ["time", "person", "kiosk", "result", "distance", "reason", "position", "photo"].map((k) => h("th", {}, t("col." + k))))),
      tbody)),
    h("h2", {}, t("seen")), seenBox);
  await Promise.all([loadLog(), loadSeen()]);
  ctx.on("checkin", loadLog);
  ctx.on("face.seen", loadSeen);
  ctx.on("hello", () => { loadLog(); loadSeen(); });
}
