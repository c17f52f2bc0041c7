// The tenant's audit log, newest first: who did what to what, and how it ended.

import { call, tenantPath } from "../api.js";
import { h, notice, show, table } from "../dom.js";
import { dateTime, number, t } from "../i18n.js";
import { failure } from "../navigate.js";

/** Pages of the API's largest size read to reach the newest records. */
const PAGE = 1000;
const MAX_PAGES = 50;
/** Records shown. */
const SHOWN = 200;

async function newest() {
  let records = [];
  for (let page = 0, from = 1; page < MAX_PAGES; page += 1) {
    const batch = await call("GET", tenantPath(`/audit?from=${from}&limit=${PAGE}`));
    records = records.concat(batch).slice(-SHOWN);
    if (batch.length < PAGE) break;
    from = batch[batch.length - 1].seq + 1;
  }
  return records.reverse();
}

function outcome(result) {
  if (!result) return "";
  return result.code ? `${result.result} (${result.code})` : result.result;
}

/** Checks the whole chain on the server, as `memberd audit verify` does. */
function verification() {
  const status = h("div", { id: "verify-status" });
  const button = h("button", {
    type: "button",
    id: "verify",
    onclick: async () => {
      show(status, notice(t("busy")));
      try {
        const checked = await call("GET", tenantPath("/audit/verification"));
        show(status, checked.intact
          ? notice(t("audit.intact", { records: number(checked.records) }), "done")
          : notice(t("audit.broken", { seq: checked.broken_at, problem: checked.problem }), "error"));
      } catch (error) {
        show(status, failure(error));
      }
    },
  }, t("audit.verify"));
  return h("div", { class: "card" }, button, status);
}

export async function auditScreen() {
  const records = await newest();
  return [
    h("h1", {}, t("audit.title")),
    verification(),
    records.length === 0
      ? notice(t("audit.empty"))
      : table(
        t("audit.title"),
        [t("audit.seq"), t("audit.at"), t("audit.actor"), t("audit.action"), t("audit.target"), t("audit.outcome")],
        records.map((r) => [
          String(r.seq),
          dateTime(r.event.at),
          r.event.actor,
          r.event.action,
          r.event.target,
          outcome(r.event.outcome),
        ]),
        { hideCaption: true },
      ),
  ];
}
