// Shared helpers for the browser tests: the static server, Chromium, the page, screenshots and
// the native CLI (the reference the page is compared with).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { serve } from './server.mjs';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, '../..');
/** The built site; TINYLM_DIST lets parallel work use its own `trunk build --dist DIR`. */
export const DIST = resolve(REPO, process.env.TINYLM_DIST ?? 'dist');
export const ARTIFACTS = join(here, 'artifacts');
/** Shared reference data lives next to the repository (../shared/data). */
export const SHARED_DATA = process.env.TINYLM_SHARED_DATA ?? resolve(REPO, '../shared/data');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

export function readShared(path) {
  return readFileSync(join(SHARED_DATA, path), 'utf8');
}

/** A safetensors file's tensors as { shape, data: Float32Array | Int32Array } (F32 and I32 only). */
export function readSafetensors(path) {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const out = {};
  for (const [key, t] of Object.entries(header)) {
    if (key === '__metadata__') continue;
    const [a, b] = t.data_offsets;
    const bytes = buf.subarray(8 + n + a, 8 + n + b);
    const copy = new Uint8Array(bytes).buffer;
    out[key] = { shape: t.shape, data: t.dtype === 'I32' ? new Int32Array(copy) : new Float32Array(copy) };
  }
  return out;
}

export const sharedPath = (path) => join(SHARED_DATA, path);
export const bundledPath = (name) => join(REPO, 'public/models', name);

/** Serves dist/ on a free 127.0.0.1 port, under the URL path `prefix` (extra routes, rewrite: see serve). */
export async function startServer(prefix = '/', extra = {}, options = {}) {
  if (!existsSync(join(DIST, 'index.html'))) {
    throw new Error(`${DIST}/index.html is missing: build first (trunk build --release)`);
  }
  return serve(DIST, 0, '127.0.0.1', prefix, extra, options);
}

let cliPath = process.env.TINYLM_CLI;
/**
 * Runs the native CLI `tinylm` with `args` and returns its stdout as a Buffer. Builds it first
 * (debug; `cargo test` has usually built it already, so this is a no-op). TINYLM_CLI overrides.
 */
