// The map: zones, the latest position of every tracker, a person's track over
// a chosen period, and live positions and alerts from the event socket.
// Works with no tile server reachable (vector layers still draw). When the
// configured tiles are GCJ-02 (Chinese providers), coordinates are converted
// for display: the server does it for what it returns (?datum=gcj02), this
// module for live positions (eviltransform forward formula).
// Leaflet takes strings as HTML (tooltips, popups, attribution): this page only ever
// gives it DOM nodes built with h(), so zone and person names stay text.
import * as L from "/static/vendor/leaflet/leaflet-src.esm.js";
import { h, replace } from "../dom.js";

export const strings = {
  en: {
    title: "Map", person: "Person", since: "From", until: "To", show: "Show track", all: "All persons",
    feed: "Live alerts", none: "No alerts yet.", zones: "{n} zones", positions: "{n} trackers",
    points: "{n} positions in track", inclusion: "inclusion", exclusion: "exclusion", acc: "accuracy {m} m",
  },
  "zh-CN": {
    title: "地图", person: "人员", since: "开始", until: "结束", show: "显示轨迹", all: "全部人员",
    feed: "实时告警", none: "暂无告警。", zones: "{n} 个区域", positions: "{n} 个定位器",
    points: "轨迹共 {n} 个点", inclusion: "限定区域", exclusion: "禁入区域", acc: "精度 {m} 米",
  },
};

const LEVEL_COLOUR = { red: "#c62828", orange: "#ef6c00", yellow: "#f9a825", blue: "#1565c0" };
let map = null;

function outOfChina(lat, lon) { return !(lon >= 72.004 && lon <= 137.8347 && lat >= 0.8293 && lat <= 55.8271); }

export function wgs84ToGcj02(lat, lon) {
  if (outOfChina(lat, lon)) return [lat, lon];
  const a = 6378245.0, ee = 0.00669342162296594323, PI = Math.PI;
  const x = lon - 105.0, y = lat - 35.0;
  const common = (20 * Math.sin(6 * x * PI) + 20 * Math.sin(2 * x * PI)) * 2 / 3;
  let dLat = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x)) + common;
  dLat += (20 * Math.sin(y * PI) + 40 * Math.sin(y / 3 * PI)) * 2 / 3;
  dLat += (160 * Math.sin(y / 12 * PI) + 320 * Math.sin(y * PI / 30)) * 2 / 3;
  let dLon = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x)) + common;
  dLon += (20 * Math.sin(x * PI) + 40 * Math.sin(x / 3 * PI)) * 2 / 3;
  dLon += (150 * Math.sin(x / 12 * PI) + 300 * Math.sin(x / 30 * PI)) * 2 / 3;
  const rad = lat / 180 * PI;
  const magic = 1 - ee * Math.sin(rad) ** 2, sq = Math.sqrt(magic);
  dLat = dLat * 180 / ((a * (1 - ee)) / (magic * sq) * PI);
  dLon = dLon * 180 / (a / sq * Math.cos(rad) * PI);
  return [lat + dLat, lon + dLon];
}

/** Text content for a Leaflet tooltip: a node, never a string Leaflet would parse as HTML. */
function textNode(...parts) {
  return h("span", { class: "map-tip" }, ...parts);
}

/** Leaflet's attribution control sets innerHTML; this one shows the configured text as text. */
const Attribution = L.Control.extend({
  options: { position: "bottomright" },
  onAdd() {
    const div = h("div", { class: "leaflet-control-attribution leaflet-control" },
      h("a", { href: "https://leafletjs.com", target: "_blank", rel: "noopener" }, "Leaflet"),
      this.options.text ? [" | ", this.options.text] : null);
    L.DomEvent.disableClickPropagation(div);
    return div;
  },
});

function localInput(d) {
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

export async function render(root, ctx) {
  const settings = await ctx.api("/api/map/settings");
  const gcj = settings.tile_datum === "gcj02";
  const q = gcj ? "datum=gcj02" : "datum=wgs84";
  const show = (lat, lon) => (gcj ? wgs84ToGcj02(lat, lon) : [lat, lon]);

  const persons = await ctx.api("/api/persons");
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
  const feed = h("ul", { class: "feed", dataset: { role: "alert-feed" } }, h("li", { class: "muted" }, ctx.t("none")));
  replace(root,
    h("link", { rel: "stylesheet", href: "/static/vendor/leaflet/leaflet.css" }),
    h("div", { class: "toolbar" }, h("label", {}, ctx.t("person"), " ", personSel), " ",
      h("label", {}, ctx.t("since"), " ", since), " ", h("label", {}, ctx.t("until"), " ", until), " ", showBtn),
    info,
    h("div", { class: "map-layout" },
      h("div", { class: "map-main" }, mapDiv),
      h("div", { class: "map-side" }, h("h3", {}, ctx.t("feed")), feed)));

  map = L.map(mapDiv, { preferCanvas: false, attributionControl: false }).setView(show(settings.center[0], settings.center[1]), 13);
  new Attribution({ text: settings.attribution }).addTo(map);
  L.tileLayer(settings.tile_url, { maxZoom: 19 }).addTo(map);
  const zoneLayer = L.featureGroup().addTo(map);
  const trackLayer = L.featureGroup().addTo(map);
  const markers = new Map();

  const zones = await ctx.api(`/api/zones?${q}`);
  for (const z of zones) {
    const colour = z.kind === "exclusion" ? "#c62828" : "#2e7d32";
    const label = textNode(`${z.name || z.id} (${ctx.t(z.kind)})`);
    const style = { color: colour, weight: 2, fillOpacity: 0.12, className: `zone zone-${z.kind}` };
    let layer;
    if (z.geometry.type === "Point") {
      layer = L.circle([z.geometry.coordinates[1], z.geometry.coordinates[0]], { ...style, radius: z.radius_m });
    } else {
      layer = L.geoJSON(z.geometry, { style: () => style });
    }
    layer.bindTooltip(label).addTo(zoneLayer);
  }

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
    const [lat, lon] = p.shown || show(p.lat, p.lon);
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
    paint(p.device_id);
    mapDiv.dataset.positions = String(markers.size);
  }

  const latest = await ctx.api(`/api/positions/latest?${q}`);
  for (const f of latest.features) {
    const [lon, lat] = f.geometry.coordinates;
    placeMarker({ ...f.properties, shown: [lat, lon] });
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

  ctx.on("position", (p) => { if (p.in_order !== false) placeMarker(p); });
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
      const [lat, lon] = show(a.position.lat, a.position.lon);
      alertMarkers.set(a.id, L.circleMarker([lat, lon], { radius: 10, color: LEVEL_COLOUR[a.level] || "#000", weight: 3, fill: false, className: `alert-marker level-${a.level}` })
        .bindTooltip(textNode(text)).addTo(map));
    }
    mapDiv.dataset.alerts = String(alertMarkers.size);
  }
  // the pushes, and the alerts open when the page loads (oldest first, so the newest ends on
  // top; one pushed meanwhile is newer than what the list says of it)
  const pushed = new Set();
  ctx.on("alert", (msg) => { if (msg.alert) { pushed.add(msg.alert.id); showAlert(msg.alert); } });
  for (const a of [...await ctx.api("/api/alerts?state=ongoing&limit=500")].reverse()) if (!pushed.has(a.id)) showAlert(a);
}

export function dispose() {
  if (map) { map.remove(); map = null; }
}
