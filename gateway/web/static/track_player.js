// Track playback for a person (the person page): their track from
// /api/persons/{id}/track on a Leaflet map, and a marker moved along it in fix time
// with play/pause, a time slider over the fixes and a speed (1×, 10×, 60×, 600×).
// The server converts coordinates for GCJ-02 tiles (?datum=gcj02); nothing is converted
// here. Leaflet is only ever given numbers and DOM nodes built with h().
//
// For tests: the player's root has data-role="playback", and data-index / data-fix-time
// (the fix the marker is at, or last passed while playing), data-lat / data-lon (where the
// marker is drawn), data-fixes (how many) and data-playing ("1" while playing).
import { h, replace } from "./dom.js";
import { leaflet, STYLESHEETS, textAttribution } from "./leaflet.js";

export const strings = {
  en: {
    "player.play": "Play", "player.pause": "Pause", "player.speed": "Speed", "player.time": "Time",
    "player.none": "No positions in this period.", "player.fixes": "{n} positions",
    "player.capped": "{n} positions: the newest {n} of the period",
  },
  "zh-CN": {
    "player.play": "播放", "player.pause": "暂停", "player.speed": "速度", "player.time": "时间",
    "player.none": "该时段没有定位。", "player.fixes": "{n} 个定位点",
    "player.capped": "{n} 个定位点：该时段最新的 {n} 个",
  },
};

export const SPEEDS = [1, 10, 60, 600];
const LIMIT = 5000;

/**
 * The player: {el, load({since, until})}. `since`/`until`: ISO times or null (then the
 * person's newest positions). Stops and removes its map when ctx.signal aborts.
 */
export function trackPlayer(ctx, personId) {
  const { t } = ctx;
  const playBtn = h("button", { type: "button", class: "btn", dataset: { role: "play" }, disabled: true }, t("player.play"));
  const slider = h("input", { type: "range", min: 0, max: 0, step: 1, value: 0, disabled: true, dataset: { role: "slider" }, "aria-label": t("player.time") });
  const speed = h("select", { name: "speed", dataset: { role: "speed" }, "aria-label": t("player.speed") },
    SPEEDS.map((s) => h("option", { value: String(s) }, `${s}×`)));
  speed.value = "60";
  const clock = h("span", { class: "mono player-time", dataset: { role: "player-time" } });
  const info = h("p", { class: "muted small", dataset: { role: "player-info" } });
  const mapDiv = h("div", { class: "track-map" });
  const el = h("section", { class: "track-player", dataset: { role: "playback", fixes: "0", index: "", fixTime: "", playing: "0" } },
    STYLESHEETS.map((href) => h("link", { rel: "stylesheet", href })),
    h("div", { class: "toolbar" }, playBtn, " ", h("label", { class: "player-slider" }, t("player.time"), " ", slider), " ",
      h("label", {}, t("player.speed"), " ", speed), " ", clock),
    info, mapDiv);

  let L = null, map = null, line = null, marker = null;
  let fixes = [];  // {t (ms), lat, lon, time (ISO)}
  let vt = 0, raf = 0, lastFrame = 0, index = 0;

  function ensureMap(settings) {
    if (map) return;
    map = L.map(mapDiv, { attributionControl: false }).setView([settings.center[0], settings.center[1]], 13);
    textAttribution(L, settings.attribution).addTo(map);
    L.tileLayer(settings.tile_url, { maxZoom: 19 }).addTo(map);
  }

  function show(i, at = null) {
    index = i;
    const f = fixes[i];
    let pos = [f.lat, f.lon];
    const g = fixes[i + 1];
    if (at != null && g && g.t > f.t) {  // between two fixes while playing: in proportion to the time
      const k = Math.min(1, Math.max(0, (at - f.t) / (g.t - f.t)));
      pos = [f.lat + (g.lat - f.lat) * k, f.lon + (g.lon - f.lon) * k];
    }
    marker.setLatLng(pos);
    slider.value = String(i);
    el.dataset.index = String(i);
    el.dataset.fixTime = f.time;
    [el.dataset.lat, el.dataset.lon] = pos.map((v) => v.toFixed(6));
    clock.textContent = ctx.fmt.time(f.time);
  }

  function pause() {
    if (raf) cancelAnimationFrame(raf);
    raf = 0;
    el.dataset.playing = "0";
    playBtn.textContent = t("player.play");
  }

  function frame(now) {
    vt += (now - lastFrame) * Number(speed.value);
    lastFrame = now;
    let i = index;
    while (i + 1 < fixes.length && fixes[i + 1].t <= vt) i++;
    if (i >= fixes.length - 1) {
      show(fixes.length - 1);
      pause();
      return;
    }
    show(i, vt);
    raf = requestAnimationFrame(frame);
  }

  function play() {
    if (fixes.length < 2) return;
    if (index >= fixes.length - 1) show(0);  // from the start again
    vt = fixes[index].t;
    lastFrame = performance.now();
    el.dataset.playing = "1";
    playBtn.textContent = t("player.pause");
    raf = requestAnimationFrame(frame);
  }

  playBtn.addEventListener("click", () => (raf ? pause() : play()));
  slider.addEventListener("input", () => {
    if (!fixes.length) return;
    show(Number(slider.value));
    vt = fixes[index].t;
  });
  ctx.signal.addEventListener("abort", () => {
    pause();
    if (map) map.remove();
    map = null;
  });

  /** Never throws: a failure is shown in the player. */
  async function load(range = {}) {
    try {
      await fetchAndDraw(range);
    } catch (e) {
      if (e?.name !== "AbortError") info.textContent = e.message || String(e);
    }
  }

  async function fetchAndDraw({ since = null, until = null }) {
    pause();
    const settings = await ctx.api("/api/map/settings");
    const params = new URLSearchParams({ datum: settings.tile_datum === "gcj02" ? "gcj02" : "wgs84", limit: String(LIMIT) });
    if (since) params.set("since", since);
    if (until) params.set("until", until);
    const track = await ctx.api(`/api/persons/${encodeURIComponent(personId)}/track?${params}`);
    L ||= await leaflet();  // Leaflet's classic build, shared with the map page (static/leaflet.js)
    ensureMap(settings);
    if (line) line.remove();
    if (marker) marker.remove();
    line = marker = null;
    fixes = track.features.filter((f) => f.geometry.type === "Point").map((f) => ({
      t: Date.parse(f.properties.fix_time), time: f.properties.fix_time, lat: f.geometry.coordinates[1], lon: f.geometry.coordinates[0],
    }));
    el.dataset.fixes = String(fixes.length);
    el.dataset.index = el.dataset.fixTime = "";
    slider.max = String(Math.max(0, fixes.length - 1));
    slider.disabled = playBtn.disabled = fixes.length < 2;
    if (!fixes.length) {
      info.textContent = t("player.none");
      replace(clock);
      return;
    }
    info.textContent = t(fixes.length >= LIMIT ? "player.capped" : "player.fixes", { n: fixes.length });
    const latlngs = fixes.map((f) => [f.lat, f.lon]);
    line = L.polyline(latlngs, { color: "#1565c0", weight: 3, opacity: 0.7, className: "track-line" }).addTo(map);
    marker = L.circleMarker(latlngs[0], { radius: 8, color: "#c62828", fillOpacity: 1, className: "track-marker" }).addTo(map);
    map.invalidateSize();
    if (fixes.length > 1) map.fitBounds(line.getBounds(), { padding: [20, 20], maxZoom: 17 });
    else map.setView(latlngs[0], 16);
    show(0);
  }

  return { el, load, pause };
}
