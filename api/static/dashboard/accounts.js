// The B2B accounts panel (SPEC 5.1): every account (/v1/accounts) and the chosen one's journey
// (/v1/accounts/{group_id}): its stages on the model's stage line, its traits and its members,
// each opening the customer lookup when the token has the pii scope.

import { HttpError } from "./api.js";
import { fmtInt, fmtTime, h, label, mount } from "./dom.js";
import { NEEDS_PII, isForbidden, peopleOf, personLink } from "./people.js";

const $ = (id) => document.getElementById(id);

/** The accounts list as the CSV export holds it (the API's columns). */
export function accountsTable(rows) {
  return { columns: ["account_id", "name", "members", "stage", "first_seen", "last_seen"],
    rows: rows.map((a) => [a.account_id, a.name ?? "", a.members, a.stage ?? "", a.first_seen, a.last_seen]) };
}

/** One account's stages and members as one table: a row per stage reached, then per member. */
export function accountTable(acc) {
  return { columns: ["account_id", "kind", "stage", "entered_at", "customer_id"],
    rows: [...acc.stages.map((st) => [acc.account_id, "stage", st.stage, st.entered_at, ""]),
      ...acc.members.map((m) => [acc.account_id, "member", m.stage ?? "", "", m.customer_id])] };
}

const nameOf = (a) => a.name || a.traits?.name || a.account_id;

function accountList(rows, selected, choose) {
  return h("table", { class: "grid-table acct-list", "data-testid": "account-list" },
    h("thead", {}, h("tr", {}, h("th", {}, "account"), h("th", { class: "num" }, "members"), h("th", {}, "stage"))),
    h("tbody", {}, rows.map((a) => h("tr", { "data-account": a.account_id,
      class: a.account_id === selected ? "sel" : "", onclick: () => choose(a.account_id) },
    h("th", { scope: "row" }, h("button", { type: "button", class: "link", title: a.account_id }, nameOf(a)),
      a.name ? h("small", { class: "mono" }, a.account_id) : null),
    h("td", { class: "num", "data-field": "members", "data-value": a.members }, fmtInt(a.members)),
    h("td", { "data-field": "stage", "data-value": a.stage ?? "" }, a.stage ? label(a.stage) : "–")))));
}

/** The model's stages left to right, those the account reached with the time its first member did. */
function stageLine(order, acc) {
  const entered = new Map(acc.stages.map((st) => [st.stage, st.entered_at]));
  const names = order.length ? order : acc.stages.map((st) => st.stage);
  return h("ol", { class: "stageline", "data-testid": "account-stages" }, names.map((name, i) => {
    const at = entered.get(name);
    return h("li", { class: at ? (name === acc.stage ? "reached current" : "reached") : "missing",
      "data-stage": name, "data-entered": at ?? "" },
    h("span", { class: "step" }, String(i + 1)), h("b", {}, label(name)),
    h("small", {}, at ? fmtTime(at) : "not reached"));
  }));
}

function membersView(acc, people, open) {
  const note = people === "forbidden" ? h("p", { class: "note", "data-testid": "members-need-pii" }, NEEDS_PII)
    : people === null ? h("p", { class: "note" }, "This API offers no POST /v1/query: members are shown by customer id.")
      : null;
  const known = people instanceof Map ? people : new Map();
  // Without pii (or POST /v1/query) a member is only its opaque id: one column, not two.
  const named = known.size > 0;
  return [h("table", { class: "grid-table", "data-testid": "account-members" },
    h("thead", {}, h("tr", {}, named ? h("th", {}, "member") : null, h("th", {}, "customer id"), h("th", {}, "stage"))),
    h("tbody", {}, acc.members.map((m) => h("tr", { "data-customer": m.customer_id, "data-stage": m.stage ?? "" },
      named ? h("td", {}, personLink(m.customer_id, known.get(m.customer_id), open)) : null,
      h("td", { class: named ? "mono muted" : "mono" }, m.customer_id),
      h("td", {}, m.stage ? h("span", { class: "pill stage" }, label(m.stage)) : "–"))))), note];
}

