// Models people download (issue 24): GGUF files (F32, Q8_0) picked, a Q4_K_M-style one dropped,
// a sharded BF16 Hugging Face folder dropped whole (a real directory drop, through Chromium's
// DevTools drag events: the page walks it with webkitGetAsEntry and reads only the model's
// files, not its README or its onnx/ subfolder), each with its own tokenizer. The page says what it
// read, writes transformers' greedy tokens and shows transformers' logits (the committed
// reference of engine/tests/fixtures/formats, made by make_fixtures.py) on the CPU and on
// WebGPU (SwiftShader); the weights it holds are what `tinylm info` reports (Q8_0, Q4_K and
// Q6_K stay quantized on the CPU). Bad input is refused in words and the page keeps working.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  REPO, assertClean, generate, launchBrowser, openApp, readSafetensors, startServer, statusText, tinylm, useSite, waitForState,
} from './helpers.mjs';

const FX = join(REPO, 'engine/tests/fixtures/formats');
// The prompt the reference encoded (reference/*.safetensors `tokens`, special tokens added).
const PROMPT = 'Once upon a time, there was a little robot who';
const SLOW = 120_000;

const folder = (dir) => readdirSync(join(FX, 'hf', dir)).sort().map((n) => join(FX, 'hf', dir, n));

// The BF16 folder as a Hugging Face snapshot holds it: with a README, a generation config and
// an onnx/ subfolder whose config.json and weights are garbage (reading them would fail).
const SNAPSHOTS = mkdtempSync(join(tmpdir(), 'tinylm-snapshots-'));
after(() => rmSync(SNAPSHOTS, { recursive: true, force: true }));
const SNAPSHOT = join(SNAPSHOTS, 'mha_tied_bf16');
cpSync(join(FX, 'hf/mha_tied_bf16'), SNAPSHOT, { recursive: true });
writeFileSync(join(SNAPSHOT, 'README.md'), '# a model card\n');
writeFileSync(join(SNAPSHOT, 'generation_config.json'), '{"do_sample": false}');
mkdirSync(join(SNAPSHOT, 'onnx'));
writeFileSync(join(SNAPSHOT, 'onnx/config.json'), 'not json');
writeFileSync(join(SNAPSHOT, 'onnx/model.safetensors'), 'not safetensors');

const CASES = {
  f32: { files: [join(FX, 'gguf/gqa_untied.f32.gguf')], ref: 'gqa_untied.f32.gguf', name: 'gqa_untied.f32',
    format: /^GGUF v3, F32 ×\d+$/, held: /\(f32\)$/ },
  q8: { files: [join(FX, 'gguf/quant.q8_0.gguf')], ref: 'quant.q8_0.gguf', name: 'quant.q8_0', cli: join(FX, 'gguf/quant.q8_0.gguf'),
    format: /^GGUF v3, Q8_0 ×\d+, F32 ×\d+$/, held: /\(kept as Q8_0: \d+% of f32\)$/,
    // On WebGPU the Q8_0 weights stay Q8_0 (the GPU's bytes: matrices, norms, RoPE table).
    gpuHeld: / Its Q8_0 weights stay Q8_0 on the graphics processor \((\d+) KB\)\.$/, gpuMost: 0.3 },
  q4k: { files: [join(FX, 'gguf/quant.q4_k_m.gguf')], ref: 'quant.q4_k_m.gguf', name: 'quant.q4_k_m', drop: 'files',
    format: /Q4_K ×\d+, Q6_K ×\d+/, held: /\(kept as Q4_K and Q6_K: \d+% of f32\)$/,
    // On WebGPU in the file's own blocks (4.5 and 6.6 bits a weight; norms and RoPE table in f32).
    gpuHeld: / Its Q4_K and Q6_K weights stay Q4_K and Q6_K on the graphics processor \((\d+) KB\)\.$/,
    gpuMost: 0.2 },
  // Named for its folder, as dropped whole (picked files come without a folder).
  hf: { files: [SNAPSHOT], ref: 'mha_tied_bf16', name: 'mha_tied_bf16', drop: 'folder', cli: join(FX, 'hf/mha_tied_bf16'),
    format: /^Hugging Face sharded safetensors, BF16 ×\d+/, held: /\(kept as BF16: 5\d% of f32\)$/,
    // On WebGPU as read, two values to a word.
    gpuHeld: / Its BF16 weights stay BF16 on the graphics processor \((\d+) KB\)\.$/, gpuMost: 0.55 },
};

