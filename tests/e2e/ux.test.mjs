// A lab a class can use (issue 17, part A): Auto chooses the backend by measurement and never a
// software adapter; the reading pace; the adapter in use, visible and carried by links.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  assertClean, bundledPath, generate, launchBrowser, openApp, readShared, REPO, SHARED_DATA, sharedPath, statusText, tinylm, useSite, waitForState,
} from './helpers.mjs';
import { countDistinctive, distinctiveWords } from './style-words.mjs';

const greedy256 = readShared('reference/stories260K_greedy_256.txt').replace(/\n$/, '');
const FIXTURE = sharedPath('reference/stories260K_lora_qv_r4/adapter_final');
const WARMING = 'The CPU writes at once while WebGPU starts; then the faster of the two, measured here, takes over.';
const SLOW = 240_000;

async function backend(page) {
  return {
    kind: await page.getAttribute('[data-testid=backend]', 'data-kind'),
    name: await page.textContent('[data-testid=backend]'),
    reason: await page.textContent('[data-testid=backend-reason]'),
  };
}

/** FNV-1a 64 over the bytes, as 16 hex digits (the published algorithm, written here again). */
function fnv1a(buffers) {
  let h = 0xcbf29ce484222325n;
  for (const b of buffers) {
    for (const x of b) {
      h ^= BigInt(x);
      h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
    }
  }
  return h.toString(16).padStart(16, '0');
}

describe('Auto chooses the backend by measurement (WebGPU on SwiftShader)', () => {
  const site = useSite({ webgpu: true });

  test('Auto on SwiftShader (a software fallback adapter) picks the CPU at once and says why', async () => {
    const { page, log } = await openApp(site.browser.context, site.server.url);
    assert.equal(await waitForState(page, ['ready', 'error'], 60_000), 'ready', await statusText(page));
    const b = await backend(page);
    assert.equal(b.kind, 'cpu');
    assert.match(b.name, /^CPU — WebAssembly/);
    assert.match(b.reason, /^Using the CPU: the only WebGPU adapter here \(.*swiftshader.*\) is a software fallback that runs on this processor, which the CPU path does faster\.$/i);
    const r = await generate(page, { temperature: 0, topp: 0.9, seed: 1, steps: 64 });
    assert.equal(r.state, 'done', r.status);
    assert.ok(greedy256.startsWith(r.text) && r.text.length > 100, r.text);
    assert.equal(await page.textContent('[data-testid=figure-backend]'), 'CPU');
    await assertClean(page, log, site.server.url);
    await page.close();
  });

  test('a hardware adapter is measured against the CPU: the CPU writes while WebGPU starts; the figures are kept', async () => {
    const { page, log } = await openApp(site.browser.context, site.server.url);
    assert.equal(await waitForState(page, ['ready', 'error'], 60_000), 'ready');
    // SwiftShader posing as a hardware adapter: the engine worker then starts and measures it.
    const worker = page.workers().find((w) => /worker/.test(w.url()));
    assert.ok(worker, 'the engine worker');
    await worker.evaluate(() => {
      Object.defineProperty(GPUAdapterInfo.prototype, 'isFallbackAdapter', { get: () => false, configurable: true });
      // A GPU that takes seconds to start, whatever Chromium's pipeline cache already holds from
      // earlier tests (pipelines are made on first use, so a warm cache starts WebGPU quickly).
      const requestDevice = GPUAdapter.prototype.requestDevice;
      GPUAdapter.prototype.requestDevice = function (...args) {
        return new Promise((ok) => setTimeout(ok, 3000)).then(() => requestDevice.apply(this, args));
      };
    });
    await page.selectOption('[data-testid=backend-choice]', 'cpu');
    assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
    await page.selectOption('[data-testid=backend-choice]', 'auto');
    // SwiftShader compiles in Chromium's GPU process, which then paints no frames for the page:
    // no waiting on animation frames (Playwright's default) or on a click's "stable" check.
    const state = (states) => page.waitForFunction((w) => w.includes(document.querySelector('[data-testid=status]').dataset.state),
      states, { timeout: SLOW, polling: 100 });
    await state(['ready']);
    assert.equal((await backend(page)).reason, WARMING);
    // The first story does not wait for WebGPU (SwiftShader takes seconds to start).
    await page.evaluate(() => {
      const set = (id, v) => {
        const el = document.querySelector(`[data-testid=${id}]`);
        el.value = v;
        el.dispatchEvent(new Event('input', { bubbles: true }));
      };
      for (const [id, v] of [['prompt', ''], ['temperature', '0'], ['topp', '0.9'], ['seed', '1'], ['steps', '64']]) set(id, v);
      document.querySelector('[data-testid=generate]').click();
    });
    await state(['done', 'error']);
    const first = await page.textContent('[data-testid=output]');
    assert.ok(greedy256.startsWith(first) && first.length > 100, first);
    assert.equal((await backend(page)).reason, WARMING, 'the story was written before WebGPU was ready');
    await page.waitForFunction(() => /^Measured/.test(document.querySelector('[data-testid=backend-reason]').textContent), null, { timeout: SLOW, polling: 250 });
    const b = await backend(page);
    const m = b.reason.match(/^Measured just now on this device: the CPU writes ([\d,.]+) tokens\/s, WebGPU ([\d,.]+) tokens\/s, so the CPU writes the story\.$/);
    assert.ok(m, b.reason);
    const [cpu, gpu] = [Number(m[1].replace(/,/g, '')), Number(m[2].replace(/,/g, ''))];
    assert.ok(cpu > gpu && gpu > 0, `CPU ${cpu} vs WebGPU ${gpu} tokens/s`);
    assert.equal(b.kind, 'cpu');
    console.log(`measured on SwiftShader: CPU ${cpu} tokens/s, WebGPU ${gpu} tokens/s`);
    // Auto again: the kept figures decide at once, and WebGPU is not even started.
    await page.selectOption('[data-testid=backend-choice]', 'cpu');
    assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
    await page.selectOption('[data-testid=backend-choice]', 'auto');
    assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
    assert.equal((await backend(page)).reason,
      `Measured earlier on this device: the CPU writes ${m[1]} tokens/s, WebGPU ${m[2]} tokens/s, so the CPU writes the story.`);
    await assertClean(page, log, site.server.url);
    await page.close();
  });
});

