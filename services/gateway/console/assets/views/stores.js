// Administration: the tenant's name and time zone, its brands and stores (added, renamed in
// the API, deactivated and reactivated here; never deleted).

import { call, granted, tenantPath } from "../api.js";
import { field, h, notice, show, table } from "../dom.js";
import { t } from "../i18n.js";
import { failure } from "../navigate.js";

export async function storesScreen() {
  const status = h("div", { id: "stores-status" });
  const settings = h("section", { class: "card", "aria-labelledby": "settings-title" });
  const places = h("div", { id: "places" });
  const mayChange = granted("tenant.stores:write");
  const act = async (what, path, body, message) => {
    try {
      const tenant = await call(what, path, body);
      show(status, notice(message, "done"));
      draw(tenant);
    } catch (error) {
      show(status, failure(error));
    }
  };
  const toggle = (kind, place) => h("button", {
    type: "button",
    class: "small",
    "data-place": `${kind}:${place.id}`,
    onclick: () => act("PATCH", tenantPath(`/${kind}/${encodeURIComponent(place.id)}`), { active: !place.active },
      t(place.active ? "places.deactivated" : "places.reactivated", { id: place.id })),
  }, place.active ? t("staff.deactivate") : t("staff.reactivate"));
  const state = (place) => (place.active ? t("staff.active") : t("staff.inactive"));
  const draw = (tenant) => {
    const name = h("input", { name: "name", type: "text", value: tenant.name, required: true });
    const zone = h("input", { name: "time_zone", type: "text", value: tenant.time_zone ?? "", placeholder: "Asia/Shanghai" });
    show(settings,
      h("h2", { id: "settings-title" }, t("settings.title")),
      h("form", {
        class: "inline",
        onsubmit: (event) => {
          event.preventDefault();
          act("PATCH", tenantPath(""), { name: name.value.trim(), time_zone: zone.value.trim() }, t("settings.saved"));
        },
      },
      field("tenant-name", t("settings.name"), name),
      field("tenant-zone", t("settings.time_zone"), zone),
      granted("tenant.policy:write") ? h("button", { type: "submit" }, t("settings.save")) : null));
    show(places,
      h("h2", {}, t("places.stores")),
      table(t("places.stores"), [t("places.id"), t("places.name"), t("places.brand"), t("staff.state"), mayChange ? t("staff.action") : null].filter(Boolean),
        tenant.stores.map((store) => [store.id, store.name, store.brand ?? "", state(store), mayChange ? toggle("stores", store) : null].filter((c) => c !== null)),
        { hideCaption: true }),
      h("h2", {}, t("places.brands")),
      table(t("places.brands"), [t("places.id"), t("places.name"), t("staff.state"), mayChange ? t("staff.action") : null].filter(Boolean),
        tenant.brands.map((brand) => [brand.id, brand.name, state(brand), mayChange ? toggle("brands", brand) : null].filter((c) => c !== null)),
        { hideCaption: true }));
  };
  draw(await call("GET", tenantPath("")));
  const storeId = h("input", { name: "id", type: "text", required: true, pattern: "[a-z0-9_\\-]{1,64}" });
  const storeName = h("input", { name: "name", type: "text", required: true });
  const addStore = mayChange
    ? h("section", { class: "card", "aria-labelledby": "add-store-title" },
      h("h2", { id: "add-store-title" }, t("places.add_store")),
      h("form", {
        class: "inline",
        onsubmit: (event) => {
          event.preventDefault();
          act("POST", tenantPath("/stores"), { id: storeId.value.trim(), name: storeName.value.trim() }, t("places.added", { id: storeId.value.trim() }));
        },
      },
      field("store-id", t("places.id"), storeId),
      field("store-name", t("places.name"), storeName),
      h("button", { type: "submit" }, t("places.add"))))
    : null;
  return [h("h1", {}, t("nav.stores")), status, settings, addStore, h("section", { class: "card" }, places)];
}
