// Customer ids (opaque, SPEC 2.2) as people: each id's highest-priority identity key and name,
// read with POST /v1/query (scope pii), so that a member or a conflict's customer can be shown
// by its email and opened in the customer lookup, which takes identity keys, not ids.

import { AuthError } from "./api.js";
import { h } from "./dom.js";

// SPEC 2.2: user_id > email > phone > custom types > anonymous_id.
const RANK = { user_id: 0, email: 1, phone: 2, anonymous_id: 4 };
const rank = (type) => RANK[type] ?? 3;

/** The message shown instead of customer data when the token lacks the pii scope. */
export const NEEDS_PII = "Customer profiles need an API token with the pii scope (SPEC 6.1): " +
  "this token can read aggregates only. Use the Token button to connect with a pii token.";

/** Whether an error is the API refusing the token's scope (403), not an unknown token (401). */
export const isForbidden = (e) => e instanceof AuthError && e.status === 403;

/** POST /v1/query's answer as a list of objects (it may answer {"columns", "rows"} of lists). */
export function rowsOf(result) {
  if (Array.isArray(result)) return result;
  const rows = result.rows || result.data || [];
  if (rows.length && Array.isArray(rows[0]) && result.columns) {
    const cols = result.columns.map((c) => (typeof c === "string" ? c : c.name));
    return rows.map((r) => Object.fromEntries(cols.map((c, i) => [c, r[i]])));
  }
  return rows;
}

const quote = (v) => `'${String(v).replace(/'/g, "''")}'`;

/** Map customer_id -> {key: "type:value", type, value, name} for the ids (missing ids: absent). */
export async function peopleOf(api, ids) {
  const unique = [...new Set(ids.filter(Boolean))];
  if (!unique.length) return new Map();
  const rows = rowsOf(await api.query(
    "select i.customer_id, i.type, i.value, json_extract_string(c.traits, '$.name') as name " +
    "from identities i left join customers c on c.customer_id = i.customer_id " +
    `where i.customer_id in (${unique.map(quote).join(", ")}) order by i.customer_id, i.type, i.value`));
  const out = new Map();
  for (const r of rows) {
    const best = out.get(r.customer_id);
    if (!best || rank(r.type) < rank(best.type)) {
      out.set(r.customer_id, { key: `${r.type}:${r.value}`, type: r.type, value: r.value, name: r.name });
    }
  }
  return out;
}

/** A customer as a button that opens it in the customer lookup (or its bare id without one). */
export function personLink(id, person, open) {
  const shown = person ? (person.name ? `${person.name} · ${person.value}` : person.value) : id;
  if (!person || !open) return h("span", { class: "mono", "data-customer": id, title: id }, shown);
  return h("button", { type: "button", class: "link", "data-customer": id, "data-key": person.key,
    title: `open ${person.key} in the customer lookup (${id})`, onclick: () => open(person.key) }, shown);
}
