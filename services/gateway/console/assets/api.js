// Calls to the `/v1` API as the logged-in staff member. The tokens live in sessionStorage
// (this tab only, gone when it closes); the content security policy runs no script but the
// console's own. An expired access token is refreshed once; a refused refresh ends the
// session.

const KEY = "console.session";

/** An answer other than 2xx: the problem's stable code and message, and the HTTP status. */
export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

export function session() {
  const kept = sessionStorage.getItem(KEY);
  return kept ? JSON.parse(kept) : null;
}

function keep(value) {
  if (value) sessionStorage.setItem(KEY, JSON.stringify(value));
  else sessionStorage.removeItem(KEY);
}

/** Called when the session ends on its own (a refused refresh). */
let ended = () => {};
export function onSessionEnded(callback) {
  ended = callback;
}

async function send(method, path, body, headers = {}) {
  const response = await fetch(path, {
    method,
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
  });
  if (response.status === 204) return null;
  const text = await response.text();
  const json = text ? JSON.parse(text) : null;
  if (!response.ok) {
    throw new ApiError(response.status, json?.code, json?.detail ?? json?.title);
  }
  return json;
}

function remember(tokens, who) {
  keep({
    ...who,
    access: tokens.access_token,
    refresh: tokens.refresh_token,
    expiresAt: Date.now() + tokens.expires_in * 1000,
  });
}

export async function login({ tenant, store, username, password, code }) {
  const tokens = await send("POST", "/v1/auth/login", { tenant, username, password, code: code || undefined });
  remember(tokens, { tenant, store: store || null, username });
  const query = store ? `?store=${encodeURIComponent(store)}` : "";
  const me = await call("GET", `/v1/auth/me${query}`);
  keep({ ...session(), permissions: me.permissions, subject: me.subject, timeZone: me.time_zone ?? "UTC" });
  return tokens;
}

export async function logout() {
  try {
    if (session()) await call("POST", "/v1/auth/logout");
  } finally {
    keep(null);
  }
}

async function refresh(current) {
  try {
    const tokens = await send("POST", "/v1/auth/refresh", { refresh_token: current.refresh });
    remember(tokens, current);
    keep({ ...session(), permissions: current.permissions, subject: current.subject, timeZone: current.timeZone });
    return session();
  } catch (error) {
    keep(null);
    ended();
    throw error;
  }
}

function freshId() {
  return crypto.randomUUID ? crypto.randomUUID() : [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A call as the logged-in staff member. Writes carry a new Idempotency-Key unless given one,
 * so a retried click is not applied twice.
 */
export async function call(method, path, body, { idempotencyKey } = {}) {
  let current = session();
  if (!current) {
    ended();
    throw new ApiError(401, "UNAUTHENTICATED", "not logged in");
  }
  if (Date.now() > current.expiresAt - 10_000) current = await refresh(current);
  const headers = { authorization: `Bearer ${current.access}` };
  if (current.store) headers["x-store-id"] = current.store;
  if (method !== "GET") headers["idempotency-key"] = idempotencyKey || freshId();
  try {
    return await send(method, path, body, headers);
  } catch (error) {
    if (error.status !== 401) throw error;
    current = await refresh(current);
    headers.authorization = `Bearer ${current.access}`;
    return send(method, path, body, headers);
  }
}

/** Whether the logged-in staff member's roles grant `permission` (`object:action`). */
export function granted(permission) {
  return session()?.permissions?.includes(permission) ?? false;
}

/** The path of a tenant-wide route of the logged-in staff member's tenant. */
export function tenantPath(rest) {
  return `/v1/tenants/${encodeURIComponent(session().tenant)}${rest}`;
}
