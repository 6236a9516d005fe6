// GPU workgroup tuning in the browser (WebGPU on Chromium's SwiftShader): bench.html?tune=1
// measures every candidate shape in the engine worker, shows the table, keeps the choice in
// OPFS; a later load of the same model shape on the same adapter (a fresh worker, no tune)
// decodes with the kept shapes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cspViolations, openApp, useSite } from './helpers.mjs';

const done = (page) =>
  page.waitForFunction(() => ['done', 'error'].includes(document.getElementById('status').dataset.state), null, { timeout: 300_000 });

async function bench(site, tune) {
  const url = `${site.server.url}bench.html?models=stories260K&backends=webgpu&steps=16&runs=1&tune=${tune ? 1 : 0}`;
  const { page, log } = await openApp(site.browser.context, url);
  await done(page);
  assert.equal(await page.getAttribute('#status', 'data-state'), 'done', await page.textContent('#status'));
  const out = JSON.parse(await page.textContent('#json'));
  assert.deepEqual(out.errors, []);
  assert.deepEqual(log.errors, [], 'console errors');
  assert.deepEqual(await cspViolations(page), [], 'CSP violations');
  return { page, r: out.results[0] };
}

describe('GPU tuning', () => {
  const site = useSite({ webgpu: true });

  test('the bench page tunes on WebGPU, and a later load reuses the kept shapes', async () => {
    const first = await bench(site, true);
    const t = first.r.tuning;
    assert.equal(first.r.kind, 'webgpu');
    assert.ok(t, 'a tuning was measured');
    assert.equal(t.matvec.length, 8, 'one entry per matvec candidate');
    assert.equal(t.attention.length, 4);
    assert.equal(t.config.vocab_size, 512);
    console.log(`SwiftShader tuning: ${t.elapsed_ms} ms (budget ${t.budget_ms}, cut ${t.cut}), chosen`, JSON.stringify(t.workgroups));
    for (const m of t.matvec) console.log(`  ${m.shape.x}x${m.shape.y}: classifier ${m.classifier_us} µs, layer ${m.layer_us} µs (${m.samples})`);
    for (const a of t.attention) console.log(`  attention ${a.lanes}: ${a.us} µs (${a.samples})`);
    // The budget is checked between steps; one step (compiling and warming up a candidate on
    // SwiftShader takes seconds) may overrun it.
    assert.ok(t.elapsed_ms <= 3 * t.budget_ms, `bounded: ${t.elapsed_ms} ms`);
    assert.ok(t.cut || t.matvec.every((m) => m.samples > 0), 'measured all, or says it was cut');
    assert.ok(t.matvec[0].samples >= 1, 'the default shape is measured first');
    assert.deepEqual(first.r.workgroups, t.workgroups, 'this run decodes with the chosen shapes');
    assert.equal(await first.page.locator('#tuning table tbody tr').count(), 12);
    await first.page.close();

    const again = await bench(site, false);
    assert.equal(again.r.tuning, null, 'no tuning this time');
    assert.deepEqual(again.r.workgroups, t.workgroups, 'the kept shapes are used');
    await again.page.close();
  });
});
