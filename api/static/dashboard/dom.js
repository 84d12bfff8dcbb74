// Tiny DOM and SVG builders plus number formatting. Data is always inserted as text, never as HTML.

const SVG_NS = "http://www.w3.org/2000/svg";

function build(node, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") node.textContent = String(v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** An HTML element: h("div", {class: "x"}, child, "text"). */
export function h(tag, attrs = {}, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element, same call shape as h(). */
export function s(tag, attrs = {}, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function mount(container, ...children) {
  container.replaceChildren(...children.flat(Infinity).filter((c) => c));
}

export const CHANNEL_COLORS = {
  web: "#4f7cff", app: "#8b5cf6", email: "#f59e0b", call: "#10b981", store: "#ef4444",
  sms: "#06b6d4", social: "#ec4899", chat: "#84cc16", other: "#94a3b8",
};
const EXTRA = ["#0ea5e9", "#a855f7", "#f97316", "#14b8a6", "#e11d48", "#65a30d", "#64748b"];

export function colorOf(key, i = 0) {
  return CHANNEL_COLORS[key] || EXTRA[i % EXTRA.length];
}

const intFmt = new Intl.NumberFormat("en-US");

export function fmtInt(n) {
  return n === null || n === undefined || Number.isNaN(n) ? "–" : intFmt.format(Math.round(n));
}

export function fmtPct(r, digits = 1) {
  return r === null || r === undefined || Number.isNaN(r) ? "–" : `${(r * 100).toFixed(digits)}%`;
}

export function fmtNum(n, digits = 1) {
  return n === null || n === undefined || Number.isNaN(n) ? "–" : Number(n).toFixed(digits);
}

/** A duration in seconds as the two largest units: "3 d 4 h", "12 min", "40 s". */
export function fmtDuration(sec) {
  if (sec === null || sec === undefined || Number.isNaN(sec)) return "–";
  if (sec < 1) return "0 s";
  const units = [["d", 86400], ["h", 3600], ["min", 60], ["s", 1]];
  const parts = [];
  let rest = Math.round(sec);
  for (const [name, size] of units) {
    if (rest >= size && parts.length < 2) {
      parts.push(`${Math.floor(rest / size)} ${name}`);
      rest %= size;
    } else if (parts.length) break;
  }
  return parts.join(" ");
}

/** An ISO time as "2026-05-03 14:22" (UTC, as the whole product speaks UTC). */
export function fmtTime(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toISOString().slice(0, 16).replace("T", " ");
}

export function fmtAgo(ms) {
  const sec = Math.max(0, Math.round(ms / 1000));
  if (sec < 60) return `${sec} s ago`;
  if (sec < 3600) return `${Math.floor(sec / 60)} min ago`;
  return `${Math.floor(sec / 3600)} h ago`;
}

/** Title-case a stage or method name: "position_based" -> "Position based". */
export function label(name) {
  const t = String(name ?? "").replace(/_/g, " ");
  return t.charAt(0).toUpperCase() + t.slice(1);
}
