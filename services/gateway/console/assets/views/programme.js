// Programme: the tier policy and the scoring policy as JSON (docs/members.md has their
// fields; the server names what it refuses), and saved segments with their member counts.

import { call, granted, tenantPath, ApiError } from "../api.js";
import { field, h, notice, show, table } from "../dom.js";
import { dateTime, number, t } from "../i18n.js";
import { failure } from "../navigate.js";

/** A JSON editor for a document read with GET and written with PUT at `path`. */
async function policyEditor(id, title, path, example) {
  const status = h("div", { id: `${id}-status` });
  const editor = h("textarea", { name: id, rows: "14", spellcheck: "false" });
  try {
    editor.value = JSON.stringify(await call("GET", tenantPath(path)), null, 2);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
    editor.value = JSON.stringify(example, null, 2);
    show(status, notice(t("policy.none")));
  }
  return h("section", { class: "card", "aria-labelledby": `${id}-title` },
    h("h2", { id: `${id}-title` }, title),
    h("form", {
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          const saved = await call("PUT", tenantPath(path), JSON.parse(editor.value));
          editor.value = JSON.stringify(saved, null, 2);
          show(status, notice(t("policy.saved"), "done"));
        } catch (error) {
          show(status, error instanceof SyntaxError ? notice(t("rules.bad_json", { why: error.message }), "error") : failure(error));
        }
      },
    },
    field(`${id}-json`, t("rules.json"), editor),
    granted("member.program:write") ? h("button", { type: "submit" }, t("rules.save_policy")) : null),
    status);
}

const TIER_EXAMPLE = {
  measure: "spend_12m", period_months: 12, grace_days: 30, approval: "none",
  tiers: [
    { code: "silver", name: "Silver", threshold: 500000, earn_multiplier_bp: 12500 },
    { code: "gold", name: "Gold", threshold: 1000000, earn_multiplier_bp: 15000 },
  ],
};

export async function policiesScreen() {
  return [
    h("h1", {}, t("nav.policies")),
    await policyEditor("tier-policy", t("policy.tiers"), "/tier-policy", TIER_EXAMPLE),
    await policyEditor("scoring-policy", t("policy.scoring"), "/scoring-policy", {}),
  ];
}

export async function segmentsScreen() {
  const status = h("div", { id: "segment-status" });
  const box = h("div", { id: "segment-list" });
  const code = h("input", { name: "code", type: "text", required: true, pattern: "[a-z0-9_\\-]{1,64}" });
  const name = h("input", { name: "name", type: "text", required: true });
  const query = h("textarea", { name: "query", rows: "5", spellcheck: "false" });
  query.value = JSON.stringify({ tag: "vip" });
  const mayWrite = granted("member.program:write");
  // The count while the query is written: asked for once typing pauses, the newest only.
  const live = h("p", { id: "segment-preview", "aria-live": "polite" });
  let asked = 0;
  let timer;
  const preview = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const mine = ++asked;
      let text;
      try {
        JSON.parse(query.value);
        const p = await call("GET", tenantPath(`/segment-preview?query=${encodeURIComponent(query.value)}`));
        text = p.complete
          ? t("segments.preview", { count: number(p.count) })
          : t("segments.preview_partial", { count: number(p.count), scanned: number(p.scanned) });
      } catch (error) {
        text = error instanceof SyntaxError ? t("segments.preview_typing") : `${error.code ?? ""}: ${error.message}`;
      }
      if (mine === asked) live.textContent = text;
    }, 400);
  };
  query.addEventListener("input", preview);
  preview();
  const draw = async () => {
    const segments = await call("GET", tenantPath("/segments"));
    show(box, segments.length === 0
      ? notice(t("segments.none"))
      : table(t("segments.title"), [t("segments.code"), t("segments.name"), t("segments.query"), t("segments.count"), t("segments.refreshed")],
        segments.map((s) => [
          s.code,
          s.name,
          h("code", {}, JSON.stringify(s.query)),
          h("span", { "data-count": s.code }, s.last_refresh ? number(s.last_refresh.count) : t("member.none")),
          s.last_refresh ? dateTime(s.last_refresh.at) : t("member.none"),
        ]), { hideCaption: true }));
  };
  await draw();
  const form = h("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      try {
        const body = { name: name.value.trim(), query: JSON.parse(query.value) };
        const path = tenantPath(`/segments/${encodeURIComponent(code.value.trim())}`);
        await call("PUT", path, body);
        const counted = await call("POST", `${path}/refresh`, {});
        show(status, notice(t("segments.counted", { count: number(counted.count), scanned: number(counted.scanned) }), "done"));
        await draw();
      } catch (error) {
        show(status, error instanceof SyntaxError ? notice(t("rules.bad_json", { why: error.message }), "error") : failure(error));
      }
    },
  },
  h("div", { class: "inline" }, field("segment-code", t("segments.code"), code), field("segment-name", t("segments.name"), name)),
  field("segment-query", t("segments.query"), query),
  live,
  h("button", { type: "submit" }, t("segments.save")));
  return [
    h("h1", {}, t("segments.title")),
    mayWrite ? h("section", { class: "card", "aria-labelledby": "segment-new" }, h("h2", { id: "segment-new" }, t("segments.write")), h("p", { class: "quiet" }, t("segments.hint")), form, status) : null,
    h("section", { class: "card" }, box),
  ];
}