/**
 * Drops `paths` (files or folders of this machine) on the drop zone as the desktop does: the
 * DevTools protocol's drag events, so the page gets real entries (a folder's included).
 */
async function dropPaths(page, paths) {
  const zone = page.locator('[data-testid=drop]');
  await zone.scrollIntoViewIfNeeded();
  const box = await zone.boundingBox();
  const at = { x: box.x + box.width / 2, y: box.y + box.height / 2 };
  const cdp = await page.context().newCDPSession(page);
  const data = { items: [], files: paths, dragOperationsMask: 1 };
  for (const type of ['dragEnter', 'dragOver', 'drop']) await cdp.send('Input.dispatchDragEvent', { type, ...at, data });
  await cdp.detach();
}

/**
 * Picks `files` with the file input, drops them on the drop zone (`'files'`: a DataTransfer
 * built in the page with their bytes), or drops the folder `files[0]` (`'folder'`).
 */
async function give(page, files, drop = null) {
  if (!drop) {
    await page.setInputFiles('[data-testid=files]', files);
  } else if (drop === 'folder') {
    await dropPaths(page, files);
  } else {
    const payload = files.map((f) => ({ name: f.split('/').pop(), b64: readFileSync(f).toString('base64') }));
    await page.evaluate((list) => {
      const dt = new DataTransfer();
      for (const { name, b64 } of list) dt.items.add(new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], name));
      document.querySelector('[data-testid=drop]').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, payload);
  }
  return waitForState(page, ['ready', 'error'], SLOW);
}

async function exportJson(page) {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=export-json]')]);
  return JSON.parse(readFileSync(await dl.path(), 'utf8'));
}

/**
 * Loads one case, checks what the page says it read and holds, writes greedily and inspects the
 * story: the prompt's tokens and the 8 greedy ones are transformers', and the listed next-token
 * logits at the prompt's last token are transformers' last row. Returns the worst |Δ| / scale.
 */
