// Members: finding one by phone, email or ID number (the server matches through its blind
// indexes, so the value never has to be stored in the clear), and one member's profile,
// masked unless revealed (audited), wallet, history and manual adjustment.

import { call, granted, tenantPath, ApiError } from "../api.js";
import { field, h, notice, show, table } from "../dom.js";
import { dateTime, money, number, t } from "../i18n.js";
import { failure, go } from "../navigate.js";
import { memberList } from "./member_list.js";
import { erasureSection, mergeSection, tagsSection, tierSection } from "./member_more.js";

export function membersScreen() {
  const by = h("select", { name: "by" },
    ["phone", "email", "id_number"].map((kind) => h("option", { value: kind }, t(`members.by.${kind}`))));
  const value = h("input", { name: "value", type: "search", required: true, autocomplete: "off" });
  const status = h("div", { id: "search-status" });
  return h("section", { class: "card" },
    h("h1", {}, t("members.title")),
    h("form", {
      role: "search",
      class: "inline",
      onsubmit: async (event) => {
        event.preventDefault();
        show(status, notice(t("busy")));
        const query = `${by.value}=${encodeURIComponent(value.value.trim())}`;
        try {
          const found = await call("GET", tenantPath(`/member-lookup?${query}`));
          go(`/console/members/${encodeURIComponent(found.member_id)}`);
        } catch (error) {
          show(status, error instanceof ApiError && error.status === 404 ? notice(t("members.not_found")) : failure(error));
        }
      },
    },
    field("search-by", t("members.by"), by),
    field("search-value", t("members.value"), value),
    h("button", { type: "submit" }, t("members.search"))),
    status,
    memberList());
}

export async function memberScreen(memberId) {
  const base = tenantPath(`/members/${encodeURIComponent(memberId)}`);
  const profile = await call("GET", `${base}/profile`);
  const profileBox = h("div", { id: "profile" }, profileList(profile));
  const walletBox = h("section", { class: "card", id: "wallet", "aria-labelledby": "wallet-title" });
  const historyBox = h("section", { class: "card", id: "history", "aria-labelledby": "history-title" });
  const refreshWallet = async () => {
    await drawWallet(walletBox, base);
    await drawHistory(historyBox, base);
  };
  await refreshWallet();
  const revealStatus = h("div", { id: "reveal-status" });
  const reveal = granted("member.pii:read")
    ? [
      h("p", { class: "quiet" }, t("member.reveal.note")),
      h("button", {
        type: "button",
        id: "reveal",
        onclick: async (event) => {
          event.currentTarget.disabled = true;
          try {
            show(profileBox, profileList(await call("GET", `${base}/profile/unmasked`)));
            show(revealStatus, notice(t("member.revealed"), "done"));
          } catch (error) {
            show(revealStatus, failure(error));
          }
        },
      }, t("member.reveal")),
      revealStatus,
    ]
    : [];
  return [
    h("h1", {}, t("member.title", { id: memberId })),
    h("section", { class: "card", "aria-labelledby": "profile-title" },
      h("h2", { id: "profile-title" }, t("member.profile")), profileBox, reveal),
    walletBox,
    granted("ledger.adjust:write") ? adjustForm(base, refreshWallet) : null,
    historyBox,
    tagsSection(base, profile),
    await tierSection(base),
    granted("member:write") ? mergeSection(tenantPath(""), memberId) : null,
    granted("member:write") ? await erasureSection(base, memberId) : null,
  ];
}

function profileList(profile) {
  const none = t("member.none");
  const personal = profile.personal ?? {};
  const rows = [
    ["member.name", personal.name],
    ["member.phone", personal.phone],
    ["member.email", personal.email],
    ["member.id_number", personal.id_number],
    ["member.birthday", personal.birthday],
    ["member.tier", profile.tier],
    ["member.tags", (profile.tags ?? []).join(", ")],
    ["member.store", profile.store],
    ["member.channel", profile.channel],
    ["member.joined", dateTime(profile.created_at)],
  ];
  return h("dl", { class: "facts" },
    rows.map(([label, value]) => [h("dt", {}, t(label)), h("dd", { "data-field": label }, value || none)]));
}

async function drawWallet(box, base) {
  try {
    const b = await call("GET", `${base}/balance`);
    show(box,
      h("h2", { id: "wallet-title" }, t("wallet.title")),
      h("dl", { class: "facts" },
        h("dt", {}, t("wallet.available")), h("dd", { id: "points-available" }, number(b.points_available)),
        h("dt", {}, t("wallet.pending")), h("dd", {}, number(b.points_pending)),
        h("dt", {}, t("wallet.held")), h("dd", {}, number(b.points_held)),
        h("dt", {}, t("wallet.expiring")), h("dd", {}, `${number(b.expiring_soon_points)} · ${dateTime(b.expiring_soon_at)}`),
        h("dt", {}, t("wallet.stored_value")), h("dd", {}, money(b.stored_value))));
  } catch (error) {
    const none = error instanceof ApiError && error.code === "WALLET_NOT_FOUND";
    show(box, h("h2", { id: "wallet-title" }, t("wallet.title")), none ? notice(t("wallet.none")) : failure(error));
  }
}

async function drawHistory(box, base) {
  try {
    const page = await call("GET", `${base}/history?limit=20`);
    show(box,
      h("h2", { id: "history-title" }, t("history.title")),
      table(t("history.title"), [t("history.at"), t("history.kind"), t("history.points"), t("history.reason")],
        page.entries.map((entry) => [
          dateTime(entry.at),
          t(`kind.${entry.kind}`),
          number(entry.deltas.points_available + entry.deltas.points_pending),
          entry.reason ?? "",
        ]), { hideCaption: true }));
  } catch (error) {
    const none = error instanceof ApiError && error.code === "WALLET_NOT_FOUND";
    show(box, h("h2", { id: "history-title" }, t("history.title")), none ? null : failure(error));
  }
}

function adjustForm(base, refreshWallet) {
  const points = h("input", { name: "points", type: "number", required: true, step: "1" });
  const reason = h("input", { name: "reason", type: "text", required: true, maxlength: "200" });
  const status = h("div", { id: "adjust-status" });
  // One key per intended adjustment: a double click or a retry is not applied twice.
  let key = crypto.randomUUID();
  return h("section", { class: "card", "aria-labelledby": "adjust-title" },
    h("h2", { id: "adjust-title" }, t("adjust.title")),
    h("form", {
      class: "inline",
      onsubmit: async (event) => {
        event.preventDefault();
        show(status, notice(t("busy")));
        try {
          const body = { points: Number.parseInt(points.value, 10), reason: reason.value.trim() };
          await call("POST", `${base}/adjustments`, body, { idempotencyKey: key });
          key = crypto.randomUUID();
          await refreshWallet();
          const available = document.getElementById("points-available")?.textContent ?? "";
          show(status, notice(t("adjust.done", { points: available }), "done"));
          points.value = "";
          reason.value = "";
        } catch (error) {
          show(status, failure(error));
        }
      },
    },
    field("adjust-points", t("adjust.points"), points),
    field("adjust-reason", t("adjust.reason"), reason),
    h("button", { type: "submit" }, t("adjust.submit"))),
    status);
}
