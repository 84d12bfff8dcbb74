// Cohorts, paths, sessions and the side-by-side comparison; each view has a table twin that the
// CSV and SVG exports use, so an export holds exactly what the panel shows.

import { fmtDuration, fmtInt, fmtNum, fmtPct, h, label } from "./dom.js";

// ---- cohorts (/v1/cohorts) -------------------------------------------------------------------

export function cohortsTable(rows) {
  const weeks = Math.max(0, ...rows.map((r) => (r.retention || []).length));
  return {
    columns: ["cohort", "customers", ...Array.from({ length: weeks }, (_, i) => `week ${i}`)],
    rows: rows.map((r) => [String(r.cohort).slice(0, 10), r.customers,
      ...Array.from({ length: weeks }, (_, i) => r.retention?.[i] ?? null)]),
  };
}

/** A retention share as a blue of matching strength (null: the week is not over yet). */
export function heat(v) {
  return v === null || v === undefined ? null : `rgba(79,124,255,${(0.08 + 0.8 * v).toFixed(3)})`;
}

export function cohortsView(rows) {
  if (!rows.length) return h("p", { class: "empty" }, "No customers in this selection.");
  const t = cohortsTable(rows);
  return h("div", { class: "scroll" }, h("table", { class: "heat", "data-testid": "cohorts" },
    h("thead", {}, h("tr", {}, t.columns.map((c, i) => h("th", { class: i > 1 ? "num" : "" },
      i > 1 ? c.replace("week ", "w") : c)))),
    h("tbody", {}, rows.map((r, ri) => h("tr", { "data-cohort": t.rows[ri][0] },
      h("th", { scope: "row" }, t.rows[ri][0]),
      h("td", { class: "num", "data-field": "customers", "data-value": r.customers }, fmtInt(r.customers)),
      t.rows[ri].slice(2).map((v, w) => h("td", {
        class: v === null ? "num pending" : "num", "data-week": w, "data-value": v ?? "",
        style: v === null ? "" : `background:${heat(v)}${v > 0.7 ? ";color:#fff" : ""}`,
        title: v === null ? "week not over yet" : `${fmtPct(v)} active in week ${w}`,
      }, v === null ? "" : fmtPct(v, 0))))))));
}

// ---- paths (/v1/paths) -----------------------------------------------------------------------

export function pathsTable(rows) {
  return { columns: ["path", "customers", "share"], rows: rows.map((r) => [r.path, r.customers, r.share]) };
}

export function pathsView(rows, by) {
  if (!rows.length) return h("p", { class: "empty" }, "No paths in this selection.");
  const max = Math.max(...rows.map((r) => r.customers), 1);
  return h("ol", { class: "paths", "data-testid": "paths" }, rows.map((r) => h("li", {
    "data-path": JSON.stringify(r.path), "data-value": r.customers },
  h("div", { class: "steps" }, r.path.map((st, i) => [i ? h("span", { class: "arrow" }, "→") : null,
    h("span", { class: "step-chip" }, by === "stage" ? label(st) : st)])),
  h("div", { class: "pbar" }, h("i", { style: `width:${(100 * r.customers) / max}%` })),
  h("div", { class: "pval" }, fmtInt(r.customers), h("small", {}, ` ${fmtPct(r.share, 0)}`)))));
}

// ---- sessions (/v1/sessions) -----------------------------------------------------------------

const SESSION_COLUMNS = ["sessions", "customers", "median_duration_s", "p90_duration_s",
  "mean_events", "mean_page_views", "bounce_rate"];

export function sessionsTable(data) {
  const row = (name, r) => [name, ...SESSION_COLUMNS.map((c) => r[c] ?? null)];
  return { columns: ["channel", ...SESSION_COLUMNS],
    rows: [...(data.by_channel || []).map((r) => row(r.channel, r)), row("all", data)] };
}

function sessionCells(r) {
  return [
    h("td", { class: "num", "data-field": "sessions", "data-value": r.sessions }, fmtInt(r.sessions)),
    h("td", { class: "num", "data-field": "customers", "data-value": r.customers }, fmtInt(r.customers)),
    h("td", { class: "num" }, fmtDuration(r.median_duration_s)),
    h("td", { class: "num" }, fmtDuration(r.p90_duration_s)),
    h("td", { class: "num" }, fmtNum(r.mean_events, 1)),
    h("td", { class: "num", "data-field": "bounce_rate", "data-value": r.bounce_rate ?? "" }, fmtPct(r.bounce_rate)),
  ];
}

