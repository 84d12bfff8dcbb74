// Wires the page: token, selectors, the poll loop (every few seconds, 304s reuse data) and panels.

import { Api, AuthError, HttpError, forgetToken, initialToken, saveToken } from "./api.js";
import { boardView } from "./board.js";
import { attributionView, funnelView, mixView, transitionsView } from "./charts.js";
import { customerView } from "./customer.js";
import { fmtAgo, fmtInt, fmtNum, fmtPct, fmtTime, h, mount } from "./dom.js";

// ?poll=SECONDS overrides the interval (at least 1 s).
const POLL_MS = 1000 * Math.max(1, Number(new URLSearchParams(location.search).get("poll")) || 5);
const $ = (id) => document.getElementById(id);

const state = {
  api: null,
  models: [], // [{model, stages}]
  generation: 0, // bumped by every selection change; stale answers are dropped
  lastPoll: null,
  watermark: null,
  polls: 0,
  busy: false,
  customerKey: "",
  timer: null,
};

function selection() {
  return { model: $("model").value || "default", persona: $("persona").value.trim() };
}

function segmentParams(sel) {
  return sel.persona ? { "trait.persona": sel.persona } : {};
}

// ---- KPI tiles -------------------------------------------------------------------------------

function tile(key, title, value, sub, raw) {
  return h("div", { class: "tile", "data-kpi": key, "data-value": raw ?? "" },
    h("div", { class: "tile-title" }, title), h("div", { class: "tile-value" }, value),
    h("div", { class: "tile-sub" }, sub));
}

function kpiTiles(k) {
  const survey = (name, v, digits, unit) => tile(name, name.toUpperCase(),
    v && v.score !== null && v.score !== undefined ? `${fmtNum(v.score, digits)}${unit}` : "–",
    `${fmtInt(v?.responses ?? 0)} responses`, v?.score);
  return [
    tile("customers", "Customers", fmtInt(k.customers), `${fmtInt(k.events)} events`, k.customers),
    tile("conversion_rate", "Conversion", fmtPct(k.conversion_rate), "reached the conversion stage", k.conversion_rate),
    tile("retention_rate", "Retention", fmtPct(k.retention_rate), "of converted went further", k.retention_rate),
    tile("churn_rate", "Churn", fmtPct(k.churn_rate), "of converted lapsed", k.churn_rate),
    survey("nps", k.nps, 0, ""),
    survey("csat", k.csat, 0, "%"),
    survey("ces", k.ces, 2, " / 7"),
  ];
}

// ---- freshness -------------------------------------------------------------------------------

function showFreshness(status) {
  const el = $("freshness");
  if (status) el.dataset.status = status;
  const ago = state.lastPoll ? fmtAgo(Date.now() - state.lastPoll) : "never";
  if (el.dataset.status === "ok" && state.lastPoll && Date.now() - state.lastPoll > 3 * POLL_MS) {
    el.dataset.status = "stale";
  }
  $("fresh-text").textContent = `data to ${state.watermark ? `${fmtTime(state.watermark)} UTC` : "–"} · polled ${ago}`;
}

function banner(text) {
  const b = $("banner");
  b.hidden = !text;
  b.textContent = text || "";
}

// ---- selectors -------------------------------------------------------------------------------

/** Which optional endpoints this API has (/v1/models, POST /v1/query), from its OpenAPI. */
async function discover() {
  try {
    const resp = await fetch("/openapi.json", { cache: "no-store" });
    if (resp.ok) return new Set(Object.keys((await resp.json()).paths || {}));
  } catch (_) { /* no OpenAPI: use only the endpoints every API has */ }
  return new Set();
}

function rowsOf(result) {
  // POST /v1/query may answer a list of objects or {"columns", "rows"} with lists.
  if (Array.isArray(result)) return result;
  const rows = result.rows || result.data || [];
  if (rows.length && Array.isArray(rows[0]) && result.columns) {
    const cols = result.columns.map((c) => (typeof c === "string" ? c : c.name));
    return rows.map((r) => Object.fromEntries(cols.map((c, i) => [c, r[i]])));
  }
  return rows;
}

