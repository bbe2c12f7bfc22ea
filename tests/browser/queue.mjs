// Drives the agent's queue page in Debian's headless Chromium and prints what it
// saw as JSON lines; the Rust test (tests/tests/queue.rs) asserts on them.
// Usage: node queue.mjs <base-url> <agent-token> <screenshot.png>
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const [base, token, shot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  // The page forbids every script (CSP); the accessibility audit's own is let in.
  const context = await browser.newContext({ locale: 'zh-CN', bypassCSP: true });
  const page = await context.newPage();
  const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  const audit = async () => {
    await page.addScriptTag({ content: axeSource });
    const r = await page.evaluate(() => window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
    }));
    return r.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  };
  const scriptsRun = [];
  page.on('dialog', (d) => { scriptsRun.push(d.message()); d.dismiss(); });
  const names = (section) => page.$$eval(`#${section} li.task h3`, (els) => els.map((e) => e.textContent));

  await page.goto(`${base}/queue/page`);
  const loginLang = await page.getAttribute('html', 'lang');
  await page.fill('#token', token);
  await page.click('button[type=submit]');
  await page.waitForSelector('#now');
  const lang = await page.getAttribute('html', 'lang');
  const before = { now: await names('now'), later: await names('later') };
  const comments = await page.$$eval('#now blockquote', (els) => els.map((e) => e.textContent));
  const violations = await audit();
  console.log(JSON.stringify({ step: 'loaded', loginLang, lang, ...before, comments, violations }));

  // The queue as the shift starts (the most urgent task, with what the customer said, on top).
  await page.screenshot({ path: shot.replace(/\.png$/, '-start-zh.png'), fullPage: true });

  // Resolve the first (most urgent) task with the form on the page.
  const first = page.locator('#now li.task').first();
  const taskId = await first.getAttribute('data-task-id');
  await first.locator('input[name=resolution]').fill('replacement sent');
  // A repair names its root cause (the outer loop) and needs the customer's confirmation.
  const cause = first.locator('select[name=root_cause]');
  const isRepair = (await cause.count()) > 0;
  if (isRepair) await cause.selectOption('product_defect');
  await first.locator('input[name=customer_satisfied]').check();
  await first.locator('button[value=resolved]').click();
  await page.waitForSelector('.notice');
  const after = { now: await names('now'), later: await names('later') };
  const notice = await page.textContent('.notice');
  console.log(JSON.stringify({ step: 'resolved', taskId, isRepair, notice, ...after, scriptsRun }));

  await page.screenshot({ path: shot.replace(/\.png$/, '-zh.png'), fullPage: true });
  await page.goto(`${base}/queue/page?lang=en`);
  await page.screenshot({ path: shot, fullPage: true });
  console.log(JSON.stringify({ step: 'screenshot', lang: await page.getAttribute('html', 'lang') }));
} finally {
  await browser.close();
}
