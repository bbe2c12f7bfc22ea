// Drives the supervisor's console in Debian's headless Chromium: signs in,
// visits every page in English and Simplified Chinese, checks each with
// axe-core (WCAG 2.1 AA), reassigns a callback through the page, and saves
// screenshots. Prints what it saw as JSON lines; tests/tests/console.rs asserts.
// Usage: node console.mjs <base-url> <admin-token> <screenshot-dir>
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const [base, token, dir] = process.argv.slice(2);
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

async function audit(page) {
  await page.addScriptTag({ content: axeSource });
  const result = await page.evaluate(() => window.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
  }));
  return result.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

try {
  // The pages forbid every script (CSP); the audit's own script is let in.
  const context = await browser.newContext({ bypassCSP: true });
  const page = await context.newPage();
  await page.goto(`${base}/`);
  console.log(JSON.stringify({ step: 'root', url: page.url(), violations: await audit(page) }));
  await page.fill('#token', token);
  await page.click('button[type=submit]');
  await page.waitForSelector('nav');
  for (const lang of ['en', 'zh-Hans']) {
    const firstTask = await (async () => {
      await page.goto(`${base}/console/callbacks`);
      return page.locator('tbody th a').first().getAttribute('href');
    })();
    for (const [name, path] of [['overview', '/console'], ['surveys', '/console/surveys?day=2026-12-04&x=1'],
      ['answers', '/console/answers?from=2026-12-01&to=2026-12-04'], ['callbacks', '/console/callbacks'],
      ['task', firstTask.split('?')[0]],
      ['findings', '/console/findings'], ['outbox', '/console/outbox'], ['settings', '/console/settings']]) {
      await page.goto(`${base}${path}${path.includes('?') ? '&' : '?'}lang=${lang}`);
      const violations = await audit(page);
      await page.screenshot({ path: `${dir}/console-${name}-${lang}.png`, fullPage: true });
      console.log(JSON.stringify({ step: 'page', name, lang, htmlLang: await page.getAttribute('html', 'lang'), violations }));
    }
  }
  // The survey page from the outbox: audited, then answered with the keyboard alone.
  await page.goto(`${base}/console/outbox?lang=en`);
  // The first link in the outbox whose survey is still open (some were answered above).
  const links = await page.locator('tbody a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  let survey = null;
  for (const link of links.filter((l) => l && l.includes('/s/'))) {
    survey = new URL(link);
    await page.goto(`${base}${survey.pathname}`);
    if ((await page.locator('.scale label').count()) > 0) break;
  }
  const surveyViolations = await audit(page);
  await page.screenshot({ path: `${dir}/survey-page.png`, fullPage: true });
  // Both ends of the scale are named, for the eye and for a screen reader.
  const ends = await page.locator('.ends span').allTextContents();
  const options = await page.locator('.scale label').allTextContents();
  const firstOption = options[0] || (await page.textContent('body')).slice(0, 300);
  await page.keyboard.press('Tab'); // the first score
  await page.keyboard.press('ArrowRight'); // the next score: a radio group moves and selects with arrows
  const chosen = await page.evaluate(() => document.activeElement && document.activeElement.value);
  let focused = '';
  for (let i = 0; i < 30 && focused !== 'BUTTON'; i++) {
    await page.keyboard.press('Tab');
    focused = await page.evaluate(() => document.activeElement && document.activeElement.tagName);
  }
  await page.keyboard.press('Enter');
  // The next page replaces the scale (the POST goes to the same address,
  // so wait for the scale to go, not for a new URL).
  if (focused === 'BUTTON') await page.waitForSelector('.scale', { state: 'detached', timeout: 10000 });
  // A low score is asked for its reasons on a second step: audited, one
  // reason ticked with the keyboard, then sent.
  let reasons = null;
  if ((await page.locator('.reasons input').count()) > 0) {
    const violations = await audit(page);
    await page.screenshot({ path: `${dir}/survey-reasons.png`, fullPage: true });
    const labels = await page.locator('.reasons label').allTextContents();
    const yourScore = await page.textContent('form p strong');
    await page.keyboard.press('Tab'); // the first reason
    await page.keyboard.press('Space');
    const ticked = await page.evaluate(() => document.activeElement && document.activeElement.checked && document.activeElement.value);
    let atButton = '';
    for (let i = 0; i < 30 && atButton !== 'BUTTON'; i++) {
      await page.keyboard.press('Tab');
      atButton = await page.evaluate(() => document.activeElement && document.activeElement.tagName);
    }
    await page.keyboard.press('Enter');
    if (atButton === 'BUTTON') await page.waitForSelector('form', { state: 'detached', timeout: 10000 });
    reasons = { labels, yourScore, ticked, violations };
  }
  console.log(JSON.stringify({ step: 'survey', reasons, path: survey.pathname, chosen, reachedButton: focused === 'BUTTON', ends, firstOption,
    violations: surveyViolations, after: (await page.textContent('body')).slice(0, 200) }));

  // Send now, then cancel, a planned survey through its buttons (due on the day given).
  await page.goto(`${base}/console/surveys?day=${process.env.PLANNED_DAY || '2026-12-07'}&lang=en`);
  await page.locator('tbody tr').first().locator('form[action*="/send"] button').click();
  await page.waitForSelector('.notice');
  const sendNotice = await page.textContent('.notice');
  await page.locator('tbody tr').first().locator('form[action*="/cancel"] button').click();
  await page.waitForSelector('.notice');
  console.log(JSON.stringify({ step: 'survey-actions', sendNotice, cancelNotice: await page.textContent('.notice') }));

  // Reassign the first callback to agent-9 through its form.
  await page.goto(`${base}/console/callbacks?lang=en`);
  const row = page.locator('tbody tr').first();
  const action = await row.locator('form').getAttribute('action');
  await row.locator('input[name=owner]').fill('agent-9');
  await row.locator('form button').click();
  await page.waitForSelector('.notice');
  console.log(JSON.stringify({ step: 'reassigned', action, notice: await page.textContent('.notice') }));
} finally {
  await browser.close();
}
