// A person's timeline (the person page): /api/persons/{id}/timeline, newest first, with
// a checkbox per kind, a date range, and "Load more" following the page's `next` cursor.
// Positions come summarised as stays and trips. Every value from the server is text (h()).
//
// For tests: the list is data-role="timeline", each item an <li> with data-kind, data-id
// and data-at; the button data-role="more" is hidden on the last page.
import { h, replace } from "./dom.js";
import { positionView, sourceText, strings as positionStrings } from "./position_verdict.js";

export const KINDS = ["alert", "checkin", "face", "proceeding", "evidence", "kiosk", "stay", "trip"];

const own = {
  en: {
    "tl.kinds": "Show", "tl.since": "From", "tl.until": "To", "tl.apply": "Apply", "tl.more": "Load more", "tl.loading": "Loading…",
    "tl.none": "Nothing recorded in this period.", "tl.on_map": "Play on the map",
    "k.alert": "Alert", "k.checkin": "Check-in", "k.face": "Seen on camera", "k.proceeding": "Proceeding", "k.evidence": "Body-cam", "k.kiosk": "At a kiosk",
    "ev.report": "written report", "ev.leave_request": "leave request {from} – {to}", "ev.call_officer": "called the duty officer", "ev.sos": "SOS",
    "k.stay": "Stay", "k.trip": "Trip",
    "stay": "stayed {d} near {lat}, {lon} · until {end} · {n} positions within {r} m",
    "trip": "{km} km in {d} · top speed {v} km/h · {n} positions · until {end}",
    "trip.jump": "moved {km} km in {d} with no position on the way · until {end}",
    "partial": "began earlier: the rest follows below",
    "distance": "distance {d} (threshold {thr})",
    "result.accepted": "accepted", "result.rejected": "rejected", "result.retry": "retry",
    "alert.assignee": "assigned to {who}", "alert.assessment": "assessment: {text}", "alert.disposal": "disposal: {text}",
    "alert.feedback": "feedback: {text}", "alert.notes": "history: {n}",
    "state.open": "open", "state.acknowledged": "acknowledged", "state.resolved": "resolved",
    "proc.recording": "recording", "proc.sealed": "sealed until {t}", "proc.remote": "remote video session", "proc.verified": "verified present {m} min", "ev.quarantined": "quarantined",
    "dur.s": "{s} s", "dur.m": "{m} min", "dur.h": "{h} h {m} min", "dur.d": "{d} d {h} h",
  },
  "zh-CN": {
    "tl.kinds": "显示", "tl.since": "开始日期", "tl.until": "结束日期", "tl.apply": "筛选", "tl.more": "加载更多", "tl.loading": "加载中…",
    "tl.none": "该时段暂无记录。", "tl.on_map": "在地图上回放",
    "k.alert": "告警", "k.checkin": "签到", "k.face": "摄像头识别", "k.proceeding": "执法活动", "k.evidence": "执法记录仪", "k.kiosk": "自助终端",
    "ev.report": "思想汇报", "ev.leave_request": "请假申请 {from} 至 {to}", "ev.call_officer": "呼叫值班民警", "ev.sos": "紧急求助",
    "k.stay": "停留", "k.trip": "行程",
    "stay": "在 {lat}, {lon} 附近停留 {d} · 至 {end} · {n} 个定位点，范围 {r} 米",
    "trip": "{km} 公里，用时 {d} · 最高时速 {v} 公里 · {n} 个定位点 · 至 {end}",
    "trip.jump": "移动 {km} 公里，用时 {d}，途中无定位 · 至 {end}",
    "partial": "开始于更早时间：其余部分见下方",
    "distance": "距离 {d}（阈值 {thr}）",
    "result.accepted": "通过", "result.rejected": "未通过", "result.retry": "请重试",
    "alert.assignee": "指派给 {who}", "alert.assessment": "研判：{text}", "alert.disposal": "处置：{text}",
    "alert.feedback": "反馈：{text}", "alert.notes": "处理记录 {n} 条",
    "state.open": "未处理", "state.acknowledged": "已确认", "state.resolved": "已解除",
    "proc.recording": "录制中", "proc.sealed": "已封存（至 {t}）", "proc.remote": "远程视频", "proc.verified": "核验在场 {m} 分钟", "ev.quarantined": "已隔离",
    "dur.s": "{s} 秒", "dur.m": "{m} 分钟", "dur.h": "{h} 小时 {m} 分钟", "dur.d": "{d} 天 {h} 小时",
  },
};

