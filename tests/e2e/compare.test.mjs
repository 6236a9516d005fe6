// "Compare settings" in the Generate view: one prompt under several samplings, decoded together
// on the CPU by the worker; each column must be the story `tinylm generate` writes alone with
// that setting (the CLI's single run, not its --compare batch).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { assertClean, bundledPath, openApp, screenshot, sharedPath, statusText, tinylm, useSite, waitForState } from './helpers.mjs';
import { skipTour } from './views.mjs';

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const PROMPT = 'Once upon a time';

function cliStory({ temperature, topp, seed, steps }, model = bundledPath('stories260K.bin')) {
  const args = ['generate', model, '-z', bundledPath('tok512.bin'),
    '-t', String(temperature), '-p', String(topp), '-s', String(seed), '-n', String(steps), '-i', PROMPT];
  return tinylm(args).toString('utf8').replace(/\n$/, '');
}

/** Opens the app with the section open, the prompt and max steps set. */
async function openCompare(site, steps, before = async () => {}) {
  const { page, log } = await openApp(site.browser.context, site.server.url);
  assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
  await skipTour(page);
  await before(page);
  await page.fill('[data-testid=prompt]', PROMPT);
  await page.fill('[data-testid=steps]', String(steps));
  await page.click('[data-testid=compare-settings] summary');
  return { page, log };
}

async function setRows(page, rows) {
  for (const [i, r] of rows.entries()) {
    await page.fill(`[data-testid=compare-t-${i + 1}]`, String(r.temperature));
    await page.fill(`[data-testid=compare-p-${i + 1}]`, String(r.topp));
    await page.fill(`[data-testid=compare-s-${i + 1}]`, String(r.seed));
  }
}

const compareState = (page) => page.getAttribute('[data-testid=compare-status]', 'data-state');

async function waitCompare(page, states) {
  await page.waitForFunction((w) => w.includes(document.querySelector('[data-testid=compare-status]')?.dataset.state),
    states, { timeout: 60_000 });
  return compareState(page);
}

