// Wires the page: token, selectors, the poll loop (every few seconds, 304s reuse data) and panels.

import { accountsPanel } from "./accounts.js";
import { Api, AuthError, HttpError, forgetToken, initialToken, saveToken } from "./api.js";
import { boardView, normaliseStage } from "./board.js";
import { attributionView, funnelView, mixView, transitionsView } from "./charts.js";
import { conflictsPanel } from "./conflicts.js";
import { customerView } from "./customer.js";
import { fmtAgo, fmtDuration, fmtInt, fmtNum, fmtPct, fmtTime, h, label, mount } from "./dom.js";
import { dropoffTable, dropoffView } from "./dropoff.js";
import { download, svgTable, toCsv } from "./export.js";
import { regroup } from "./groups.js";
import { NEEDS_PII, isForbidden, rowsOf } from "./people.js";
import {
  cohortsTable, cohortsView, compareRows, compareTable, compareView, heat, pathsTable, pathsView,
  sessionsTable, sessionsView,
} from "./panels.js";

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
  mixed: 0, // polls in a row whose answers came from different snapshots (a swap mid-poll)
  customerKey: "",
  timer: null,
  exports: {}, // panel name -> {title, table, svg?}: what the CSV and SVG buttons download
  view: "map", // the journey map panel's view: "map" or "dropoff"
  funnelLevel: "customer", // the funnel panel's level: "customer" or "account" (SPEC 5.1)
  stageOrder: [], // the model's stages, for the account panel's stage line
  panels: [], // panels that poll on their own after the others: accounts, identity conflicts
  paths: new Set(), // the API's routes (from /openapi.json)
};

// SPEC 1.2 channels, the values the API's channel= accepts.
const CHANNELS = ["web", "app", "email", "call", "store", "sms", "social", "chat", "other"];
const DAY_MS = 86_400_000;
const ATTR_BY = { channel: "channel", source: "source", source_medium: "source_medium",
  group: "source_medium", site: "source_medium" };

/** The page's selection A (the filter bar) or B (the comparison's own inputs). */
function selection(prefix = "") {
  return {
    model: $("model").value || "default",
    persona: $(`${prefix}persona`).value.trim(),
    from: $(`${prefix}from`).value,
    to: $(`${prefix}to`).value,
    channel: $(`${prefix}channel`).value,
  };
}

const nextDay = (day) => new Date(Date.parse(`${day}T00:00:00Z`) + DAY_MS).toISOString().slice(0, 10);
const prevDay = (day, n = 1) => new Date(Date.parse(`${day}T00:00:00Z`) - n * DAY_MS).toISOString().slice(0, 10);

/** params with every name prefixed (selection a or b of /v1/compare: `b.trait.persona`). */
const prefixed = (prefix, params) => Object.fromEntries(Object.entries(params).map(([k, v]) => [`${prefix}${k}`, v]));

/** Query parameters of a selection: the "to" day is included, so the API's exclusive `to` is the
 * next day. */
function segmentParams(sel) {
  const p = {};
  if (sel.persona) p["trait.persona"] = sel.persona;
  if (sel.from) p.from = sel.from;
  if (sel.to) p.to = nextDay(sel.to);
  if (sel.channel) p.channel = sel.channel;
  return p;
}

