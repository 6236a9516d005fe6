// The model shelf in the page, against a local "hub" on a second origin and its "file host" on a
// third (real HTTP: CORS, a redirect from the hub to the file host as Hugging Face does, Range, a
// connection cut midway, a 404, a wrong SHA-256, a cancel). The site's index.html
// and CSP are served with the hub's hosts replaced by the local ones (one dist/), and shelf.json
// by a test list whose model is a small real one (stories260K's v1 export, under another name).
// One browser, three page loads: the download, the link's reload with the hub gone, a link to a
// model not on the device. A second browser: a download cut by a reload and resumed (or
// discarded), and a store with no room left. (The words of the check before a download are
// tested natively, crate::shelf: this Chromium's navigator.storage.estimate() reports a static
// 10 GiB free and ignores DevTools' Storage.overrideQuotaForOrigin, so the browser test fills the
// real quota instead and meets the refusal of the write.)
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import {
  DIST, REPO, bundledPath, cspViolations, generate, launchBrowser, openApp, sharedPath, startServer, tinylm, waitForState, screenshot,
} from './helpers.mjs';
import { show } from './views.mjs';
import { retarget } from '../../scripts/set-hub.mjs';

const MODEL_PATH = sharedPath('models/stories260K.v1.bin');
const MODEL = readFileSync(MODEL_PATH);
const sha256 = (b) => createHash('sha256').update(b).digest('hex');
const SITE_SHELF = JSON.parse(readFileSync(`${REPO}/public/shelf.json`, 'utf8'));
const TOK = SITE_SHELF.models[0].files[1];
const CHUNK = 64 * 1024;
/** Sizes as the page writes them (words::size). */
const mb = (n) => `${(n / 1e6).toFixed(2)} MB`;
const DOWNLOAD = mb(MODEL.length + TOK.size);
const re = (text) => text.replace(/[.()]/g, (c) => `\\${c}`);
const SLOW_MS = 60;

/** Serves `handler` on a free 127.0.0.1 port; resolves to { origin, close }. */
function listen(handler) {
  const server = createServer(handler);
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok({
    origin: `http://127.0.0.1:${server.address().port}`,
    close: () => { server.closeAllConnections(); return new Promise((done) => server.close(done)); },
  })));
}

const CORS = { 'Access-Control-Allow-Origin': '*', 'Access-Control-Expose-Headers': 'Content-Range, Content-Length' };

/** Sends `body` from byte `from` in slow chunks; `cutAt` (bytes of the body) destroys the socket there. */
function stream(res, body, from, cutAt) {
  let at = from;
  const step = () => {
    if (res.destroyed) return;
    if (cutAt !== undefined && at >= cutAt) return res.socket.destroy();
    if (at >= body.length) return res.end();
    const end = Math.min(body.length, at + CHUNK, cutAt ?? Infinity);
    res.write(body.subarray(at, end));
    at = end;
    setTimeout(step, SLOW_MS);
  };
  step();
}

/**
 * The local hub and its file host. `plan.cuts[name]`: the first full request of that file is cut
 * after that many bytes; `plan.hold` (a Set of names): after such a cut, requests for the file get
 * no answer until the name leaves the set (a connection that went quiet).
 */
/** The site with `shelf` as its shelf.json; its CSP names the local hub and file host where
 * the site names huggingface.co and *.hf.co. */
function serveSite(shelf, hub, cdn) {
  const rewrite = (text) => retarget({ page: text, shelf: SITE_SHELF }, hub.origin, [hub.origin, cdn.origin]).page;
  return startServer('/', {
    'shelf.json': (req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(shelf)),
  }, { rewrite });
}

