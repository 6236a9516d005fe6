// Starts the app. Lives in its own file so the page's CSP needs no 'unsafe-inline':
// Trunk writes the hashed names of the wasm-bindgen module and the wasm into data attributes.
const tag = document.querySelector('script[data-wasm][data-js]');
const base = document.baseURI;
// The engine worker starts first, so its wasm and the bundled model (which the worker asks for
// at once) download and compile while the page's own wasm does; the page adopts this worker
// (app/src/page/client.rs `Client::start`). What it says before then is kept and handed over.
try {
  const worker = new Worker(new URL('worker_loader.js', base));
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
