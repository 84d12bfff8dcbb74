// Drives @segment/analytics-node against a journey collector: node segment.js HOST WRITE_KEY IDS_JSON
// IDS_JSON = {"user", "anon", "email", "group"}. Exits non-zero if the SDK reports a failed delivery.
'use strict';
const { Analytics } = require('@segment/analytics-node');

async function main() {
  const [host, writeKey, idsJson] = process.argv.slice(2);
  const ids = JSON.parse(idsJson);
  // flushAt 5 puts the five calls in one batch; maxRetries is the SDK's own retry loop.
  const analytics = new Analytics({ writeKey, host, flushAt: 5, flushInterval: 200, maxRetries: 5 });
  const failures = [];
  analytics.on('error', (err) => failures.push(String(err && (err.reason || err.message || err))));
  const userId = ids.user;
  analytics.identify({ userId, anonymousId: ids.anon, traits: { email: ids.email, plan: 'pro', name: 'Ada' } });
  analytics.track({ userId, event: 'Product Viewed', properties: { sku: 'SKU-1', price: 19.5 } });
  analytics.page({ userId, name: 'Pricing', properties: { url: 'https://shop.example/pricing' } });
  analytics.group({ userId, groupId: ids.group, traits: { name: 'Acme' } });
  analytics.alias({ userId, previousId: ids.anon });
  await analytics.closeAndFlush({ timeout: 30000 });
  if (failures.length) {
    console.error(JSON.stringify(failures));
    process.exit(1);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
