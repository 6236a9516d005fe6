// The benchmark page (bench.html): it starts the app's engine worker, times a few greedy tokens
// of stories260K on the CPU (wasm) and shows a table and a JSON block with the fields that
// tests/e2e/bench.mjs and the README rely on. Quick: 8 tokens, 2 runs.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cspViolations, openApp, useSite } from './helpers.mjs';

describe('benchmark page', () => {
  const site = useSite();

  test('times stories260K on the CPU and reports JSON', async () => {
    const url = `${site.server.url}bench.html?models=stories260K&backends=cpu&steps=8&runs=2`;
    const { page, log } = await openApp(site.browser.context, url);
    await page.waitForFunction(() => ['done', 'error'].includes(document.getElementById('status').dataset.state), null, { timeout: 120_000 });
    const state = await page.getAttribute('#status', 'data-state');
    assert.equal(state, 'done', await page.textContent('#status'));
    const out = JSON.parse(await page.textContent('#json'));
    assert.equal(out.page, 'bench');
    assert.equal(out.runs, 2);
    assert.ok(out.machine.user_agent.includes('Chrome'), out.machine.user_agent);
    assert.ok(out.machine.hardware_concurrency >= 1);
    assert.deepEqual(out.errors, []);
    assert.equal(out.results.length, 1);
    const r = out.results[0];
    assert.equal(r.model, 'stories260K');
    assert.equal(r.requested, 'cpu');
    assert.equal(r.kind, 'cpu');
    // The worker's wasm CPU path uses the simd128 kernels (.cargo/config.toml, +simd128).
    assert.equal(r.backend, 'cpu (simd128)');
    assert.equal(r.steps, 8);
    assert.equal(r.runs.length, 2);
    for (const x of r.runs) assert.ok(Number.isFinite(x) && x > 0, `run ${x}`);
    const sorted = [...r.runs].sort((a, b) => a - b);
    assert.equal(r.decode_tok_s, (sorted[0] + sorted[1]) / 2, 'median of the runs');
    assert.ok(r.model_ms >= 0 && r.start_ms >= 0);
    // The table shows the same row.
    assert.equal(await page.locator('#table tbody tr').count(), 1);
    assert.match(await page.textContent('#table tbody'), /stories260K.*cpu \(simd128\)/s);
    assert.deepEqual(log.errors, [], 'console errors');
    assert.deepEqual(await cspViolations(page), [], 'CSP violations');
    await page.close();
  });

  test('an unknown shape is reported as an error, not a hang', async () => {
    const url = `${site.server.url}bench.html?models=s999m&backends=cpu&steps=4&runs=1`;
    const { page } = await openApp(site.browser.context, url);
    await page.waitForFunction(() => ['done', 'error'].includes(document.getElementById('status').dataset.state), null, { timeout: 60_000 });
    assert.equal(await page.getAttribute('#status', 'data-state'), 'error');
    const out = JSON.parse(await page.textContent('#json'));
    assert.equal(out.results.length, 0);
    assert.equal(out.errors.length, 1);
    assert.match(out.errors[0].message, /s999m/);
    await page.close();
  });
});
