// Drives /privacy in headless Chromium: axe-core (WCAG 2.0, 2.1 and 2.2 A and AA rules; axe tags
// no 2.2 rule as level A), the purposes the API lists are visible, keyboard focus is visible and
// the skip link reaches <main>, no console errors or CSP violations, no horizontal scrolling at
// 320px, and screenshots for people to look at.
//
// Usage: node privacy.mjs BASE_URL OUT_DIR   (exits 1 and prints every failure)

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';

const [base, outDir] = process.argv.slice(2);
if (!base || !outDir) {
  console.error('usage: node privacy.mjs BASE_URL OUT_DIR');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

const failures = [];
const fail = (msg) => failures.push(msg);

const listed = await (await fetch(`${base}/v1/purposes`)).json();
if (!Array.isArray(listed) || listed.length === 0) {
  fail('GET /v1/purposes lists no purposes; declare some first, or this test checks nothing');
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});

// Console errors (Chromium reports CSP refusals there too), page errors, failed loads, and CSP
// violation events, gathered for every page opened.
async function open(context, label) {
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') fail(`${label}: console error: ${m.text()}`); });
  page.on('pageerror', (e) => fail(`${label}: page error: ${e.message}`));
  page.on('response', (r) => { if (r.status() >= 400) fail(`${label}: ${r.status()} for ${r.url()}`); });
  page.on('requestfailed', (r) => fail(`${label}: request failed: ${r.url()} ${r.failure()?.errorText}`));
  // Injected by the driver, not the page, so the page's CSP does not apply to it.
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`);
    });
  });
  const resp = await page.goto(`${base}/privacy`, { waitUntil: 'load' });
  if (resp.status() !== 200) fail(`${label}: /privacy answered ${resp.status()}`);
  const csp = resp.headers()['content-security-policy'];
  if (!csp || !csp.includes("default-src 'none'")) fail(`${label}: no strict CSP header: ${csp}`);
  return page;
}

async function cspViolations(page, label) {
  for (const v of await page.evaluate(() => window.__csp)) fail(`${label}: CSP violation: ${v}`);
}

try {
  // Desktop
  const desktop = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await open(desktop, 'desktop');

  const styled = await page.evaluate(() => getComputedStyle(document.querySelector('.site-header')).backgroundColor);
  if (styled === 'rgba(0, 0, 0, 0)') fail('the stylesheet did not apply (header has no background)');

  const axe = await new AxeBuilder({ page })
    .withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'])
    .analyze();
  if (axe.passes.length === 0) fail('axe ran no passing rule; it cannot have checked the page');
  for (const v of axe.violations) {
    fail(`axe ${v.id} (${v.impact}): ${v.help}\n    ${v.nodes.map((n) => n.target.join(' ')).join('\n    ')}`);
  }
  console.log(`axe: ${axe.passes.length} rules passed, ${axe.violations.length} violated, ${axe.incomplete.length} need review`);

  for (const p of Array.isArray(listed) ? listed : []) {
    const heading = page.getByRole('heading', { level: 3, name: p.title, exact: true });
    if (!(await heading.isVisible())) fail(`purpose "${p.title}" is not visible as a heading`);
  }

  // Keyboard: the first Tab shows the skip link; Enter moves focus into <main>; the next Tab lands
  // on main's first control, past the header.
  const focused = () => page.evaluate(() => {
    const el = document.activeElement;
    const s = getComputedStyle(el);
    const r = el.getBoundingClientRect();
    return {
      tag: el.tagName.toLowerCase(), id: el.id, text: (el.textContent || '').trim().slice(0, 60),
      inMain: !!el.closest('main'), outline: s.outlineStyle, outlineWidth: parseFloat(s.outlineWidth),
      visible: r.width > 0 && r.height > 0 && r.bottom > 0 && r.top < innerHeight && r.right > 0 && r.left < innerWidth,
    };
  });
  const showsFocus = (f) => f.visible && f.outline !== 'none' && f.outlineWidth >= 2;

  await page.keyboard.press('Tab');
  const skip = await focused();
  if (skip.text !== 'Skip to main content') fail(`first Tab focused ${JSON.stringify(skip)}, not the skip link`);
  if (!showsFocus(skip)) fail(`the focused skip link is not visibly focused: ${JSON.stringify(skip)}`);
  await page.keyboard.press('Enter');
  const target = await focused();
  if (target.id !== 'main') fail(`the skip link moved focus to ${JSON.stringify(target)}, not <main>`);
  await page.keyboard.press('Tab');
  const first = await focused();
  if (!first.inMain) fail(`Tab after the skip link focused ${JSON.stringify(first)}, outside <main>`);

  // Every further stop until focus leaves the page shows where it is.
  let stops = 1;
  for (let f = first; stops < 200; stops++) {
    if (!showsFocus(f)) fail(`focus is not visible on ${JSON.stringify(f)}`);
    await page.keyboard.press('Tab');
    f = await focused();
    if (f.tag === 'body' || f.text === 'Skip to main content') break;
  }
  console.log(`keyboard: ${stops} focus stops after the skip link, all visible`);
  await page.keyboard.press('Home');
  await cspViolations(page, 'desktop');
  await page.screenshot({ path: join(outDir, 'privacy.png'), fullPage: true });

  // Narrow screens: nothing may need sideways scrolling at 320 CSS px (WCAG 1.4.10).
  const mobile = await browser.newContext({ viewport: { width: 320, height: 640 }, deviceScaleFactor: 2 });
  const small = await open(mobile, 'mobile');
  const overflow = await small.evaluate(() => document.documentElement.scrollWidth - innerWidth);
  if (overflow > 0) fail(`at 320px the page is ${overflow}px wider than the screen`);
  await small.setViewportSize({ width: 375, height: 812 });
  await cspViolations(small, 'mobile');
  await small.screenshot({ path: join(outDir, 'privacy-mobile.png'), fullPage: true });
} finally {
  await browser.close();
}

if (failures.length) {
  console.error(`${failures.length} failure(s):\n- ${failures.join('\n- ')}`);
  process.exit(1);
}
console.log(`ok: /privacy at ${base}, screenshots in ${outDir}`);
