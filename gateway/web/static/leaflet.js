// Leaflet with Leaflet-Geoman (drawing and editing zones), both from npm with the lock file
// of gateway/web and served from their dist folders by gateway/web/routes.py.
//
// Geoman is a classic script that adds itself to the global `L` (L.PM and init hooks on
// L.Map and the layers). Leaflet's ES module namespace is frozen and sets no global, so the
// pages that draw on a map load Leaflet's UMD build the same way, once per document.

const SCRIPTS = ["/static/vendor/leaflet/leaflet-src.js", "/static/vendor/geoman/leaflet-geoman.min.js"];
export const STYLESHEETS = ["/static/vendor/leaflet/leaflet.css", "/static/vendor/geoman/leaflet-geoman.css"];

let loading = null;

function script(src) {
  return new Promise((resolve, reject) => {
    const el = document.createElement("script");
    el.src = src;
    el.onload = resolve;
    el.onerror = () => reject(new Error(`${src} did not load`));
    document.head.append(el);
  });
}

/** Leaflet's attribution control sets innerHTML; this one shows the configured text as text. */
export function textAttribution(L, text) {
  const Control = L.Control.extend({
    options: { position: "bottomright" },
    onAdd() {
      const div = document.createElement("div");
      div.className = "leaflet-control-attribution leaflet-control";
      const link = Object.assign(document.createElement("a"), { href: "https://leafletjs.com", target: "_blank", rel: "noopener", textContent: "Leaflet" });
      div.append(link, ...(text ? [" | ", text] : []));
      L.DomEvent.disableClickPropagation(div);
      return div;
    },
  });
  return new Control();
}

/** The global `L` with `L.PM`, loaded on first use (the CSP allows scripts from this origin). */
export function leaflet() {
  loading ||= (async () => {
    for (const src of SCRIPTS) await script(src);
    return window.L;
  })().catch((e) => { loading = null; throw e; });
  return loading;
}
