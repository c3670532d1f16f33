// The console shell: header, menu, language, the shared event socket, and the
// router that loads static/pages/<name>.js for /console/<name>?params.
// The page contract (render/strings/dispose and ctx) is in docs/console.md.

import { installCallDock } from "./call_dock.js";
import { api, ApiError } from "./api.js";
import { h, notice, replace } from "./dom.js";
import { EventSocket, eventsUrl } from "./events.js";
import { LANGS, SHARED, formatAgo, formatTime, pickLang, rememberLang, translator } from "./i18n.js";
import { NAV, landingPage, pageInfo } from "./nav.js";
import { PERMISSIONS } from "./roles.js";

const LEVEL_ORDER = ["red", "orange", "yellow", "blue"];
const PAGE_NAME = /^[a-z][a-z0-9_-]{0,40}$/;

const state = {
  lang: pickLang(),
  user: null,
  socket: null,
  current: null,     // {name, mod, ac, cleanups}
  seq: 0,            // guards against a slow page finishing after the user moved on
  openAlerts: { total: 0, by_level: {} },  // the menu badge: GET /api/alerts/counts?state=open
};

const $ = (sel) => document.querySelector(sel);
const t = (key, vars) => translator(state.lang)(key, vars);

export function can(permission) {
  if (!permission) return true;
  return (PERMISSIONS[permission] || []).includes(state.user?.role);
}

function pageUrl(name, params) {
  const q = new URLSearchParams(Object.entries(params || {}).filter(([, v]) => v !== undefined && v !== null && v !== "")).toString();
  return `/console/${name}${q ? `?${q}` : ""}`;
}

function parseLocation() {
  const m = location.pathname.match(/^\/console\/([^/]+)\/?$/);
  const name = m && PAGE_NAME.test(m[1]) ? m[1] : null;
  return { name, params: Object.fromEntries(new URLSearchParams(location.search)) };
}

export function navigate(name, params = {}, { replace: replaceEntry = false } = {}) {
  const url = pageUrl(name, params);
  if (url !== location.pathname + location.search) history[replaceEntry ? "replaceState" : "pushState"]({}, "", url);
  return show();
}

/** <a> to a console page that navigates in place on a plain click. */
function link(name, params, ...children) {
  return h("a", {
    href: pageUrl(name, params),
    onclick: (ev) => {
      if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
      ev.preventDefault();
      navigate(name, params);
    },
  }, ...children);
}

function leave() {
  const cur = state.current;
  if (!cur) return;
  state.current = null;
  cur.ac.abort();
  for (const off of cur.cleanups) off();
  try { cur.mod?.dispose?.(); } catch (e) { console.error("dispose failed", e); }
}

async function moduleMissing(name) {
  try {
    const res = await fetch(`/static/pages/${name}.js`, { method: "HEAD", credentials: "same-origin" });
    return res.status === 404;
  } catch {
    return false;
  }
}

async function show() {
  let { name, params } = parseLocation();
  if (!name) {
    name = landingPage(state.user?.role);
    history.replaceState({}, "", pageUrl(name));
    params = {};
  }
  leave();
  const seq = ++state.seq;
  const info = pageInfo(name);
  const root = $("#page");
  root.dataset.page = name;
  delete root.dataset.ready;
  // the wall screen: the page alone, full width, no menu (pages/wall.js)
  document.body.classList.toggle("wall", name === "wall");
  highlightNav(info?.parent || name);
  setTitle(t(`nav.${name}`) === `nav.${name}` ? name : t(`nav.${name}`));

  if (info && !can(info.perm)) {
    replace(root, notice("forbidden", t("page.forbidden.title"), t("page.forbidden.text")));
    root.dataset.ready = "forbidden";
    return;
  }
  replace(root, h("p", { class: "muted" }, t("loading")));

  let mod;
  try {
    mod = await import(`/static/pages/${name}.js`);
  } catch (e) {
    if (seq !== state.seq) return;
    if (await moduleMissing(name)) {
      replace(root, notice("unavailable", t("page.unavailable.title"), t("page.unavailable.text", { page: t(`nav.${name}`) })));
      root.dataset.ready = "unavailable";
    } else {
      console.error(e);
      replace(root, notice("error", t("page.failed.title"), String(e?.message || e)));
      root.dataset.ready = "failed";
    }
    return;
  }
  if (seq !== state.seq) return;

  const ac = new AbortController();
  const cleanups = [];
  const lang = state.lang;
  const pageT = translator(lang, mod.strings || {});
  const ctx = {
    page: name,
    params,
    lang,
    user: state.user,
    signal: ac.signal,
    t: pageT,
    api: (path, opts = {}) => api(path, { signal: ac.signal, ...opts }),
    on(topic, handler) {
      const off = state.socket.on(topic, handler);
      cleanups.push(off);
      return off;
    },
    navigate,
    link,
    can,
    fmt: {
      time: (iso) => formatTime(iso, lang),
      ago: (iso) => formatAgo(iso, lang),
    },
  };
  state.current = { name, mod, ac, cleanups };
  if (mod.strings?.[lang]?.title || mod.strings?.en?.title) setTitle(pageT("title"));
  root.replaceChildren();
  try {
    await mod.render(root, ctx);
    if (seq === state.seq) root.dataset.ready = "1";
  } catch (e) {
    if (seq !== state.seq || e?.name === "AbortError") return;
    console.error(e);
    const detail = e instanceof ApiError ? e.message : String(e?.message || e);
    replace(root, notice("error", t("page.failed.title"), detail,
      h("button", { class: "btn", type: "button", onclick: () => show() }, t("retry"))));
    root.dataset.ready = "failed";
  }
}

