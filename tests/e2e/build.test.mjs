// The Build view in a real browser: the smallest shape grown from random weights on the CPU
// path of the engine worker; loss falls, samples change; paused, the page reloaded, resumed
// from the OPFS checkpoint; the finished model joins the model menu and writes in Generate as
// the CLI writes with it; its download against `tinylm pretrain`'s model.bin for the same
// settings (shape, seed, text, steps). Screenshots of the view mid-training at three sizes.
// Also: the time estimate before Start against the run's own pace, the learning-rate experiment
// against `tinylm pretrain --lr-sweep`, and two kept models that survive a reload.
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
// The learning-rate experiment: rates over four powers of ten, a short run each.
const SWEEP = { rates: [0.0003, 0.003, 0.03, 1], steps: 60 };

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
    // Before Start: a hint, not an empty chart; and the time the run would take, measured here.
    assert.equal(await page.$('[data-testid=build-loss-chart]'), null);
    assert.match(await page.textContent('[data-testid=build-loss-empty]'), /once training starts/);
    for (const [k, v] of Object.entries(RUN)) await page.fill(`[data-testid=build-${k}]`, String(v));
    await page.waitForFunction(() => document.querySelector('[data-testid=build-estimate]')?.dataset.seconds, null, { timeout: SLOW });
    const est = await page.$eval('[data-testid=build-estimate]', (e) => ({ ...e.dataset, text: e.textContent }));
    const [stepMs, checkMs, seconds] = [Number(est.stepMs), Number(est.checkMs), Number(est.seconds)];
    assert.match(est.text, /takes about \d+ (seconds?|minutes?) on this device/, est.text);
    assert.ok(stepMs > 0 && checkMs > 0 && seconds > 0, JSON.stringify(est));
    // The whole run: its steps and a check at steps 0, 50, …, 300.
    assert.ok(Math.abs(seconds - (RUN.steps * stepMs + 7 * checkMs) / 1000) < 1e-6 * seconds, JSON.stringify(est));
    await page.click('[data-testid=build-start]');
    // Timed against the run: from its first step to its 60th (59 steps and the check at step 50).
    await page.waitForFunction(() => Number(document.querySelector('[data-testid=build-status]')?.dataset.step) >= 1, null, { timeout: SLOW });
    const t1 = Date.now();
    // Pause once a few steps are done: the worker ends after its step with a checkpoint.
    await page.waitForFunction(() => Number(document.querySelector('[data-testid=build-status]')?.dataset.step) >= 60, null, { timeout: SLOW, polling: 5 });
    const took = Date.now() - t1;
    const predicted = 59 * stepMs + checkMs;
    console.log(`# build: estimate ${seconds.toFixed(1)} s for the run (${stepMs.toFixed(2)} ms/step, ${checkMs.toFixed(0)} ms/check); steps 1->60 took ${took} ms, predicted ${predicted.toFixed(0)} ms (machine shared, under load)`);
    // The right order, not a speed: within 5× either way. Measured predicted/took 0.41–3.6 over eight
    // runs (2026-12-04, machine shared and under load; before the estimate warmed up for 200 ms).
    assert.ok(predicted / took > 0.2 && predicted / took < 5, `predicted ${predicted} ms, took ${took} ms`);
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
    // The form shows the kept run's settings (the experiment and a new run start from them).
    for (const [k, v] of Object.entries(RUN)) assert.equal(Number(await page.inputValue(`[data-testid=build-${k}]`)), v, k);
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
    const greedy = (model) => tinylm(['generate', model, '-z', TOK, '-t', '0', '-n', '40', '-i', 'Once upon a time']).toString();
    const cli = greedy(mine);
    const same = (page, cli) => page.length > 10 && cli.startsWith(page.trimEnd().slice(0, 30));
    assert.ok(same(story.text, cli), `page ${JSON.stringify(story.text)} vs CLI ${JSON.stringify(cli)}`);

    // Kept models: this one as A; a second, shorter run at another rate as B.
    await page.click('[data-testid=build-keep-0]');
    await page.waitForFunction(() => document.querySelector('[data-testid=build-slot-0]')?.dataset.name === 'built-s30k-300.bin');

    // The learning-rate experiment: the same short run at four rates; the final losses are
    // `tinylm pretrain --lr-sweep`'s (its "warm-up" variant: warm-up 10, no z-loss, as the form).
    assert.ok(await page.$('[data-testid=build-sweep-empty]'), 'a hint before the experiment');
    await page.fill('[data-testid=build-rates]', SWEEP.rates.join(', '));
    await page.fill('[data-testid=build-sweep-steps]', String(SWEEP.steps));
    await page.click('[data-testid=build-sweep-start]');
    await page.waitForFunction(() => document.querySelector('[data-testid=build-sweep-legend]')?.dataset.running === 'false', null, { timeout: SLOW });
    const finals = (await page.getAttribute('[data-testid=build-sweep-legend]', 'data-finals')).split(',').map(Number);
    const curves = await page.$$eval('[data-testid=build-sweep-chart] path', (p) => p.length);
    assert.equal(curves, SWEEP.rates.length);
    const legend = await page.$$eval('[data-testid=build-sweep-legend] li', (li) => li.map((l) => l.textContent));
    await page.locator('[data-testid=build-sweep]').screenshot({ path: await screenshot(page, 'build-sweep') });
    assert.match(await page.textContent('[data-testid=build-sweep]'), /Too small: it learns slowly\. Too large: it is unstable/);
    const sweepDir = join(work, 'sweep');
    tinylm(['pretrain', '--config', SHAPE.spec, '--seed', `${SHAPE.seed}`, '-z', TOK, '--text-file', join(work, 'train.txt'),
      '--batch', `${RUN.batch}`, '--seq', `${RUN.seq}`, '--data-seed', '1234', '--steps', `${SWEEP.steps}`, '--warmup', `${RUN.warmup}`,
      '--lr-sweep', SWEEP.rates.join(','), '-o', sweepDir]);
    const wantSweep = JSON.parse(readFileSync(join(sweepDir, 'lr_sweep.json'), 'utf8')).variants.find((v) => v.name === 'warm-up').runs;
    const diffs = wantSweep.map((r, i) => Math.abs(r.final_loss - finals[i]));
    console.log(`# build: sweep finals page ${finals.map((x) => x.toFixed(5))} CLI ${wantSweep.map((r) => r.final_loss.toFixed(5))}; |Δ| ${diffs.map((d) => d.toExponential(1))}; legend ${JSON.stringify(legend)}`);
    // simd128 (page) against avx2+fma (CLI): last-bit differences that a stable run keeps small
    // and an unstable one amplifies, which is the lesson. Measured 2026-12-04 in two builds of the
    // kernels: |Δ| ≤ 2.6e-6 (then 4.0e-7) up to rate 0.03, bound 3e-5; at rate 1 1.5e-2 (then
    // 3.4e-2), bound 0.3: the unstable run's chaos moves it from build to build.
    for (const [i, r] of wantSweep.entries()) {
      assert.equal(r.lr, SWEEP.rates[i]);
      const tol = r.lr < 0.1 ? 3e-5 : 0.3;
      assert.ok(diffs[i] <= tol, `rate ${r.lr}: page ${finals[i]}, CLI ${r.final_loss} (tolerance ${tol})`);
    }
    // Too small learns slowly: the smallest rate ends far above the best.
    assert.ok(finals[0] > Math.min(...finals) + 1, `finals ${finals}`);

    // The second model: 30 steps at rate 0.02, kept as B.
    await page.fill('[data-testid=build-steps]', '30');
    await page.fill('[data-testid=build-lr]', '0.02');
    await page.click('[data-testid=build-start]');
    assert.equal(await waitPhase(page, ['finished', 'error']), 'finished', await page.textContent('[data-testid=build-status]'));
    await page.click('[data-testid=build-keep-1]');
    await page.waitForFunction(() => document.querySelector('[data-testid=build-slot-1]')?.dataset.name === 'built-s30k-30.bin');

    // After a reload both are listed; each writes its own story in Generate, the CLI's with its file.
    // (The site's address without the share link the built model put in it: the link names a
    // file the page no longer has, and says so.)
    await page.goto(site.server.url);
    assert.equal(await waitForState(page, ['ready', 'error'], 60_000), 'ready', await statusText(page));
    await page.click('[data-testid=tab-build]');
    await page.waitForFunction(() => document.querySelector('[data-testid=build-slot-1]')?.dataset.name, null, { timeout: SLOW });
    const names = await page.$$eval('[data-testid^=build-slot-]', (li) => li.filter((l) => l.dataset.name !== undefined).map((l) => l.dataset.name));
    assert.deepEqual(names, ['built-s30k-300.bin', 'built-s30k-30.bin']);
    const stories = [];
    for (const i of [0, 1]) {
      const [dl] = await Promise.all([page.waitForEvent('download'), page.click(`[data-testid=build-slot-download-${i}]`)]);
      const file = join(work, `slot-${i}.bin`);
      await dl.saveAs(file);
      await page.click(`[data-testid=build-slot-use-${i}]`);
      await page.click('[data-testid=tab-generate]');
      const name = `built-s30k-${i ? 30 : 300}-${'AB'[i]}`;
      await page.waitForFunction((n) => {
        const s = document.querySelector('[data-testid=model-select]');
        return s?.options[s.selectedIndex]?.textContent.includes(n);
      }, name, { timeout: SLOW });
      assert.equal(await waitForState(page, ['ready', 'error'], 60_000), 'ready', await statusText(page));
      const story = await generate(page, { prompt: 'Once upon a time', temperature: 0, topp: 0.9, seed: 1, steps: 40 });
      assert.equal(story.state, 'done', story.status);
      const cliStory = greedy(file);
      assert.ok(same(story.text, cliStory), `slot ${i}: page ${JSON.stringify(story.text)} vs CLI ${JSON.stringify(cliStory)}`);
      stories.push(story.text);
      await page.click('[data-testid=tab-build]');
    }
    assert.ok(readFileSync(join(work, 'slot-0.bin')).equals(got), 'model A is the first run\'s download');
    assert.notEqual(stories[0], stories[1], 'each model writes its own story');
    // Side by side: both write on the sample prompt, differently.
    await page.click('[data-testid=build-compare]');
    await page.waitForSelector('[data-testid=build-compared]', { timeout: SLOW });
    await screenshot(page, 'build-slots-compared');
    const compared = await page.$$eval('[data-testid=build-compared] .sample', (p) => p.map((x) => x.textContent));
    assert.equal(compared.length, 2);
    assert.ok(compared.every((t) => t.startsWith('Once upon a time')) && compared[0] !== compared[1], JSON.stringify(compared));
    await assertClean(page, log, site.server.url);
    await page.close();
  });
});
