// Times rows.wasm (rows.rs, built with a shared memory) under Node on s15m's classifier shape,
// 32000 × 288 f32 in the wasm memory (anonymous 4 KiB pages, as in the page), its rows split
// between THREADS worker threads as the pool splits them (each thread streams its own half):
// prints ms per product and GB/s, as rows.c does.
//   node run.mjs rows.wasm [THREADS]
import { readFileSync } from 'node:fs';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const n = 288, nrows = 32000, R = 300;
const x = 1 << 16, out = x + 4 * n, w = out + 4 * nrows + 64;

if (isMainThread) {
  const threads = Number(process.argv[3] ?? 1);
  const memory = new WebAssembly.Memory({ initial: 1024, maximum: 4096, shared: true });
  const f = new Float32Array(memory.buffer);
  for (let i = 0; i < n; i++) f[x / 4 + i] = i * 0.01;
  for (let i = 0; i < n * nrows; i++) f[w / 4 + i] = (i % 7) * 0.1;
  const module = await WebAssembly.compile(readFileSync(process.argv[2]));
  const ready = new SharedArrayBuffer(4);
  const workers = [...Array(threads)].map(
    (_, k) => new Worker(new URL(import.meta.url), { workerData: { module, memory, k, threads, ready } }),
  );
  const ms = Math.max(...(await Promise.all(workers.map((t) => new Promise((done) => t.on('message', done))))));
  console.log(`wasm ${ms.toFixed(3)} ms ${((4 * n * nrows) / ms / 1e6).toFixed(1)} GB/s`);
  await Promise.all(workers.map((t) => t.terminate()));
} else {
  const { module, memory, k, threads, ready } = workerData;
  const { exports } = await WebAssembly.instantiate(module, { env: { memory } });
  const per = nrows / threads;
  const mine = () => exports.rows(out + 4 * per * k, per, x, w + 4 * n * per * k, n);
  for (let i = 0; i < 300; i++) mine();
  // Every thread warmed up before any starts the clock.
  const count = new Int32Array(ready);
  Atomics.add(count, 0, 1);
  while (Atomics.load(count, 0) < threads);
  const t = performance.now();
  for (let i = 0; i < R; i++) mine();
  parentPort.postMessage((performance.now() - t) / R);
}
