// Benchmark of the built site (not a test): `node tests/e2e/bench.mjs` after `trunk build --release`.
// Measures, in headless Chromium on localhost:
//  - cold start to first token: a fresh browser profile (empty cache) opens the app, waits for
//    the bundled model, presses Generate and sees the first text;
//  - decode tokens/s on the CPU (wasm) and on WebGPU (SwiftShader here) for stories260K and an
//    s15m-shaped random model, by driving the benchmark page bench.html (the same figures a
//    reader gets by opening that page; its JSON is included whole);
//  - the gzipped size of the app's wasm and js.
// Medians of several runs. Prints a table, then JSON. RUNS=…, COLD_RUNS=… and STEPS_*=… change
// the counts; BACKENDS=cpu (or webgpu) measures one backend only; COLD_ONLY=1 only the cold starts
// (the time to ready is the bundled model's time to be ready to write, in Auto: with
// BACKENDS=webgpu the browser offers SwiftShader, which Auto skips). Each cold start also prints
// where the time to ready went; NO_SW=1 leaves the service worker out.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DIST, launchBrowser, startServer, waitForState } from './helpers.mjs';

const RUNS = Number(process.env.RUNS ?? 5);
const COLD_RUNS = Number(process.env.COLD_RUNS ?? 5);
const COLD_ONLY = Boolean(process.env.COLD_ONLY);
const BACKENDS = (process.env.BACKENDS ?? 'cpu,webgpu').split(',');
for (const b of BACKENDS) if (!['cpu', 'webgpu'].includes(b)) throw new Error(`BACKENDS: unknown backend ${b}`);
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

/** The files on the path to "Ready", by a short name, for the breakdown. */
const STEPS = [
  ['page_wasm', /\/app-[^/]*_bg\.wasm$/],
  ['worker_loader', /\/worker_loader\.js$/],
  ['worker_wasm', /\/worker_bg\.wasm$/],
  ['model', /\/stories260K\.bin$/],
  ['tokenizer', /\/tok512\.bin$/],
];

/** Inside the page: each change of the status line (state and words), at performance.now(). */
function watchStatus() {
  window.__tinylmStatus = [];
  new MutationObserver(() => {
    const el = document.querySelector('[data-testid=status]');
    if (!el) return;
    const last = window.__tinylmStatus.at(-1);
    const entry = { t: performance.now(), state: el.dataset.state, text: el.textContent.slice(0, 60) };
    if (!last || last.state !== entry.state || last.text.slice(0, 20) !== entry.text.slice(0, 20)) window.__tinylmStatus.push(entry);
  }).observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
}

/**
 * From navigation (fresh profile, empty cache) to the first story text on screen, with where the
 * time to "Ready" went: when each file on the path was asked for and arrived (the page's and the
 * worker's requests alike), when the page's wasm had started (boot.js's mark), and each status.
 * Times in ms from navigation start (the page's performance.timeOrigin).
 */
async function coldStart(url, webgpu) {
  const browser = await launchBrowser({ webgpu });
  try {
    const page = await browser.context.newPage();
    await page.addInitScript(watchStatus);
    // NO_SW=1: the offline service worker is not installed (to see what its precache costs).
    if (process.env.NO_SW) await page.route('**/sw.js', (r) => r.abort());
    const seen = {};
    const name = (u) => STEPS.find(([, re]) => re.test(new URL(u).pathname))?.[0];
    const stamp = (what) => (req) => {
      const n = name(req.url());
      if (n) (seen[n] ??= {})[what] = Date.now();
    };
    page.on('request', stamp('asked'));
    page.on('requestfinished', stamp('arrived'));
    const t0 = Date.now();
    await page.goto(url);
    await waitForState(page, ['ready'], TIMEOUT);
    const readyAt = Date.now();
    const ready = readyAt - t0;
    const inPage = await page.evaluate(() => ({
      origin: performance.timeOrigin,
      boot: performance.getEntriesByName('tinylm:page-started')[0]?.startTime,
      status: window.__tinylmStatus,
    }));
    const rel = (t) => Math.round(t - inPage.origin);
    const files = Object.fromEntries(Object.entries(seen).map(([k, v]) => [k, [rel(v.asked), rel(v.arrived)]]));
    const breakdown = { ready: rel(readyAt), page_started: Math.round(inPage.boot ?? NaN), files,
      status: inPage.status.map((s) => `${Math.round(s.t)} ${s.state}: ${s.text}`) };
    await page.fill('[data-testid=temperature]', '0');
    await page.click('[data-testid=generate]');
    await page.waitForFunction(() => document.querySelector('[data-testid=output]').textContent.length > 0, null, { timeout: TIMEOUT, polling: 5 });
    return { ready_ms: ready, first_token_ms: Date.now() - t0, breakdown };
  } finally {
    await browser.close();
  }
}

