// The fields of a supervised person, shared by the register form (pages/persons.js) and the
// edit form (pages/person.js). The server validates; these are conveniences.

import { h, select } from "./dom.js";

const L = {
  en: {
    id: "ID (optional)", name: "Name", category: "Category", level: "Supervision level", unit: "Unit", officer: "Responsible officer (user name)",
    notes: "Notes", active: "Under supervision", "level.": "—", "level.strict": "strict", "level.ordinary": "ordinary", "level.lenient": "lenient",
    categories: ["community corrections", "resettlement support", "probation", "parole", "temporary execution outside prison", "public surveillance"],
  },
  "zh-CN": {
    id: "编号（可不填）", name: "姓名", category: "类别", level: "管理等级", unit: "所属单位", officer: "责任矫正工作人员（用户名）",
    notes: "备注", active: "在矫", "level.": "—", "level.strict": "严管", "level.ordinary": "普管", "level.lenient": "宽管",
    categories: ["社区矫正对象", "安置帮教对象", "缓刑", "假释", "暂予监外执行", "管制"],
  },
};

let lists = 0;

/** {elements, body(create)}: the labelled inputs, and the JSON they say. */
export async function personFields(ctx, person) {
  const tr = L[ctx.lang] || L.en;
  const units = [...await ctx.api("/api/units")].sort((a, b) => a.path.localeCompare(b.path));
  const listId = `person-categories-${++lists}`;
  const id = h("input", { name: "id", maxlength: 64, pattern: "[A-Za-z0-9_.\\-]{1,64}", autocomplete: "off" });
  const name = h("input", { name: "name", required: true, maxlength: 200, value: person?.name || "" });
  const category = h("input", { name: "category", maxlength: 64, list: listId, value: person?.category || "" });
  const level = select(["", "strict", "ordinary", "lenient"].map((v) => [v, tr[`level.${v}`]]), person?.supervision_level || "", { name: "supervision_level" });
  const unit = select(units.map((u) => [u.id, `${"\u00a0\u00a0".repeat(Math.max(0, u.path.split("/").filter(Boolean).length - 1))}${u.name}`]),
    person?.unit_id || ctx.user.unit_id || units[0]?.id || "", { name: "unit_id" });
  const officer = h("input", { name: "officer", maxlength: 64, value: person?.officer || "", autocomplete: "off" });
  const notes = h("textarea", { name: "notes", maxlength: 10000, rows: 3 });
  notes.value = person?.notes || "";
  const active = h("input", { type: "checkbox", name: "active" });
  active.checked = person ? person.active : true;
  const elements = [
    person ? null : h("label", {}, tr.id, id),
    h("label", {}, tr.name, name),
    h("label", {}, tr.category, category, h("datalist", { id: listId }, tr.categories.map((c) => h("option", { value: c })))),
    h("label", {}, tr.level, level),
    h("label", {}, tr.unit, unit),
    h("label", {}, tr.officer, officer),
    h("label", {}, tr.notes, notes),
    person ? h("label", { class: "checkbox" }, active, " ", tr.active) : null,
  ];
  const orNull = (el) => el.value.trim() || null;
  return {
    elements,
    body(create) {
      const out = { name: name.value.trim(), category: orNull(category), supervision_level: level.value || null, unit_id: unit.value,
        officer: orNull(officer), notes: orNull(notes) };
      if (create) { if (id.value.trim()) out.id = id.value.trim(); } else out.active = active.checked;
      return out;
    },
  };
}
