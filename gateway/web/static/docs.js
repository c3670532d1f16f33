// The API reference (/docs): Swagger UI from the gateway's own npm package (no CDN: command
// centres are often offline, and the page runs on an authenticated origin), reading the
// schema with the session cookie. Kept out of the HTML: the CSP allows no inline script.
/* global SwaggerUIBundle */
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  withCredentials: true,
});