async function check(page, c, backend) {
  assert.equal(await give(page, c.files, c.drop), 'ready', await statusText(page));
  assert.equal(await page.getAttribute('[data-testid=backend]', 'data-kind'), backend);
  if (backend === 'webgpu') {
    const reason = await page.textContent('[data-testid=backend-reason]');
    const held = reason.match(c.gpuHeld);
    assert.ok(held, reason);
    console.log(`# ${c.name} on WebGPU: ${reason}`);
    // Kept quantized: under `gpuMost` of the f32 weights (4 bytes a parameter).
    if (held[1]) assert.ok(Number(held[1]) * 1000 < c.gpuMost * 4 * Number(await page.getAttribute('[data-testid=facts]', 'data-params')), reason);
  }
  const status = await statusText(page);
  assert.ok(status.startsWith(`Ready: ${c.name} (`), status);
  const format = await page.textContent('[data-testid=fact-format] dd');
  assert.match(format, c.format);
  assert.ok(status.includes(`(${format})`), status);
  assert.match(await page.textContent('[data-testid=fact-weights-in-memory] dd'), c.held);
  if (backend === 'cpu') {
    // The bytes the engine holds for it, as the CLI's engine reports them (Q8_0: quantized).
    const info = JSON.parse(tinylm(['info', c.cli ?? c.files[0], '--json']).toString());
    assert.equal(Number(await page.getAttribute('[data-testid=facts]', 'data-weight-bytes')), info.weight_bytes, 'weights held');
  }

  const ref = readSafetensors(join(FX, 'reference', `${c.ref}.safetensors`));
  const [T, V] = ref.logits.shape;
  const run = await generate(page, { prompt: PROMPT, temperature: 0, topp: 0.9, seed: 1, steps: T + ref.greedy.shape[0] });
  assert.equal(run.state, 'done', run.status);
  await page.click('[data-testid=tab-inspect]');
  await page.waitForFunction(() => ['ready', 'error'].includes(document.querySelector('[data-testid=inspect-status]')?.dataset.state),
    null, { timeout: SLOW });
  assert.equal(await page.getAttribute('[data-testid=inspect-status]', 'data-state'), 'ready',
    await page.textContent('[data-testid=inspect-status]'));
  const json = await exportJson(page);
  assert.ok(json.backend.startsWith(backend === 'cpu' ? 'cpu' : 'gpu'), `inspected on ${json.backend}`);
  assert.deepEqual(json.tokens.slice(0, T), Array.from(ref.tokens.data), 'the prompt encoded as the tokenizers library does');
  assert.equal(json.prompt_tokens, T);
  // The greedy tokens; the story stops early only at the model's end-of-text token.
  const greedy = json.tokens.slice(T, T + ref.greedy.shape[0]);
  assert.ok(greedy.length > 0);
  assert.deepEqual(greedy, Array.from(ref.greedy.data).slice(0, greedy.length), 'greedy tokens');
  const next = json.next_token;
  assert.equal(next.position, T - 1);
  const row = ref.logits.data.subarray((T - 1) * V, T * V);
  const scale = Math.max(1, ...Array.from(row, Math.abs));
  assert.equal(next.top[0].id, row.indexOf(Math.max(...row)), 'argmax');
  let worst = 0;
  for (const t of next.top) worst = Math.max(worst, Math.abs(t.logit - row[t.id]));
  // The probabilities shown are the softmax of these logits (temperature 1 at first).
  const z = Array.from(row).reduce((s, l) => s + Math.exp(l - Math.max(...row)), 0);
  for (const t of next.top.slice(0, 5)) assert.ok(Math.abs(t.prob - Math.exp(row[t.id] - Math.max(...row)) / z) < 1e-4);
  if (backend === 'cpu') {
    // The view's numbers at the prompt's last position are `tinylm inspect`'s on the same file
    // (folder) and tokens: the next-token candidates and each layer's logit lens.
    const cli = JSON.parse(tinylm(['inspect', c.cli ?? c.files[0], '--ids', json.tokens.join(','), '--position', `${T - 1}`,
      '-t', '1', '--json']).toString());
    assert.deepEqual(cli.tokens, json.tokens);
    assert.equal(cli.next_token.position, T - 1);
    assert.ok(cli.next_token.top.length >= 5);
    for (const want of cli.next_token.top) {
      // By id: two candidates a hair apart may swap places between the two builds.
      const t = next.top.find((x) => x.id === want.id);
      assert.ok(t && Math.abs(t.logit - want.logit) <= 1e-5 * scale && Math.abs(t.prob - want.prob) <= 1e-5,
        `candidate ${want.id}: ${JSON.stringify([t, want])}`);
    }
    cli.logit_lens.forEach((layer, l) => {
      const [mine, want] = [json.logit_lens[l][T - 1], layer[T - 1]];
      assert.ok(mine && mine.id === want.id && Math.abs(mine.prob - want.prob) <= 1e-5, `lens, layer ${l}: ${JSON.stringify([mine, want])}`);
    });
  }
  await page.click('[data-testid=tab-generate]');
  return { worst, scale, greedy: greedy.length };
}