function accountView(acc, row, order, people, open) {
  const traits = Object.entries(acc.traits || {});
  return h("div", { class: "acct", "data-testid": "account", "data-account": acc.account_id },
    h("div", { class: "cust-head" },
      h("div", {}, h("div", { class: "cust-name" }, nameOf(acc)), h("div", { class: "muted mono" }, acc.account_id)),
      h("div", { class: "cust-facts" },
        h("span", { class: "pill stage" }, `stage: ${acc.stage ? label(acc.stage) : "–"}`),
        h("span", {}, `${fmtInt(acc.members.length)} members`),
        h("span", {}, `first seen ${fmtTime(acc.first_seen)}`),
        row ? h("span", {}, `last seen ${fmtTime(row.last_seen)}`) : null)),
    h("div", { class: "cust-ids", "data-testid": "account-traits" }, traits.length
      ? traits.map(([k, v]) => h("span", { class: "trait", "data-trait": k },
        h("small", {}, k), typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)))
      : h("span", { class: "muted" }, "no traits")),
    stageLine(order, acc),
    membersView(acc, people, open));
}

/** The panel: `ctx` gives the api, the model, the model's stage order, the exports and open(key). */
export function accountsPanel(ctx) {
  const st = { rows: [], selected: new URLSearchParams(location.search).get("account") || "", shown: "" };

  function remember() {
    const q = new URLSearchParams(location.search);
    if (st.selected) q.set("account", st.selected); else q.delete("account");
    const s = q.toString();
    history.replaceState(null, "", location.pathname + (s ? `?${s}` : ""));
  }

  async function choose(id) {
    st.selected = id;
    remember();
    await refresh(true).catch(ctx.onError);
  }

  $("account").addEventListener("change", () => choose($("account").value));

  async function people(acc) {
    if (!ctx.hasQuery()) return null;
    try {
      return await peopleOf(ctx.api(), acc.members.map((m) => m.customer_id));
    } catch (e) {
      if (isForbidden(e)) return "forbidden";
      if (e instanceof HttpError) return null;
      throw e;
    }
  }

  async function refresh(force) {
    const api = ctx.api();
    const model = ctx.model();
    const list = await api.get("/v1/accounts", { model });
    st.rows = list.data;
    const box = $("accounts");
    if (!st.rows.length) {
      mount($("account"), h("option", { value: "" }, "no accounts"));
      mount(box, h("p", { class: "empty", "data-testid": "accounts-empty" },
        "No B2B accounts yet: a group call (analytics.group(groupId, traits)) makes its customer a member of the account groupId."));
      ctx.exports.accounts = { title: "accounts", table: accountsTable([]) };
      return;
    }
    if (!st.rows.some((a) => a.account_id === st.selected)) st.selected = st.rows[0].account_id;
    const id = st.selected;
    const detail = await api.get(`/v1/accounts/${encodeURIComponent(id)}`, { model });
    if (id !== st.selected) return; // another account was chosen meanwhile: its refresh draws it
    const key = `${model}\u0000${id}`;
    if (!force && !list.changed && !detail.changed && st.shown === key) return;
    mount($("account"), st.rows.map((a) => h("option", { value: a.account_id },
      `${nameOf(a)} · ${fmtInt(a.members)} members`)));
    $("account").value = st.selected;
    const row = st.rows.find((a) => a.account_id === st.selected);
    const who = await people(detail.data);
    if (id !== st.selected) return;
    mount(box, h("div", { class: "acct-grid" }, accountList(st.rows, st.selected, choose),
      accountView(detail.data, row, ctx.stages(), who, ctx.open)));
    st.shown = key;
    box.dataset.account = st.selected;
    ctx.exports.accounts = { title: `accounts · ${model}`, table: accountsTable(st.rows) };
    ctx.exports.account = { title: `account ${st.selected} · ${model}`, table: accountTable(detail.data) };
  }

  return { refresh };
}
