// Starts the app. Lives in its own file so the page's CSP needs no 'unsafe-inline':
// Trunk writes the hashed names of the wasm-bindgen module and the wasm into data attributes.
const tag = document.querySelector('script[data-wasm][data-js]');
const base = document.baseURI;
// The engine worker starts first, so its wasm and the bundled model (which the worker asks for
// at once) download and compile while the page's own wasm does; the page adopts this worker
// (app/src/page/client.rs `Client::start`). What it says before then is kept and handed over.
// The engine on every core where the page may share memory between threads (issue 20): the
// threaded worker build, with the thread count from the page's ?threads=N, else the CPU threads
// setting (localStorage, the Generate view's menu), else every core the browser reports. Where
// the page is not cross-origin isolated (its service worker is not running yet, or cannot), the
// plain build runs on one thread and says why. Client::start (app/src/page/client.rs) and
// restarts use the same file.
const threads = (() => {
  const pick = (v) => (Number.isInteger(Number(v)) && Number(v) > 0 ? Number(v) : null);
  let kept = null;
  try {
    kept = localStorage.getItem('tinylm.threads');
  } catch {
    // Storage blocked: the default.
  }
  return pick(new URLSearchParams(location.search).get('threads')) ?? pick(kept) ?? navigator.hardwareConcurrency ?? 1;
})();
// The count travels on the URL (the plain worker reads it too, to say why it runs one thread).
globalThis.tinylmWorkerUrl = `${self.crossOriginIsolated && threads > 1 ? 'worker_mt_loader.js' : 'worker_loader.js'}?threads=${threads}`;
try {
  const worker = new Worker(new URL(globalThis.tinylmWorkerUrl, base));
  const early = [];
  const keep = (e) => early.push(e);
  worker.addEventListener('message', keep);
  worker.addEventListener('error', keep);
  globalThis.tinylmEarlyWorker = {
    worker,
    /** Called once the page listens: its listeners get what came before, in order. */
    adopt() {
      worker.removeEventListener('message', keep);
      worker.removeEventListener('error', keep);
      for (const e of early) {
        worker.dispatchEvent(e.type === 'message' ? new MessageEvent('message', { data: e.data }) : new ErrorEvent('error', { message: e.message }));
      }
    },
  };
} catch {
  // Workers blocked: the page says so when it tries again.
}
const { default: init } = await import(new URL(tag.dataset.js, base).href);
await init({ module_or_path: new URL(tag.dataset.wasm, base) });
// For the benchmark's breakdown of the time to ready (tests/e2e/bench.mjs).
performance.mark('tinylm:page-started');
