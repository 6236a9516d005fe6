// The Inspect view in Chromium, on the CPU path and on WebGPU (SwiftShader): the reference
// 16-token text's attention, exported as JSON, must equal llama2.c's fixture; pointing at and
// clicking heads must change the zoomed head; the numbers on screen must be the fixture's. On an
// s110m-shaped random model (CPU): progress, Stop, a re-run, the page answering input meanwhile,
// and the logit lens of a picked position against one computed here from the model file and the
// CLI's residuals; on a many-headed model, the memory cap and its reason. On WebGPU, a batch of
// positions at a time: progress and Stop between batches, and a several-batch inspection equal
// to the CLI's.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateSync } from 'node:zlib';
import { after, describe, test } from 'node:test';
import {
  assertClean, generate, openApp, readSafetensors, readShared, responsiveness, screenshot, sharedPath, tinylm, useSite, waitForState,
  watchResponsiveness,
} from './helpers.mjs';

/** An 8-bit RGBA PNG (what a canvas exports) as { width, height, rgba }. */
function decodePng(buf) {
  assert.equal(buf.subarray(1, 4).toString(), 'PNG');
  let at = 8;
  let width = 0;
  let height = 0;
  const idat = [];
  while (at < buf.length) {
    const len = buf.readUInt32BE(at);
    const type = buf.subarray(at + 4, at + 8).toString();
    const data = buf.subarray(at + 8, at + 8 + len);
    if (type === 'IHDR') {
      [width, height] = [data.readUInt32BE(0), data.readUInt32BE(4)];
      assert.deepEqual([data[8], data[9], data[12]], [8, 6, 0], '8-bit RGBA, not interlaced');
    }
    if (type === 'IDAT') idat.push(data);
    at += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * 4;
  const rgba = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= 4 ? rgba[y * stride + x - 4] : 0;
      const b = y > 0 ? rgba[(y - 1) * stride + x] : 0;
      const c = x >= 4 && y > 0 ? rgba[(y - 1) * stride + x - 4] : 0;
      const p = a + b - c;
      const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
      const paeth = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      const add = [0, a, b, (a + b) >> 1, paeth][filter];
      assert.ok(add !== undefined, `PNG filter ${filter}`);
      rgba[y * stride + x] = (line[x] + add) & 0xff;
    }
  }
  return { width, height, rgba };
}

/** Viridis at x in [0, 1]: matplotlib's table (fixtures/viridis.json, made by make_viridis.py), interpolated. */
const VIRIDIS = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), 'fixtures/viridis.json'), 'utf8')).rgb;
function viridis(x) {
  const f = Math.min(1, Math.max(0, x)) * 255;
  const k = Math.min(254, Math.floor(f));
  return [0, 1, 2].map((c) => VIRIDIS[k][c] + (VIRIDIS[k + 1][c] - VIRIDIS[k][c]) * (f - k));
}

const fixture = readSafetensors(sharedPath('reference/stories260K_attention.safetensors'));
const TOKENS = Array.from(fixture.tokens.data);
const ATTN = fixture['llama2c.attn'];
const [L, H, T] = ATTN.shape;
const attnAt = (l, h, t, s) => ATTN.data[((l * H + h) * T + t) * T + s];
const greedy256 = readShared('reference/stories260K_greedy_256.txt');
const SLOW = 240_000;

async function download(page, testid) {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click(`[data-testid=${testid}]`)]);
  return { name: dl.suggestedFilename(), bytes: readFileSync(await dl.path()) };
}

async function zoomed(page) {
  const el = page.locator('[data-testid=zoom-title]');
  return [Number(await el.getAttribute('data-layer')), Number(await el.getAttribute('data-head'))];
}

async function setRange(page, testid, value) {
  await page.$eval(`[data-testid=${testid}]`, (el, v) => {
    el.value = v;
    el.dispatchEvent(new Event('input', { bubbles: true }));
  }, String(value));
}

