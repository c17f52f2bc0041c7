// Moving between screens without reloading the page, and what a screen that could not be
// drawn shows instead.

import { ApiError } from "./api.js";
import { h, notice } from "./dom.js";
import { t } from "./i18n.js";

/** Goes to a console path; the frame (app.js) draws its screen. */
export function go(path) {
  history.pushState(null, "", path);
  window.dispatchEvent(new Event("console:navigate"));
}

/** A link to a console path that moves without a reload. */
export function link(path, label, attributes = {}) {
  const current = location.pathname === path || location.pathname.startsWith(`${path}/`);
  return h("a", {
    href: path,
    "aria-current": current ? "page" : undefined,
    ...attributes,
    onclick: (event) => {
      event.preventDefault();
      go(path);
    },
  }, label);
}

/**
 * What a failed screen or action shows: a refusal by role as 403, others (a business rule's
 * 403 such as APPROVER_IS_MAKER included) with their stable code and the server's words.
 */
export function failure(error) {
  if (error instanceof ApiError && error.status === 403 && error.code === "FORBIDDEN") {
    return [h("h1", {}, "403"), notice(t("error.forbidden"), "error")];
  }
  if (error instanceof ApiError) {
    return notice(`${error.code ?? error.status}: ${error.message}`, "error");
  }
  return notice(t("error.unavailable"), "error");
}