function describe(sel) {
  const parts = [sel.persona ? `persona ${sel.persona}` : "all customers"];
  if (sel.from || sel.to) parts.push(`first seen ${sel.from || "…"} – ${sel.to || "…"}`);
  if (sel.channel) parts.push(`first touch ${sel.channel}`);
  return parts.join(" · ");
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
  // Events and sessions are bounded by their own time; channel= picks their channel there.
  const period = { from: seg.from, to: seg.to, channel: seg.channel };
  const jobs = {
    funnel: api.get("/v1/funnel", { ...model, ...seg }),
    kpis: api.get("/v1/kpis", { ...model, ...seg }),
    map: api.get("/v1/journey-map", { ...model, ...seg }),
    transitions: api.get("/v1/transitions", { ...model, ...seg }),
    // Each customer's first own stage: the step out of the stage every customer enters by `any`.
    entries: api.get("/v1/paths", { ...model, ...seg, by: "stage", steps: 1, top: 1000 }),
    timeseries: api.get("/v1/timeseries", { ...model, "trait.persona": seg["trait.persona"], ...period }),
    attribution: api.get("/v1/attribution", { ...model, ...seg,
      method: $("attr-method").value, by: ATTR_BY[$("attr-by").value] }),
    cohorts: api.get("/v1/cohorts", { ...model, ...seg, weeks: 8 }),
    paths: api.get("/v1/paths", { ...model, ...seg, by: $("paths-by").value, steps: 4, top: 8 }),
    sessions: api.get("/v1/sessions", period),
    dropoff: api.get("/v1/dropoff", { ...model, ...seg }),
    // Accounts have no persona: the account funnel takes the range and the channel only.
    ...(state.funnelLevel === "account" ? { accountFunnel: api.get("/v1/funnel", { ...model, level: "account",
      from: seg.from, to: seg.to, channel: seg.channel }) } : {}),
    compare: api.get("/v1/compare", { ...model, ...prefixed("a.", seg),
      ...prefixed("b.", segmentParams(selection("b-"))) }),
  };
  const names = Object.keys(jobs);
  const done = await Promise.all(Object.values(jobs));
  return Object.fromEntries(names.map((n, i) => [n, done[i]]));
}

/** Transitions plus, when the API has none out of the first stage, the step out of it: SPEC 4.2
 * counts changes between *own* stages, and a stage reached only through `any` (the first stage
 * of every preset) is never an own stage, so its row would always be empty. A customer enters at
 * that stage, so its first own stage (if another one) is the move out of it. */
export function withEntries(rows, entries, stageOrder) {
  const first = stageOrder[0];
  if (!first || rows.some((r) => r.from === first)) return rows;
  const out = entries.filter((e) => e.path.length && e.path[0] !== first)
    .map((e) => ({ from: first, to: e.path[0], transitions: e.customers, customers: e.customers, entry: true }));
  return [...rows, ...out];
}

const cell = (v) => (v === null || v === undefined ? "" : v);

function mapTable(map, funnel) {
  const byStage = new Map((funnel.stages || []).map((st) => [st.stage, st]));
  const stages = (map.stages || []).map((st) => normaliseStage(st, byStage.get(st.stage)));
  return {
    columns: ["stage", "customers", "conversion_from_previous", "conversion_from_first",
      "median_time_to_stage_s", "top_touchpoints", "channels", "emotion", "emotion_responses"],
    rows: stages.map((st) => [st.stage, st.customers, cell(st.fromPrevious), cell(st.fromFirst),
      cell(st.median), st.touchpoints.slice(0, 5).map((t) => `${t.name} (${t.count})`).join("; "),
      st.channels.map((c) => `${c.name} (${c.count})`).join("; "), cell(st.emotion), cell(st.responses)]),
    stages,
  };
}

/** The journey map as an SVG: stages as columns, the board's rows as rows. */
function mapSvg(t, title) {
  const rows = [
    ["Customers", ...t.stages.map((st) => fmtInt(st.customers))],
    ["From previous", ...t.stages.map((st, i) => (i ? fmtPct(st.fromPrevious) : "—"))],
    ["From first", ...t.stages.map((st) => fmtPct(st.fromFirst))],
    ["Median time to stage", ...t.stages.map((st) => fmtDuration(st.median))],
    ...[0, 1, 2].map((k) => [k ? "" : "Top touchpoints", ...t.stages.map((st) => (st.touchpoints[k]
      ? `${st.touchpoints[k].name} ${fmtInt(st.touchpoints[k].count)}` : ""))]),
    ["Channels", ...t.stages.map((st) => st.channels.slice(0, 2).map((c) => c.name).join(", "))],
    ["Emotion (−1..+1)", ...t.stages.map((st) => (st.emotion === null || st.emotion === undefined ? "no surveys" : fmtNum(st.emotion, 2)))],
  ];
  const max = Math.max(1, ...t.stages.map((st) => st.customers || 0));
  const bars = [[null, ...t.stages.map((st) => (st.customers || 0) / max)]];
  const fills = rows.map((r, ri) => (ri === rows.length - 1 ? [null, ...t.stages.map((st) => (st.emotion > 0.2
    ? "#dcf3e3" : st.emotion < -0.2 ? "#fbe0e0" : st.emotion === null || st.emotion === undefined ? null : "#fdf0d8"))] : []));
  return svgTable({ title: "Journey map", subtitle: title, columns: ["", ...t.stages.map((st) => label(st.stage))],
    rows, bars, fills, widths: [170, ...t.stages.map(() => 190)] });
}

