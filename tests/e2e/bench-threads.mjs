// Benchmark of the built site's CPU threads (issue 20; not a test): s15m decode in headless
// Chromium on one thread (the plain worker) and on every thread (the threaded worker), side by
// side in alternating rounds, and with L2C=DIR (a llama2.c checkout's run.c) llama2.c's
// `run.c -Ofast -fopenmp -march=native` on as many threads natively, in the same rounds (and the
// same run.c with its weights copied into anonymous memory, as a wasm memory holds them). Then
// one LoRA step on the s15m shape at the Train view's default settings (its own estimate before a
// run, "ms per step", and the steady step of a run started there), on one thread and on every
// thread, in alternating rounds.
//   node tests/e2e/bench-threads.mjs            ROUNDS=5 RUNS=3 STEPS=256 L2C=… change it
// OTHER=DIR adds the decode rows of another build of the site (e.g. the one before a change),
// served beside this one and measured in the same rounds; LORA=0 skips the LoRA step, DECODE=0
// the decode rounds.
// The page is opened once first, so its service worker makes bench.html cross-origin isolated.
// Prints a table of medians and ratios, then JSON.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchBrowser, openApp, sharedPath, startServer, tinylm } from './helpers.mjs';
import { serve } from './server.mjs';

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const RUNS = Number(process.env.RUNS ?? 3);
const STEPS = Number(process.env.STEPS ?? 256);
const L2C = process.env.L2C;
const OTHER = process.env.OTHER;
const LORA = process.env.LORA !== '0';
const DECODE = process.env.DECODE !== '0';
// The steady LoRA step: RUN_STEPS steps of a run from step RUN_FROM.
const RUN_FROM = Number(process.env.RUN_FROM ?? 6);
const RUN_STEPS = Number(process.env.RUN_STEPS ?? 12);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** run.c with OpenMP on `threads` threads, greedy from BOS: its achieved tok/s. */
function runC(bin, model, threads) {
  // run.c prints its speed on stderr.
  const { stderr } = spawnSync(bin, [model, '-z', sharedPath('tokenizers/llama2/tokenizer.bin'), '-t', '0', '-n', String(STEPS)], {
    env: { ...process.env, OMP_NUM_THREADS: String(threads) },
  });
  return Number(stderr.toString().match(/achieved tok\/s: ([0-9.]+)/)[1]);
}

/**
 * One LoRA step on s15m in a fresh page with `threads` threads: the Train view's estimate
 * before a run (`estimate`, ms; steps 4 to 6 of a new page) and the steady step of a run
 * (`run`, ms): from the run's mean ms per step at two steps past RUN_FROM, so the first steps,
 * where V8 still optimizes the code, are left out.
 */
async function loraStepMs(browser, url, threads) {
  const page = await browser.context.newPage();
  try {
    await page.goto(`${url}?threads=${threads}`);
    await page.waitForFunction(() => document.querySelector('[data-testid=status]')?.dataset.state === 'ready', null, { timeout: 120_000 });
    await page.fill('[data-testid=model-url]', 'models/s15m.bin');
    await page.fill('[data-testid=tokenizer-url]', 'models/tok32000.bin');
    await page.click('[data-testid=load-url]');
    await page.waitForFunction(() => document.querySelector('[data-testid=status]')?.textContent.startsWith('Ready: s15m'), null, { timeout: 300_000 });
    const backend = await page.textContent('[data-testid=backend]');
    if (!backend.endsWith(threads === 1 ? '1 thread' : `${threads} threads`)) throw new Error(`asked for ${threads} threads, got ${backend}`);
    await page.click('[data-testid=tab-train]');
    await page.waitForFunction(() => document.querySelector('[data-testid=train-estimate]')?.dataset.seconds, null, { timeout: 600_000 });
    const estimate = Number((await page.textContent('[data-testid=train-estimate]')).match(/([0-9]+) ms per step/)[1]);
    const tokens = Number(await page.inputValue('[data-testid=train-batch]')) * Number(await page.inputValue('[data-testid=train-seq]'));
    await page.click('[data-testid=train-start]');
    // The page shows the run's mean speed over its steps so far: (step, tokens/s) read together.
    const at = async (step) => {
      const h = await page.waitForFunction((want) => {
        const k = Number(document.querySelector('[data-testid=train-step]')?.textContent.split('/')[0]);
        const r = Number(document.querySelector('[data-testid=train-tok-s]')?.textContent);
        return k >= want && r > 0 && [k, r];
      }, step, { timeout: 600_000, polling: 20 });
      return h.jsonValue();
    };
    const [k1, r1] = await at(RUN_FROM);
    const [k2, r2] = await at(k1 + RUN_STEPS);
    await page.click('[data-testid=train-stop]');
    // Mean ms per step is tokens·1000/rate; the steps between the two readings took the difference.
    const run = (tokens * 1000 * (k2 / r2 - k1 / r1)) / (k2 - k1);
    return { estimate, run };
  } finally {
    await page.close();
  }
}

