// The Build view training on WebGPU (SwiftShader, Chromium's software adapter): the smallest
// shape grown from random weights by the GPU trainer in the engine worker; the page says where it
// trains; loss falls and samples change; paused, reloaded and resumed from the OPFS checkpoint
// (on WebGPU again); the model then writes in Generate, and its download matches what
// `tinylm pretrain --backend gpu` (lavapipe) writes for the same settings, within rounding.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { assertClean, bundledPath, generate, openApp, REPO, screenshot, statusText, tinylm, useSite, waitForState, weightDiff } from './helpers.mjs';

const TOK = bundledPath('tok512.bin');
const TEXT = join(REPO, 'public/corpora/tinystories.txt');
const SHAPE = { key: 's30k', spec: '32,64,1,4,4,512,256', seed: 30 };
const RUN = { steps: 40, lr: 0.01, warmup: 5, batch: 4, seq: 32, zloss: 0.0001, 'sample-every': 20 };
const SLOW = 300_000;

describe('Build view on WebGPU (SwiftShader): full training by the GPU trainer', () => {
  const site = useSite({ webgpu: true });
  const work = mkdtempSync(join(tmpdir(), 'tinylm-build-gpu-'));
  const status = (page, attr) => page.getAttribute('[data-testid=build-status]', attr);
  const waitPhase = async (page, phases) => {
    await page.waitForFunction((w) => w.includes(document.querySelector('[data-testid=build-status]')?.dataset.phase), phases, { timeout: SLOW });
    return status(page, 'data-phase');
  };

  test('trains on WebGPU, says so, resumes after a reload, generates, and downloads what tinylm pretrain --backend gpu writes', async () => {
    const { page, log } = await openApp(site.browser.context, site.server.url);
    assert.equal(await waitForState(page, ['ready', 'error'], 60_000), 'ready', await statusText(page));
    await page.click('[data-testid=tab-build]');
    await page.check(`[data-testid=build-shape-${SHAPE.key}]`);
    await page.selectOption('[data-testid=build-text]', 'tinystories');
    for (const [k, v] of Object.entries(RUN)) await page.fill(`[data-testid=build-${k}]`, String(v));
    await page.selectOption('[data-testid=build-device]', 'gpu');
    // The estimate is measured on the device the run would use.
    await page.waitForFunction(() => document.querySelector('[data-testid=build-estimate]')?.dataset.seconds, null, { timeout: SLOW });
    await page.click('[data-testid=build-start]');
    await page.waitForSelector('[data-testid=build-device-used]', { timeout: SLOW });
    const device = await page.getAttribute('[data-testid=build-device-used]', 'data-device');
    assert.match(device, /^WebGPU \(.*software fallback adapter\)\)$/, device);
    await page.waitForFunction(() => Number(document.querySelector('[data-testid=build-status]')?.dataset.step) >= 10, null, { timeout: SLOW });
    await screenshot(page, 'build-webgpu-mid');
    await page.click('[data-testid=build-pause]');
    assert.equal(await waitPhase(page, ['paused', 'error']), 'paused', await page.textContent('[data-testid=build-status]'));
    const pausedAt = Number(await status(page, 'data-step'));
    await page.waitForFunction((s) => document.querySelector('[data-testid=build-status]')?.dataset.savedStep === String(s), pausedAt, { timeout: SLOW });
    const trainBytes = Number(await status(page, 'data-train-bytes'));

    // A reload keeps the choice with the run; Resume trains on WebGPU again.
    await page.reload();
    assert.equal(await waitForState(page, ['ready', 'error'], 60_000), 'ready', await statusText(page));
    await page.click('[data-testid=tab-build]');
    await waitPhase(page, ['paused']);
    assert.equal(await page.inputValue('[data-testid=build-device]'), 'gpu');
    await page.click('[data-testid=build-resume]');
    await page.waitForSelector('[data-testid=build-device-used]', { timeout: SLOW });
    assert.match(await page.getAttribute('[data-testid=build-device-used]', 'data-device'), /^WebGPU \(/);
    assert.equal(await waitPhase(page, ['finished', 'error']), 'finished', await page.textContent('[data-testid=build-status]'));
    assert.equal(Number(await status(page, 'data-step')), RUN.steps);
    const samples = await page.$$eval('[data-testid=build-samples] li', (li) => li.map((l) => [Number(l.dataset.step), l.querySelector('.sample').textContent]));
    assert.deepEqual(samples.map((s) => s[0]), [0, 20, 40]);
    assert.notEqual(samples[0][1], samples[2][1], 'the samples change as it trains');

    // The model joined the menu: Generate writes with it.
    await page.click('[data-testid=tab-generate]');
    assert.equal(await waitForState(page, ['ready', 'error'], 60_000), 'ready', await statusText(page));
    assert.match(await page.$eval('[data-testid=model-select]', (s) => s.options[s.selectedIndex].textContent), /built-s30k-40/);
    const story = await generate(page, { prompt: 'Once upon a time', temperature: 0, topp: 0.9, seed: 1, steps: 30 });
    assert.equal(story.state, 'done', story.status);
    assert.ok(story.text.startsWith('Once upon a time'), story.text);

    const [dl] = await Promise.all([page.waitForEvent('download'), (async () => {
      await page.click('[data-testid=tab-build]');
      await page.click('[data-testid=build-download]');
    })()]);
    const mine = join(work, 'built.bin');
    await dl.saveAs(mine);
    const got = readFileSync(mine);

    // The CLI on the GPU (lavapipe here): the same shape, seed, text, settings and steps.
    writeFileSync(join(work, 'train.txt'), readFileSync(TEXT).subarray(0, trainBytes));
    const out = join(work, 'cli');
    tinylm(['pretrain', '--config', SHAPE.spec, '--seed', `${SHAPE.seed}`, '-z', TOK, '--text-file', join(work, 'train.txt'),
      '--batch', `${RUN.batch}`, '--seq', `${RUN.seq}`, '--data-seed', '1234', '--steps', `${RUN.steps}`, '--lr', `${RUN.lr}`,
      '--warmup', `${RUN.warmup}`, '--z-loss', `${RUN.zloss}`, '--backend', 'gpu', '-o', out]);
    const want = readFileSync(join(out, 'model.bin'));
    assert.equal(got.length, want.length);
    assert.deepEqual(got.subarray(0, 28), want.subarray(0, 28), 'the same header');
    const { d, m } = weightDiff(got, want);
    const losses = JSON.parse(readFileSync(join(out, 'losses.json'), 'utf8'));
    const [first, last] = [Number(await status(page, 'data-first-loss')), Number(await status(page, 'data-loss'))];
    console.log(`# build on WebGPU: paused at ${pausedAt}; page loss ${first.toFixed(4)} -> ${last.toFixed(4)}, CLI (lavapipe) ${losses[0].toFixed(4)} -> ${losses[RUN.steps - 1].toFixed(4)}; max |Δw| ${d.toExponential(2)} (max |w| ${m.toFixed(3)})`);
    assert.ok(last < first - 0.5, `the loss falls: ${first} -> ${last}`);
    // Two GPUs' roundings (SwiftShader, lavapipe) through 40 AdamW steps: measured max |Δw|
    // 1.3e-6 with max |w| 1.33 (2026-12-05); bound ~10×.
    assert.ok(Math.abs(first - losses[0]) <= 1e-5 * losses[0], `step-1 loss ${first} vs the CLI's ${losses[0]}`);
    assert.ok(d <= 1.5e-5 * Math.max(1, m), `weights within 1.5e-5: ${d}`);

    // Where WebGPU offers no adapter, a run asked for WebGPU says why and trains on the CPU.
    const worker = page.workers().find((w) => /worker/.test(w.url()));
    assert.ok(worker, `engine worker among ${page.workers().map((w) => w.url())}`);
    await worker.evaluate(() => { GPU.prototype.requestAdapter = async () => null; });
    await page.fill('[data-testid=build-steps]', '3');
    await page.click('[data-testid=build-start]');
    // The new run says where it trains (the finished run before it said WebGPU), then ends.
    await page.waitForFunction(() => /^the CPU/.test(document.querySelector('[data-testid=build-device-used]')?.dataset.device ?? ''), null, { timeout: SLOW });
    assert.equal(await waitPhase(page, ['finished', 'error']), 'finished', await page.textContent('[data-testid=build-status]'));
    const fellBack = await page.getAttribute('[data-testid=build-device-used]', 'data-device');
    assert.match(fellBack, /^the CPU \(WebGPU could not train: .+\)$/, fellBack);
    assert.match(await page.textContent('[data-testid=build-device-used]'), /Training on the CPU \(WebGPU could not train/);
    await assertClean(page, log, site.server.url);
    await page.close();
  });
});