export function sessionsView(data) {
  if (!data.sessions) return h("p", { class: "empty" }, "No sessions in this period.");
  return h("table", { class: "grid-table", "data-testid": "sessions" },
    h("thead", {}, h("tr", {}, ["channel", "sessions", "customers", "median length", "p90 length",
      "events / session", "bounce rate"].map((c, i) => h("th", { class: i ? "num" : "" }, c)))),
    h("tbody", {}, (data.by_channel || []).map((r) => h("tr", { "data-channel": r.channel },
      h("th", { scope: "row" }, r.channel), sessionCells(r)))),
    h("tfoot", {}, h("tr", { "data-channel": "all" }, h("th", { scope: "row" }, "all"), sessionCells(data))));
}

// ---- comparison (/v1/compare, SPEC 5.1 "Comparison") ---------------------------------------

/** Per stage: both funnels' rows and the API's deltas b - a (null when either side is null). */
export function compareRows(cmp) {
  const bByStage = new Map((cmp.b?.stages || []).map((st) => [st.stage, st]));
  const deltas = new Map((cmp.delta || []).map((d) => [d.stage, d]));
  return (cmp.a?.stages || []).map((sa) => {
    const d = deltas.get(sa.stage) || {};
    return { stage: sa.stage, a: sa, b: bByStage.get(sa.stage) || {},
      delta_conversion_from_first: d.delta_conversion_from_first ?? null,
      delta_median_time_to_stage_s: d.delta_median_time_to_stage_s ?? null };
  });
}

export function compareTable(rows) {
  return {
    columns: ["stage", "a_customers", "a_conversion_from_first", "a_median_time_to_stage_s",
      "b_customers", "b_conversion_from_first", "b_median_time_to_stage_s",
      "delta_conversion_from_first", "delta_median_time_to_stage_s"],
    rows: rows.map((r) => [r.stage, r.a.customers, r.a.conversion_from_first ?? null,
      r.a.median_time_to_stage_s ?? null, r.b.customers ?? null, r.b.conversion_from_first ?? null,
      r.b.median_time_to_stage_s ?? null, r.delta_conversion_from_first, r.delta_median_time_to_stage_s]),
  };
}

function signedPts(d) {
  if (d === null) return "–";
  const pts = d * 100;
  return `${pts > 0 ? "+" : pts < 0 ? "−" : "±"}${Math.abs(pts).toFixed(1)} pts`;
}

function signedDuration(d) {
  if (d === null) return "–";
  return `${d > 0 ? "+" : d < 0 ? "−" : "±"}${fmtDuration(Math.abs(d))}`;
}

export function compareView(rows, nameA, nameB) {
  if (!rows.length) return h("p", { class: "empty" }, "No stages in this model.");
  const max = Math.max(1, ...rows.flatMap((r) => [r.a.customers || 0, r.b.customers || 0]));
  const bar = (side, st) => h("div", { class: `cbar ${side}` },
    h("i", { style: `width:${(100 * (st.customers || 0)) / max}%` }),
    h("span", { "data-field": `${side}_customers`, "data-value": st.customers ?? "" },
      `${fmtInt(st.customers)} · ${fmtPct(st.conversion_from_first)}`));
  return h("table", { class: "compare", "data-testid": "compare" },
    h("thead", {}, h("tr", {}, h("th", {}, "stage"), h("th", { class: "a" }, `A: ${nameA}`),
      h("th", { class: "b" }, `B: ${nameB}`), h("th", { class: "num", title: "conversion from first, B − A" }, "Δ conv. from first"),
      h("th", { class: "num", title: "median time to stage, B − A" }, "Δ median time"))),
    h("tbody", {}, rows.map((r) => {
      const dc = r.delta_conversion_from_first;
      return h("tr", { "data-stage": r.stage },
        h("th", { scope: "row" }, label(r.stage)),
        h("td", {}, bar("a", r.a)), h("td", {}, bar("b", r.b)),
        h("td", { class: `num delta ${dc > 0 ? "up" : dc < 0 ? "down" : ""}`,
          "data-field": "delta_conversion_from_first", "data-value": dc ?? "" }, signedPts(dc)),
        h("td", { class: "num", "data-field": "delta_median_time_to_stage_s",
          "data-value": r.delta_median_time_to_stage_s ?? "" }, signedDuration(r.delta_median_time_to_stage_s)));
    })));
}
