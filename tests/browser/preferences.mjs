// Drives the preference center in headless Chromium, from a real signed link: axe-core (WCAG 2.0,
// 2.1, 2.2 A and AA) on every page and state, the whole page by keyboard alone (withdrawing
// consent with the arrow keys and Enter, then the very next recommendation API call is
// non-personal), a quiet period honoured by the API, the export downloaded and parsed, the page
// without JavaScript, erasure with its confirmation, the refused-link page, and screenshots in
// English, German and French.
//
// Usage: node preferences.mjs BASE_URL LINK OUT_DIR CUSTOMER_ID RECOMMEND_KEY RIGHTS_KEY

import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';

const [base, link, outDir, cust, recommendKey, rightsKey] = process.argv.slice(2);
if (!rightsKey) {
  console.error('usage: node preferences.mjs BASE_URL LINK OUT_DIR CUSTOMER_ID RECOMMEND_KEY RIGHTS_KEY');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });
const failures = [];
const fail = (msg) => failures.push(msg);
const api = async (path, key) => {
  const r = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${key}` } });
  return [r.status, await r.json()];
};
const recommendation = async () => (await api(`/v1/recommendations/${cust}?surface=home`, recommendKey))[1];

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});

// Statuses a page may answer with on purpose (the refused link, the 422 form); anything else
// >= 400, console errors other than those loads, and CSP violations fail the run.
function watch(page, label, expected = []) {
  page.on('console', (m) => {
    if (m.type() === 'error' && !expected.some((s) => m.text().includes(`status of ${s}`))) fail(`${label}: console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => fail(`${label}: page error: ${e.message}`));
  page.on('response', (r) => { if (r.status() >= 400 && !expected.includes(r.status())) fail(`${label}: ${r.status()} for ${r.url()}`); });
  return page;
}

async function axe(page, label) {
  const result = await new AxeBuilder({ page })
    .withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'])
    .analyze();
  if (result.passes.length === 0) fail(`${label}: axe ran no passing rule`);
  for (const v of result.violations) {
    fail(`${label}: axe ${v.id} (${v.impact}): ${v.help}\n    ${v.nodes.map((n) => n.target.join(' ')).join('\n    ')}`);
  }
  console.log(`${label}: axe ${result.passes.length} passed, ${result.violations.length} violated`);
}

const focused = (page) => page.evaluate(() => {
  const el = document.activeElement;
  const s = getComputedStyle(el);
  const r = el.getBoundingClientRect();
  return {
    tag: el.tagName.toLowerCase(), id: el.id, name: el.getAttribute('name') || '', value: el.value || '',
    type: el.getAttribute('type') || '', text: (el.textContent || '').trim().slice(0, 60),
    outline: s.outlineStyle, outlineWidth: parseFloat(s.outlineWidth),
    visible: r.width > 0 && r.height > 0,
  };
});

async function tabTo(page, pred, label, limit = 300) {
  for (let i = 0; i < limit; i++) {
    await page.keyboard.press('Tab');
    const f = await focused(page);
    if (f.tag !== 'body' && (!f.visible || f.outline === 'none' || f.outlineWidth < 2)) fail(`${label}: focus not visible on ${JSON.stringify(f)}`);
    if (pred(f)) return f;
  }
  fail(`${label}: Tab never reached the wanted control`);
  return null;
}