describe('Reading pace and the adapter in use (CPU path)', () => {
  const site = useSite();
  const story = { prompt: 'Once upon a time', temperature: 1, topp: 0.9, seed: 4242, steps: 120 };

  test('typewriter pace: tokens arrive over time, the same story as fast; tok/s is the engine’s; Stop stops it', async () => {
    const { page, log } = await openApp(site.browser.context, site.server.url);
    assert.equal(await page.inputValue('[data-testid=pace]'), 'fast');
    const fast = await generate(page, story);
    assert.equal(fast.state, 'done', fast.status);
    await page.selectOption('[data-testid=pace]', 'typewriter');
    await page.click('[data-testid=generate]');
    // Every distinct text seen on screen while it writes.
    const seen = await page.evaluate(() => new Promise((resolve) => {
      const out = document.querySelector('[data-testid=output]');
      const texts = [];
      const look = () => {
        const t = out.textContent;
        if (texts[texts.length - 1] !== t) texts.push(t);
        if (document.querySelector('[data-testid=status]').dataset.state === 'done') resolve(texts);
        else setTimeout(look, 20);
      };
      look();
    }));
    assert.equal(seen[seen.length - 1], fast.text, 'the same story');
    assert.ok(seen.length >= 20, `${seen.length} distinct texts on the way`);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i].startsWith(seen[i - 1]), 'each text continues the last');
    // The figures are the engine's: far above the typewriter's 15 tokens/s.
    const rate = Number(await page.textContent('[data-testid=tok-s]'));
    assert.ok(rate > 45, `engine ${rate} tokens/s`);

    // Stop in the middle: what was on screen stays, nothing more comes.
    await page.fill('[data-testid=steps]', '256');
    await page.click('[data-testid=generate]');
    await page.waitForFunction(() => document.querySelector('[data-testid=output]').textContent.length > 40);
    await page.click('[data-testid=stop]');
    assert.equal(await waitForState(page, ['done', 'error']), 'done');
    const status = await statusText(page);
    const tokens = Number(status.match(/^Stopped: (\d+) tokens/)?.[1]);
    assert.ok(tokens > 4 && tokens < 120, status);
    const shown = await page.textContent('[data-testid=output]');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await page.textContent('[data-testid=output]'), shown, 'nothing is shown after Stop');
    assert.ok(fast.text.startsWith(shown) && shown.length < fast.text.length, shown);

    // Presentation mode brings the typewriter; leaving it, as fast as it goes.
    await page.selectOption('[data-testid=pace]', 'fast');
    await page.click('[data-testid=present]');
    assert.equal(await page.inputValue('[data-testid=pace]'), 'typewriter');
    await page.click('[data-testid=present]');
    assert.equal(await page.inputValue('[data-testid=pace]'), 'fast');
    await assertClean(page, log, site.server.url);
    await page.close();
  });

  test('an adapter in use: badges with one-click off; the link carries it and runs; a receiver without it is told', async () => {
    const { page, log } = await openApp(site.browser.context, site.server.url);
    assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
    assert.equal(await page.locator('[data-testid^=adapter-badge]').count(), 0, 'no badge for the plain model');
    await page.click('[data-testid=tab-train]');
    const rows = await page.locator('[data-testid=adapter-row]').count();
    await page.setInputFiles('[data-testid=adapter-upload]', [join(FIXTURE, 'adapter_config.json'), join(FIXTURE, 'adapter_model.safetensors')]);
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid=adapter-row]').length > n, rows, { timeout: 30_000 });
    // Before any run, the figures show the Steps field's count (the quick demo's 80), not "0 / 0".
    await page.waitForFunction(() => document.querySelector('[data-testid=counts]')?.dataset.trainChars, null, { timeout: 60_000 });
    assert.equal(await page.inputValue('[data-testid=train-steps]'), '80');
    assert.equal(await page.textContent('[data-testid=train-step]'), '0 / 80');
    const use = page.locator('[data-testid=adapter-row]').last().locator('[data-testid=adapter-use]');
    await use.click();
    // Once it is in, the row says "In use" (no second "Use") and the note no longer reads as
    // still at work ("Putting … into the model for Generate…").
    await page.waitForFunction(() => document.querySelector('[data-testid=using]').textContent.includes('adapter “'), null, { timeout: 60_000 });
    assert.equal((await use.textContent()).trim(), 'In use');
    assert.ok(await use.isDisabled());
    assert.doesNotMatch(await page.textContent('[data-testid=library-note]'), /Putting/);
    // "Use no adapter" stands apart from the sentence before it, not against its full stop.
    const gap = await page.$eval('[data-testid=using]', (p) => {
      const text = [...p.childNodes].find((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
      const range = document.createRange();
      range.selectNodeContents(text);
      const rects = range.getClientRects();
      return p.querySelector('button').getBoundingClientRect().left - rects[rects.length - 1].right;
    });
    assert.ok(gap >= 6, `"Use no adapter" is ${gap} px after the sentence`);
    await page.click('[data-testid=tab-generate]');
    await page.waitForSelector('[data-testid=adapter-badge-story]', { timeout: 60_000 });
    for (const place of ['model', 'story']) {
      assert.equal(await page.textContent(`[data-testid=adapter-name-${place}]`), 'uploaded adapter');
    }
    const greedy = { prompt: '', temperature: 0, topp: 0.9, seed: 1, steps: 64 };
    const withAdapter = await generate(page, greedy);
    const cli = tinylm(['generate', bundledPath('stories260K.bin'), '-z', bundledPath('tok512.bin'), '--adapter', FIXTURE, '-t', '0', '-n', '64']).toString();
    assert.ok(withAdapter.text.length > 20 && cli.startsWith(withAdapter.text.trimEnd()), `${withAdapter.text} vs CLI ${cli}`);

    // The link names the adapter and its content hash, and runs at once.
    await page.check('[data-testid=link-runs]');
    await page.click('[data-testid=copy-link]');
    const link = await page.inputValue('[data-testid=link]');
    const hash = fnv1a([readFileSync(join(FIXTURE, 'adapter_config.json')), Buffer.from([0]), readFileSync(join(FIXTURE, 'adapter_model.safetensors'))]);
    assert.ok(link.endsWith(`&adapter=uploaded%20adapter&adapter_hash=${hash}&run=1`), link);

    // On this device (the adapter is in the library): in use, and the story written by itself.
    const again = await openApp(site.browser.context, link);
    await waitForState(again.page, ['done', 'error'], 120_000);
    assert.equal(await again.page.textContent('[data-testid=output]'), withAdapter.text);
    assert.equal(await again.page.textContent('[data-testid=adapter-name-story]'), 'uploaded adapter');
    await assertClean(again.page, again.log, site.server.url);
    await again.page.close();

    // A device without it: told so, and the plain model writes.
    const fresh = await launchBrowser();
    try {
      const other = await openApp(fresh.context, link);
      await waitForState(other.page, ['done', 'error'], 120_000);
      assert.match(await other.page.textContent('[data-testid=link-note]'),
        /^This link's story was written with the adapter “uploaded adapter”, which is not on this device, so the plain model writes instead\./);
      const plain = await other.page.textContent('[data-testid=output]');
      assert.ok(greedy256.startsWith(plain) && plain.length > 100, plain);
      assert.equal(await other.page.locator('[data-testid^=adapter-badge]').count(), 0);
      await assertClean(other.page, other.log, site.server.url);
      await other.page.close();
    } finally {
      await fresh.close();
    }

    // One click turns it off: the plain model's story again.
    await page.click('[data-testid=adapter-off-story]');
    await page.waitForFunction(() => !document.querySelector('[data-testid=adapter-badge-story]'), null, { timeout: 60_000 });
    assert.equal(await page.locator('[data-testid=adapter-badge-model]').count(), 0);
    const plain = await generate(page, greedy);
    assert.ok(greedy256.startsWith(plain.text) && plain.text.length > 100, plain.text);
    // The library's row offers "Use" again.
    await page.click('[data-testid=tab-train]');
    assert.equal((await use.textContent()).trim(), 'Use');
    assert.ok(await use.isEnabled());
    await assertClean(page, log, site.server.url);
    await page.close();
  });
});

