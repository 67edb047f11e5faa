// Headless Chromium for the page checks (Debian's /usr/bin/chromium, or $CHROMIUM, driven by playwright-core),
// shared by check_page.mjs and check_animation.mjs.
import { chromium } from 'playwright-core';
import { pathToFileURL } from 'node:url';
import { existsSync } from 'node:fs';

// A file path or URL as a URL.
export const pageUrl = (target) => (existsSync(target) ? pathToFileURL(target).href : target);

// The browser, with software WebGL (SwiftShader) so WebGL content renders on machines without a GPU.
export const launch = () => chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--enable-unsafe-swiftshader', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--no-first-run'],
});

// Record the page's console lines, uncaught exceptions and failed requests into `messages`.
export function collect(page, messages) {
  page.on('console', (m) => messages.push({ type: m.type(), text: m.text() }));
  page.on('pageerror', (e) => messages.push({ type: 'pageerror', text: String(e) }));
  page.on('requestfailed', (r) => messages.push({ type: 'requestfailed', text: r.url().slice(0, 200) }));
}