export const strings = Object.fromEntries(["en", "zh-CN"].map((lang) => [lang, { ...positionStrings[lang], ...own[lang] }]));

function duration(t, seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return t("dur.s", { s });
  const m = Math.round(s / 60);
  if (m < 60) return t("dur.m", { m });
  if (m < 24 * 60) return t("dur.h", { h: Math.floor(m / 60), m: m % 60 });
  return t("dur.d", { d: Math.floor(m / 1440), h: Math.floor((m % 1440) / 60) });
}

const span = (a, b) => (Date.parse(b) - Date.parse(a)) / 1000;

/** The text of one item (its kind's own fields). */
function describe(ctx, i) {
  const { t } = ctx;
  switch (i.kind) {
    case "alert": {
      const a = i.alert;
      return [h("span", { class: ["level", `level-${a.level}`] }, t(`level.${a.level}`)), " ", a.kind, a.message ? ` · ${a.message}` : "", " · ",
        h("span", { class: "alert-state" }, t(`state.${a.state}`)),
        a.assignee ? ` · ${t("alert.assignee", { who: a.assignee })}` : "",
        a.assessment ? ` · ${t("alert.assessment", { text: a.assessment })}` : "",
        a.disposal ? ` · ${t("alert.disposal", { text: a.disposal + (a.disposal_note ? ` (${a.disposal_note})` : "") })}` : "",
        a.feedback ? ` · ${t("alert.feedback", { text: a.feedback })}` : "",
        a.notes?.length ? ` · ${t("alert.notes", { n: a.notes.length })}` : ""];
    }
    case "checkin":
      return [h("img", { src: `/api/checkins/${i.id}/thumbnail.jpg`, alt: "", width: 48, height: 48, loading: "lazy" }), " ",
        `${t(`result.${i.result}`)} · ${sourceText(t, i.kiosk_id)} · ${t("distance", { d: i.distance ?? "–", thr: i.threshold ?? "–" })}${i.reason ? ` · ${i.reason}` : ""}`,
        i.position ? [" · ", positionView(t, i.position)] : null];
    case "face":
      return `${i.camera_id}${i.distance != null ? ` · ${i.distance.toFixed(2)}` : ""}`;
    case "proceeding":
      return `${ctx.t(`kind.${i.proceeding_kind}`)}${i.case_ref ? ` · ${i.case_ref}` : ""} · ${i.state === "sealed" && i.stopped_at
        ? t("proc.sealed", { t: ctx.fmt.time(i.stopped_at) }) : t("proc.recording")} · ${i.camera_ids.length ? i.camera_ids.join(", ") : t("proc.remote")}` +
        (i.verified_minutes != null ? ` · ${t("proc.verified", { m: i.verified_minutes })}` : "");
    case "evidence":
      return `${i.filename || `#${i.id}`} · ${i.device_id || ""}${i.officer ? ` · ${i.officer}` : ""}${i.case_ref ? ` · ${i.case_ref}` : ""} · ` +
        `${(i.size / 1e6).toFixed(1)} MB${i.state === "quarantined" ? ` · ${t("ev.quarantined")}` : ""}`;
    case "kiosk": {
      const p = i.payload || {};
      const what = t(`ev.${i.event}`, { from: p.from ?? "", to: p.to ?? "" });
      const text = typeof p.text === "string" ? p.text : typeof p.reason === "string" ? p.reason : "";
      return [`${what === `ev.${i.event}` ? i.event : what} · ${i.kiosk_id}`, text ? h("span", { class: "kiosk-text" }, ` · ${text}`) : null];
    }
    case "stay":
      return t("stay", { d: duration(t, span(i.at, i.end)), lat: i.lat.toFixed(5), lon: i.lon.toFixed(5), end: ctx.fmt.time(i.end), n: i.fixes, r: Math.round(i.radius_m) });
    case "trip": {
      const vars = { km: (i.distance_m / 1000).toFixed(2), d: duration(t, span(i.at, i.end)), end: ctx.fmt.time(i.end), n: i.fixes,
        v: i.max_speed_mps != null ? (i.max_speed_mps * 3.6).toFixed(1) : "–" };
      return t(i.fixes ? "trip" : "trip.jump", vars);
    }
    default:
      return "";
  }
}