/** The benchmark page for one backend in its own browser; its JSON, by model name. */
async function pageRuns(url, webgpu) {
  const key = webgpu ? 'webgpu' : 'cpu';
  const q = new URLSearchParams({
    backends: key,
    models: 'stories260K,s15m',
    runs: String(RUNS),
    steps_260k: process.env.STEPS_260K ?? '256',
    steps_s15m: process.env[webgpu ? 'STEPS_S15M_GPU' : 'STEPS_S15M_CPU'] ?? (webgpu ? '32' : '128'),
  });
  const browser = await launchBrowser({ webgpu });
  try {
    const page = await browser.context.newPage();
    await page.goto(`${url}bench.html?${q}`);
    await page.waitForFunction(() => ['done', 'error'].includes(document.getElementById('status').dataset.state), null, { timeout: TIMEOUT, polling: 500 });
    const json = JSON.parse(await page.textContent('#json'));
    if (json.errors.length) throw new Error(`bench page (${key}): ${JSON.stringify(json.errors)}`);
    const out = { machine: json.machine, page: json };
    for (const r of json.results) {
      if (r.kind !== key) throw new Error(`asked for ${key}, the page ran ${r.backend}`);
      out.backend = `${r.backend}: ${r.detail}`;
      const model = r.model.startsWith('random s15m') ? 's15m' : r.model;
      out[model] = { steps: r.steps, tok_s: r.decode_tok_s, runs: r.runs, model_ms: r.model_ms, start_ms: r.start_ms };
      process.stderr.write(`  ${key} ${model}: ${r.decode_tok_s.toFixed(1)} tok/s\n`);
    }
    return out;
  } finally {
    await browser.close();
  }
}

const server = await startServer('/');
const result = { date: new Date().toISOString(), runs: RUNS, cold_runs: COLD_RUNS, sizes: sizes(), cold_start: {}, speed: {} };
try {
  for (const key of BACKENDS) {
    const webgpu = key === 'webgpu';
    const cold = [];
    for (let i = 0; i < COLD_RUNS; i++) {
      const c = await coldStart(server.url, webgpu);
      cold.push(c);
      const f = Object.entries(c.breakdown.files).map(([k, [a, b]]) => `${k} ${a}→${b}`).join(', ');
      process.stderr.write(`  ${key} cold ${i + 1}: ready ${c.ready_ms} ms (page wasm started ${c.breakdown.page_started}; ${f}; ready at ${c.breakdown.ready})\n`);
      process.stderr.write(`    status: ${c.breakdown.status.join(' | ')}\n`);
    }
    const at = (pick) => median(cold.map((c) => pick(c.breakdown) ?? NaN));
    result.cold_start[key] = {
      ready_ms: median(cold.map((c) => c.ready_ms)),
      first_token_ms: median(cold.map((c) => c.first_token_ms)),
      // Medians, ms from navigation start: [asked, arrived] per file, the page's wasm started.
      breakdown: {
        page_started: at((b) => b.page_started),
        ...Object.fromEntries(STEPS.map(([k]) => [k, [at((b) => b.files[k]?.[0]), at((b) => b.files[k]?.[1])]])),
        ready: at((b) => b.ready),
      },
      runs: cold.map((c) => c.breakdown),
    };
    process.stderr.write(`  ${key} cold start: ${result.cold_start[key].first_token_ms} ms\n`);
    if (!COLD_ONLY) result.speed[key] = await pageRuns(server.url, webgpu);
  }
} finally {
  await server.close();
}

const kb = (b) => `${(b / 1024).toFixed(1)} KiB`;
const z = result.sizes;
const label = (key) => (key === 'cpu' ? 'CPU' : 'WebGPU');
const rows = BACKENDS.map((key) => [`cold start → first token (${label(key)})`,
  `${result.cold_start[key].first_token_ms} ms (model ready ${result.cold_start[key].ready_ms} ms)`]);
for (const key of BACKENDS) {
  const b = result.cold_start[key].breakdown;
  const f = STEPS.map(([k]) => `${k} ${b[k][0]}→${b[k][1]}`).join(', ');
  rows.push([`  where it went (${label(key)}, ms)`, `${f}; page wasm started ${b.page_started}; ready ${b.ready}`]);
}
for (const key of COLD_ONLY ? [] : BACKENDS) {
  for (const model of ['stories260K', 's15m']) {
    const s = result.speed[key][model];
    rows.push([`${model} on ${key === 'cpu' ? 'CPU (wasm)' : 'WebGPU'}`,
      `${s.tok_s.toFixed(1)} tok/s (${s.steps} steps; runs ${s.runs.map((x) => x.toFixed(0)).join(' ')})`]);
  }
}
rows.push(['gzipped page (wasm + js)', `${kb(z.page_wasm_gz)} + ${kb(z.page_js_gz)}`]);
rows.push(['gzipped worker (wasm + js)', `${kb(z.worker_wasm_gz)} + ${kb(z.worker_js_gz)}`]);
rows.push(['gzipped total (raw)', `${kb(z.total_gz)} (${kb(z.total_raw)})`]);
const w = Math.max(...rows.map((r) => r[0].length));
console.log(`TinyLM Lab browser benchmark, medians of ${RUNS} runs (${COLD_RUNS} cold starts)`);
if (!COLD_ONLY) {
  const machine = result.speed[BACKENDS[0]].machine;
  console.log(`Browser: ${machine.user_agent} (${machine.hardware_concurrency} logical cores)`);
  console.log(BACKENDS.map((key) => `${key === 'cpu' ? 'CPU' : 'GPU'} backend: ${result.speed[key].backend}`).join('; '));
}
for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
console.log(JSON.stringify(result, null, 2));