describe('Compare settings (Generate view, CPU batch)', () => {
  const site = useSite({ bypassCSP: true });

  test('three settings written together: each column is the CLI run alone with that setting', async () => {
    const { page, log } = await openCompare(site, 200);
    // Where it runs, in words: the CPU, whatever the backend.
    assert.match(await page.textContent('#compare-hint'), /written together on the CPU .*whatever backend Generate uses/);
    // The defaults: three rows, greedy and two temperatures, one seed.
    assert.equal(await page.locator('[data-testid^=compare-row-]').count(), 3);
    assert.equal(await page.inputValue('[data-testid=compare-t-1]'), '0');
    assert.equal(await page.inputValue('[data-testid=compare-s-3]'), '42');
    const rows = [
      { temperature: 0, topp: 0.9, seed: 42 },
      { temperature: 0.8, topp: 0.9, seed: 7 },
      { temperature: 1.2, topp: 0.95, seed: 99 },
    ];
    await setRows(page, rows);
    await page.click('[data-testid=compare-write]');
    assert.equal(await waitCompare(page, ['done', 'error']), 'done', await page.textContent('[data-testid=compare-status]'));
    assert.match(await page.textContent('[data-testid=compare-status]'), /^Done: 3 stories, \d+ tokens in all in [\d.]+ s\.$/);
    assert.equal(await page.locator('[data-testid^=compare-column-]').count(), 3);
    for (const [i, r] of rows.entries()) {
      const n = i + 1;
      const expected = cliStory({ ...r, steps: 200 });
      assert.match(expected, /^[\x20-\x7e\n]+$/, `setting ${n} should give a plain ASCII story`);
      assert.equal(await page.textContent(`[data-testid=compare-output-${n}]`), expected, `column ${n}`);
      assert.equal(await page.textContent(`[data-testid=compare-output-${n}] .echo`), PROMPT);
      const heading = await page.textContent(`[data-testid=compare-column-${n}] h3`);
      assert.ok(heading.includes(`temperature ${r.temperature} `) && heading.includes(`top-p ${r.topp} · seed ${r.seed}`), heading);
    }
    assert.match(await page.textContent('[data-testid=compare-column-1] h3'), /^1\. temperature 0 \(always the likeliest\)/);
    // The columns differ: the settings, not chance, make the difference.
    const texts = await page.locator('[data-testid^=compare-output-]').allTextContents();
    assert.equal(new Set(texts).size, 3);
    // Side by side on a projector, stacked on a phone.
    const tops = () => page.$$eval('[data-testid^=compare-column-]', (cs) => cs.map((c) => Math.round(c.getBoundingClientRect().top)));
    await page.setViewportSize({ width: 1920, height: 1080 });
    let t = await tops();
    assert.ok(t[0] === t[1] && t[1] === t[2], `one row on 1920 px: ${t}`);
    await page.$eval('[data-testid=compare-settings]', (el) => el.scrollIntoView({ block: 'start' }));
    await screenshot(page, 'compare-projector');
    await page.setViewportSize({ width: 390, height: 844 });
    t = await tops();
    assert.ok(t[0] < t[1] && t[1] < t[2], `stacked on 390 px: ${t}`);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(wide <= 390, `no sideways scrolling on a phone (${wide} px)`);
    await page.$eval('[data-testid=compare-settings]', (el) => el.scrollIntoView({ block: 'start' }));
    await screenshot(page, 'compare-phone');
    await assertClean(page, log, site.server.url);
    await page.close();
  });

  test('Stop ends every column early; what is shown is the start of each story', async () => {
    const { page, log } = await openCompare(site, 0);
    await page.click('[data-testid=compare-add]');
    assert.equal(await page.locator('[data-testid^=compare-row-]').count(), 4);
    assert.equal(await page.isDisabled('[data-testid=compare-add]'), true, 'four at most');
    await setRows(page, [
      { temperature: 1, topp: 0.9, seed: 1 },
      { temperature: 1, topp: 0.9, seed: 2 },
      { temperature: 1, topp: 0.9, seed: 3 },
      { temperature: 1, topp: 0.9, seed: 4 },
    ]);
    await page.click('[data-testid=compare-write]');
    await page.waitForFunction((n) => document.querySelector('[data-testid=compare-output-1]')?.textContent.length > n,
      PROMPT.length, { timeout: 30_000, polling: 'raf' });
    await page.click('[data-testid=compare-stop]');
    assert.equal(await waitCompare(page, ['done', 'error']), 'done');
    const status = await page.textContent('[data-testid=compare-status]');
    const tokens = Number(status.match(/^Stopped: 4 stories, (\d+) tokens in all/)?.[1]);
    assert.ok(tokens > 0 && tokens < 4 * 512, status);
    // Each column is the start of its whole story (one may have ended on its own before Stop).
    let cut = 0;
    for (let n = 1; n <= 4; n++) {
      const shown = await page.textContent(`[data-testid=compare-output-${n}]`);
      const full = cliStory({ temperature: 1, topp: 0.9, seed: n, steps: 0 });
      if (!/^[\x20-\x7e\n]+$/.test(full)) continue;
      assert.ok(full.startsWith(shown), `column ${n}: ${shown}`);
      if (shown.length < full.length) cut += 1;
    }
    assert.ok(cut >= 1, 'Stop cut at least one story short');
    // Generate works again once the run ended.
    assert.equal(await page.isEnabled('[data-testid=generate]'), true);
    assert.equal(await page.isEnabled('[data-testid=compare-write]'), true);
    await assertClean(page, log, site.server.url);
    await page.close();
  });

  test('a bad setting is refused in words, naming its row; axe finds nothing in the open section', async () => {
    const { page, log } = await openCompare(site, 40);
    await page.fill('[data-testid=compare-t-2]', '-1');
    await page.click('[data-testid=compare-write]');
    assert.equal(await waitCompare(page, ['error']), 'error');
    assert.equal(await page.textContent('[data-testid=compare-status]'), 'Setting 2: Temperature must be 0 or more, not -1.');
    await page.fill('[data-testid=compare-t-2]', '0.8');
    await page.fill('[data-testid=compare-p-3]', '2');
    await page.click('[data-testid=compare-write]');
    assert.equal(await page.textContent('[data-testid=compare-status]'), 'Setting 3: Top-p must be between 0 and 1, not 2.');
    await page.fill('[data-testid=compare-p-3]', '0.9');
    // The section by keyboard: the summary toggles it, the fields are labelled.
    await page.focus('[data-testid=compare-settings] summary');
    await page.keyboard.press('Enter');
    assert.equal(await page.$eval('[data-testid=compare-settings]', (d) => d.open), false);
    await page.keyboard.press('Enter');
    assert.equal(await page.$eval('[data-testid=compare-settings]', (d) => d.open), true);
    assert.equal(await page.getAttribute('[data-testid=compare-t-1]', 'id'), 'compare-t-1');
    assert.equal(await page.textContent('label[for=compare-t-1] .name'), 'Temperature');
    await page.click('[data-testid=compare-write]');
    assert.equal(await waitCompare(page, ['done', 'error']), 'done');
    await page.addScriptTag({ path: AXE });
    const found = await page.evaluate(async () => {
      const r = await window.axe.run(document.querySelector('[data-testid=compare-settings]'), { resultTypes: ['violations'] });
      return r.violations.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).slice(0, 4).join(', ')}`);
    });
    assert.deepEqual(found, [], 'axe-core violations in the open section');
    await assertClean(page, log, site.server.url);
    await page.close();
  });

  test('a Q8_0 model is unpacked for the batch: each column is the CLI run alone on its f32 copy', async () => {
    // stories260K as llama2.c's export.py writes v2 (Q8_0), and its f32 copy by `tinylm convert`
    // (the engine's own unpacking, which the worker does before the batch).
    const v2 = sharedPath('models/stories260K.v2-q80.bin');
    const work = mkdtempSync(join(tmpdir(), 'tinylm-compare-'));
    const f32 = join(work, 'v2-f32.bin');
    try {
      tinylm(['convert', v2, '--to', 'llama2c', '--type', 'f32', '-o', f32]);
      const { page, log } = await openCompare(site, 120, async (p) => {
        await p.setInputFiles('[data-testid=files]', [v2, bundledPath('tok512.bin')]);
        await p.waitForFunction(() => /Q8_0/.test(document.querySelector('[data-testid=model]')?.textContent ?? ''), null, { timeout: 60_000 });
        assert.equal(await waitForState(p, ['ready', 'error']), 'ready', await statusText(p));
      });
      assert.match(await page.textContent('#compare-hint'), /stored in fewer bits \(Q8_0, Q4\) is unpacked to 32-bit numbers/);
      const rows = [
        { temperature: 0, topp: 0.9, seed: 42 },
        { temperature: 0.8, topp: 0.9, seed: 7 },
        { temperature: 1, topp: 0.95, seed: 99 },
      ];
      await setRows(page, rows);
      await page.click('[data-testid=compare-write]');
      assert.equal(await waitCompare(page, ['done', 'error']), 'done', await page.textContent('[data-testid=compare-status]'));
      const unpacked = rows.map((r) => cliStory({ ...r, steps: 120 }, f32));
      for (const [i, expected] of unpacked.entries()) {
        assert.equal(await page.textContent(`[data-testid=compare-output-${i + 1}]`), expected, `column ${i + 1}`);
      }
      // They are the Q8_0 model's stories: the bundled f32 original writes others.
      const original = rows.map((r) => cliStory({ ...r, steps: 120 }));
      assert.ok(original.some((t, i) => t !== unpacked[i]), 'the Q8_0 copy and the f32 original write the same stories');
      await assertClean(page, log, site.server.url);
      await page.close();
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  test('with an adapter in use it refuses in words; one click turns the adapter off and it writes', async () => {
    const { page, log } = await openCompare(site, 60, async (p) => {
      // The PEFT fixture (q,v rank 4 on stories260K) uploaded and used, as a student would.
      await p.click('[data-testid=tab-train]');
      const before = await p.locator('[data-testid=adapter-row]').count();
      const fixture = sharedPath('reference/stories260K_lora_qv_r4/adapter_final');
      await p.setInputFiles('[data-testid=adapter-upload]', [join(fixture, 'adapter_config.json'), join(fixture, 'adapter_model.safetensors')]);
      await p.waitForFunction((n) => document.querySelectorAll('[data-testid=adapter-row]').length > n, before, { timeout: 30_000 });
      await p.locator('[data-testid=adapter-row]').last().locator('[data-testid=adapter-use]').click();
      await p.click('[data-testid=tab-generate]');
      await p.waitForSelector('[data-testid=adapter-badge-story]', { timeout: 60_000 });
    });
    await page.click('[data-testid=compare-write]');
    assert.equal(await waitCompare(page, ['done', 'error']), 'error');
    assert.equal(await page.textContent('[data-testid=compare-status]'),
      'Compare settings writes with the model alone: stop using the adapter (Train view) to compare settings.');
    assert.equal(await page.locator('[data-testid^=compare-column-]').count(), 0, 'nothing written with the adapter');
    await page.click('[data-testid=adapter-off-story]');
    await page.waitForFunction(() => !document.querySelector('[data-testid=adapter-badge-story]'), null, { timeout: 60_000 });
    await page.click('[data-testid=compare-write]');
    assert.equal(await waitCompare(page, ['done', 'error']), 'done', await page.textContent('[data-testid=compare-status]'));
    assert.equal(await page.textContent('[data-testid=compare-output-1]'), cliStory({ temperature: 0, topp: 0.9, seed: 42, steps: 60 }));
    await assertClean(page, log, site.server.url);
    await page.close();
  });
});