/** Writes the reference text (BOS + 15 greedy tokens) and opens Inspect on it. */
async function inspectReference(page) {
  const run = await generate(page, { temperature: 0, topp: 0.9, seed: 1, steps: 15 });
  assert.equal(run.state, 'done', run.status);
  assert.ok(greedy256.startsWith(run.text), run.text);
  await page.click('[data-testid=tab-inspect]');
  await page.waitForFunction(
    () => ['ready', 'error'].includes(document.querySelector('[data-testid=inspect-status]')?.dataset.state),
    null, { timeout: SLOW },
  );
  assert.equal(await page.getAttribute('[data-testid=inspect-status]', 'data-state'), 'ready',
    await page.textContent('[data-testid=inspect-status]'));
  // The 15 tokens Generate wrote, and the start marker before them: 16 positions.
  assert.match(await page.textContent('[data-testid=inspect-status]'), /^16 positions: <s> and 15 tokens · 5 layers × 8 heads · /);
}

function checkExport(json, label) {
  assert.deepEqual(json.tokens, TOKENS, `${label}: tokens`);
  assert.deepEqual(json.shape, { layers: L, heads: H, tokens: T, vocab: 512 });
  let worst = 0;
  for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) for (let t = 0; t < T; t++) for (let s = 0; s < T; s++) {
    worst = Math.max(worst, Math.abs(json.attention[l][h][t][s] - attnAt(l, h, t, s)));
  }
  assert.ok(worst <= 1e-4, `${label}: attention differs from llama2.c by ${worst}`);
  // The chosen head alone, as shown.
  const [l, h] = [json.layer, json.head];
  json.attention_head.forEach((row, t) => row.forEach((v, s) => assert.ok(Math.abs(v - attnAt(l, h, t, s)) <= 1e-4)));
  // Logit lens, last layer: the greedy text's next token at every position.
  for (let t = 0; t < T - 1; t++) assert.equal(json.logit_lens[L - 1][t].id, TOKENS[t + 1], `${label}: lens at ${t}`);
  return worst;
}

