// The benchmark page: starts the app's engine worker (worker_loader.js, or the threaded
// worker_mt_loader.js where the page is cross-origin isolated) once per configuration,
// asks it to time decoding (`{Bench: …}` in app/src/protocol/bench.rs, posted as a plain JS
// object: the worker's messages are typed JS values, not JSON text) and shows medians as a
// table and as JSON. tests/e2e/bench.mjs reads the JSON from #json once #status says "done".
const params = new URLSearchParams(location.search);
const num = (key, dflt) => {
  const v = Number(params.get(key));
  return Number.isInteger(v) && v > 0 ? v : dflt;
};
const list = (key, dflt) => (params.get(key) ?? dflt).split(',').map((s) => s.trim()).filter(Boolean);

const RUNS = num('runs', 5);
const MODELS = list('models', 'stories260K,s15m');
// cpu: the CPU on every thread the page may use (THREADS); cpu1: the CPU on one thread (the
// plain worker build), so the two figures come side by side. Where the page is not cross-origin
// isolated there is only one thread, and cpu1 is left out by default.
const ISOLATED = self.crossOriginIsolated === true;
const BACKENDS = list('backends', ISOLATED ? 'cpu1,cpu,webgpu' : 'cpu,webgpu');
const THREADS = ISOLATED ? num('threads', navigator.hardwareConcurrency || 1) : 1;
const STEPS = { stories260K: num('steps_260k', num('steps', 256)), other: num('steps_s15m', num('steps', 128)) };
const CHOICE = { cpu: 'Cpu', cpu1: 'Cpu', webgpu: 'WebGpu' };
/** The engine worker a configuration runs in, and its CPU threads. */
const engine = (backend) => (backend !== 'cpu1' && THREADS > 1
  ? { url: `worker_mt_loader.js?threads=${THREADS}`, threads: THREADS }
  : { url: 'worker_loader.js', threads: 1 });
// ?tune=1: before timing WebGPU, measure the decode kernels' workgroup shapes on this adapter
// (the worker keeps the result for later loads of a model of that shape).
const TUNE = params.get('tune') === '1';

const $ = (id) => document.getElementById(id);
const status = (text, state) => {
  $('status').textContent = text;
  $('status').dataset.state = state;
};

function machine() {
  const n = navigator;
  const brands = n.userAgentData?.brands?.map((b) => `${b.brand} ${b.version}`).join(', ');
  return {
    user_agent: n.userAgent,
    browser: brands || null,
    platform: n.userAgentData?.platform ?? n.platform ?? null,
    hardware_concurrency: n.hardwareConcurrency ?? null,
    device_memory_gb: n.deviceMemory ?? null,
    webgpu_api: 'gpu' in n,
    cross_origin_isolated: self.crossOriginIsolated ?? false,
  };
}

/** One configuration in a fresh worker (so a GPU device or big weights never outlive it). */
function benchOnce(model, backend, id) {
  const steps = model === 'stories260K' ? STEPS.stories260K : STEPS.other;
  const request = {
    Bench: {
      id,
      model: model === 'stories260K' ? 'Bundled' : { Shape: model },
      choice: CHOICE[backend] ?? 'Auto',
      steps,
      runs: RUNS,
      tune: TUNE && backend !== 'cpu',
    },
  };
  return new Promise((resolve, reject) => {
    const worker = new Worker(engine(backend).url);
    const done = (f, v) => {
      worker.terminate();
      f(v);
    };
    worker.onerror = (e) => done(reject, new Error(`the worker failed: ${e.message ?? e}`));
    worker.onmessage = (ev) => {
      const msg = ev.data;
      if (msg === 'Started') worker.postMessage(request);
      else if (msg.Progress) status(`${model} on ${backend}: ${msg.Progress.label}`, 'running');
      else if (msg.Benched) done(resolve, msg.Benched);
      else if (msg.BenchFailed) done(reject, new Error(msg.BenchFailed.message));
    };
  });
}

