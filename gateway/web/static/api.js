// fetch for the console: same-origin cookie, the header the server requires
// on cookie-authenticated changes, JSON both ways, errors carrying `detail`.

export class ApiError extends Error {
  constructor(status, detail, body) {
    super(detail);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
  }
}

/** Where to go when the session is gone; app.js replaces it. */
export const session = { expired: () => { location.href = `/login?next=${encodeURIComponent(location.pathname + location.search)}`; } };

/**
 * api(path, {method, body, json, signal, headers, raw})
 * - `json`: an object sent as JSON; `body`: sent as is (FormData, Blob, string).
 * - Returns parsed JSON (or text, or null for 204); `raw: true` returns the Response.
 * - Non-2xx throws ApiError(status, detail). A 401 also ends the session.
 */
export async function api(path, opts = {}) {
  const { method = opts.json !== undefined || opts.body !== undefined ? "POST" : "GET", json, body, signal, headers = {}, raw = false } = opts;
  const init = {
    method,
    credentials: "same-origin",
    signal,
    headers: { "X-Requested-With": "gateway-console", Accept: "application/json", ...headers },
  };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  } else if (body !== undefined) {
    init.body = body;
  }
  const res = await fetch(path, init);
  if (res.status === 401 && !path.startsWith("/api/auth/login")) session.expired();
  if (!res.ok) {
    let detail = `${res.status} ${res.statusText}`;
    let parsed = null;
    try {
      parsed = await res.json();
      if (parsed && parsed.detail) detail = typeof parsed.detail === "string" ? parsed.detail : JSON.stringify(parsed.detail);
    } catch { /* not JSON */ }
    throw new ApiError(res.status, detail, parsed);
  }
  if (raw) return res;
  if (res.status === 204) return null;
  const type = res.headers.get("content-type") || "";
  return type.includes("json") ? res.json() : res.text();
}
