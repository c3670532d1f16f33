// The command-centre dashboard (GET /api/dashboard, the figures of the user's units): persons
// by category and supervision level, open alerts by colour with the oldest unacknowledged,
// devices online/offline by kind with the offline ones, today's check-ins against those due,
// proceedings running and today's, and alerts per day over 30 days (ECharts). Refreshed when
// a push says something changed (debounced), and after a reconnect.

import { h, replace } from "../dom.js";

// ECharts (1 MB) is imported beside the first GET /api/dashboard rather than before the
// page's module runs: the figures' request no longer waits for it (bench/bench_console.py).
let echarts = null;
let echartsLoading = null;
const loadEcharts = () => (echartsLoading ||= import("/static/vendor/echarts/echarts.esm.min.js")
  .then((m) => { echarts = m; }, (e) => { echartsLoading = null; throw e; }));  // Retry imports again

export const strings = {
  en: {
    persons: "Persons under supervision", alerts: "Open alerts", oldest: "Oldest unacknowledged", none: "none",
    devices: "Devices", online: "online", offline: "offline", unknown: "unknown", offline_list: "Not online",
    checkins: "Check-ins today", due: "{done} of {due} due done", accepted: "{n} accepted", rejected: "{n} refused",
    proceedings: "Proceedings", running: "{n} running", today: "{n} today", per_day: "Alerts per day (30 days)",
    wall: "Wall screen", "level.none": "not set", "level.strict": "strict", "level.ordinary": "ordinary", "level.lenient": "lenient",
    uncategorised: "no category", ago: "open since {t}", newest: "Newest alerts",
  },
  "zh-CN": {
    persons: "在管人员", alerts: "未处理告警", oldest: "最早未确认", none: "无",
    devices: "设备", online: "在线", offline: "离线", unknown: "未知", offline_list: "未在线设备",
    checkins: "今日签到", due: "应签 {due} 人次，已签 {done}", accepted: "通过 {n}", rejected: "未通过 {n}",
    proceedings: "执法活动", running: "进行中 {n}", today: "今日 {n}", per_day: "近 30 天每日告警",
    wall: "大屏模式", "level.none": "未定级", "level.strict": "严管", "level.ordinary": "普管", "level.lenient": "宽管",
    uncategorised: "未分类", ago: "自 {t} 起未处理", newest: "最新告警",
  },
};

export const LEVEL_COLOURS = { red: "#c62828", orange: "#ef6c00", yellow: "#f9a825", blue: "#1565c0" };
const LEVELS = ["red", "orange", "yellow", "blue"];
let chart = null;
let timer = null;

export function dispose() {
  clearTimeout(timer);
  if (chart) { chart.dispose(); chart = null; }
}

export function alertsChart(el, days, t, title) {
  const c = echarts.init(el, null, { renderer: "canvas" });
  const ink = getComputedStyle(el).color || "#888";  // the console's text colour: ECharts' default is dark on the dark theme
  c.setOption({
    animation: false,
    textStyle: { color: ink },
    title: title ? { text: title, left: 0, textStyle: { fontSize: 14, color: ink } } : undefined,
    tooltip: { show: false },  // its HTML would go through innerHTML
    legend: { top: title ? 24 : 0, right: 0, data: LEVELS.map((l) => t(`level.${l}`)), textStyle: { color: ink } },
    grid: { left: 36, right: 12, top: title ? 56 : 32, bottom: 24 },
    xAxis: { type: "category", data: days.map((d) => d.day.slice(5)), axisLabel: { color: ink } },
    yAxis: { type: "value", minInterval: 1, axisLabel: { color: ink } },
    series: LEVELS.map((l) => ({ name: t(`level.${l}`), type: "bar", stack: "all", itemStyle: { color: LEVEL_COLOURS[l] }, data: days.map((d) => d[l]) })),
  });
  return c;
}

