// Load an HTML page with one <model-viewer> in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core, as check_page.mjs) and report its animation. Usage: node check_animation.mjs FILE_OR_URL
// Waits up to 60 s for the element's load (or error) event, lets it play for 1 s, then prints one JSON object:
// {"loaded": bool, "animations": [names], "paused": bool, "currentTime": s, "duration": s,
//  "messages": [{"type", "text"}...]} where type is a console level, "pageerror", "requestfailed" or "timeout".
import { chromium } from 'playwright-core';
import { pathToFileURL } from 'node:url';
import { existsSync } from 'node:fs';

const [target] = process.argv.slice(2);
const url = existsSync(target) ? pathToFileURL(target).href : target;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--enable-unsafe-swiftshader', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const messages = [];
let result = { loaded: false };
try {
  const page = await browser.newPage({ viewport: { width: 640, height: 480 } });
  page.on('console', (m) => messages.push({ type: m.type(), text: m.text() }));
  page.on('pageerror', (e) => messages.push({ type: 'pageerror', text: String(e) }));
  page.on('requestfailed', (r) => messages.push({ type: 'requestfailed', text: r.url().slice(0, 200) }));
  await page.goto(url, { waitUntil: 'load', timeout: 60000 });
  result = await page.evaluate(() => new Promise((resolve) => {
    const mv = document.querySelector('model-viewer');
    const report = (loaded) => setTimeout(() => resolve({
      loaded, animations: Array.from(mv.availableAnimations || []), paused: mv.paused,
      currentTime: mv.currentTime, duration: mv.duration,
    }), 1000);
    if (mv.loaded) report(true);
    mv.addEventListener('load', () => report(true));
    mv.addEventListener('error', (e) => { console.error(`model-viewer error: ${JSON.stringify(e.detail)}`); report(false); });
    setTimeout(() => resolve({ loaded: false, timeout: true }), 60000);
  }));
} catch (e) {
  messages.push({ type: 'timeout', text: String(e).slice(0, 500) });
} finally {
  await browser.close();
}
console.log(JSON.stringify({ ...result, messages }));
