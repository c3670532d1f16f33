// The sign-in form: posts to /api/auth/login, which sets the session cookie,
// then goes to the page the user first asked for.

import { LANGS, SHARED, pickLang, rememberLang, translator } from "./i18n.js";

let lang = pickLang();
const form = document.getElementById("login-form");
const error = document.getElementById("login-error");
const langSel = document.getElementById("lang");

function applyLang() {
  const t = translator(lang);
  document.documentElement.lang = lang;
  document.title = t("product");
  langSel.setAttribute("aria-label", t("lang.label"));
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
}

const HOME = "/console";  // the server sends each role to its landing page

/**
 * Where to go after signing in: `next` only when the browser itself resolves it to a page
 * of this origin (other than the login page); never an open redirect. Prefix checks on
 * the string are not enough: browsers drop tabs and newlines and read "\\" as "/", so
 * "/\t/evil.example" is "//evil.example". The resolved URL is what we go to.
 */
function nextUrl(next = new URLSearchParams(location.search).get("next")) {
  if (!next) return HOME;
  let url;
  try { url = new URL(next, location.origin); } catch { return HOME; }
  if (url.origin !== location.origin || url.pathname === "/login" || url.pathname.startsWith("/login/")) return HOME;
  return url.pathname + url.search + url.hash;
}

function showError(text) {
  error.textContent = text;
  error.hidden = false;
}

for (const l of LANGS) langSel.append(new Option(SHARED[l]["lang.name"], l));
langSel.value = lang;
langSel.addEventListener("change", () => {
  lang = langSel.value;
  rememberLang(lang);
  applyLang();
});
applyLang();

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const t = translator(lang);
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  error.hidden = true;
  try {
    const res = await fetch("/api/auth/login", {
      method: "POST",
      credentials: "same-origin",
      body: new URLSearchParams(new FormData(form)),
    });
    if (res.ok) {
      location.assign(nextUrl());
      return;
    }
    let detail = `${res.status}`;
    try { detail = (await res.json()).detail || detail; } catch { /* not JSON */ }
    if (res.status === 401) showError(t("login.failed"));
    else if (res.status === 429) showError(t("login.throttled"));
    else showError(t("login.error", { detail }));
    form.password.select();
  } catch (e) {
    showError(t("login.error", { detail: String(e?.message || e) }));
  } finally {
    button.disabled = false;
  }
});
document.body.dataset.ready = "1";
