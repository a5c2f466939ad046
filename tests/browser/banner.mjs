// Runs the consent banner (/consent.js) on a shop page in headless Chromium: equal first-layer
// buttons, nothing pre-ticked, a modal dialog that traps focus and works by keyboard alone, axe
// on every layer, Global Privacy Control off and on, and the decisions with their notice-hash
// proof read back from the API.
//
// Usage: node banner.mjs BASE_URL SITE_KEY RIGHTS_KEY OUT_DIR

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';

const [base, siteKey, rightsKey, outDir] = process.argv.slice(2);
if (!outDir) { console.error('usage: node banner.mjs BASE_URL SITE_KEY RIGHTS_KEY OUT_DIR'); process.exit(2); }
mkdirSync(outDir, { recursive: true });
const SHOP = 'http://shop.localhost';
const failures = [];
const fail = (m) => failures.push(m);
const shopPage = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title></head>
<body><main><h1>A shop</h1><p><a href="/cart">Cart</a></p></main>
<script src="${base}/consent.js" data-site-key="${siteKey}" data-lang="en" defer></script></body></html>`;
const exportOf = async (id) => (await (await fetch(`${base}/v1/subjects/${id}/export`, { headers: { authorization: `Bearer ${rightsKey}` } })).json());
const config = await (await fetch(`${base}/v1/banner/config?lang=en`)).json();

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-features=BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights,LocalNetworkAccessChecks'] });

async function visit(anon, { gpc }) {
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  await ctx.route(`${SHOP}/**`, (r) => r.fulfill({ contentType: 'text/html', body: shopPage }));
  await ctx.addCookies([{ name: 'ajs_anonymous_id', value: encodeURIComponent(JSON.stringify(anon)), url: SHOP }]);
  if (gpc) await ctx.addInitScript(() => Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { get: () => true }));
  const page = await ctx.newPage();
  page.on('pageerror', (e) => fail(`${anon}: page error ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') fail(`${anon}: console ${m.text()}`); });
  await page.goto(`${SHOP}/`);
  try { await page.waitForSelector('[role=dialog]', { timeout: 8000 }); } catch (e) { console.error(failures.join('\n')); throw e; }
  return [ctx, page];
}

async function axe(page, label) {
  const r = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']).analyze();
  for (const v of r.violations) fail(`${label}: axe ${v.id}: ${v.help} ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  console.log(`${label}: axe ${r.passes.length} passed, ${r.violations.length} violated`);
}
const decided = (page) => page.evaluate(() => new Promise((ok) => document.addEventListener('candor:consent', (e) => ok(e.detail), { once: true })));
const states = (doc) => Object.fromEntries(doc.consents.map((c) => [c.purpose, c.state]));

try {
  // 1. GPC off: equal buttons, focus trapped, Reject all by keyboard alone.
  {
    const [ctx, page] = await visit('anon-reject', { gpc: false });
    const dialog = page.locator('[role=dialog]');
    if ((await dialog.getAttribute('aria-modal')) !== 'true') fail('the dialog is not aria-modal');
    const looks = await page.$$eval('[data-action]', (bs) => bs.map((b) => { const s = getComputedStyle(b); const r = b.getBoundingClientRect();
      return [b.dataset.action, Math.round(r.width), Math.round(r.height), s.backgroundColor, s.color, s.fontWeight, s.fontSize].join(' '); }));
    const same = new Set(looks.map((l) => l.split(' ').slice(1).join(' ')));
    if (looks.length !== 3 || same.size !== 1) fail(`first-layer buttons differ: ${looks.join(' | ')}`);
    if (await page.locator('[data-candor-gpc]').count()) fail('a GPC note without GPC');
    await axe(page, 'banner');
    await page.screenshot({ path: join(outDir, 'banner.png') });
    for (let i = 0; i < 8; i++) {
      await page.keyboard.press('Tab');
      if (!(await page.evaluate(() => !!document.activeElement.closest('[role=dialog]')))) fail(`Tab ${i + 1} left the dialog`);
    }
    // Focus is on a first-layer button: move to Reject all and press Enter.
    for (let i = 0; i < 4 && (await page.evaluate(() => document.activeElement.dataset.action)) !== 'reject_all'; i++) await page.keyboard.press('Tab');
    const done = decided(page);
    await page.keyboard.press('Enter');
    await done;
    if (await page.locator('[role=dialog]').count()) fail('the dialog stayed open after Reject all');
    const doc = await exportOf('anon-reject');
    const s = states(doc);
    for (const p of config.purposes) if (s[p.id] !== 'denied') fail(`reject all left ${p.id} ${s[p.id]}`);
    const proofs = doc.consent_history.map((r) => r.proof_notice_hash);
    if (!proofs.length || proofs.some((h) => h !== config.notice_hash)) fail(`proof hashes ${proofs} != ${config.notice_hash}`);
    await page.reload();
    await page.waitForTimeout(300);
    if (await page.locator('[role=dialog]').count()) fail('asked again although this version was answered');
    await ctx.close();
  }
  // 2. Choose: nothing pre-ticked; one purpose allowed.
  {
    const [ctx, page] = await visit('anon-choose', { gpc: false });
    await page.click('[data-action=choose]');
    const ticked = await page.$$eval('[role=dialog] input[type=checkbox]', (bs) => bs.filter((b) => b.checked).length);
    if (ticked !== 0) fail(`${ticked} boxes pre-ticked`);
    await axe(page, 'banner second layer');
    await page.check('#candor-purpose-analytics');
    await page.screenshot({ path: join(outDir, 'banner-choose.png') });
    const done = decided(page);
    await page.click(`text=${config.save}`);
    await done;
    const s = states(await exportOf('anon-choose'));
    if (s.analytics !== 'granted' || s.personalization !== 'denied' || s.ads_sharing !== 'denied') fail(`choose recorded ${JSON.stringify(s)}`);
    await ctx.close();
  }
  // 3. GPC on: said so; Accept all keeps sale/sharing off.
  {
    const [ctx, page] = await visit('anon-gpc', { gpc: true });
    if (!(await page.locator('[data-candor-gpc]').isVisible())) fail('GPC is not shown as honoured');
    await axe(page, 'banner gpc');
    await page.screenshot({ path: join(outDir, 'banner-gpc.png') });
    const done = decided(page);
    await page.click('[data-action=accept_all]');
    const result = await done;
    if (!result.overridden_by_signal.includes('ads_sharing')) fail(`GPC did not override ads_sharing: ${JSON.stringify(result)}`);
    const s = states(await exportOf('anon-gpc'));
    if (s.ads_sharing !== 'denied' || s.personalization !== 'granted') fail(`gpc accept recorded ${JSON.stringify(s)}`);
    await ctx.close();
  }
} finally {
  await browser.close();
}
if (failures.length) { console.error(`${failures.length} failure(s):\n- ${failures.join('\n- ')}`); process.exit(1); }
console.log('ok: banner');
