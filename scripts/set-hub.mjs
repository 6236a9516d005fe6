#!/usr/bin/env node
// Points a built site at another model hub, or at none, at build time: rewrites DIR/shelf.json's
// "hub" and the Content-Security-Policy's connect-src in DIR/index.html together, so the list
// and the hosts the page may fetch from never disagree. Run by scripts/pwa-hook.sh (the Trunk
// post_build hook) before the service worker is stamped, when TINYLM_HUB is set:
//   TINYLM_HUB=none trunk build --release        # no hub: hub models dropped, connect-src 'self'
//   TINYLM_HUB=https://mirror.example.org TINYLM_HUB_HOSTS="https://mirror.example.org https://files.example.org" \
//     trunk build --release                      # a mirror and the hosts it redirects to
// Standalone: node scripts/set-hub.mjs DIR HUB|none [HOST...]
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The site's own hub hosts in connect-src, replaced by the override. */
const SITE_HOSTS = ['https://huggingface.co', 'https://*.hf.co'];

/** An http(s) origin, or a CSP host source with a leading "*." label; nothing else. */
function checkHost(h) {
  if (!/^https?:\/\/(\*\.)?[A-Za-z0-9.-]+(:\d+)?$/.test(h)) {
    throw new Error(`${JSON.stringify(h)} is not an http(s) host (e.g. https://mirror.example.org)`);
  }
  return h;
}

/**
 * The page (index.html's text) and the shelf list (parsed) pointed at `hub` ('none', or an
 * http(s) base URL) with `hosts` (default: the hub's origin) in connect-src. Throws in words.
 */
export function retarget({ page, shelf }, hub, hosts = []) {
  // The policy's directive (the page's comments mention connect-src too): it starts with 'self'.
  const csp = /connect-src ('self'[^;"]*)/.exec(page);
  if (!csp) throw new Error("the page has no connect-src 'self' … directive");
  const kept = csp[1].split(/\s+/).filter((s) => s && !SITE_HOSTS.includes(s));
  let sources;
  if (hub === 'none') {
    // Only models whose every file is a file of the site stay.
    shelf = { ...shelf, models: shelf.models.filter((m) => m.files.every((f) => f.site !== undefined)) };
    sources = kept;
  } else {
    let url = null;
    try { url = new URL(hub); } catch { /* said below */ }
    if (!url || !/^https?:$/.test(url.protocol)) throw new Error(`the hub ${JSON.stringify(hub)} is not an http:// or https:// address`);
    shelf = { ...shelf, hub: hub.replace(/\/+$/, '') };
    sources = [...kept, ...(hosts.length ? hosts.map(checkHost) : [url.origin])];
  }
  const connectSrc = [...new Set(sources)];
  return { page: page.replace(csp[0], `connect-src ${connectSrc.join(' ')}`), shelf, connectSrc };
}

/** Rewrites DIR/index.html and DIR/shelf.json in place. */
export function setHub(dir, hub, hosts = []) {
  const [pagePath, listPath] = [join(dir, 'index.html'), join(dir, 'shelf.json')];
  const r = retarget({ page: readFileSync(pagePath, 'utf8'), shelf: JSON.parse(readFileSync(listPath, 'utf8')) }, hub, hosts);
  writeFileSync(pagePath, r.page);
  writeFileSync(listPath, `${JSON.stringify(r.shelf, null, 2)}\n`);
  return r;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [dir, hub, ...hosts] = process.argv.slice(2);
  try {
    if (!dir || !hub) throw new Error('usage: node scripts/set-hub.mjs DIR HUB|none [HOST...]');
    const r = setHub(dir, hub, hosts);
    console.log(`set-hub: hub ${hub}; shelf models ${r.shelf.models.map((m) => m.name).join(', ')}; connect-src ${r.connectSrc.join(' ')}`);
  } catch (e) {
    console.error(`set-hub: ${e.message}`);
    process.exit(2);
  }
}
