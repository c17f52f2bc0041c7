// The member list under the search: the tenant's members, masked, narrowed by tag, tier,
// store or segment, a page at a time.

import { call, tenantPath } from "../api.js";
import { field, h, notice, show, table } from "../dom.js";
import { dateTime, t } from "../i18n.js";
import { failure, link } from "../navigate.js";

const FILTERS = ["tag", "tier", "store", "segment"];
const PAGE = 20;

export function memberList() {
  const inputs = Object.fromEntries(FILTERS.map((name) => [name, h("input", { name, type: "text", autocomplete: "off" })]));
  const results = h("div", { id: "member-list" });
  const pager = h("div", { class: "pager" });
  const pages = [];

  const load = async (cursor) => {
    const query = new URLSearchParams({ limit: String(PAGE) });
    for (const name of FILTERS) {
      const value = inputs[name].value.trim();
      if (value) query.set(name, value);
    }
    if (cursor) query.set("cursor", cursor);
    show(results, notice(t("busy")));
    try {
      const page = await call("GET", tenantPath(`/members?${query}`));
      show(results, page.members.length === 0
        ? notice(t("list.empty"))
        : table(t("list.title"), [t("list.member"), t("member.name"), t("member.phone"), t("member.tier"), t("member.tags"), t("member.store"), t("member.joined")],
          page.members.map((m) => [
            link(`/console/members/${encodeURIComponent(m.member_id)}`, m.member_id),
            m.personal?.name ?? "",
            m.personal?.phone ?? "",
            m.tier ?? "",
            (m.tags ?? []).join(", "),
            m.store ?? "",
            dateTime(m.created_at),
          ]), { hideCaption: true }));
      show(pager,
        pages.length ? h("button", { type: "button", class: "small", onclick: () => { pages.pop(); load(pages.at(-1)); } }, t("list.previous")) : null,
        page.next_cursor ? h("button", { type: "button", class: "small", id: "next-page", onclick: () => { pages.push(page.next_cursor); load(page.next_cursor); } }, t("list.next")) : null);
    } catch (error) {
      show(results, failure(error));
      show(pager);
    }
  };

  const form = h("form", {
    class: "inline",
    onsubmit: (event) => {
      event.preventDefault();
      pages.length = 0;
      load(null);
    },
  },
  FILTERS.map((name) => field(`filter-${name}`, t(`list.${name}`), inputs[name])),
  h("button", { type: "submit" }, t("list.show")));
  load(null);
  return h("section", { class: "card", "aria-labelledby": "list-title" },
    h("h2", { id: "list-title" }, t("list.title")), form, results, pager);
}