describe('GGUF files and Hugging Face folders on the CPU', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'tinylm-formats-'));
  const site = useSite();
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test('F32, Q8_0 and Q4_K_M GGUF files and a sharded BF16 folder: what was read, greedy tokens and logits', async () => {
    const { page, log } = await openApp(site.browser.context, site.server.url);
    assert.equal(await waitForState(page, ['ready', 'error'], SLOW), 'ready');
    for (const [key, c] of Object.entries(CASES)) {
      const r = await check(page, c, 'cpu');
      // Measured (wasm, CPU): |Δ| 4.8e-6, 5.3e-6, 1.2e-5, 8.1e-6 for f32, q8, q4k, hf, i.e.
      // 0.9e-6 to 1.5e-6 · max(1, max|logit|) (5.4 to 8.0): the bound is 7–11× that.
      console.log(`# cpu ${key}: ${r.greedy} greedy tokens, logits max |Δ| ${r.worst.toExponential(2)} (scale ${r.scale.toFixed(2)})`);
      assert.ok(r.worst <= 1e-5 * r.scale, `${key}: logits differ from transformers by ${r.worst}`);
    }
    await assertClean(page, log, site.server.url);
    await page.close();
  });

  test('a dropped folder is stored as one item, carried by a classroom bundle to a fresh browser, and writes the same story there', async () => {
    const { page, log } = await openApp(site.browser.context, site.server.url);
    assert.equal(await waitForState(page, ['ready', 'error'], SLOW), 'ready');
    assert.equal(await give(page, [SNAPSHOT], 'folder'), 'ready', await statusText(page));
    const steps = 24;
    const cli = tinylm(['generate', CASES.hf.cli, '-t', '0', '-n', `${steps}`, '-i', PROMPT]).toString();
    const mine = await generate(page, { prompt: PROMPT, temperature: 0, topp: 0.9, seed: 1, steps });
    assert.equal(mine.state, 'done', mine.status);
    assert.ok(mine.text.length > PROMPT.length && cli.startsWith(mine.text.trimEnd()), `page ${mine.text} vs CLI ${cli}`);
    await page.click('[data-testid=tab-storage]');
    const stored = '[data-testid=stored-item][data-name=mha_tied_bf16]';
    await page.waitForSelector(stored, { timeout: SLOW });
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=bundle-save]')]);
    const bundlePath = join(tmp, 'bundle.zip');
    await dl.saveAs(bundlePath);
    await assertClean(page, log, site.server.url);
    await page.close();
    // Read with Python's zipfile (not the page's reader): the folder's model files, byte for byte,
    // and not its README, generation config or onnx/ subfolder.
    const z = JSON.parse(execFileSync('python3', ['-c', `import zipfile, json, hashlib, sys
z = zipfile.ZipFile(sys.argv[1])
index = json.loads(z.read("tinylm-bundle.json"))
item = [i for i in index["items"] if i["name"] == "mha_tied_bf16"]
n = index["items"].index(item[0])
files = {name.split("/", 2)[2]: hashlib.sha256(z.read(name)).hexdigest() for name in z.namelist() if name.startswith(f"items/{n}/")}
print(json.dumps({"count": len(item), "kind": item[0]["kind"], "files": files}))`, bundlePath]).toString());
    assert.equal(z.count, 1);
    assert.equal(z.kind, 'model');
    // Each under the folder's name, as dropped.
    const want = Object.fromEntries(folder('mha_tied_bf16').map((f) =>
      [`mha_tied_bf16/${f.split('/').pop()}`, createHash('sha256').update(readFileSync(f)).digest('hex')]));
    assert.deepEqual(Object.keys(z.files).sort(), Object.keys(want).sort());
    assert.deepEqual(z.files, want);

    // Another computer: a fresh profile adds the bundle, uses the folder model and writes the same story.
    const other = await launchBrowser();
    try {
      const { page: p2, log: log2 } = await openApp(other.context, site.server.url);
      assert.equal(await waitForState(p2, ['ready', 'error'], SLOW), 'ready');
      await p2.click('[data-testid=tab-storage]');
      await p2.setInputFiles('[data-testid=bundle-file]', bundlePath);
      await p2.waitForFunction(() => /^Added \d+ items? from the bundle: .*“mha_tied_bf16”/.test(
        document.querySelector('[data-testid=storage-note]')?.textContent ?? ''), null, { timeout: SLOW });
      await p2.click(`${stored} [data-testid=stored-use]`);
      await p2.click('[data-testid=tab-generate]');
      await p2.waitForFunction(() => /^Ready: mha_tied_bf16 \(/.test(document.querySelector('[data-testid=status]')?.textContent ?? ''),
        null, { timeout: SLOW });
      const theirs = await generate(p2, { prompt: PROMPT, temperature: 0, topp: 0.9, seed: 1, steps });
      assert.equal(theirs.state, 'done', theirs.status);
      assert.equal(theirs.text, mine.text);
      await assertClean(p2, log2, site.server.url);
    } finally {
      await other.close();
    }
  });

  test('a Hugging Face folder picked as separate files is named after its model (config.json’s _name_or_path), here and in Storage', async () => {
    const { page, log } = await openApp(site.browser.context, site.server.url);
    assert.equal(await waitForState(page, ['ready', 'error'], SLOW), 'ready');
    // The folder as transformers' save_pretrained writes it: its config names the model.
    const named = join(tmp, 'named');
    mkdirSync(named);
    for (const f of folder('gqa_untied')) {
      const name = f.split('/').pop();
      const bytes = readFileSync(f);
      writeFileSync(join(named, name), name === 'config.json'
        ? JSON.stringify({ _name_or_path: 'example-org/Tiny-GQA-7M', ...JSON.parse(bytes) }, null, 2) : bytes);
    }
    // Picked (the browser gives no folder name), not dropped as a folder.
    assert.equal(await give(page, readdirSync(named).map((n) => join(named, n))), 'ready', await statusText(page));
    assert.match(await statusText(page), /^Ready: Tiny-GQA-7M \(Hugging Face safetensors/);
    const options = await page.locator('[data-testid=model-select] option').allTextContents();
    assert.match(options[1], /^Tiny-GQA-7M — /);
    assert.match(await page.textContent('[data-testid=fact-file] dd'), /^Tiny-GQA-7M, /);
    // Kept on this device under that name, not "Hugging Face folder".
    await page.click('[data-testid=tab-storage]');
    await page.waitForSelector('[data-testid=stored-item][data-name=Tiny-GQA-7M]', { timeout: SLOW });
    assert.equal(await page.locator('[data-testid=stored-item][data-name="Hugging Face folder"]').count(), 0);
    await assertClean(page, log, site.server.url);
    await page.close();
  });

  test('a cut-short GGUF, folders missing config.json or tokenizer.json, another architecture: refused in words', async () => {
    const { page, log } = await openApp(site.browser.context, site.server.url);
    assert.equal(await waitForState(page, ['ready', 'error'], SLOW), 'ready');
    const q4k = readFileSync(CASES.q4k.files[0]);
    writeFileSync(join(tmp, 'cut.q4_k_m.gguf'), q4k.subarray(0, q4k.length >> 1));
    const qwen = join(tmp, 'qwen');
    mkdirSync(qwen);
    for (const f of folder('gqa_untied')) {
      const name = f.split('/').pop();
      const bytes = readFileSync(f);
      writeFileSync(join(qwen, name), name === 'config.json' ? bytes.toString().replace('LlamaForCausalLM', 'Qwen2ForCausalLM') : bytes);
    }
    writeFileSync(join(tmp, 'model.gguf'), 'Once upon a time there was a text file.\n');
    const gqa = (names) => names.map((n) => join(FX, 'hf/gqa_untied', n));
    const two = join(tmp, 'two-ggufs');
    mkdirSync(two);
    cpSync(CASES.q8.files[0], join(two, 'a.q8_0.gguf'));
    cpSync(CASES.f32.files[0], join(two, 'b.f32.gguf'));
    const notes = join(tmp, 'notes');
    mkdirSync(join(notes, 'deeper'), { recursive: true });
    writeFileSync(join(notes, 'todo.txt'), 'train a model');
    writeFileSync(join(notes, 'deeper/config.txt'), '{}');
    const cases = [
      // Refused by the worker: the status also says which model Generate still uses.
      [[join(tmp, 'cut.q4_k_m.gguf')],
        /^“cut\.q4_k_m\.gguf” is a GGUF file this app cannot use: .+\. GGUF Llama models in F32, .*Q5_0.* are read .* The model in use is still stories260K\.$/],
      [[join(tmp, 'model.gguf')],
        /^“model\.gguf” is named \.gguf but is not a GGUF file \(those begin with the letters GGUF\): it looks like a text file\./],
      [gqa(['model.safetensors', 'tokenizer.json']), /^This looks like a Hugging Face model folder, but config\.json \(the model's shape\) is missing: choose every file/],
      [gqa(['config.json', 'model.safetensors']), /^This looks like a Hugging Face model folder, but tokenizer\.json \(its tokenizer\) is missing/],
      [readdirSync(qwen).map((n) => join(qwen, n)), /^This Hugging Face folder cannot be used \(config\.json: Qwen2ForCausalLM is not a Llama model this lab can run\)/],
      // Dropped whole: the same words, the folder's name in them.
      [[qwen], /^This Hugging Face folder cannot be used \(qwen\/config\.json: Qwen2ForCausalLM is not a Llama model this lab can run\)/, 'folder'],
      [[two], /^The folder holds 2 GGUF files \(“two-ggufs\/a\.q8_0\.gguf”, “two-ggufs\/b\.f32\.gguf”\): drop the one to use\.$/, 'folder'],
      [[notes], /^The dropped folder holds no model this lab reads: a Hugging Face folder/, 'folder'],
    ];
    for (const [files, message, drop] of cases) {
      assert.equal(await give(page, files, drop), 'error');
      assert.match(await statusText(page), message);
      // The same words right under the drop zone's "Choose files", where the file was given.
      assert.equal(await page.textContent('[data-testid=load-error-files]'), await statusText(page));
    }
    // The bundled model is still in use and still writes.
    assert.equal((await page.locator('[data-testid=model-select] option').count()), 1);
    const run = await generate(page, { temperature: 0, topp: 0.9, seed: 1, steps: 20 });
    assert.equal(run.state, 'done', run.status);
    await assertClean(page, log, site.server.url);
    await page.close();
  });
});

describe('Training an adapter on a GGUF file and a Hugging Face folder (CPU)', () => {
  const site = useSite();
  const work = mkdtempSync(join(tmpdir(), 'tinylm-formats-train-'));
  after(() => rmSync(work, { recursive: true, force: true }));
  const BOOK = join(REPO, 'public/corpora/peter-rabbit.txt');
  const STEPS = 6;

  /** The Train form's value for `key` (e.g. 'lr'). */
  const field = (page, key) => page.inputValue(`[data-testid=train-${key}]`);

  test(`the Quick preset, ${STEPS} steps on Peter Rabbit, on the Q8_0 and Q4_K_M GGUF files and the BF16 folder: losses and held-out loss = tinylm finetune`, async () => {
    for (const key of ['q8', 'q4k', 'hf']) {
      const c = CASES[key];
      const { page, log } = await openApp(site.browser.context, site.server.url);
      assert.equal(await waitForState(page, ['ready', 'error'], SLOW), 'ready');
      assert.equal(await give(page, c.files, c.drop), 'ready', await statusText(page));
      await page.click('[data-testid=tab-train]');
      await page.waitForFunction(() => document.querySelector('[data-testid=counts]')?.dataset.trainChars, null, { timeout: SLOW });
      // Counted with this model's tokenizer before any run (it once kept stories260K's count).
      const before = await page.getAttribute('[data-testid=counts]', 'data-train-tokens');
      await page.click('[data-testid=preset-quick]');
      await page.fill('[data-testid=train-steps]', String(STEPS));
      const run = {};
      for (const k of ['targets', 'rank', 'alpha', 'lr', 'batch', 'seq', 'seed']) run[k] = await field(page, k);
      assert.equal(run.targets, 'gate_proj,up_proj,down_proj', 'the Quick preset');
      await page.click('[data-testid=train-start]');
      await page.waitForFunction(() => ['finished', 'error'].includes(document.querySelector('[data-testid=train-status]')?.dataset.state),
        null, { timeout: SLOW });
      assert.equal(await page.getAttribute('[data-testid=train-status]', 'data-state'), 'finished',
        await page.textContent('[data-testid=train-status]'));
      const got = JSON.parse(await page.textContent('[data-testid=train-losses]'));
      const held = JSON.parse(await page.textContent('[data-testid=train-held]'));

      // The same run on the CLI, on the model's file (folder), the text the page trained on and
      // its held-out rest.
      const chars = Number(await page.getAttribute('[data-testid=counts]', 'data-train-chars'));
      const book = Array.from(readFileSync(BOOK, 'utf8'));
      const [textFile, heldFile, cliDir] = ['train.txt', 'held.txt', `cli-${key}`].map((n) => join(work, n));
      writeFileSync(textFile, book.slice(0, chars).join(''));
      writeFileSync(heldFile, book.slice(chars).join(''));
      tinylm(['finetune', c.cli ?? c.files[0], '--text-file', textFile, '--eval-file', heldFile, '--targets', run.targets, '--rank', run.rank,
        '--alpha', run.alpha, '--lr', run.lr, '--steps', `${STEPS}`, '--batch', run.batch, '--seq', run.seq,
        '--init-seed', run.seed, '--data-seed', run.seed, '-o', cliDir]);
      const want = JSON.parse(readFileSync(join(cliDir, 'losses.json'), 'utf8'));
      assert.equal(got.length, STEPS + 1);
      assert.equal(want.length, got.length);
      for (let i = 0; i < want.length; i++) {
        assert.ok(Math.abs(got[i] - want[i]) <= 1e-5 * Math.abs(want[i]), `${key} loss ${i}: browser ${got[i]} vs CLI ${want[i]}`);
      }
      const cliHeld = JSON.parse(readFileSync(join(cliDir, 'held_out.json'), 'utf8'));
      assert.equal(Number(await page.getAttribute('[data-testid=counts]', 'data-held-windows')), cliHeld.windows);
      assert.equal(before, await page.getAttribute('[data-testid=counts]', 'data-train-tokens'), `${key}: the count shown before the run`);
      const [lastStep, lastHeld] = held[held.length - 1];
      assert.equal(lastStep, STEPS);
      console.log(`# train ${key}: loss ${got[0].toFixed(4)} -> ${got[STEPS].toFixed(4)}, held-out ${lastHeld.toFixed(5)} (CLI ${cliHeld.loss.toFixed(5)})`);
      assert.ok(Math.abs(lastHeld - cliHeld.loss) <= 1e-5 * cliHeld.loss, `${key} held-out: browser ${lastHeld} vs CLI ${cliHeld.loss}`);
      if (key === 'q8') {
        // Trained on the CPU without an f32 copy: with the new adapter in use (the model restarts
        // and reports what it holds) the card still says the weights are kept as Q8_0.
        await page.locator('[data-testid=adapter-row]').last().locator('[data-testid=adapter-use]').click();
        await page.click('[data-testid=tab-generate]');
        await page.waitForSelector('[data-testid=adapter-badge-story]', { timeout: SLOW });
        assert.match(await page.textContent('[data-testid=fact-weights-in-memory] dd'), /\(kept as Q8_0: \d+% of f32\)$/);
        await page.click('[data-testid=adapter-off-story]');
        await page.waitForFunction(() => !document.querySelector('[data-testid=adapter-badge-story]'), null, { timeout: SLOW });
      }
      await assertClean(page, log, site.server.url);
      await page.close();
    }
  });
});

describe('A dropped folder and a dropped GGUF file kept on this device', () => {
  /** The storage manifest's entries in OPFS. */
  const manifest = (page) => page.evaluate(async () => {
    const root = await (await navigator.storage.getDirectory()).getDirectoryHandle('tinylm', { create: true });
    try {
      return JSON.parse(await (await (await root.getFileHandle('manifest.json')).getFile()).text()).entries;
    } catch {
      return [];
    }
  });
  const sha = (path) => createHash('sha256').update(readFileSync(path)).digest('hex');
  const GREEDY = { prompt: PROMPT, temperature: 0, topp: 0.9, seed: 1, steps: 40 };

  test('each is stored as one item (the folder: only its model files) and writes the same story after a browser restart, offline', async () => {
    const profile = mkdtempSync(join(tmpdir(), 'tinylm-formats-profile-'));
    const server = await startServer();
    let browser = await launchBrowser({ profile });
    try {
      let { page } = await openApp(browser.context, server.url);
      assert.equal(await waitForState(page, ['ready', 'error'], SLOW), 'ready');
      await page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 60_000 });
      const stories = {};
      for (const key of ['hf', 'q4k']) {
        const c = CASES[key];
        assert.equal(await give(page, c.files, c.drop), 'ready', await statusText(page));
        stories[key] = (await generate(page, GREEDY)).text;
      }
      // Saving follows loading: wait (up to 30 s) until two items are listed, or fail below.
      let entries = [];
      for (let i = 0; i < 150 && (entries = await manifest(page)).length < 2; i++) await page.waitForTimeout(200);
      const files = (e) => e.files.map((f) => [f.name, f.size, f.sha256]);
      const hf = join(FX, 'hf/mha_tied_bf16');
      // Config first, then the rest by name; no README, generation config or onnx/ files.
      const want = ['config.json', 'model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors',
        'model-00003-of-00003.safetensors', 'model.safetensors.index.json', 'tokenizer.json'];
      assert.deepEqual(entries.map((e) => [e.kind, e.name]), [['model', 'mha_tied_bf16'], ['model', 'quant.q4_k_m.gguf']]);
      assert.deepEqual(files(entries[0]), want.map((n) => [`mha_tied_bf16/${n}`, statSync(join(hf, n)).size, sha(join(hf, n))]));
      assert.deepEqual(files(entries[1]), [['quant.q4_k_m.gguf', statSync(CASES.q4k.files[0]).size, sha(CASES.q4k.files[0])]]);

      // Close the browser and the server; reopen the same profile offline.
      await browser.close();
      await server.close();
      browser = await launchBrowser({ profile });
      await browser.context.setOffline(true);
      ({ page } = await openApp(browser.context, server.url));
      assert.equal(await waitForState(page, ['ready', 'error'], SLOW), 'ready');
      for (const [key, name] of [['hf', 'mha_tied_bf16'], ['q4k', 'quant.q4_k_m']]) {
        await page.click('[data-testid=tab-storage]');
        await page.click(`[data-testid=stored-item][data-name="${entries[key === 'hf' ? 0 : 1].name}"] [data-testid=stored-use]`);
        await page.click('[data-testid=tab-generate]');
        await page.waitForFunction((n) => document.querySelector('[data-testid=status]')?.textContent.startsWith(`Ready: ${n} (`),
          name, { timeout: SLOW });
        assert.equal((await generate(page, GREEDY)).text, stories[key], `${key}: the same greedy story`);
      }
      // Using them again stores no second copy.
      assert.equal((await manifest(page)).length, 2);
    } finally {
      await browser.close();
      await server.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    }
  });
});