async function loadModels(paths) {
  let models = [];
  if (paths.has("/v1/models")) {
    const { data } = await state.api.get("/v1/models");
    models = (Array.isArray(data) ? data : data.models || [])
      .map((m) => (typeof m === "string" ? { model: m, stages: [] } : m));
  } else if (paths.has("/v1/query")) {
    models = rowsOf(await state.api.query("select distinct model from models order by model"))
      .map((r) => ({ model: r.model, stages: [] }));
  }
  if (!models.length) models = [{ model: "default", stages: [] }];
  state.models = models;
  const sel = $("model");
  const current = sel.value || new URLSearchParams(location.search).get("model") || "default";
  // A model named in the address (a shared link) is offered even if no list names it.
  if (!models.some((m) => m.model === current)) models.push({ model: current, stages: [] });
  mount(sel, models.map((m) => h("option", { value: m.model }, m.model)));
  sel.value = models.some((m) => m.model === current) ? current : models[0].model;
}

async function loadPersonas(paths) {
  if (!paths.has("/v1/query")) return; // the persona box still takes any typed value
  const result = await state.api.query(
    "select json_extract_string(traits, '$.persona') as persona, count(*) as customers " +
    "from customers where json_extract_string(traits, '$.persona') is not null " +
    "group by 1 order by 2 desc, 1");
  mount($("persona-values"), rowsOf(result).map((r) =>
    h("option", { value: r.persona }, `${fmtInt(r.customers)} customers`)));
}

// ---- polling ---------------------------------------------------------------------------------

async function fetchAll(sel) {
  const api = state.api;
  const seg = segmentParams(sel);
  const model = { model: sel.model };
  const jobs = {
    funnel: api.get("/v1/funnel", { ...model, ...seg }),
    kpis: api.get("/v1/kpis", { ...model, ...seg }),
    map: api.get("/v1/journey-map", { ...model, ...seg }),
    transitions: api.get("/v1/transitions", { ...model, ...seg }),
    timeseries: api.get("/v1/timeseries", { ...model, ...seg }),
    attribution: api.get("/v1/attribution", { ...model, ...seg,
      method: $("attr-method").value, by: $("attr-by").value }),
  };
  const names = Object.keys(jobs);
  const done = await Promise.all(Object.values(jobs));
  return Object.fromEntries(names.map((n, i) => [n, done[i]]));
}

function render(r, sel, force) {
  const changed = (name) => force || r[name].changed;
  const stageOrder = (r.funnel.data.stages || []).map((st) => st.stage);
  if (changed("kpis")) {
    mount($("kpis"), kpiTiles(r.kpis.data));
  }
  state.watermark = r.kpis.data.watermark || state.watermark;
  if (changed("map") || changed("funnel")) {
    mount($("board"), boardView(r.map.data, r.funnel.data));
    $("map-segment").textContent = sel.persona ? `persona: ${sel.persona}` : "all customers";
  }
  if (changed("funnel")) mount($("funnel"), funnelView(r.funnel.data));
  if (changed("transitions") || changed("funnel")) {
    mount($("transitions"), transitionsView(r.transitions.data, stageOrder));
  }
  if (changed("timeseries")) mount($("mix"), mixView(r.timeseries.data));
  if (changed("attribution")) mount($("attribution"), attributionView(r.attribution.data));
}

