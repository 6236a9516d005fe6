// The offline app: service worker, web app manifest, update prompt and on-device storage, in
// headless Chromium. "Offline" here means the browser context is offline AND the static server
// is shut down, so nothing can come from the network.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  DIST, REPO, bundledPath, cspViolations, generate, launchBrowser, openApp, readShared, screenshot,
  sharedPath, startServer, waitForAsync, waitForState, withSite,
} from './helpers.mjs';
import { serve } from './server.mjs';

const greedy256 = readShared('reference/stories260K_greedy_256.txt').replace(/\n$/, '');
const GREEDY = { temperature: 0, topp: 0.9, seed: 1, steps: 256 };
const ADAPTER = sharedPath('reference/stories260K_lora_qv_r4/adapter_final');

/** Resolves once the service worker controls the page (its precache is then complete). */
async function waitForSw(page) {
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 60_000 });
}

/** The cache names of this origin. */
const cacheKeys = (page) => page.evaluate(() => caches.keys());

/** What the storage manifest in OPFS lists, and the item folders on disk. */
async function opfs(page) {
  return page.evaluate(async () => {
    const root = await (await navigator.storage.getDirectory()).getDirectoryHandle('tinylm', { create: true });
    const items = await root.getDirectoryHandle('items', { create: true });
    const folders = [];
    for await (const name of items.keys()) folders.push(name);
    let manifest = { entries: [] };
    try {
      manifest = JSON.parse(await (await (await root.getFileHandle('manifest.json')).getFile()).text());
    } catch {}
    return { entries: manifest.entries, folders };
  });
}

/** Shows the Storage panel (a tab when the page has tabs). */
async function openStorage(page) {
  const tab = page.locator('[data-testid=tab-storage]');
  if (await tab.count()) await tab.click();
  await page.waitForSelector('[data-testid=storage]');
}

async function openGenerate(page) {
  const tab = page.locator('[data-testid=tab-generate]');
  if (await tab.count()) await tab.click();
}

const statusStarts = (page, text) => page.waitForFunction(
  (t) => document.querySelector('[data-testid=status]')?.textContent.startsWith(t), text, { timeout: 30_000 });

/**
 * First visit online, then the same page offline: it loads and writes the reference story. A
 * model loaded from the site (not part of the build) comes back offline from the model cache.
 */
async function offlineRoundTrip(prefix) {
  return withSite({ prefix, extra: { 'models/extra.bin': bundledPath('stories260K.bin') } }, async ({ server, browser }) => {
    const { page } = await openApp(browser.context, server.url);
    assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
    await waitForSw(page);
    assert.equal(new URL(await page.evaluate(() => navigator.serviceWorker.controller.scriptURL)).pathname, `${prefix}sw.js`);
    await page.fill('[data-testid=model-url]', 'models/extra.bin');
    await page.fill('[data-testid=tokenizer-url]', 'models/tok512.bin');
    await page.click('[data-testid=load-url]');
    await statusStarts(page, 'Ready: extra');
    await server.close();
    await browser.context.setOffline(true);
    await page.reload();
    // The tab remembers models from the site: extra.bin is loaded again, from the model cache.
    await statusStarts(page, 'Ready: extra');
    const cached = await page.evaluate(async () => (await (await caches.open('tinylm-models')).keys()).map((r) => r.url));
    assert.deepEqual(cached.map((u) => new URL(u).pathname), [`${prefix}models/extra.bin`]);
    const r = await generate(page, GREEDY);
    assert.equal(r.state, 'done', r.status);
    assert.equal(r.text, greedy256);
    assert.deepEqual(await cspViolations(page), [], 'CSP violations');
    const keys = await cacheKeys(page);
    assert.equal(keys.filter((k) => k.startsWith('tinylm-shell-')).length, 1, keys.join(' '));
    return page;
  });
}