describe('GGUF files and Hugging Face folders on WebGPU (SwiftShader)', () => {
  const site = useSite({ webgpu: true });

  test('Q8_0 and Q4_K_M GGUF files (kept quantized) and a BF16 folder: greedy tokens and logits within 1e-4 on the GPU', async () => {
    // WebGPU chosen (Auto never takes a software adapter).
    const { page, log } = await openApp(site.browser.context, `${site.server.url}#backend=webgpu`);
    assert.equal(await waitForState(page, ['ready', 'error'], SLOW), 'ready');
    for (const key of ['q8', 'q4k', 'hf']) {
      const r = await check(page, CASES[key], 'webgpu');
      // Measured (SwiftShader): |Δ| 9.1e-6 (q8), 6.2e-6 (hf); the bound, 1e-4 of the largest
      // logit (the issue's), is 11× that and more.
      console.log(`# webgpu ${key}: ${r.greedy} greedy tokens, logits max |Δ| ${r.worst.toExponential(2)} (scale ${r.scale.toFixed(2)})`);
      assert.ok(r.worst <= 1e-4 * r.scale, `${key}: logits differ from transformers by ${r.worst}`);
    }
    await assertClean(page, log, site.server.url);
    await page.close();
  });

  test('WebGPU chosen, then an F16 GGUF picked before stories260K is back up: the F16 weights stay F16 and the status names the model in use', async () => {
    const { page, log } = await openApp(site.browser.context, site.server.url);
    assert.equal(await waitForState(page, ['ready', 'error'], SLOW), 'ready');
    await page.selectOption('[data-testid=backend-choice]', 'webgpu');
    await page.setInputFiles('[data-testid=files]', [join(FX, 'gguf/gqa_untied.f16.gguf')]);
    await page.waitForFunction(() => / Its F16 weights stay F16 on the graphics processor \(\d+ KB\)\.$/.test(
      document.querySelector('[data-testid=backend-reason]')?.textContent ?? ''), null, { timeout: SLOW });
    // Both loads have answered once the select names the F16 model; the status must name it too
    // (it once kept "Ready: stories260K", the load that finished first).
    await page.waitForFunction(() => /^gqa_untied\.f16 /.test(document.querySelector('[data-testid=model-select] option:checked')?.textContent ?? ''),
      null, { timeout: SLOW });
    await page.waitForFunction(() => /^Ready: gqa_untied\.f16 \(GGUF v3, F16 ×\d+, F32 ×\d+\)\./.test(
      document.querySelector('[data-testid=status]')?.textContent ?? ''), null, { timeout: 10_000 })
      .catch(async () => assert.fail(`the status says: ${await page.textContent('[data-testid=status]')}`));
    assert.match(await page.textContent('[data-testid=fact-weights-in-memory] dd'), /\(kept as F16: 5\d% of f32\)$/);
    await assertClean(page, log, site.server.url);
    await page.close();
  });
});
