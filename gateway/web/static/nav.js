// Every page of the console, in menu order. A page is the module
// static/pages/<name>.js (see docs/console.md). `perm`: the permission
// (gateway/auth/roles.py) a user needs to see the entry and open the page.
// `hidden`: reached by links from other pages, not listed in the menu;
// `parent`: the menu entry highlighted while it is shown.

export const NAV = [
  { name: "dashboard" },
  { name: "alerts" },
  { name: "duty" },
  { name: "live", perm: "live.view" },
  { name: "calls" },
  { name: "map" },
  { name: "persons" },
  { name: "checkins" },
  { name: "recordings" },
  { name: "evidence", perm: "evidence.read" },
  { name: "devices" },
  { name: "units" },
  { name: "users", perm: "users.write" },
  { name: "cluster" },
  { name: "audit", perm: "audit.read" },
  { name: "account" },
  { name: "wall", hidden: true, parent: "dashboard" },
  { name: "person", hidden: true, parent: "persons" },
];

/** The page a user lands on: the command-centre dashboard for monitors (who watch), the
 * alerts for everyone else (who handle them). gateway/web/routes.py LANDING says the same. */
export function landingPage(role) {
  return role === "monitor" ? "dashboard" : "alerts";
}

export function pageInfo(name) {
  return NAV.find((p) => p.name === name) || null;
}
