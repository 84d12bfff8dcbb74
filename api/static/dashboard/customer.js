// One customer's journey: identities, traits, stages reached and a timeline of events per channel.

import { colorOf, fmtInt, fmtTime, h, label, s } from "./dom.js";

const LANE_ORDER = ["web", "app", "email", "sms", "social", "chat", "call", "store", "other"];

function timeline(events, stages) {
  const pts = events.map((e) => ({ ...e, t: new Date(e.timestamp).getTime() }))
    .filter((e) => !Number.isNaN(e.t));
  if (!pts.length) return h("p", { class: "empty" }, "No events.");
  const lanes = [...new Set(pts.map((e) => e.channel))]
    .sort((a, b) => LANE_ORDER.indexOf(a) - LANE_ORDER.indexOf(b));
  const t0 = Math.min(...pts.map((e) => e.t)), t1 = Math.max(...pts.map((e) => e.t));
  const entered = stages.filter((st) => !st.inferred);
  // Stages entered minutes apart would print on top of each other: stack their labels in rows.
  const rowEnds = [];
  const placed = entered.map((st) => {
    const tx0 = new Date(st.entered_at).getTime();
    return { st, t: tx0 };
  });
  const W = 1200, L = 70, R = 20, lane = 30;
  const x0 = (t) => L + (t1 === t0 ? (W - L - R) / 2 : ((t - t0) * (W - L - R)) / (t1 - t0));
  const rows = placed.map(({ st, t }) => {
    const width = 7 * label(st.stage).length + 10;
    let row = rowEnds.findIndex((end) => end < x0(t));
    if (row < 0) { row = rowEnds.length; rowEnds.push(0); }
    rowEnds[row] = x0(t) + width;
    return row;
  });
  const T = 20 + 13 * Math.max(1, rowEnds.length), H = T + lanes.length * lane + 26;
  const x = x0;
  const y = (c) => T + lanes.indexOf(c) * lane + lane / 2;
  const marks = placed.map(({ st, t }, i) => {
    const tx = x(t);
    return s("g", { class: "stagemark" },
      s("line", { x1: tx, x2: tx, y1: 14 + 13 * rows[i], y2: H - 24 }),
      s("text", { x: tx + 3, y: 12 + 13 * rows[i] }, label(st.stage)));
  });
  const laneEls = lanes.map((c, i) => s("g", {},
    s("rect", { x: L, y: T + i * lane, width: W - L - R, height: lane, class: i % 2 ? "lane odd" : "lane" }),
    s("text", { x: L - 8, y: y(c) + 4, "text-anchor": "end", class: "lanelabel" }, c)));
  const dots = pts.map((e) => s("circle", { cx: x(e.t), cy: y(e.channel), r: 5.5,
    fill: colorOf(e.channel, lanes.indexOf(e.channel)), class: "evt" },
  s("title", {}, `${fmtTime(e.timestamp)} · ${e.channel} · ${e.event}`)));
  const axis = [t0, (t0 + t1) / 2, t1].map((t, i) => s("text", { x: x(t), y: H - 8, class: "tick",
    "text-anchor": ["start", "middle", "end"][i] }, fmtTime(new Date(t).toISOString())));
  return s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart timeline", role: "img",
    "aria-label": "customer timeline by channel", "data-testid": "timeline",
    "data-events": pts.length }, laneEls, marks, dots, axis);
}

/** The lookup result for GET /v1/customers/{key} and /v1/customers/{key}/events. */
export function customerView(c, events) {
  const stages = c.stages || [];
  const traits = Object.entries(c.traits || {}).filter(([, v]) => v !== null && typeof v !== "object");
  const recent = [...events].reverse().slice(0, 12);
  return h("div", { class: "cust", "data-testid": "customer", "data-customer": c.customer_id },
    h("div", { class: "cust-head" },
      h("div", {}, h("div", { class: "cust-name" }, c.traits?.name || c.customer_id),
        h("div", { class: "muted mono" }, c.customer_id)),
      h("div", { class: "cust-facts" },
        h("span", { class: "pill stage" }, `stage: ${label(c.stage || "–")}`),
        c.lapsed ? h("span", { class: "pill warn" }, "lapsed") : h("span", { class: "pill ok" }, "active"),
        h("span", {}, `first seen ${fmtTime(c.first_seen)}`),
        h("span", {}, `last seen ${fmtTime(c.last_seen)}`),
        h("span", {}, `${fmtInt(events.length)} events · ${fmtInt((c.sessions || []).length)} sessions`))),
    h("div", { class: "cust-ids" },
      (c.identities || []).map((k) => h("span", { class: "idk" }, h("small", {}, k.type), k.value)),
      traits.map(([k, v]) => h("span", { class: "trait" }, h("small", {}, k), String(v)))),
    h("ol", { class: "stagechips" }, stages.map((st) => h("li", { class: st.inferred ? "inferred" : "" },
      h("b", {}, label(st.stage)), h("small", {}, st.inferred ? `inferred · ${fmtTime(st.entered_at)}` : fmtTime(st.entered_at))))),
    timeline(events, stages),
    h("table", { class: "events" },
      h("thead", {}, h("tr", {}, ["time", "channel", "event", "source / medium"].map((t) => h("th", {}, t)))),
      h("tbody", {}, recent.map((e) => h("tr", {},
        h("td", { class: "mono" }, fmtTime(e.timestamp)),
        h("td", {}, h("i", { class: "swatch", style: `background:${colorOf(e.channel)}` }), e.channel),
        h("td", {}, e.event),
        h("td", { class: "muted" }, `${e.source ?? ""} / ${e.medium ?? ""}`))))),
    events.length > recent.length ? h("p", { class: "muted" }, `latest ${recent.length} of ${fmtInt(events.length)} events`) : null);
}
