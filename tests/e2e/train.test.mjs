// The Train view in a real browser: LoRA training in the engine worker on the CPU path (the
// GPU trainer is not wired into the page), compared with the CLI `tinylm finetune` on the same
// data and settings; adapter download read by `tinylm logits`; reload + resume equal to an
// uninterrupted run; the PEFT fixture uploaded gives the fixture's logits; a foreign adapter is
// refused. Runs in a CPU-only browser (no WebGPU).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  bundledPath, generate, launchBrowser, readShared, openApp, REPO, screenshot, sharedPath, startServer, statusText, tinylm, waitForState,
} from './helpers.mjs';

const MODEL = bundledPath('stories260K.bin');
const TOK = bundledPath('tok512.bin');
const BOOK = join(REPO, 'public/corpora/peter-rabbit.txt');
const FIXTURE = sharedPath('reference/stories260K_lora_qv_r4');
const SLOW = 300_000;
const RUN = { targets: 'q_proj,v_proj', rank: 4, alpha: 8, lr: 0.01, steps: 20, batch: 4, seq: 64, seed: 1234 };

/** Tensors of a safetensors file as { name: { shape, data: Float32Array } } (F32 only). */
function safetensors(buf) {
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const out = {};
  for (const [k, v] of Object.entries(header)) {
    if (k === '__metadata__') continue;
    if (v.dtype !== 'F32') continue;
    const [a, b] = v.data_offsets;
    const bytes = buf.subarray(8 + n + a, 8 + n + b);
    out[k] = { shape: v.shape, data: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)) };
  }
  return out;
}

/** Files of a stored (uncompressed) zip, through its local headers. */
function unzip(buf) {
  const files = {};
  let at = 0;
  while (buf.readUInt32LE(at) === 0x04034b50) {
    assert.equal(buf.readUInt16LE(at + 8), 0, 'stored, not compressed');
    const size = buf.readUInt32LE(at + 18);
    const nameLen = buf.readUInt16LE(at + 26);
    const extra = buf.readUInt16LE(at + 28);
    const name = buf.subarray(at + 30, at + 30 + nameLen).toString('utf8');
    const start = at + 30 + nameLen + extra;
    files[name] = buf.subarray(start, start + size);
    at = start + size;
  }
  return files;
}

/** Largest |a-b| over arrays (flattened), and max |b|. */
function maxDiff(a, b) {
  assert.equal(a.length, b.length);
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return { d, m };
}

/** `tinylm finetune` (CPU) on `text` with RUN's settings; its losses.json. */
function cliLosses(work, text, run = RUN) {
  const textFile = join(work, 'train.txt');
  writeFileSync(textFile, text);
  const cliDir = join(work, 'cli');
  tinylm(['finetune', MODEL, '-z', TOK, '--text-file', textFile, '--targets', run.targets, '--rank', `${run.rank}`,
    '--alpha', `${run.alpha}`, '--lr', `${run.lr}`, '--steps', `${run.steps}`, '--batch', `${run.batch}`, '--seq', `${run.seq}`,
    '--init-seed', `${run.seed}`, '--data-seed', `${run.seed}`, '-o', cliDir]);
  return JSON.parse(readFileSync(join(cliDir, 'losses.json'), 'utf8'));
}

