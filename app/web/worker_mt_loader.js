// The threaded engine worker's loader (issue 20; the page starts it instead of Trunk's
// worker_loader.js only where it is cross-origin isolated). It starts the threaded build
// (worker_mt.js, scripts/threads-build.sh), makes the engine's CPU pool of `?threads=N`
// threads and starts N − 1 Web Workers (pool_thread.js) on the same module and shared memory.
// The pool is the engine's at once: until a thread is up, the engine's own thread does its
// share, so nothing waits for them.
importScripts('./worker_mt.js');

(async () => {
  const asked = Number(new URL(self.location.href).searchParams.get('threads'));
  const threads = Number.isInteger(asked) && asked > 0 ? asked : navigator.hardwareConcurrency || 1;
  const module = await WebAssembly.compileStreaming(fetch('./worker_mt_bg.wasm'));
  // The glue makes the shared memory; its start function starts the engine (it listens now).
  const exports = await wasm_bindgen({ module_or_path: module });
  const handle = wasm_bindgen.pool_start(threads);
  wasm_bindgen.pool_install(handle);
  for (let i = 1; i < threads; i++) {
    const thread = new Worker(new URL('pool_thread.js', self.location.href), { name: `tinylm-cpu-${i}` });
    thread.onerror = (e) => console.warn(`CPU thread ${i} stopped: ${e.message ?? e}`);
    thread.postMessage({ module, memory: exports.memory, handle });
  }
})();
