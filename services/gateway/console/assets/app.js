// The console's frame: the header with the menu the caller's roles grant, the language
// switch and logging out, and the screen the path names. Screens live in `views/`.

import { granted, logout, onSessionEnded, session } from "./api.js";
import { h, notice, show } from "./dom.js";
import { currentLocale, setLocale, t } from "./i18n.js";
import { failure, go, link as pathLink } from "./navigate.js";
import { loginScreen } from "./views/login.js";
import { memberScreen, membersScreen } from "./views/members.js";
import { auditScreen } from "./views/audit.js";
import { campaignsScreen } from "./views/campaigns.js";
import { couponsScreen } from "./views/coupons.js";
import { policiesScreen, segmentsScreen } from "./views/programme.js";
import { rulesScreen } from "./views/rules.js";
import { keysScreen } from "./views/keys.js";
import { rolesScreen, staffScreen } from "./views/staff.js";
import { storesScreen } from "./views/stores.js";

/** Menu entries: the path, its words, and the permission without which it is not shown. */
const MENU = [
  { path: "/console/members", label: "nav.members", needs: "member:read" },
  { path: "/console/rules", label: "nav.rules", needs: "ledger.rules:read" },
  { path: "/console/policies", label: "nav.policies", needs: "member:read" },
  { path: "/console/segments", label: "nav.segments", needs: "member:read" },
  { path: "/console/campaigns", label: "nav.campaigns", needs: "campaign.campaigns:read" },
  { path: "/console/coupons", label: "nav.coupons", needs: "campaign.coupons:read" },
];
const ADMIN_MENU = [
  { path: "/console/admin/stores", label: "nav.stores", needs: "tenant:read" },
  { path: "/console/admin/staff", label: "nav.staff", needs: "identity.staff:read" },
  { path: "/console/admin/roles", label: "nav.roles", needs: "identity.staff:read" },
  { path: "/console/admin/api-keys", label: "nav.keys", needs: "identity.api_keys:write" },
  { path: "/console/admin/audit", label: "nav.audit", needs: "audit:read" },
];

/** Screens by path pattern; each draws itself into `main`. */
const SCREENS = [
  { pattern: /^\/console\/?$/, draw: home },
  { pattern: /^\/console\/members\/?$/, draw: membersScreen },
  { pattern: /^\/console\/members\/([^/]+)$/, draw: memberScreen },
  { pattern: /^\/console\/rules$/, draw: rulesScreen },
  { pattern: /^\/console\/policies$/, draw: policiesScreen },
  { pattern: /^\/console\/segments$/, draw: segmentsScreen },
  { pattern: /^\/console\/campaigns$/, draw: campaignsScreen },
  { pattern: /^\/console\/coupons$/, draw: couponsScreen },
  { pattern: /^\/console\/admin\/stores$/, draw: storesScreen },
  { pattern: /^\/console\/admin\/staff$/, draw: staffScreen },
  { pattern: /^\/console\/admin\/roles$/, draw: rolesScreen },
  { pattern: /^\/console\/admin\/api-keys$/, draw: keysScreen },
  { pattern: /^\/console\/admin\/audit$/, draw: auditScreen },
];

const main = document.getElementById("main");
const top = document.getElementById("top");

function link(path, label) {
  return pathLink(path, t(label));
}

function header() {
  const who = session();
  const languageButton = h("button", {
    type: "button",
    class: "link",
    lang: currentLocale() === "en" ? "zh-CN" : "en",
    "aria-label": t("lang.switch.label"),
    onclick: () => {
      setLocale(currentLocale() === "en" ? "zh-CN" : "en");
      render();
    },
  }, t("lang.switch"));
  if (!who) {
    show(top, h("div", { class: "bar" }, h("span", { class: "brand" }, t("app.title")), languageButton));
    return;
  }
  const menu = MENU.filter((entry) => granted(entry.needs));
  const admin = ADMIN_MENU.filter((entry) => granted(entry.needs));
  const entries = menu.map((entry) => h("li", {}, link(entry.path, entry.label)));
  if (admin.length) {
    entries.push(h("li", { class: "group", id: "admin-menu" },
      h("span", {}, t("nav.admin")),
      h("ul", {}, admin.map((entry) => h("li", {}, link(entry.path, entry.label))))));
  }
  show(top,
    h("div", { class: "bar" },
      h("a", { class: "brand", href: "/console", onclick: (e) => { e.preventDefault(); go("/console"); } }, t("app.title")),
      h("span", { class: "who" }, t("session.signed_in_as", { user: who.username, tenant: who.store ? `${who.tenant}/${who.store}` : who.tenant })),
      languageButton,
      h("button", { type: "button", class: "link", onclick: async () => { await logout().catch(() => {}); go("/console"); } }, t("session.logout"))),
    h("nav", { "aria-label": t("nav.label") }, h("ul", {}, entries)));
}

function home() {
  const entries = [...MENU, ...ADMIN_MENU].filter((entry) => granted(entry.needs));
  return [
    h("h1", {}, t("home.title")),
    entries.length
      ? h("ul", { class: "tiles" }, entries.map((entry) => h("li", {}, link(entry.path, entry.label))))
      : notice(t("home.nothing")),
  ];
}

/** Draws the screen for the current path (the login screen when nobody is logged in). */
async function render(message) {
  document.documentElement.lang = currentLocale();
  document.title = t("app.title");
  document.querySelector(".skip").textContent = t("app.skip");
  header();
  if (!session()) {
    show(main, loginScreen(message));
    return;
  }
  const path = location.pathname;
  const screen = SCREENS.map((s) => ({ ...s, match: path.match(s.pattern) })).find((s) => s.match);
  if (!screen) {
    show(main, h("h1", {}, t("error.not_found")));
    return;
  }
  show(main, notice(t("busy")));
  try {
    show(main, await screen.draw(...screen.match.slice(1).map(decodeURIComponent)));
  } catch (error) {
    show(main, failure(error));
  }
}

onSessionEnded(() => render(t("session.expired")));
window.addEventListener("popstate", () => render());
window.addEventListener("console:navigate", () => render());
render();
