// Drives the official browser tracking libraries, unchanged, in headless Chromium against a
// running Candor: Segment's analytics.js 2.0 (@segment/analytics-next, loading its settings
// from Candor as its CDN) and RudderStack's JavaScript SDK v3 (@rudderstack/analytics-js).
// The test pages are served by this script from another origin than Candor's, so every call
// is cross-origin and goes through CORS. `localhost` serves the same pages as an origin Candor
// does not allow.
// Usage: node track.mjs <candor base URL> <write key> <page port>
// Prints one line per request the pages made to Candor (`REQ METHOD URL STATUS`), then
// `RESULT <json>` with what each page saw.
import http from 'node:http'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import { chromium } from 'playwright-core'

const [candor, writeKey, pagePort] = process.argv.slice(2)
if (!candor || !writeKey || !pagePort) {
  console.error('usage: node track.mjs <candor base URL> <write key> <page port>')
  process.exit(2)
}
const here = path.dirname(fileURLToPath(import.meta.url))
const files = {
  '/ajs.js': 'node_modules/@segment/analytics-next/dist/umd/index.js',
  '/rudder.js': 'node_modules/@rudderstack/analytics-js/dist/npm/legacy/bundled/umd/index.js',
}
const page = (script) => `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>shop</title>
<script src="${script}"></script></head><body><h1>A shop page</h1></body></html>`

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x')
  if (files[url.pathname]) {
    res.writeHead(200, { 'content-type': 'text/javascript' })
    res.end(await readFile(path.join(here, files[url.pathname])))
  } else if (url.pathname === '/segment.html') {
    res.writeHead(200, { 'content-type': 'text/html' })
    res.end(page('/ajs.js'))
  } else if (url.pathname === '/rudder.html') {
    res.writeHead(200, { 'content-type': 'text/html' })
    res.end(page('/rudder.js'))
  } else {
    res.writeHead(404)
    res.end()
  }
})
await new Promise((ok) => server.listen(Number(pagePort), '127.0.0.1', ok))

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
})
const result = {}
const watch = (p) => {
  p.on('console', (m) => console.log(`console: ${m.text()}`))
  p.on('response', (r) => {
    if (r.url().startsWith(candor)) console.log(`REQ ${r.request().method()} ${r.url()} ${r.status()}`)
  })
  p.on('requestfailed', (r) => {
    if (r.url().startsWith(candor)) console.log(`REQ ${r.method()} ${r.url()} failed`)
  })
}
// Waits until `n` responses from Candor whose path matches `re` arrived (or times out).
const responses = (p, re, n) =>
  new Promise((ok) => {
    let seen = 0
    const done = setTimeout(() => ok(seen), 15000)
    p.on('response', (r) => {
      const u = new URL(r.url())
      if (r.url().startsWith(candor) && re.test(u.pathname) && r.request().method() === 'POST') {
        seen += 1
        if (seen === n) {
          clearTimeout(done)
          ok(seen)
        }
      }
    })
  })

async function segment(context, origin, user, batching) {
  const p = await context.newPage()
  watch(p)
  await p.goto(`${origin}/segment.html`)
  const delivered = responses(p, batching ? /^\/v1\/b$/ : /^\/v1\/[pit]$/, batching ? 1 : 3)
  const outcome = await p.evaluate(
    async ({ candor, writeKey, user, batching }) => {
      try {
        const options = { integrations: { 'Segment.io': {} } }
        if (batching) {
          options.integrations['Segment.io'].deliveryStrategy = {
            strategy: 'batching',
            config: { size: 3, timeout: 5000 },
          }
        }
        const [analytics] = await window.AnalyticsNext.AnalyticsBrowser.load(
          { writeKey, cdnURL: candor },
          options
        )
        if (batching) {
          await analytics.identify(user)
          for (const sku of ['SKU-B1', 'SKU-B2']) {
            analytics.track('Product Viewed', { product_id: sku })
          }
        } else {
          await analytics.identify(user, { favorite_category: 'garden' })
          await analytics.page('Home', { url: location.href })
          await analytics.track('Product Viewed', { product_id: 'SKU-1' })
        }
        return 'sent'
      } catch (e) {
        return `failed: ${e && e.message}`
      }
    },
    { candor, writeKey, user, batching }
  )
  const n = await delivered
  await p.close()
  return { outcome, delivered: n }
}

async function rudder(context, origin, user) {
  const p = await context.newPage()
  watch(p)
  await p.goto(`${origin}/rudder.html`)
  const delivered = responses(p, /^\/v1\/(page|identify|track)$/, 3)
  const outcome = await p.evaluate(
    ({ candor, writeKey, user }) =>
      new Promise((ok) => {
        const ra = new window.rudderanalytics.RudderAnalytics()
        ra.load(writeKey, candor, {
          getSourceConfig: () => ({
            source: { id: 'candor-test', name: 'shop', workspaceId: 'w', enabled: true, config: {}, destinations: [] },
          }),
          plugins: ['XhrQueue'],
          polyfillIfRequired: false,
          onLoaded: () => {
            ra.identify(user, { favorite_category: 'garden' })
            ra.page('Home', { url: location.href })
            ra.track('Product Viewed', { product_id: 'SKU-R1' })
            ok('sent')
          },
        })
        setTimeout(() => ok('not loaded'), 10000)
      }),
    { candor, writeKey, user }
  )
  const n = await delivered
  await p.close()
  return { outcome, delivered: n }
}

// A page of an origin that is not allowed: the simplest possible cross-origin POST (text/plain,
// no preflight), which browsers send without asking.
async function foreign(context, origin, user) {
  const p = await context.newPage()
  watch(p)
  await p.goto(`${origin}/segment.html`)
  const outcome = await p.evaluate(
    async ({ candor, writeKey, user }) => {
      try {
        await fetch(`${candor}/v1/t`, {
          method: 'POST',
          headers: { 'Content-Type': 'text/plain' },
          body: JSON.stringify({ writeKey, type: 'track', event: 'Product Viewed', userId: user, properties: { product_id: 'SKU-X' } }),
        })
        return 'readable'
      } catch (e) {
        return 'blocked'
      }
    },
    { candor, writeKey, user }
  )
  await p.close()
  return { outcome }
}

try {
  const allowed = `http://127.0.0.1:${pagePort}`
  const plain = await browser.newContext()
  result.segment = await segment(plain, allowed, 'ajs-1', false)
  result.segment_batching = await segment(plain, allowed, 'ajs-1', true)
  result.rudderstack = await rudder(plain, allowed, 'rs-1')
  result.foreign = await foreign(plain, `http://localhost:${pagePort}`, 'evil-1')
  const gpc = await browser.newContext({ extraHTTPHeaders: { 'Sec-GPC': '1' } })
  result.gpc = await segment(gpc, allowed, 'gpc-1', false)
} finally {
  await browser.close()
  server.close()
}
console.log(`RESULT ${JSON.stringify(result)}`)
