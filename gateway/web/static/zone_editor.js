// Zones on the map page: drawn from /api/zones (display coordinates from the server,
// ?datum= the tiles' datum), and, for users with zones.write, drawn and edited with
// Leaflet-Geoman and saved through the same API as everything else (POST/PATCH/DELETE
// /api/zones; the geometry is sent in the tiles' datum and converted by the server).
// The server checks everything (self-crossing polygons, fewer than 3 points, a taken id,
// schedules); its message is shown next to the field it concerns.

import { h, placeFieldErrors, replace, select } from "./dom.js";

const DAYS = [1, 2, 3, 4, 5, 6, 7];

function layerFor(L, z, t) {
  const colour = z.kind === "exclusion" ? "#c62828" : "#2e7d32";
  const style = { color: colour, weight: 2, fillOpacity: 0.12, className: `zone zone-${z.kind}` };
  const g = z.geometry;
  const tip = h("span", { class: "map-tip" }, `${z.name || z.id} (${t(z.kind)})`);
  if (g.type === "Point") return L.circle([g.coordinates[1], g.coordinates[0]], { ...style, radius: z.radius_m }).bindTooltip(tip);
  // L.polygon, not L.geoJSON: Geoman edits a polygon directly (a GeoJSON group would be a layer group)
  const rings = (poly) => poly.map((ring) => ring.slice(0, -1).map(([lon, lat]) => [lat, lon]));
  const latlngs = g.type === "MultiPolygon" ? g.coordinates.map(rings) : rings(g.coordinates);
  return L.polygon(latlngs, style).bindTooltip(tip);
}

/** GeoJSON geometry (and radius) of a drawn or edited layer, in the tiles' datum. */
function geometryOf(layer) {
  if (layer.getRadius) {
    const c = layer.getLatLng();
    return { geometry: { type: "Point", coordinates: [c.lng, c.lat] }, radius_m: Math.round(layer.getRadius()) };
  }
  return { geometry: layer.toGeoJSON(15).geometry, radius_m: null };
}

function scheduleEditor(t, windows) {
  const rows = h("div", { class: "schedule-rows", dataset: { role: "schedule" } });
  function row(w) {
    const days = DAYS.map((d) => {
      const box = h("input", { type: "checkbox", name: "day", value: String(d) });
      box.checked = !w || w.days.includes(d);
      return h("label", { class: "checkbox day" }, box, t(`day.${d}`));
    });
    const start = h("input", { type: "time", name: "start", value: w?.start || "22:00", required: true });
    const end = h("input", { type: "time", name: "end", value: w?.end || "06:00", required: true });
    const el = h("div", { class: "schedule-row" }, days, " ", h("label", {}, t("z.from"), start), h("label", {}, t("z.to"), end),
      h("button", { type: "button", class: "btn btn-quiet", onclick: () => el.remove() }, t("z.remove_window")));
    rows.append(el);
  }
  for (const w of windows || []) row(w);
  const read = () => [...rows.querySelectorAll(".schedule-row")].map((el) => ({
    days: [...el.querySelectorAll("input[name=day]:checked")].map((b) => Number(b.value)),
    start: el.querySelector("input[name=start]").value,
    end: el.querySelector("input[name=end]").value,
  }));
  const el = h("fieldset", { class: "schedule" }, h("legend", {}, t("z.schedule")), h("p", { class: "muted" }, t("z.schedule_help")), rows,
    h("button", { type: "button", class: "btn", dataset: { role: "add-window" }, onclick: () => row(null) }, t("z.add_window")));
  return { el, read };
}

/** Where a server error belongs: a 422's list next to the fields it names (as every form,
 * dom.js); a message by what it is about (a taken id, the schedule, persons), else the shape. */
function placeError(form, err, errors, fallback) {
  if (placeFieldErrors(form, err)) return;
  const text = err?.message || String(err);
  const slot = err?.status === 409 ? errors.id : /schedule|time zone|timezone/i.test(text) ? errors.schedule : /person/i.test(text) ? errors.person_ids : fallback;
  slot.textContent = text;
  slot.hidden = false;
}