try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-GB', acceptDownloads: true });
  const page = watch(await ctx.newPage(), 'en');

  // 1. The real link: cookie set, then a clean URL without the token.
  await page.goto(link);
  await page.waitForURL(/\/preferences\?lang=en$/);
  if (page.url().includes('token')) fail(`the token stayed in the URL: ${page.url()}`);
  const cookie = (await ctx.cookies()).find((c) => c.name === 'candor_pc');
  if (!cookie || !cookie.httpOnly || cookie.sameSite !== 'Strict') fail(`session cookie is not HttpOnly+Strict: ${JSON.stringify(cookie)}`);
  if (await page.evaluate(() => document.cookie.includes('candor_pc'))) fail('the session cookie is readable from script');
  await axe(page, 'en');

  // 2. The whole page by keyboard: every stop shows focus until focus leaves the page.
  let stops = 0;
  for (; stops < 300; stops++) {
    await page.keyboard.press('Tab');
    const f = await focused(page);
    if (f.tag === 'body') break;
    if (!f.visible || f.outline === 'none' || f.outlineWidth < 2) fail(`focus not visible on ${JSON.stringify(f)}`);
  }
  console.log(`keyboard: ${stops} focus stops, all visible`);

  // 3. Withdraw personalization by keyboard alone, then the very next API answer is non-personal.
  const before = await recommendation();
  if (before.level_applied === 'off') fail(`the customer starts non-personal already: ${JSON.stringify(before.filters)}`);
  await page.goto(`${base}/preferences?lang=en`);
  await tabTo(page, (f) => f.name === 'purpose.personalization', 'withdraw');
  // In a radio group the arrow keys move and select; "Don't allow" follows "Allow".
  let f = await focused(page);
  for (let i = 0; i < 2 && f.value !== 'deny'; i++) { await page.keyboard.press('ArrowRight'); f = await focused(page); }
  if (f.value !== 'deny') fail(`arrow keys did not reach "Don't allow": ${JSON.stringify(f)}`);
  await tabTo(page, (g) => g.tag === 'button' && g.text === 'Save my choices', 'save');
  await Promise.all([page.waitForURL(/done=saved/), page.keyboard.press('Enter')]);
  const notice = await page.getByRole('status').textContent();
  if (!notice.includes('Saved')) fail(`no confirmation after saving: ${notice}`);
  const after = await recommendation();
  if (after.level_applied !== 'off') fail(`after withdrawing, the next recommendation is ${after.level_applied}: ${JSON.stringify(after.filters)}`);
  if (after.items.some((i) => i.data_categories.length > 0)) fail('personal data used after withdrawal');
  await axe(page, 'en saved');
  await page.screenshot({ path: join(outDir, 'preferences-en.png'), fullPage: true });

  // 4. A quiet period from today: the API honours it at once.
  const today = new Date().toISOString().slice(0, 10);
  const yesterday = new Date(Date.now() - 86400000).toISOString().slice(0, 10);
  await page.selectOption('#quiet-occasion', 'mothers_day');
  await page.fill('#quiet-from', today);
  await page.fill('#quiet-until', today);
  await Promise.all([page.waitForURL(/done=saved/), page.click('text=Add quiet period')]);
  const quiet = await recommendation();
  if (quiet.fallback !== 'quiet period') fail(`quiet period not honoured: ${JSON.stringify(quiet.filters)}`);

  // 5. A refused value: 422, the error beside its field, still accessible.
  const errPage = watch(await ctx.newPage(), 'en 422', [422]);
  await errPage.goto(`${base}/preferences?lang=en`);
  await errPage.fill('#quiet-from', today);
  await errPage.fill('#quiet-until', yesterday);
  const [resp] = await Promise.all([errPage.waitForResponse((r) => r.url().endsWith('/preferences/quiet')), errPage.click('text=Add quiet period')]);
  if (resp.status() !== 422) fail(`until before from answered ${resp.status()}`);
  const err = errPage.locator('#error-until');
  if (!(await err.isVisible())) fail('no error next to the until field');
  if ((await errPage.getAttribute('#quiet-until', 'aria-describedby')) !== 'error-until') fail('the field does not point at its error');
  await axe(errPage, 'en 422');
  await errPage.screenshot({ path: join(outDir, 'preferences-error.png'), fullPage: true });

  // 6. Download the export and parse it.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('text=Download my data (JSON)')]);
  const doc = JSON.parse(readFileSync(await download.path(), 'utf8'));
  if (doc.about?.subject_key !== quiet.subject_key) fail(`the export is not this customer's: ${JSON.stringify(doc.about)}`);
  if (!Array.isArray(doc.consent_history) || !doc.consent_history.some((r) => r.source === 'preference_center')) fail('the export lacks the page\'s consent records');

  // 7. German and French through the switcher; narrow screens must not scroll sideways.
  for (const [lang, name, heading] of [['de', 'Deutsch', 'Ihre Datenschutz-Einstellungen'], ['fr', 'Français', 'Vos choix de confidentialité']]) {
    await page.goto(`${base}/preferences?lang=en`);
    await Promise.all([page.waitForURL(new RegExp(`lang=${lang}`)), page.click(`.languages a[lang=${lang}]`)]);
    if ((await page.getAttribute('html', 'lang')) !== lang) fail(`${name}: html lang is not ${lang}`);
    if ((await page.locator('h1').textContent()) !== heading) fail(`${name}: heading not translated`);
    await axe(page, lang);
    await page.screenshot({ path: join(outDir, `preferences-${lang}.png`), fullPage: true });
  }
  for (const lang of ['en', 'de', 'fr']) {
    const mobile = await browser.newContext({ viewport: { width: 320, height: 640 }, deviceScaleFactor: 2 });
    await mobile.addCookies([cookie]);
    const small = watch(await mobile.newPage(), `${lang} mobile`);
    await small.goto(`${base}/preferences?lang=${lang}`);
    const overflow = await small.evaluate(() => document.documentElement.scrollWidth - innerWidth);
    if (overflow > 0) {
      const wide = await small.evaluate(() => [...document.querySelectorAll('main *, header *')]
        .filter((e) => e.getBoundingClientRect().right > innerWidth + 0.5)
        .slice(0, 5).map((e) => `${e.tagName.toLowerCase()}.${e.className} ${Math.round(e.getBoundingClientRect().right)}px`));
      fail(`${lang}: at 320px the page is ${overflow}px wider than the screen: ${wide.join(', ')}`);
    }
    await small.setViewportSize({ width: 375, height: 812 });
    await small.screenshot({ path: join(outDir, `preferences-${lang}-mobile.png`), fullPage: true });
    await mobile.close();
  }

  // 8. Without JavaScript the page works through plain forms (it has no script at all).
  const nojs = await browser.newContext({ javaScriptEnabled: false });
  const plain = watch(await nojs.newPage(), 'no-js');
  await plain.goto(link);
  await plain.waitForURL(/\/preferences\?lang=en$/);
  await plain.check('input[name="purpose.personalization"][value="grant"]');
  await Promise.all([plain.waitForURL(/done=saved/), plain.click('text=Save my choices')]);
  if ((await recommendation()).filters[0] !== 'consent for `personalization`: granted') fail('granting without JavaScript did not reach the API');
  await nojs.close();

  // 9. Erase, with the confirmation step; the subject's data is gone from the API.
  await page.goto(`${base}/preferences?lang=en`);
  await Promise.all([page.waitForURL(/\/preferences\/erase/), page.click('text=Erase my data')]);
  await axe(page, 'erase confirm');
  await page.screenshot({ path: join(outDir, 'preferences-erase.png'), fullPage: true });
  await page.click('text=Yes, erase my data');
  await page.waitForSelector('text=Your data has been erased.');
  const [status, left] = await api(`/v1/subjects/${cust}/export`, rightsKey);
  if (status !== 200 || left.events.length !== 0 || left.contact.length !== 0) fail(`data left after erasure: ${status} ${left.events?.length} events`);
  if ((await ctx.cookies()).some((c) => c.name === 'candor_pc')) fail('the session cookie outlived the erasure');

  // 10. A refused link: a plain page, accessible, that says how to get a new one.
  const bad = watch(await ctx.newPage(), 'link invalid', [401]);
  const r = await bad.goto(`${base}/preferences/open?token=1.${'0'.repeat(64)}.1.${'0'.repeat(64)}`);
  if (r.status() !== 401) fail(`a forged link answered ${r.status()}`);
  await axe(bad, 'link invalid');
  await bad.screenshot({ path: join(outDir, 'preferences-link-invalid.png'), fullPage: true });
} finally {
  await browser.close();
}

if (failures.length) {
  console.error(`${failures.length} failure(s):\n- ${failures.join('\n- ')}`);
  process.exit(1);
}
console.log(`ok: preference center at ${base}, screenshots in ${outDir}`);