describe('Train view (CPU training in the engine worker)', () => {
  let server;
  let browser;
  const work = mkdtempSync(join(tmpdir(), 'tinylm-train-'));
  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  async function openTrain(page) {
    assert.equal(await waitForState(page, ['ready', 'error'], 60_000), 'ready', await statusText(page));
    await page.click('[data-testid=tab-train]');
    await page.waitForFunction(() => document.querySelector('[data-testid=counts]')?.dataset.trainChars, null, { timeout: 60_000 });
  }

  async function settings(page, s) {
    for (const [k, v] of Object.entries(s)) {
      const id = `train-${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
      await page.fill(`[data-testid=${id}]`, String(v));
    }
  }

  async function waitPhase(page, phases, timeout = SLOW) {
    await page.waitForFunction(
      (w) => w.includes(document.querySelector('[data-testid=train-status]')?.dataset.state),
      [].concat(phases),
      { timeout },
    );
    return page.getAttribute('[data-testid=train-status]', 'data-state');
  }

  const losses = async (page) => JSON.parse(await page.textContent('[data-testid=train-losses]'));
  const rows = (page) => page.locator('[data-testid=adapter-row]').count();
  /** Waits until the library lists more than `n` adapters (saving is asynchronous). */
  async function waitRows(page, n) {
    await page.waitForFunction((k) => document.querySelectorAll('[data-testid=adapter-row]').length > k, n, { timeout: 30_000 });
  }

  /** The newest library row's download, unzipped. */
  async function download(page, dir) {
    const rows = page.locator('[data-testid=adapter-row]');
    const [dl] = await Promise.all([page.waitForEvent('download'), rows.last().locator('[data-testid=adapter-download]').click()]);
    const zipPath = join(dir, 'adapter.zip');
    await dl.saveAs(zipPath);
    const files = unzip(readFileSync(zipPath));
    mkdirSync(dir, { recursive: true });
    for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
    return files;
  }

  /** Logits (rows per position) of the newest library row's adapter for `tokens`. */
  async function browserLogits(page, tokens) {
    await page.click('.logits-check summary');
    await page.fill('[data-testid=logits-tokens]', tokens);
    await page.evaluate(() => { document.querySelector('[data-testid=logits-json]').value = ''; });
    await page.locator('[data-testid=adapter-row]').last().locator('[data-testid=adapter-logits]').click();
    await page.waitForFunction(() => document.querySelector('[data-testid=logits-json]').value.length > 2, null, { timeout: 60_000 });
    return JSON.parse(await page.inputValue('[data-testid=logits-json]'));
  }

  test('20 steps on Peter Rabbit, paused and resumed: loss falls, held-out loss, samples differ; losses = tinylm finetune; the download gives the same logits in the CLI', async () => {
    const { page, log } = await openApp(browser.context, server.url);
    await openTrain(page);
    assert.match(await page.textContent('[data-testid=data-source]'), /Peter Rabbit.*Public domain/);
    assert.match(await page.textContent('[data-testid=counts]'), /\d+ tokens for training, \d+ held out/);
    await settings(page, { ...RUN, sampleEvery: 10, checkpointEvery: 5 });
    const stored = await rows(page);
    await page.click('[data-testid=train-start]');
    await page.waitForFunction(() => Number(document.querySelector('[data-testid=train-step]').textContent.split(' ')[0]) >= 3, null, { timeout: SLOW });
    // Pause ends the run after the step in progress, with a checkpoint; Resume continues it.
    await page.click('[data-testid=train-pause]');
    assert.equal(await waitPhase(page, ['paused', 'error'], 30_000), 'paused');
    const pausedAt = (await losses(page)).length;
    assert.ok(pausedAt < RUN.steps, `paused at ${pausedAt}`);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await losses(page)).length, pausedAt, 'nothing trains while paused');
    await screenshot(page, 'train-paused');
    await page.click('[data-testid=train-resume]');
    assert.equal(await waitPhase(page, ['finished', 'error']), 'finished', await page.textContent('[data-testid=train-status]'));
    await page.waitForSelector('[data-testid=sample-on]');
    await screenshot(page, 'train-done');

    assert.equal(await page.getAttribute('[data-testid=train-backend]', 'data-kind'), 'cpu');
    const got = await losses(page);
    assert.equal(got.length, RUN.steps + 1);
    assert.ok(got[RUN.steps] < got[0], `loss ${got[0]} -> ${got[RUN.steps]}`);
    const held = JSON.parse(await page.textContent('[data-testid=train-held]'));
    assert.ok(held.length >= 2 && held.every(([, l]) => Number.isFinite(l)), JSON.stringify(held));
    assert.match(await page.textContent('[data-testid=train-status]'), /held-out \d\.\d{4}/);
    const off = await page.textContent('[data-testid=sample-off]');
    const on = await page.textContent('[data-testid=sample-on]');
    assert.ok(off.startsWith('Once upon a time') && on.startsWith('Once upon a time'));
    assert.notEqual(on, off, 'adapter-on sample differs from adapter-off');

    // The same run on the CLI, on the text the browser trained on (the held-out tenth removed).
    const chars = Number(await page.getAttribute('[data-testid=counts]', 'data-train-chars'));
    const trainText = Array.from(readFileSync(BOOK, 'utf8')).slice(0, chars).join('');
    const textFile = join(work, 'train.txt');
    writeFileSync(textFile, trainText);
    const cliDir = join(work, 'cli');
    tinylm(['finetune', MODEL, '-z', TOK, '--text-file', textFile, '--targets', RUN.targets, '--rank', `${RUN.rank}`,
      '--alpha', `${RUN.alpha}`, '--lr', `${RUN.lr}`, '--steps', `${RUN.steps}`, '--batch', `${RUN.batch}`, '--seq', `${RUN.seq}`,
      '--init-seed', `${RUN.seed}`, '--data-seed', `${RUN.seed}`, '-o', cliDir]);
    const want = JSON.parse(readFileSync(join(cliDir, 'losses.json'), 'utf8'));
    assert.equal(want.length, got.length);
    for (let i = 0; i < want.length; i++) {
      assert.ok(Math.abs(got[i] - want[i]) <= 1e-5 * Math.abs(want[i]), `loss ${i}: browser ${got[i]} vs CLI ${want[i]}`);
    }

    // The downloaded adapter in the CLI gives the browser's logits.
    await waitRows(page, stored);
    const dir = join(work, 'download');
    const files = await download(page, dir);
    assert.deepEqual(Object.keys(files).sort(), ['adapter_config.json', 'adapter_model.safetensors']);
    assert.equal(JSON.parse(files['adapter_config.json']).r, RUN.rank);
    const tokens = '1 403 407 261 378 383 382 276 272 277';
    const mine = (await browserLogits(page, tokens)).flat();
    const out = join(work, 'logits.safetensors');
    tinylm(['logits', MODEL, '--adapter', dir, '--tokens', tokens, '-o', out]);
    const { d, m } = maxDiff(mine, Array.from(safetensors(readFileSync(out)).logits.data));
    assert.ok(d <= 1e-4 * m, `logits differ by ${d} (max |logit| ${m})`);
    // And they are not the plain model's.
    const plain = join(work, 'plain.safetensors');
    tinylm(['logits', MODEL, '--tokens', tokens, '-o', plain]);
    assert.ok(maxDiff(mine, Array.from(safetensors(readFileSync(plain)).logits.data)).d > 1e-3);

    // The library's comparison uses the samples' prompt and seed: the same two stories again,
    // the plain model's and the stored (final) adapter's.
    assert.equal(Number(await page.getAttribute('[data-testid=samples]', 'data-step')), RUN.steps);
    await page.locator('[data-testid=adapter-row]').last().locator('[data-testid=adapter-compare]').click();
    await page.waitForSelector('[data-testid=compare-on]', { timeout: 60_000 });
    assert.equal(await page.textContent('[data-testid=compare-off]'), off);
    assert.equal(await page.textContent('[data-testid=compare-on]'), on);
    await screenshot(page, 'train-compare');

    // Generate with the adapter on: the page says so.
    await page.locator('[data-testid=adapter-row]').last().locator('[data-testid=adapter-use]').click();
    await page.waitForFunction(() => document.querySelector('[data-testid=using]').textContent.includes('adapter “'), null, { timeout: 60_000 });
    // The greedy story with the adapter merged is no longer the plain model's (run.c's).
    await page.click('[data-testid=tab-generate]');
    const { state, text } = await generate(page, { prompt: '', temperature: 0, topp: 0.9, seed: 1, steps: 64 });
    assert.equal(state, 'done');
    const plainStory = readShared('reference/stories260K_greedy_256.txt');
    assert.ok(text.length > 20 && !plainStory.startsWith(text), `adapter story: ${text}`);
    assert.deepEqual(log.errors, []);
    await page.close();
  });

  test('reload during training, resume: the final adapter equals an uninterrupted run', async () => {
    const s = { ...RUN, steps: 30, sampleEvery: 15, checkpointEvery: 5, name: 'resume-check' };
    const { page, log } = await openApp(browser.context, server.url);
    await openTrain(page);
    await settings(page, s);
    await page.click('[data-testid=train-start]');
    await page.waitForFunction(() => Number(document.querySelector('[data-testid=train-checkpoints]').textContent) >= 2, null, { timeout: SLOW });
    await screenshot(page, 'train-mid-run');
    await page.reload();
    await openTrain(page);
    await page.waitForSelector('[data-testid=interrupted]', { timeout: 30_000 });
    const offer = await page.textContent('[data-testid=interrupted]');
    const saved = Number(offer.match(/at step (\d+) of 30/)[1]);
    assert.ok(saved >= 5 && saved % 5 === 0, offer);
    await screenshot(page, 'train-resume-offer');
    const stored = await rows(page);
    await page.click('[data-testid=resume-saved]');
    // It continues from the saved step, not from 0.
    assert.ok(Number((await page.textContent('[data-testid=train-step]')).split(' ')[0]) >= saved);
    assert.equal(await waitPhase(page, ['finished', 'error']), 'finished', await page.textContent('[data-testid=train-status]'));
    const resumedLosses = await losses(page);
    await waitRows(page, stored);
    const resumed = safetensors(Buffer.from((await download(page, join(work, 'resumed')))['adapter_model.safetensors']));

    await settings(page, s);
    await page.click('[data-testid=train-start]');
    assert.equal(await waitPhase(page, ['finished', 'error']), 'finished');
    const straightLosses = await losses(page);
    await waitRows(page, stored + 1);
    const straight = safetensors(Buffer.from((await download(page, join(work, 'straight')))['adapter_model.safetensors']));

    assert.equal(resumedLosses.length, 31);
    for (let i = 0; i < 31; i++) {
      assert.ok(Math.abs(resumedLosses[i] - straightLosses[i]) <= 1e-4 * Math.abs(straightLosses[i]), `loss ${i}`);
    }
    assert.deepEqual(Object.keys(resumed).sort(), Object.keys(straight).sort());
    for (const k of Object.keys(straight)) {
      const { d, m } = maxDiff(Array.from(resumed[k].data), Array.from(straight[k].data));
      assert.ok(d <= 1e-4 * m, `${k}: differs by ${d} (max ${m})`);
    }
    assert.deepEqual(log.errors, []);
    await page.close();
  });

  test('the PEFT fixture uploaded gives logits_final; an adapter for another model is refused', async () => {
    const { page, log } = await openApp(browser.context, server.url);
    await openTrain(page);
    const before = await page.locator('[data-testid=adapter-row]').count();
    await page.setInputFiles('[data-testid=adapter-upload]', [
      join(FIXTURE, 'adapter_final/adapter_config.json'), join(FIXTURE, 'adapter_final/adapter_model.safetensors'),
    ]);
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid=adapter-row]').length > n, before, { timeout: 30_000 });
    const ids = readFileSync(join(FIXTURE, 'README.md'), 'utf8').match(/ids \(64\):\n```\n([\d ]+)\n```/)[1];
    const mine = (await browserLogits(page, ids)).flat();
    const want = safetensors(readFileSync(join(FIXTURE, 'lora_reference.safetensors'))).logits_final;
    assert.equal(want.data.length, 64 * 512);
    const { d, m } = maxDiff(mine, Array.from(want.data));
    assert.ok(d <= 1e-4 * Math.max(1, m), `logits_final differs by ${d}`);
    await screenshot(page, 'train-library');

    // A tiny model of another shape and an adapter trained on it.
    const other = join(work, 'other.bin');
    tinylm(['make-model', '--config', '32,64,2,4,4,512,64', '--seed', '7', '-o', other]);
    const otherDir = join(work, 'other-adapter');
    tinylm(['finetune', other, '--tokens', '1 5 6 7 8 9', '--steps', '1', '-o', otherDir]);
    const count = await page.locator('[data-testid=adapter-row]').count();
    await page.setInputFiles('[data-testid=adapter-upload]', [join(otherDir, 'adapter_config.json'), join(otherDir, 'adapter_model.safetensors')]);
    await page.waitForFunction(() => /different base model/.test(document.querySelector('[data-testid=library-note]').textContent), null, { timeout: 30_000 });
    assert.equal(await page.locator('[data-testid=adapter-row]').count(), count, 'nothing was added');
    assert.deepEqual(log.errors, []);
    await page.close();
  });
});

describe('Train view on WebGPU (SwiftShader): the GPU trainer in the worker', () => {
  let server;
  let browser;
  const work = mkdtempSync(join(tmpdir(), 'tinylm-train-gpu-'));
  before(async () => {
    server = await startServer();
    browser = await launchBrowser({ webgpu: true });
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('20 steps on Peter Rabbit on WebGPU: loss falls, samples differ, losses within 1e-3 of tinylm finetune', async () => {
    const { page, log } = await openApp(browser.context, server.url);
    assert.equal(await waitForState(page, ['ready', 'error'], 120_000), 'ready', await statusText(page));
    assert.equal(await page.getAttribute('[data-testid=backend]', 'data-kind'), 'webgpu');
    await page.click('[data-testid=tab-train]');
    await page.waitForFunction(() => document.querySelector('[data-testid=counts]')?.dataset.trainChars, null, { timeout: 60_000 });
    for (const [k, v] of Object.entries({ ...RUN, 'sample-every': 10, 'checkpoint-every': 10 })) {
      await page.fill(`[data-testid=train-${k}]`, String(v));
    }
    await page.click('[data-testid=train-start]');
    await page.waitForFunction(() => Number(document.querySelector('[data-testid=train-step]').textContent.split(' ')[0]) >= 3, null, { timeout: SLOW });
    assert.equal(await page.getAttribute('[data-testid=train-backend]', 'data-kind'), 'webgpu');
    await screenshot(page, 'train-mid-run-webgpu');
    await page.waitForFunction(
      () => ['finished', 'error'].includes(document.querySelector('[data-testid=train-status]').dataset.state), null, { timeout: SLOW },
    );
    assert.equal(await page.getAttribute('[data-testid=train-status]', 'data-state'), 'finished', await page.textContent('[data-testid=train-status]'));
    const got = JSON.parse(await page.textContent('[data-testid=train-losses]'));
    assert.ok(got[RUN.steps] < got[0]);
    assert.notEqual(await page.textContent('[data-testid=sample-on]'), await page.textContent('[data-testid=sample-off]'));
    const chars = Number(await page.getAttribute('[data-testid=counts]', 'data-train-chars'));
    const want = cliLosses(work, Array.from(readFileSync(BOOK, 'utf8')).slice(0, chars).join(''));
    for (let i = 0; i < want.length; i++) {
      assert.ok(Math.abs(got[i] - want[i]) <= 1e-3 * Math.abs(want[i]), `loss ${i}: WebGPU ${got[i]} vs CLI ${want[i]}`);
    }
    assert.deepEqual(log.errors, []);
    await page.close();
  });
});
