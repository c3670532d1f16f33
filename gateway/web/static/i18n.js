// Languages, shared strings and local-time formatting for every page.
// A page's own strings come first (ctx.t looks there, then here), so a page
// never needs to repeat the words below.

export const LANGS = ["zh-CN", "en"];
const STORE_KEY = "gw.lang";

export const SHARED = {
  en: {
    "product": "Supervision Gateway",
    "lang.name": "English",
    "lang.label": "Language",
    "nav.label": "Pages",
    "login.username": "User name",
    "login.password": "Password",
    "login.submit": "Sign in",
    "login.failed": "Wrong user name or password.",
    "login.throttled": "Too many attempts. Wait a minute and try again.",
    "login.error": "Sign-in failed: {detail}",
    "logout": "Sign out",
    "role.admin": "Administrator",
    "role.monitor": "Monitor",
    "role.officer": "Officer",
    "conn.open": "Live",
    "conn.connecting": "Connecting…",
    "conn.closed": "Disconnected, retrying…",
    "nav.alerts": "Alerts",
    "nav.live": "Live video",
    "nav.calls": "Video sessions",
    "nav.map": "Map",
    "nav.persons": "Persons",
    "nav.person": "Person",
    "nav.checkins": "Check-ins",
    "nav.recordings": "Recordings",
    "nav.evidence": "Evidence",
    "nav.devices": "Devices",
    "nav.cluster": "Cluster",
    "nav.audit": "Audit log",
    "page.unavailable.title": "Not available yet",
    "page.unavailable.text": "The page “{page}” is not part of this installation yet.",
    "page.failed.title": "This page could not be shown",
    "page.forbidden.title": "Not permitted",
    "page.forbidden.text": "Your role does not give access to this page.",
    "loading": "Loading…",
    "empty": "Nothing to show.",
    "error": "Error: {detail}",
    "retry": "Retry",
    "all": "All",
    "yes": "Yes",
    "no": "No",
    "level.red": "Red",
    "level.orange": "Orange",
    "level.yellow": "Yellow",
    "level.blue": "Blue",
    "state.open": "Open",
    "state.acknowledged": "Acknowledged",
    "state.resolved": "Resolved",
    "state.ongoing": "Ongoing",
    "kind.exclusion_breach": "Entered forbidden zone",
    "kind.tamper": "Device tampered",
    "kind.sos": "SOS",
    "kind.disk_full": "Disk full",
    "kind.recording_failed": "Recording failed",
    "kind.inclusion_exit": "Left allowed area",
    "kind.curfew": "Curfew violation",
    "kind.camera_offline": "Camera offline",
    "kind.lost_contact": "Lost contact",
    "kind.no_fix": "No position fix",
    "kind.checkin_failed": "Check-in failed",
    "kind.assistance_requested": "Asks for the duty officer",
    "kind.call_impostor": "Someone else in a remote session",
    "kind.call_absent": "Empty seat in a remote session",
    "kind.checkin_missed": "Check-in missed",
    "kind.checkin_out_of_zone": "Remote check-in outside the allowed area",
    "kind.kiosk_offline": "Kiosk offline",
    "kind.upload_quarantined": "Upload quarantined",
    "kind.low_battery": "Low battery",
    "device.camera": "Camera",
    "device.tracker": "Tracker",
    "device.bodycam": "Body camera",
    "device.kiosk": "Kiosk",
    "device.online": "Online",
    "device.offline": "Offline",
    "device.unknown": "Unknown",
    // duty roster and organisation units (issue 18)
    "nav.duty": "Duty",
    "nav.units": "Units",
    "nav.users": "Users",
    "nav.dashboard": "Dashboard",
    "nav.wall": "Wall screen",
    "nav.account": "My account",
  },
  "zh-CN": {
    "product": "监管网关",
    "lang.name": "中文",
    "lang.label": "语言",
    "nav.label": "页面导航",
    "login.username": "用户名",
    "login.password": "密码",
    "login.submit": "登录",
    "login.failed": "用户名或密码错误。",
    "login.throttled": "尝试次数过多，请稍候一分钟再试。",
    "login.error": "登录失败：{detail}",
    "logout": "退出登录",
    "role.admin": "管理员",
    "role.monitor": "监控员",
    "role.officer": "矫正工作人员",
    "conn.open": "实时",
    "conn.connecting": "正在连接…",
    "conn.closed": "连接中断，正在重连…",
    "nav.alerts": "告警",
    "nav.live": "实时视频",
    "nav.calls": "远程视频",
    "nav.map": "地图",
    "nav.persons": "人员",
    "nav.person": "人员详情",
    "nav.checkins": "签到",
    "nav.recordings": "录像",
    "nav.evidence": "证据",
    "nav.devices": "设备",
    "nav.cluster": "集群",
    "nav.audit": "审计",
    "page.unavailable.title": "暂未开放",
    "page.unavailable.text": "“{page}”页面尚未在本系统中提供。",
    "page.failed.title": "页面无法显示",
    "page.forbidden.title": "无权访问",
    "page.forbidden.text": "您的角色无权查看此页面。",
    "loading": "加载中…",
    "empty": "暂无数据。",
    "error": "错误：{detail}",
    "retry": "重试",
    "all": "全部",
    "yes": "是",
    "no": "否",
    "level.red": "红色",
    "level.orange": "橙色",
    "level.yellow": "黄色",
    "level.blue": "蓝色",
    "state.open": "待处理",
    "state.acknowledged": "已确认",
    "state.resolved": "已解除",
    "state.ongoing": "未解除",
    "kind.exclusion_breach": "进入禁入区域",
    "kind.tamper": "设备被拆除",
    "kind.sos": "紧急求助",
    "kind.disk_full": "磁盘已满",
    "kind.recording_failed": "录像失败",
    "kind.inclusion_exit": "离开活动区域",
    "kind.curfew": "违反宵禁",
    "kind.camera_offline": "摄像机离线",
    "kind.lost_contact": "失去联系",
    "kind.no_fix": "无定位",
    "kind.checkin_failed": "签到核验失败",
    "kind.assistance_requested": "请求民警协助",
    "kind.call_impostor": "远程会话中非本人",
    "kind.call_absent": "远程会话中人员离开",
    "kind.checkin_missed": "未按时签到",
    "kind.checkin_out_of_zone": "远程签到位置越界",
    "kind.kiosk_offline": "签到机离线",
    "kind.upload_quarantined": "上传文件已隔离",
    "kind.low_battery": "电量低",
    "device.camera": "摄像机",
    "device.tracker": "定位终端",
    "device.bodycam": "执法记录仪",
    "device.kiosk": "签到机",
    "device.online": "在线",
    "device.offline": "离线",
    "device.unknown": "未知",
    // duty roster and organisation units (issue 18)
    "nav.duty": "值班",
    "nav.units": "组织机构",
    "nav.users": "用户管理",
    "nav.dashboard": "综合态势",
    "nav.wall": "大屏模式",
    "nav.account": "我的账号",
  },
};