async function poll(force = false) {
  if (!state.api) return;
  if (state.busy) { state.again = state.again || force; return; }
  state.busy = true;
  const generation = state.generation;
  const sel = selection();
  try {
    const results = await fetchAll(sel);
    if (generation === state.generation) {
      render(results, sel, force);
      if (state.customerKey) await lookup(state.customerKey, false);
      state.lastPoll = Date.now();
      state.polls += 1;
      document.body.dataset.state = "ready";
      document.body.dataset.polls = String(state.polls);
      document.body.dataset.shown = JSON.stringify(sel);
      banner("");
      showFreshness("ok");
    } else {
      state.again = true;
    }
  } catch (e) {
    handleError(e);
  } finally {
    state.busy = false;
    if (state.again) { const f = state.again; state.again = false; poll(f === true); }
  }
}

function handleError(e) {
  if (e instanceof AuthError) {
    stop();
    askToken("The API rejected the token. Paste a valid one.");
    return;
  }
  showFreshness("error");
  banner(e instanceof HttpError && e.status === 503
    ? "The warehouse has no data yet: waiting for the processor's first commit…"
    : `Cannot reach the API: ${e.message}`);
}

/** Keep model and persona in the address so a view can be shared (the token never is). */
function rememberSelection() {
  const q = new URLSearchParams(location.search);
  const sel = selection();
  for (const [k, v] of [["model", sel.model === "default" ? "" : sel.model], ["persona", sel.persona]]) {
    if (v) q.set(k, v); else q.delete(k);
  }
  const s = q.toString();
  history.replaceState(null, "", location.pathname + (s ? `?${s}` : ""));
}

function selectionChanged() {
  rememberSelection();
  state.generation += 1;
  poll(true);
}

// ---- customer lookup -------------------------------------------------------------------------

async function lookup(key, announce = true) {
  const box = $("customer");
  const path = `/v1/customers/${encodeURIComponent(key)}`;
  if (announce) mount(box, h("p", { class: "muted" }, `Looking up ${key}…`));
  try {
    const [c, ev] = await Promise.all([
      state.api.get(path, { model: selection().model }), state.api.get(`${path}/events`)]);
    if (!announce && !c.changed && !ev.changed) return;
    const events = Array.isArray(ev.data) ? ev.data : ev.data.events || [];
    mount(box, customerView(c.data, events));
  } catch (e) {
    if (e instanceof HttpError && e.status === 404) {
      state.customerKey = "";
      mount(box, h("p", { class: "empty", "data-testid": "customer-missing" },
        `No customer has the identity key “${key}”.`));
      return;
    }
    throw e;
  }
}

// ---- token and start -------------------------------------------------------------------------

function askToken(reason) {
  if (reason) $("token-reason").textContent = reason;
  const dlg = $("token-dialog");
  if (!dlg.open) dlg.showModal();
  $("token-input").focus();
}

function stop() {
  clearInterval(state.timer);
  state.timer = null;
  state.api = null;
  forgetToken();
}

async function start(token) {
  state.api = new Api(token);
  try {
    const paths = await discover();
    await loadModels(paths);
    // Suggestions only (any persona can be typed): never hold the first render for them.
    loadPersonas(paths).catch(() => {});
  } catch (e) {
    handleError(e);
    return;
  }
  await poll(true);
  clearInterval(state.timer);
  state.timer = setInterval(() => poll(false), POLL_MS);
}

function wire() {
  $("model").addEventListener("change", selectionChanged);
  $("persona").addEventListener("change", selectionChanged);
  $("attr-method").addEventListener("change", selectionChanged);
  $("attr-by").addEventListener("change", selectionChanged);
  $("lookup-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const key = $("lookup-key").value.trim();
    if (!key || !state.api) return;
    state.customerKey = key;
    lookup(key).catch(handleError);
  });
  $("token-form").addEventListener("submit", () => {
    const token = $("token-input").value.trim();
    if (!token) return;
    saveToken(token);
    $("token-input").value = "";
    start(token);
  });
  $("change-token").addEventListener("click", () => askToken("Paste another API token."));
  setInterval(() => showFreshness(), 1000);
}

wire();
$("persona").value = new URLSearchParams(location.search).get("persona") || "";
const token = initialToken();
if (token) start(token);
else askToken();
