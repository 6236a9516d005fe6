// GPU workgroup tuning in the browser (WebGPU on Chromium's SwiftShader): bench.html?tune=1
// measures every candidate shape in the engine worker, shows the table, keeps the choice in
// OPFS; a later load of the same model shape on the same adapter (a fresh worker, no tune)
// decodes with the kept shapes.
//
// On SwiftShader the tuning is cut after the default shape, so the kept shapes are the
// defaults, which a broken save or load would also give. So the test checks the kept file
// itself, then writes other (valid, non-default) shapes into it, and the later load must
// report those.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cspViolations, openApp, useSite } from './helpers.mjs';

const done = (page) =>
  page.waitForFunction(() => ['done', 'error'].includes(document.getElementById('status').dataset.state), null, { timeout: 300_000 });

/** gpu::MATVEC_CANDIDATES and ATTENTION_CANDIDATES (engine/src/gpu/workgroups.rs). */
const MATVEC = [[16, 16], [8, 32], [32, 8], [64, 4], [16, 8], [8, 16], [32, 4], [16, 4]].map(([x, y]) => ({ x, y }));
const ATTENTION = [64, 32, 128, 256];

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

/** The files of the worker's tuning folder in OPFS (app/src/worker/tuning.rs): [{ name, text }]. */
function storedTunings(page) {
  return page.evaluate(async () => {
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('tinylm-gpu-tuning', { create: true });
    const out = [];
    for await (const [name, handle] of dir.entries()) out.push({ name, text: await (await handle.getFile()).text() });
    return out;
  });
}

function writeStored(page, name, text) {
  return page.evaluate(async ([n, t]) => {
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('tinylm-gpu-tuning');
    const w = await (await dir.getFileHandle(n)).createWritable();
    await w.write(t);
    await w.close();
  }, [name, text]);
}

const same = (a, b) => a.x === b.x && a.y === b.y;

describe('GPU tuning', () => {
  const site = useSite({ webgpu: true });

  test('the bench page tunes on WebGPU and keeps the result; a later load reports a stored tuning with other shapes', async () => {
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
    // Cut exactly when the tuner's clock passed the budget (the budget logic itself is tested
    // on a virtual clock in engine/tests/suite/gpu_tune.rs; no wall-clock limit here).
    assert.equal(t.cut, t.matvec.some((m) => m.samples < 5) || t.attention.some((a) => a.samples < 5), 'cut iff a round is missing');
    if (t.cut) assert.ok(t.elapsed_ms >= t.budget_ms, `cut at ${t.elapsed_ms} of ${t.budget_ms} ms`);
    // Measured in order, the default first: the measured candidates are a prefix of the list.
    // (How many depends on this machine: a cold SwiftShader may spend the 4 s on compiling.)
    const measured = t.matvec.map((m) => m.samples > 0);
    assert.deepEqual(measured, measured.map((_, i) => i < measured.filter(Boolean).length), JSON.stringify(measured));
    assert.deepEqual(first.r.workgroups, t.workgroups, 'this run decodes with the chosen shapes');
    assert.equal(await first.page.locator('#tuning table tbody tr').count(), 12);

    // The tuning is kept: one file for (this adapter, this model shape), holding this tuning.
    const files = await storedTunings(first.page);
    assert.equal(files.length, 1, JSON.stringify(files.map((f) => f.name)));
    const stored = JSON.parse(files[0].text);
    // The model's f32 settings reach the page widened to f64 (1e-5 → 9.99999974e-6) and the file
    // as their shortest f32 text (1e-5): compare those as f32.
    const asF32 = (x) => ({ ...x, config: { ...x.config, norm_eps: Math.fround(x.config.norm_eps), rope_theta: Math.fround(x.config.rope_theta) } });
    assert.deepEqual(asF32(stored.tuning), asF32(t), 'the file holds the measured tuning');
    assert.ok(stored.adapter.length > 0, 'and the adapter it was measured on');

    // Shapes other than the ones kept (valid on any WebGPU device: at most 256 lanes), written
    // into the kept file: the next load must decode with them and say so.
    // Each differs from the kept one whichever the tuning chose (a faster machine measures more
    // candidates and may keep any of them), and layers ≠ classifier, so a swap would show.
    const layers = MATVEC.find((s) => !same(s, t.workgroups.layers) && s.x * s.y <= 128);
    const other = {
      ...t.workgroups,
      layers,
      classifier: MATVEC.find((s) => !same(s, t.workgroups.classifier) && !same(s, layers) && s.x >= 32),
      attention: ATTENTION.find((a) => a !== t.workgroups.attention),
    };
    for (const k of ['layers', 'classifier', 'attention']) assert.ok(other[k], `another ${k} shape than ${JSON.stringify(t.workgroups[k])}`);
    assert.ok(!same(other.layers, t.workgroups.layers) && !same(other.classifier, t.workgroups.classifier) && other.attention !== t.workgroups.attention);
    await writeStored(first.page, files[0].name, JSON.stringify({ ...stored, tuning: { ...t, workgroups: other } }));
    await first.page.close();

    const again = await bench(site, false);
    assert.equal(again.r.tuning, null, 'no tuning this time');
    assert.deepEqual(again.r.workgroups, other, 'the stored shapes are used');
    assert.equal(again.r.kind, 'webgpu');
    assert.ok(again.r.decode_tok_s > 0, 'and decodes with them');
    await again.page.close();
  });
});