/** Local midnight of a yyyy-mm-dd date input, as ISO (UTC); `end`: the day's last millisecond. */
function dayBound(value, end) {
  if (!value) return null;
  const d = new Date(`${value}T00:00:00`);
  if (end) d.setDate(d.getDate() + 1), d.setMilliseconds(-1);
  return d.toISOString();
}

/**
 * The timeline section: {el, reload()}. `onPlay({since, until})`: asked to play a stay or
 * trip on the map (or the whole chosen period when the dates change).
 */
export function personTimeline(ctx, personId, { onPlay = null, onRange = null } = {}) {
  const { t } = ctx;
  const allowed = KINDS.filter((k) => k !== "evidence" || ctx.can("evidence.read"));
  const boxes = new Map(allowed.map((k) => [k, h("input", { type: "checkbox", name: "kind", value: k, checked: true })]));
  const since = h("input", { type: "date", name: "since", dataset: { role: "since" } });
  const until = h("input", { type: "date", name: "until", dataset: { role: "until" } });
  const list = h("ol", { class: "timeline", dataset: { role: "timeline" } });
  const empty = h("p", { class: "muted", hidden: true }, t("tl.none"));
  const more = h("button", { type: "button", class: "btn", hidden: true, dataset: { role: "more" } }, t("tl.more"));
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  let next = null, seq = 0;

  function item(i) {
    const play = (i.kind === "stay" || i.kind === "trip") && onPlay
      ? h("button", { type: "button", class: "btn btn-quiet small", dataset: { role: "play-item" }, onclick: () => onPlay({ since: i.at, until: i.end }) }, t("tl.on_map"))
      : null;
    return h("li", { class: ["tl-item", `tl-${i.kind}`], dataset: { kind: i.kind, id: String(i.id), at: i.at } },
      h("time", { class: "tl-time nowrap", datetime: i.at }, ctx.fmt.time(i.at)),
      h("span", { class: ["chip", "tl-kind"] }, t(`k.${i.kind}`)),
      h("span", { class: "tl-what" }, describe(ctx, i), i.partial ? h("span", { class: "muted" }, ` · ${t("partial")}`) : null, play ? [" ", play] : null));
  }

  function query() {
    const p = new URLSearchParams({ limit: "50" });
    const kinds = [...boxes].filter(([, b]) => b.checked).map(([k]) => k);
    p.set("kinds", (kinds.length ? kinds : allowed).join(","));
    const s = dayBound(since.value, false), u = dayBound(until.value, true);
    if (s) p.set("since", s);
    if (u) p.set("until", u);
    return p;
  }

  async function fetchPage(append) {
    const mine = ++seq;
    const p = query();
    if (append && next) p.set("before", next);
    more.disabled = true;
    list.dataset.loading = "1";
    try {
      const page = await ctx.api(`/api/persons/${encodeURIComponent(personId)}/timeline?${p}`);
      if (mine !== seq) return;
      const rows = page.items.map(item);
      if (append) list.append(...rows); else replace(list, rows);
      next = page.next;
      more.hidden = !next;
      empty.hidden = list.childElementCount > 0;
      error.hidden = true;
    } catch (e) {
      if (e?.name === "AbortError" || mine !== seq) return;
      error.textContent = e.message;
      error.hidden = false;
    } finally {
      if (mine === seq) {
        more.disabled = false;
        delete list.dataset.loading;
      }
    }
  }

  const reload = () => fetchPage(false);
  more.addEventListener("click", () => fetchPage(true));
  for (const b of boxes.values()) b.addEventListener("change", reload);
  for (const d of [since, until]) {
    d.addEventListener("change", () => {
      reload();
      if (onRange) onRange({ since: dayBound(since.value, false), until: dayBound(until.value, true) });
    });
  }

  const el = h("section", { class: "person-timeline" },
    h("form", { class: "toolbar tl-filters", onsubmit: (ev) => { ev.preventDefault(); reload(); } },
      h("fieldset", { class: "tl-kinds", dataset: { role: "kinds" } }, h("legend", { class: "small muted" }, t("tl.kinds")),
        [...boxes].map(([k, b]) => h("label", { class: "tl-kind-box", dataset: { kind: k } }, b, " ", t(`k.${k}`)))),
      h("label", {}, t("tl.since"), " ", since), " ", h("label", {}, t("tl.until"), " ", until)),
    error, list, empty, more);
  return { el, reload };
}
