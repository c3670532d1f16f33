// Building DOM without innerHTML: every value from the server becomes text,
// so a person's name or an alert message can never inject markup.

/**
 * h("button", {class: "btn", onclick: fn, dataset: {id: 3}}, "Label", child...)
 * Props: `class`, `dataset`, `style` (an object, for values computed at run time only:
 * `{left: "12%"}`; static looks are classes in console.css), `on<event>` handlers
 * (functions), boolean attributes (true sets, false/null/undefined omits), anything else
 * as an attribute.
 * Children: nodes, strings, numbers, arrays (flattened), null/false (skipped).
 *
 * The console runs under a CSP without 'unsafe-inline' (gateway/web/routes.py): a
 * `style` attribute string or an inline handler string would be refused by the browser,
 * so h() throws on them rather than letting them fail silently. Object styles go
 * through the CSSOM (el.style.left = ...), which the CSP allows.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    const name = k.toLowerCase();
    if (k === "class") el.className = Array.isArray(v) ? v.filter(Boolean).join(" ") : v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (name === "style") {
      if (k !== "style" || typeof v !== "object") throw new TypeError(`h(${tag}): style must be an object set through the CSSOM, not ${typeof v} (use a class in console.css)`);
      for (const [prop, value] of Object.entries(v)) {
        if (prop.startsWith("--")) el.style.setProperty(prop, value);
        else el.style[prop] = value;
      }
    } else if (name.startsWith("on")) {
      if (typeof v !== "function") throw new TypeError(`h(${tag}): ${k} must be a function, not an inline handler string`);
      el.addEventListener(k.slice(2), v);
    } else if (k === "value" || k === "checked" || k === "selected") el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** Replace all children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A panel with a title and text, for empty, error and "not available" states. */
export function notice(kind, title, text, ...extra) {
  return h("div", { class: ["notice", `notice-${kind}`], role: kind === "error" ? "alert" : "status" },
    h("h2", {}, title), text ? h("p", {}, text) : null, ...extra);
}

/** A <select> from [[value, label], ...]. */
export function select(options, value, props = {}) {
  const el = h("select", props, options.map(([v, label]) => h("option", { value: v }, label)));
  el.value = value;
  return el;
}

/** The pieces of a console form: its submit button, the refusal (role=alert) and the done
 * message (role=status), both hidden until there is something to say. */
export function formParts(label) {
  return {
    submit: h("button", { class: "btn btn-primary", type: "submit" }, label),
    msg: h("p", { class: "form-error", role: "alert", hidden: true }),
    ok: h("p", { class: "muted", role: "status", hidden: true }),
  };
}

/**
 * An onsubmit handler: runs `send()` one at a time (the button disabled meanwhile); a string
 * it returns goes in `ok`; a failure's text, `error(e)`, in `msg` (the server's message; the
 * client's own checks are a convenience only). An aborted request (page left) says nothing.
 */
export function submitting({ submit, msg, ok = null }, error, send) {
  return async (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    msg.hidden = true;
    if (ok) ok.hidden = true;
    for (const el of form.querySelectorAll(".field-error[data-placed]")) el.remove();
    submit.disabled = true;
    try {
      const text = await send();
      if (ok && typeof text === "string") { ok.textContent = text; ok.hidden = false; }
    } catch (e) {
      if (e?.name === "AbortError") return;
      if (!placeFieldErrors(form, e)) {
        msg.textContent = error(e);
        msg.hidden = false;
      }
    } finally {
      submit.disabled = false;
    }
  };
}

/**
 * The server's 422 (FastAPI's list of {loc, msg}) next to the fields it names: each message
 * after the input whose name is the last part of its `loc` that the form has. True when
 * every message found its field (else the caller shows the whole message).
 */
export function placeFieldErrors(form, e) {
  const detail = e?.body?.detail;
  if (e?.status !== 422 || !Array.isArray(detail) || !detail.length) return false;
  let placed = 0;
  for (const d of detail) {
    const names = (d.loc || []).filter((p) => typeof p === "string").reverse();
    const input = names.map((n) => form.querySelector(`[name="${CSS.escape(n)}"]`)).find(Boolean);
    if (!input) continue;
    const text = String(d.msg || "").replace(/^Value error, /, "");
    (input.closest("label") || input).after(h("span", { class: "field-error", role: "alert", dataset: { field: input.name, placed: "1" } }, text));
    placed += 1;
  }
  return placed === detail.length;
}