export async function render(root, ctx) {
  const { t } = ctx;
  const body = h("div", { class: "dashboard" });
  const chartEl = h("div", { class: "dash-chart", dataset: { role: "alerts-per-day" } });
  replace(root, h("div", { class: "toolbar" }, h("span", { class: "spacer" }), ctx.link("wall", {}, t("wall"))), body, chartEl);

  async function load() {
    const [d, newest] = await Promise.all([ctx.api("/api/dashboard"), ctx.api("/api/alerts?state=ongoing&limit=8"), loadEcharts()]);
    const card = (cls, title, ...content) => h("section", { class: ["dash-card", cls] }, h("h2", {}, title), ...content);
    const chips = (entries) => h("div", { class: "chips" }, entries.map(([k, v]) => h("span", { class: "chip", dataset: { key: k } }, `${k} ${v}`)));
    const old = d.oldest_unacknowledged;
    const kinds = Object.entries(d.devices).sort();
    replace(body,
      card("dash-persons", t("persons"), h("div", { class: "big", dataset: { value: String(d.persons) } }, String(d.persons)),
        chips(Object.entries(d.persons_by_category).map(([k, v]) => [k || t("uncategorised"), v])),
        chips(Object.entries(d.persons_by_level).map(([k, v]) => [t(`level.${k}`), v]))),
      card("dash-alerts", t("alerts"), h("div", { class: "levels" }, LEVELS.map((l) =>
        h("div", { class: ["level-figure", `level-${l}`], dataset: { level: l, value: String(d.open_alerts[l]) } },
          h("span", { class: "big" }, String(d.open_alerts[l])), h("span", {}, ctx.t(`level.${l}`))))),
        h("p", { class: "oldest small" }, `${t("oldest")}: `, old
          ? ctx.link("alerts", { id: old.id }, `${ctx.t(`kind.${old.kind}`)} · ${old.person_id || old.device_id || ""} · ${t("ago", { t: ctx.fmt.time(old.opened_at) })}`)
          : t("none"))),
      card("dash-newest", t("newest"), h("ul", { class: "newest-alerts" }, newest.length
        ? newest.map((a) => h("li", { class: `level-${a.level}`, dataset: { id: String(a.id), level: a.level, state: a.state } },
          ctx.link("alerts", { id: a.id }, `${ctx.fmt.time(a.opened_at)} · ${ctx.t(`kind.${a.kind}`)} · ${a.person_id || a.device_id || ""} · ${ctx.t(`state.${a.state}`)}`)))
        : h("li", { class: "muted" }, t("none")))),
      card("dash-devices", t("devices"), h("table", { class: "data compact" }, h("tbody", {}, kinds.map(([kind, c]) =>
        h("tr", { dataset: { kind } }, h("td", {}, ctx.t(`device.${kind}`)), h("td", { class: "num online" }, `${t("online")} ${c.online}`),
          h("td", { class: "num offline" }, `${t("offline")} ${c.offline}`), h("td", { class: "num muted" }, `${t("unknown")} ${c.unknown}`))))),
        d.offline_devices.length ? h("details", {}, h("summary", {}, `${t("offline_list")} (${d.offline_devices.length})`),
          h("ul", { class: "offline-list" }, d.offline_devices.map((x) => h("li", { dataset: { id: x.id } }, `${x.id}${x.name ? ` · ${x.name}` : ""}`,
            x.last_seen_at ? h("span", { class: "muted" }, ` · ${ctx.fmt.ago(x.last_seen_at)}`) : null)))) : null),
      card("dash-checkins", t("checkins"), h("div", { class: "big", dataset: { due: String(d.checkins_today.due), done: String(d.checkins_today.done) } },
        `${d.checkins_today.done}/${d.checkins_today.due}`), h("p", { class: "small" }, t("due", d.checkins_today)),
      h("p", { class: "small" }, t("accepted", { n: d.checkins_today.accepted }), " · ", t("rejected", { n: d.checkins_today.rejected }))),
      card("dash-proceedings", t("proceedings"), h("div", { class: "big", dataset: { running: String(d.proceedings_running) } }, String(d.proceedings_running)),
        h("p", { class: "small" }, t("running", { n: d.proceedings_running }), " · ", t("today", { n: d.proceedings_today }))));
    if (chart) chart.dispose();
    chart = alertsChart(chartEl, d.alerts_per_day, ctx.t, t("per_day"));
    chartEl.dataset.total = String(d.alerts_per_day.reduce((n, x) => n + x.red + x.orange + x.yellow + x.blue, 0));
  }
  const soon = () => { clearTimeout(timer); timer = setTimeout(() => load().catch((e) => console.warn(e)), 800); };
  for (const topic of ["alert", "device.state", "checkin", "proceeding"]) ctx.on(topic, soon);
  ctx.on("hello", soon);
  await load();
}