function render(r, sel, force) {
  const changed = (name) => force || r[name].changed;
  const stageOrder = (r.funnel.data.stages || []).map((st) => st.stage);
  const title = `${sel.model} · ${describe(sel)}`;
  if (changed("kpis")) {
    mount($("kpis"), kpiTiles(r.kpis.data));
  }
  state.watermark = r.kpis.data.watermark || state.watermark;
  if (changed("map") || changed("funnel")) {
    mount($("board"), boardView(r.map.data, r.funnel.data));
    $("map-segment").textContent = describe(sel);
    const t = mapTable(r.map.data, r.funnel.data);
    state.exports.map = { title, table: t, svg: () => mapSvg(t, title) };
  }
  if (changed("dropoff")) {
    mount($("dropoff"), dropoffView(r.dropoff.data));
    state.exports.dropoff = { title, table: dropoffTable(r.dropoff.data) };
  }
  state.stageOrder = stageOrder;
  const accounts = state.funnelLevel === "account";
  const shown = accounts ? r.accountFunnel : r.funnel;
  if (force || shown.changed) {
    mount($("funnel"), funnelView(shown.data));
    $("funnel").dataset.level = state.funnelLevel;
    $("funnel-sub").textContent = accounts ? `accounts reaching each stage${sel.persona
      ? " · the persona does not apply to accounts" : ""}` : "customers reaching each stage";
    state.exports.funnel = { title: accounts ? `${sel.model} · accounts` : title, table: { columns: ["stage",
      accounts ? "accounts" : "customers", "conversion_from_previous", "conversion_from_first",
      "median_time_to_stage_s"], rows: shown.data.stages.map((st) => [st.stage,
      st.customers, cell(st.conversion_from_previous), cell(st.conversion_from_first), cell(st.median_time_to_stage_s)]) } };
  }
  if (changed("transitions") || changed("funnel") || changed("entries")) {
    const rows = withEntries(r.transitions.data, r.entries.data, stageOrder);
    mount($("transitions"), transitionsView(rows, stageOrder));
    state.exports.transitions = { title, table: { columns: ["from", "to", "transitions", "customers", "entry"],
      rows: rows.map((t) => [t.from, t.to, t.transitions, t.customers, t.entry ? 1 : 0]) } };
  }
  if (changed("timeseries")) {
    mount($("mix"), mixView(r.timeseries.data));
    state.exports.mix = { title, table: { columns: ["date", "channel", "events", "customers"],
      rows: r.timeseries.data.map((t) => [t.date ?? t.day, t.channel, t.events, t.customers]) } };
  }
  if (changed("attribution")) {
    const by = $("attr-by").value;
    const rows = by === "group" || by === "site" ? regroup(r.attribution.data, by) : r.attribution.data;
    mount($("attribution"), attributionView(rows));
    state.exports.attribution = { title: `${title} · ${$("attr-method").value} · ${by}`,
      table: { columns: ["key", "credit", "conversions"], rows: rows.map((a) => [a.key, a.credit, cell(a.conversions)]) } };
  }
  if (changed("cohorts")) {
    mount($("cohorts"), cohortsView(r.cohorts.data));
    const t = cohortsTable(r.cohorts.data);
    state.exports.cohorts = { title, table: t, svg: () => svgTable({ title: "Retention cohorts", subtitle: title,
      columns: t.columns, rows: t.rows.map((row) => row.map((v, i) => (i > 1 ? (v === null ? "" : fmtPct(v, 0)) : v))),
      fills: t.rows.map((row) => row.map((v, i) => (i > 1 ? heat(v) : null))), widths: [100, 80] }) };
  }
  if (changed("paths")) {
    const by = $("paths-by").value;
    mount($("paths"), pathsView(r.paths.data, by));
    const t = pathsTable(r.paths.data);
    const max = Math.max(1, ...r.paths.data.map((p) => p.customers));
    state.exports.paths = { title, table: t, svg: () => svgTable({ title: `Top paths of ${by}s`, subtitle: title,
      columns: t.columns, rows: t.rows.map(([p, n, s]) => [p.map((x) => (by === "stage" ? label(x) : x)), fmtInt(n), fmtPct(s, 1)]),
      bars: t.rows.map(([, n]) => [null, n / max]), widths: [560, 100, 80] }) };
  }
  if (changed("sessions")) {
    mount($("sessions"), sessionsView(r.sessions.data));
    const t = sessionsTable(r.sessions.data);
    state.exports.sessions = { title, table: t, svg: () => svgTable({ title: "Sessions", subtitle: describe({ ...sel, persona: "" }),
      columns: ["channel", "sessions", "customers", "median length", "p90 length", "events / session", "bounce rate"],
      rows: t.rows.map(([c, n, cu, med, p90, ev, , bounce]) => [c, fmtInt(n), fmtInt(cu), fmtDuration(med),
        fmtDuration(p90), fmtNum(ev, 1), fmtPct(bounce)]), widths: [100, 90, 90, 110, 110, 120, 100] }) };
  }
  if (changed("compare") || force) {
    const selB = selection("b-");
    const rows = compareRows(r.compare.data);
    mount($("compare"), compareView(rows, describe(sel), describe(selB)));
    state.exports.compare = { title: `A: ${describe(sel)} · B: ${describe(selB)}`, table: compareTable(rows) };
  }
}

