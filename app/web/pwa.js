// Registers the service worker (sw.js) and offers a new version when one is waiting. An
// external file, so the page's CSP needs no inline script.
const banner = () => {
  let el = document.getElementById('update');
  if (el) return el;
  el = document.createElement('div');
  el.id = 'update';
  el.className = 'update';
  el.setAttribute('role', 'status');
  el.dataset.testid = 'update';
  const text = document.createElement('span');
  text.textContent = 'New version — reload';
  const button = document.createElement('button');
  button.type = 'button';
  button.dataset.testid = 'update-reload';
  button.textContent = 'Reload';
  el.append(text, button);
  document.body.append(el);
  return el;
};

function offer(reg) {
  const waiting = reg.waiting;
  if (!waiting || !navigator.serviceWorker.controller) return;
  const el = banner();
  el.querySelector('button').onclick = () => {
    el.querySelector('button').disabled = true;
    waiting.postMessage({ type: 'skip-waiting' });
  };
}

if ('serviceWorker' in navigator) {
  // After the user accepts, the new worker takes control; reload once to run its files.
  let reloading = false;
  let hadController = !!navigator.serviceWorker.controller;
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    // The first install claims the page: nothing to reload.
    if (!hadController) {
      hadController = true;
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