describe('Training that teaches (CPU path)', () => {
  const site = useSite();
  const TEXTS = ['peter-rabbit', 'aesop', 'alice', 'tinystories'];

  async function openTrain(page) {
    assert.equal(await waitForState(page, ['ready', 'error'], 60_000), 'ready');
    await page.click('[data-testid=tab-train]');
  }

  /** Chooses a bundled text and waits for its counts. */
  async function useText(page, key) {
    await page.evaluate(() => { document.querySelector('[data-testid=counts]')?.removeAttribute('data-train-chars'); });
    await page.selectOption('[data-testid=corpus]', key);
    await page.waitForFunction(() => document.querySelector('[data-testid=counts]')?.dataset.trainChars, null, { timeout: 60_000 });
  }

  /** Better's steps: one pass over the 64-token windows (overlapping by one), 4 a step, 100–500. */
  function onePass(tokens) {
    const windows = tokens < 64 ? 0 : Math.floor((tokens - 64) / 63) + 1 + ((tokens - 64) % 63 ? 1 : 0);
    return Math.min(500, Math.max(100, Math.ceil(windows / 4)));
  }

  test('Better\'s steps and the suggested name follow the chosen text until typed over', async () => {
    const { page, log } = await openApp(site.browser.context, site.server.url);
    await openTrain(page);
    const steps = () => page.inputValue('[data-testid=train-steps]');
    const tokens = async () => Number(await page.getAttribute('[data-testid=counts]', 'data-train-tokens'));
    await useText(page, 'peter-rabbit');
    await page.click('[data-testid=preset-better]');
    assert.equal(await steps(), '100', 'a short text gets the floor');
    await useText(page, 'aesop');
    // The CLI cuts Aesop's training part into 1,796 windows (scripts/measure-presets.mjs).
    assert.equal(onePass(await tokens()), 449);
    assert.equal(await page.inputValue('[data-testid=train-name]'), 'Aesop style', 'the suggested name follows the text');
    await page.waitForFunction(() => document.querySelector('[data-testid=train-steps]').value === '449');
    // Half the window length: about twice the windows, recounted at once (the ceiling for Aesop).
    await page.fill('[data-testid=train-seq]', '32');
    await page.waitForFunction(() => document.querySelector('[data-testid=train-steps]').value === '500');
    await useText(page, 'tinystories');
    const small = await tokens();
    const windows32 = Math.floor((small - 32) / 31) + 1 + ((small - 32) % 31 ? 1 : 0);
    await page.waitForFunction((n) => document.querySelector('[data-testid=train-steps]').value === `${n}`, Math.min(500, Math.ceil(windows32 / 4)));
    // A number typed by hand stays.
    await page.fill('[data-testid=train-steps]', '120');
    await useText(page, 'aesop');
    assert.equal(await steps(), '120');
    await page.click('[data-testid=preset-quick]');
    await page.fill('[data-testid=train-name]', 'My fables');
    await useText(page, 'alice');
    assert.equal(await steps(), '80');
    assert.equal(await page.inputValue('[data-testid=train-name]'), 'My fables', 'a typed name stays');
    await assertClean(page, log, site.server.url);
    await page.close();
  });

  async function trainToEnd(page) {
    await page.click('[data-testid=train-start]');
    await page.waitForFunction(() => ['finished', 'error'].includes(document.querySelector('[data-testid=train-status]').dataset.state), null, { timeout: 600_000 });
    assert.equal(await page.getAttribute('[data-testid=train-status]', 'data-state'), 'finished', await page.textContent('[data-testid=train-status]'));
    return JSON.parse(await page.textContent('[data-testid=train-held]'));
  }

  test('each preset on each bundled text ends with held-out loss below its start, its samples take the text\'s words; the chart stays in view', async () => {
    const { page, log } = await openApp(site.browser.context, site.server.url);
    await openTrain(page);
    const table = [];
    const words = [];
    for (const text of TEXTS) {
      await useText(page, text);
      // The text's distinctive words (tests/e2e/style-words.mjs), from the part the page trains on.
      const chars = Number(await page.getAttribute('[data-testid=counts]', 'data-train-chars'));
      const book = Array.from(readFileSync(join(REPO, `public/corpora/${text}.txt`), 'utf8'));
      const distinct = distinctiveWords(book.slice(0, chars).join(''), SHARED_DATA);
      for (const preset of ['quick', 'better']) {
        await page.click(`[data-testid=preset-${preset}]`);
        const steps = Number(await page.inputValue('[data-testid=train-steps]'));
        const tokens = Number(await page.getAttribute('[data-testid=counts]', 'data-train-tokens'));
        assert.equal(steps, preset === 'quick' ? 80 : onePass(tokens), `${preset} on ${text} (${tokens} tokens)`);
        const held = await trainToEnd(page);
        const [start, end] = [held[0], held[held.length - 1]];
        table.push(`${preset} ${text}: ${start[1].toFixed(3)} -> ${end[1].toFixed(3)}`);
        assert.equal(start[0], 0);
        assert.equal(end[0], steps);
        assert.ok(end[1] < start[1], `${preset} on ${text}: held-out ${start[1]} -> ${end[1]}`);
        // The last samples: the text's own prompt, the plain model's words against the adapter's.
        await page.waitForSelector(`[data-testid=samples][data-step="${steps}"]`);
        const prompt = await page.inputValue('[data-testid=train-prompt]');
        const off = await page.textContent('[data-testid=sample-off]');
        const on = await page.textContent('[data-testid=sample-on]');
        assert.ok(off.startsWith(prompt) && on.startsWith(prompt), `${text}: samples start with “${prompt}”`);
        // A book's paragraph breaks come out as runs of empty lines, shown as one.
        assert.ok(![off, on].some((s) => /\n\n\n/.test(s) || s !== s.trimEnd()), `${text}: a run of empty lines in “${on}”`);
        const [plain, adapted] = [countDistinctive(off, prompt, distinct), countDistinctive(on, prompt, distinct)];
        words.push(`${preset} ${text}: distinctive words plain ${plain}, adapter ${adapted}: “${on}”`);
        // Measured (scripts/measure-presets.mjs): both presets take the words of the three books;
        // TinyStories is the plain model's own style (no words to take; README, "Presets chosen
        // by measurement").
        if (text !== 'tinystories') {
          assert.ok(adapted > plain, `${text}: the adapter's sample has ${adapted} of the text's distinctive words, the plain model's ${plain}: “${on}” vs “${off}”`);
        }
        // A loss axis never goes below zero, and the last step is labelled inside the chart.
        assert.ok(Number(await page.textContent('[data-testid=y-min]')) >= 0);
        assert.equal(await page.textContent('[data-testid=x-max]'), `step ${steps}`);
        const fits = await page.evaluate(() => {
          const svg = document.querySelector('[data-testid=loss-chart] svg');
          const box = svg.viewBox.baseVal;
          return [...svg.querySelectorAll('text')].every((t) => {
            const b = t.getBBox();
            return b.x >= box.x && b.y >= box.y && b.x + b.width <= box.x + box.width && b.y + b.height <= box.y + box.height;
          });
        });
        assert.ok(fits, 'every chart label lies inside the chart');
        // The pre-start estimate's "Measuring…" is gone once a run has ended.
        assert.doesNotMatch(await page.textContent('[data-testid=train-estimate]'), /Measuring/);
        await page.waitForSelector('[data-testid=best]');
      }
    }
    console.log(table.join('\n'));
    console.log(words.join('\n'));
    await assertClean(page, log, site.server.url);
    await page.close();
  });

  test('a run that memorises Peter Rabbit says so, marks the step, and offers its best adapter (= tinylm finetune)', async () => {
    const { page, log } = await openApp(site.browser.context, site.server.url);
    await openTrain(page);
    await useText(page, 'peter-rabbit');
    await page.click('[data-testid=preset-quick]');
    // The old quick preset's adapter (q,v rank 4) at a rate that memorises Peter Rabbit.
    const run = { lr: 5e-3, steps: 100 };
    await page.fill('[data-testid=train-targets]', 'q_proj,v_proj');
    await page.fill('[data-testid=train-rank]', '4');
    await page.fill('[data-testid=train-alpha]', '8');
    await page.fill('[data-testid=train-sample-every]', '25');
    await page.fill('[data-testid=train-lr]', String(run.lr));
    await page.fill('[data-testid=train-steps]', String(run.steps));
    const held = await trainToEnd(page);
    // Lowest at step 25, higher at every check after it.
    const low = held.reduce((a, b) => (b[1] < a[1] ? b : a));
    assert.equal(low[0], 25, JSON.stringify(held));
    assert.equal(await page.getAttribute('[data-testid=overfit]', 'data-step'), '25');
    assert.match(await page.textContent('[data-testid=overfit]'), /^The adapter has started memorising its text \(overfitting\)\. Since step 25 the held-out loss/);
    assert.equal(await page.getAttribute('[data-testid=overfit-mark]', 'data-step'), '25');
    // The best adapter: its held-out loss is the CLI's after 25 steps on the same split.
    const chars = Number(await page.getAttribute('[data-testid=counts]', 'data-train-chars'));
    const book = Array.from(readFileSync(join(REPO, 'public/corpora/peter-rabbit.txt'), 'utf8'));
    const work = mkdtempSync(join(tmpdir(), 'tinylm-ux-'));
    writeFileSync(join(work, 'train.txt'), book.slice(0, chars).join(''));
    writeFileSync(join(work, 'held.txt'), book.slice(chars).join(''));
    tinylm(['finetune', bundledPath('stories260K.bin'), '-z', bundledPath('tok512.bin'), '--text-file', join(work, 'train.txt'),
      '--eval-file', join(work, 'held.txt'), '--targets', 'q_proj,v_proj', '--rank', '4', '--alpha', '8', '--lr', String(run.lr),
      '--steps', '25', '--batch', '4', '--seq', '64', '--init-seed', '1234', '--data-seed', '1234', '-o', join(work, 'cli')]);
    const cli = JSON.parse(readFileSync(join(work, 'cli/held_out.json'), 'utf8')).loss;
    rmSync(work, { recursive: true, force: true });
    assert.ok(Math.abs(low[1] - cli) <= 1e-5 * cli, `best ${low[1]} vs CLI ${cli}`);
    assert.match(await page.textContent('[data-testid=best]'), new RegExp(`^The held-out loss was lowest at step 25 \\(${cli.toFixed(3)}; \\d+\\.\\d{3} at step 100, where the run ended\\)`));
    const rows = await page.locator('[data-testid=adapter-row]').count();
    await page.click('[data-testid=keep-best]');
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid=adapter-row]').length > n, rows, { timeout: 30_000 });
    assert.match(await page.locator('[data-testid=adapter-row]').last().getAttribute('data-name'), /\(best: step 25\)$/);
    // The library shows each adapter's held-out loss: the best one's is the CLI's, and the final
    // adapter's is the higher one the run ended with (its training loss alone looked better).
    const best = page.locator('[data-testid=adapter-row]').last();
    assert.equal(await best.locator('[data-testid=adapter-held]').textContent(), cli.toFixed(3));
    const ended = (await page.textContent('[data-testid=best]')).match(/; (\d+\.\d{3}) at step 100/)[1];
    const helds = await page.$$eval('[data-testid=adapter-held]', (els) => els.map((e) => e.textContent));
    assert.ok(helds.includes(ended), `the final adapter's held-out loss ${ended} is in the library: ${helds}`);
    await assertClean(page, log, site.server.url);
    await page.close();
  });
});
