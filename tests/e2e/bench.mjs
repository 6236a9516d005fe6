// Benchmark of the built page (not a test): `node tests/e2e/bench.mjs` after `trunk build --release`.
// Measures, in headless Chromium on localhost:
//  - cold start to first token: a fresh browser profile (empty cache) opens the page, waits for
//    the bundled model, presses Generate and sees the first text;
//  - decode tokens/s (run.c's measure, as the page shows it) and first-token time, on the CPU
//    (wasm) and on WebGPU (SwiftShader here), for stories260K and an s15m-shaped random model
//    (`tinylm make-model --shape s15m`, with the Llama 2 tokenizer from ../shared);
//  - the gzipped size of the app's wasm and js.
// Medians of several runs. Prints a table, then JSON. RUNS=… and STEPS_*=… change the counts.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DIST, launchBrowser, sharedPath, startServer, tinylm, waitForState } from './helpers.mjs';

const RUNS = Number(process.env.RUNS ?? 5);
const COLD_RUNS = Number(process.env.COLD_RUNS ?? 5);
const TIMEOUT = 600_000;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function sizes() {
  const files = readdirSync(DIST);
  const gz = (names) => names.reduce((n, f) => n + gzipSync(readFileSync(join(DIST, f)), { level: 9 }).length, 0);
  const raw = (names) => names.reduce((n, f) => n + readFileSync(join(DIST, f)).length, 0);
  const page = files.filter((f) => /^app-.*(_bg\.wasm|\.js)$/.test(f)).concat('boot.js');
  const worker = ['worker_bg.wasm', 'worker.js', 'worker_loader.js'];
  return {
    page_wasm_gz: gz(page.filter((f) => f.endsWith('.wasm'))),
    page_js_gz: gz(page.filter((f) => f.endsWith('.js'))),
    worker_wasm_gz: gz(['worker_bg.wasm']),
    worker_js_gz: gz(['worker.js', 'worker_loader.js']),
    total_gz: gz(page) + gz(worker),
    total_raw: raw(page) + raw(worker),
  };
}

/** From navigation (fresh profile, empty cache) to the first story text on screen. */
async function coldStart(url, webgpu) {
  const browser = await launchBrowser({ webgpu });
  try {
    const page = await browser.context.newPage();
    const t0 = Date.now();
    await page.goto(url);
    await waitForState(page, ['ready'], TIMEOUT);
    const ready = Date.now() - t0;
    await page.fill('[data-testid=temperature]', '0');
    await page.click('[data-testid=generate]');
    await page.waitForFunction(() => document.querySelector('[data-testid=output]').textContent.length > 0, null, { timeout: TIMEOUT, polling: 5 });
    return { ready_ms: ready, first_token_ms: Date.now() - t0 };
  } finally {
    await browser.close();
  }
}

/** Greedy runs of `steps` on the page's active model; the page's own figures. */
async function speed(page, steps) {
  await page.fill('[data-testid=temperature]', '0');
  await page.fill('[data-testid=steps]', String(steps));
  await page.click('[data-testid=generate]');
  await waitForState(page, ['done', 'error'], TIMEOUT);
  const status = await page.textContent('[data-testid=status]');
  const rate = Number(await page.textContent('[data-testid=tok-s]'));
  const ttft = parseFloat(await page.textContent('[data-testid=ttft]'));
  if (!status.startsWith('Done') || !Number.isFinite(rate)) throw new Error(`run failed: ${status}`);
  return { tok_s: rate, first_token_ms: ttft };
}

async function loadS15m(page) {
  await page.fill('[data-testid=model-url]', 'extra/s15m.bin');
  await page.fill('[data-testid=tokenizer-url]', 'extra/tokenizer.bin');
  const t0 = Date.now();
  await page.click('[data-testid=load-url]');
  const state = await waitForState(page, ['ready', 'error'], TIMEOUT);
  if (state !== 'ready') throw new Error(await page.textContent('[data-testid=status]'));
  return Date.now() - t0;
}

