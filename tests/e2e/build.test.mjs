// The Build view in a real browser: the smallest shape grown from random weights on the CPU
// path of the engine worker; loss falls, samples change; paused, the page reloaded, resumed
// from the OPFS checkpoint; the finished model joins the model menu and writes in Generate as
// the CLI writes with it; its download against `tinylm pretrain`'s model.bin for the same
// settings (shape, seed, text, steps). Screenshots of the view mid-training at three sizes.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { assertClean, bundledPath, generate, openApp, REPO, screenshot, statusText, tinylm, useSite, waitForState } from './helpers.mjs';

const TOK = bundledPath('tok512.bin');
const TEXT = join(REPO, 'public/corpora/tinystories.txt');
// The Seedling shape (protocol::build::SHAPES[0]) and its init seed.
const SHAPE = { key: 's30k', spec: '32,64,1,4,4,512,256', seed: 30 };
const RUN = { steps: 300, lr: 0.005, warmup: 10, batch: 4, seq: 32, zloss: 0, 'sample-every': 50 };
const SLOW = 120_000;

/** The floats of a llama2.c v0 file after its 7-int header. */
const floats = (buf) => new Float32Array(buf.buffer.slice(buf.byteOffset + 28, buf.byteOffset + buf.length));

describe('Build view (a model grown from nothing, CPU)', () => {
  const site = useSite();
  const work = mkdtempSync(join(tmpdir(), 'tinylm-build-'));

  const status = (page, attr) => page.getAttribute('[data-testid=build-status]', attr);
  async function waitPhase(page, phases) {
    await page.waitForFunction(
      (w) => w.includes(document.querySelector('[data-testid=build-status]')?.dataset.phase),
      [].concat(phases),
      { timeout: SLOW },
    );
    return status(page, 'data-phase');
  }
  const samples = (page) =>
    page.$$eval('[data-testid=build-samples] li', (li) => li.map((l) => [Number(l.dataset.step), l.querySelector('.sample').textContent]));

  test('trains, pauses, resumes after a reload, generates, and downloads what tinylm pretrain writes', async () => {
    const { page, log } = await openApp(site.browser.context, site.server.url);
    assert.equal(await waitForState(page, ['ready', 'error'], 60_000), 'ready', await statusText(page));
    await page.click('[data-testid=tab-build]');
    await page.check(`[data-testid=build-shape-${SHAPE.key}]`);
    await page.selectOption('[data-testid=build-text]', 'tinystories');
    for (const [k, v] of Object.entries(RUN)) await page.fill(`[data-testid=build-${k}]`, String(v));
    await page.click('[data-testid=build-start]');
    // Pause once a few steps are done: the worker ends after its step with a checkpoint.
    await page.waitForFunction(() => Number(document.querySelector('[data-testid=build-status]')?.dataset.step) >= 60, null, { timeout: SLOW });
    await page.click('[data-testid=build-pause]');
    assert.equal(await waitPhase(page, ['paused', 'error']), 'paused', await page.textContent('[data-testid=build-status]'));
    const pausedAt = Number(await status(page, 'data-step'));
    await page.waitForFunction((s) => document.querySelector('[data-testid=build-status]')?.dataset.savedStep === String(s), pausedAt);
    assert.ok(pausedAt >= 60 && pausedAt < RUN.steps, `paused at ${pausedAt}`);
    const trainBytes = Number(await status(page, 'data-train-bytes'));
    for (const [name, size] of [['390x844', [390, 844]], ['laptop', [1366, 768]], ['1920x1080', [1920, 1080]]]) {
      await page.setViewportSize({ width: size[0], height: size[1] });
      await screenshot(page, `build-mid-${name}`);
    }
    await page.setViewportSize({ width: 1100, height: 900 });

    // A reload offers the kept run; Resume continues it from the OPFS checkpoint.
    await page.reload();
    assert.equal(await waitForState(page, ['ready', 'error'], 60_000), 'ready', await statusText(page));
    await page.click('[data-testid=tab-build]');
    await waitPhase(page, 'paused');
    assert.equal(Number(await status(page, 'data-saved-step')), pausedAt);
    await page.click('[data-testid=build-resume]');
    assert.equal(await waitPhase(page, ['finished', 'error']), 'finished', await page.textContent('[data-testid=build-status]'));
    assert.equal(Number(await status(page, 'data-step')), RUN.steps);

    // The loss falls (random init: ~10.4 here), the held-out loss too; samples change.
    const [first, lastLoss] = [Number(await status(page, 'data-first-loss')), Number(await status(page, 'data-loss'))];
    assert.ok(lastLoss < first - 3, `the loss falls: ${first} -> ${lastLoss}`);
    const [heldStep, held] = (await status(page, 'data-held')).split(',').map(Number);
    assert.equal(heldStep, RUN.steps);
    assert.ok(held < first - 3, `held-out loss ${held} at the end, from a first training loss ${first}`);
    const chart = await page.$$eval('[data-testid=build-loss-chart] path', (p) => p.map((x) => x.getAttribute('d')));
    assert.equal(chart.length, 2);
    const s = await samples(page);
    assert.deepEqual(s.map((x) => x[0]), [0, 50, 100, 150, 200, 250, 300]);
    assert.notEqual(s[0][1], s[s.length - 1][1], 'the samples change as it trains');
    assert.ok(s.every(([, t]) => t.startsWith('Once upon a time')), JSON.stringify(s));

    // The model joined the menu and is in use; Generate writes with it what the CLI writes.
    await page.click('[data-testid=tab-generate]');
    assert.equal(await waitForState(page, ['ready', 'error'], 60_000), 'ready', await statusText(page));
    const menu = await page.$eval('[data-testid=model-select]', (s) => s.options[s.selectedIndex].textContent);
    assert.match(menu, /built-s30k-300/);
    const story = await generate(page, { prompt: 'Once upon a time', temperature: 0, topp: 0.9, seed: 1, steps: 40 });
    assert.equal(story.state, 'done', story.status);

    // The download.
    const [dl] = await Promise.all([page.waitForEvent('download'), (async () => {
      await page.click('[data-testid=tab-build]');
      await page.click('[data-testid=build-download]');
    })()]);
    const mine = join(work, 'built.bin');
    await dl.saveAs(mine);
    const got = readFileSync(mine);

    // The CLI: the same shape, seed, text (the part trained on), settings and steps.
    const text = readFileSync(TEXT).subarray(0, trainBytes);
    writeFileSync(join(work, 'train.txt'), text);
    const out = join(work, 'cli');
    const log1 = tinylm(['pretrain', '--config', SHAPE.spec, '--seed', `${SHAPE.seed}`, '-z', TOK, '--text-file', join(work, 'train.txt'),
      '--batch', `${RUN.batch}`, '--seq', `${RUN.seq}`, '--data-seed', '1234', '--steps', `${RUN.steps}`, '--lr', `${RUN.lr}`,
      '--warmup', `${RUN.warmup}`, '-o', out]).toString();
    const want = readFileSync(join(out, 'model.bin'));
    assert.equal(got.length, want.length);
    assert.deepEqual(got.subarray(0, 28), want.subarray(0, 28), 'the same header');
    const [a, b] = [floats(got), floats(want)];
    let d = 0;
    let m = 0;
    for (let i = 0; i < a.length; i++) {
      d = Math.max(d, Math.abs(a[i] - b[i]));
      m = Math.max(m, Math.abs(b[i]));
    }
    const losses = JSON.parse(readFileSync(join(out, 'losses.json'), 'utf8'));
    console.log(`# build: paused at ${pausedAt}; bytes equal: ${got.equals(want)}; max |Δw| ${d.toExponential(2)} (max |w| ${m.toFixed(3)}); CLI loss ${losses[0].toFixed(3)} -> ${losses[losses.length - 1].toFixed(3)}; ${log1.trim().split('\n').pop()}`);
    assert.ok(losses[losses.length - 1] < losses[0] - 1.0, `the loss falls: ${losses[0]} -> ${losses[losses.length - 1]}`);
    // Not bit for bit: the wasm build runs the simd128 kernels, the CLI avx2+fma (fused
    // multiply-adds, other summation orders), and 300 steps of AdamW carry the last-bit
    // differences along. Measured max |Δw| 2.0e-6 with max |w| 1.36 (2026-12-04); bound ~10×.
    assert.ok(d <= 2e-5 * Math.max(1, m), `weights within 2e-5: ${d}`);

    // The story Generate wrote is the CLI's greedy story with the downloaded model.
    const cli = tinylm(['generate', mine, '-z', TOK, '-t', '0', '-n', '40', '-i', 'Once upon a time']).toString();
    assert.ok(story.text.length > 10 && cli.startsWith(story.text.trimEnd().slice(0, 30)), `page ${JSON.stringify(story.text)} vs CLI ${JSON.stringify(cli)}`);
    await assertClean(page, log, site.server.url);
    await page.close();
  });
});
