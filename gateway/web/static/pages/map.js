// The map: zones (drawn and edited here by users with zones.write: zone_editor.js), the
// latest position of every tracker, a person's track over a chosen period, and live
// positions and alerts from the event socket. Works with no tile server reachable (vector
// layers still draw). Coordinates come from the server in the tiles' datum: ?datum= on
// what it returns, `display` on pushed positions and alert places when the tiles are
// GCJ-02 (Chinese providers); the browser holds no datum code.
// Leaflet takes strings as HTML (tooltips, popups, attribution): this page only ever
// gives it DOM nodes built with h(), so zone and person names stay text.
import { h, replace } from "../dom.js";
import { leaflet, STYLESHEETS, textAttribution } from "../leaflet.js";
import { zoneEditor } from "../zone_editor.js";

export const strings = {
  en: {
    title: "Map", person: "Person", since: "From", until: "To", show: "Show track", all: "All persons",
    feed: "Live alerts", none: "No alerts yet.", zones: "{n} zones", positions: "{n} trackers",
    points: "{n} positions in track", inclusion: "inclusion", exclusion: "exclusion", acc: "accuracy {m} m",
    "z.title": "Zones", "z.none": "No zones yet.", "z.draw_polygon": "Draw an area", "z.draw_circle": "Draw a circle",
    "z.draw_polygon_help": "Click the corners on the map; click the first corner again to close the area.",
    "z.draw_circle_help": "Click the centre, then click where the edge should be.",
    "z.new": "New zone", "z.edit": "Zone {id}: drag the corners to change it", "z.edit_short": "Edit", "z.id": "ID", "z.id_auto": "generated when empty",
    "z.name": "Name", "z.kind": "Kind", "z.level": "Alert level", "z.level_default": "by kind (inclusion orange, exclusion red)",
    "z.buffer": "Buffer (m): how far outside the edge before it counts", "z.dwell": "Dwell (s): how long before it counts",
    "z.persons": "Persons", "z.persons_help": "None selected: everyone of the zone's unit and the units below it.", "z.unit": "Unit",
    "z.schedule": "Curfew windows", "z.schedule_help": "An inclusion zone with windows is a curfew: the person must be inside during them.",
    "z.add_window": "Add a window", "z.remove_window": "Remove", "z.from": "from", "z.to": "to", "z.timezone": "Time zone",
    "z.save": "Save zone", "z.cancel": "Cancel", "z.delete": "Delete zone", "z.confirm_delete": "Delete zone {id}? Alerts it raised stay.",
    "z.saved": "Zone saved.", "z.deleted": "Zone deleted.", "z.curfew": "curfew",
    "day.1": "Mon", "day.2": "Tue", "day.3": "Wed", "day.4": "Thu", "day.5": "Fri", "day.6": "Sat", "day.7": "Sun",
  },
  "zh-CN": {
    title: "地图", person: "人员", since: "开始", until: "结束", show: "显示轨迹", all: "全部人员",
    feed: "实时告警", none: "暂无告警。", zones: "{n} 个区域", positions: "{n} 个定位器",
    points: "轨迹共 {n} 个点", inclusion: "限定区域", exclusion: "禁入区域", acc: "精度 {m} 米",
    "z.title": "电子围栏", "z.none": "暂无电子围栏。", "z.draw_polygon": "绘制区域", "z.draw_circle": "绘制圆形",
    "z.draw_polygon_help": "在地图上依次点击各个顶点；再次点击第一个顶点闭合区域。",
    "z.draw_circle_help": "先点击圆心，再点击边缘位置。",
    "z.new": "新建电子围栏", "z.edit": "电子围栏 {id}：拖动顶点即可修改", "z.edit_short": "编辑", "z.id": "编号", "z.id_auto": "留空则自动生成",
    "z.name": "名称", "z.kind": "类型", "z.level": "告警等级", "z.level_default": "按类型（限定区域橙色，禁入区域红色）",
    "z.buffer": "缓冲距离（米）：越过边界多远才算", "z.dwell": "持续时间（秒）：持续多久才算",
    "z.persons": "适用人员", "z.persons_help": "不选：适用于本单位及下级单位的全部人员。", "z.unit": "所属单位",
    "z.schedule": "宵禁时段", "z.schedule_help": "限定区域设置时段即为宵禁：该时段内人员必须在区域内。",
    "z.add_window": "添加时段", "z.remove_window": "删除", "z.from": "从", "z.to": "至", "z.timezone": "时区",
    "z.save": "保存电子围栏", "z.cancel": "取消", "z.delete": "删除电子围栏", "z.confirm_delete": "删除电子围栏 {id}？已产生的告警保留。",
    "z.saved": "电子围栏已保存。", "z.deleted": "电子围栏已删除。", "z.curfew": "宵禁",
    "day.1": "一", "day.2": "二", "day.3": "三", "day.4": "四", "day.5": "五", "day.6": "六", "day.7": "日",
  },
};

