// Programme: campaigns. Head office writes one (here: points for everyone in a window,
// within a budget; the full JSON through the API), submits it, and another staff member
// approves or rejects it; a running campaign is paused, resumed or ended. Each row offers
// only the steps its status allows and the caller's roles grant.

import { call, granted, tenantPath } from "../api.js";
import { field, h, notice, show, table } from "../dom.js";
import { dateTime, number, t } from "../i18n.js";
import { failure } from "../navigate.js";

/** The steps each status allows: [path segment, message key, permission]. */
const STEPS = {
  draft: [["submit", "campaigns.submit", "campaign.campaigns:write"]],
  rejected: [["submit", "campaigns.submit", "campaign.campaigns:write"]],
  submitted: [
    ["approval", "campaigns.approve", "campaign.approvals:write"],
    ["rejection", "campaigns.reject", "campaign.approvals:write"],
  ],
  approved: [["pause", "campaigns.pause", "campaign.campaigns:write"], ["end", "campaigns.end", "campaign.campaigns:write"]],
  paused: [["resume", "campaigns.resume", "campaign.campaigns:write"], ["end", "campaigns.end", "campaign.campaigns:write"]],
};

export async function campaignsScreen() {
  const status = h("div", { id: "campaign-status" });
  const box = h("div", { id: "campaign-list" });
  const step = (campaign, [path, label]) => h("button", {
    type: "button",
    class: "small",
    "data-step": `${campaign.campaign.id}:${path}`,
    onclick: async () => {
      try {
        await call("POST", tenantPath(`/campaigns/${encodeURIComponent(campaign.campaign.id)}/${path}`), {});
        show(status, notice(t("campaigns.done", { id: campaign.campaign.id, step: t(label) }), "done"));
        await draw();
      } catch (error) {
        show(status, failure(error));
      }
    },
  }, t(label));
  const results = h("div", { id: "campaign-results" });
  const showResults = (campaign) => h("button", {
    type: "button",
    class: "link",
    "data-results": campaign.campaign.id,
    onclick: async () => {
      try {
        const r = await call("GET", tenantPath(`/campaigns/${encodeURIComponent(campaign.campaign.id)}/results`));
        const money = (minor) => number(minor / 100);
        show(results, h("section", { class: "card", "aria-labelledby": "results-title" },
          h("h2", { id: "results-title" }, t("campaigns.results_of", { id: r.campaign })),
          table(t("campaigns.results_of", { id: r.campaign }),
            [t("campaigns.arm"), t("campaigns.members"), t("campaigns.issued"), t("campaigns.redeemed"), t("campaigns.orders"), t("campaigns.spend"), t("campaigns.incremental")],
            [...r.arms, r.total].map((arm) => [
              arm.arm === "total" ? t("campaigns.total") : arm.arm,
              number(arm.members),
              number(arm.issued),
              number(arm.redeemed),
              number(arm.orders),
              money(arm.spend),
              arm.incremental_spend === null ? t("member.none") : money(arm.incremental_spend),
            ]), { hideCaption: true })));
      } catch (error) {
        show(results, failure(error));
      }
    },
  }, t("campaigns.results"));
  const draw = async () => {
    const campaigns = await call("GET", tenantPath("/campaigns"));
    show(box, campaigns.length === 0
      ? notice(t("campaigns.none"))
      : table(t("campaigns.title"),
        [t("campaigns.id"), t("campaigns.name"), t("campaigns.status"), t("campaigns.window"), t("campaigns.budget_left"), t("staff.action")],
        campaigns.map((c) => [
          c.campaign.id,
          c.campaign.name,
          h("span", { "data-status": c.campaign.id }, t(`campaigns.phase.${c.phase}`)),
          `${dateTime(c.starts_ms)} – ${dateTime(c.ends_ms)}`,
          `${number(c.budget_left)} ${c.campaign.budget.unit}`,
          h("span", { class: "actions" }, (STEPS[c.status] ?? []).filter((s) => granted(s[2])).map((s) => step(c, s)), showResults(c)),
        ]), { hideCaption: true }));
  };
  await draw();
  return [
    h("h1", {}, t("campaigns.title")),
    status,
    granted("campaign.campaigns:write") ? createForm(status, draw) : null,
    h("section", { class: "card" }, box),
    results,
  ];
}

function createForm(status, draw) {
  const input = (name, type = "text", extra = {}) => h("input", { name, type, required: true, ...extra });
  const id = input("id", "text", { pattern: "[A-Za-z0-9_\\-]{1,64}" });
  const name = input("name");
  const points = input("points", "number", { min: "1", step: "1", value: "100" });
  const budget = input("budget", "number", { min: "1", step: "1", value: "100000" });
  const starts = input("starts", "date");
  const ends = input("ends", "date");
  const zone = input("time_zone", "text", { value: Intl.DateTimeFormat().resolvedOptions().timeZone });
  return h("section", { class: "card", "aria-labelledby": "new-campaign-title" },
    h("h2", { id: "new-campaign-title" }, t("campaigns.new")),
    h("p", { class: "quiet" }, t("campaigns.new.hint")),
    h("form", {
      class: "inline",
      onsubmit: async (event) => {
        event.preventDefault();
        const campaign = {
          id: id.value.trim(),
          name: name.value.trim(),
          audience: { type: "everyone" },
          variants: [{ id: "points", weight: 1, reward: { type: "points", points: Number(points.value) } }],
          schedule: { starts: starts.value, ends: ends.value, time_zone: zone.value.trim() },
          budget: { unit: "points", limit: Number(budget.value) },
        };
        try {
          await call("POST", tenantPath("/campaigns"), campaign, { idempotencyKey: `campaign-${campaign.id}` });
          show(status, notice(t("campaigns.created", { id: campaign.id }), "done"));
          await draw();
        } catch (error) {
          show(status, failure(error));
        }
      },
    },
    field("campaign-id", t("campaigns.id"), id),
    field("campaign-name", t("campaigns.name"), name),
    field("campaign-points", t("campaigns.points"), points),
    field("campaign-budget", t("campaigns.budget"), budget),
    field("campaign-starts", t("campaigns.starts"), starts),
    field("campaign-ends", t("campaigns.ends"), ends),
    field("campaign-zone", t("settings.time_zone"), zone),
    h("button", { type: "submit" }, t("campaigns.create"))));
}
