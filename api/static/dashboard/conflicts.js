// The identity conflicts panel (SPEC 5.1, an operator's view; scope pii): every link stitching
// refused (SPEC 2.2), a page at a time (/v1/identity/conflicts?limit=&offset=), each customer
// opening the customer lookup.

import { fmtInt, fmtTime, h, mount } from "./dom.js";
import { isForbidden, peopleOf, personLink } from "./people.js";

const $ = (id) => document.getElementById(id);
const COLUMNS = ["key_type", "key_value", "event_id", "at", "customer_id", "refused_customer_id"];

export const CONFLICTS_NEED_PII = "Identity conflicts need an API token with the pii scope " +
  "(SPEC 6.1): they name customers and their keys (emails, phones, device ids). This token can " +
  "read aggregates only; use the Token button to connect with a pii token.";

export function conflictsTable(rows) {
  return { columns: COLUMNS, rows: rows.map((c) => [c.key.type, c.key.value, c.event_id, c.at,
    c.customer_id, c.refused_customer_id]) };
}

function explain() {
  return h("div", { class: "empty", "data-testid": "conflicts-empty" },
    h("p", {}, h("b", {}, "No identity conflicts. "),
      "A conflict is a link stitching refused: an event carried a key (an email, a phone, a device " +
      "id) that already belongs to another customer, and the two customers each hold a different " +
      "user_id. Joining them by this key would merge two known people into one, so SPEC 2.2 " +
      "refuses the link: both customers stay apart, and each refused link is listed here with the " +
      "key, the event that carried it and the two customers."),
    h("p", { class: "muted" }, "Typical causes: a couple or a team sharing one email address, or a " +
      "shared laptop (one anonymous id) on which two people signed in."));
}

function conflictsView(rows, offset, people, open) {
  const person = (id, fallback) => personLink(id, people.get(id) || fallback, open);
  return h("div", { class: "scroll" }, h("table", { class: "grid-table conflicts", "data-testid": "conflicts" },
    h("thead", {}, h("tr", {}, h("th", {}, "#"), h("th", {}, "time (UTC)"), h("th", {}, "refused key"),
      h("th", {}, "event"), h("th", { title: "the customer the event belongs to" }, "event's customer"),
      h("th", { title: "the customer holding the key, with another user_id" }, "key held by"))),
    h("tbody", {}, rows.map((c, i) => h("tr", { "data-event": c.event_id, "data-key-type": c.key.type,
      "data-key-value": c.key.value },
    h("td", { class: "num muted" }, fmtInt(offset + i + 1)),
    h("td", { class: "mono", "data-field": "at", "data-value": c.at }, fmtTime(c.at)),
    h("td", {}, h("span", { class: "idk" }, h("small", {}, c.key.type), c.key.value)),
    h("td", { class: "mono", title: c.event_id }, c.event_id),
    h("td", { "data-field": "customer_id", "data-value": c.customer_id }, person(c.customer_id)),
    // The key itself finds its holder in the lookup, even without POST /v1/query.
    h("td", { "data-field": "refused_customer_id", "data-value": c.refused_customer_id },
      person(c.refused_customer_id, { key: `${c.key.type}:${c.key.value}`, value: c.key.value })))))));
}

/** The panel: `ctx` gives the api, the exports and open(key). */
export function conflictsPanel(ctx) {
  const st = { offset: 0, shown: "" };
  const size = () => Number($("conflicts-size").value) || 50;

  async function page(offset) {
    st.offset = Math.max(0, offset);
    await refresh(true).catch(ctx.onError);
  }
  $("conflicts-prev").addEventListener("click", () => page(st.offset - size()));
  $("conflicts-next").addEventListener("click", () => page(st.offset + size()));
  $("conflicts-size").addEventListener("change", () => page(0));

  function pager(shown, more) {
    $("conflicts-prev").disabled = st.offset === 0;
    $("conflicts-next").disabled = !more;
    $("conflicts-range").textContent = shown ? `${fmtInt(st.offset + 1)}–${fmtInt(st.offset + shown)}${more ? "" : " (last)"}` : "";
  }

  async function refresh(force) {
    const box = $("conflicts");
    // A token found without pii is not asked again on every poll (a new token is a new api).
    if (st.forbidden === ctx.api() && !force) return;
    let answer;
    const asked = `${st.offset}/${size()}`;
    try {
      // One row more than the page: whether there is a next page.
      answer = await ctx.api().get("/v1/identity/conflicts", { limit: size() + 1, offset: st.offset });
    } catch (e) {
      if (!isForbidden(e)) throw e;
      st.forbidden = ctx.api();
      box.dataset.state = "forbidden";
      pager(0, false);
      mount(box, h("p", { class: "note", "data-testid": "conflicts-need-pii" }, CONFLICTS_NEED_PII));
      ctx.exports.conflicts = { title: "identity conflicts", table: conflictsTable([]) };
      return;
    }
    const key = `${st.offset}/${size()}`;
    if (key !== asked) return; // another page was asked for meanwhile: its refresh draws it
    if (!force && !answer.changed && st.shown === key) return;
    const rows = answer.data.slice(0, size());
    const more = answer.data.length > rows.length;
    if (!rows.length && st.offset > 0) { st.offset = 0; await refresh(true); return; }
    let people = new Map();
    try {
      if (ctx.hasQuery()) people = await peopleOf(ctx.api(), rows.flatMap((c) => [c.customer_id, c.refused_customer_id]));
    } catch (_) { /* customers by id then; the key still opens its holder */ }
    if (`${st.offset}/${size()}` !== asked) return;
    mount(box, rows.length ? conflictsView(rows, st.offset, people, ctx.open) : explain());
    box.dataset.state = rows.length ? "rows" : "empty";
    box.dataset.offset = String(st.offset);
    pager(rows.length, more);
    st.shown = key;
    ctx.exports.conflicts = { title: `identity conflicts ${st.offset + 1}–${st.offset + rows.length}`,
      table: conflictsTable(rows) };
  }

  return { refresh };
}
