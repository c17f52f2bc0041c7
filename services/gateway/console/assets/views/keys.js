// Administration: the tenant's API keys for partner systems. A new key is shown once, here,
// and never again; the list shows everything else about each key.

import { call, tenantPath } from "../api.js";
import { field, h, notice, show, table } from "../dom.js";
import { dateTime, t } from "../i18n.js";
import { failure } from "../navigate.js";

export async function keysScreen() {
  const box = h("div", { id: "key-list" });
  const status = h("div", { id: "key-status" });
  const draw = async () => {
    const { keys } = await call("GET", tenantPath("/api-keys"));
    show(box, table(t("keys.title"),
      [t("keys.name"), t("keys.roles"), t("keys.created"), t("keys.last_used"), t("keys.state"), t("staff.action")],
      keys.map((key) => [
        key.name,
        key.roles.join(", "),
        dateTime(key.created_at),
        dateTime(key.last_used_at),
        key.revoked_at ? t("keys.revoked") : t("keys.live"),
        key.revoked_at ? "" : h("button", {
          type: "button",
          class: "small",
          onclick: async () => {
            try {
              await call("POST", tenantPath(`/api-keys/${encodeURIComponent(key.id)}/revoke`), {});
              show(status, notice(t("keys.revoked_done", { name: key.name }), "done"));
              await draw();
            } catch (error) {
              show(status, failure(error));
            }
          },
        }, t("keys.revoke")),
      ]), { hideCaption: true }));
  };
  const name = h("input", { name: "name", type: "text", required: true, maxlength: "100" });
  const roles = h("input", { name: "roles", type: "text", required: true, value: "partner" });
  const create = h("form", {
    class: "inline",
    onsubmit: async (event) => {
      event.preventDefault();
      try {
        const body = { name: name.value.trim(), roles: roles.value.split(",").map((r) => r.trim()).filter(Boolean) };
        const made = await call("POST", tenantPath("/api-keys"), body);
        show(status, h("div", { class: "notice done", role: "status" },
          h("p", {}, t("keys.shown_once")),
          h("code", { id: "new-key" }, made.key)));
        name.value = "";
        await draw();
      } catch (error) {
        show(status, failure(error));
      }
    },
  },
  field("key-name", t("keys.name"), name),
  field("key-roles", t("keys.roles_hint"), roles),
  h("button", { type: "submit" }, t("keys.create")));
  await draw();
  return [
    h("h1", {}, t("keys.title")),
    h("section", { class: "card", "aria-labelledby": "new-key-title" }, h("h2", { id: "new-key-title" }, t("keys.new")), create, status),
    h("section", { class: "card" }, box),
  ];
}
