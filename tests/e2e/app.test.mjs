// The app page in headless Chromium, against llama2.c's reference outputs for stories260K.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  cspViolations, generate, launchBrowser, openApp, readShared, screenshot, startServer, waitForState,
} from './helpers.mjs';

const greedy256 = readShared('reference/stories260K_greedy_256.txt').replace(/\n$/, '');
const reference = JSON.parse(readShared('reference/stories260K_reference.json'));

describe('TinyLM Lab page', () => {
  let server;
  let browser;
  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  /** Every page must end clean: no console errors, no CSP reports, only its own origin. */
  async function assertClean(page, log) {
    assert.deepEqual(log.errors, [], 'console errors');
    assert.deepEqual(await cspViolations(page), [], 'CSP violations');
    const origin = new URL(server.url).origin;
    const foreign = log.requests.filter((u) => new URL(u).origin !== origin);
    assert.deepEqual(foreign, [], 'requests to other origins');
    assert.ok(log.requests.length > 3, 'the request log should not be empty');
  }

  test('loads, shows the model shape, and makes no errors', async () => {
    const { page, log } = await openApp(browser.context, server.url);
    assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
    const model = await page.textContent('[data-testid=model]');
    assert.match(model, /dim \/ hidden\s*64 \/ 172/);
    assert.match(model, /heads \/ kv heads\s*8 \/ 4/);
    assert.match(model, /context\s*512 tokens/);
    assert.equal(await page.isEnabled('[data-testid=generate]'), true);
    const urls = log.requests.map((u) => new URL(u).pathname);
    assert.ok(urls.includes('/models/stories260K.bin'), urls.join(' '));
    await assertClean(page, log);
    await page.close();
  });

  test('greedy generation (t=0, 256 steps, empty prompt) equals llama2.c run.c', async () => {
    const { page, log } = await openApp(browser.context, server.url);
    const r = await generate(page, { temperature: 0, topp: 0.9, seed: 1, steps: 256 });
    assert.equal(r.state, 'done', r.status);
    assert.equal(r.text, greedy256);
    assert.match(r.status, /^Done: 256 tokens in [\d.]+ s · [\d.]+ tok\/s$/);
    await screenshot(page, 'greedy-256');
    await assertClean(page, log);
    await page.close();
  });

  test('a prompt is echoed and continued exactly as run.c does', async () => {
    const { page, log } = await openApp(browser.context, server.url);
    const r = await generate(page, { prompt: 'Once upon a time', temperature: 0, topp: 0.9, seed: 1, steps: 64 });
    assert.equal(r.state, 'done', r.status);
    assert.equal(r.text, reference.greedy_prompt_once_upon_a_time_64_steps.text);
    assert.equal(await page.textContent('#output .echo'), 'Once upon a time');
    await assertClean(page, log);
    await page.close();
  });

  test('seeded sampling (t=1, p=0.9, seed 133742) gives the documented llama2.c story', async () => {
    const { page, log } = await openApp(browser.context, server.url);
    const r = await generate(page, { temperature: 1, topp: 0.9, seed: 133742, steps: 256 });
    assert.equal(r.state, 'done', r.status);
    assert.ok(
      r.text.startsWith('Once upon a time, there was a little boy named Timmy'),
      `story began: ${JSON.stringify(r.text.slice(0, 80))}`,
    );
    await screenshot(page, 'sampled-133742');
    await assertClean(page, log);
    await page.close();
  });

  test('bad settings are refused in plain words, and the page recovers', async () => {
    const { page, log } = await openApp(browser.context, server.url);
    let r = await generate(page, { temperature: 0, topp: 0.9, seed: 0, steps: 8 });
    assert.equal(r.state, 'error');
    assert.equal(r.status, 'Seed must be at least 1.');
    r = await generate(page, { temperature: 1, topp: 1.5, seed: 7, steps: 8 });
    assert.equal(r.state, 'error');
    assert.match(r.status, /top-p 1.5 must be between 0 and 1/);
    r = await generate(page, { temperature: 0, topp: 0.9, seed: 7, steps: 9999 });
    assert.match(r.status, /Steps must be at most 512/);
    r = await generate(page, { temperature: 0, topp: 0.9, seed: 7, steps: 20 });
    assert.equal(r.state, 'done', r.status);
    assert.ok(greedy256.startsWith(r.text) && r.text.length > 40, r.text);
    await assertClean(page, log);
    await page.close();
  });

  test('the CSP meta is present and enforced', async () => {
    const { page, log } = await openApp(browser.context, server.url);
    await waitForState(page, ['ready']);
    const csp = await page.getAttribute('meta[http-equiv="Content-Security-Policy"]', 'content');
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self' 'wasm-unsafe-eval'/);
    assert.match(csp, /connect-src 'self'/);
    assert.doesNotMatch(csp, /'unsafe-inline'|'unsafe-eval'|\*/);
    assert.equal(await page.locator('script:not([src])').count(), 0, 'no inline scripts in the page');
    await assertClean(page, log);
    // A control: an injected inline script must be blocked and reported.
    const ran = await page.evaluate(() => {
      window.__inlineRan = false;
      const s = document.createElement('script');
      s.textContent = 'window.__inlineRan = true;';
      document.body.append(s);
      return window.__inlineRan;
    });
    assert.equal(ran, false, 'inline script ran despite the CSP');
    await page.waitForFunction(() => window.__csp.length > 0);
    assert.match((await cspViolations(page))[0], /^script-src/);
    await page.close();
  });

  test('works from a sub-path (every URL is relative)', async () => {
    const sub = await startServer('/some/lab/');
    try {
      const { page, log } = await openApp(browser.context, sub.url);
      const r = await generate(page, { temperature: 0, topp: 0.9, seed: 1, steps: 24 });
      assert.equal(r.state, 'done', r.status);
      assert.ok(greedy256.startsWith(r.text) && r.text.length > 60, r.text);
      const outside = log.requests.filter((u) => !new URL(u).pathname.startsWith('/some/lab/'));
      assert.deepEqual(outside, [], 'requests outside the sub-path');
      assert.deepEqual(log.errors, []);
      await page.close();
    } finally {
      await sub.close();
    }
  });

  test('a missing model file is reported in plain words', async () => {
    const page = await browser.context.newPage();
    await page.route('**/models/stories260K.bin', (route) => route.fulfill({ status: 404, body: 'gone' }));
    await page.goto(server.url);
    assert.equal(await waitForState(page, ['ready', 'error']), 'error');
    assert.equal(
      await page.textContent('[data-testid=status]'),
      'Could not download models/stories260K.bin: the server answered 404 Not Found.',
    );
    assert.equal(await page.isEnabled('[data-testid=generate]'), false);
    await page.close();
  });
});