async function backendRuns(url, webgpu) {
  const browser = await launchBrowser({ webgpu });
  const out = {};
  try {
    const page = await browser.context.newPage();
    await page.goto(url);
    await waitForState(page, ['ready'], TIMEOUT);
    const kind = await page.getAttribute('[data-testid=backend]', 'data-kind');
    if (kind !== (webgpu ? 'webgpu' : 'cpu')) throw new Error(`expected ${webgpu ? 'webgpu' : 'cpu'}, got ${kind}`);
    out.backend = await page.textContent('[data-testid=backend]');
    for (const [model, steps] of [['stories260K', Number(process.env.STEPS_260K ?? 256)], ['s15m', Number(process.env[webgpu ? 'STEPS_S15M_GPU' : 'STEPS_S15M_CPU'] ?? (webgpu ? 32 : 256))]]) {
      let load_ms;
      if (model === 's15m') load_ms = await loadS15m(page);
      await speed(page, Math.min(steps, 8)); // warm-up (shader compilation, first allocation)
      const runs = [];
      for (let i = 0; i < RUNS; i++) runs.push(await speed(page, steps));
      out[model] = {
        steps,
        tok_s: median(runs.map((r) => r.tok_s)),
        first_token_ms: median(runs.map((r) => r.first_token_ms)),
        runs: runs.map((r) => r.tok_s),
        ...(load_ms !== undefined ? { load_ms } : {}),
      };
      process.stderr.write(`  ${webgpu ? 'webgpu' : 'cpu'} ${model}: ${out[model].tok_s.toFixed(1)} tok/s\n`);
    }
  } finally {
    await browser.close();
  }
  return out;
}

const tmp = mkdtempSync(join(tmpdir(), 'tinylm-bench-'));
const s15m = join(tmp, 's15m.bin');
tinylm(['make-model', '--shape', 's15m', '-o', s15m]);
const server = await startServer('/', { 'extra/s15m.bin': s15m, 'extra/tokenizer.bin': sharedPath('tokenizers/llama2/tokenizer.bin') });
const result = { date: new Date().toISOString(), runs: RUNS, cold_runs: COLD_RUNS, sizes: sizes(), cold_start: {}, speed: {} };
try {
  for (const webgpu of [false, true]) {
    const key = webgpu ? 'webgpu' : 'cpu';
    const cold = [];
    for (let i = 0; i < COLD_RUNS; i++) cold.push(await coldStart(server.url, webgpu));
    result.cold_start[key] = {
      ready_ms: median(cold.map((c) => c.ready_ms)),
      first_token_ms: median(cold.map((c) => c.first_token_ms)),
    };
    process.stderr.write(`  ${key} cold start: ${result.cold_start[key].first_token_ms} ms\n`);
    result.speed[key] = await backendRuns(server.url, webgpu);
  }
} finally {
  await server.close();
  rmSync(tmp, { recursive: true, force: true });
}

const kb = (b) => `${(b / 1024).toFixed(1)} KiB`;
const z = result.sizes;
const rows = [
  ['cold start → first token (CPU)', `${result.cold_start.cpu.first_token_ms} ms (model ready ${result.cold_start.cpu.ready_ms} ms)`],
  ['cold start → first token (WebGPU)', `${result.cold_start.webgpu.first_token_ms} ms (model ready ${result.cold_start.webgpu.ready_ms} ms)`],
];
for (const key of ['cpu', 'webgpu']) {
  for (const model of ['stories260K', 's15m']) {
    const s = result.speed[key][model];
    rows.push([`${model} on ${key === 'cpu' ? 'CPU (wasm)' : 'WebGPU'}`,
      `${s.tok_s.toFixed(1)} tok/s, first token ${s.first_token_ms} ms (${s.steps} steps)`]);
  }
}
rows.push(['gzipped page (wasm + js)', `${kb(z.page_wasm_gz)} + ${kb(z.page_js_gz)}`]);
rows.push(['gzipped worker (wasm + js)', `${kb(z.worker_wasm_gz)} + ${kb(z.worker_js_gz)}`]);
rows.push(['gzipped total (raw)', `${kb(z.total_gz)} (${kb(z.total_raw)})`]);
const w = Math.max(...rows.map((r) => r[0].length));
console.log(`TinyLM Lab browser benchmark, medians of ${RUNS} runs (${COLD_RUNS} cold starts)`);
console.log(`CPU backend: ${result.speed.cpu.backend}; GPU backend: ${result.speed.webgpu.backend}`);
for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
console.log(JSON.stringify(result, null, 2));
