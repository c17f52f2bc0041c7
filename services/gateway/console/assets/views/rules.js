// Programme: the earning rules. The current version as JSON, saved as a new version (never
// over another writer's: the save names the version it was made from), and the difference
// between any two versions, field by field.

import { call, granted, tenantPath } from "../api.js";
import { field, h, notice, show, table } from "../dom.js";
import { t } from "../i18n.js";
import { failure } from "../navigate.js";

/** A JSON value as `path → value` lines: `expiry.months: 12`, `categories[0].category: "wine"`. */
export function flatten(value, path = "", out = new Map()) {
  if (value !== null && typeof value === "object") {
    const entries = Array.isArray(value) ? value.map((v, i) => [`[${i}]`, v]) : Object.entries(value).map(([k, v]) => [path ? `.${k}` : k, v]);
    if (entries.length === 0) out.set(path, JSON.stringify(value));
    for (const [key, child] of entries) flatten(child, `${path}${key}`, out);
  } else {
    out.set(path, JSON.stringify(value));
  }
  return out;
}

/** The fields that differ between two versions: [path, before, after]. */
export function difference(before, after) {
  const a = flatten(before);
  const b = flatten(after);
  const paths = [...new Set([...a.keys(), ...b.keys()])].filter((p) => p !== "version").sort();
  return paths.filter((p) => a.get(p) !== b.get(p)).map((p) => [p, a.get(p) ?? "—", b.get(p) ?? "—"]);
}

const rulesAt = (version) => call("GET", tenantPath(`/earning-rules?version=${version}`));

export async function rulesScreen() {
  const current = await call("GET", tenantPath("/earning-rules"));
  const status = h("div", { id: "rules-status" });
  const editor = h("textarea", { name: "rules", rows: "18", spellcheck: "false" });
  editor.value = JSON.stringify({ ...current, version: undefined }, null, 2);
  const versionLabel = h("p", { id: "rules-version" }, t("rules.version", { version: current.version }));
  let version = current.version;
  const save = h("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      try {
        const body = { ...JSON.parse(editor.value), expected_version: version };
        const saved = await call("POST", tenantPath("/earning-rules"), body);
        version = saved.version;
        versionLabel.textContent = t("rules.version", { version });
        show(status, notice(t("rules.saved", { version }), "done"));
      } catch (error) {
        show(status, error instanceof SyntaxError ? notice(t("rules.bad_json", { why: error.message }), "error") : failure(error));
      }
    },
  },
  field("rules-json", t("rules.json"), editor),
  granted("ledger.rules:write") ? h("button", { type: "submit" }, t("rules.save")) : null);

  // Stored versions start at 1 (the API reads version 0 as "the current one").
  const from = h("input", { name: "from", type: "number", min: "1", step: "1", value: String(Math.max(1, version - 1)) });
  const to = h("input", { name: "to", type: "number", min: "1", step: "1", value: String(Math.max(1, version)) });
  const diffBox = h("div", { id: "rules-diff" });
  const compare = h("form", {
    class: "inline",
    onsubmit: async (event) => {
      event.preventDefault();
      try {
        const [a, b] = await Promise.all([rulesAt(from.value), rulesAt(to.value)]);
        const rows = difference(a, b);
        show(diffBox, rows.length === 0
          ? notice(t("rules.same"))
          : table(t("rules.diff"), [t("rules.field"), t("rules.before", { version: a.version }), t("rules.after", { version: b.version })], rows, { hideCaption: true }));
      } catch (error) {
        show(diffBox, failure(error));
      }
    },
  },
  field("rules-from", t("rules.from"), from),
  field("rules-to", t("rules.to"), to),
  h("button", { type: "submit" }, t("rules.compare")));

  return [
    h("h1", {}, t("rules.title")),
    h("section", { class: "card", "aria-labelledby": "rules-current" }, h("h2", { id: "rules-current" }, t("rules.current")), versionLabel, save, status),
    h("section", { class: "card", "aria-labelledby": "rules-compare" }, h("h2", { id: "rules-compare" }, t("rules.diff")), compare, diffBox),
  ];
}
