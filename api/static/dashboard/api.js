// The analytics API client: bearer token, and conditional polls (If-None-Match -> 304 reuses data).

const TOKEN_KEY = "journey.token";

export class AuthError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status; // 401: the token is unknown; 403: it lacks the route's scope
  }
}
export class HttpError extends Error {
  constructor(status, path, detail) {
    super(`${path}: HTTP ${status}${detail ? ` (${detail})` : ""}`);
    this.status = status;
  }
}

/** The token from `#token=...` (then removed from the address bar), else the remembered one. */
export function initialToken() {
  const hash = new URLSearchParams(location.hash.replace(/^#/, ""));
  const fromHash = hash.get("token");
  if (fromHash) {
    localStorage.setItem(TOKEN_KEY, fromHash);
    history.replaceState(null, "", location.pathname + location.search);
    return fromHash;
  }
  return localStorage.getItem(TOKEN_KEY);
}

export function saveToken(token) { localStorage.setItem(TOKEN_KEY, token); }
export function forgetToken() { localStorage.removeItem(TOKEN_KEY); }

/** A URL path with its query; params with empty values are left out so the URL stays stable. */
export function urlOf(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

/** The snapshot version in one of the API's ETags (`"v12-abc..."`), or null. */
export function versionOf(etag) {
  const m = /^(?:W\/)?"v(\d+)-/.exec(etag || "");
  return m ? Number(m[1]) : null;
}

export class Api {
  constructor(token) {
    this.token = token;
    this.cache = new Map(); // url -> {etag, data}
  }

  headers(extra = {}) {
    return { Authorization: `Bearer ${this.token}`, Accept: "application/json", ...extra };
  }

  /** GET a JSON resource; returns {data, changed, version}. A 304 answers from the cache with
   * changed=false. `version` is the snapshot the answer came from (the ETag's `v<N>-` prefix). */
  async get(path, params = {}) {
    const url = urlOf(path, params);
    const cached = this.cache.get(url);
    const extra = cached && cached.etag ? { "If-None-Match": cached.etag } : {};
    // no-store: the browser must not answer from its own cache, so that we see the 304 ourselves.
    const resp = await fetch(url, { headers: this.headers(extra), cache: "no-store" });
    if (resp.status === 304 && cached) return { data: cached.data, changed: false, version: versionOf(cached.etag) };
    await raiseFor(resp, url);
    const data = await resp.json();
    const etag = resp.headers.get("ETag");
    this.cache.set(url, { etag, data });
    return { data, changed: true, version: versionOf(etag) };
  }

  /** POST /v1/query: rows of a read-only SQL query. */
  async query(sql) {
    const resp = await fetch("/v1/query", {
      method: "POST",
      headers: this.headers({ "Content-Type": "application/json" }),
      body: JSON.stringify({ sql }),
      cache: "no-store",
    });
    await raiseFor(resp, "/v1/query");
    return resp.json();
  }
}

async function raiseFor(resp, url) {
  if (resp.ok) return;
  if (resp.status === 401 || resp.status === 403) throw new AuthError(`token rejected by ${url}`, resp.status);
  let detail = "";
  try {
    const body = await resp.json();
    detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail ?? body);
  } catch (_) { /* not JSON: the status says enough */ }
  throw new HttpError(resp.status, url, detail);
}
