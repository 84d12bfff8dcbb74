// The funnel, the transition matrix, the channel mix over time and attribution, drawn as SVG/HTML.

import { colorOf, fmtDuration, fmtInt, fmtNum, fmtPct, h, label, s } from "./dom.js";

/** Funnel bars: one row per stage with customers, conversion from previous and from first. */
export function funnelView(funnel) {
  const stages = funnel.stages || [];
  const max = Math.max(1, ...stages.map((st) => st.customers || 0));
  return h("div", { class: "funnel", "data-testid": "funnel" },
    stages.map((st, i) => h("div", { class: "frow", "data-stage": st.stage },
      h("div", { class: "fname" }, label(st.stage)),
      h("div", { class: "fbar-wrap" },
        h("div", { class: "fbar", style: `width:${(100 * (st.customers || 0)) / max}%` }),
        h("span", { class: "fcount", "data-field": "customers", "data-value": st.customers },
          fmtInt(st.customers))),
      h("div", { class: "fconv", title: "conversion from the previous stage" },
        h("span", { "data-field": "conversion_from_previous",
          "data-value": st.conversion_from_previous ?? "" },
        i === 0 ? "" : `${fmtPct(st.conversion_from_previous)} ↓`)),
      h("div", { class: "fmeta", title: "of the first stage · median time to stage" },
        h("span", { "data-field": "conversion_from_first",
          "data-value": st.conversion_from_first ?? "" }, fmtPct(st.conversion_from_first)),
        " · ",
        h("span", { "data-field": "median_time_to_stage_s" },
          fmtDuration(st.median_time_to_stage_s))))));
}

/** The non-linear view: a from x to matrix of transition counts, forward blue, backward orange. */
export function transitionsView(rows, stageOrder) {
  if (!rows.length) return h("p", { class: "empty" }, "No stage transitions yet.");
  const order = [...stageOrder];
  for (const r of rows) for (const st of [r.from, r.to]) if (!order.includes(st)) order.push(st);
  const cell = new Map(rows.map((r) => [`${r.from}\u0000${r.to}`, r]));
  const max = Math.max(1, ...rows.map((r) => r.transitions));
  const head = h("tr", {}, h("th", { class: "corner" }, "from \\ to"),
    order.map((st) => h("th", { scope: "col" }, label(st))));
  const body = order.map((from, fi) => h("tr", {},
    h("th", { scope: "row" }, label(from)),
    order.map((to, ti) => {
      const r = cell.get(`${from}\u0000${to}`);
      if (from === to) return h("td", { class: "diag" });
      if (!r) return h("td", { class: "none" }, "·");
      const a = 0.12 + (0.78 * r.transitions) / max;
      const rgb = ti > fi ? "79,124,255" : "245,140,40";
      return h("td", {
        class: ti > fi ? "fwd" : "back", style: `background:rgba(${rgb},${a.toFixed(3)})`,
        title: r.entry
          ? `${fmtInt(r.customers)} customers entered at ${label(from)} and first moved to ${label(to)}`
          : `${label(from)} → ${label(to)}: ${fmtInt(r.transitions)} transitions by ${fmtInt(r.customers)} customers`,
        "data-from": from, "data-to": to, "data-value": r.transitions, "data-entry": r.entry ? "1" : null,
      }, h("b", {}, fmtInt(r.transitions)), h("small", {}, `${fmtInt(r.customers)} cust.`));
    })));
  return h("table", { class: "matrix", "data-testid": "transitions" }, h("thead", {}, head),
    h("tbody", {}, body));
}

