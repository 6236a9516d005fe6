// One CPU thread of the threaded engine worker (worker_mt_loader.js starts N − 1 of these): the
// same wasm module on the same shared memory, serving the engine's pool until the page closes.
importScripts('./worker_mt.js');

self.onmessage = ({ data: { module, memory, handle } }) => {
  // A thread's own stack (a multiple of 64 KiB); the kernels' tasks use little of it.
  wasm_bindgen.initSync({ module, memory, thread_stack_size: 1 << 20 });
  try {
    wasm_bindgen.pool_serve(handle);
  } catch (e) {
    // A trap inside a task: tell the engine, which would otherwise wait for that task for ever.
    wasm_bindgen.pool_thread_lost(handle);
    throw e;
  }
};
