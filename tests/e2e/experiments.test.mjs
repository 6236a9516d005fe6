// The Inspect view's Experiments panel in Chromium, on the CPU path and on WebGPU (SwiftShader):
// knock-outs, steering and activation patching driven through the page, every number it shows
// (tokens of each story, first differences, next-token odds, the steering direction's length,
// every cell of both patching maps) checked against the native CLI's JSON for the same settings.
// Knocking out nothing and steering at strength 0 must give the unchanged story; patching a
// prompt into itself must give a map of exactly 1. Also: every control labelled, and the panel
// fitting 390 px wide, its maps scrolling in their own box (screenshots at 390×844 and 1920×1080).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, after, describe, test } from 'node:test';
import {
  ARTIFACTS, assertClean, bundledPath, openApp, screenshot, statusText, tinylm, useSite, waitForState,
} from './helpers.mjs';

const MODEL = bundledPath('stories260K.bin');
const TOKENIZER = bundledPath('tok512.bin');
const SLOW = 240_000;
const PROMPT = 'Once upon a time';
const STEPS = 48;
// The knock-out tested: two heads and a whole MLP block (the story changes within 48 steps).
const HEADS = [[1, 2], [3, 4]];
const SKIP_MLP = [4];
const HAPPY = ['She was very happy.', 'They laughed and played all day.', 'He smiled. It was a great day.'];
const SAD = ['She was very sad.', 'They cried and cried all day.', 'He was angry. It was a bad day.'];
const STEER_LAYER = 2;
const STRENGTH = 2;

const cli = (args) => JSON.parse(tinylm(args).toString('utf8'));
const model = ['-z', TOKENIZER];

/** The generation flags of the CLI for the settings the page is given. */
function genFlags(s) {
  return [MODEL, ...model, '-t', String(s.temperature), '-p', String(s.topp), '-s', String(s.seed),
    '-n', String(s.steps), '-i', PROMPT, '--json'];
}

/** The largest |logit| of `tokens` at any position under the (changed) model, from the CLI. */
function maxLogit(tokens, extra = []) {
  const j = cli(['inspect', MODEL, ...model, '--ids', tokens.join(','), '--top', '512', '--json', ...extra]);
  let m = 0;
  for (const p of j.positions) for (const c of p.next_token.top) m = Math.max(m, Math.abs(c.logit));
  return { max: m, json: j };
}

async function waitDone(page, kind) {
  await page.waitForFunction(
    (k) => ['done', 'error', 'stopped'].includes(document.querySelector(`[data-testid=${k}-status]`)?.dataset.state),
    kind, { timeout: SLOW },
  );
  const state = await page.getAttribute(`[data-testid=${kind}-status]`, 'data-state');
  assert.equal(state, 'done', await page.textContent(`[data-testid=${kind}-status]`));
}

const tokensOf = async (page, testid) => JSON.parse(await page.getAttribute(`[data-testid=${testid}]`, 'data-tokens'));
const firstDiff = async (page, testid) => {
  const v = await page.getAttribute(`[data-testid=${testid}]`, 'data-first-diff');
  return v === '' ? null : Number(v);
};

/** Every position's next-token odds shown after a knock-out: [{ before, after, kl }]. */
async function odds(page) {
  return page.$$eval('[data-testid=ko-odds] .ko-tok', (els) => els.map((e) => ({
    before: e.dataset.before === '' ? null : Number(e.dataset.before),
    after: e.dataset.after === '' ? null : Number(e.dataset.after),
    kl: Number(e.dataset.kl),
  })));
}

async function setRange(page, testid, value) {
  await page.$eval(`[data-testid=${testid}]`, (el, v) => {
    el.value = v;
    el.dispatchEvent(new Event('input', { bubbles: true }));
  }, String(value));
}

async function setChecked(page, testid, on) {
  const el = page.locator(`[data-testid=${testid}]`);
  if ((await el.isChecked()) !== on) await el.click();
}

