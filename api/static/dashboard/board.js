// The journey map as a board: one column per stage, one row per part of the map (SPEC 6.2).

import { colorOf, fmtDuration, fmtInt, fmtNum, fmtPct, h, label, s } from "./dom.js";

const first = (...xs) => xs.find((x) => x !== undefined && x !== null);

/** [{name, count}] from a list of objects or a {name: count} mapping, largest first. */
function counted(value, nameKeys) {
  if (!value) return [];
  const items = Array.isArray(value)
    ? value.map((v) => (typeof v === "object"
      ? { name: first(...nameKeys.map((k) => v[k])), count: first(v.events, v.count, v.touches, v.customers, 0) }
      : { name: String(v), count: null }))
    : Object.entries(value).map(([name, count]) => ({ name, count }));
  return items.sort((a, b) => (b.count ?? 0) - (a.count ?? 0));
}

/** One stage of /v1/journey-map in the board's terms, completed from the funnel when missing. */
export function normaliseStage(st, funnelStage = {}) {
  const conv = typeof st.conversion === "object" && st.conversion ? st.conversion : {};
  const timeline = st.timeline || {};
  const emo = st.emotion;
  return {
    stage: st.stage,
    customers: first(st.customers, funnelStage.customers),
    fromPrevious: first(st.conversion_from_previous, conv.from_previous,
      typeof st.conversion === "number" ? st.conversion : undefined, funnelStage.conversion_from_previous),
    fromFirst: first(st.conversion_from_first, conv.from_first, funnelStage.conversion_from_first),
    median: first(st.median_time_to_stage_s, timeline.median_time_to_stage_s,
      funnelStage.median_time_to_stage_s),
    touchpoints: counted(first(st.top_touchpoints, st.touchpoints), ["event", "touchpoint", "name"]),
    channels: counted(st.channels, ["channel", "name"]),
    kpis: st.kpis && typeof st.kpis === "object" ? st.kpis : {},
    emotion: typeof emo === "number" ? emo : first(emo?.score, emo?.emotion, emo?.mean, emo?.value),
    responses: typeof emo === "object" && emo ? first(emo.responses, emo.count) : first(st.responses),
  };
}

function cell(row, content, attrs = {}) {
  return h("div", { class: `cell r-${row}`, ...attrs }, content);
}

function channelBar(channels) {
  const total = channels.reduce((a, c) => a + (c.count || 0), 0);
  if (!total) return h("span", { class: "muted" }, "–");
  return [
    h("div", { class: "stackbar" }, channels.map((c, i) => h("i", {
      style: `width:${(100 * c.count) / total}%;background:${colorOf(c.name, i)}`,
      title: `${c.name}: ${fmtInt(c.count)} (${fmtPct(c.count / total, 0)})` }))),
    h("ul", { class: "chips" }, channels.slice(0, 4).map((c, i) => h("li", {},
      h("i", { class: "swatch", style: `background:${colorOf(c.name, i)}` }),
      `${c.name} `, h("b", {}, fmtPct(c.count / total, 0))))),
  ];
}

function kpiList(kpis) {
  const entries = Object.entries(kpis).filter(([, v]) => v !== null && v !== undefined);
  if (!entries.length) return h("span", { class: "muted" }, "–");
  return h("dl", { class: "mini" }, entries.slice(0, 5).map(([k, v]) => {
    let text;
    if (typeof v === "object") text = `${fmtNum(v.score, 1)}${v.responses !== undefined ? ` (${fmtInt(v.responses)})` : ""}`;
    else if (/rate|share|conversion/.test(k)) text = fmtPct(v);
    else if (/_s$/.test(k)) text = fmtDuration(v);
    else text = Number.isInteger(v) ? fmtInt(v) : fmtNum(v, 2);
    return [h("dt", {}, label(k)), h("dd", {}, text)];
  }));
}