function row(r) {
  const tr = document.createElement('tr');
  const cells = [r.model, r.requested, r.backend, r.threads, r.steps, r.decode_tok_s.toFixed(1),
    r.runs.map((x) => x.toFixed(0)).join(' '), r.model_ms.toFixed(0), r.start_ms.toFixed(0)];
  cells.forEach((c, i) => {
    const td = document.createElement('td');
    td.textContent = String(c);
    if (i >= 3) td.className = 'num';
    tr.append(td);
  });
  return tr;
}

const shape = (s) => `${s.x}x${s.y}`;
const us = (v) => (v == null ? '-' : v.toFixed(1));

/** The tuning's per-candidate table (median µs per dispatch) under #tuning. */
function showTuning(model, t) {
  const section = $('tuning');
  section.hidden = false;
  const p = document.createElement('p');
  p.textContent = `${model}: ${t.elapsed_ms.toFixed(0)} ms of a ${t.budget_ms.toFixed(0)} ms budget${t.cut ? ' (cut)' : ''}; ` +
    `chosen: layers ${shape(t.workgroups.layers)}, classifier ${shape(t.workgroups.classifier)}, attention ${t.workgroups.attention}` +
    (t.note ? `. ${t.note}` : '');
  const table = document.createElement('table');
  const head = table.createTHead().insertRow();
  for (const h of ['shape', 'classifier µs', 'layer µs', 'attention µs', 'samples']) {
    const th = document.createElement('th');
    th.textContent = h;
    head.append(th);
  }
  const body = table.createTBody();
  const rows = t.matvec.map((m) => [shape(m.shape), us(m.classifier_us), us(m.layer_us), '', m.samples])
    .concat(t.attention.map((a) => [`${a.lanes} lanes`, '', '', us(a.us), a.samples]));
  for (const cells of rows) {
    const tr = body.insertRow();
    cells.forEach((c, i) => {
      const td = tr.insertCell();
      td.textContent = String(c);
      if (i > 0) td.className = 'num';
    });
  }
  section.append(p, table);
}

async function runAll() {
  $('run').disabled = true;
  const body = $('table').querySelector('tbody');
  body.replaceChildren();
  const m = machine();
  $('machine').textContent = `${m.browser ?? m.user_agent}; ${m.platform}; ${m.hardware_concurrency} logical cores; ${ISOLATED ? `cross-origin isolated, CPU on ${THREADS} thread(s)` : 'not cross-origin isolated: the CPU runs on one thread (open the lab once so its service worker can isolate this page)'}`;
  const out = { page: 'bench', date: new Date().toISOString(), machine: m, runs: RUNS, results: [], errors: [] };
  let id = 0;
  for (const backend of BACKENDS) {
    for (const model of MODELS) {
      status(`${model} on ${backend}…`, 'running');
      try {
        const r = await benchOnce(model, backend, ++id);
        const result = {
          model: r.model, requested: backend, kind: r.kind === 'WebGpu' ? 'webgpu' : 'cpu', backend: r.backend,
          threads: r.kind === 'WebGpu' ? null : engine(backend).threads,
          detail: r.detail, steps: r.steps, runs: r.runs, decode_tok_s: r.median_tok_s,
          model_ms: r.model_ms, start_ms: r.start_ms, workgroups: r.workgroups ?? null, tuning: r.tuning ?? null,
        };
        if (r.tuning) showTuning(r.model, r.tuning);
        out.results.push(result);
        body.append(row(result));
      } catch (e) {
        out.errors.push({ model, requested: backend, message: String(e.message ?? e) });
      }
    }
  }
  $('json').textContent = JSON.stringify(out, null, 2);
  if (out.errors.length) status(`Finished with ${out.errors.length} error(s): ${out.errors.map((e) => e.message).join('; ')}`, 'error');
  else status(`Done: ${out.results.length} configurations, medians of ${RUNS} runs.`, 'done');
  $('run').disabled = false;
}

$('run').addEventListener('click', runAll);
runAll();
