// The journey map's drop-off view (/v1/dropoff, SPEC 5.1): per stage, the customers that reached
// it, those that stopped there (their stage and lapsed), how long they stayed and the last
// touchpoints they left from. Its table twin is what the CSV export holds.

import { colorOf, fmtDuration, fmtInt, fmtNum, fmtPct, h, label } from "./dom.js";

/** One row per stage; the touchpoints as "event · channel (customers)" joined by "; ". */
export function dropoffTable(data) {
  return {
    columns: ["stage", "reached", "stopped", "stop_rate", "median_days_to_stop", "last_touchpoints"],
    rows: (data.stages || []).map((st) => [st.stage, st.reached, st.stopped, st.stop_rate ?? null,
      st.median_days_to_stop ?? null, (st.last_touchpoints || [])
        .map((t) => `${t.event} · ${t.channel} (${t.customers})`).join("; ")]),
  };
}

/** Days as "12 days", "3.5 days", or under a day in hours and minutes ("5 h 20 min", "0 s"). */
function fmtDays(d) {
  if (d === null || d === undefined) return "–";
  if (d < 1) return fmtDuration(d * 86400);
  return `${fmtNum(d, d < 10 ? 1 : 0)} days`;
}

/** The stop rate's colour: calm below 20%, amber to 50%, red above. */
function severity(rate) {
  if (rate === null || rate === undefined) return "";
  return rate >= 0.5 ? "sev-high" : rate >= 0.2 ? "sev-mid" : "sev-low";
}

export function dropoffView(data) {
  const stages = data.stages || [];
  if (!stages.length) return h("p", { class: "empty" }, "No stages in this model.");
  const cellOf = (row, st, content) => h("div", { class: `cell r-${row}`, "data-stage": st.stage }, content);
  const rowHead = (t, sub) => h("div", { class: "rowhead" }, t, sub ? h("small", {}, sub) : null);
  const rows = [
    [h("div", { class: "rowhead corner" }),
      stages.map((st, i) => h("div", { class: "stagehead", "data-stage": st.stage },
        h("span", { class: "step" }, String(i + 1)), label(st.stage)))],
    [rowHead("Reached", "customers at or past the stage"), stages.map((st) => cellOf("reached", st,
      h("div", { class: "mid", "data-field": "reached", "data-value": st.reached }, fmtInt(st.reached))))],
    [rowHead("Stopped here", "lapsed with this as their stage"), stages.map((st) => cellOf("stopped", st, [
      h("div", { class: `big stop ${severity(st.stop_rate)}`, "data-field": "stopped", "data-value": st.stopped },
        fmtInt(st.stopped)),
      h("div", { class: "meter stop" }, h("i", { class: severity(st.stop_rate),
        style: `width:${100 * (st.stop_rate || 0)}%` }))]))],
    [rowHead("Stop rate", "stopped / reached"), stages.map((st) => cellOf("rate", st,
      h("div", { class: `mid stop ${severity(st.stop_rate)}`, "data-field": "stop_rate",
        "data-value": st.stop_rate ?? "" }, fmtPct(st.stop_rate))))],
    [rowHead("Time to stop", "median, entering the stage to the last event"), stages.map((st) =>
      cellOf("days", st, h("div", { class: "mid", "data-field": "median_days_to_stop",
        "data-value": st.median_days_to_stop ?? "" }, fmtDays(st.median_days_to_stop))))],
    [rowHead("Last touchpoints", "of the stopped: event · channel"), stages.map((st) => cellOf("last", st,
      (st.last_touchpoints || []).length ? h("ol", { class: "touch last" }, st.last_touchpoints.map((t) =>
        h("li", { "data-event": t.event, "data-channel": t.channel, "data-value": t.customers },
          h("span", { title: `${t.event} on ${t.channel}` },
            h("i", { class: "swatch", style: `background:${colorOf(t.channel)}` }), t.event,
            h("small", {}, ` · ${t.channel}`)),
          h("b", {}, fmtInt(t.customers)))))
        : h("span", { class: "muted" }, "–")))],
  ];
  return h("div", { class: "grid", "data-testid": "dropoff",
    style: `grid-template-columns:150px repeat(${stages.length},minmax(0,1fr))` }, rows);
}