describe('offline app (service worker, manifest, storage)', () => {
  test('after one visit the app works offline at / and writes the greedy reference story', async () => {
    await offlineRoundTrip('/');
  });

  test('under a sub-path (/some/sub/path/) too, offline included', async () => {
    await offlineRoundTrip('/some/sub/path/');
  });

  test('a picked model and an uploaded adapter are still there after a browser restart, offline', async () => {
    const profile = mkdtempSync(join(tmpdir(), 'tinylm-pwa-profile-'));
    const files = mkdtempSync(join(tmpdir(), 'tinylm-pwa-files-'));
    const model = join(files, 'mystory.bin');
    copyFileSync(bundledPath('stories260K.bin'), model);
    const server = await startServer();
    let browser = await launchBrowser({ profile });
    try {
      let { page } = await openApp(browser.context, server.url);
      assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
      await waitForSw(page);
      await page.setInputFiles('[data-testid=files]', [model, bundledPath('tok512.bin')]);
      await page.waitForFunction(() => document.querySelector('[data-testid=status]')?.textContent.startsWith('Ready: mystory'));
      await waitForAsync(page, async () => {
        const root = await (await navigator.storage.getDirectory()).getDirectoryHandle('tinylm', { create: true });
        try {
          return JSON.parse(await (await (await root.getFileHandle('manifest.json')).getFile()).text()).entries.length === 1;
        } catch {
          return false;
        }
      }, null, { timeout: 30_000 });
      await openStorage(page);
      await page.setInputFiles('[data-testid=adapter-files]',
        [join(ADAPTER, 'adapter_config.json'), join(ADAPTER, 'adapter_model.safetensors')]);
      await page.waitForSelector('[data-testid=stored-item][data-kind=adapter]');
      const stored = await opfs(page);
      const entry = stored.entries.find((e) => e.kind === 'model');
      assert.equal(entry.name, 'mystory.bin');
      const sha = (p) => execFileSync('sha256sum', [p]).toString().split(' ')[0];
      assert.deepEqual(entry.files.map((f) => [f.name, f.size, f.sha256]), [
        ['mystory.bin', 1056540, sha(model)],
        ['tok512.bin', 6227, sha(bundledPath('tok512.bin'))],
      ]);
      const adapter = stored.entries.find((e) => e.kind === 'adapter');
      assert.equal(adapter.files[1].sha256, sha(join(ADAPTER, 'adapter_model.safetensors')));

      // Close the browser and the server; reopen the same profile offline.
      await browser.close();
      await server.close();
      browser = await launchBrowser({ profile });
      await browser.context.setOffline(true);
      ({ page } = await openApp(browser.context, server.url));
      assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
      await openStorage(page);
      const items = page.locator('[data-testid=stored-item]');
      await items.first().waitFor();
      assert.deepEqual(await items.evaluateAll((els) => els.map((e) => [e.dataset.kind, e.dataset.name])), [
        ['model', 'mystory.bin'],
        ['adapter', 'adapter_config.json + adapter_model.safetensors'],
      ]);
      // The usage figure says what the list holds (the stored files' bytes, in words::size's
      // form) and what the rest is.
      const listed = stored.entries.flatMap((e) => e.files).reduce((a, f) => a + f.size, 0);
      const mb = `${(listed / 1e6).toFixed(2)} MB`;
      assert.match(await page.textContent('[data-testid=storage-estimate]'),
        new RegExp(`^This site uses .+ of the .+ the browser allows it \\(.+%\\): ${mb.replace('.', '\\.')} for what is listed below, and about .+ for the lab's own files \\(its program and built-in models\\), kept so it works offline\\.$`));
      // "Keep offline" says what the browser answered: first its own answer (read back with
      // navigator.storage.persisted()), then, from a stubbed persist(), the other answer and a
      // refusal, each in its own words.
      const GRANTED = "Kept offline: the browser will not clear this site's files to make room.";
      const NOT_GRANTED = /^Not granted: the browser may clear stored models when the disk is nearly full\. /;
      const keep = async (stub) => {
        const before = await page.textContent('[data-testid=persist-result]');
        if (stub) await page.evaluate(stub);
        await page.click('[data-testid=persist]');
        await page.waitForFunction((b) => {
          const t = document.querySelector('[data-testid=persist-result]')?.textContent ?? '';
          return t.length > 0 && t !== b;
        }, before);
        return page.textContent('[data-testid=persist-result]');
      };
      const first = await keep(null);
      const granted = await page.evaluate(() => navigator.storage.persisted());
      if (granted) assert.equal(first, GRANTED);
      else assert.match(first, NOT_GRANTED);
      await screenshot(page, 'storage-panel');
      const other = await keep(granted
        ? () => { StorageManager.prototype.persist = async () => false; }
        : () => { StorageManager.prototype.persist = async () => true; });
      if (granted) assert.match(other, NOT_GRANTED);
      else assert.equal(other, GRANTED);
      const refused = await keep(() => {
        StorageManager.prototype.persist = async () => { throw new DOMException('blocked by a policy', 'NotAllowedError'); };
      });
      assert.equal(refused, 'This browser cannot keep files for this site (blocked by a policy).');
      await page.click('[data-testid=stored-item][data-kind=model] [data-testid=stored-use]');
      await page.waitForSelector('[data-testid=storage-note]:has-text("Loading “mystory.bin” from this device.")');
      await openGenerate(page);
      await page.waitForFunction(() => document.querySelector('[data-testid=status]')?.textContent.startsWith('Ready: mystory'));
      const r = await generate(page, GREEDY);
      assert.equal(r.state, 'done', r.status);
      assert.equal(r.text, greedy256);
      // Loading it again does not store a second copy.
      assert.equal((await opfs(page)).entries.length, 2);

      // Delete removes the entry and its files.
      await openStorage(page);
      await page.click('[data-testid=stored-item][data-kind=adapter] [data-testid=stored-delete]');
      await page.waitForFunction(() => document.querySelectorAll('[data-testid=stored-item]').length === 1);
      const after = await opfs(page);
      assert.deepEqual(after.entries.map((e) => e.kind), ['model']);
      assert.deepEqual(after.folders, [entry.id]);
    } finally {
      await browser.close();
      await server.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
      rmSync(files, { recursive: true, force: true });
    }
  });

  test('a quota error while saving a model is explained and leaves no entry behind', async () => {
    await withSite({}, async ({ server, browser }) => {
      const { page } = await openApp(browser.context, server.url);
      assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
      // Test-only: the second write to OPFS (the tokenizer, after the model's bytes) is refused
      // as a full disk would be.
      await page.evaluate(() => {
        const write = FileSystemWritableFileStream.prototype.write;
        let calls = 0;
        FileSystemWritableFileStream.prototype.write = function (data) {
          calls += 1;
          if (calls === 2) return Promise.reject(new DOMException('The quota has been exceeded.', 'QuotaExceededError'));
          return write.call(this, data);
        };
      });
      await page.setInputFiles('[data-testid=files]', [bundledPath('stories260K.bin'), bundledPath('tok512.bin')]);
      await page.waitForFunction(() => document.querySelector('[data-testid=status]')?.dataset.state === 'error', null, { timeout: 30_000 });
      const status = await page.textContent('[data-testid=status]');
      assert.match(status, /^“stories260K\.bin” is loaded, but not saved on this device\. Not saved: the browser has no room for 1\.06 MB more for this site \(.+ of .+ used\)\. Delete stored models/);
      const stored = await opfs(page);
      assert.deepEqual(stored, { entries: [], folders: [] });
      // The model itself still works.
      const r = await generate(page, GREEDY);
      assert.equal(r.text, greedy256);
      await openStorage(page);
      await page.waitForSelector('[data-testid=stored-empty]');
    });
  });

  test('a new build shows "New version — reload"; accepting runs it and removes the old cache', async () => {
    const site = mkdtempSync(join(tmpdir(), 'tinylm-pwa-site-'));
    cpSync(DIST, site, { recursive: true });
    const server = await serve(site, 0, '127.0.0.1', '/');
    const browser = await launchBrowser();
    try {
      const { page } = await openApp(browser.context, server.url);
      assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
      await waitForSw(page);
      const [v1] = await cacheKeys(page);
      // "Deploy" a new build: one asset changes, the hook writes a new sw.js.
      const index = join(site, 'index.html');
      writeFileSync(index, readFileSync(index, 'utf8').replace('<title>TinyLM Lab</title>', '<title>TinyLM Lab v2</title>'));
      execFileSync('bash', [join(REPO, 'scripts/pwa-hook.sh'), site]);
      await page.reload();
      await page.waitForSelector('[data-testid=update]', { timeout: 60_000 });
      assert.equal(await page.textContent('[data-testid=update] span'), 'New version — reload');
      // Until accepted, the old version runs, whole.
      assert.equal(await page.title(), 'TinyLM Lab');
      await screenshot(page, 'update-prompt');
      const reloaded = page.waitForEvent('load');
      await page.click('[data-testid=update-reload]');
      await reloaded;
      await page.waitForFunction(() => document.title === 'TinyLM Lab v2');
      assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
      const keys = await cacheKeys(page);
      const shells = keys.filter((k) => k.startsWith('tinylm-shell-'));
      const version = readFileSync(join(site, 'sw.js'), 'utf8').match(/const VERSION = '([0-9a-f]+)'/)[1];
      assert.deepEqual(shells, [`tinylm-shell-${version}`]);
      assert.notEqual(shells[0], v1);
      assert.equal(await page.locator('[data-testid=update]').count(), 0);
    } finally {
      await browser.close();
      await server.close();
      rmSync(site, { recursive: true, force: true });
    }
  });

  test('a page in use is never reloaded under the person: the first visit offers its reload; a version taken in another tab is announced', async () => {
    const site = mkdtempSync(join(tmpdir(), 'tinylm-pwa-site-'));
    cpSync(DIST, site, { recursive: true });
    const server = await serve(site, 0, '127.0.0.1', '/');
    const browser = await launchBrowser({ isolateReload: true });
    const loads = (page) => {
      const n = { count: 0 };
      page.on('load', () => { n.count += 1; });
      return n;
    };
    try {
      // A key pressed as soon as the page loaded (someone already typing a prompt): when the
      // worker first takes the page, it offers the reload instead of doing it.
      await browser.context.addInitScript(() => window.addEventListener('load', () => window.dispatchEvent(new KeyboardEvent('keydown', { key: 'a' }))));
      const { page: a } = await openApp(browser.context, server.url);
      const aLoads = loads(a);
      await waitForSw(a);
      await a.waitForSelector('[data-testid=isolate-offer]', { timeout: 10_000 });
      const cores = await a.evaluate(() => navigator.hardwareConcurrency);
      assert.equal(await a.textContent('[data-testid=isolate-offer] span'),
        `Reload when you are ready: the engine then uses all ${cores} CPU cores (it runs on one until then), and the site works offline.`);
      assert.equal(aLoads.count, 0, 'not reloaded');
      assert.equal(await a.evaluate(() => self.crossOriginIsolated), false);
      assert.equal(await waitForState(a, ['ready', 'error']), 'ready');
      // The person's Reload: then isolated, as the automatic reload would have made it.
      await Promise.all([a.waitForEvent('load'), a.click('[data-testid=isolate-reload]')]);
      await a.waitForFunction(() => self.crossOriginIsolated, null, { timeout: 30_000 });
      assert.equal(await waitForState(a, ['ready', 'error']), 'ready');
      // Its "reloaded once" line stays open until the next notice below joins it.
      await a.waitForSelector('[data-testid=isolated-reload]');

      // A second tab; a new build; the second tab accepts it. The first keeps running what it
      // loaded (no reload), drops its own update offer and says what happened.
      const { page: b } = await openApp(browser.context, server.url);
      assert.equal(await waitForState(b, ['ready', 'error']), 'ready');
      const index = join(site, 'index.html');
      writeFileSync(index, readFileSync(index, 'utf8').replace('<title>TinyLM Lab</title>', '<title>TinyLM Lab v2</title>'));
      execFileSync('bash', [join(REPO, 'scripts/pwa-hook.sh'), site]);
      await b.reload();
      await b.waitForSelector('[data-testid=update]', { timeout: 60_000 });
      const before = aLoads.count;
      await Promise.all([b.waitForEvent('load'), b.click('[data-testid=update-reload]')]);
      await b.waitForFunction(() => document.title === 'TinyLM Lab v2');
      await a.waitForSelector('[data-testid=changed-elsewhere]', { timeout: 30_000 });
      assert.equal(await a.textContent('[data-testid=changed-elsewhere] span'),
        'This site’s offline copy changed while the page was open (a new version, or another tab). Reload when you are ready.');
      assert.equal(aLoads.count, before, 'the first tab was not reloaded');
      assert.equal(await a.title(), 'TinyLM Lab');
      assert.equal(await a.locator('[data-testid=update]').count(), 0, 'no offer of a version that already took over');
      // Two notices at once stack at the foot, neither covering the other.
      const [first, next] = await Promise.all(['isolated-reload', 'changed-elsewhere'].map((t) => a.locator(`[data-testid=${t}]`).boundingBox()));
      assert.ok(first.y + first.height <= next.y, `the notices overlap: ${JSON.stringify([first, next])}`);
      assert.ok(next.y + next.height <= a.viewportSize().height, 'the newest notice is on the screen');
      await screenshot(a, 'changed-elsewhere');
      await a.click('[data-testid=isolated-reload] button');
      assert.equal(await a.locator('[data-testid=isolated-reload]').count(), 0, 'OK closes the line');
      await Promise.all([a.waitForEvent('load'), a.click('[data-testid=changed-reload]')]);
      await a.waitForFunction(() => document.title === 'TinyLM Lab v2');
      assert.equal(await waitForState(a, ['ready', 'error']), 'ready');
    } finally {
      await browser.close();
      await server.close();
      rmSync(site, { recursive: true, force: true });
    }
  });

  test('the manifest is valid and Chromium finds the page installable', async () => {
    await withSite({ prefix: '/some/sub/path/' }, async ({ server, browser }) => {
      const { page, log } = await openApp(browser.context, server.url);
      assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
      await waitForSw(page);
      const manifest = JSON.parse(readFileSync(join(DIST, 'manifest.json'), 'utf8'));
      assert.equal(manifest.name, 'TinyLM Lab');
      assert.equal(manifest.start_url, './');
      assert.equal(manifest.display, 'standalone');
      // Each icon is a PNG of the size it claims (width and height from its IHDR).
      for (const icon of manifest.icons) {
        const png = readFileSync(join(DIST, icon.src));
        assert.equal(png.subarray(1, 4).toString(), 'PNG');
        assert.equal(`${png.readUInt32BE(16)}x${png.readUInt32BE(20)}`, icon.sizes);
      }
      assert.ok(manifest.icons.some((i) => i.purpose === 'maskable' && i.sizes === '512x512'));
      const cdp = await browser.context.newCDPSession(page);
      const app = await cdp.send('Page.getAppManifest');
      assert.deepEqual(app.errors, []);
      assert.equal(new URL(app.url).pathname, '/some/sub/path/manifest.json');
      const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
      assert.deepEqual(installabilityErrors, []);
      assert.deepEqual(await cspViolations(page), [], 'CSP violations');
      assert.deepEqual(log.errors, [], 'console errors');
    });
  });
});
