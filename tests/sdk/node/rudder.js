// Drives @rudderstack/rudder-sdk-node against a journey collector: node rudder.js HOST WRITE_KEY IDS_JSON
// IDS_JSON = {"user", "anon", "email", "group"}. Exits non-zero if the SDK reports a failed delivery.
'use strict';
const Analytics = require('@rudderstack/rudder-sdk-node');

async function main() {
  const [host, writeKey, idsJson] = process.argv.slice(2);
  const ids = JSON.parse(idsJson);
  // The SDK's defaults (gzip on, axios-retry) are what is under test; flushAt 5 makes one batch.
  const client = new Analytics(writeKey, { dataPlaneUrl: host, flushAt: 5, flushInterval: 200 });
  const failures = [];
  const done = (err) => err && failures.push(String(err.message || err));
  const userId = ids.user;
  client.identify({ userId, anonymousId: ids.anon, traits: { email: ids.email, plan: 'pro', name: 'Ada' } }, done);
  client.track({ userId, event: 'Product Viewed', properties: { sku: 'SKU-1', price: 19.5 } }, done);
  client.page({ userId, name: 'Pricing', properties: { url: 'https://shop.example/pricing' } }, done);
  client.group({ userId, groupId: ids.group, traits: { name: 'Acme' } }, done);
  client.alias({ userId, previousId: ids.anon }, done);
  await client.flush();
  if (failures.length) {
    console.error(JSON.stringify(failures));
    process.exit(1);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
