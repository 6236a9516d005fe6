// The app page in headless Chromium without WebGPU (the CPU path), against llama2.c's reference
// outputs for stories260K and against the native CLI.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  DIST, assertClean, bundledPath, cspViolations, generate, openApp, readShared, screenshot, startServer,
  statusText, tinylm, useSite, waitForState,
} from './helpers.mjs';

const greedy256 = readShared('reference/stories260K_greedy_256.txt').replace(/\n$/, '');
const reference = JSON.parse(readShared('reference/stories260K_reference.json'));

/** What `tinylm generate` prints for stories260K, minus the trailing newline. */
function cliStory({ prompt = '', temperature, topp, seed, steps }) {
  const args = ['generate', bundledPath('stories260K.bin'), '-z', bundledPath('tok512.bin'),
    '-t', String(temperature), '-p', String(topp), '-s', String(seed), '-n', String(steps), '-i', prompt];
  return tinylm(args).toString('utf8').replace(/\n$/, '');
}

describe('TinyLM Lab page (CPU path)', () => {
  const site = useSite();

  test('loads in a worker, shows the model, the CPU backend and why', async () => {
    const { page, log } = await openApp(site.browser.context, site.server.url);
    assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
    const model = await page.textContent('[data-testid=model]');
    assert.match(model, /dim \/ hidden\s*64 \/ 172/);
    assert.match(model, /heads \/ kv heads\s*8 \/ 4/);
    assert.match(model, /context\s*512 tokens/);
    assert.match(model, /tokenizer\s*tok512\.bin, 6\.2 KB/);
    const menu = await page.locator('[data-testid=model-select] option').allTextContents();
    assert.deepEqual(menu, ['stories260K — 260 K parameters, 1.06 MB (bundled)']);
    assert.equal(await page.getAttribute('[data-testid=backend]', 'data-kind'), 'cpu');
    assert.match(await page.textContent('[data-testid=backend]'), /^CPU — WebAssembly, simd128, 1 thread$/);
    assert.match(await page.textContent('[data-testid=backend-reason]'),
      /^Using the CPU because WebGPU found no graphics adapter it can use here/);
    assert.equal(await page.inputValue('[data-testid=backend-choice]'), 'auto');
    assert.equal(await page.isEnabled('[data-testid=generate]'), true);
    // The engine and the model files are fetched by the worker, from this site.
    const paths = log.requests.map((u) => new URL(u).pathname);
    for (const p of ['/worker_loader.js', '/worker.js', '/worker_bg.wasm', '/models/stories260K.bin', '/models/tok512.bin']) {
      assert.ok(paths.includes(p), `${p} not requested: ${paths.join(' ')}`);
    }
    await screenshot(page, 'idle-cpu');
    await assertClean(page, log, site.server.url);
    await page.close();
  });

  test('greedy generation (t=0, 256 steps, empty prompt) equals llama2.c run.c', async () => {
    const { page, log } = await openApp(site.browser.context, site.server.url);
    const r = await generate(page, { temperature: 0, topp: 0.9, seed: 1, steps: 256 });
    assert.equal(r.state, 'done', r.status);
    assert.equal(r.text, greedy256);
    assert.match(r.status, /^Done: 256 tokens in [\d.]+ s: the first after [\d.]+ s, then [\d.]+ tok\/s$/);
    assert.equal(await page.textContent('[data-testid=figure-backend]'), 'CPU');
    assert.match(await page.textContent('[data-testid=ttft]'), /^\d+ ms$/);
    assert.match(await page.textContent('[data-testid=tok-s]'), /^\d+\.\d$/);
    assert.equal(await page.textContent('[data-testid=tokens]'), '256');
    await screenshot(page, 'done-cpu');
    await assertClean(page, log, site.server.url);
    await page.close();
  });

  test('a prompt is echoed and continued exactly as run.c does', async () => {
    const { page, log } = await openApp(site.browser.context, site.server.url);
    const r = await generate(page, { prompt: 'Once upon a time', temperature: 0, topp: 0.9, seed: 1, steps: 64 });
    assert.equal(r.state, 'done', r.status);
    assert.equal(r.text, reference.greedy_prompt_once_upon_a_time_64_steps.text);
    assert.equal(await page.textContent('#output .echo'), 'Once upon a time');
    await assertClean(page, log, site.server.url);
    await page.close();
  });

  test('seeded sampling equals llama2.c run.c byte for byte (top-p, multinomial, a prompt, t 1.5)', async () => {
    const { page, log } = await openApp(site.browser.context, site.server.url);
    // shared/data/reference/sampling_run_c: whole runs printed by run.c itself.
    const rows = readShared('reference/sampling_run_c/cases.psv').trim().split('\n').slice(1);
    assert.equal(rows.length, 4);
    for (const row of rows) {
      const [name, t, p, seed, steps, prompt] = row.split('|');
      const want = readShared(`reference/sampling_run_c/${name}.txt`).replace(/\n$/, '');
      assert.match(want, /^[\x20-\x7e\n]+$/, `${name}: a plain ASCII story (run.c drops lone bytes the page shows)`);
      const r = await generate(page, { prompt, temperature: Number(t), topp: Number(p), seed: Number(seed), steps: Number(steps) });
      assert.equal(r.state, 'done', r.status);
      assert.equal(r.text, want, name);
    }
    await assertClean(page, log, site.server.url);
    await page.close();
  });

  test('seeded sampling equals `tinylm generate` byte for byte', async () => {
    const { page, log } = await openApp(site.browser.context, site.server.url);
    const cases = [
      { temperature: 1, topp: 0.9, seed: 133742, steps: 256 },
      { temperature: 1, topp: 0.9, seed: 7, steps: 256, prompt: 'Tom had a red kite' },
      { temperature: 0.8, topp: 1, seed: 99, steps: 200 },
    ];
    for (const c of cases) {
      const expected = cliStory(c);
      // run.c drops lone non-printable bytes where the page shows UTF-8: keep to ASCII stories.
      assert.match(expected, /^[\x20-\x7e\n]+$/, `seed ${c.seed} should give a plain ASCII story`);
      const r = await generate(page, c);
      assert.equal(r.state, 'done', r.status);
      assert.equal(r.text, expected, `seed ${c.seed}`);
    }
    // The documented llama2.c story for this seed.
    assert.ok(cliStory(cases[0]).startsWith('Once upon a time, there was a little boy named Timmy'));
    await assertClean(page, log, site.server.url);
    await page.close();
  });

  test('byte-fallback pieces are joined into characters (🐉 is four byte tokens)', async () => {
    const { page, log } = await openApp(site.browser.context, site.server.url);
    const c = { prompt: 'The 🐉 and the cat', temperature: 0, topp: 0.9, seed: 1, steps: 40 };
    const r = await generate(page, c);
    assert.equal(r.state, 'done', r.status);
    assert.ok(r.text.startsWith('The 🐉 and the cat'), r.text);
    assert.equal(await page.textContent('#output .echo'), 'The 🐉 and the cat');
    assert.ok(!r.text.includes('\ufffd'), 'no replacement characters');
    // run.c (and the CLI) drop the four lone bytes; otherwise the text is the same.
    const cli = cliStory(c);
    assert.ok(!cli.includes('🐉'));
    assert.equal(r.text.replace('🐉', ''), cli);
    await assertClean(page, log, site.server.url);
    await page.close();
  });

  test('bad settings are refused in plain words, and the page recovers', async () => {
    const { page, log } = await openApp(site.browser.context, site.server.url);
    let r = await generate(page, { temperature: 0, topp: 0.9, seed: 0, steps: 8 });
    assert.equal(r.state, 'error');
    assert.equal(r.status, 'Seed must be at least 1.');
    r = await generate(page, { temperature: 1, topp: 1.5, seed: 7, steps: 8 });
    assert.equal(r.state, 'error');
    assert.match(r.status, /top-p 1.5 must be between 0 and 1/);
    r = await generate(page, { temperature: 0, topp: 0.9, seed: 7, steps: 9999 });
    assert.match(r.status, /Steps must be at most 512/);
    await screenshot(page, 'error-setting');
    r = await generate(page, { temperature: 0, topp: 0.9, seed: 7, steps: 20 });
    assert.equal(r.state, 'done', r.status);
    assert.ok(greedy256.startsWith(r.text) && r.text.length > 40, r.text);
    await assertClean(page, log, site.server.url);
    await page.close();
  });

  test('the CSP meta is present and enforced', async () => {
    const { page, log } = await openApp(site.browser.context, site.server.url);
    await waitForState(page, ['ready']);
    const csp = await page.getAttribute('meta[http-equiv="Content-Security-Policy"]', 'content');
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self' 'wasm-unsafe-eval'/);
    assert.match(csp, /worker-src 'self'/);
    // Fetches: this site, the model shelf's hub and the hosts the hub redirects downloads to
    // (every hop of a redirect must be allowed), nothing else.
    const connect = csp.match(/connect-src ([^;]+);/)[1].split(' ');
    assert.deepEqual(connect, ["'self'", 'https://huggingface.co', 'https://*.hf.co']);
    const shelf = JSON.parse(readFileSync(join(DIST, 'shelf.json'), 'utf8'));
    assert.ok(connect.includes(new URL(shelf.hub).origin), `the shelf's hub ${shelf.hub} is in connect-src`);
    assert.doesNotMatch(csp.replace(' https://*.hf.co;', ';'), /'unsafe-inline'|'unsafe-eval'|\*|blob:|data:/);
    assert.equal(await page.locator('script:not([src])').count(), 0, 'no inline scripts in the page');
    await assertClean(page, log, site.server.url);
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

  test('works from a sub-path (every URL is relative, the worker included)', async () => {
    const sub = await startServer('/some/lab/');
    try {
      const { page, log } = await openApp(site.browser.context, sub.url);
      const r = await generate(page, { temperature: 0, topp: 0.9, seed: 1, steps: 24 });
      assert.equal(r.state, 'done', r.status);
      assert.ok(greedy256.startsWith(r.text) && r.text.length > 60, r.text);
      const outside = log.requests.filter((u) => !new URL(u).pathname.startsWith('/some/lab/'));
      assert.deepEqual(outside, [], 'requests outside the sub-path');
      assert.ok(log.requests.some((u) => u.endsWith('/some/lab/worker_bg.wasm')));
      assert.deepEqual(log.errors, []);
      await page.close();
    } finally {
      await sub.close();
    }
  });

  test('an engine that crashes is restarted, and the page keeps working', async () => {
    const loader = readFileSync(join(DIST, 'worker_loader.js'), 'utf8');
    let served = 0;
    const flaky = await startServer('/', {
      // The first engine dies as it starts (as one that ran out of memory would); later ones work.
      // Only engine starts count: the service worker's precache fetch (not a worker script
      // request) always gets the real loader, and later starts may come from its cache.
      'worker_loader.js': (req, res) => {
        const start = req.headers['sec-fetch-dest'] === 'worker';
        if (start) served += 1;
        res.writeHead(200, { 'Content-Type': 'text/javascript' });
        res.end(start && served === 1 ? 'throw new Error("simulated engine crash");' : loader);
      },
    });
    try {
      const { page, log } = await openApp(site.browser.context, flaky.url);
      await page.waitForFunction(() => document.querySelectorAll('[data-testid=model-select] option').length === 1);
      assert.equal(await waitForState(page, ['error', 'ready']), 'error');
      // Said while the new engine loads, then (the message staying up) once its model is ready.
      assert.match(await statusText(page), /^The engine stopped unexpectedly \(.*simulated engine crash\).*(Restarting it with stories260K…|It was restarted with stories260K\. Press Generate\.)$/);
      await page.waitForFunction(() => document.querySelector('[data-testid=status]').textContent.endsWith('It was restarted with stories260K. Press Generate.'), null, { timeout: 60_000 });
      assert.match(await statusText(page), /^The engine stopped unexpectedly \(.*simulated engine crash\); the model may be too large for this device\. It was restarted/);
      // The new engine loaded stories260K once (not also the first engine's queued load).
      assert.deepEqual(await page.$$eval('[data-testid=model-select] option', (os) => os.map((o) => o.textContent.split(' — ')[0])), ['stories260K']);
      await screenshot(page, 'error-engine-restarted');
      const r = await generate(page, { temperature: 0, topp: 0.9, seed: 1, steps: 30 });
      assert.equal(r.state, 'done', r.status);
      assert.ok(greedy256.startsWith(r.text) && r.text.length > 60, r.text);
      assert.ok(served >= 1, 'the crashing loader was served');
      assert.deepEqual(log.errors.filter((e) => !e.includes('simulated engine crash')), []);
      await page.close();
    } finally {
      await flaky.close();
    }
  });

  test('a missing model file is reported in plain words', async () => {
    const broken = await startServer('/', {
      'models/stories260K.bin': (req, res) => res.writeHead(404, { 'Content-Type': 'text/plain' }).end('gone'),
    });
    try {
      const page = await site.browser.context.newPage();
      await page.goto(broken.url);
      assert.equal(await waitForState(page, ['ready', 'error']), 'error');
      assert.equal(
        await statusText(page),
        'Could not download models/stories260K.bin: the server answered 404 Not Found. No model is loaded yet: '
          + 'load one with “Choose files”, or reload the page to try stories260K again.',
      );
      assert.equal(await page.isEnabled('[data-testid=generate]'), false);
      await page.close();
    } finally {
      await broken.close();
    }
  });
});
