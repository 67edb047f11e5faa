// Load an HTML page with one <model-viewer> in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core, as check_page.mjs) and report its animation. Usage: node check_animation.mjs FILE_OR_URL
// Waits up to 60 s for the element's load (or error) event, then until it has played (up to 15 s), and prints:
// {"loaded": bool, "animations": [names], "paused": bool, "currentTime": s, "duration": s,
//  "messages": [{"type", "text"}...]} where type is a console level, "pageerror", "requestfailed" or "timeout".
import { collect, launch, pageUrl } from './browser.mjs';

const [target] = process.argv.slice(2);
const url = pageUrl(target);
const browser = await launch();
const messages = [];
let result = { loaded: false };
try {
  const page = await browser.newPage({ viewport: { width: 640, height: 480 } });
  collect(page, messages);
  await page.goto(url, { waitUntil: 'load', timeout: 60000 });
  result = await page.evaluate(() => new Promise((resolve) => {
    const mv = document.querySelector('model-viewer');
    // once loaded, wait until the animation has advanced (up to 15 s: a busy machine draws slowly)
    const report = (loaded) => {
      const t0 = Date.now();
      const poll = () => {
        if (loaded && mv.currentTime <= 0 && Date.now() - t0 < 15000) return setTimeout(poll, 200);
        resolve({ loaded, animations: Array.from(mv.availableAnimations || []), paused: mv.paused,
                  currentTime: mv.currentTime, duration: mv.duration });
      };
      setTimeout(poll, 200);
    };
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
