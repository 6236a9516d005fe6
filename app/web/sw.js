// TinyLM Lab's service worker. scripts/pwa-hook.sh writes the two constants below at build
// time: VERSION is a hash of every built file, FILES the files to precache (paths relative to
// this script, which sits at the site's root, so any sub-path works).
const VERSION = '__VERSION__';
const FILES = __FILES__;

const SHELL = `tinylm-shell-${VERSION}`;
// Models fetched from this site at run time (not part of the build) live apart from the app
// and survive updates.
const MODELS = 'tinylm-models';
const ROOT = new URL('./', self.location).href;

self.addEventListener('install', (event) => {
  // No skipWaiting here: a new version waits until the page asks (see pwa.js), so one page
  // never mixes files of two versions.
  event.waitUntil(
    caches.open(SHELL).then((cache) =>
      cache.addAll(FILES.map((f) => new Request(new URL(f, ROOT), { cache: 'reload' })))),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) {
      if (key.startsWith('tinylm-shell-') && key !== SHELL) await caches.delete(key);
    }
    // The first install takes the open page at once (same files it loaded from the network).
    await self.clients.claim();
  })());
});

self.addEventListener('message', (event) => {
  if (event.data?.type === 'skip-waiting') self.skipWaiting();
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET' || !req.url.startsWith(ROOT)) return;
  const path = new URL(req.url).pathname.slice(new URL(ROOT).pathname.length);
  if (req.mode === 'navigate' || FILES.includes(path)) {
    event.respondWith(fromShell(req, path));
  } else if (path.startsWith('models/')) {
    event.respondWith(modelFile(event, req));
  }
});

/** Cache first: the precached file of this version; pages map to index.html. */
async function fromShell(req, path) {
  const cache = await caches.open(SHELL);
  const key = req.mode === 'navigate' && !FILES.includes(path) ? new URL('index.html', ROOT).href : req;
  return isolated((await cache.match(key, { ignoreSearch: true })) ?? (await fetch(req)));
}

/**
 * The site's own files with the two headers that make the page cross-origin isolated, so the
 * engine may share memory between its CPU threads (issue 20). Static hosts such as GitHub Pages
 * cannot set headers; this worker answers every shell request, so it sets them. Every file is
 * same-origin, and models from other hosts are fetched with CORS, so require-corp blocks nothing.
 */
function isolated(resp) {
  if (resp.type === 'opaque' || resp.type === 'opaqueredirect' || resp.status === 0) return resp;
  const headers = new Headers(resp.headers);
  headers.set('Cross-Origin-Opener-Policy', 'same-origin');
  headers.set('Cross-Origin-Embedder-Policy', 'require-corp');
  return new Response(resp.body, { status: resp.status, statusText: resp.statusText, headers });
}

/** Network first, so a changed model file is seen online; the last good copy offline. */
async function modelFile(event, req) {
  const cache = await caches.open(MODELS);
  try {
    const resp = await fetch(req);
    if (resp.status === 200) event.waitUntil(cache.put(req, resp.clone()).catch(() => {}));
    return resp;
  } catch (err) {
    const copy = await cache.match(req, { ignoreSearch: true });
    if (copy) return copy;
    throw err;
  }
}
