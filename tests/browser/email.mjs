// Renders a survey e-mail's HTML part in Debian's headless Chromium, checks it
// with axe-core, takes a screenshot, then taps one rating button and reports
// the survey page it opened. The Rust test (tests/tests/issuer.rs) asserts.
// Usage: node email.mjs <email.html> <screenshot.png> <score to tap>
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const [file, shot, score] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const context = await browser.newContext({ bypassCSP: true, viewport: { width: 600, height: 700 } });
  const page = await context.newPage();
  const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  await page.setContent(readFileSync(file, 'utf8'));
  await page.addScriptTag({ content: axeSource });
  const audit = await page.evaluate(() => window.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
  }));
  const violations = audit.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  await page.screenshot({ path: shot, fullPage: true });
  const buttons = await page.locator('a[href*="?score="]').allTextContents();
  const lang = await page.getAttribute('html', 'lang');
  // Each button must be wide enough to tap (WCAG 2.5.8: at least 24 px).
  const narrowest = Math.min(...(await page.locator('a[href*="?score="]').evaluateAll(
    (as) => as.map((a) => Math.min(a.getBoundingClientRect().width, a.getBoundingClientRect().height)))));
  await Promise.all([page.waitForURL(/\/s\//), page.click(`a[href$="?score=${score}"]`)]);
  const checked = await page.evaluate(() => {
    const r = document.querySelector('input[name=score]:checked');
    return r && r.value;
  });
  const reasons = await page.locator('input[name=reasons]').count();
  console.log(JSON.stringify({ step: 'email', lang, buttons, narrowest, violations, opened: new URL(page.url()).pathname + new URL(page.url()).search, checked, reasons }));
} finally {
  await browser.close();
}
