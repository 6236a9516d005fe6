// The engine's CPU path on several threads (issue 20), in headless Chromium on the plain static
// server (no special headers): the service worker makes the page cross-origin isolated after the
// first visit's one reload, the threaded worker runs, its stories equal the one-thread engine's
// (and so do the Inspect view's logits and attention, exported), and it all holds offline and under a sub-path. With service workers blocked the page runs one
// thread and says why.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cspViolations, generate, launchBrowser, openApp, readShared, startServer, tinylm, waitForState } from './helpers.mjs';

const greedy256 = readShared('reference/stories260K_greedy_256.txt').replace(/\n$/, '');
const GREEDY = { temperature: 0, topp: 0.9, seed: 1, steps: 256 };
// s15m's shape: big enough that the products split over the threads (engine::cpu::fast).
const S15M = { temperature: 0, topp: 0.9, seed: 1, steps: 96, prompt: 'Once upon a time' };

const backend = (page) => page.textContent('[data-testid=backend]');
const oneThreadNote = (page) => page.textContent('[data-testid=backend-threads]');

async function loadS15m(page) {
  await page.fill('[data-testid=model-url]', 'models/s15m.bin');
  await page.fill('[data-testid=tokenizer-url]', 'models/tok512.bin');
  await page.click('[data-testid=load-url]');
  await page.waitForFunction(() => document.querySelector('[data-testid=status]')?.textContent.startsWith('Ready: s15m'), null, { timeout: 120_000 });
}

/** The Inspect view's numbers for the last story (its JSON export), then back to Generate. */
async function inspectNumbers(page) {
  await page.click('[data-testid=tab-inspect]');
  await page.waitForFunction(() => ['ready', 'error'].includes(document.querySelector('[data-testid=inspect-status]')?.dataset.state), null, { timeout: 120_000 });
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=export-json]')]);
  const json = JSON.parse(readFileSync(await dl.path(), 'utf8'));
  await page.click('[data-testid=tab-generate]');
  return json;
}

/** Logits and attention equal bit for bit: the pool splits products by rows and attention by
 * heads, so no sum changes order (stricter than the 1e-5·max|logit|: a 1e-6 relative
 * change to one row per task showed here as a logit off by 6.2e-6, inside that tolerance). */
function assertSameNumbers(many, one) {
  assert.deepEqual(many.tokens, one.tokens);
  const logits = (j) => j.next_token.top.map((c) => [c.id, c.logit]);
  const [a, b] = [logits(many), logits(one)];
  assert.equal(a.length, 20);
  const worst = Math.max(...a.map(([, l], i) => Math.abs(l - b[i][1])));
  const att = (j) => j.attention_head.flat();
  const attWorst = Math.max(...att(many).map((x, i) => Math.abs(x - att(one)[i])));
  console.log(`# ${many.tokens.length} tokens: top-20 logits max |Δ| ${worst}, attention max |Δ| ${attWorst}`);
  assert.deepEqual(a, b, 'the top-20 next tokens and their logits');
  assert.deepEqual(many.attention_head, one.attention_head, 'attention');
}

