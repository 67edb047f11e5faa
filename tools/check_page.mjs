// Load an HTML page in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core)
// and report what it logged. Usage: node check_page.mjs FILE_OR_URL [READY_SELECTOR] [SCREENSHOT.png] [ELEMENT]
// Waits for READY_SELECTOR (default: none) up to 60 s, then prints one JSON object
// (with ELEMENT, a CSS selector, the screenshot is of that element alone, taken after 2 s to let it draw):
// {"ready": bool, "ms": n, "messages": [{"type", "text"}...]} where type is a console level,
// "pageerror" (uncaught exception) or "requestfailed".
import { collect, launch, pageUrl } from './browser.mjs';

const [target, ready, shot, element] = process.argv.slice(2);
const url = pageUrl(target);
const browser = await launch();
const messages = [];
let ok = false;
const t0 = Date.now();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  collect(page, messages);
  await page.goto(url, { waitUntil: 'load', timeout: 60000 });
  if (ready) await page.waitForSelector(ready, { timeout: 60000, state: 'attached' });
  ok = true;
  if (shot && element) {
    await page.waitForTimeout(2000);
    await page.locator(element).screenshot({ path: shot });
  } else if (shot) await page.screenshot({ path: shot, fullPage: true });
} catch (e) {
  messages.push({ type: 'timeout', text: String(e).slice(0, 500) });
} finally {
  await browser.close();
}
console.log(JSON.stringify({ ready: ok, ms: Date.now() - t0, messages }));
