// Programme: coupon templates. A template is written as JSON (the server names a field it
// refuses) and saved; a coupon of it is issued to a member, and its code shown.

import { call, granted, tenantPath } from "../api.js";
import { field, h, notice, show, table } from "../dom.js";
import { dateTime, t } from "../i18n.js";
import { failure } from "../navigate.js";

const EXAMPLE = {
  id: "WELCOME10",
  name: "10.00 off a first purchase",
  benefit: { type: "amount_off", amount: 1000 },
  min_spend: 5000,
  validity: { days_from_issue: { days: 30 } },
  per_member_limit: 1,
  uses_per_code: 1,
  stacking: { mode: "exclusive" },
  priority: 0,
  active: true,
};

function benefit(b) {
  switch (b?.type) {
    case "amount_off": return t("coupons.amount_off", { amount: (b.amount / 100).toFixed(2) });
    case "percent_off": return t("coupons.percent_off", { percent: b.basis_points / 100 });
    default: return b?.type ?? "";
  }
}

export async function couponsScreen() {
  const status = h("div", { id: "coupon-status" });
  const box = h("div", { id: "template-list" });
  const mayWrite = granted("campaign.coupons:write");
  const issueTo = (template) => {
    const member = h("input", { name: "member", type: "text", required: true, "aria-label": t("coupons.member_for", { id: template.id }) });
    return h("form", {
      class: "inline",
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          const coupon = await call("POST", tenantPath(`/coupon-templates/${encodeURIComponent(template.id)}/coupons`), { member_id: member.value.trim() });
          show(status, h("div", { class: "notice done", role: "status" },
            t("coupons.issued", { member: coupon.member_id, until: dateTime(coupon.valid_until) }), " ",
            h("code", { "data-code": template.id }, coupon.code)));
          member.value = "";
        } catch (error) {
          show(status, failure(error));
        }
      },
    }, member, h("button", { type: "submit", class: "small" }, t("coupons.issue")));
  };
  const draw = async () => {
    const templates = await call("GET", tenantPath("/coupon-templates"));
    show(box, templates.length === 0
      ? notice(t("coupons.none"))
      : table(t("coupons.title"),
        [t("campaigns.id"), t("campaigns.name"), t("coupons.benefit"), t("staff.state"), mayWrite ? t("coupons.issue_to") : null].filter(Boolean),
        templates.map(({ template }) => [
          template.id,
          template.name,
          benefit(template.benefit),
          template.active ? t("staff.active") : t("staff.inactive"),
          mayWrite ? issueTo(template) : null,
        ].filter((c) => c !== null)), { hideCaption: true }));
  };
  await draw();
  const editor = h("textarea", { name: "template", rows: "14", spellcheck: "false" });
  editor.value = JSON.stringify(EXAMPLE, null, 2);
  const save = h("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      try {
        const template = JSON.parse(editor.value);
        await call("PUT", tenantPath(`/coupon-templates/${encodeURIComponent(template.id)}`), template);
        show(status, notice(t("coupons.saved", { id: template.id }), "done"));
        await draw();
      } catch (error) {
        show(status, error instanceof SyntaxError ? notice(t("rules.bad_json", { why: error.message }), "error") : failure(error));
      }
    },
  }, field("template-json", t("coupons.template"), editor), h("button", { type: "submit" }, t("rules.save_policy")));
  return [
    h("h1", {}, t("coupons.title")),
    status,
    h("section", { class: "card" }, box),
    mayWrite ? h("section", { class: "card", "aria-labelledby": "template-title" }, h("h2", { id: "template-title" }, t("coupons.write")), save) : null,
  ];
}