/**
 * The language chosen in the page (header select, kept in localStorage), else the
 * gateway's `console.default_language`, which the server writes into the HTML shell
 * (`<html data-default-lang>`), else the browser's language (any zh-* reads Chinese).
 */
export function pickLang() {
  let stored = null;
  try { stored = localStorage.getItem(STORE_KEY); } catch { /* storage disabled */ }
  if (LANGS.includes(stored)) return stored;
  const configured = document.documentElement.dataset.defaultLang;
  if (LANGS.includes(configured)) return configured;
  const prefs = navigator.languages?.length ? navigator.languages : [navigator.language || "en"];
  for (const p of prefs) {
    const l = String(p).toLowerCase();
    if (l.startsWith("zh")) return "zh-CN";
    if (l.startsWith("en")) return "en";
  }
  return "en";
}

export function rememberLang(lang) {
  try { localStorage.setItem(STORE_KEY, lang); } catch { /* storage disabled */ }
}

/**
 * t(key, vars): page strings, then shared strings, then English, then the key
 * itself (a missing translation shows up as its key rather than as nothing).
 */
export function translator(lang, pageStrings = {}) {
  const tables = [pageStrings[lang], SHARED[lang], pageStrings.en, SHARED.en].filter(Boolean);
  return (key, vars) => {
    let s = key;
    for (const table of tables) {
      if (Object.hasOwn(table, key)) { s = table[key]; break; }
    }
    if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
    return s;
  };
}

/** Server times are ISO 8601 UTC; a value without a zone is UTC too. */
export function parseTime(iso) {
  if (!iso) return null;
  const s = String(iso);
  const zoned = /([zZ]|[+-]\d\d:?\d\d)$/.test(s);
  const d = new Date(zoned ? s : `${s}Z`);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** Local date and time, 24-hour clock, in the console language. */
export function formatTime(iso, lang) {
  const d = iso instanceof Date ? iso : parseTime(iso);
  if (!d) return "";
  return formatter(timeFormats, lang, () => new Intl.DateTimeFormat(lang, {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  })).format(d);
}

// One formatter per language: making an Intl formatter costs ~80 µs, formatting with one
// ~1 µs, and a table of 2,000 rows formats 2,000 times (bench/bench_console.py).
const timeFormats = new Map();
const agoFormats = new Map();
function formatter(cache, lang, make) {
  let f = cache.get(lang);
  if (!f) { f = make(); cache.set(lang, f); }
  return f;
}

/** "5 minutes ago" in the console language. */
export function formatAgo(iso, lang, now = Date.now()) {
  const d = iso instanceof Date ? iso : parseTime(iso);
  if (!d) return "";
  const s = Math.round((d.getTime() - now) / 1000);
  const rtf = formatter(agoFormats, lang, () => new Intl.RelativeTimeFormat(lang, { numeric: "auto" }));
  const abs = Math.abs(s);
  if (abs < 60) return rtf.format(s, "second");
  if (abs < 3600) return rtf.format(Math.round(s / 60), "minute");
  if (abs < 86400) return rtf.format(Math.round(s / 3600), "hour");
  return rtf.format(Math.round(s / 86400), "day");
}