for (const mode of ['cpu', 'webgpu']) {
  // CPU: seeded sampling, reproduced exactly; WebGPU: greedy (its sampler's sums may differ).
  const settings = mode === 'cpu' ? { temperature: 1, topp: 0.9, seed: 42, steps: STEPS }
    : { temperature: 0, topp: 0.9, seed: 1, steps: STEPS };
  // Logits within 1e-5·max(1, max|logit|) on the CPU and 1e-4·… on the GPU; probabilities and
  // logit differences move no more than the logits do.
  const rel = mode === 'cpu' ? 1e-5 : 1e-4;

  describe(`Experiments panel (${mode === 'cpu' ? 'CPU only' : 'WebGPU on SwiftShader'})`, () => {
    let page;
    let log;
    // Registered before useSite's hooks, so the page is checked and closed before the browser.
    after(async () => {
      if (!page) return;
      await assertClean(page, log, site.server.url);
      await page.close();
    });
    const site = useSite({ webgpu: mode === 'webgpu' });

    before(async () => {
      // Auto never takes a software adapter (SwiftShader): WebGPU is asked for by name.
      const url = mode === 'webgpu' ? `${site.server.url}#backend=webgpu` : site.server.url;
      ({ page, log } = await openApp(site.browser.context, url));
      assert.equal(await waitForState(page, ['ready', 'error'], SLOW), 'ready', await statusText(page));
      assert.equal(await page.getAttribute('[data-testid=backend]', 'data-kind'), mode);
      await page.fill('[data-testid=prompt]', PROMPT);
      await page.fill('[data-testid=temperature]', String(settings.temperature));
      await page.fill('[data-testid=topp]', String(settings.topp));
      await page.fill('[data-testid=seed]', String(settings.seed));
      await page.fill('[data-testid=steps]', String(settings.steps));
      await page.click('[data-testid=tab-inspect]');
      await page.waitForSelector('[data-testid=experiments]');
    });

    test('knock-outs: nothing knocked out is the unchanged story; heads and a block match the CLI', async () => {
      const ref = cli(['generate', ...genFlags(settings), '--ablate', HEADS.map(([l, h]) => `${l}.${h}`).join(','),
        '--skip-mlp', SKIP_MLP.join(',')]);
      // Nothing ticked: the same story, and the odds did not move at all.
      await page.click('[data-testid=ko-run]');
      await waitDone(page, 'knockout');
      assert.match(await page.textContent('[data-testid=ex-settings]'), new RegExp(`seed ${settings.seed},`));
      assert.deepEqual(await tokensOf(page, 'ko-original'), ref.original.tokens, 'the unchanged story is the CLI\'s');
      assert.deepEqual(await tokensOf(page, 'ko-changed'), ref.original.tokens, 'no knock-out: the same story');
      assert.equal(await firstDiff(page, 'ko-result'), null);
      assert.equal(await page.getAttribute('[data-testid=ko-result]', 'data-description'), 'nothing changed');
      const none = await odds(page);
      assert.equal(none.length, ref.original.tokens.length);
      for (const o of none) {
        assert.equal(o.kl, 0);
        assert.equal(o.before, o.after);
      }

      for (const [l, h] of HEADS) await setChecked(page, `ko-head-${l}-${h}`, true);
      for (const l of SKIP_MLP) await setChecked(page, `ko-skip-mlp-${l}`, true);
      await page.click('[data-testid=ko-run]');
      await waitDone(page, 'knockout');
      assert.equal(await page.getAttribute('[data-testid=ko-result]', 'data-description'), ref.runs[0].description);
      // What the reader sees counts layers and heads from 1, as the attention view does (the
      // CLI's description above, and its --ablate 1.2, count from 0).
      assert.match(await page.textContent('[data-testid=ko-changed-words]'),
        /^Changed: head 3 of layer 2 and head 5 of layer 4 zeroed; MLP skipped in layer 5 \(/);
      assert.equal(await page.getAttribute('[data-testid=ko-head-1-2]', 'aria-label'), 'Switch off head 3 of layer 2');
      assert.equal(await page.getAttribute('[data-testid=ko-skip-mlp-4]', 'aria-label'), 'Skip the MLP block of layer 5');
      assert.equal(await page.textContent('[data-testid=head-1-2] .visually-hidden'), 'Layer 2, head 3');
      const grid = await page.$$eval('.ko-grid > span', (els) => els.map((e) => e.textContent));
      assert.deepEqual(grid.slice(0, 10), ['head', '1', '2', '3', '4', '5', '6', '7', '8', 'L1']);
      assert.match(await page.textContent('.ko-heads legend'), /counted from 1/);
      assert.deepEqual(await tokensOf(page, 'ko-original'), ref.original.tokens);
      assert.deepEqual(await tokensOf(page, 'ko-changed'), ref.runs[0].tokens, 'the knocked-out story is the CLI\'s');
      assert.equal(await firstDiff(page, 'ko-result'), ref.runs[0].first_difference);
      assert.notEqual(ref.runs[0].first_difference, null, 'the knock-out should change the story');
      assert.equal(await page.locator('[data-testid=ko-changed-first-diff]').count(), 1, 'the first difference is marked');

      // The odds at every position against `tinylm inspect --ablate … --json` over the unchanged story.
      const flags = ['--ablate', HEADS.map(([l, h]) => `${l}.${h}`).join(','), '--skip-mlp', SKIP_MLP.join(',')];
      const { max, json } = maxLogit(ref.original.tokens, flags);
      const tol = rel * Math.max(1, max);
      const shown = await odds(page);
      assert.equal(shown.length, json.changes.length);
      let worst = 0;
      json.changes.forEach((c, t) => {
        if (c.prob_before === null) return assert.equal(shown[t].before, null);
        worst = Math.max(worst, Math.abs(shown[t].before - c.prob_before), Math.abs(shown[t].after - c.prob_after));
      });
      assert.ok(worst <= tol, `odds differ from the CLI by ${worst} (tolerance ${tol})`);
      console.log(`# ${mode}: knock-out odds max |Δ| vs CLI = ${worst.toExponential(2)}`);
      assert.ok(json.changes.some((c) => c.kl > 1e-3), 'the odds should move somewhere');
      // The readout opens on the token before the first different one: the odds there moved and
      // made the story part (it opened on the different token itself, whose odds barely moved).
      const parted = ref.runs[0].first_difference - 1;
      assert.equal(await page.inputValue('[data-testid=ko-pos]'), String(parted));
      assert.match(await page.textContent('[data-testid=ko-readout]'), new RegExp(`^After token ${parted} \\(`));
      assert.ok(shown[parted].kl > 0, `the odds after token ${parted} should have moved`);
      assert.equal(await page.textContent('[data-testid=ko-odds-0]'), '<s>', 'the start marker as in the Tokens view');
      // The readout says it in words.
      await setRange(page, 'ko-pos', 3);
      assert.match(await page.textContent('[data-testid=ko-readout]'), /^After token 3 \(“.*”\): The token that came next, “.*”, had [\d.]+% \(rank \d+\) before/);

      // Mean ablation of the same heads (no blocks skipped), against --ablate-mean.
      for (const l of SKIP_MLP) await setChecked(page, `ko-skip-mlp-${l}`, false);
      await page.click('[data-testid=ko-mean]');
      const meanRef = cli(['generate', ...genFlags(settings), '--ablate', HEADS.map(([l, h]) => `${l}.${h}`).join(','), '--ablate-mean']);
      await page.click('[data-testid=ko-run]');
      await waitDone(page, 'knockout');
      assert.equal(await page.getAttribute('[data-testid=ko-result]', 'data-description'), meanRef.runs[0].description);
      assert.deepEqual(await tokensOf(page, 'ko-changed'), meanRef.runs[0].tokens, 'the mean-ablated story is the CLI\'s');
      const m = maxLogit(meanRef.original.tokens, ['--ablate', HEADS.map(([l, h]) => `${l}.${h}`).join(','), '--ablate-mean']);
      const meanShown = await odds(page);
      let meanWorst = 0;
      m.json.changes.forEach((c, t) => {
        if (c.prob_before !== null) meanWorst = Math.max(meanWorst, Math.abs(meanShown[t].after - c.prob_after));
      });
      assert.ok(meanWorst <= rel * Math.max(1, m.max), `mean-ablated odds differ by ${meanWorst}`);
      await page.click('[data-testid=ko-zero]');
      await page.click('[data-testid=ko-clear]');
      assert.equal(await page.locator('[data-testid=experiments] .ko-heads input:checked').count(), 0);
    });

    test('steering: the stories at each strength and the direction match the CLI; strength 0 is unchanged', async () => {
      const strengths = [-STRENGTH, 0, STRENGTH / 2, STRENGTH];
      const args = ['generate', ...genFlags(settings), '--steer', String(STEER_LAYER),
        ...HAPPY.flatMap((t) => ['--toward', t]), ...SAD.flatMap((t) => ['--away', t]), `--strength=${strengths.join(',')}`];
      const ref = cli(args);
      // By value (the engine's 0-based layer); the option reads STEER_LAYER + 1.
      await page.selectOption('[data-testid=steer-layer]', { value: String(STEER_LAYER) });
      await setRange(page, 'steer-strength', STRENGTH);
      assert.deepEqual((await page.inputValue('[data-testid=steer-toward]')).split('\n'), HAPPY);
      assert.deepEqual((await page.inputValue('[data-testid=steer-away]')).split('\n'), SAD);
      await page.click('[data-testid=steer-run]');
      await waitDone(page, 'steer');
      assert.deepEqual(JSON.parse(await page.getAttribute('[data-testid=steer-result]', 'data-strengths')), strengths);
      assert.deepEqual(await tokensOf(page, 'steer-original'), ref.original.tokens);
      for (let i = 0; i < strengths.length; i++) {
        assert.equal(ref.runs[i].strength, strengths[i]);
        assert.deepEqual(await tokensOf(page, `steer-run-${i}`), ref.runs[i].tokens, `strength ${strengths[i]}`);
        assert.equal(await firstDiff(page, `steer-run-${i}`), ref.runs[i].first_difference);
      }
      // Strength 0 adds nothing: the unchanged story.
      assert.deepEqual(await tokensOf(page, 'steer-run-1'), ref.original.tokens);
      assert.notEqual(ref.runs[3].first_difference, null, 'the full strength should change the story');
      // The menu and the result count layers from 1 (the CLI's --steer 2 is the third layer).
      assert.equal(await page.$eval('[data-testid=steer-layer]', (el) => el.selectedOptions[0].textContent), String(STEER_LAYER + 1));
      assert.match(await page.textContent('[data-testid=steer-words]'), new RegExp(`^The direction after layer ${STEER_LAYER + 1} has length`));
      const norm = Number(await page.getAttribute('[data-testid=steer-result]', 'data-norm'));
      const want = ref.intervention.steer.direction_norm;
      // The direction is worked out on the CPU in both modes.
      assert.ok(Math.abs(norm - want) <= 1e-5 * Math.max(1, want), `direction length ${norm} vs ${want}`);
      // Away and back: the view is built again with the layer kept, and its menu shows that
      // layer (a select's value set before its options existed showed layer 0).
      await page.click('[data-testid=tab-generate]');
      await page.click('[data-testid=tab-inspect]');
      await page.waitForSelector('[data-testid=steer-layer]');
      assert.equal(await page.inputValue('[data-testid=steer-layer]'), String(STEER_LAYER));
    });

    test('patching: both maps equal the CLI cell by cell; a prompt patched into itself gives 1 everywhere', async () => {
      const ref = cli(['patch', MODEL, ...model, '--example', 'she-or-he', '--json']);
      await page.selectOption('[data-testid=patch-example]', 'she-or-he');
      assert.equal(await page.inputValue('[data-testid=patch-clean]'), ref.clean.text);
      assert.equal(await page.inputValue('[data-testid=patch-corrupt]'), ref.corrupt.text);
      await page.click('[data-testid=patch-run]');
      await waitDone(page, 'patch');
      const { max } = maxLogit(ref.clean.tokens);
      const tol = 1e-5 * Math.max(1, max); // patching runs on the CPU in both modes
      const res = page.locator('[data-testid=patch-result]');
      assert.ok(Math.abs(Number(await res.getAttribute('data-clean-diff')) - ref.clean_diff) <= tol);
      assert.ok(Math.abs(Number(await res.getAttribute('data-corrupt-diff')) - ref.corrupt_diff) <= tol);
      const cells = async (id) => page.$$eval(`[data-testid=${id}] td`, (els) => els.map((e) => ({
        id: e.dataset.testid, diff: Number(e.dataset.diff), rec: e.dataset.recovered,
      })));
      const T = ref.clean.tokens.length;
      const resid = await cells('patch-resid');
      assert.equal(resid.length, ref.layers * T);
      let worst = 0;
      for (const c of resid) {
        const [, , l, t] = c.id.split('-').map(Number);
        worst = Math.max(worst, Math.abs(c.diff - ref.resid[l][t]));
        if (ref.resid_recovered[l][t] !== null) {
          assert.ok(Math.abs(Number(c.rec) - ref.resid_recovered[l][t]) <= 1e-3, `${c.id}: ${c.rec}`);
        }
      }
      const heads = await cells('patch-heads');
      assert.equal(heads.length, ref.layers * ref.heads_per_layer * T);
      for (const c of heads) {
        const [, , row, t] = c.id.split('-').map(Number);
        const [l, h] = [Math.floor(row / ref.heads_per_layer), row % ref.heads_per_layer];
        worst = Math.max(worst, Math.abs(c.diff - ref.heads[l][h][t]));
      }
      assert.ok(worst <= tol, `patching maps differ from the CLI by ${worst} (tolerance ${tol})`);
      console.log(`# ${mode}: patching maps max |Δ| vs CLI = ${worst.toExponential(2)}`);
      // The last layer at the last position is the clean run itself: 100%.
      assert.equal(await page.textContent(`[data-testid=patch-resid-${ref.layers - 1}-${T - 1}]`), '100');
      assert.equal(await page.locator('[data-testid=patch-legend]').count(), 1);
      // Rows are named from 1, as the attention view's layers and heads.
      const rowNames = async (id) => page.$$eval(`[data-testid=${id}] tbody th`, (els) => els.map((e) => e.textContent));
      assert.deepEqual(await rowNames('patch-resid'), Array.from({ length: ref.layers }, (_, l) => String(l + 1)));
      assert.deepEqual((await rowNames('patch-heads')).slice(0, 2), ['1.1', '1.2']);
      // The tokens label the columns, the changed word showing both versions.
      assert.ok(await page.locator('[data-testid=patch-resid] thead th.differs').count() > 0, 'the changed word is marked');
      // The first column is the start marker, named as the Tokens view names it.
      assert.equal(await page.textContent('[data-testid=patch-resid] thead th:nth-child(2)'), '<s>');

      // Identical prompts: nothing to recover, and every patched run gives the clean difference.
      await page.fill('[data-testid=patch-corrupt]', ref.clean.text);
      await page.click('[data-testid=patch-run]');
      await waitDone(page, 'patch');
      const clean = Number(await res.getAttribute('data-clean-diff'));
      assert.equal(Number(await res.getAttribute('data-corrupt-diff')), clean);
      for (const id of ['patch-resid', 'patch-heads']) {
        for (const c of await cells(id)) {
          assert.equal(c.diff, clean, `${c.id}: a prompt patched into itself changes nothing`);
          assert.equal(c.rec, '1', c.id);
        }
      }
      assert.match(await page.textContent('[data-testid=patch-summary]'), /nothing to bring back/);
      // Unequal lengths are refused in words.
      await page.fill('[data-testid=patch-corrupt]', `${ref.clean.text} and then`);
      await page.click('[data-testid=patch-run]');
      await page.waitForFunction(() => document.querySelector('[data-testid=patch-status]')?.dataset.state === 'error', null, { timeout: SLOW });
      assert.match(await page.textContent('[data-testid=patch-status]'), /must have the same number/);
      assert.equal(await page.locator('[data-testid=patch-result]').count(), 0, 'the error replaces the last map');
      // The example again, for the screenshots.
      await page.selectOption('[data-testid=patch-example]', 'she-or-he');
      await page.click('[data-testid=patch-run]');
      await waitDone(page, 'patch');
    });

    if (mode === 'cpu') {
      test('every control is labelled; at 390 px the panel fits the width (screenshots)', async () => {
        const unlabelled = await page.$$eval('[data-testid=experiments] :is(input, select, textarea, button)', (els) =>
          els.filter((e) => !(e.labels?.length || e.getAttribute('aria-label') || e.textContent.trim())).map((e) => e.outerHTML));
        assert.deepEqual(unlabelled, []);
        for (const [w, h] of [[390, 844], [1920, 1080]]) {
          await page.setViewportSize({ width: w, height: h });
          await page.waitForTimeout(200);
          // Nothing of the panel reaches past the window's right edge (the maps scroll inside their
          // own box). The rest of the Inspect view is another change's (branch ux2) to fit.
          const past = await page.evaluate(() => {
            const out = [];
            for (const e of document.querySelectorAll('[data-testid=experiments], [data-testid=experiments] *')) {
              if (e.parentElement?.closest('.ex-map-scroll')) continue;
              const r = e.getBoundingClientRect();
              if (r.right > window.innerWidth + 0.5) out.push(`${e.tagName}.${e.className} right=${r.right}`);
            }
            return out;
          });
          assert.deepEqual(past, [], `${w} px: parts of the panel reach past the right edge`);
          await page.locator('[data-testid=experiments]').scrollIntoViewIfNeeded();
          await screenshot(page, `experiments-${w}x${h}`);
          // The panel alone, for a closer look.
          await page.locator('[data-testid=experiments]').screenshot({ path: join(ARTIFACTS, `experiments-panel-${w}.png`) });
        }
        await page.setViewportSize({ width: 1100, height: 900 });
      });
    }
  });
}
