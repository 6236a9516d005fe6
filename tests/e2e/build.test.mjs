// The Build view in a real browser: the smallest shape grown from random weights on the CPU
// path of the engine worker; loss falls, samples change; paused, the page reloaded, resumed
// from the OPFS checkpoint; the finished model joins the model menu and writes in Generate as
// the CLI writes with it; its download against `tinylm pretrain`'s model.bin for the same
// settings (shape, seed, text, steps). Screenshots of the view mid-training at three sizes.
// Also: the time estimate before Start against the run's own measured costs, the built model
// in use again after a reload (its share link names it by hash), the learning-rate and the
// warm-up/z-loss experiments against `tinylm pretrain --lr-sweep`, two kept models that survive a
// reload, and the form (text choice and settings) as left after a reload.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { assertClean, bundledPath, generate, openApp, REPO, screenshot, statusText, tinylm, useSite, waitForAsync, waitForState, weightDiff } from './helpers.mjs';

const TOK = bundledPath('tok512.bin');
const TEXT = join(REPO, 'public/corpora/tinystories.txt');
// The Seedling shape (protocol::build::SHAPES[0]) and its init seed.
const SHAPE = { key: 's30k', spec: '32,64,1,4,4,512,256', seed: 30 };
const RUN = { steps: 300, lr: 0.005, warmup: 10, batch: 4, seq: 32, zloss: 0, 'sample-every': 50 };
const SLOW = 120_000;
// The learning-rate experiment: rates over five powers of ten, a short run each, four ways (at 30
// every run ends above the loss it started from: blown up); the warm-up and z-loss experiment at
// one high rate (the variants of `--lr-sweep`, in its order).
const SWEEP = { rates: [0.0003, 0.003, 0.03, 1, 30], steps: 60 };
const VARIANTS = { lr: 0.03, names: ['plain', 'warm-up', 'z-loss', 'warm-up + z-loss'] };

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
    // A shape and a text are already chosen: the status says what Start does, not to pick them.
    assert.equal(await page.textContent('[data-testid=build-status]'),
      'Ready: press Start to train the shape chosen above from random weights.');
    for (const [k, v] of Object.entries(RUN)) await page.fill(`[data-testid=build-${k}]`, String(v));
    await page.waitForFunction(() => document.querySelector('[data-testid=build-estimate]')?.dataset.seconds, null, { timeout: SLOW });
    const est = await page.$eval('[data-testid=build-estimate]', (e) => ({ ...e.dataset, text: e.textContent }));
    const [stepMs, checkMs, seconds] = [Number(est.stepMs), Number(est.checkMs), Number(est.seconds)];
    assert.match(est.text, /takes about \d+ (seconds?|minutes?) on this device/, est.text);
    assert.ok(stepMs > 0 && checkMs > 0 && seconds > 0, JSON.stringify(est));
    // The whole run: its steps and a check at steps 0, 50, …, 300.
    assert.ok(Math.abs(seconds - (RUN.steps * stepMs + 7 * checkMs) / 1000) < 1e-6 * seconds, JSON.stringify(est));
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
    // The form shows the kept run's settings (the experiment and a new run start from them).
    for (const [k, v] of Object.entries(RUN)) assert.equal(Number(await page.inputValue(`[data-testid=build-${k}]`)), v, k);
    await page.click('[data-testid=build-resume]');
    assert.equal(await waitPhase(page, ['finished', 'error']), 'finished', await page.textContent('[data-testid=build-status]'));
    assert.equal(Number(await status(page, 'data-step')), RUN.steps);

    // The estimate's sum (steps × cost of a step + checks × cost of a check), with the costs this
    // run measured by the same clock as its whole time: the steps and checks are where the time
    // went. Both sides slow down together under load, so load alone cannot fail it; the parts
    // are inside the whole, so at most 1. Measured 0.825–0.938 over four runs (2026-12-04, shared
    // machine under load); the rest is checkpoints and messages. The estimate's own step cost
    // against this run's is logged, not asserted: they are timed at different moments (0.18–1.24).
    const timing = await page.$eval('[data-testid=build-timing]', (e) => Object.fromEntries(Object.entries(e.dataset).map(([k, v]) => [k, Number(v)])));
    const checks = Math.floor((RUN.steps - 1) / RUN['sample-every']) - Math.floor(pausedAt / RUN['sample-every']) + 1;
    assert.deepEqual([timing.steps, timing.checks], [RUN.steps - pausedAt, checks], JSON.stringify(timing));
    const share = timing.countedMs / timing.totalMs;
    console.log(`# build: estimate ${seconds.toFixed(1)} s (${stepMs.toFixed(2)} ms/step, ${checkMs.toFixed(0)} ms/check); resumed run ${timing.steps} steps at ${timing.stepMs.toFixed(2)} ms, ${timing.checks} checks at ${timing.checkMs.toFixed(0)} ms: ${timing.countedMs.toFixed(0)} of ${timing.totalMs.toFixed(0)} ms counted (${share.toFixed(3)}); estimate/run per step ${(stepMs / timing.stepMs).toFixed(2)} (machine shared, under load)`);
    assert.ok(share > 0.5 && share <= 1 + 1e-9, `steps and checks ${timing.countedMs} ms of the run's ${timing.totalMs} ms`);

    // The loss falls (random init: ~10.4 here), the held-out loss too; samples change.
    const [first, lastLoss] = [Number(await status(page, 'data-first-loss')), Number(await status(page, 'data-loss'))];
    assert.ok(lastLoss < first - 3, `the loss falls: ${first} -> ${lastLoss}`);
    const [heldStep, held] = (await status(page, 'data-held')).split(',').map(Number);
    assert.equal(heldStep, RUN.steps);
    assert.ok(held < first - 3, `held-out loss ${held} at the end, from a first training loss ${first}`);
    const chart = await page.$$eval('[data-testid=build-loss-chart] path', (p) => p.map((x) => x.getAttribute('d')));
    assert.equal(chart.length, 2);
    // The falling loss starts at the top left, so the top label sits at the right, off the curve;
    // the learning rate climbs from 0 (warm-up), so its top label stays at the left.
    const topAnchor = (sel) => page.$eval(`${sel} [data-testid=curves-top]`, (e) => e.getAttribute('text-anchor'));
    assert.deepEqual([await topAnchor('[data-testid=build-loss-chart]'), await topAnchor('[data-testid=gauge-lr]')], ['end', 'start']);
    // A first loss above even guessing's (ln 512) is explained under the chart, with its value.
    assert.ok(first > Math.log(512) + 0.5, `random init starts at ${first}`);
    assert.match(await page.textContent('[data-testid=build-loss] figcaption'),
      new RegExp(`ln 512 ≈ 6\\.2\\)\\. It starts higher, at ${first.toFixed(1).replace('.', '\\.')}: its random weights make confident guesses`));
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

    // A reload with the share link Generate put in the address: the link names the built model
    // and its hash; the page kept it, so it is in use again and writes the same story.
    const link = new URL(page.url()).hash;
    assert.match(link, /model_built=built-s30k-300\.bin&model_hash=[0-9a-f]{16}&/, link);
    const selected = (page) => page.$eval('[data-testid=model-select]', (s) => s.options[s.selectedIndex].textContent);
    const inUse = (name) => page.waitForFunction((n) => {
      const s = document.querySelector('[data-testid=model-select]');
      return s?.options[s.selectedIndex]?.textContent.includes(n);
    }, name, { timeout: SLOW });
    await page.reload();
    await inUse('built-s30k-300');
    assert.equal(await waitForState(page, ['ready', 'error'], 60_000), 'ready', await statusText(page));
    const again = await generate(page, { prompt: 'Once upon a time', temperature: 0, topp: 0.9, seed: 1, steps: 40 });
    assert.equal(again.text, story.text);
    // A reader without that model (another hash): told in words; the plain model writes.
    await page.goto('about:blank');
    await page.goto(`${site.server.url}${link.replace(/model_hash=[0-9a-f]+/, 'model_hash=0123456789abcdef')}`);
    await page.waitForSelector('[data-testid=link-note]', { timeout: SLOW });
    assert.match(await page.textContent('[data-testid=link-note]'), /“built-s30k-300\.bin”, a model grown in the sender's Build tab, which is not on this device/);
    assert.equal(await waitForState(page, ['ready', 'error'], 60_000), 'ready', await statusText(page));
    assert.match(await selected(page), /stories260K/);

    // The download: the model the Build view kept (offered again after the reloads).
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
    const { d, m } = weightDiff(got, want);
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

    // The learning-rate experiment: the same short run at five rates, four ways each (plain,
    // warm-up, z-loss, both: `--lr-sweep`'s variants in its order, warm-up 10 as the form); every
    // final loss is `tinylm pretrain --lr-sweep`'s, and so is each point of the rate charts.
    assert.ok(await page.$('[data-testid=build-sweep-empty]'), 'a hint before the experiment');
    await page.fill('[data-testid=build-rates]', SWEEP.rates.join(', '));
    await page.fill('[data-testid=build-sweep-steps]', String(SWEEP.steps));
    assert.equal(await page.inputValue('[data-testid=build-sweep-ways]'), 'four');
    await page.click('[data-testid=build-sweep-start]');
    await page.waitForFunction(() => document.querySelector('[data-testid=build-sweep-legend]')?.dataset.running === 'false', null, { timeout: SLOW });
    // Each run's final loss in run order ('' where it blew up: no finite loss).
    const finals = (await page.getAttribute('[data-testid=build-sweep-legend]', 'data-finals')).split(',').map((x) => (x === '' ? null : Number(x)));
    // The per-step chart draws one variant's runs at a time, one curve per rate.
    assert.equal(await page.$$eval('[data-testid=build-sweep-chart] path', (p) => p.length), SWEEP.rates.length);
    const legend = await page.$$eval('[data-testid=build-sweep-legend] li', (li) => li.map((l) => l.textContent));
    assert.equal(legend.length, SWEEP.rates.length);
    assert.match(await page.textContent('[data-testid=build-sweep]'), /Too small: it learns slowly\. Too large: it is unstable/);
    const sweepDir = join(work, 'sweep');
    tinylm(['pretrain', '--config', SHAPE.spec, '--seed', `${SHAPE.seed}`, '-z', TOK, '--text-file', join(work, 'train.txt'),
      '--batch', `${RUN.batch}`, '--seq', `${RUN.seq}`, '--data-seed', '1234', '--steps', `${SWEEP.steps}`, '--warmup', `${RUN.warmup}`,
      '--lr-sweep', SWEEP.rates.join(','), '-o', sweepDir]);
    const wantSweep = JSON.parse(readFileSync(join(sweepDir, 'lr_sweep.json'), 'utf8')).variants
      .flatMap((v) => v.runs.map((r) => ({ ...r, name: v.name, attn: Math.max(...r.attn_logit_max) })));
    assert.equal(finals.length, wantSweep.length);
    const diffs = wantSweep.map((r, i) => (r.final_loss === null || finals[i] === null ? 0 : Math.abs(r.final_loss - finals[i])));
    console.log(`# build: sweep finals page ${finals.map((x) => x?.toFixed(5))} CLI ${wantSweep.map((r) => r.final_loss?.toFixed(5))}; |Δ| ${diffs.map((d) => d.toExponential(1))}; legend ${JSON.stringify(legend)}`);
    // simd128 (page) against avx2+fma (CLI): last-bit differences that a stable run keeps small
    // and an unstable one amplifies, which is the lesson. Measured 2026-12-04 in two builds of the
    // kernels: |Δ| ≤ 2.6e-6 (then 4.0e-7) up to rate 0.03, bound 3e-5; at rate 1 1.5e-2 (then
    // 3.4e-2), bound 0.3: the unstable run's chaos moves it from build to build.
    // A run blew up where it has no finite loss or ended above the loss it started from (the
    // first step's, the same in every run: one init, one first batch); such runs are chaotic, so
    // page and CLI agree on that, not on the value (measured: 54–1031 at rate 30 in the CLI).
    const start = Number(await page.getAttribute('[data-testid=build-rate-charts]', 'data-cap'));
    assert.ok(Math.abs(start - wantSweep[0].loss[0]) <= 1e-5, `start ${start}, CLI ${wantSweep[0].loss[0]}`);
    const blewUp = (final, from) => final === null || final > from;
    const tol = (lr) => (lr < 0.1 ? 3e-5 : 0.3);
    for (const [i, r] of wantSweep.entries()) {
      assert.equal(r.lr, SWEEP.rates[i % SWEEP.rates.length]);
      const cliBlown = blewUp(r.final_loss, r.loss[0]);
      assert.equal(blewUp(finals[i], start), cliBlown, `${r.name} at ${r.lr}: page ${finals[i]}, CLI ${r.final_loss}`);
      if (!cliBlown) assert.ok(diffs[i] <= tol(r.lr), `${r.name} at ${r.lr}: page ${finals[i]}, CLI ${r.final_loss} (tolerance ${tol(r.lr)})`);
    }
    // Too small learns slowly: the smallest rate ends far above the best.
    const nums = finals.filter((x) => x !== null);
    assert.ok(finals[0] > Math.min(...nums) + 1, `finals ${finals}`);

    // The rate charts: one point per run, at its variant and rate, with its final loss; a run with
    // no finite loss, or one that ended above the loss it started from, is a cross in the top row.
    const marks = (chart) => page.$$eval(`[data-testid=${chart}] svg [data-lr]`, (els) => els.map((e) => ({
      variant: e.dataset.variant, lr: Number(e.dataset.lr), loss: e.dataset.loss, attn: Number(e.dataset.attn),
      diverged: e.dataset.diverged === 'true', cross: e.classList.contains('rate-blowup'),
      y: Number(e.getAttribute('cy') ?? e.dataset.y),
    })));
    const [lossPts, attnPts] = [await marks('build-rate-loss'), await marks('build-rate-attn')];
    assert.equal(lossPts.length, wantSweep.length);
    assert.equal(attnPts.length, wantSweep.length);
    let blown = 0;
    for (const [i, r] of wantSweep.entries()) {
      const at = (pts) => pts.filter((p) => p.variant === r.name && p.lr === r.lr);
      const [[p], [a]] = [at(lossPts), at(attnPts)];
      assert.ok(p && a && at(lossPts).length === 1, `${r.name} at ${r.lr}: one point in each chart`);
      const diverged = blewUp(finals[i], start);
      assert.equal(p.diverged, diverged, `${r.name} at ${r.lr}: final ${finals[i]}, start ${start}`);
      assert.equal(p.cross, diverged, `${r.name} at ${r.lr}: a cross exactly where it blew up`);
      if (!diverged) {
        assert.equal(Number(p.loss), finals[i], `${r.name} at ${r.lr}: the point is the run's final loss`);
        assert.ok(Math.abs(Number(p.loss) - r.final_loss) <= tol(r.lr), `${r.name} at ${r.lr}: point ${p.loss}, CLI ${r.final_loss}`);
      }
      // The largest attention logit of the run's steps, as the CLI's (1e-4 relative where stable).
      if (r.lr < 0.1) assert.ok(Math.abs(a.attn - r.attn) <= 1e-4 * r.attn, `${r.name} at ${r.lr}: attention ${a.attn}, CLI ${r.attn}`);
      blown += diverged;
    }
    assert.ok(blown >= 4, `every run at rate 30 blew up (${blown} in all)`);
    // Drawn where the values say: a higher loss is higher up (smaller y), the crosses above all.
    const drawn = lossPts.filter((p) => !p.cross).sort((a, b) => Number(a.loss) - Number(b.loss));
    for (let k = 1; k < drawn.length; k++) assert.ok(drawn[k].y <= drawn[k - 1].y, `loss ${drawn[k].loss} at y ${drawn[k].y}`);
    for (const c of lossPts.filter((p) => p.cross)) assert.ok(c.y < Math.min(...drawn.map((p) => p.y)), 'crosses in the top row');
    // Every label inside the drawing, none on top of another; the loss axis never below zero.
    // In screen pixels, as drawn (the axis title is rotated).
    const labels = await page.$$eval('[data-testid=build-rate-charts] svg', (svgs) => svgs.map((svg) => {
      const r = svg.getBoundingClientRect();
      return { w: r.width, h: r.height, boxes: [...svg.querySelectorAll('text')].map((t) => {
        const b = t.getBoundingClientRect();
        return { text: t.textContent, x0: b.left - r.left, x1: b.right - r.left, y0: b.top - r.top, y1: b.bottom - r.top };
      }) };
    }));
    for (const { w, h, boxes } of labels) {
      for (const b of boxes) assert.ok(b.x0 >= 0 && b.y0 >= 0 && b.x1 <= w && b.y1 <= h, `label “${b.text}” inside the drawing: ${JSON.stringify(b)}`);
      for (const [i, b] of boxes.entries()) {
        for (const c of boxes.slice(i + 1)) {
          const overlap = b.x0 < c.x1 && c.x0 < b.x1 && b.y0 < c.y1 && c.y0 < b.y1;
          assert.ok(!overlap, `labels “${b.text}” and “${c.text}” overlap`);
        }
      }
    }
    const ticks = labels[0].boxes.map((b) => Number(b.text)).filter((v) => !Number.isNaN(v));
    assert.ok(ticks.length >= 3 + SWEEP.rates.length && ticks.every((v) => v >= 0), `loss chart's numbers ${ticks}`);
    // The other variants' curves on request, one per rate.
    await page.check('[data-testid=build-sweep-show-3]');
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid=build-sweep-chart] path').length === n, SWEEP.rates.length);
    // On a phone the charts stack and nothing is wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    const wide = await page.evaluate(() => [document.documentElement.scrollWidth, document.querySelector('[data-testid=build-rate-charts]').scrollWidth]);
    assert.ok(wide.every((x) => x <= 390), `widths at 390 px: ${wide}`);
    await page.locator('[data-testid=build-sweep]').screenshot({ path: await screenshot(page, 'build-sweep-390') });
    await page.setViewportSize({ width: 1100, height: 900 });
    await page.locator('[data-testid=build-sweep]').screenshot({ path: await screenshot(page, 'build-sweep') });

    // Warm-up and z-loss at one high rate: the four runs' curves together, a sentence on what each
    // fix changed, and each run's losses step by step as `--lr-sweep`'s variants at that rate.
    assert.ok(await page.$('[data-testid=build-variants-empty]'), 'a hint before the experiment');
    await page.fill('[data-testid=build-variant-lr]', String(VARIANTS.lr));
    await page.click('[data-testid=build-variants-start]');
    await page.waitForFunction(() => document.querySelector('[data-testid=build-variants-legend]')?.dataset.running === 'false', null, { timeout: SLOW });
    assert.equal(await page.$$eval('[data-testid=build-variants-chart] path', (p) => p.length), 4);
    const rows = await page.$$eval('[data-testid=build-variants-legend] li', (li) => li.map((l) => [l.textContent, l.dataset.losses.split(',').map(Number)]));
    const summary = await page.textContent('[data-testid=build-variants-summary]');
    assert.match(summary, /^With warm-up: .+\. With z-loss: .+\. With warm-up \+ z-loss: .+\.$/, summary);
    // Rounded values that agree are told apart or "about the same", never "24 instead of 24".
    for (const m of summary.matchAll(/logit (\S+) instead of (\S+?)\.(?=\s|$)/g)) assert.notEqual(m[1], m[2], summary);
    for (const m of summary.matchAll(/final loss (\S+) \((?:lower|higher) than the plain run's (\S+)\)/g)) assert.notEqual(m[1], m[2], summary);
    await page.locator('[data-testid=build-variants]').screenshot({ path: await screenshot(page, 'build-variants') });
    const varDir = join(work, 'variants');
    tinylm(['pretrain', '--config', SHAPE.spec, '--seed', `${SHAPE.seed}`, '-z', TOK, '--text-file', join(work, 'train.txt'),
      '--batch', `${RUN.batch}`, '--seq', `${RUN.seq}`, '--data-seed', '1234', '--steps', `${SWEEP.steps}`, '--warmup', `${RUN.warmup}`,
      '--lr-sweep', String(VARIANTS.lr), '-o', varDir]);
    const wantVariants = JSON.parse(readFileSync(join(varDir, 'lr_sweep.json'), 'utf8')).variants;
    const varFinals = (await page.getAttribute('[data-testid=build-variants-legend]', 'data-finals')).split(',').map(Number);
    let worst = 0;
    for (const [i, v] of wantVariants.entries()) {
      assert.equal(v.name, VARIANTS.names[i]);
      assert.ok(rows[i][0].startsWith(`${v.name} (warm-up ${v.warmup}, z-loss ${v.z_loss})`), rows[i][0]);
      const run = v.runs[0];
      assert.equal(rows[i][1].length, run.loss.length, v.name);
      for (const [k, l] of run.loss.entries()) worst = Math.max(worst, Math.abs(l - rows[i][1][k]));
      worst = Math.max(worst, Math.abs(run.final_loss - varFinals[i]));
    }
    console.log(`# build: warm-up/z-loss at rate ${VARIANTS.lr}: page finals ${varFinals.map((x) => x.toFixed(5))}, CLI ${wantVariants.map((v) => v.runs[0].final_loss.toFixed(5))}; max |Δ| over every step ${worst.toExponential(2)}; ${summary}`);
    // simd128 (page) against avx2+fma (CLI), as the learning-rate experiment above, at a rate where
    // the runs are stable (at 0.1 the four runs' chaos moved the losses by up to 4.2e-2). Measured
    // max |Δ| 3.8e-6 over the four runs' 60 steps and finals (2026-12-04); bound ~8×.
    assert.ok(worst <= 3e-5, `page and CLI losses differ by ${worst}`);

    // The second model: 30 steps at rate 0.02, kept as B.
    await page.fill('[data-testid=build-steps]', '30');
    await page.fill('[data-testid=build-lr]', '0.02');
    await page.click('[data-testid=build-start]');
    assert.equal(await waitPhase(page, ['finished', 'error']), 'finished', await page.textContent('[data-testid=build-status]'));
    await page.click('[data-testid=build-keep-1]');
    await page.waitForFunction(() => document.querySelector('[data-testid=build-slot-1]')?.dataset.name === 'built-s30k-30.bin');

    // After a reload both are listed; each writes its own story in Generate, the CLI's with its file.
    // (The site's address without a share link, so the bundled model is in use at first.)
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

  test('a reload keeps the text choice (the reader\'s own text) and the settings as left', async () => {
    const { page, log } = await openApp(site.browser.context, site.server.url);
    assert.equal(await waitForState(page, ['ready', 'error'], 60_000), 'ready', await statusText(page));
    await page.click('[data-testid=tab-build]');
    // Typed after the form kept by the test before has been read back (else it replaces this).
    const restored = () => page.waitForSelector('[data-testid=build][data-form-restored=true]', { timeout: SLOW });
    await restored();
    const own = 'Tom had a red ball. He liked to throw it high.\nOne day the ball went over the fence.';
    const typed = { lr: '0.02', steps: '123', warmup: '0', zloss: '0.0001', 'sample-every': '7', rates: '0.001, 0.1', 'variant-lr': '0.3' };
    await page.selectOption('[data-testid=build-text]', 'own');
    await page.fill('[data-testid=build-own-text]', own);
    await page.check('[data-testid=build-shape-s30k]');
    for (const [k, v] of Object.entries(typed)) await page.fill(`[data-testid=build-${k}]`, v);
    await page.selectOption('[data-testid=build-sweep-ways]', 'one');
    // Saved as typed (every field as left is in the file; the reload reads it back). Polled from
    // here: waitForFunction took its async predicate's pending promise as true, so the reload
    // raced the last change and the page came back with the menu's old value (CI, 3 times).
    const want = { variant_lr: typed['variant-lr'], rates: typed.rates, sweep_ways: 'one', corpus: 'own', own_text: own };
    await waitForAsync(page, async (want) => {
      try {
        const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('tinylm-build');
        const saved = JSON.parse(await (await (await dir.getFileHandle('form.json')).getFile()).text());
        return Object.entries(want).every(([k, v]) => saved[k] === v);
      } catch {
        return false;
      }
    }, want, { timeout: SLOW });
    await page.reload();
    assert.equal(await waitForState(page, ['ready', 'error'], 60_000), 'ready', await statusText(page));
    await page.click('[data-testid=tab-build]');
    await restored();
    assert.equal(await page.inputValue('[data-testid=build-text]'), 'own');
    assert.equal(await page.inputValue('[data-testid=build-own-text]'), own);
    for (const [k, v] of Object.entries(typed)) assert.equal(await page.inputValue(`[data-testid=build-${k}]`), v, k);
    assert.equal(await page.inputValue('[data-testid=build-sweep-ways]'), 'one');
    await assertClean(page, log, site.server.url);
    await page.close();
  });
});
