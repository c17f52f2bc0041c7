// Administration: the tenant's staff with the roles each holds, deactivating and
// reactivating accounts; and the roles on offer with what each allows.

import { call, granted, session, tenantPath } from "../api.js";
import { h, notice, show, table } from "../dom.js";
import { dateTime, t } from "../i18n.js";
import { failure } from "../navigate.js";

function rolesHeld(roles) {
  return roles.map((r) => (r.store ? `${r.role} @ ${r.store}` : r.role)).join(", ");
}

export async function staffScreen() {
  const box = h("div", { id: "staff-list" });
  const status = h("div", { id: "staff-status" });
  const draw = async () => {
    const { staff } = await call("GET", tenantPath("/staff"));
    const mayChange = granted("identity.staff:write");
    show(box, table(t("staff.title"),
      [t("staff.username"), t("staff.name"), t("staff.roles"), t("staff.state"), t("staff.created"), mayChange ? t("staff.action") : null].filter(Boolean),
      staff.map((member) => [
        member.username,
        member.display_name,
        rolesHeld(member.roles),
        member.active ? t("staff.active") : t("staff.inactive"),
        dateTime(member.created_at),
        mayChange && member.username !== session().username ? toggle(member) : null,
      ].filter((cell) => cell !== null)), { hideCaption: true }));
  };
  const toggle = (member) => h("button", {
    type: "button",
    class: "small",
    "data-staff": member.username,
    onclick: async () => {
      const verb = member.active ? "deactivate" : "reactivate";
      try {
        await call("POST", tenantPath(`/staff/${encodeURIComponent(member.id)}/${verb}`), {});
        show(status, notice(t(`staff.${verb}d`, { user: member.username }), "done"));
        await draw();
      } catch (error) {
        show(status, failure(error));
      }
    },
  }, member.active ? t("staff.deactivate") : t("staff.reactivate"));
  await draw();
  return [h("h1", {}, t("staff.title")), status, box];
}

export async function rolesScreen() {
  const { roles } = await call("GET", tenantPath("/roles"));
  return [
    h("h1", {}, t("roles.title")),
    table(t("roles.title"), [t("roles.name"), t("roles.kind"), t("roles.permissions")],
      roles.map((role) => [
        role.name,
        role.built_in ? t("roles.built_in") : t("roles.custom"),
        role.permissions.join(", "),
      ]), { hideCaption: true }),
  ];
}