const tmp = mkdtempSync(join(tmpdir(), 'tinylm-bench-threads-'));
const server = await startServer('/');
const other = OTHER ? await serve(OTHER, 0, '127.0.0.1', '/') : null;
const browser = await launchBrowser({ isolateReload: true });
const load = () => execFileSync('cut', ['-d', ' ', '-f1-3', '/proc/loadavg']).toString().trim();
try {
  let runc = null;
  let runcAnon = null;
  if (L2C) {
    runc = join(tmp, 'run_omp');
    execFileSync('cc', ['-Ofast', '-fopenmp', '-march=native', join(L2C, 'run.c'), '-lm', '-o', runc]);
    runcAnon = buildRunCAnon(join(L2C, 'run.c'), join(tmp, 'run_omp_anon'));
    tinylm(['make-model', '--shape', 's15m', '-o', join(tmp, 's15m.bin')]);
  }
  const sites = [[server, '']];
  if (other) sites.push([other, 'other_']);
  let threads = null;
  for (const [site] of sites) {
    const { page } = await openApp(browser.context, site.url);
    await page.waitForFunction(() => self.crossOriginIsolated, null, { timeout: 60_000 });
    threads = await page.evaluate(() => navigator.hardwareConcurrency);
    await page.close();
  }
  const loadBefore = load();
  const rows = { cpu1: [], cpu: [], other_cpu1: [], other_cpu: [], runc: [], runc_anon: [] };
  let machine = null;
  for (let r = 0; r < (DECODE ? ROUNDS : 0); r++) {
    for (const [site, name] of sites) {
      const bench = await browser.context.newPage();
      await bench.goto(`${site.url}bench.html?models=s15m&backends=cpu1,cpu&runs=${RUNS}&steps=${STEPS}`);
      await bench.waitForFunction(() => ['done', 'error'].includes(document.getElementById('status').dataset.state), null, { timeout: 900_000 });
      const out = JSON.parse(await bench.textContent('#json'));
      await bench.close();
      if (out.errors.length) throw new Error(JSON.stringify(out.errors));
      machine = out.machine;
      for (const x of out.results) rows[name + x.requested].push(x.decode_tok_s);
    }
    if (runc) rows.runc.push(runC(runc, join(tmp, 's15m.bin'), threads));
    if (runcAnon) rows.runc_anon.push(runC(runcAnon, join(tmp, 's15m.bin'), threads));
  }
  // One LoRA step: the Train view's estimate on s15m, threads set by the address.
  if (LORA) await loraRows(rows, threads);
  const m = Object.fromEntries(Object.entries(rows).filter(([, v]) => v.length).map(([k, v]) => [k, median(v)]));
  const list = (xs) => xs.map((x) => x.toFixed(0)).join(' ');
  console.log(`Browser: ${machine?.user_agent ?? 'see the JSON'}; ${threads} logical cores; load before ${loadBefore}, after ${load()}`);
  if (DECODE) console.log(`s15m decode, ${STEPS} greedy tokens, medians of ${ROUNDS} alternating rounds (each browser figure a median of ${RUNS} runs)`);
  for (const [, name] of DECODE ? sites : []) {
    const who = name ? `OTHER build (${OTHER}) ` : '';
    console.log(`  ${who}wasm CPU, 1 thread        ${m[name + 'cpu1'].toFixed(1)} tok/s  (${list(rows[name + 'cpu1'])})`);
    console.log(`  ${who}wasm CPU, ${threads} threads       ${m[name + 'cpu'].toFixed(1)} tok/s  (${list(rows[name + 'cpu'])})  ${(m[name + 'cpu'] / m[name + 'cpu1']).toFixed(2)}× one thread` + (m.runc ? `, ${(m[name + 'cpu'] / m.runc).toFixed(2)}× run.c, ${(m[name + 'cpu'] / m.runc_anon).toFixed(2)}× run.c on anonymous memory` : ''));
  }
  if (m.runc) console.log(`  run.c -fopenmp, ${threads} threads ${m.runc.toFixed(1)} tok/s  (${list(rows.runc)})`);
  if (m.runc_anon) console.log(`  the same, its weights copied to anonymous memory ${m.runc_anon.toFixed(1)} tok/s  (${list(rows.runc_anon)})`);
  if (LORA) {
    console.log(`One LoRA step, s15m shape, the Train view's default settings (ms, lower is better):`);
    for (const [kind, what] of [['lora_ms', 'estimate before a run'], ['lora_run_ms', `a run's steps ${RUN_FROM}+ (${RUN_STEPS} or more)`]]) {
      for (const [, name] of sites) {
        const [one, all] = [`${name}${kind}_1`, `${name}${kind}_all`];
        const who = name ? `OTHER build, ` : '';
        console.log(`  ${who}${what}: 1 thread ${m[one].toFixed(0)} ms (${list(rows[one])}); ${threads} threads ${m[all].toFixed(0)} ms (${list(rows[all])}): ${(m[one] / m[all]).toFixed(2)}× one thread`);
      }
    }
  }
  console.log(JSON.stringify({ steps: STEPS, rounds: ROUNDS, runs: RUNS, threads, machine, rows, medians: m }, null, 2));
} finally {
  await browser.close();
  await server.close();
  await other?.close();
  rmSync(tmp, { recursive: true, force: true });
}

