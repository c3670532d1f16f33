// Registering and changing devices from the console (pages/devices.js), for admins
// (devices.write). Settings go to the server as the configuration file has them and are
// checked there with the same typed models (a 422 names the setting). A camera's password
// is write-only: typed here, never shown again. A kiosk's or body-cam's key is shown once,
// with a copy button, when it is issued (registration or "new key").

import { formParts, h, replace, select, submitting } from "./dom.js";

const L = {
  en: {
    register: "Register a device", change: "Change a device", kind: "Kind", id: "ID", name: "Name", unit: "Unit", person: "Person",
    none: "—", submit: "Register", save: "Save", device: "Device",
    url: "RTSP URL (no credentials)", username: "User name", password: "Password (write-only)", password_set: "a password is set; type to replace it",
    room: "Room", room_kind: "Room kind", record: "Record", recognition: "Face recognition (1:N)",
    report_interval_s: "Report interval (s)", location: "Location", heartbeat_interval_s: "Heartbeat interval (s)", officer: "Officer",
    key: "Device key: shown once. Copy it into the device now.", copy: "Copy", copied: "Copied.", newkey: "New key", disable: "Disable",
    confirm_disable: "Disable {id}? It is refused from its next request and its key stops working.", confirm_key: "Issue a new key for {id}? The old key stops working.",
    done: "Saved.", error: "Not done: {detail}", enabled: "Enabled",
    pair: "Pairing code", pair_code: "Type this code on the terminal at /kiosk, before {time}. It works once; the terminal's old key stops working.",
  },
  "zh-CN": {
    register: "登记设备", change: "修改设备", kind: "类型", id: "编号", name: "名称", unit: "所属单位", person: "绑定人员",
    none: "—", submit: "登记", save: "保存", device: "设备",
    url: "RTSP 地址（不含账号密码）", username: "用户名", password: "密码（只写）", password_set: "已设置密码；输入新密码可替换",
    room: "房间", room_kind: "房间类型", record: "录像", recognition: "人脸识别（1:N）",
    report_interval_s: "上报间隔（秒）", location: "位置", heartbeat_interval_s: "心跳间隔（秒）", officer: "使用民警",
    key: "设备密钥仅显示一次，请立即复制到设备中。", copy: "复制", copied: "已复制。", newkey: "重新生成密钥", disable: "停用",
    confirm_disable: "停用 {id}？该设备的后续请求将被拒绝，其密钥失效。", confirm_key: "为 {id} 生成新密钥？旧密钥将失效。",
    done: "已保存。", error: "未完成：{detail}", enabled: "启用",
    pair: "配对码", pair_code: "请在 {time} 前于终端（/kiosk）输入此配对码。仅可使用一次；终端原有密钥随之失效。",
  },
};

const SETTINGS = {
  camera: [["url", "text"], ["username", "text"], ["room", "text"],
    ["room_kind", ["other", "reception", "announcement", "education", "mediation", "counselling"]], ["record", "checkbox"], ["recognition", "checkbox"]],
  tracker: [["report_interval_s", "number"]],
  kiosk: [["location", "text"], ["heartbeat_interval_s", "number"]],
  bodycam: [["officer", "text"]],
};
const DEFAULTS = { record: true, recognition: false, report_interval_s: 60, heartbeat_interval_s: 60, room_kind: "other" };
const WITH_PERSON = ["tracker", "bodycam"];

export function fmt(s, vars) { return s.replace(/\{(\w+)\}/g, (_, k) => String(vars?.[k] ?? "")); }

/** The once-shown key of a device, with a copy button. */
export function keyBox(ctx, key, deviceId) {
  const tr = L[ctx.lang] || L.en;
  const done = h("span", { class: "muted", role: "status" });
  return h("div", { class: "key-box", role: "alert", dataset: { device: deviceId } }, h("p", {}, tr.key), h("code", { class: "device-key" }, key), " ",
    h("button", { type: "button", class: "btn", onclick: async () => {
      try { await navigator.clipboard.writeText(key); done.textContent = tr.copied; } catch { /* the key stays selectable */ }
    } }, tr.copy), " ", done);
}

function settingInputs(tr, kind, current) {
  return (SETTINGS[kind] || []).map(([name, type]) => {
    const value = current?.[name] ?? DEFAULTS[name];
    let el;
    if (Array.isArray(type)) el = select(type.map((v) => [v, v]), value || type[0], { name });
    else if (type === "checkbox") { el = h("input", { type: "checkbox", name }); el.checked = Boolean(value); }
    else el = h("input", { type, name, value: value ?? "", ...(name === "url" ? { required: true, placeholder: "rtsp://192.168.1.64:554/Streaming/Channels/101" } : {}) });
    return h("label", { class: type === "checkbox" ? "checkbox" : null }, type === "checkbox" ? el : null, tr[name], type === "checkbox" ? null : el);
  });
}

function readSettings(form, kind) {
  const out = {};
  for (const [name, type] of SETTINGS[kind] || []) {
    const el = form.querySelector(`[name=${name}]`);
    if (!el) continue;
    if (type === "checkbox") out[name] = el.checked;
    else if (type === "number") { if (el.value !== "") out[name] = Number(el.value); }
    else out[name] = el.value.trim() || null;
  }
  return out;
}