async function startHub(files, log, plan = {}) {
  const cuts = { ...plan.cuts };
  const cdn = await listen((req, res) => {
    log.cdn += 1;
    if (req.method === 'OPTIONS') {
      return res.writeHead(204, { ...CORS, 'Access-Control-Allow-Headers': 'Range' }).end();
    }
    const name = req.url.replace('/files/', '');
    const body = files[name];
    if (!body) return res.writeHead(404, CORS).end();
    const range = req.headers.range;
    if (plan.hold?.has(name) && cuts[name] === undefined) return log.held.push(`${name} ${range ?? '-'}`);
    log.ranges.push(`${name} ${range ?? '-'}`);
    const from = range ? Number(/bytes=(\d+)-/.exec(range)[1]) : 0;
    if (from > 0) {
      res.writeHead(206, { ...CORS, 'Content-Length': body.length - from, 'Content-Range': `bytes ${from}-${body.length - 1}/${body.length}` });
      return stream(res, body, from);
    }
    res.writeHead(200, { ...CORS, 'Content-Length': body.length });
    const cut = cuts[name];
    delete cuts[name];
    stream(res, body, 0, cut);
  });
  const hub = await listen((req, res) => {
    log.hub += 1;
    if (req.method === 'OPTIONS') {
      return res.writeHead(204, { ...CORS, 'Access-Control-Allow-Headers': 'Range' }).end();
    }
    const name = req.url.replace('/resolve/', '');
    if (!files[name]) return res.writeHead(404, CORS).end();
    // As the hub does: the file lives on another host.
    res.writeHead(302, { ...CORS, Location: `${cdn.origin}/files/${name}` }).end();
  });
  return { hub, cdn };
}

/** A shelf entry for the test model under `name`, its SHA-256 as `sha`. */
const entry = (name, sha, about) => ({
  name, title: name, about, params: 260032, memory: 1712000, licence: 'MIT', format: 'llama2.c',
  files: [{ role: 'model', path: `resolve/${name}.bin`, size: MODEL.length, sha256: sha }, TOK],
});

/** The names in this origin's OPFS folder `tinylm/partial` (downloads not finished), decoded. */
const partialNames = (page) => page.evaluate(async () => {
  const root = await (await navigator.storage.getDirectory()).getDirectoryHandle('tinylm', { create: true });
  const dir = await root.getDirectoryHandle('partial', { create: true });
  const out = [];
  for await (const name of dir.keys()) out.push(name.match(/../g).map((h) => String.fromCharCode(parseInt(h, 16))).join(''));
  return out;
});

