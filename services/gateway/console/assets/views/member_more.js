// The rest of a member's page: tags, the tier with its history and any change awaiting
// approval, merging a duplicate into the member (and undoing it), and erasure.

import { call, granted } from "../api.js";
import { field, h, notice, show, table } from "../dom.js";
import { dateTime, number, t } from "../i18n.js";
import { failure } from "../navigate.js";

/** Runs `action`, then says `done` in `status` (or why not) and redraws with `redraw`. */
async function attempt(status, action, done, redraw) {
  try {
    const result = await action();
    show(status, notice(typeof done === "function" ? done(result) : done, "done"));
    if (redraw) await redraw(result);
  } catch (error) {
    show(status, failure(error));
  }
}

export function tagsSection(base, profile) {
  const status = h("div", { id: "tags-status" });
  const current = h("p", { id: "tags-current" }, (profile.tags ?? []).join(", ") || t("member.none"));
  const tag = h("input", { name: "tag", type: "text", required: true, pattern: "[a-z0-9_:\\-]{1,64}" });
  const change = (key) => async () => {
    const body = { add: [], remove: [] };
    body[key].push(tag.value.trim());
    await attempt(status, () => call("POST", `${base}/tags`, body), t("tags.saved"), (updated) => {
      current.textContent = (updated.tags ?? []).join(", ") || t("member.none");
      tag.value = "";
    });
  };
  return h("section", { class: "card", "aria-labelledby": "tags-title" },
    h("h2", { id: "tags-title" }, t("member.tags")), current,
    granted("member:write")
      ? h("form", { class: "inline", onsubmit: (event) => { event.preventDefault(); change("add")(); } },
        field("tag-value", t("tags.tag"), tag),
        h("button", { type: "submit" }, t("tags.add")),
        h("button", { type: "button", class: "link", onclick: () => tag.reportValidity() && change("remove")() }, t("tags.remove")))
      : null,
    status);
}

export async function tierSection(base) {
  const box = h("section", { class: "card", id: "tier", "aria-labelledby": "tier-title" });
  const draw = async () => {
    const tier = await call("GET", `${base}/tier`);
    const state = tier.state ?? {};
    const status = h("div", { id: "tier-status" });
    const pending = state.pending;
    const decide = (approve) => h("button", {
      type: "button",
      class: "small",
      onclick: () => attempt(status, () => call("POST", `${base}/tier/decisions`, { approve }),
        t(approve ? "tier.approved" : "tier.rejected"), draw),
    }, t(approve ? "campaigns.approve" : "campaigns.reject"));
    show(box,
      h("h2", { id: "tier-title" }, t("member.tier")),
      h("dl", { class: "facts" },
        h("dt", {}, t("member.tier")), h("dd", { id: "tier-code" }, tier.tier ?? t("member.none")),
        h("dt", {}, t("tier.multiplier")), h("dd", {}, `${number(tier.earn_multiplier_bp / 10000)}×`),
        h("dt", {}, t("tier.since")), h("dd", {}, dateTime(state.since)),
        h("dt", {}, t("tier.review_at")), h("dd", {}, dateTime(state.review_at))),
      pending
        ? h("div", { class: "notice" }, t("tier.pending", { to: pending.to ?? t("member.none") }), " ",
          granted("member.program:write") ? [decide(true), " ", decide(false)] : null)
        : null,
      (state.history ?? []).length
        ? table(t("tier.history"), [t("history.at"), t("tier.from"), t("tier.to"), t("tier.cause")],
          [...state.history].reverse().map((move) => [dateTime(move.at), move.from ?? t("member.none"), move.to ?? t("member.none"), String(move.cause)]))
        : null,
      status);
  };
  try {
    await draw();
  } catch (error) {
    show(box, h("h2", { id: "tier-title" }, t("member.tier")), failure(error));
  }
  return box;
}

export function mergeSection(tenantBase, memberId) {
  const status = h("div", { id: "merge-status" });
  const duplicate = h("input", { name: "duplicate", type: "text", required: true });
  const reverse = (merge) => h("button", {
    type: "button",
    class: "small",
    id: "merge-reverse",
    onclick: () => attempt(status, () => call("POST", `${tenantBase}/merges/${encodeURIComponent(merge.merge_id)}/reversal`, {}),
      t("merge.reversed", { duplicate: merge.duplicate })),
  }, t("merge.reverse"));
  return h("section", { class: "card", "aria-labelledby": "merge-title" },
    h("h2", { id: "merge-title" }, t("merge.title")),
    h("p", { class: "quiet" }, t("merge.hint", { id: memberId })),
    h("form", {
      class: "inline",
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          const merge = await call("POST", `${tenantBase}/members/${encodeURIComponent(memberId)}/merges`, { duplicate: duplicate.value.trim() });
          show(status, h("div", { class: "notice done", role: "status" },
            t("merge.done", { duplicate: merge.duplicate, points: number(merge.points_moved) }), " ", reverse(merge)));
        } catch (error) {
          show(status, failure(error));
        }
      },
    },
    field("merge-duplicate", t("merge.duplicate"), duplicate),
    h("button", { type: "submit" }, t("merge.submit"))),
    status);
}

export async function erasureSection(base, memberId) {
  const status = h("div", { id: "erasure-status" });
  const erasure = await call("GET", `${base}/erasure`);
  const confirm = h("input", { name: "confirm", type: "text", required: true, autocomplete: "off" });
  return h("section", { class: "card", "aria-labelledby": "erasure-title" },
    h("h2", { id: "erasure-title" }, t("erasure.title")),
    h("p", {}, t(`erasure.state.${erasure.state}`)),
    h("p", { class: "quiet" }, t("erasure.hint")),
    h("form", {
      class: "inline",
      onsubmit: async (event) => {
        event.preventDefault();
        if (confirm.value.trim() !== memberId) {
          show(status, notice(t("erasure.confirm_mismatch"), "error"));
          return;
        }
        await attempt(status, () => call("POST", `${base}/erasure`, {}), t("erasure.done"));
      },
    },
    field("erasure-confirm", t("erasure.confirm", { id: memberId }), confirm),
    h("button", { type: "submit", class: "danger" }, t("erasure.submit"))),
    status);
}