/**
 * Zones on `map` with their list in `side`. `persons` and `units` are [[id, label], ...].
 * Returns {group, reload}: the zones' feature group and a function that loads them again.
 */
export function zoneEditor(L, map, ctx, { side, datum, persons, units }) {
  const t = ctx.t;
  const writer = ctx.can("zones.write");
  const group = L.featureGroup().addTo(map);
  const list = h("ul", { class: "zone-list", dataset: { role: "zone-list" } });
  const formSlot = h("div", { dataset: { role: "zone-form-slot" } });
  const status = h("p", { class: "muted", role: "status", dataset: { role: "zone-status" } });
  let editing = null;  // {layer, zone, stop()}

  function stopEditing() {
    if (!editing) return;
    editing.stop();
    editing = null;
    replace(formSlot);
    map.pm.disableDraw();
  }

  function form(zone, layer) {
    const isNew = !zone;
    const errors = Object.fromEntries(["id", "name", "kind", "level", "buffer_m", "dwell_s", "person_ids", "schedule", "unit_id", "geometry"]
      .map((k) => [k, h("span", { class: "field-error", role: "alert", hidden: true, dataset: { field: k } })]));
    const id = h("input", { name: "id", maxlength: 64, pattern: "[A-Za-z0-9_.\\-]{1,64}", autocomplete: "off", placeholder: t("z.id_auto") });
    const name = h("input", { name: "name", maxlength: 200, value: zone?.name || "" });
    const kind = select([["inclusion", t("inclusion")], ["exclusion", t("exclusion")]], zone?.kind || "inclusion", { name: "kind" });
    const level = select([["", t("z.level_default")], ...["red", "orange", "yellow", "blue"].map((l) => [l, ctx.t(`level.${l}`)])], zone?.level || "", { name: "level" });
    const buffer = h("input", { type: "number", name: "buffer_m", min: 0, max: 10000, step: 1, value: zone?.buffer_m ?? 30 });
    const dwell = h("input", { type: "number", name: "dwell_s", min: 0, max: 86400, step: 1, value: zone?.dwell_s ?? 60 });
    const who = h("select", { name: "person_ids", multiple: true, size: Math.min(6, Math.max(2, persons.length)) },
      persons.map(([v, label]) => h("option", { value: v, selected: Boolean(zone?.person_ids.includes(v)) }, label)));
    const unit = units.length > 1 ? select(units, zone?.unit_id || ctx.user.unit_id || units[0][0], { name: "unit_id" }) : null;
    const schedule = scheduleEditor(t, zone?.schedule);
    const timezone = h("input", { name: "timezone", value: zone?.timezone || "", placeholder: "Asia/Shanghai" });
    const submit = h("button", { type: "submit", class: "btn btn-primary" }, t("z.save"));
    const ok = h("p", { class: "muted", role: "status", hidden: true });
    const field = (key, label, el) => h("label", {}, label, el, errors[key]);
    const f = h("form", {
      class: ["person-form", "zone-form"], dataset: { zone: zone?.id || "" },
      onsubmit: async (ev) => {
        ev.preventDefault();
        for (const e of Object.values(errors)) { e.hidden = true; e.textContent = ""; }
        for (const e of f.querySelectorAll(".field-error[data-placed]")) e.remove();
        ok.hidden = true;
        submit.disabled = true;
        const body = {
          name: name.value.trim() || null, kind: kind.value, level: level.value || null,
          buffer_m: Number(buffer.value), dwell_s: Number(dwell.value),
          person_ids: [...who.selectedOptions].map((o) => o.value),
          schedule: schedule.read(), timezone: timezone.value.trim() || null,
        };
        // an unchanged shape is not sent back: a round trip through the tiles' datum would move it
        if (isNew || editing?.moved) Object.assign(body, geometryOf(layer), { datum });
        if (!body.schedule.length) body.schedule = null;
        if (unit) body.unit_id = unit.value;
        try {
          if (isNew) {
            if (id.value.trim()) body.id = id.value.trim();
            await ctx.api("/api/zones", { json: body });
          } else {
            await ctx.api(`/api/zones/${encodeURIComponent(zone.id)}`, { method: "PATCH", json: body });
          }
          stopEditing();
          status.textContent = t("z.saved");
          await reload();
        } catch (e) {
          if (e?.name === "AbortError") return;
          placeError(f, e, errors, errors.geometry);
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("h3", {}, isNew ? t("z.new") : t("z.edit", { id: zone.id })),
    errors.geometry,
    isNew ? field("id", t("z.id"), id) : null,
    field("name", t("z.name"), name), field("kind", t("z.kind"), kind), field("level", t("z.level"), level),
    field("buffer_m", t("z.buffer"), buffer), field("dwell_s", t("z.dwell"), dwell),
    field("person_ids", t("z.persons"), who), h("p", { class: "muted" }, t("z.persons_help")),
    unit ? field("unit_id", t("z.unit"), unit) : null,
    schedule.el, errors.schedule, h("label", {}, t("z.timezone"), timezone),
    h("div", { class: "form-actions" }, submit, " ",
      h("button", { type: "button", class: "btn", onclick: async () => { stopEditing(); await reload(); } }, t("z.cancel")), " ",
      isNew ? null : h("button", { type: "button", class: "btn btn-quiet", dataset: { role: "delete-zone" }, onclick: async () => {
        if (!confirm(t("z.confirm_delete", { id: zone.id }))) return;
        try {
          await ctx.api(`/api/zones/${encodeURIComponent(zone.id)}`, { method: "DELETE" });
          stopEditing();
          status.textContent = t("z.deleted");
          await reload();
        } catch (e) { if (e?.name !== "AbortError") placeError(f, e, errors, errors.geometry); }
      } }, t("z.delete"))),
    ok);
    replace(formSlot, f);
    name.focus();
  }

  function edit(zone, layer) {
    stopEditing();
    layer.pm.enable({ allowSelfIntersection: true });
    editing = { layer, zone, moved: false, stop: () => { layer.pm.disable(); layer.off("pm:edit"); } };
    layer.on("pm:edit", () => { if (editing) editing.moved = true; });
    form(zone, layer);
  }

  function draw(shape) {
    stopEditing();
    status.textContent = t(shape === "Circle" ? "z.draw_circle_help" : "z.draw_polygon_help");
    // the server refuses a polygon that crosses itself, with the reason: drawing it is allowed
    map.pm.enableDraw(shape, { allowSelfIntersection: true });
  }

  map.on("pm:create", ({ layer }) => {
    status.textContent = "";
    layer.addTo(group);
    editing = { layer, zone: null, moved: true, stop: () => layer.remove() };
    form(null, layer);
  });

  async function reload() {
    const zones = await ctx.api(`/api/zones?datum=${datum}`);
    group.clearLayers();
    replace(list, zones.length ? null : h("li", { class: "muted" }, t("z.none")));
    for (const z of zones) {
      const layer = layerFor(L, z, t).addTo(group);
      const el = layer.getElement?.();
      if (el) el.dataset.zone = z.id;
      const item = h("li", { dataset: { zone: z.id, kind: z.kind } },
        h("span", { class: `zone-swatch zone-${z.kind}` }), " ",
        h("button", { type: "button", class: "link-button", onclick: () => map.fitBounds(layer.getBounds(), { maxZoom: 17 }) }, z.name || z.id),
        " ", h("span", { class: "muted" }, [t(z.kind), z.level ? ctx.t(`level.${z.level}`) : null, z.schedule ? t("z.curfew") : null].filter(Boolean).join(" · ")),
        writer ? [" ", h("button", { type: "button", class: "btn btn-quiet", dataset: { role: "edit-zone" }, onclick: () => edit(z, layer) }, t("z.edit_short"))] : null);
      list.append(item);
    }
    side.dataset.zones = String(zones.length);
    return zones;
  }

  replace(side,
    h("h3", {}, t("z.title")),
    writer ? h("div", { class: "toolbar" },
      h("button", { type: "button", class: "btn", dataset: { role: "draw-polygon" }, onclick: () => draw("Polygon") }, t("z.draw_polygon")), " ",
      h("button", { type: "button", class: "btn", dataset: { role: "draw-circle" }, onclick: () => draw("Circle") }, t("z.draw_circle"))) : null,
    status, formSlot, list);
  return { group, reload };
}