describe('the model shelf in the page (a local hub, its file host, OPFS)', () => {
  const log = { ranges: [], held: [], hub: 0, cdn: 0 };
  let hub, cdn, site, browser;
  const files = { 'tiny260K.bin': MODEL, 'badhash.bin': MODEL };

  before(async () => {
    // The first full request of the real model is cut a little past halfway.
    ({ hub, cdn } = await startHub(files, log, { cuts: { 'tiny260K.bin': 9 * CHUNK + 1000 } }));
    const shelf = {
      hub: hub.origin,
      models: [
        SITE_SHELF.models[0],
        entry('tiny260K', sha256(MODEL), 'stories260K exported as llama2.c v1, served by the test hub.'),
        entry('badhash', '0'.repeat(64), 'The same bytes, with a SHA-256 that is not theirs.'),
        entry('gone', sha256(MODEL), 'Not on the hub (404).'),
        // The site's stories110M as listed: a big download without a SHA-256 yet.
        SITE_SHELF.models[3],
      ],
    };
    site = await serveSite(shelf, hub, cdn);
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await Promise.all([site, hub, cdn].map((s) => s?.close().catch(() => {})));
  });

  const item = (name) => `[data-testid=shelf-item][data-name=${name}]`;
  const offer = (page, name) => page.getAttribute(item(name), 'data-offer');
  const note = (page) => page.textContent('[data-testid=shelf-note]');
  const waitNote = (page, re) => page.waitForFunction(
    (src) => new RegExp(src).test(document.querySelector('[data-testid=shelf-note]')?.textContent ?? ''), re.source, { timeout: 60_000 })
    .catch(async (e) => assert.fail(`${re}: ${e.message}; the shelf says: ${await note(page)}`));
  const storedNames = async (page) => {
    await show(page, 'storage');
    await page.waitForSelector('[data-testid=stored-item], [data-testid=stored-empty]');
    const names = await page.$$eval('[data-testid=stored-item]', (els) => els.map((e) => e.dataset.name));
    await show(page, 'generate');
    return names;
  };
  const cliStory = tinylm(['generate', MODEL_PATH, '-z', bundledPath('tok512.bin'), '-t', '0', '-n', '64']).toString();
  const greedy = { prompt: '', temperature: 0, topp: 0.9, seed: 1, steps: 64 };

  test('download with progress, a cut resumed with Range, verified, stored, the same story; failures in words', async () => {
    const { page } = await openApp(browser.context, site.url);
    await waitForState(page, ['ready']);
    await page.waitForSelector(item('tiny260K'));
    // Before any download: the size and what is offered; a big one warned about; no SHA-256, no download.
    assert.equal(await offer(page, 'stories260K'), 'site');
    assert.equal(await offer(page, 'tiny260K'), 'download');
    assert.equal(await page.textContent(`${item('tiny260K')} [data-testid=shelf-download]`), `Download (${DOWNLOAD})`);
    assert.match(await page.textContent(item('stories110M')), /438\.82 MB download/);
    // Not offered yet: a plain note in the muted colour, no red big-download warning.
    assert.equal(await offer(page, 'stories110M'), 'unverified');
    assert.equal(await page.locator(`${item('stories110M')} [data-testid=shelf-big]`).count(), 0);
    const later = await page.locator(`${item('stories110M')} [data-testid=shelf-later]`).evaluate((el) => ({
      text: el.textContent, color: getComputedStyle(el).color, muted: getComputedStyle(el.closest('li').querySelector('.hint')).color,
    }));
    assert.equal(later.text, "Not offered yet: its download can't be checked.");
    assert.equal(later.color, later.muted, JSON.stringify(later));
    assert.doesNotMatch(await page.textContent(item('stories110M')), /SHA-256/);
    assert.equal(await page.locator(`${item('stories110M')} [data-testid=shelf-download]`).count(), 0);
    assert.equal(log.hub + log.cdn, 0, 'nothing is fetched from the hub before Download');

    // Cancel mid-way: a message, nothing stored.
    await page.click(`${item('badhash')} [data-testid=shelf-download]`);
    await page.waitForSelector(`${item('badhash')} [data-testid=shelf-progress]`);
    await page.click(`${item('badhash')} [data-testid=shelf-cancel]`);
    await waitNote(page, /cancelled; nothing was stored/);

    // The whole file, but not the list's SHA-256: a message, nothing stored.
    await page.click(`${item('badhash')} [data-testid=shelf-download]`);
    await waitNote(page, /SHA-256 is [0-9a-f]{64}, not the 0{64}.*removed and not stored/);
    assert.deepEqual(await partialNames(page), [], 'the damaged file is not kept');

    // The engine dies mid-download (as one out of memory would): the page restarts it, and the
    // card is freed with a word of why instead of showing progress that never comes.
    await page.click(`${item('badhash')} [data-testid=shelf-download]`);
    await page.waitForFunction((sel) => Number(document.querySelector(sel)?.value) > 0, `${item('badhash')} [data-testid=shelf-progress]`);
    const engines = page.workers();
    assert.equal(engines.length, 1, 'one engine worker');
    await engines[0].evaluate(() => { setTimeout(() => { throw new Error('simulated engine crash'); }); });
    await waitNote(page, /^The download of badhash stopped because the engine stopped\. What arrived is kept on this device: press Resume/);
    assert.equal(await page.locator(`${item('badhash')} [data-testid=shelf-progress]`).count(), 0);
    // What arrived stays for Resume; Discard removes it and offers the download again.
    await page.waitForSelector(`${item('badhash')} [data-testid=shelf-half]`);
    assert.deepEqual(await partialNames(page), ['badhash']);
    await page.click(`${item('badhash')} [data-testid=shelf-discard]`);
    await waitNote(page, /^The half-downloaded badhash was removed from this device\.$/);
    await page.waitForSelector(`${item('badhash')} [data-testid=shelf-download]`);
    assert.deepEqual(await partialNames(page), []);
    assert.match(await page.textContent('[data-testid=status]'), /engine stopped unexpectedly \(.*simulated engine crash/);

    // The real one: redirected to the file host, cut, resumed with Range, verified, stored, used.
    log.ranges.length = 0;
    await page.click(`${item('tiny260K')} [data-testid=shelf-download]`);
    await page.waitForSelector(`${item('tiny260K')} [data-testid=shelf-progress]`);
    const shown = await page.textContent(`${item('tiny260K')} [data-testid=shelf-progress-text]`);
    assert.match(shown, new RegExp(`^[\\d.]+ (KB|MB) of ${re(DOWNLOAD)} \\(\\d+ %\\)`));
    await page.waitForSelector(`${item('tiny260K')} [data-testid=shelf-resume]`);
    assert.match(await page.textContent(`${item('tiny260K')} [data-testid=shelf-resume]`), /cut at 591 KB; resuming/);
    await waitNote(page, /tiny260K arrived whole, matched its SHA-256 and is stored on this device/);
    assert.deepEqual(log.ranges, ['tiny260K.bin -', `tiny260K.bin bytes=${9 * CHUNK + 1000}-`], 'one cut, one resume from the byte it stopped at');
    await page.waitForFunction(() => /tiny260K — .*from the shelf, on this device/.test(
      document.querySelector('[data-testid=model-select] option:checked')?.textContent ?? ''), null, { timeout: 60_000 });
    await waitForState(page, ['ready']);
    assert.equal(await offer(page, 'tiny260K'), 'device');
    assert.equal(await page.textContent(`${item('tiny260K')} [data-testid=shelf-where]`), 'on this device');
    const story = await generate(page, greedy);
    assert.equal(story.state, 'done', story.status);
    assert.ok(story.text.length > 100 && cliStory.startsWith(story.text.trimEnd()), `page ${story.text} vs CLI ${cliStory}`);
    assert.deepEqual(await storedNames(page), ['tiny260K'], 'only the verified download is stored');
    assert.deepEqual(await partialNames(page), [], 'the stored files were moved out of the partial download');

    // Not on the hub: the 404 in words.
    await page.click(`${item('gone')} [data-testid=shelf-download]`);
    await waitNote(page, /gone\.bin: not found \(HTTP 404\)/);
    assert.deepEqual(await storedNames(page), ['tiny260K']);
    assert.deepEqual(await cspViolations(page), [], 'every hop of the redirect is allowed by the CSP');

    // The share link names the shelf model.
    await page.click('[data-testid=copy-link]');
    const link = await page.inputValue('[data-testid=link]');
    assert.match(link, /#model_shelf=tiny260K&/);
    await page.close();

    // With the hub and its file host gone, the link's page uses the stored copy: the same story.
    await Promise.all([hub.close(), cdn.close()]);
    const counts = log.hub + log.cdn;
    const again = await openApp(browser.context, link);
    await again.page.waitForFunction(() => /tiny260K — /.test(
      document.querySelector('[data-testid=model-select] option:checked')?.textContent ?? ''), null, { timeout: 60_000 });
    const offline = await generate(again.page, greedy);
    assert.equal(offline.text, story.text);
    assert.equal(log.hub + log.cdn, counts, 'no request to the hub');
    const elsewhere = again.log.requests.filter((u) => new URL(u).origin !== new URL(site.url).origin);
    assert.deepEqual(elsewhere, [], 'no request leaves the site');
    assert.deepEqual(await cspViolations(again.page), []);
    await again.page.close();
  });

  test('a link naming a shelf model that is not on this device offers it', async () => {
    const { page } = await openApp(browser.context, `${site.url}#model_shelf=badhash`);
    const want = `This link's story was written with badhash from the model shelf (${DOWNLOAD} to download)`;
    await page.waitForFunction((w) => document.querySelector('[data-testid=status]')?.textContent?.includes(w), want, { timeout: 60_000 })
      .catch(async (e) => assert.fail(`${e.message}; the status says: ${await page.textContent('[data-testid=status]')}`));
    assert.match(await page.getAttribute(item('badhash'), 'class'), /offered/);
    assert.equal(await note(page), '');
    await page.close();
  });
  test('a classroom bundle carries the stored shelf model to a fresh browser, checked by SHA-256', async () => {
    // The first test stored tiny260K in this profile; its hub is gone now.
    const { page } = await openApp(browser.context, site.url);
    await waitForState(page, ['ready']);
    await show(page, 'storage');
    await page.waitForSelector('[data-testid=stored-item]');
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=bundle-save]')]);
    assert.equal(dl.suggestedFilename(), 'tinylm-bundle.zip');
    const bundlePath = await dl.path();
    await page.waitForFunction(() => /^Saved tinylm-bundle\.zip \(.+\): “tiny260K”\./.test(
      document.querySelector('[data-testid=storage-note]')?.textContent ?? ''));
    await page.close();
    // Read with Python's zipfile (not the page's reader): the index and the files it lists.
    const listed = JSON.parse(execFileSync('python3', ['-c', `import zipfile, json, hashlib, sys
z = zipfile.ZipFile(sys.argv[1])
print(json.dumps({"names": z.namelist(), "index": json.loads(z.read("tinylm-bundle.json")),
  "sha": [hashlib.sha256(z.read(n)).hexdigest() for n in z.namelist()[1:]]}))`, bundlePath]).toString());
    assert.deepEqual(listed.names, ['tinylm-bundle.json', 'items/0/tiny260K.bin', 'items/0/tok512.bin']);
    const [bundled] = listed.index.items;
    assert.equal(listed.index.items.length, 1);
    assert.deepEqual([bundled.kind, bundled.name, bundled.meta.shelf], ['model', 'tiny260K', 'tiny260K']);
    assert.deepEqual(bundled.files.map((f) => [f.size, f.sha256]), [[MODEL.length, sha256(MODEL)], [TOK.size, TOK.sha256]]);
    assert.deepEqual(listed.sha, [sha256(MODEL), TOK.sha256]);

    // Another computer: a fresh profile, no hub. A damaged copy is refused with nothing added.
    const other = await launchBrowser();
    try {
      const { page: p2 } = await openApp(other.context, site.url);
      await waitForState(p2, ['ready']);
      await p2.waitForSelector(item('tiny260K'));
      assert.equal(await offer(p2, 'tiny260K'), 'download');
      await show(p2, 'storage');
      const damaged = readFileSync(bundlePath);
      damaged[damaged.indexOf(MODEL.subarray(4096, 4160)) + 10] ^= 0xff;
      const damagedPath = join(tmpdir(), `tinylm-bundle-damaged-${process.pid}.zip`);
      writeFileSync(damagedPath, damaged);
      after(() => rmSync(damagedPath, { force: true }));
      const noteIs = (re) => p2.waitForFunction((src) => new RegExp(src).test(
        document.querySelector('[data-testid=storage-note]')?.textContent ?? ''), re.source, { timeout: 60_000 });
      await p2.setInputFiles('[data-testid=bundle-file]', damagedPath);
      await noteIs(/^The bundle is damaged \(its zip checksums fail\); copy it again\. Nothing was added\.$/);
      assert.equal(await p2.locator('[data-testid=stored-item]').count(), 0);
      // The real one: added, then offered on the shelf as on this device, and writing the same story.
      await p2.setInputFiles('[data-testid=bundle-file]', bundlePath);
      await noteIs(/^Added 1 item from the bundle: “tiny260K”\.$/);
      await p2.setInputFiles('[data-testid=bundle-file]', bundlePath);
      await noteIs(/^Nothing new in the bundle\. 1 item was already on this device\.$/);
      assert.equal(await p2.locator('[data-testid=stored-item]').count(), 1);
      await p2.click('[data-testid=stored-item] [data-testid=stored-use]');
      await noteIs(/^Loading “tiny260K” from this device\.$/);
      await show(p2, 'generate');
      await p2.waitForFunction(() => /tiny260K — .*from the shelf, on this device/.test(
        document.querySelector('[data-testid=model-select] option:checked')?.textContent ?? ''), null, { timeout: 60_000 });
      assert.equal(await offer(p2, 'tiny260K'), 'device');
      await waitForState(p2, ['ready']);
      const story = await generate(p2, greedy);
      assert.equal(story.state, 'done', story.status);
      assert.ok(story.text.length > 100 && cliStory.startsWith(story.text.trimEnd()), `page ${story.text} vs CLI ${cliStory}`);
      assert.deepEqual(await cspViolations(p2), []);
    } finally {
      await other.close();
    }
  });
});

describe('a download left half done by a reload, resumed; a full store refused (a second profile)', () => {
  const log = { ranges: [], held: [], hub: 0, cdn: 0 };
  const hold = new Set(['again260K.bin', 'drop260K.bin', 'store260K.bin']);
  const K = 7 * CHUNK + 500;
  let hub, cdn, site, browser;

  before(async () => {
    const files = { 'again260K.bin': MODEL, 'drop260K.bin': MODEL, 'store260K.bin': MODEL, 'full260K.bin': MODEL };
    ({ hub, cdn } = await startHub(files, log, { cuts: { 'again260K.bin': K, 'drop260K.bin': K, 'store260K.bin': K }, hold }));
    const sha = sha256(MODEL);
    const shelf = {
      hub: hub.origin,
      models: [SITE_SHELF.models[0], entry('again260K', sha, 'Resumed after a reload.'),
        entry('drop260K', sha, 'Discarded after a reload.'), entry('store260K', sha, 'Deleted in the Storage tab.'),
        entry('full260K', sha, 'Refused by a full store.')],
    };
    site = await serveSite(shelf, hub, cdn);
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await Promise.all([site, hub, cdn].map((s) => s?.close().catch(() => {})));
  });

  const item = (name) => `[data-testid=shelf-item][data-name=${name}]`;
  const noteIs = (page, re) => page.waitForFunction(
    (src) => new RegExp(src).test(document.querySelector('[data-testid=shelf-note]')?.textContent ?? ''), re.source, { timeout: 60_000 })
    .catch(async (e) => assert.fail(`${re}: ${e.message}; the shelf says: ${await page.textContent('[data-testid=shelf-note]')}`));
  /** Starts `name`'s download, lets the file host cut it at K (then go quiet), and reloads the page. */
  const cutAndReload = async (page, name) => {
    await page.click(`${item(name)} [data-testid=shelf-download]`);
    // The worker says where the cut was once it has written those bytes; its retry gets no answer.
    await page.waitForSelector(`${item(name)} [data-testid=shelf-resume]`, { timeout: 60_000 });
    assert.match(await page.textContent(`${item(name)} [data-testid=shelf-resume]`), new RegExp(`cut at ${Math.round(K / 1000)} KB`));
    await page.reload();
    await waitForState(page, ['ready']);
    await page.waitForSelector(`${item(name)} [data-testid=shelf-half]`, { timeout: 60_000 });
    assert.equal(await page.textContent(`${item(name)} [data-testid=shelf-half-text]`), `Half downloaded: ${Math.round(K / 1000)} KB of ${DOWNLOAD}`);
    assert.equal(await page.locator(`${item(name)} [data-testid=shelf-download]`).count(), 0);
  };

  test('after a reload the card offers Resume, which asks for the rest with Range and stores the same model', async () => {
    const { page } = await openApp(browser.context, site.url);
    await waitForState(page, ['ready']);
    await page.waitForSelector(item('again260K'));
    await cutAndReload(page, 'again260K');
    assert.deepEqual(await partialNames(page), ['again260K']);
    hold.delete('again260K.bin');
    log.ranges.length = 0;
    await page.click(`${item('again260K')} [data-testid=shelf-resume-button]`);
    await noteIs(page, /^again260K arrived whole, matched its SHA-256 and is stored on this device\.$/);
    assert.deepEqual(log.ranges, [`again260K.bin bytes=${K}-`], 'the rest only, from the byte the reload left');
    assert.deepEqual(await partialNames(page), []);
    await page.waitForFunction(() => /again260K — .*from the shelf, on this device/.test(
      document.querySelector('[data-testid=model-select] option:checked')?.textContent ?? ''), null, { timeout: 60_000 });
    await waitForState(page, ['ready']);
    const story = await generate(page, { prompt: '', temperature: 0, topp: 0.9, seed: 1, steps: 64 });
    const cli = tinylm(['generate', MODEL_PATH, '-z', bundledPath('tok512.bin'), '-t', '0', '-n', '64']).toString();
    assert.equal(story.state, 'done', story.status);
    assert.ok(story.text.length > 100 && cli.startsWith(story.text.trimEnd()), `page ${story.text} vs CLI ${cli}`);

    // Discard after a reload removes the partial file; the download is offered from the start.
    await cutAndReload(page, 'drop260K');
    await page.click(`${item('drop260K')} [data-testid=shelf-discard]`);
    await noteIs(page, /^The half-downloaded drop260K was removed from this device\.$/);
    await page.waitForSelector(`${item('drop260K')} [data-testid=shelf-download]`);
    assert.deepEqual(await partialNames(page), []);

    // The Storage tab lists an unfinished download with its bytes, and deletes it too.
    await cutAndReload(page, 'store260K');
    await page.click('[data-testid=tab-storage]');
    const half = '[data-testid=unfinished-item][data-name=store260K]';
    await page.waitForSelector(half);
    assert.equal(await page.textContent(`${half} [data-testid=unfinished-size]`), `unfinished download · ${Math.round(K / 1000)} KB of ${DOWNLOAD}`);
    assert.equal(await page.locator('[data-testid=stored-empty]').count(), 0, 'not "Nothing stored yet"');
    await screenshot(page, 'storage-unfinished');
    // axe-core over the Storage tab with the unfinished row, put in by DevTools (the page's CSP
    // stays on for the rest of this profile's checks).
    await page.evaluate(readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8'));
    const found = await page.evaluate(async () => {
      const r = await window.axe.run(document.querySelector('[data-testid=storage]'), { resultTypes: ['violations'] });
      return r.violations.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).slice(0, 4).join(', ')}`);
    });
    assert.deepEqual(found, [], 'axe-core violations in the Storage tab');
    await page.click(`${half} [data-testid=unfinished-delete]`);
    await page.waitForFunction(() => !document.querySelector('[data-testid=unfinished-item]'));
    assert.equal(await page.textContent('[data-testid=storage-note]'), 'The half-downloaded store260K was removed from this device.');
    assert.deepEqual(await partialNames(page), []);
    // The shelf heard it: the card offers the download from the start.
    await page.click('[data-testid=tab-generate]');
    await page.waitForSelector(`${item('store260K')} [data-testid=shelf-download]`);
    assert.deepEqual(await cspViolations(page), []);
    await page.close();
  });

  test('a store with no room left: the refusal in words, nothing kept, and the page still works', async () => {
    const { page } = await openApp(browser.context, site.url);
    await waitForState(page, ['ready']);
    await page.waitForSelector(item('full260K'));
    // Fill this site's real storage with sparse files outside the model store (each as large as the
    // browser allows, until what is left is less than the model). navigator.storage.estimate() here
    // reports a static 10 GiB free whatever is used, so the check before the download passes and
    // the refusal comes from the write itself, as it would on a nearly full disk.
    const left = await page.evaluate(async (model) => {
      const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('test-filler', { create: true });
      const fits = async (f, n) => {
        try { const w = await f.createWritable(); await w.truncate(n); await w.close(); return true; } catch { return false; }
      };
      for (let i = 0; i < 100; i++) {
        const f = await dir.getFileHandle(String(i), { create: true });
        let [lo, hi] = [0, 2 ** 36];
        while (hi - lo > 4096) { const mid = Math.floor((lo + hi) / 2); if (await fits(f, mid)) lo = mid; else hi = mid; }
        if (lo < model / 2) return lo;
        await fits(f, lo);
      }
      return -1;
    }, MODEL.length);
    assert.ok(left > 0 && left < MODEL.length / 2, `room left: about ${2 * left} bytes`);
    await page.click(`${item('full260K')} [data-testid=shelf-download]`);
    // (Chromium grants a sync access handle room in steps, so the refusal may come at byte 0, or
    // even at the download's folder, named for the model: seen once in a full run.)
    await noteIs(page, /^The browser refused to store more of full260K(\.bin)? on this device at [\d.]+ (KB|MB) \(this site's storage is full\)\. Nothing was kept: delete stored models on the Storage tab or free disk space, and try again\.$/);
    assert.deepEqual(await partialNames(page), [], 'nothing half-stored');
    assert.equal(await page.getAttribute(item('full260K'), 'data-offer'), 'download');
    // Room made again, the same button works.
    await page.evaluate(async () => (await navigator.storage.getDirectory()).removeEntry('test-filler', { recursive: true }));
    await page.click(`${item('full260K')} [data-testid=shelf-download]`);
    await noteIs(page, /^full260K arrived whole, matched its SHA-256 and is stored on this device\.$/);
    // The card learns it is stored from the store's list, read again after the note (a moment later).
    await page.waitForSelector(`${item('full260K')}[data-offer=device]`, { timeout: 10_000 });
    assert.equal(await page.getAttribute(item('full260K'), 'data-offer'), 'device');
    await page.close();
  });
});

describe('a build-time hub override (scripts/set-hub.mjs, run by the post-build hook)', () => {
  const page = readFileSync(`${DIST}/index.html`, 'utf8');
  const policy = (text) => /content="(default-src[^"]*)"/.exec(text)[1];
  test('none drops the hub models and hosts; a mirror replaces them; bad hosts are refused', () => {
    const none = retarget({ page, shelf: SITE_SHELF }, 'none');
    assert.deepEqual(none.shelf.models.map((m) => m.name), ['stories260K']);
    assert.equal(policy(none.page), policy(page).replace(" https://huggingface.co https://*.hf.co;", ';'));
    assert.ok(policy(page).includes("connect-src 'self' https://huggingface.co https://*.hf.co;"), 'the site names the hub today');
    const mirror = retarget({ page, shelf: SITE_SHELF }, 'https://mirror.example.org/hf/', ['https://mirror.example.org', 'https://*.files.example.org']);
    assert.equal(mirror.shelf.hub, 'https://mirror.example.org/hf');
    assert.deepEqual(mirror.shelf.models, SITE_SHELF.models);
    assert.match(policy(mirror.page), /; connect-src 'self' https:\/\/mirror\.example\.org https:\/\/\*\.files\.example\.org; object-src/);
    assert.match(policy(retarget({ page, shelf: SITE_SHELF }, 'http://10.0.0.5:8000/models').page), /connect-src 'self' http:\/\/10\.0\.0\.5:8000;/);
    assert.throws(() => retarget({ page, shelf: SITE_SHELF }, 'javascript:alert(1)'), /not an http/);
    assert.throws(() => retarget({ page, shelf: SITE_SHELF }, 'https://m.example', ["https://m.example 'unsafe-inline'"]), /not an http\(s\) host/);
  });
  test('TINYLM_HUB in the post-build hook rewrites a build before the service worker is stamped', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tinylm-hub-'));
    try {
      cpSync(DIST, dir, { recursive: true });
      execFileSync('bash', [`${REPO}/scripts/pwa-hook.sh`, dir], { env: { ...process.env, TINYLM_HUB: 'none' } });
      assert.deepEqual(JSON.parse(readFileSync(join(dir, 'shelf.json'), 'utf8')).models.map((m) => m.name), ['stories260K']);
      assert.ok(policy(readFileSync(join(dir, 'index.html'), 'utf8')).includes("connect-src 'self';"));
      const version = (d) => /const VERSION = '([0-9a-f]{16})'/.exec(readFileSync(join(d, 'sw.js'), 'utf8'))?.[1];
      assert.ok(version(dir) && version(dir) !== version(DIST), 'a new service-worker version for the rewritten files');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

