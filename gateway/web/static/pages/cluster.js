// The gateway nodes and what each runs (GET /api/cluster): heartbeats, leases (cameras,
// tracker partitions, singleton jobs) and work no live node holds. Refreshed every few
// seconds: leases change at each node's round, not through pushed events.

import { h, replace } from "../dom.js";

export const strings = {
  en: {
    "node": "Node",
    "this": "this node",
    "alive": "alive",
    "dead": "not responding",
    "host": "Host",
    "url": "Address",
    "started": "Started",
    "heartbeat": "Last heartbeat",
    "ago_s": "{n} s ago",
    "col.kind": "Work",
    "col.target": "Item",
    "col.epoch": "Epoch",
    "col.held": "Held for",
    "col.renewed": "Renewed",
    "kind.camera": "Camera",
    "kind.trackers": "Tracker partition",
    "kind.singleton": "Job",
    "unowned": "Work no live node holds",
    "unowned.none": "Every piece of work has a live owner.",
    "unowned.note": "A dead node's work is taken over {ttl} s after its last renewal.",
    "leases.none": "This node holds no work.",
    "counts": "{cameras} cameras, {trackers} tracker partitions, {jobs} jobs",
  },
  "zh-CN": {
    "node": "节点",
    "this": "本节点",
    "alive": "在线",
    "dead": "无响应",
    "host": "主机",
    "url": "地址",
    "started": "启动时间",
    "heartbeat": "最近心跳",
    "ago_s": "{n} 秒前",
    "col.kind": "任务类型",
    "col.target": "对象",
    "col.epoch": "租约代数",
    "col.held": "持有时长",
    "col.renewed": "续约",
    "kind.camera": "摄像机",
    "kind.trackers": "定位终端分区",
    "kind.singleton": "后台任务",
    "unowned": "无在线节点承担的任务",
    "unowned.none": "所有任务均有在线节点承担。",
    "unowned.note": "节点失联后，其任务在最后一次续约 {ttl} 秒后由其他节点接管。",
    "leases.none": "该节点当前未承担任务。",
    "counts": "摄像机 {cameras} 路，定位终端分区 {trackers} 个，后台任务 {jobs} 个",
  },
};

const REFRESH_MS = 3000;
const ORDER = { camera: 0, trackers: 1, singleton: 2 };
let timer = null;

function secs(ctx, v) {
  return v === null || v === undefined ? "" : ctx.t("ago_s", { n: Math.max(0, Math.round(v)) });
}

function duration(v) {
  if (v === null || v === undefined) return "";
  const s = Math.max(0, Math.round(v));
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`;
}

function leaseTable(ctx, leases) {
  const sorted = [...leases].sort((a, b) => (ORDER[a.kind] ?? 9) - (ORDER[b.kind] ?? 9) || a.target.localeCompare(b.target, undefined, { numeric: true }));
  return h("div", { class: "table-wrap" }, h("table", { class: "data leases" },
    h("thead", {}, h("tr", {},
      h("th", {}, ctx.t("col.kind")), h("th", {}, ctx.t("col.target")), h("th", {}, ctx.t("col.epoch")),
      h("th", {}, ctx.t("col.held")), h("th", {}, ctx.t("col.renewed")))),
    h("tbody", {}, ...sorted.map((l) => h("tr", { dataset: { lease: l.name } },
      h("td", {}, ctx.t(`kind.${l.kind}`)),
      h("td", { class: "mono" }, l.target),
      h("td", {}, String(l.epoch)),
      h("td", {}, duration(l.held_s)),
      h("td", {}, secs(ctx, l.renewed_s_ago)))))));
}

function nodeCard(ctx, n) {
  const count = (k) => n.leases.filter((l) => l.kind === k).length;
  return h("section", { class: "cluster-node", dataset: { node: n.node_id, alive: n.alive ? "1" : "0" } },
    h("h2", {}, `${ctx.t("node")} `, h("span", { class: "mono" }, n.node_id), " ",
      h("span", { class: n.alive ? "chip chip-ok" : "chip chip-bad" }, ctx.t(n.alive ? "alive" : "dead")),
      n.this_node ? h("span", { class: "chip" }, ctx.t("this")) : ""),
    h("p", { class: "muted" },
      `${ctx.t("host")}: ${n.host} (pid ${n.pid}) · ${ctx.t("url")}: ${n.url || "—"} · ${ctx.t("started")}: ${ctx.fmt.time(n.started_at)} · `
      + `${ctx.t("heartbeat")}: ${secs(ctx, n.heartbeat_s_ago)}`),
    h("p", {}, ctx.t("counts", { cameras: count("camera"), trackers: count("trackers"), jobs: count("singleton") })),
    n.leases.length ? leaseTable(ctx, n.leases) : h("p", { class: "muted" }, ctx.t("leases.none")));
}

export async function render(root, ctx) {
  const body = h("div", { class: "cluster" });
  replace(root, body);

  async function load() {
    const c = await ctx.api("/api/cluster");
    body.replaceChildren(
      ...c.nodes.map((n) => nodeCard(ctx, n)),
      h("section", { class: "cluster-unowned" },
        h("h2", {}, ctx.t("unowned")),
        h("p", { class: "muted" }, ctx.t("unowned.note", { ttl: c.lease_ttl_s })),
        c.unowned.length ? leaseTable(ctx, c.unowned) : h("p", {}, ctx.t("unowned.none"))));
  }

  await load();
  timer = setInterval(() => { load().catch(() => {}); }, REFRESH_MS);
}

export function dispose() {
  if (timer !== null) clearInterval(timer);
  timer = null;
}
