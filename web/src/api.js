// The /v1 API with the operator's bearer token. The token lives in sessionStorage (this tab
// only, gone when it closes) and travels in the Authorization header, never in a URL.
const KEY = "edgeloop.token";

export function token() {
  return sessionStorage.getItem(KEY) || "";
}

export function setToken(t) {
  if (t) sessionStorage.setItem(KEY, t);
  else sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function call(method, path, body) {
  const headers = { Authorization: `Bearer ${token()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store", credentials: "omit", redirect: "error" });
  } catch (e) {
    throw new ApiError(0, `the server does not answer (${e.message})`);
  }
  const type = res.headers.get("Content-Type") || "";
  const payload = type.includes("json") ? await res.json().catch(() => null) : await res.text();
  if (!res.ok) {
    const message = payload && payload.error ? payload.error.message : `HTTP ${res.status}`;
    throw new ApiError(res.status, message);
  }
  return payload;
}

export const get = (path) => call("GET", path);
export const post = (path, body = {}) => call("POST", path, body);
export const enc = encodeURIComponent;
