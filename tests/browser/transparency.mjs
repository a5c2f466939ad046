// Drives /reports/transparency/YEAR in headless Chromium: axe-core (WCAG 2.x A and AA), the
// consent chart drew one bar per purpose with its figures as text, no console errors or CSP
// violations, no horizontal scrolling at 320px, and screenshots for people to look at.
//
// Usage: node transparency.mjs BASE_URL YEAR OUT_DIR   (exits 1 and prints every failure)

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';

const [base, year, outDir] = process.argv.slice(2);
if (!base || !year || !outDir) {
  console.error('usage: node transparency.mjs BASE_URL YEAR OUT_DIR');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });
const failures = [];
const fail = (msg) => failures.push(msg);
const url = `${base}/reports/transparency/${year}`;

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});

async function open(context, label) {
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') fail(`${label}: console error: ${m.text()}`); });
  page.on('pageerror', (e) => fail(`${label}: page error: ${e.message}`));
  page.on('response', (r) => { if (r.status() >= 400) fail(`${label}: ${r.status()} for ${r.url()}`); });
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`);
    });
  });
  const resp = await page.goto(url, { waitUntil: 'load' });
  if (resp.status() !== 200) fail(`${label}: ${url} answered ${resp.status()}`);
  return page;
}

try {
  const desktop = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await open(desktop, 'desktop');
  const axe = await new AxeBuilder({ page })
    .withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'])
    .analyze();
  if (axe.passes.length === 0) fail('axe ran no passing rule');
  for (const v of axe.violations) {
    fail(`axe ${v.id} (${v.impact}): ${v.help}\n    ${v.nodes.map((n) => n.target.join(' ')).join('\n    ')}`);
  }
  console.log(`axe: ${axe.passes.length} rules passed, ${axe.violations.length} violated`);
  const bars = await page.locator('svg.chart rect.bar').count();
  const rows = await page.locator('table.report-table').first().locator('tbody tr').count();
  if (bars === 0 || bars > rows) fail(`the consent chart drew ${bars} bars for ${rows} purposes`);
  const width = await page.locator('svg.chart rect.bar').first().evaluate((r) => r.getBBox().width);
  if (!(width > 0)) fail('the first bar has no width');
  const chartText = await page.locator('svg.chart').textContent();
  if (!/%/.test(chartText)) fail('the chart does not carry its figures as text');
  if (!(await page.getByText('No records of rights requests for this period.').isVisible())) {
    fail('the rights section does not say it has no records');
  }
  if (!(await page.getByText("This report's signature matches its stored text.").isVisible())) {
    fail('the signature check is not shown');
  }
  for (const v of await page.evaluate(() => window.__csp)) fail(`desktop: CSP violation: ${v}`);
  await page.screenshot({ path: join(outDir, 'transparency.png'), fullPage: true });

  const mobile = await browser.newContext({ viewport: { width: 320, height: 640 } });
  const small = await open(mobile, 'mobile');
  const overflow = await small.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  if (overflow > 0) fail(`at 320px the page scrolls sideways by ${overflow}px`);
  await small.screenshot({ path: join(outDir, 'transparency-mobile.png'), fullPage: true });
} finally {
  await browser.close();
}

if (failures.length) {
  console.error(failures.join('\n'));
  process.exit(1);
}
console.log('transparency report: all browser checks passed');