export function tinylm(args) {
  if (!cliPath) {
    const target = process.env.CARGO_TARGET_DIR ?? join(REPO, 'target');
    execFileSync('cargo', ['build', '--quiet', '-p', 'tinylm-cli'], { cwd: REPO, stdio: 'inherit' });
    cliPath = join(target, 'debug', 'tinylm');
  }
  return execFileSync(cliPath, args, { cwd: REPO, maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Headless Chromium with a fresh profile; close() also deletes the profile. `webgpu: true` adds
 * --enable-unsafe-webgpu, which gives a SwiftShader (software) WebGPU adapter; without it
 * Chromium offers no adapter here. `profile: DIR` uses (and keeps) that profile instead, so a
 * test can close the browser and open it again with the same storage. `bypassCSP: true` lets a
 * test inject a script of its own (axe-core); only the accessibility test uses it.
 */
/**
 * `isolateReload`: let the page reload itself once when its service worker first takes it (so it
 * becomes cross-origin isolated and the engine gets its threads, tests/e2e/threads.test.mjs).
 * Off elsewhere: a reload at a moment the page picks would cut other tests' steps short, so they
 * run as a visit after that reload's refusal would (one thread until the page is next loaded).
 */
export async function launchBrowser({ webgpu = false, profile: kept, bypassCSP = false, isolateReload = false, serviceWorkers = 'allow' } = {}) {
  const profile = kept ?? (await mkdtemp(join(tmpdir(), 'tinylm-e2e-')));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1100, height: 900 },
    bypassCSP,
    args: [
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      ...(webgpu ? ['--enable-unsafe-webgpu'] : []),
    ],
    serviceWorkers,
  });
  // app/web/pwa.js reloads once unless this session already did ('done').
  // (Some documents, e.g. a download's, have no storage: nothing to do there.)
  if (!isolateReload) {
    await context.addInitScript(() => {
      try {
        sessionStorage.setItem('tinylm.isolating', 'done');
      } catch {}
    });
  }
  return {
    context,
    close: async () => {
      await context.close();
      if (!kept) await rm(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Opens the app and records what a test needs to check: console errors, uncaught exceptions,
 * CSP violations (reported by the document itself) and every request URL.
 */
export async function openApp(context, url) {
  const page = await context.newPage();
  const log = { errors: [], requests: [], violations: [] };
  page.on('console', (m) => {
    if (m.type() === 'error') log.errors.push(m.text());
  });
  page.on('pageerror', (e) => log.errors.push(`uncaught: ${e.message}`));
  page.on('request', (r) => log.requests.push(r.url()));
  // Runs before the page's own scripts, outside the page's CSP.
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`);
    });
  });
  await page.goto(url);
  return { page, log };
}

export async function cspViolations(page) {
  return page.evaluate(() => window.__csp);
}

/**
 * A static server and a Chromium shared by the tests of one describe block: started before them,
 * closed after. The returned object's `server` and `browser` are set once its `before` has run;
 * `extra` (routes, see serve) may be a function, called then.
 */
export function useSite({ prefix = '/', extra = {}, webgpu = false, bypassCSP = false } = {}) {
  const site = { server: null, browser: null };
  before(async () => {
    site.server = await startServer(prefix, typeof extra === 'function' ? await extra() : extra);
    site.browser = await launchBrowser({ webgpu, bypassCSP });
  });
  after(async () => {
    await site.browser?.close();
    await site.server?.close();
  });
  return site;
}

/** Runs `body({ server, browser })` with a fresh server and browser, closing both however it ends. */
export async function withSite({ prefix = '/', extra = {}, webgpu = false, profile } = {}, body) {
  const server = await startServer(prefix, extra);
  const browser = await launchBrowser({ webgpu, profile });
  try {
    return await body({ server, browser });
  } finally {
    await browser.close();
    await server.close().catch(() => {});
  }
}

/** Every page must end clean: no console errors, no CSP reports, requests to `siteUrl`'s origin only. */
export async function assertClean(page, log, siteUrl) {
  assert.deepEqual(log.errors, [], 'console errors');
  assert.deepEqual(await cspViolations(page), [], 'CSP violations');
  const origin = new URL(siteUrl).origin;
  assert.deepEqual(log.requests.filter((u) => new URL(u).origin !== origin), [], 'requests to other origins');
  assert.ok(log.requests.length > 3, 'the request log should not be empty');
}

/** Waits until the status line reaches one of `states` (e.g. "ready", "done", "error"). */
export async function waitForState(page, states, timeout = 60_000) {
  const want = [].concat(states);
  await page.waitForFunction(
    (w) => w.includes(document.querySelector('[data-testid=status]')?.dataset.state),
    want,
    { timeout },
  );
  return page.locator('[data-testid=status]').getAttribute('data-state');
}

/**
 * Waits until the async `predicate(arg)`, run in the page, resolves truthy (polled every 100 ms,
 * up to `timeout` ms). Playwright's waitForFunction cannot do this: it takes the pending promise
 * an async predicate returns as a truthy answer and stops waiting at once.
 */
export async function waitForAsync(page, predicate, arg = null, { timeout = 30_000 } = {}) {
  const end = Date.now() + timeout;
  for (;;) {
    if (await page.evaluate(predicate, arg)) return;
    if (Date.now() > end) throw new Error(`waitForAsync: not true within ${timeout} ms: ${predicate}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Fills the form, presses Generate and returns the story text once the run has ended (within `timeout` ms). */
export async function generate(page, { prompt = '', temperature, topp, seed, steps, timeout = 60_000 }) {
  await waitForState(page, ['ready', 'done', 'error']);
  await page.fill('[data-testid=prompt]', prompt);
  await page.fill('[data-testid=temperature]', String(temperature));
  await page.fill('[data-testid=topp]', String(topp));
  await page.fill('[data-testid=seed]', String(seed));
  await page.fill('[data-testid=steps]', String(steps));
  await page.click('[data-testid=generate]');
  const state = await waitForState(page, ['done', 'error'], timeout);
  const status = await page.textContent('[data-testid=status]');
  const text = await page.textContent('[data-testid=output]');
  return { state, status, text };
}

/** Text of the status line. */
export async function statusText(page) {
  return page.textContent('[data-testid=status]');
}

/**
 * Records, inside the page, how late each input event's handler runs after the event was made
 * (`performance.now() - event.timeStamp`) and every long task of the main thread.
 */
export async function watchResponsiveness(page) {
  await page.evaluate(() => {
    window.__lag = [];
    window.__long = [];
    for (const type of ['click', 'keydown', 'input', 'pointerdown']) {
      window.addEventListener(type, (e) => window.__lag.push([type, performance.now() - e.timeStamp]), true);
    }
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__long.push(e.duration);
    }).observe({ type: 'longtask', buffered: false });
  });
}

export async function responsiveness(page) {
  return page.evaluate(() => ({ lag: window.__lag, long: window.__long }));
}

/** Saves a full-page PNG under tests/e2e/artifacts/ and returns its path. */
export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Largest |a-b| over two arrays of the same length, and max |b|. */
export function maxDiff(a, b) {
  assert.equal(a.length, b.length);
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return { d, m };
}

/**
 * The weights of two llama2.c v0 files (the floats after the 7-int header): the largest
 * difference between them `d` and the largest weight of `want` `m`.
 */
export function weightDiff(got, want) {
  const floats = (buf) => new Float32Array(buf.buffer.slice(buf.byteOffset + 28, buf.byteOffset + buf.length));
  return maxDiff(floats(got), floats(want));
}
