// Deploying with absolute URLs (README: "`trunk build --public-url /some/sub/path/` also works if
// you prefer absolute URLs"): a release build with `--public-url /abs/path/` into a folder of its
// own, served under that path, loads the engine and writes the reference story, with every
// request inside /abs/path/ and the service worker scoped there. (The relative build in dist/ is
// tested everywhere else, at the root and under sub-paths.) Needs trunk on PATH, as
// scripts/test.sh sets it. The build reuses what `trunk build --release` made for dist/: cargo's
// release build (`--cargo-profile release`) and the threaded worker (TINYLM_THREADS_FROM, copied by
// the post-build hook); without `--release` Trunk skips wasm-opt, which changes no URL. So only
// wasm-bindgen and the hooks run again: 2 s instead of 2 minutes.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DIST, REPO, generate, launchBrowser, openApp, readShared, waitForState } from './helpers.mjs';
import { serve } from './server.mjs';

const PREFIX = '/abs/path/';
const greedy256 = readShared('reference/stories260K_greedy_256.txt').replace(/\n$/, '');

describe('a build with --public-url /abs/path/', () => {
  const out = mkdtempSync(join(tmpdir(), 'tinylm-abs-'));
  let server;
  let browser;
  before(() => {
    const path = [join(REPO, 'node_modules/.bin'), join(homedir(), '.cargo/bin'), process.env.PATH].join(':');
    execFileSync('trunk', ['build', '--cargo-profile', 'release', '--offline', '--public-url', PREFIX, '--dist', out], {
      cwd: REPO, env: { ...process.env, PATH: path, TINYLM_THREADS_FROM: DIST }, stdio: ['ignore', 'ignore', 'inherit'], timeout: 900_000,
    });
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    rmSync(out, { recursive: true, force: true });
  });

  test('every URL in the page is absolute under the prefix, and the site works there', async () => {
    assert.ok(existsSync(join(out, 'index.html')) && existsSync(join(out, 'sw.js')), 'built, with the service worker');
    // Trunk's URLs (engine, styles, icon) are absolute under the prefix; the page's own links
    // (manifest, pwa.js) stay relative, which resolves under the prefix too.
    const html = readFileSync(join(out, 'index.html'), 'utf8');
    const urls = [...html.matchAll(/(?:src|href|data-js|data-wasm)="([^"]+)"/g)].map((m) => m[1]);
    for (const u of urls) assert.ok(new URL(u, `http://site${PREFIX}`).pathname.startsWith(PREFIX), `${u} leaves ${PREFIX}`);
    const generated = urls.filter((u) => /boot\.js|app-|\.css|favicon/.test(u));
    assert.ok(generated.length >= 7, generated.join(' '));
    for (const u of generated) assert.ok(u.startsWith(PREFIX), `${u} is not absolute under ${PREFIX}`);

    server = await serve(out, 0, '127.0.0.1', PREFIX);
    browser = await launchBrowser();
    const { page, log } = await openApp(browser.context, server.url);
    assert.equal(new URL(server.url).pathname, PREFIX);
    const r = await generate(page, { temperature: 0, topp: 0.9, seed: 1, steps: 256 });
    assert.equal(r.state, 'done', r.status);
    assert.equal(r.text, greedy256);
    assert.equal(await waitForState(page, ['done']), 'done');
    const outside = log.requests.filter((u) => !new URL(u).pathname.startsWith(PREFIX));
    assert.deepEqual(outside, [], 'requests outside the prefix');
    assert.ok(log.requests.some((u) => new URL(u).pathname === `${PREFIX}worker_bg.wasm`), 'the engine came from the prefix');
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 60_000 });
    const scope = await page.evaluate(async () => (await navigator.serviceWorker.getRegistration()).scope);
    assert.equal(new URL(scope).pathname, PREFIX);
    assert.deepEqual(log.errors, [], 'console errors');
    await page.close();
  });
});
