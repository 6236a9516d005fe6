// The app with WebGPU: headless Chromium with --enable-unsafe-webgpu offers a SwiftShader
// (software) adapter, which the engine worker uses through wgpu when WebGPU is chosen (Auto never
// takes a software adapter: see ux.test.mjs). The greedy story must be run.c's; the backend
// selector switches between WebGPU and the CPU.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  assertClean, generate, openApp, readShared, screenshot, statusText, useSite, waitForState,
} from './helpers.mjs';

const greedy256 = readShared('reference/stories260K_greedy_256.txt').replace(/\n$/, '');
// SwiftShader runs stories260K at some 10-40 tokens/s on two busy cores.
const SLOW = 240_000;

describe('TinyLM Lab page (WebGPU path, SwiftShader)', () => {
  const site = useSite({ webgpu: true });

  async function backend(page) {
    return {
      kind: await page.getAttribute('[data-testid=backend]', 'data-kind'),
      name: await page.textContent('[data-testid=backend]'),
      reason: await page.textContent('[data-testid=backend-reason]'),
    };
  }

  test('a link choosing WebGPU starts it, and the greedy story (t=0, 256 steps) equals run.c', async () => {
    const { page, log } = await openApp(site.browser.context, `${site.server.url}#backend=webgpu`);
    assert.equal(await waitForState(page, ['ready', 'error'], 60_000), 'ready', await statusText(page));
    const b = await backend(page);
    assert.equal(b.kind, 'webgpu');
    assert.match(b.name, /^WebGPU — .*swiftshader/i);
    assert.equal(b.reason, 'You chose WebGPU: the graphics processor writes the story.');
    assert.match(await page.textContent('[data-testid=backend-start]'), /^Started in \d+\.\d s\.$/);
    await screenshot(page, 'idle-webgpu');
    await page.fill('[data-testid=temperature]', '0');
    await page.fill('[data-testid=steps]', '256');
    await page.click('[data-testid=generate]');
    await page.waitForFunction(() => document.querySelector('[data-testid=output]').textContent.length > 20, null, { timeout: SLOW });
    await screenshot(page, 'generating-webgpu');
    assert.equal(await waitForState(page, ['done', 'error'], SLOW), 'done', await statusText(page));
    assert.equal(await page.textContent('[data-testid=output]'), greedy256);
    assert.match(await statusText(page), /^Done: 256 tokens in [\d.]+ s: the first after [\d.]+ s, then [\d.]+ tok\/s$/);
    assert.equal(await page.textContent('[data-testid=figure-backend]'), 'WebGPU');
    assert.match(await page.textContent('[data-testid=ttft]'), /^\d+ ms$/);
    await screenshot(page, 'done-webgpu');
    await assertClean(page, log, site.server.url);
    await page.close();
  });

  test('the selector switches to the CPU and back, with the same greedy story', async () => {
    const { page, log } = await openApp(site.browser.context, site.server.url);
    await waitForState(page, ['ready'], 60_000);
    await page.selectOption('[data-testid=backend-choice]', 'cpu');
    assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
    let b = await backend(page);
    assert.equal(b.kind, 'cpu');
    assert.equal(b.reason, 'You chose the CPU.');
    const cpu = await generate(page, { temperature: 0, topp: 0.9, seed: 1, steps: 48 });
    assert.equal(cpu.state, 'done', cpu.status);
    assert.ok(greedy256.startsWith(cpu.text) && cpu.text.length > 120, cpu.text);
    await page.selectOption('[data-testid=backend-choice]', 'webgpu');
    assert.equal(await waitForState(page, ['ready', 'error'], 60_000), 'ready');
    b = await backend(page);
    assert.equal(b.kind, 'webgpu');
    assert.equal(b.reason, 'You chose WebGPU: the graphics processor writes the story.');
    await page.click('[data-testid=generate]');
    assert.equal(await waitForState(page, ['done', 'error'], SLOW), 'done');
    assert.equal(await page.textContent('[data-testid=output]'), cpu.text);
    // The link keeps the choice.
    await page.click('[data-testid=copy-link]');
    assert.match(await page.inputValue('[data-testid=link]'), /&backend=webgpu$/);
    await assertClean(page, log, site.server.url);
    await page.close();
  });

  test('Esc stops a story on the GPU', async () => {
    const { page, log } = await openApp(site.browser.context, `${site.server.url}#backend=webgpu`);
    await waitForState(page, ['ready'], 60_000);
    assert.equal((await backend(page)).kind, 'webgpu', 'the story runs on WebGPU');
    await page.fill('[data-testid=steps]', '512');
    await page.click('[data-testid=generate]');
    await page.waitForFunction(() => document.querySelector('[data-testid=output]').textContent.length > 10, null, { timeout: SLOW });
    await page.keyboard.press('Escape');
    assert.equal(await waitForState(page, ['done', 'error'], SLOW), 'done');
    const status = await statusText(page);
    const tokens = Number(status.match(/^Stopped: (\d+) tokens/)?.[1]);
    assert.ok(tokens > 0 && tokens < 512, status);
    assert.equal(await page.textContent('[data-testid=figure-backend]'), 'WebGPU', 'the stopped run was the GPU’s');
    await assertClean(page, log, site.server.url);
    await page.close();
  });

  test('a seeded story on WebGPU is run.c’s, byte for byte (top-p, t 1, seed 5, 256 steps)', async () => {
    // shared/data/reference/sampling_run_c: run.c's stdout (a trailing newline after the story).
    const want = readShared('reference/sampling_run_c/topp_s5.txt').replace(/\n$/, '');
    const cases = readShared('reference/sampling_run_c/cases.psv');
    assert.match(cases, /^topp_s5\|1\.0\|0\.9\|5\|256\|$/m);
    const { page, log } = await openApp(site.browser.context, `${site.server.url}#backend=webgpu`);
    await waitForState(page, ['ready'], 60_000);
    assert.equal((await backend(page)).kind, 'webgpu');
    const r = await generate(page, { temperature: 1, topp: 0.9, seed: 5, steps: 256, timeout: SLOW });
    assert.equal(r.state, 'done', r.status);
    assert.equal(await page.textContent('[data-testid=figure-backend]'), 'WebGPU');
    assert.equal(r.text, want);
    await assertClean(page, log, site.server.url);
    await page.close();
  });
});
