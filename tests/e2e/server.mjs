// A tiny static file server for the built site (dist/), used by the browser tests and by
// scripts/serve.sh. Binds 127.0.0.1 only; port 0 picks a free port. Every response carries the
// page's own Content-Security-Policy (read from index.html), so the engine worker's scripts and
// fetches run under the same policy as the page.
import { createServer } from 'node:http';
import { createReadStream, readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.md': 'text/markdown; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.bin': 'application/octet-stream',
  '.safetensors': 'application/octet-stream',
};

/** The file a URL path names inside `root`, or null when it escapes `root`. */
function fileFor(root, urlPath) {
  let path;
  try {
    path = decodeURIComponent(urlPath.split('?')[0]);
  } catch {
    return null;
  }
  const full = normalize(join(root, path));
  return full === root || full.startsWith(root + sep) ? full : null;
}

/** The CSP of the page's meta tag, or null when there is none. */
function pageCsp(root) {
  try {
    const html = readFileSync(join(root, 'index.html'), 'utf8');
    return html.match(/http-equiv="Content-Security-Policy"\s+content="([^"]+)"/)?.[1] ?? null;
  } catch {
    return null;
  }
}

async function handle(root, prefix, extra, rewrite, req, res) {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { Allow: 'GET, HEAD' }).end();
    return;
  }
  const inside = req.url.startsWith(prefix);
  const rel = inside ? req.url.slice(prefix.length).split('?')[0] : null;
  const route = rel !== null ? extra[rel] : undefined;
  if (typeof route === 'function') {
    route(req, res);
    return;
  }
  let file = typeof route === 'string' ? route : inside ? fileFor(root, '/' + rel) : null;
  let info = file && (await stat(file).catch(() => null));
  if (info?.isDirectory()) {
    file = join(file, 'index.html');
    info = await stat(file).catch(() => null);
  }
  if (!info?.isFile()) {
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
    return;
  }
  const rewritten = rewrite && file.endsWith('index.html');
  res.writeHead(200, {
    'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
    ...(rewritten ? {} : { 'Content-Length': info.size }),
    'Cache-Control': 'no-cache',
    'X-Content-Type-Options': 'nosniff',
  });
  if (req.method === 'HEAD') res.end();
  else if (rewrite && file.endsWith('index.html')) res.end(rewrite(readFileSync(file, 'utf8')));
  else createReadStream(file).pipe(res);
}

/**
 * Starts serving `dir` under the URL path `prefix` (e.g. "/lab/" to mimic a sub-path deploy);
 * resolves to { url, close, hits }. `extra` maps paths below the prefix to a file on disk or to
 * a handler `(req, res) => …` (tests use it for generated models and broken downloads). `hits`
 * counts requests per path. `rewrite(text)`, when given, edits index.html and the CSP as served
 * (the shelf test points the hub's hosts at local servers, with one dist/).
 */
export function serve(dir, port = 0, host = '127.0.0.1', prefix = '/', extra = {}, { rewrite } = {}) {
  const root = resolve(dir);
  const page = pageCsp(root);
  const csp = page && rewrite ? rewrite(page) : page;
  const hits = new Map();
  const server = createServer((req, res) => {
    hits.set(req.url, (hits.get(req.url) ?? 0) + 1);
    if (csp) res.setHeader('Content-Security-Policy', csp);
    handle(root, prefix, extra, rewrite, req, res).catch(() => res.writeHead(500).end());
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      const { port: p } = server.address();
      ok({
        url: `http://${host}:${p}${prefix}`,
        hits,
        close: () => {
          server.closeAllConnections();
          return new Promise((done) => server.close(done));
        },
      });
    });
  });
}

// `node tests/e2e/server.mjs [dir] [port]`
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [dir = 'dist', port = '8080'] = process.argv.slice(2);
  const { url } = await serve(dir, Number(port));
  console.log(`Serving ${resolve(dir)} at ${url} (Ctrl-C to stop)`);
}
