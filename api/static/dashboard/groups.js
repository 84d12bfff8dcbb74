// Default channel grouping of sources, after GA4's: (source, medium) -> a group such as
// "Organic Search" or "Paid Social". docs/dashboard.md lists these rules in the same order.

const SEARCH = ["google", "bing", "yahoo", "duckduckgo", "baidu", "yandex", "ecosia", "ask",
  "aol", "naver", "seznam", "startpage", "qwant", "search.brave.com"];
const SOCIAL = ["facebook", "instagram", "t.co", "twitter", "x.com", "linkedin", "lnkd.in",
  "pinterest", "reddit", "tiktok", "snapchat", "whatsapp", "messenger", "threads.net",
  "tumblr", "mastodon.social"];
const VIDEO = ["youtube", "youtu.be", "vimeo", "twitch", "dailymotion"];
const PAID = /^(.*cp.*|ppc|retargeting|paid.*)$/;
const DISPLAY = new Set(["display", "banner", "expandable", "interstitial", "cpm"]);
const SOCIAL_MEDIUMS = new Set(["social", "social-network", "social-media", "sm", "social network",
  "social media"]);
const EMAIL = new Set(["email", "e-mail", "e_mail", "e mail", "newsletter"]);
// journey's own channels (SPEC 1.2) name the source of sessions that have no web referrer.
const OFFLINE = { call: "Call", store: "Store", chat: "Chat" };

/** The order groups are listed in when credits tie (and in the docs). */
export const GROUPS = ["Direct", "Paid Search", "Paid Social", "Paid Video", "Display",
  "Paid Other", "Organic Social", "Organic Video", "Organic Search", "Email", "Affiliates",
  "Referral", "SMS", "Mobile Push", "Call", "Store", "Chat", "Unassigned"];

/** A source as a bare host: lower case, no scheme, path, port or www./m./l. prefix. */
function hostOf(source) {
  let s = String(source ?? "").trim().toLowerCase();
  s = s.replace(/^[a-z][a-z0-9+.-]*:\/\//, "").replace(/[/?#].*$/, "").replace(/:\d+$/, "");
  return s.replace(/^(www|m|l|lm|mobile)\./, "");
}

/** The site a source names: a known search, social or video site by its list name (bing,
 * www.bing.com and bing.co.uk are all "bing"), any other host without www. and the like. */
export function sourceSite(source) {
  const host = hostOf(source);
  for (const sites of [SEARCH, SOCIAL, VIDEO]) {
    const site = sites.find((s) => isSite(host, [s]));
    if (site) return site;
  }
  return host;
}

/** Whether a host is one of `sites`: a bare name matches any label (google.co.uk, news.google.com),
 * a dotted one the host or its parent domains (t.co, search.brave.com). */
function isSite(host, sites) {
  const labels = host.split(".");
  return sites.some((site) => (site.includes(".")
    ? host === site || host.endsWith(`.${site}`)
    : labels.slice(0, -1).includes(site) || host === site));
}

/** The default channel group of a session's source and medium (first matching rule wins). */
export function channelGroup(source, medium) {
  const host = hostOf(source);
  const m = String(medium ?? "").trim().toLowerCase();
  const none = m === "" || m === "(none)" || m === "(not set)";
  const paid = PAID.test(m);
  if (host === "(direct)" && none) return "Direct";
  if (isSite(host, SEARCH) && paid) return "Paid Search";
  if ((isSite(host, SOCIAL) || host === "social") && paid) return "Paid Social";
  if (isSite(host, VIDEO) && paid) return "Paid Video";
  if (DISPLAY.has(m)) return "Display";
  if (paid) return "Paid Other";
  if (isSite(host, SOCIAL) || host === "social" || SOCIAL_MEDIUMS.has(m)) return "Organic Social";
  if (isSite(host, VIDEO) || m === "video") return "Organic Video";
  if (isSite(host, SEARCH) || m === "organic") return "Organic Search";
  if (EMAIL.has(host) || EMAIL.has(m)) return "Email";
  if (m === "affiliate") return "Affiliates";
  if (m === "referral" || m === "app" || m === "link") return "Referral";
  if (host === "sms" || m === "sms") return "SMS";
  if (m.endsWith("push") || m.includes("mobile") || m.includes("notification")) return "Mobile Push";
  if (none && OFFLINE[host]) return OFFLINE[host];
  return "Unassigned";
}

/** Split an attribution key "source / medium" (by=source_medium) at its last " / ". */
export function splitSourceMedium(key) {
  const k = String(key ?? "");
  const i = k.lastIndexOf(" / ");
  return i < 0 ? [k, ""] : [k.slice(0, i), k.slice(i + 3)];
}

/** Attribution rows by source / medium summed per channel group or per source site. */
export function regroup(rows, by) {
  const sums = new Map();
  for (const r of rows) {
    const [source, medium] = splitSourceMedium(r.key);
    const key = by === "group" ? channelGroup(source, medium) : sourceSite(source);
    sums.set(key, (sums.get(key) || 0) + (r.credit || 0));
  }
  const order = (k) => (by === "group" ? GROUPS.indexOf(k) : 0);
  return [...sums].map(([key, credit]) => ({ key, credit: Math.round(credit * 1e9) / 1e9 }))
    .sort((a, b) => b.credit - a.credit || order(a.key) - order(b.key) || (a.key < b.key ? -1 : 1));
}
