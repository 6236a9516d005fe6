// The model shelf in the page, against a local "hub" on a second origin and its "file host" on a
// third (real HTTP: CORS, a redirect from the hub to the file host as Hugging Face does, Range, a
// connection cut midway, a 404, a wrong SHA-256, a cancel). The site's index.html
// and CSP are served with the hub's hosts replaced by the local ones (one dist/), and shelf.json
// by a test list whose model is a small real one (stories260K's v1 export, under another name).
// One browser, three page loads: the download, the link's reload with the hub gone, a link to a
// model not on the device. (The quota check's words are tested natively, crate::shelf: this
// Chromium ignores DevTools' Storage.overrideQuotaForOrigin in navigator.storage.estimate().)
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';
import {
  REPO, bundledPath, cspViolations, generate, launchBrowser, openApp, sharedPath, startServer, tinylm, waitForState,
} from './helpers.mjs';
import { show } from './views.mjs';

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

describe('the model shelf in the page (a local hub, its file host, OPFS)', () => {
  const log = { ranges: [], hub: 0, cdn: 0 };
  let hub, cdn, site, browser;
  const files = { 'tiny260K.bin': MODEL, 'badhash.bin': MODEL };
  let cutOnce = true;

  before(async () => {
    cdn = await listen((req, res) => {
      log.cdn += 1;
      if (req.method === 'OPTIONS') {
        return res.writeHead(204, { ...CORS, 'Access-Control-Allow-Headers': 'Range' }).end();
      }
      const name = req.url.replace('/files/', '');
      const body = files[name];
      if (!body) return res.writeHead(404, CORS).end();
      const range = req.headers.range;
      log.ranges.push(`${name} ${range ?? '-'}`);
      const from = range ? Number(/bytes=(\d+)-/.exec(range)[1]) : 0;
      if (from > 0) {
        res.writeHead(206, { ...CORS, 'Content-Length': body.length - from, 'Content-Range': `bytes ${from}-${body.length - 1}/${body.length}` });
        return stream(res, body, from);
      }
      res.writeHead(200, { ...CORS, 'Content-Length': body.length });
      // The first full request of the real model is cut a little past halfway.
      const cut = name === 'tiny260K.bin' && cutOnce ? 9 * CHUNK + 1000 : undefined;
      if (cut) cutOnce = false;
      stream(res, body, 0, cut);
    });
    hub = await listen((req, res) => {
      log.hub += 1;
      if (req.method === 'OPTIONS') {
        return res.writeHead(204, { ...CORS, 'Access-Control-Allow-Headers': 'Range' }).end();
      }
      const name = req.url.replace('/resolve/', '');
      if (!files[name]) return res.writeHead(404, CORS).end();
      // As the hub does: the file lives on another host.
      res.writeHead(302, { ...CORS, Location: `${cdn.origin}/files/${name}` }).end();
    });
    const entry = (name, sha, about) => ({
      name, title: name, about, params: 260032, memory: 1712000, licence: 'MIT', format: 'llama2.c',
      files: [{ role: 'model', path: `resolve/${name}.bin`, size: MODEL.length, sha256: sha }, TOK],
    });
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
    // The CSP names the local hub and file host where the site names huggingface.co and *.hf.co.
    const rewrite = (text) => text.replace('https://huggingface.co', hub.origin).replace('https://*.hf.co', cdn.origin);
    site = await startServer('/', {
      'shelf.json': (req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(shelf)),
    }, { rewrite });
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
    assert.match(await page.textContent(`${item('stories110M')} [data-testid=shelf-big]`), /A big download: 438\.82 MB/);
    assert.equal(await offer(page, 'stories110M'), 'unverified');
    assert.equal(await page.locator(`${item('stories110M')} [data-testid=shelf-download]`).count(), 0);
    assert.equal(log.hub + log.cdn, 0, 'nothing is fetched from the hub before Download');

    // Cancel mid-way: a message, nothing stored.
    await page.click(`${item('badhash')} [data-testid=shelf-download]`);
    await page.waitForSelector(`${item('badhash')} [data-testid=shelf-progress]`);
    await page.click(`${item('badhash')} [data-testid=shelf-cancel]`);
    await waitNote(page, /cancelled; nothing was stored/);

    // The whole file, but not the list's SHA-256: a message, nothing stored.
    await page.click(`${item('badhash')} [data-testid=shelf-download]`);
    await waitNote(page, /SHA-256 is [0-9a-f]{64}, not the 0{64}.*not stored/);

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
});
