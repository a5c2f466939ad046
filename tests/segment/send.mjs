// Sends track, identify, page and a multi-message batch to Candor through the official
// @segment/analytics-node client, pointed at Candor with nothing else changed.
// Usage: node send.mjs <host> <writeKey>
import { Analytics } from '@segment/analytics-node'

const [host, writeKey] = process.argv.slice(2)
if (!host || !writeKey) {
  console.error('usage: node send.mjs <host> <writeKey>')
  process.exit(2)
}

const failures = []
const analytics = new Analytics({ writeKey, host, maxEventsInBatch: 3, flushInterval: 200, maxRetries: 1 })
analytics.on('error', (err) => failures.push(String(err && (err.reason || err.message || err))))
analytics.on('http_request', (req) => console.log(`${req.method} ${req.url}`))

analytics.identify({ userId: 'seg-user-1', traits: { email: 'seg-user-1@example.com', favorite_category: 'garden' } })
analytics.track({ userId: 'seg-user-1', event: 'Product Viewed', properties: { product_id: 'SKU-7', price: 19.5, color: 'green' } })
analytics.page({ userId: 'seg-user-1', name: 'Home', properties: { url: 'https://shop.example/' } })
// These three flush together as one /v1/batch request (maxEventsInBatch: 3).
for (const sku of ['SKU-1', 'SKU-2', 'SKU-3']) {
  analytics.track({ userId: 'seg-user-1', event: 'Product Viewed', properties: { product_id: sku } })
}

await analytics.closeAndFlush({ timeout: 10000 })
if (failures.length) {
  console.error('delivery failed:', failures.join('; '))
  process.exit(1)
}
console.log('delivered')
