// The console's words in Simplified Chinese and English, and numbers, dates and money
// formatted the locale's way. The choice is kept in the browser (localStorage).

import { session } from "./api.js";
import en from "./messages/en.js";
import zhCN from "./messages/zh-CN.js";

const MESSAGES = { en, "zh-CN": zhCN };

const CURRENCY = { en: "CNY", "zh-CN": "CNY" };

let locale = localStorage.getItem("console.locale") || (navigator.language.startsWith("zh") ? "zh-CN" : "en");
if (!MESSAGES[locale]) locale = "en";

export function currentLocale() {
  return locale;
}

export function setLocale(next) {
  locale = MESSAGES[next] ? next : "en";
  localStorage.setItem("console.locale", locale);
  document.documentElement.lang = locale;
}

/** The message `key` with `{name}` replaced from `params`. */
export function t(key, params = {}) {
  const text = MESSAGES[locale][key] ?? MESSAGES.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ""));
}

export function number(value) {
  return new Intl.NumberFormat(locale).format(value);
}

/** Stored value is kept in minor units (fen). */
export function money(minor) {
  return new Intl.NumberFormat(locale, { style: "currency", currency: CURRENCY[locale] }).format(minor / 100);
}

/** The logged-in tenant's time zone, else UTC. */
function tenantTimeZone() {
  return session()?.timeZone || "UTC";
}

/** A date and time in the tenant's time zone, the locale's way. */
export function dateTime(value, timeZone = tenantTimeZone()) {
  if (value === null || value === undefined || value === "") return t("member.none");
  const date = typeof value === "number" ? new Date(value) : new Date(String(value));
  return new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short", timeZone }).format(date);
}