function setTitle(text) {
  $("#page-title").textContent = text;
  document.title = `${text} · ${t("product")}`;
}

function highlightNav(name) {
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.page === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function buildNav() {
  const items = NAV.filter((p) => !p.hidden && can(p.perm)).map((p) => {
    const a = link(p.name, {}, h("span", { class: "nav-label" }, t(`nav.${p.name}`)));
    a.dataset.page = p.name;
    if (p.name === "alerts") a.append(h("span", { class: "nav-badge", id: "alert-badge", hidden: true }));
    return a;
  });
  replace($("#nav"), items);
  renderAlertBadge();
}

function renderAlertBadge() {
  const badge = $("#alert-badge");
  if (!badge) return;
  const { total: n, by_level: levels } = state.openAlerts;
  badge.hidden = n === 0;
  badge.textContent = String(n);
  badge.dataset.level = LEVEL_ORDER.find((l) => levels[l] > 0) || "";
  badge.title = t("state.open");
}

// The badge counts the open alerts by level (GET /api/alerts/counts: one small answer
// however many there are, not the alerts themselves); a push about an alert asks again,
// at most twice a second.
let countTimer = null;
async function refreshOpenAlerts() {
  clearTimeout(countTimer);
  countTimer = null;
  try {
    state.openAlerts = await api("/api/alerts/counts?state=open");
    renderAlertBadge();
  } catch (e) {
    console.warn("could not count open alerts", e);
  }
}

function trackAlert(msg) {
  if (!msg.alert || countTimer) return;
  countTimer = setTimeout(refreshOpenAlerts, 500);
}

function applyShellText() {
  document.documentElement.lang = state.lang;
  $("#brand").textContent = t("product");
  $("#logout").textContent = t("logout");
  $("#lang").setAttribute("aria-label", t("lang.label"));
  $("#nav").setAttribute("aria-label", t("nav.label"));
  const u = state.user;
  replace($("#who"), h("span", { class: "who-name" }, u.username), " ", h("span", { class: "role", dataset: { role: u.role } }, t(`role.${u.role}`)));
  const conn = $("#conn");
  conn.textContent = t(`conn.${conn.dataset.state}`);
  buildNav();
}

function buildLangSelect() {
  const sel = $("#lang");
  replace(sel, LANGS.map((l) => h("option", { value: l }, SHARED[l]["lang.name"])));
  sel.value = state.lang;
  sel.addEventListener("change", () => {
    state.lang = sel.value;
    rememberLang(state.lang);
    applyShellText();
    show();
  });
}

async function logout() {
  try { await api("/api/auth/logout", { method: "POST" }); } catch (e) { console.warn(e); }
  state.socket?.stop();
  location.href = "/login";
}

async function boot() {
  document.documentElement.lang = state.lang;
  try {
    state.user = await api("/api/auth/me");
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;  // api() is already on the way to /login
    replace($("#page"), notice("error", t("page.failed.title"), String(e?.message || e)));
    return;
  }
  state.socket = new EventSocket(eventsUrl());
  state.socket.onState((s) => {
    const conn = $("#conn");
    conn.dataset.state = s;
    conn.textContent = t(`conn.${s}`);
  });
  // A refused socket usually means the session ended (expired, user disabled):
  // api() sends the browser to the login page on the 401.
  state.socket.onRefused = () => api("/api/auth/me").catch(() => { /* gateway down: keep retrying */ });
  state.socket.on("hello", refreshOpenAlerts);
  state.socket.on("alert", trackAlert);
  installCallDock(state.socket, { lang: () => state.lang, can });
  buildLangSelect();
  applyShellText();
  $("#logout").addEventListener("click", logout);
  $("#brand").addEventListener("click", (ev) => { ev.preventDefault(); navigate(landingPage(state.user?.role)); });
  window.addEventListener("popstate", () => show());
  state.socket.start();
  await show();
  document.body.dataset.ready = "1";
}

boot();