/** The emotion curve: a smooth line through each stage's mean emotion in [-1, 1]. */
function emotionCurve(stages) {
  const n = stages.length;
  const pts = stages.map((st, i) => (st.emotion === undefined || st.emotion === null ? null
    : [((i + 0.5) * 100) / n, 50 - 40 * Math.max(-1, Math.min(1, st.emotion))]));
  const known = pts.filter(Boolean);
  let d = "";
  known.forEach(([x, y], i) => {
    if (i === 0) { d = `M${x},${y}`; return; }
    const [px, py] = known[i - 1];
    const mx = (px + x) / 2;
    d += ` C${mx},${py} ${mx},${y} ${x},${y}`;
  });
  const area = known.length > 1 ? `${d} L${known[known.length - 1][0]},50 L${known[0][0]},50 Z` : "";
  const svg = s("svg", { class: "curve", viewBox: "0 0 100 100", preserveAspectRatio: "none",
    "aria-hidden": "true" },
  s("line", { x1: 0, x2: 100, y1: 50, y2: 50, class: "zero" }),
  area && s("path", { d: area, class: "area" }),
  d && s("path", { d, class: "line" }));
  const dots = h("div", { class: "dots", style: `grid-template-columns:repeat(${n},minmax(0,1fr))` },
    stages.map((st, i) => {
      if (!pts[i]) return h("div", { class: "dotcell" }, h("span", { class: "nodata", style: "top:50%" }, "no surveys"));
      const mood = st.emotion > 0.2 ? "pos" : st.emotion < -0.2 ? "neg" : "mid";
      return h("div", { class: "dotcell" }, h("span", { class: `emo-dot ${mood}`, style: `top:${pts[i][1]}%`,
        title: `${label(st.stage)}: emotion ${fmtNum(st.emotion, 2)} from ${fmtInt(st.responses)} responses`,
        "data-stage": st.stage, "data-value": st.emotion },
      h("b", {}, `${st.emotion > 0 ? "+" : ""}${fmtNum(st.emotion, 2)}`),
      st.responses !== undefined ? h("small", {}, `${fmtInt(st.responses)} resp.`) : null));
    }));
  return h("div", { class: "emotion" }, svg, dots);
}

/** The board: rows customers, conversion, time, touchpoints, channels, KPIs, emotion. */
export function boardView(map, funnel) {
  const byStage = new Map((funnel?.stages || []).map((st) => [st.stage, st]));
  const stages = (map.stages || []).map((st) => normaliseStage(st, byStage.get(st.stage)));
  if (!stages.length) return h("p", { class: "empty" }, "No stages in this model.");
  const max = Math.max(1, ...stages.map((st) => st.customers || 0));
  const rowHead = (t, sub) => h("div", { class: "rowhead" }, t, sub ? h("small", {}, sub) : null);
  const rows = [
    [h("div", { class: "rowhead corner" }),
      stages.map((st, i) => h("div", { class: "stagehead", "data-stage": st.stage },
        h("span", { class: "step" }, String(i + 1)), label(st.stage)))],
    [rowHead("Customers", "reached the stage"), stages.map((st) => cell("customers", [
      h("div", { class: "big", "data-field": "customers", "data-value": st.customers }, fmtInt(st.customers)),
      h("div", { class: "meter" }, h("i", { style: `width:${(100 * (st.customers || 0)) / max}%` }))],
    { "data-stage": st.stage }))],
    [rowHead("Conversion", "from previous · from first"), stages.map((st, i) => cell("conv", [
      h("div", { class: "mid", "data-field": "conversion_from_previous" }, i === 0 ? "—" : fmtPct(st.fromPrevious)),
      h("small", { "data-field": "conversion_from_first" }, `${fmtPct(st.fromFirst)} of first`)],
    { "data-stage": st.stage }))],
    [rowHead("Timeline", "median time to stage"), stages.map((st) => cell("time",
      h("div", { class: "mid", "data-field": "median_time_to_stage_s" }, fmtDuration(st.median)),
      { "data-stage": st.stage }))],
    [rowHead("Touchpoints", "top events at the stage"), stages.map((st) => cell("touch",
      st.touchpoints.length ? h("ol", { class: "touch" }, st.touchpoints.slice(0, 5).map((t) =>
        h("li", {}, h("span", { title: t.name }, t.name), t.count !== null ? h("b", {}, fmtInt(t.count)) : null)))
        : h("span", { class: "muted" }, "–"), { "data-stage": st.stage }))],
    [rowHead("Channels", "share of events"), stages.map((st) => cell("chan", channelBar(st.channels),
      { "data-stage": st.stage }))],
    [rowHead("KPIs"), stages.map((st) => cell("kpi", kpiList(st.kpis), { "data-stage": st.stage }))],
    [rowHead("Emotion", "mean survey score, −1..+1"), h("div", { class: "cell r-emotion span" }, emotionCurve(stages))],
  ];
  return h("div", { class: "grid", "data-testid": "board",
    style: `grid-template-columns:150px repeat(${stages.length},minmax(0,1fr))` }, rows);
}