for (const mode of ['cpu', 'webgpu']) {
  describe(`Inspect view (${mode === 'cpu' ? 'CPU only' : 'WebGPU on SwiftShader'})`, () => {
    const site = useSite({ webgpu: mode === 'webgpu' });

    test('the reference text: attention equals llama2.c, heads respond to pointer, click and keys', async () => {
      // WebGPU chosen on SwiftShader (Auto never takes a software adapter).
      const { page, log } = await openApp(site.browser.context, `${site.server.url}${mode === 'webgpu' ? '#backend=webgpu' : ''}`);
      assert.equal(await waitForState(page, ['ready', 'error'], SLOW), 'ready');
      assert.equal(await page.getAttribute('[data-testid=backend]', 'data-kind'), mode);
      await inspectReference(page);
      assert.equal(await page.locator('[data-testid=tokens] .tok').count(), T);
      assert.equal(await page.textContent('[data-testid=tok-1]'), 'Once');

      // Export JSON: the whole attention tensor against the fixture.
      const file = await download(page, 'export-json');
      assert.equal(file.name, 'tinylm-inspect.json');
      const worst = checkExport(JSON.parse(file.bytes.toString('utf8')), mode);
      console.log(`# ${mode}: exported attention max |Δ| vs llama2.c = ${worst.toExponential(2)}`);

      // Pointing previews a head; leaving returns to the locked one; a click locks.
      assert.deepEqual(await zoomed(page), [0, 0]);
      await page.hover('[data-testid=head-3-5]');
      assert.deepEqual(await zoomed(page), [3, 5]);
      assert.match(await page.textContent('[data-testid=zoom-title]'), /Layer 4 · head 6 \(preview\)/);
      await page.mouse.move(2, 2);
      assert.deepEqual(await zoomed(page), [0, 0]);
      await page.click('[data-testid=head-2-1]');
      await page.mouse.move(2, 2);
      assert.deepEqual(await zoomed(page), [2, 1]);
      assert.equal(await page.getAttribute('[data-testid=head-2-1]', 'aria-pressed'), 'true');
      await page.keyboard.press('ArrowRight');
      assert.deepEqual(await zoomed(page), [2, 2]);
      await page.keyboard.press('ArrowDown');
      assert.deepEqual(await zoomed(page), [3, 2]);

      // The exact value under the pointer is the fixture's: query 9, key 4 of layer 4 head 3.
      const box = await page.locator('[data-testid=zoom]').boundingBox();
      await page.mouse.move(box.x + (4.5 / T) * box.width, box.y + (9.5 / T) * box.height);
      const readout = await page.textContent('[data-testid=zoom-readout]');
      const m = readout.match(/query 9 .* key 4 .*: ([\d.]+) \(/);
      assert.ok(m, readout);
      assert.ok(Math.abs(Number(m[1]) - attnAt(3, 2, 9, 4)) <= 1e-5, `${readout} vs ${attnAt(3, 2, 9, 4)}`);
      // The keyboard reaches the same numbers: focus the map, move the cursor to query 2, key 1.
      await page.mouse.move(2, 2);
      await page.focus('[data-testid=zoom]');
      for (const key of ['ArrowDown', 'ArrowDown', 'ArrowRight', 'ArrowDown', 'ArrowUp']) await page.keyboard.press(key);
      const keyed = (await page.textContent('[data-testid=zoom-readout]')).match(/query 2 .* key 1 .*: ([\d.]+) \(/);
      assert.ok(keyed && Math.abs(Number(keyed[1]) - attnAt(3, 2, 2, 1)) <= 1e-5, String(keyed));
      // The shared scale runs 0 to 1 for every head.
      await page.click('[data-testid=shared-scale]');
      assert.match(await page.textContent('.zoom .hint'), /^Colour scale 0 – 1 for every head\./);
      await page.click('[data-testid=shared-scale]');

      // PNG export of the zoomed head (layer 4, head 3; its own colour scale, linear): every
      // cell's colour is viridis of the fixture's weight over the head's largest weight after
      // the first row; the causal mask is hatched. Sampled 2 px inside each cell's corner, away
      // from the printed percentage. The app's viridis is a polynomial fit, within 4/255 of
      // matplotlib's table (measured over [0, 1]); tolerance 6.
      const png = await download(page, 'export-png');
      assert.equal(png.name, 'tinylm-attention-layer4-head3.png');
      const img = decodePng(png.bytes);
      assert.deepEqual([img.width, img.height], [512, 512], '32 px per cell');
      const [pl, ph] = [3, 2];
      let headMax = 0;
      for (let t = 1; t < T; t++) for (let s = 0; s <= t; s++) headMax = Math.max(headMax, attnAt(pl, ph, t, s));
      const pixel = (x, y) => Array.from(img.rgba.subarray((y * 512 + x) * 4, (y * 512 + x) * 4 + 4));
      let worstColour = 0;
      for (let t = 0; t < T; t++) {
        for (let s = 0; s < T; s++) {
          const [x, y] = [s * 32 + 2, t * 32 + 2];
          const got = pixel(x, y);
          assert.equal(got[3], 255);
          if (s > t) {
            assert.deepEqual(got.slice(0, 3), (x + y) % 6 === 0 ? [200, 200, 205] : [240, 240, 243], `mask at query ${t}, key ${s}`);
            continue;
          }
          const want = viridis(attnAt(pl, ph, t, s) / headMax);
          worstColour = Math.max(worstColour, ...want.map((v, c) => Math.abs(v - got[c])));
        }
      }
      console.log(`# ${mode}: PNG cells vs viridis of the fixture: max channel difference ${worstColour.toFixed(1)}`);
      assert.ok(worstColour <= 6, `PNG colours differ from viridis(weight / head max) by ${worstColour}`);

      // Pointing at token 9 lights up what it attends to in that head: most on the fixture's
      // largest weight, nothing on later tokens.
      await page.hover('[data-testid=tok-9]');
      const row = Array.from({ length: 10 }, (_, k) => attnAt(3, 2, 9, k));
      const best = row.indexOf(Math.max(...row));
      const bg = async (i) => page.$eval(`[data-testid=tok-${i}]`, (el) => el.style.backgroundColor);
      assert.equal(await bg(best), 'rgb(230, 159, 0)');
      assert.equal(await bg(12), 'rgba(230, 159, 0, 0)');
      await screenshot(page, `inspect-${mode}`);

      // Next-token view at token 3: top-p 0.1 keeps only the likeliest; top-p 1 keeps them all.
      await page.click('[data-testid=tok-3]');
      await setRange(page, 'next-topp', 0.1);
      const kept = await page.locator('[data-testid=candidate][data-kept=true]').count();
      assert.equal(kept, 1);
      assert.match(await page.textContent('[data-testid=kept-note]'), /^1 token survives the top-p cut/);
      await setRange(page, 'next-topp', 1);
      assert.equal(await page.locator('[data-testid=candidate][data-kept=false]').count(), 0);
      // A greedy story: the sliders start at 1 and say so; at 0 the dice take the top row only.
      assert.equal(await page.textContent('[data-testid=greedy-note]'), 'This story was written at temperature 0, so its dice always took '
        + 'the top row. The sliders start at 1.00 to show how the dice would draw; set Temperature to 0 to see the story\'s own choice.');
      await setRange(page, 'next-temperature', 0);
      assert.equal(await page.locator('[data-testid=greedy-note]').count(), 0);
      const drawn = await page.$$eval('[data-testid=candidate] td:nth-of-type(2) .num', (els) => els.map((e) => e.textContent));
      assert.deepEqual([drawn[0], new Set(drawn.slice(1)).size, drawn[1]], ['100.0%', 1, '0.0%']);
      await setRange(page, 'next-temperature', 1);

      // Step by step: the first generated token, its probability and rank 1 (greedy).
      await page.click('[data-testid=step-forward]');
      assert.match(await page.textContent('[data-testid=step-about]'),
        /^Step 1 of 15: the model chose “Once” \(id 403\) with probability [\d.]+%, rank 1 of 512\.$/);
      // From "Show all" (the whole story already shown), one step back is the step before the last.
      await page.click('[data-testid=step-all]');
      await page.click('[data-testid=step-back]');
      assert.match(await page.textContent('[data-testid=step-about]'), /^Step 14 of 15: the model chose /);
      assert.equal(await page.inputValue('[data-testid=scrub]'), '14');

      await page.click('[data-testid=present]');
      // The zoomed head's axis captions grow with presentation mode's type (they stayed 11 px).
      const px = (sel) => page.$eval(sel, (e) => parseFloat(getComputedStyle(e).fontSize));
      assert.ok(await px('.zoom .axis-corner') >= 16 && await px('.zoom .axis-keys') >= 14,
        `axis captions ${await px('.zoom .axis-corner')} px, labels ${await px('.zoom .axis-keys')} px`);
      await screenshot(page, `inspect-${mode}-present`);
      await assertClean(page, log, site.server.url);
      await page.close();
    });

    if (mode === 'cpu') {
      test('the whole 512-token context inspects and draws without freezing the page', async () => {
        // With no story written yet, Inspect reads the prompt: two greedy stories, more than the
        // 512-token context, so the view keeps the first 512.
        const { page, log } = await openApp(site.browser.context, site.server.url);
        assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
        await page.fill('[data-testid=prompt]', `${greedy256}\n${greedy256}`);
        await page.evaluate(() => {
          window.__long = [];
          new PerformanceObserver((list) => {
            for (const e of list.getEntries()) window.__long.push(e.duration);
          }).observe({ type: 'longtask' });
        });
        const t0 = Date.now();
        await page.click('[data-testid=tab-inspect]');
        await page.waitForFunction(() => document.querySelector('[data-testid=inspect-status]')?.dataset.state === 'ready',
          null, { timeout: SLOW });
        const ready = Date.now() - t0;
        const status = await page.textContent('[data-testid=inspect-status]');
        assert.match(status, /^512 positions: <s> and 511 tokens \(the first 512 of \d+\) · 5 layers × 8 heads/);
        await new Promise((ok) => setTimeout(ok, 400)); // long-task entries are delivered late
        const inspecting = await page.evaluate(() => window.__long.length);
        const t1 = Date.now();
        for (const [l, h] of [[0, 1], [1, 2], [2, 3], [4, 7]]) await page.hover(`[data-testid=head-${l}-${h}]`);
        const hovers = Date.now() - t1;
        await new Promise((ok) => setTimeout(ok, 400));
        const long = await page.evaluate(() => window.__long);
        const [whileInspecting, whileHovering] = [long.slice(0, inspecting), long.slice(inspecting)];
        // The control, in the same page and run: the same 512 × 512 map drawn the slow way, one
        // fillRect per cell (what the view must not do), timed by the same observer.
        const naive = await page.evaluate((n) => new Promise((done) => {
          const seen = window.__long.length;
          setTimeout(() => {
            const c = document.createElement('canvas');
            c.width = c.height = n;
            const ctx = c.getContext('2d');
            for (let t = 0; t < n; t++) {
              for (let s = 0; s < n; s++) {
                ctx.fillStyle = s > t ? 'rgb(240,240,243)' : `rgb(${(t * 7) % 256},${(s * 3) % 256},${(t + s) % 256})`;
                ctx.fillRect(s, t, 1, 1);
              }
            }
            ctx.getImageData(0, 0, 1, 1);
            setTimeout(() => done(Math.max(0, ...window.__long.slice(seen))), 400);
          }, 0);
        }), 512);
        console.log(`# 512 tokens: ready in ${ready} ms (long tasks ${JSON.stringify(whileInspecting.map(Math.round))}), `
          + `4 head previews in ${hovers} ms (long tasks ${JSON.stringify(whileHovering.map(Math.round))}); the control (per-cell drawing) ${Math.round(naive)} ms`);
        await screenshot(page, 'inspect-cpu-512');
        // Each head preview redraws the 512 × 512 map: no task of it may take a third of the
        // per-cell control; receiving and drawing the whole inspection, not three times it.
        // Measured at load ≈12: previews ≤ 144 ms, the inspection 300–600 ms, the control
        // 750–1160 ms.
        assert.ok(naive > 0, 'the control shows up as a long task');
        assert.ok(Math.max(0, ...whileHovering) < naive / 3, `a preview took ${Math.max(...whileHovering)} ms; the control ${naive} ms`);
        assert.ok(Math.max(0, ...whileInspecting) < 3 * naive, `a long task (${Math.max(...whileInspecting)} ms) froze the page; the control ${naive} ms`);
        await assertClean(page, log, site.server.url);
        await page.close();
      });
    }
  });
}

/** The logit lens of `resid [L,T,D]` at position `t`, from the model file itself (llama2.c v0,
 * shared classifier): rmsnorm with rms_final, then the token table; top id and its probability. */
function referenceLens(modelBytes, resid, t) {
  const hdr = new Int32Array(modelBytes.buffer.slice(modelBytes.byteOffset, modelBytes.byteOffset + 28));
  const [D, Hd, L, , , V] = hdr;
  const w = new Float32Array(modelBytes.buffer, modelBytes.byteOffset + 28, (modelBytes.length - 28) / 4);
  const rmsFinal = V * D + L * D + 4 * L * D * D + L * D + 3 * L * D * Hd;
  const [, T] = resid.shape;
  const out = [];
  for (let l = 0; l < L; l++) {
    const x = resid.data.subarray((l * T + t) * D, (l * T + t + 1) * D);
    let ss = 0;
    for (const v of x) ss += v * v;
    const k = 1 / Math.sqrt(ss / D + 1e-5);
    const xb = Array.from(x, (v, i) => v * k * w[rmsFinal + i]);
    const logits = new Float64Array(V);
    for (let v = 0; v < V; v++) {
      let acc = 0;
      for (let i = 0; i < D; i++) acc += w[v * D + i] * xb[i];
      logits[v] = acc;
    }
    let best = 0;
    for (let v = 1; v < V; v++) if (logits[v] > logits[best]) best = v;
    let z = 0;
    for (let v = 0; v < V; v++) z += Math.exp(logits[v] - logits[best]);
    out.push({ id: best, prob: 1 / z, margin: secondGap(logits, best) });
  }
  return out;
}

/** How far the best logit is ahead of the next one (a near tie may flip with rounding). */
function secondGap(logits, best) {
  let second = -Infinity;
  for (let v = 0; v < logits.length; v++) if (v !== best && logits[v] > second) second = logits[v];
  return logits[best] - second;
}

const inspectState = (page) => page.getAttribute('[data-testid=inspect-status]', 'data-state');

async function waitInspect(page, states, timeout = SLOW) {
  await page.waitForFunction(
    (w) => w.includes(document.querySelector('[data-testid=inspect-status]')?.dataset.state), states, { timeout },
  );
  return inspectState(page);
}

async function loadFromSite(page, model, tokenizer = '') {
  await page.fill('[data-testid=model-url]', model);
  await page.fill('[data-testid=tokenizer-url]', tokenizer);
  await page.click('[data-testid=load-url]');
  await page.waitForFunction(() => document.querySelector('[data-testid=status]')?.dataset.state === 'loading',
    null, { timeout: 10_000 }).catch(() => {});
  return waitForState(page, ['ready', 'error'], SLOW);
}

describe('Inspect view on bigger models (CPU path)', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'tinylm-inspect-'));
  const site = useSite({
    extra: () => {
      // stories110M's shape (dim 768, 12 layers × 12 heads, 32000-token table, 1024 context),
      // random: 440 MB, the largest the view is meant for.
      tinylm(['make-model', '--config', '768,2048,12,12,12,32000,1024', '--seed', '110', '-o', join(tmp, 's110m.bin')]);
      // Small but with many heads: its attention maps, not its weights, hit the memory cap.
      tinylm(['make-model', '--config', '64,172,12,16,16,512,1024', '--seed', '7', '-o', join(tmp, 'wide.bin')]);
      return {
        'extra/s110m.bin': join(tmp, 's110m.bin'),
        'extra/wide.bin': join(tmp, 'wide.bin'),
        'extra/tokenizer.bin': sharedPath('tokenizers/llama2/tokenizer.bin'),
      };
    },
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test('s110m: progress shows, Stop leaves the view usable, a re-run works, the lens matches the model', async () => {
    const { page, log } = await openApp(site.browser.context, site.server.url);
    assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
    const t0 = Date.now();
    assert.equal(await loadFromSite(page, 'extra/s110m.bin', 'extra/tokenizer.bin'), 'ready');
    console.log(`# s110m loaded in ${Date.now() - t0} ms`);

    // A long text: the forward pass alone takes many seconds, long enough to watch and stop.
    await page.fill('[data-testid=prompt]', `${greedy256}\n${greedy256}`);
    await watchResponsiveness(page);
    await page.click('[data-testid=tab-inspect]');
    await page.waitForFunction(() => /forward pass at [1-9]\d* of \d+ tokens/.test(
      document.querySelector('[data-testid=inspect-status]')?.textContent ?? ''), null, { timeout: SLOW });
    const progress = Number(await page.getAttribute('[data-testid=inspect-progress]', 'value'));
    assert.ok(progress > 0 && progress < 0.9, `progress ${progress}`);
    // The page answers while the worker inspects: type into the prompt, switch tabs and back.
    await page.click('[data-testid=tab-generate]');
    await page.click('[data-testid=tab-inspect]');
    await screenshot(page, 'inspect-s110m-progress');
    const before = await page.textContent('[data-testid=inspect-status]');
    const tStop = Date.now();
    await page.click('[data-testid=inspect-stop]');
    assert.equal(await waitInspect(page, ['stopped', 'ready', 'error']), 'stopped');
    const stopMs = Date.now() - tStop;
    const stopped = await page.textContent('[data-testid=inspect-status]');
    assert.match(stopped, /^Stopped in the forward pass at \d+ of (\d+) tokens\. “Inspect again” starts over\.$/);
    console.log(`# s110m: ${before} → stopped in ${stopMs} ms: ${stopped}`);
    assert.equal(await page.locator('[data-testid=inspect-stop]').count(), 0);
    await new Promise((ok) => setTimeout(ok, 400)); // long-task entries are delivered late
    const { lag, long } = await responsiveness(page);
    // The control, in the same page and run: the page thread blocked for 300 ms (what the
    // forward pass on the page's thread would do for far longer), then a click behind it.
    const box = await page.locator('[data-testid=inspect-status]').boundingBox();
    await page.evaluate(() => setTimeout(() => {
      const t = performance.now();
      while (performance.now() - t < 300);
    }, 20));
    await new Promise((ok) => setTimeout(ok, 80));
    await page.mouse.click(box.x + 2, box.y + box.height / 2);
    await new Promise((ok) => setTimeout(ok, 400));
    const control = await responsiveness(page);
    const blockedLag = Math.max(...control.lag.slice(lag.length).map(([, ms]) => ms));
    const blockedTask = Math.max(0, ...control.long.slice(long.length));
    console.log(`# s110m while inspecting: input lag ${JSON.stringify(lag.map(([t, ms]) => `${t} ${Math.round(ms)}`))}, long tasks ${JSON.stringify(long.map(Math.round))}; `
      + `control: lag ${Math.round(blockedLag)} ms, long task ${Math.round(blockedTask)} ms`);
    assert.ok(blockedTask >= 250, `the control's long task was seen: ${JSON.stringify(control.long)}`);
    assert.ok(lag.every(([, ms]) => ms < blockedLag / 3), `input waited: ${JSON.stringify(lag)}; the control ${blockedLag}`);
    assert.ok(Math.max(0, ...long) < blockedTask / 3, `a long task froze the page: ${long}; the control ${blockedTask}`);

    // A re-run on a shorter text finishes; the lens comes up front for the positions the budget allows.
    await page.click('[data-testid=tab-generate]');
    await page.fill('[data-testid=prompt]', greedy256.split(' ').slice(0, 30).join(' '));
    await page.click('[data-testid=tab-inspect]');
    const t1 = Date.now();
    await page.click('[data-testid=inspect-again]');
    assert.equal(await waitInspect(page, ['ready', 'error']), 'ready', await page.textContent('[data-testid=inspect-status]'));
    const n = await page.locator('[data-testid=tokens] .tok').count();
    console.log(`# s110m: ${n} tokens inspected in ${Date.now() - t1} ms: ${await page.textContent('[data-testid=inspect-status]')}`);
    assert.match(await page.textContent('[data-testid=lens-note]'), /^The lens of all \d+ positions would take \d+ GFLOP/);

    // Pick a position far from the first one: its lens column is asked for and arrives.
    const pick = 3;
    const t2 = Date.now();
    await page.click(`[data-testid=tok-${pick}]`);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=lens] td[data-pending]').length === 0,
      null, { timeout: SLOW });
    console.log(`# s110m: the lens window around position ${pick} filled in ${Date.now() - t2} ms`);
    await screenshot(page, 'inspect-s110m-lens');
    const file = await download(page, 'export-json');
    const json = JSON.parse(file.bytes.toString('utf8'));
    assert.ok(json.logit_lens_positions.includes(pick), JSON.stringify(json.logit_lens_positions));
    assert.ok(json.logit_lens_positions.length < n, 'not the whole lens up front');

    // The reference: the CLI's residuals and logits for the same tokens, and the model file.
    const out = join(tmp, 'ref.safetensors');
    tinylm(['logits', join(tmp, 's110m.bin'), '--tokens', json.tokens.join(' '), '-o', out]);
    const ref = readSafetensors(out);
    const model = readFileSync(join(tmp, 's110m.bin'));
    const want = referenceLens(model, ref.resid, pick);
    const layers = json.shape.layers;
    for (let l = 0; l < layers; l++) {
      const got = json.logit_lens[l][pick];
      if (want[l].margin > 1e-3) assert.equal(got.id, want[l].id, `layer ${l}`);
      assert.ok(Math.abs(got.prob - want[l].prob) <= 1e-3, `layer ${l}: ${got.prob} vs ${want[l].prob}`);
    }
    // The last layer is the model's own argmax at every position the lens covers.
    const V = json.shape.vocab;
    for (const t of json.logit_lens_positions) {
      const row = ref.logits.data.subarray(t * V, (t + 1) * V);
      let best = 0;
      for (let v = 1; v < V; v++) if (row[v] > row[best]) best = v;
      assert.equal(json.logit_lens[layers - 1][t].id, best, `argmax at ${t}`);
    }
    assert.equal(json.logit_lens[0][json.tokens.length - 1] === null, !json.logit_lens_positions.includes(json.tokens.length - 1));

    // A new long inspection, stopped: the last finished one stays on screen and its lens still
    // answers for positions not yet worked out.
    await page.click('[data-testid=tab-generate]');
    await page.fill('[data-testid=prompt]', `${greedy256}\n${greedy256}`);
    await page.click('[data-testid=tab-inspect]');
    await page.click('[data-testid=inspect-again]');
    await page.waitForFunction(() => /forward pass at [1-9]/.test(
      document.querySelector('[data-testid=inspect-status]')?.textContent ?? ''), null, { timeout: SLOW });
    await page.click('[data-testid=inspect-stop]');
    assert.equal(await waitInspect(page, ['stopped', 'ready', 'error']), 'stopped');
    assert.match(await page.textContent('[data-testid=inspect-status]'), /Showing the last finished inspection\./);
    assert.equal(await page.locator('[data-testid=tokens] .tok').count(), n);
    await page.click('[data-testid=tok-30]');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=lens] td[data-pending]').length === 0,
      null, { timeout: SLOW });
    assert.match(await page.textContent('[data-testid=lens] th.picked'), /^30 /);
    await assertClean(page, log, site.server.url);
    await page.close();
  });

  test('attention too big for memory: the cap and its reason are shown', async () => {
    const { page, log } = await openApp(site.browser.context, site.server.url);
    assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
    assert.equal(await loadFromSite(page, 'extra/wide.bin'), 'ready');
    await page.fill('[data-testid=prompt]', [greedy256, greedy256, greedy256, greedy256].join('\n'));
    await page.click('[data-testid=tab-inspect]');
    assert.equal(await waitInspect(page, ['ready', 'error']), 'ready', await page.textContent('[data-testid=inspect-status]'));
    const status = await page.textContent('[data-testid=inspect-status]');
    const m = status.match(/^(\d+) positions: <s> and \d+ tokens \(the first \1 of (\d+)\) · 12 layers × 16 heads/);
    assert.ok(m, status);
    const [kept, all] = [Number(m[1]), Number(m[2])];
    assert.ok(kept < 1024 && all > kept, status);
    const cap = await page.textContent('[data-testid=inspect-cap]');
    assert.match(cap, new RegExp(`^Showing the first ${kept} of ${all} tokens: the attention maps \\(12 layers × 16 heads\\) grow`));
    await screenshot(page, 'inspect-cap');
    await assertClean(page, log, site.server.url);
    await page.close();
  });
});