/** Events per day stacked by channel: bars for a few days, a stacked area for many. */
export function mixView(data) {
  const rows = data.map((r) => ({ ...r, day: r.day ?? r.date }));
  if (!rows.length) return h("p", { class: "empty" }, "No events yet.");
  const days = [...new Set(rows.map((r) => r.day))].sort();
  const totals = new Map();
  for (const r of rows) totals.set(r.channel, (totals.get(r.channel) || 0) + r.events);
  const channels = [...totals.keys()].sort((a, b) => totals.get(b) - totals.get(a));
  const at = new Map(rows.map((r) => [`${r.day}\u0000${r.channel}`, r.events]));
  const stacks = days.map((d) => {
    let y = 0;
    return channels.map((c) => { const v = at.get(`${d}\u0000${c}`) || 0; y += v; return [y - v, y]; });
  });
  const max = Math.max(1, ...stacks.map((st) => st[st.length - 1][1]));
  const W = 640, H = 220, L = 40, R = 8, T = 8, B = 24;
  const x = (i) => L + (days.length === 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (days.length - 1));
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const layers = [];
  if (days.length <= 21) {
    const bw = Math.max(3, ((W - L - R) / days.length) * 0.7);
    const bx = (i) => L + ((i + 0.5) * (W - L - R)) / days.length - bw / 2;
    channels.forEach((c, ci) => layers.push(s("g", { fill: colorOf(c, ci) }, days.map((d, i) =>
      s("rect", { x: bx(i), y: y(stacks[i][ci][1]), width: bw,
        height: Math.max(0, y(stacks[i][ci][0]) - y(stacks[i][ci][1])) },
      s("title", {}, `${d} · ${c}: ${fmtInt(stacks[i][ci][1] - stacks[i][ci][0])} events`))))));
  } else {
    channels.forEach((c, ci) => {
      const top = days.map((_, i) => `${x(i).toFixed(1)},${y(stacks[i][ci][1]).toFixed(1)}`);
      const bottom = days.map((_, i) => `${x(i).toFixed(1)},${y(stacks[i][ci][0]).toFixed(1)}`).reverse();
      layers.push(s("path", { d: `M${top.join("L")}L${bottom.join("L")}Z`, fill: colorOf(c, ci),
        "fill-opacity": 0.85, stroke: "#fff", "stroke-width": 0.3 },
      s("title", {}, `${c}: ${fmtInt(totals.get(c))} events`)));
    });
  }
  const ticks = [0, max / 2, max].map((v) => s("g", {},
    s("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }),
    s("text", { x: L - 6, y: y(v) + 4, class: "tick", "text-anchor": "end" }, fmtInt(v))));
  const xi = [...new Set([0, Math.floor((days.length - 1) / 2), days.length - 1])];
  const xl = xi.map((i) => s("text", { x: x(i), y: H - 6, class: "tick",
    "text-anchor": i === 0 && days.length > 1 ? "start" : i === days.length - 1 && days.length > 1 ? "end" : "middle" },
  String(days[i]).slice(0, 10)));
  const legend = h("div", { class: "legend" }, channels.map((c, ci) => h("span", {},
    h("i", { style: `background:${colorOf(c, ci)}` }), `${c} `,
    h("b", { "data-channel": c, "data-value": totals.get(c) }, fmtInt(totals.get(c))))));
  return h("div", { "data-testid": "mix" },
    s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img",
      "aria-label": "events per day by channel" }, ticks, layers, xl),
    legend);
}

/** Attribution credit as horizontal bars, credit descending as the API sorts it. */
export function attributionView(rows) {
  if (!rows.length) return h("p", { class: "empty" }, "No conversions to attribute yet.");
  const total = rows.reduce((a, r) => a + (r.credit || 0), 0) || 1;
  const max = Math.max(...rows.map((r) => r.credit || 0), 1e-9);
  return h("div", { class: "bars", "data-testid": "attribution" }, rows.slice(0, 8).map((r, i) =>
    h("div", { class: "brow" },
      h("div", { class: "bname", title: r.key }, r.key),
      h("div", { class: "bbar-wrap" }, h("div", { class: "bbar",
        style: `width:${(100 * r.credit) / max}%;background:${colorOf(r.key, i)}` })),
      h("div", { class: "bval", "data-value": r.credit },
        `${fmtNum(r.credit, 1)} `, h("small", {}, `(${fmtPct(r.credit / total, 0)})`)))));
}
