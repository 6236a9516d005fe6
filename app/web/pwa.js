// Registers the service worker (sw.js) and offers a new version when one is waiting. An
// external file, so the page's CSP needs no inline script.
/**
 * A notice at the foot of the page, under any already there: its words and one button (role
 * status, so it is read out); the button runs `onClick`, or by default reloads the page.
 */
function notice({ id, testid, text, button, buttonTestid, onClick = () => location.reload() }) {
  const el = document.createElement('div');
  if (id) el.id = id;
  el.className = 'update';
  el.setAttribute('role', 'status');
  el.dataset.testid = testid;
  const words = document.createElement('span');
  words.textContent = text;
  const b = document.createElement('button');
  b.type = 'button';
  if (buttonTestid) b.dataset.testid = buttonTestid;
  b.textContent = button;
  b.onclick = onClick;
  el.append(words, b);
  notices().append(el);
  return el;
}

/** The stack the notices sit in at the page's foot, so two never cover each other. */
function notices() {
  let stack = document.getElementById('notices');
  if (!stack) {
    stack = document.createElement('div');
    stack.id = 'notices';
    stack.className = 'notices';
    document.body.append(stack);
  }
  return stack;
}

const banner = () => document.getElementById('update')
  ?? notice({ id: 'update', testid: 'update', text: 'New version — reload', button: 'Reload', buttonTestid: 'update-reload' });

/** Set when this page's Reload asked the waiting worker to take over. */
let accepted = false;

function offer(reg) {
  const waiting = reg.waiting;
  if (!waiting || !navigator.serviceWorker.controller) return;
  const el = banner();
  el.querySelector('button').onclick = () => {
    el.querySelector('button').disabled = true;
    accepted = true;
    waiting.postMessage({ type: 'skip-waiting' });
  };
}

/**
 * Another worker took this page without its Reload (another tab accepted a new version, or the
 * browser replaced the worker, as Chromium did once when this site's storage filled up): the
 * page keeps running what it loaded, since a reload now would drop a story, a training run or
 * a download in progress; it says so and reloads when the person chooses.
 */
function changedElsewhere() {
  document.getElementById('update')?.remove(); // its worker is the one that took over
  if (document.querySelector('[data-testid=changed-elsewhere]')) return;
  notice({
    testid: 'changed-elsewhere',
    text: 'This site’s offline copy changed while the page was open (a new version, or another tab). Reload when you are ready.',
    button: 'Reload',
    buttonTestid: 'changed-reload',
  });
}

/** Whether the person has pressed a key or pointed at anything on this page yet. */
let used = false;
for (const kind of ['pointerdown', 'keydown']) {
  window.addEventListener(kind, () => { used = true; }, { capture: true, once: true });
}

/** The one reload of a first visit that turns on the engine's threads (see below). */
const ISOLATE_KEY = 'tinylm.isolating';
function isolateOnce() {
  if (self.crossOriginIsolated || (navigator.hardwareConcurrency ?? 1) < 2) return;
  try {
    if (sessionStorage.getItem(ISOLATE_KEY)) return;
    sessionStorage.setItem(ISOLATE_KEY, '1');
  } catch {
    return; // Without session storage a reload could repeat: stay on one thread.
  }
  if (!used) {
    location.reload();
    return;
  }
  // Someone already started (a story, a download): a reload now would drop it, so offer it.
  notice({
    testid: 'isolate-offer',
    text: `Reload when you are ready: the engine then uses all ${navigator.hardwareConcurrency} CPU cores (it runs on one until then), and the site works offline.`,
    button: 'Reload',
    buttonTestid: 'isolate-reload',
  });
}

/** After that reload: a line saying why the page reloaded itself. */
function explainReload() {
  let reloaded = false;
  try {
    reloaded = sessionStorage.getItem(ISOLATE_KEY) === '1' && self.crossOriginIsolated;
    if (reloaded) sessionStorage.setItem(ISOLATE_KEY, 'done');
  } catch {
    return;
  }
  if (!reloaded) return;
  notice({
    testid: 'isolated-reload',
    text: 'The page reloaded once, on this first visit, so the engine can use several CPU cores. It works offline now too.',
    button: 'OK',
    onClick: (e) => e.currentTarget.parentElement.remove(),
  });
}

if ('serviceWorker' in navigator) {
  explainReload();
  // After the user accepts, the new worker takes control; reload once to run its files.
  let reloading = false;
  let hadController = !!navigator.serviceWorker.controller;
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    // The first install claims the page: nothing to reload for the files, but the page is not
    // yet cross-origin isolated (the headers come from this worker), so the engine runs on one
    // thread. Reload once, now, so it gets every core (issue 20); the page says so after.
    if (!hadController) {
      hadController = true;
      isolateOnce();
      return;
    }
    if (!accepted) {
      changedElsewhere();
      return;
    }
    if (!reloading) {
      reloading = true;
      location.reload();
    }
  });
  navigator.serviceWorker.register(new URL('sw.js', document.baseURI)).then((reg) => {
    offer(reg);
    // A page left open all day (a classroom) still hears of a new version.
    setInterval(() => reg.update().catch(() => {}), 60 * 60 * 1000);
    reg.addEventListener('updatefound', () => {
      const next = reg.installing;
      next?.addEventListener('statechange', () => {
        if (next.state === 'installed') offer(reg);
      });
    });
  }).catch((e) => console.warn('offline support unavailable:', e.message));
}