describe('Inspect view on WebGPU (SwiftShader): batch by batch', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'tinylm-inspect-gpu-'));
  // Small to download, but its 1024-token context and 6 × 8 heads make each batch of positions
  // take a while on a software GPU, long enough to watch and stop.
  const model = join(tmp, 'mid.bin');
  const site = useSite({
    webgpu: true,
    extra: () => {
      tinylm(['make-model', '--config', '128,344,6,8,8,512,1024', '--seed', '5', '-o', model]);
      return { 'extra/mid.bin': model };
    },
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test('progress between batches, Stop, then a several-batch inspection equal to tinylm logits', async () => {
    // WebGPU chosen (Auto never takes a software adapter).
    const { page, log } = await openApp(site.browser.context, `${site.server.url}#backend=webgpu`);
    assert.equal(await waitForState(page, ['ready', 'error'], SLOW), 'ready');
    assert.equal(await loadFromSite(page, 'extra/mid.bin'), 'ready');
    assert.equal(await page.getAttribute('[data-testid=backend]', 'data-kind'), 'webgpu');

    await page.fill('[data-testid=prompt]', [greedy256, greedy256, greedy256].join('\n'));
    await page.click('[data-testid=tab-inspect]');
    await page.waitForFunction(() => /forward pass at [1-9]\d* of \d+ tokens/.test(
      document.querySelector('[data-testid=inspect-status]')?.textContent ?? ''), null, { timeout: SLOW });
    const during = await page.textContent('[data-testid=inspect-status]');
    const tStop = Date.now();
    await page.click('[data-testid=inspect-stop]');
    assert.equal(await waitInspect(page, ['stopped', 'ready', 'error']), 'stopped');
    const stopped = await page.textContent('[data-testid=inspect-status]');
    console.log(`# webgpu: ${during} → stopped in ${Date.now() - tStop} ms: ${stopped}`);
    const [, at, of] = stopped.match(/^Stopped in the forward pass at (\d+) of (\d+) tokens/).map(Number);
    assert.ok(at > 0 && at < of, stopped);

    // Past one batch of positions (128 here), inspected to the end; short enough (≤ 147 tokens)
    // for the export to hold every head's attention.
    await page.click('[data-testid=tab-generate]');
    await page.fill('[data-testid=prompt]', greedy256.split(' ').slice(0, 72).join(' '));
    await page.click('[data-testid=tab-inspect]');
    await page.click('[data-testid=inspect-again]');
    assert.equal(await waitInspect(page, ['ready', 'error']), 'ready', await page.textContent('[data-testid=inspect-status]'));
    const json = JSON.parse((await download(page, 'export-json')).bytes.toString('utf8'));
    const n = json.tokens.length;
    assert.ok(n > 128 && json.attention, `${n} tokens, full attention exported: ${!!json.attention}`);
    const out = join(tmp, 'ref.safetensors');
    tinylm(['logits', model, '--tokens', json.tokens.join(' '), '-o', out]);
    const ref = readSafetensors(out).attn;
    const [Lr, Hr] = ref.shape;
    let worst = 0;
    for (let l = 0; l < Lr; l++) for (let h = 0; h < Hr; h++) for (let t = 0; t < n; t++) for (let s = 0; s <= t; s++) {
      worst = Math.max(worst, Math.abs(json.attention[l][h][t][s] - ref.data[((l * Hr + h) * n + t) * n + s]));
    }
    console.log(`# webgpu: ${n} tokens in batches, attention max |Δ| vs the CPU = ${worst.toExponential(2)}`);
    assert.ok(worst <= 1e-4, `attention differs from the CPU by ${worst}`);
    await assertClean(page, log, site.server.url);
    await page.close();
  });
});