function exportPanel(name, format) {
  const e = state.exports[name];
  if (!e) return;
  if (format === "svg" && e.svg) download(`journey-${name}.svg`, e.svg(), "image/svg+xml");
  else download(`journey-${name}.csv`, toCsv(e.table), "text/csv");
}

async function poll(force = false) {
  if (!state.api) return;
  if (state.busy) { state.again = state.again || force; return; }
  state.busy = true;
  const generation = state.generation;
  const sel = selection();
  try {
    const results = await fetchAll(sel);
    // The panels' requests run side by side; when a new snapshot is swapped in between them, some
    // answers are from the old one. Showing them together would mix two snapshots (a funnel that
    // disagrees with the KPIs), so such a poll is asked again at once. The answers that were new
    // are cached by then and come back as 304s (unchanged), so the poll again renders every panel.
    // Bounded, for a warehouse that commits faster than a poll takes.
    const versions = new Set(Object.values(results).map((r) => r.version).filter((v) => v !== null));
    if (generation === state.generation && versions.size > 1 && state.mixed < 3) {
      state.mixed += 1;
      state.again = true;
    } else if (generation === state.generation) {
      state.mixed = 0;
      render(results, sel, force);
      if (state.customerKey) await lookup(state.customerKey, false);
      await Promise.all(state.panels.map((p) => p.refresh(force)));
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
  const b = selection("b-");
  for (const [k, v] of [["model", sel.model === "default" ? "" : sel.model], ["persona", sel.persona],
    ["from", sel.from], ["to", sel.to], ["channel", sel.channel], ["b.persona", b.persona],
    ["b.from", b.from], ["b.to", b.to], ["b.channel", b.channel],
    ["view", state.view === "map" ? "" : state.view],
    ["funnel", state.funnelLevel === "account" ? "account" : ""]]) {
    if (v) q.set(k, v); else q.delete(k);
  }
  const s = q.toString();
  history.replaceState(null, "", location.pathname + (s ? `?${s}` : ""));
}

/** Show the journey map panel's view ("map" or "dropoff"): its tab, its content, its exports. */
function showView(view) {
  state.view = view === "dropoff" ? "dropoff" : "map";
  for (const tab of document.querySelectorAll(".view-tab")) {
    tab.setAttribute("aria-selected", String(tab.dataset.view === state.view));
  }
  $("board").hidden = state.view !== "map";
  $("dropoff").hidden = state.view !== "dropoff";
  for (const btn of document.querySelectorAll("#map-title ~ .tools button.exp")) {
    btn.hidden = btn.dataset.view !== state.view;
  }
  document.body.dataset.view = state.view;
}

/** The funnel panel's level: customers or B2B accounts. */
function showLevel(level) {
  state.funnelLevel = level === "account" ? "account" : "customer";
  for (const tab of document.querySelectorAll(".level-tab")) {
    tab.setAttribute("aria-selected", String(tab.dataset.level === state.funnelLevel));
  }
}

/** Show a customer (any identity key) in the lookup panel, as if typed there. */
function openCustomer(key) {
  $("lookup-key").value = key;
  state.customerKey = key;
  $("customer").scrollIntoView({ block: "start" });
  lookup(key).catch(handleError);
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
    if (isForbidden(e)) { // a read-only token: say so here, keep the token for the other panels
      state.customerKey = "";
      mount(box, h("p", { class: "note", "data-testid": "customer-needs-pii" }, NEEDS_PII));
      return;
    }
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
    state.paths = paths;
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
  for (const id of ["from", "to", "channel", "b-persona", "b-from", "b-to", "b-channel", "paths-by"]) {
    $(id).addEventListener("change", selectionChanged);
  }
  for (const tab of document.querySelectorAll(".view-tab")) {
    tab.addEventListener("click", () => { showView(tab.dataset.view); rememberSelection(); });
  }
  for (const tab of document.querySelectorAll(".level-tab")) {
    tab.addEventListener("click", () => { showLevel(tab.dataset.level); selectionChanged(); });
  }
  const ctx = { api: () => state.api, model: () => selection().model, stages: () => state.stageOrder,
    exports: state.exports, open: openCustomer, onError: handleError,
    hasQuery: () => state.paths.has("/v1/query") };
  state.panels = [accountsPanel(ctx), conflictsPanel(ctx)];
  $("filters").addEventListener("submit", (ev) => ev.preventDefault());
  $("compare-form").addEventListener("submit", (ev) => ev.preventDefault());
  $("clear-filters").addEventListener("click", () => {
    for (const id of ["persona", "from", "to", "channel"]) $(id).value = "";
    selectionChanged();
  });
  $("b-previous").addEventListener("click", () => {
    const a = selection();
    if (!a.from || !a.to) { banner("Choose a first-seen range (from and to) to compare with the period before it."); return; }
    const days = Math.round((Date.parse(a.to) - Date.parse(a.from)) / DAY_MS) + 1;
    $("b-to").value = prevDay(a.from);
    $("b-from").value = prevDay(a.from, days);
    $("b-persona").value = a.persona;
    $("b-channel").value = a.channel;
    selectionChanged();
  });
  document.addEventListener("click", (ev) => {
    const btn = ev.target.closest && ev.target.closest("button.exp");
    if (btn) exportPanel(btn.dataset.export, btn.dataset.format);
  });
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

function restoreSelection() {
  const q = new URLSearchParams(location.search);
  for (const id of ["channel", "b-channel"]) {
    mount($(id), h("option", { value: "" }, "all channels"), CHANNELS.map((c) => h("option", { value: c }, c)));
  }
  for (const [id, key] of [["persona", "persona"], ["from", "from"], ["to", "to"], ["channel", "channel"],
    ["b-persona", "b.persona"], ["b-from", "b.from"], ["b-to", "b.to"], ["b-channel", "b.channel"]]) {
    $(id).value = q.get(key) || "";
  }
  showView(q.get("view") || "map");
  showLevel(q.get("funnel") || "customer");
}

wire();
restoreSelection();
const token = initialToken();
if (token) start(token);
else askToken();
