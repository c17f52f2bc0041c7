// Logging in: tenant, optional store (for staff whose roles are held in one store), username,
// password and, for accounts with a second factor, the one-time code.

import { login } from "../api.js";
import { field, h, notice, show } from "../dom.js";
import { t } from "../i18n.js";
import { failure, go } from "../navigate.js";

export function loginScreen(message) {
  const input = (name, type = "text", extra = {}) => h("input", { name, type, ...extra });
  const tenant = input("tenant", "text", { required: true, autocomplete: "organization", value: localStorage.getItem("console.tenant") || "" });
  const store = input("store", "text", { autocomplete: "off" });
  const username = input("username", "text", { required: true, autocomplete: "username" });
  const password = input("password", "password", { required: true, autocomplete: "current-password" });
  const code = input("code", "text", { inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{6}", "aria-describedby": "code-hint" });
  const status = h("div", { id: "login-status" }, message ? notice(message) : null);
  const form = h("form", {
    class: "card narrow",
    onsubmit: async (event) => {
      event.preventDefault();
      show(status, notice(t("busy")));
      try {
        const tokens = await login({
          tenant: tenant.value.trim(),
          store: store.value.trim(),
          username: username.value.trim(),
          password: password.value,
          code: code.value.trim(),
        });
        localStorage.setItem("console.tenant", tenant.value.trim());
        if (tokens.must_change_password) {
          show(status, notice(t("login.change_password"), "error"));
          return;
        }
        go(location.pathname.startsWith("/console") ? location.pathname : "/console");
      } catch (error) {
        show(status, failure(error));
      }
    },
  },
  h("h1", {}, t("login.title")),
  field("login-tenant", t("login.tenant"), tenant),
  field("login-store", t("login.store"), store),
  field("login-username", t("login.username"), username),
  field("login-password", t("login.password"), password),
  field("login-code", t("login.code"), code),
  h("p", { id: "code-hint", class: "quiet" }, t("login.code.hint")),
  h("button", { type: "submit" }, t("login.submit")),
  status);
  return form;
}