const LEVEL_COLOUR = { red: "#c62828", orange: "#ef6c00", yellow: "#f9a825", blue: "#1565c0" };
let map = null;

/** Text content for a Leaflet tooltip: a node, never a string Leaflet would parse as HTML. */
function textNode(...parts) {
  return h("span", { class: "map-tip" }, ...parts);
}

function localInput(d) {
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

export async function render(root, ctx) {
  // Pushes that arrive while the page loads wait here, and are applied after what the
  // requests below return (they are newer). The requests go out together: the page is
  // ready after two round trips, whatever the size of the database (docs/console.md).
  const early = [];
  let apply = null;
  ctx.on("alert", (msg) => { if (msg.alert) (apply ? apply.alert(msg.alert) : early.push(["alert", msg.alert])); });
  ctx.on("position", (p) => { if (p.in_order !== false) (apply ? apply.position(p) : early.push(["position", p])); });
  const [L, settings, persons, units, openAlerts] = await Promise.all([
    leaflet(), ctx.api("/api/map/settings"), ctx.api("/api/persons"),
    ctx.can("zones.write") ? ctx.api("/api/units") : [], ctx.api("/api/alerts?state=ongoing&limit=500"),
  ]);
  const datum = settings.tile_datum;
  const q = `datum=${datum}`;

  const personName = new Map(persons.map((p) => [p.id, p.name]));
  const who = (id) => (personName.get(id) ? `${personName.get(id)} (${id})` : id);
  const personSel = h("select", { name: "person", dataset: { role: "person" } },
    h("option", { value: "" }, ctx.t("all")),
    ...persons.map((p) => h("option", { value: p.id }, `${p.name} (${p.id})`)));
  if (ctx.params.person) personSel.value = ctx.params.person;
  const now = new Date();
  const since = h("input", { type: "datetime-local", name: "since", value: localInput(new Date(now - 24 * 3600e3)) });
  const until = h("input", { type: "datetime-local", name: "until", value: localInput(new Date(now.getTime() + 3600e3)) });
  const showBtn = h("button", { type: "button" }, ctx.t("show"));
  const info = h("p", { class: "muted", dataset: { role: "map-info" } });
  const mapDiv = h("div", { id: "gw-map", class: "map-canvas" });
  const zoneSide = h("div", { class: "zone-side", dataset: { role: "zones" } });
  const feed = h("ul", { class: "feed", dataset: { role: "alert-feed" } }, h("li", { class: "muted" }, ctx.t("none")));
  replace(root,
    STYLESHEETS.map((href) => h("link", { rel: "stylesheet", href })),
    h("div", { class: "toolbar" }, h("label", {}, ctx.t("person"), " ", personSel), " ",
      h("label", {}, ctx.t("since"), " ", since), " ", h("label", {}, ctx.t("until"), " ", until), " ", showBtn),
    info,
    h("div", { class: "map-layout" },
      h("div", { class: "map-main" }, mapDiv),
      h("div", { class: "map-side" }, zoneSide, h("h3", {}, ctx.t("feed")), feed)));

  map = L.map(mapDiv, { preferCanvas: false, attributionControl: false }).setView(settings.center, 13);
  if (ctx.lang === "zh-CN") map.pm.setLang("zh");
  textAttribution(L, settings.attribution).addTo(map);
  L.tileLayer(settings.tile_url, { maxZoom: 19 }).addTo(map);
  const trackLayer = L.featureGroup().addTo(map);
  const markers = new Map();

  const zoneEd = zoneEditor(L, map, ctx, {
    side: zoneSide, datum, persons: persons.map((p) => [p.id, `${p.name} (${p.id})`]),
    units: units.map((u) => [u.id, u.name || u.id]),
  });
  const [zones, latest] = await Promise.all([zoneEd.reload(), ctx.api(`/api/positions/latest?${q}`)]);
  const zoneLayer = zoneEd.group;

  // A person's state colour: the level of their most severe ongoing alert, else blue.
  const ongoing = new Map();  // alert id -> alert, open or acknowledged
  const RANK = { red: 4, orange: 3, yellow: 2, blue: 1 };
  function stateOf(personId) {
    let level = null;
    for (const a of ongoing.values()) {
      if (a.person_id === personId && (!level || RANK[a.level] > RANK[level])) level = a.level;
    }
    return level;
  }
  const personOf = new Map();  // device id -> person id

  function paint(deviceId) {
    const m = markers.get(deviceId);
    if (!m) return;
    const level = stateOf(personOf.get(deviceId));
    m.setStyle({ color: level ? LEVEL_COLOUR[level] : "#1565c0" });
    const el = m.getElement?.();
    if (el) el.dataset.level = level || "none";
  }

  function placeMarker(p) {
    const [lat, lon] = p.display || [p.lat, p.lon];
    let m = markers.get(p.device_id);
    const tip = textNode(`${p.device_id}${p.person_id ? " · " + who(p.person_id) : ""} · ${ctx.fmt.time(p.fix_time)}` +
      (p.accuracy_m != null ? ` · ${ctx.t("acc", { m: Math.round(p.accuracy_m) })}` : ""));
    if (p.person_id) personOf.set(p.device_id, p.person_id);
    if (!m) {
      m = L.circleMarker([lat, lon], { radius: 7, color: "#1565c0", fillOpacity: 0.9, className: "tracker" }).addTo(map);
      // click-through to the person (their page: timeline, devices, track)
      m.on("click", () => { const pid = personOf.get(p.device_id); if (pid) ctx.navigate("person", { id: pid }); });
      markers.set(p.device_id, m);
      const el = m.getElement?.();
      if (el) el.dataset.device = p.device_id;
    } else {
      m.setLatLng([lat, lon]);
    }
    if (m.getTooltip()) m.setTooltipContent(tip); else m.bindTooltip(tip);
    const el = m.getElement?.();
    if (el) el.dataset.latlng = `${lat.toFixed(6)},${lon.toFixed(6)}`;
    paint(p.device_id);
    mapDiv.dataset.positions = String(markers.size);
  }

  for (const f of latest.features) {
    const [lon, lat] = f.geometry.coordinates;
    placeMarker({ ...f.properties, display: [lat, lon] });
  }

  async function loadTrack() {
    trackLayer.clearLayers();
    const pid = personSel.value;
    if (!pid) { info.textContent = `${ctx.t("zones", { n: zones.length })} · ${ctx.t("positions", { n: markers.size })}`; return; }
    const params = new URLSearchParams({ since: new Date(since.value).toISOString(), until: new Date(until.value).toISOString() });
    const track = await ctx.api(`/api/persons/${encodeURIComponent(pid)}/track?${params}&${q}`);
    const pts = track.features.filter((f) => f.geometry.type === "Point");
    L.geoJSON(track, {
      style: () => ({ color: "#6a1b9a", weight: 3 }),
      pointToLayer: (f, ll) => L.circleMarker(ll, { radius: 3, color: "#6a1b9a", className: "track-point" }),
    }).addTo(trackLayer);
    info.textContent = ctx.t("points", { n: pts.length });
    mapDiv.dataset.trackPoints = String(pts.length);
    if (pts.length) map.fitBounds(trackLayer.getBounds(), { maxZoom: 17 });
  }
  showBtn.addEventListener("click", () => loadTrack().catch((e) => { if (e.name !== "AbortError") info.textContent = e.message; }));
  await loadTrack();
  if (!personSel.value && zones.length) map.fitBounds(zoneLayer.getBounds(), { maxZoom: 16 });

  const alertMarkers = new Map();  // alert id -> its ring on the map
  function showAlert(a) {
    if (a.state === "resolved") ongoing.delete(a.id); else ongoing.set(a.id, a);
    for (const [dev, pid] of personOf) if (pid === a.person_id) paint(dev);
    if (feed.firstChild && feed.firstChild.classList.contains("muted")) feed.firstChild.remove();
    const text = `${ctx.fmt.time(a.updated_at)} · ${ctx.t("kind." + a.kind)} · ${a.person_id ? who(a.person_id) : a.device_id || ""} · ${ctx.t("state." + a.state)}`;
    let li = feed.querySelector(`li[data-id="${a.id}"]`);
    if (!li) { li = h("li", { dataset: { id: String(a.id) } }); feed.prepend(li); }
    li.dataset.level = a.level; li.dataset.state = a.state; li.dataset.kind = a.kind;
    li.className = `level-${a.level}`;
    li.textContent = text;
    alertMarkers.get(a.id)?.remove();
    alertMarkers.delete(a.id);
    if (a.position && a.state !== "resolved") {
      const [lat, lon] = a.position.display || [a.position.lat, a.position.lon];
      alertMarkers.set(a.id, L.circleMarker([lat, lon], { radius: 10, color: LEVEL_COLOUR[a.level] || "#000", weight: 3, fill: false, className: `alert-marker level-${a.level}` })
        .bindTooltip(textNode(text)).addTo(map));
    }
    mapDiv.dataset.alerts = String(alertMarkers.size);
  }
  // the alerts open when the page loaded (oldest first, so the newest ends on top), then
  // what was pushed meanwhile (newer than what the list says of it), then pushes as they come
  const pushed = new Set(early.filter(([kind]) => kind === "alert").map(([, a]) => a.id));
  for (const a of [...openAlerts].reverse()) if (!pushed.has(a.id)) showAlert(a);
  for (const [kind, value] of early) (kind === "alert" ? showAlert : placeMarker)(value);
  apply = { alert: showAlert, position: placeMarker };
}

export function dispose() {
  if (map) { map.remove(); map = null; }
}
