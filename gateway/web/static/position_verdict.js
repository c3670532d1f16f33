// A remote check-in's position as the console shows it (check-ins page, person timeline): the
// verdict against the person's zones, where, and which zones were breached or near their border.
import { h } from "./dom.js";

export const strings = {
  en: {
    "pos.ok": "in the allowed area", "pos.breach": "outside the allowed area", "pos.uncertain": "position uncertain", "pos.no_zones": "no zones set",
    "pos.where": "{lat}, {lon} ±{acc} m", "pos.zone.breach": "breach: {zones}", "pos.zone.border": "near the border: {zones}",
    "pos.remote": "phone (link #{id})",
  },
  "zh-CN": {
    "pos.ok": "位于规定区域内", "pos.breach": "不在规定区域内", "pos.uncertain": "位置无法确定", "pos.no_zones": "未设定区域",
    "pos.where": "{lat}, {lon} ±{acc} 米", "pos.zone.breach": "越界：{zones}", "pos.zone.border": "靠近边界：{zones}",
    "pos.remote": "手机（链接 #{id}）",
  },
};

/** The source of a check-in as text: a kiosk's id, or the phone of a remote link. */
export function sourceText(t, kioskId) {
  const m = /^remote:(\d+)$/.exec(kioskId || "");
  return m ? t("pos.remote", { id: m[1] }) : kioskId;
}

/** A chip with the verdict (data-verdict for tests and colours) and the details after it; null without a position. */
export function positionView(t, p) {
  if (!p) return null;
  const names = (state) => p.zones.filter((z) => z.state === state).map((z) => z.name || z.zone_id).join(", ");
  const bad = names("breach"), near = names("border");
  return h("span", { class: "position-verdict", dataset: { verdict: p.verdict } },
    h("span", { class: ["chip", p.verdict === "breach" ? "chip-bad" : p.verdict === "ok" ? "chip-ok" : null] }, t(`pos.${p.verdict}`)), " ",
    h("span", { class: "muted small" }, [t("pos.where", { lat: p.lat.toFixed(5), lon: p.lon.toFixed(5), acc: Math.round(p.accuracy_m) }),
      bad ? ` · ${t("pos.zone.breach", { zones: bad })}` : "", near ? ` · ${t("pos.zone.border", { zones: near })}` : "",
      ...(p.notes || []).map((n) => ` · ${n}`)].join("")));
}