describe('CPU threads (cross-origin isolation by the service worker)', () => {
  let tmp;
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'tinylm-threads-'));
    tinylm(['make-model', '--config', '288,768,6,6,6,512,256', '--seed', '15', '-o', join(tmp, 's15m.bin')]);
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test('after the first visit’s one reload the page is isolated and runs every core; stories equal one thread’s; offline and under a sub-path', async () => {
    const prefix = '/lab/sub/';
    const server = await startServer(prefix, { 'models/s15m.bin': join(tmp, 's15m.bin') });
    const browser = await launchBrowser({ isolateReload: true });
    try {
      const { page, log } = await openApp(browser.context, server.url);
      // The service worker takes the page, which reloads itself once and is then isolated.
      await page.waitForFunction(() => self.crossOriginIsolated, null, { timeout: 60_000 });
      assert.match(await page.textContent('[data-testid=isolated-reload]'), /reloaded once, on this first visit, so the engine can use several CPU cores/);
      const cores = await page.evaluate(() => navigator.hardwareConcurrency);
      assert.ok(cores > 1, `this test needs a machine with several cores (the browser reports ${cores})`);
      assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
      assert.equal(await backend(page), `CPU — WebAssembly, simd128, ${cores} threads`);
      assert.equal(await oneThreadNote(page), '');
      assert.equal(await page.evaluate(() => globalThis.tinylmWorkerUrl), `worker_mt_loader.js?threads=${cores}`);
      let r = await generate(page, GREEDY);
      assert.equal(r.state, 'done', r.status);
      assert.equal(r.text, greedy256);
      await loadS15m(page);
      const threaded = await generate(page, S15M);
      assert.equal(threaded.state, 'done', threaded.status);
      assert.ok(threaded.text.length > 50, threaded.text);
      const threadedNumbers = await inspectNumbers(page);

      // The menu sets one thread; after the reload it offers, the plain engine says why.
      await page.selectOption('[data-testid=threads-choice]', '1');
      await page.click('[data-testid=threads-reload] button');
      await page.waitForFunction(() => document.querySelector('[data-testid=status]')?.dataset.state === 'ready', null, { timeout: 60_000 });
      assert.equal(await page.inputValue('[data-testid=threads-choice]'), '1');
      assert.equal(await backend(page), 'CPU — WebAssembly, simd128, 1 thread');
      assert.match(await oneThreadNote(page), new RegExp(`^The CPU path runs on one of this device's ${cores} cores: the CPU threads setting is 1\\.$`));
      await loadS15m(page);
      const single = await generate(page, S15M);
      assert.equal(single.text, threaded.text, 'the threaded engine writes the one-thread story');
      assertSameNumbers(threadedNumbers, await inspectNumbers(page));

      // Back to every core, then offline: the cached site is still isolated and threaded.
      await page.selectOption('[data-testid=threads-choice]', 'auto');
      await server.close();
      await browser.context.setOffline(true);
      await page.reload();
      // The tab loads the model it had from this site again, from the service worker's cache.
      await page.waitForFunction(() => document.querySelector('[data-testid=status]')?.textContent.startsWith('Ready: s15m'), null, { timeout: 120_000 });
      assert.ok(await page.evaluate(() => self.crossOriginIsolated), 'isolated offline too');
      assert.equal(await backend(page), `CPU — WebAssembly, simd128, ${cores} threads`);
      r = await generate(page, S15M);
      assert.equal(r.text, threaded.text);
      assert.deepEqual(log.errors.filter((e) => !/Failed to load resource|ERR_INTERNET_DISCONNECTED/.test(e)), [], 'console errors');
      assert.deepEqual(await cspViolations(page), [], 'CSP violations');
    } finally {
      await browser.close();
      await server.close().catch(() => {});
    }
  });

  test('with service workers blocked the page runs one thread and says why', async () => {
    const server = await startServer('/');
    const browser = await launchBrowser({ isolateReload: true, serviceWorkers: 'block' });
    try {
      const { page } = await openApp(browser.context, server.url);
      assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
      assert.equal(await page.evaluate(() => self.crossOriginIsolated), false);
      const cores = await page.evaluate(() => navigator.hardwareConcurrency);
      assert.equal(await backend(page), 'CPU — WebAssembly, simd128, 1 thread');
      assert.match(await oneThreadNote(page), new RegExp(`^The CPU path runs on one of this device's ${cores} cores: this page is not cross-origin isolated`));
      assert.ok(await page.locator('[data-testid=threads-choice]').isDisabled(), 'no threads to choose');
      const r = await generate(page, GREEDY);
      assert.equal(r.text, greedy256);
    } finally {
      await browser.close();
      await server.close();
    }
  });
});