/** The register form; `done(created)` after a registration. */
export async function registerForm(ctx, units, persons, done) {
  const tr = L[ctx.lang] || L.en;
  const kind = select(["camera", "tracker", "bodycam", "kiosk"].map((k) => [k, ctx.t(`device.${k}`)]), "camera", { name: "kind" });
  const id = h("input", { name: "id", required: true, maxlength: 64, pattern: "[A-Za-z0-9_.\\-]{1,64}", autocomplete: "off" });
  const name = h("input", { name: "name", maxlength: 200 });
  const unit = select(units, ctx.user.unit_id || units[0]?.[0] || "", { name: "unit_id" });
  const person = select([["", tr.none], ...persons], "", { name: "person_id" });
  const password = h("input", { type: "password", name: "password", autocomplete: "new-password" });
  const kindFields = h("div", { class: "kind-fields" });
  const parts = formParts(tr.submit);
  const shown = h("div");
  function redraw() {
    replace(kindFields, settingInputs(tr, kind.value, null),
      kind.value === "camera" ? h("label", {}, tr.password, password) : null,
      WITH_PERSON.includes(kind.value) ? h("label", {}, tr.person, person) : null);
  }
  kind.addEventListener("change", redraw);
  redraw();
  const form = h("form", {
    class: ["person-form", "device-register"],
    onsubmit: submitting(parts, (e) => fmt(tr.error, { detail: e.message }), async () => {
      const body = { id: id.value.trim(), kind: kind.value, name: name.value.trim() || null, unit_id: unit.value, settings: readSettings(form, kind.value) };
      if (kind.value === "camera" && password.value) body.password = password.value;
      if (WITH_PERSON.includes(kind.value) && person.value) body.person_id = person.value;
      const d = await ctx.api("/api/devices", { json: body });
      password.value = "";
      replace(shown, d.key ? keyBox(ctx, d.key, d.id) : h("p", { class: "muted", role: "status" }, tr.done));
      await done(d);
    }),
  }, h("label", {}, tr.kind, kind), h("label", {}, tr.id, id), h("label", {}, tr.name, name), h("label", {}, tr.unit, unit),
  kindFields, h("div", {}, parts.submit), parts.msg);
  return h("details", { class: "device-add" }, h("summary", {}, tr.register), form, shown);
}

/** The change form of one device (name, unit, person, settings, camera password, enabled). */
export function changeForm(ctx, device, units, persons, done) {
  const tr = L[ctx.lang] || L.en;
  const name = h("input", { name: "name", maxlength: 200, value: device.name || "" });
  const unit = select(units, device.unit_id, { name: "unit_id" });
  const person = select([["", tr.none], ...persons], device.person_id || "", { name: "person_id" });
  const password = h("input", { type: "password", name: "password", autocomplete: "new-password",
    placeholder: device.has_password ? tr.password_set : "" });
  const enabled = h("input", { type: "checkbox", name: "enabled" });
  enabled.checked = device.enabled;
  const parts = formParts(tr.save);
  const form = h("form", {
    class: ["person-form", "device-change"], dataset: { id: device.id },
    onsubmit: submitting(parts, (e) => fmt(tr.error, { detail: e.message }), async () => {
      const body = { name: name.value.trim() || null, unit_id: unit.value, enabled: enabled.checked, settings: readSettings(form, device.kind) };
      if (WITH_PERSON.includes(device.kind)) body.person_id = person.value || null;
      if (device.kind === "camera" && password.value) body.password = password.value;
      const d = await ctx.api(`/api/devices/${encodeURIComponent(device.id)}`, { method: "PATCH", json: body });
      password.value = "";
      parts.ok.textContent = tr.done;
      parts.ok.hidden = false;
      await done(d);
    }),
  }, h("label", {}, tr.name, name), h("label", {}, tr.unit, unit), settingInputs(tr, device.kind, device.settings),
  device.kind === "camera" ? h("label", {}, tr.password, password) : null,
  WITH_PERSON.includes(device.kind) ? h("label", {}, tr.person, person) : null,
  h("label", { class: "checkbox" }, enabled, " ", tr.enabled), h("div", {}, parts.submit), parts.msg, parts.ok);
  return form;
}

/** Row actions: a new key (kiosk, body-cam) and disable. */
export function rowActions(ctx, device, shown, done) {
  const tr = L[ctx.lang] || L.en;
  const out = [];
  if (["kiosk", "bodycam"].includes(device.kind)) {
    out.push(h("button", { type: "button", class: "btn btn-quiet btn-newkey", onclick: async () => {
      if (!confirm(fmt(tr.confirm_key, { id: device.id }))) return;
      const d = await ctx.api(`/api/devices/${encodeURIComponent(device.id)}/key`, { method: "POST" });
      // the key shown at registration no longer works: it goes, the new one is shown
      for (const el of document.querySelectorAll(`.key-box[data-device="${CSS.escape(device.id)}"]`)) el.remove();
      replace(shown, keyBox(ctx, d.key, device.id));
    } }, tr.newkey));
  }
  if (device.kind === "kiosk" && device.enabled) {
    out.push(h("button", { type: "button", class: "btn btn-quiet btn-pair", onclick: async () => {
      const p = await ctx.api(`/api/devices/${encodeURIComponent(device.id)}/pairing`, { method: "POST" });
      const digits = `${p.code.slice(0, 4)} ${p.code.slice(4)}`;
      replace(shown, h("div", { class: "key-box pairing-box", role: "alert", dataset: { device: device.id } },
        h("p", {}, fmt(tr.pair_code, { time: ctx.fmt.time(p.expires_at) })), h("code", { class: "pairing-code" }, digits)));
    } }, tr.pair));
  }
  if (device.enabled) {
    out.push(h("button", { type: "button", class: "btn btn-quiet btn-disable", onclick: async () => {
      if (!confirm(fmt(tr.confirm_disable, { id: device.id }))) return;
      await ctx.api(`/api/devices/${encodeURIComponent(device.id)}`, { method: "DELETE" });
      await done();
    } }, tr.disable));
  }
  return out;
}

export const changeTitle = (ctx) => (L[ctx.lang] || L.en).change;
export const deviceLabel = (ctx) => (L[ctx.lang] || L.en).device;