/**
 * run.c built as above, but with its weights copied from the mapped checkpoint into anonymous
 * memory, which is what a wasm memory is: run.c reads them where the file is mapped, the page
 * cache, which Linux may hold in large folios (ext4 does since 6.x) while anonymous memory stays
 * on 4 KiB pages unless a program asks for huge ones (V8 does not). The same work on the same
 * kind of memory as the page; the plain run.c stays the named peer.
 */
function buildRunCAnon(src, out) {
  const from = 'float* weights_ptr = *data + sizeof(Config)/sizeof(float);';
  const to = 'float* copy = mmap(NULL, *file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);' +
    ' if (copy == MAP_FAILED) { exit(EXIT_FAILURE); } memcpy(copy, *data, *file_size);' +
    ' float* weights_ptr = copy + sizeof(Config)/sizeof(float);';
  const code = readFileSync(src, 'utf8');
  if (!code.includes(from)) throw new Error(`${src}: read_checkpoint's weights line not found; cannot build the anonymous-memory run.c`);
  const patched = join(tmp, 'run_anon.c');
  writeFileSync(patched, code.replace(from, to));
  execFileSync('cc', ['-Ofast', '-fopenmp', '-march=native', patched, '-lm', '-o', out]);
  return out;
}

/** Adds `lora_ms_1`/`_all` (the Train view's estimate) and `lora_run_ms_1`/`_all` (a run's steady
 * step), and OTHER's `other_…`, alternating thread counts and builds. */
async function loraRows(rows, threads) {
  tinylm(['make-model', '--shape', 's15m', '-o', join(tmp, 'lora-s15m.bin')]);
  const files = {
    'models/s15m.bin': join(tmp, 'lora-s15m.bin'),
    'models/tok32000.bin': sharedPath('tokenizers/llama2/tokenizer.bin'),
  };
  const sites = [[await startServer('/', files), '']];
  if (OTHER) sites.push([await serve(OTHER, 0, '127.0.0.1', '/', files), 'other_']);
  try {
    for (const [site, name] of sites) {
      // The first visit's reload, so the pages below are isolated.
      const first = await browser.context.newPage();
      await first.goto(site.url);
      await first.waitForFunction(() => self.crossOriginIsolated, null, { timeout: 60_000 });
      await first.close();
      for (const kind of ['lora_ms', 'lora_run_ms']) for (const n of ['1', 'all']) rows[`${name}${kind}_${n}`] = [];
    }
    for (let r = 0; r < ROUNDS; r++) {
      for (const [site, name] of sites) {
        for (const [n, count] of [['1', 1], ['all', threads]]) {
          const { estimate, run } = await loraStepMs(browser, site.url, count);
          rows[`${name}lora_ms_${n}`].push(estimate);
          rows[`${name}lora_run_ms_${n}`].push(run);
        }
      }
    }
  } finally {
    for (const [site] of sites) await site.close();
  }
}
