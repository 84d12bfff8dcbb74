// Exports: every table as CSV and the big panels as a standalone SVG (a table of the panel's
// data drawn with its colours), both made in the page from the data it shows.

/** A table as RFC 4180 CSV: header row, CRLF line ends, fields quoted when they need it. */
export function toCsv(table) {
  const field = (v) => {
    const t = v === null || v === undefined ? "" : Array.isArray(v) ? v.join(" > ") : String(v);
    return /[",\r\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
  };
  return [table.columns, ...table.rows].map((r) => r.map(field).join(",")).join("\r\n") + "\r\n";
}

/** Offer text as a file download (a blob: link, so nothing leaves the page). */
export function download(filename, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

const esc = (v) => String(v ?? "").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

/** A standalone SVG of a table: title, subtitle, header and rows; `fills[r][c]` colours a cell and
 * `bars[r][c]` (0..1) draws a bar under its text (funnel-like columns). */
export function svgTable({ title, subtitle = "", columns, rows, fills = [], bars = [], widths = [] }) {
  const pad = 16, rowH = 26, headH = 30, top = subtitle ? 58 : 44;
  const width = (c) => widths[c] || (c === 0 ? 180 : 110);
  const xs = [pad];
  columns.forEach((_, c) => xs.push(xs[c] + width(c)));
  const W = xs[xs.length - 1] + pad, H = top + headH + rows.length * rowH + pad;
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${pad}" y="26" font-size="16" font-weight="700" fill="#1d2433">${esc(title)}</text>`];
  if (subtitle) out.push(`<text x="${pad}" y="44" fill="#6b7385">${esc(subtitle)}</text>`);
  columns.forEach((col, c) => out.push(`<text x="${xs[c] + 6}" y="${top + 19}" font-weight="700" fill="#6b7385">${esc(col)}</text>`));
  out.push(`<line x1="${pad}" x2="${W - pad}" y1="${top + headH - 2}" y2="${top + headH - 2}" stroke="#e4e8f0"/>`);
  rows.forEach((row, r) => {
    const y = top + headH + r * rowH;
    row.forEach((v, c) => {
      const fill = fills[r]?.[c];
      const bar = bars[r]?.[c];
      if (fill) out.push(`<rect x="${xs[c] + 1}" y="${y + 1}" width="${width(c) - 2}" height="${rowH - 2}" rx="3" fill="${esc(fill)}"/>`);
      if (bar !== undefined && bar !== null) out.push(`<rect x="${xs[c] + 2}" y="${y + 4}" width="${Math.max(1, (width(c) - 8) * bar)}" height="${rowH - 8}" rx="3" fill="#c9d6ff"/>`);
      out.push(`<text x="${xs[c] + 6}" y="${y + 17}" fill="#1d2433"${c === 0 ? ' font-weight="600"' : ""}>${esc(Array.isArray(v) ? v.join(" → ") : v)}</text>`);
    });
    out.push(`<line x1="${pad}" x2="${W - pad}" y1="${y + rowH}" y2="${y + rowH}" stroke="#f1f3f8"/>`);
  });
  out.push("</svg>");
  return out.join("\n");
}
