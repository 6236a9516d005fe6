// Help for a class (issue 17): the first-visit tour (skippable, remembered, offered again from
// Help), "What am I looking at?" on every view, glossary words where they appear; Inspect's
// readability (the prompt or "Once upon a time" when there is no story, token labels along the
// heatmap axes, thumbnails big enough to see, tokens never case-transformed, plurals); the
// developer tools behind a disclosure; the licence notes as a page of the site.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { assertClean, openApp, useSite, waitForState } from './helpers.mjs';
import { show, skipTour, storyAndInspect } from './views.mjs';

const TABS = ['generate', 'inspect', 'train', 'storage'];
const GLOSSARY = ['token', 'probability', 'logit', 'temperature', 'top-p', 'seed', 'attention', 'head', 'layer',
  'residual stream', 'logit lens', 'rollout', 'LoRA', 'adapter', 'loss', 'held-out', 'overfitting'];

async function inspectReady(page) {
  await page.waitForFunction(() => document.querySelector('[data-testid=inspect-status]')?.dataset.state === 'ready',
    null, { timeout: 120_000 });
}

/** The pieces of the inspected text as the axes should label them (a leading space as ␣). */
async function pieces(page) {
  return page.$$eval('[data-testid=tokens] .tok', (els) => els.map((e) => e.textContent.replace(/^ /, '␣')));
}

describe('Help and readability', () => {
  const site = useSite();

  test('the tour: shown on a first visit, skip hides it for good, Help opens it again', async () => {
    const { page, log } = await openApp(site.browser.context, site.server.url);
    assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
    const tour = page.locator('[data-testid=tour]');
    assert.equal(await tour.count(), 1, 'a first visit shows the tour');
    assert.match(await tour.textContent(), /step 1 of [5-8]/);
    const steps = Number((await tour.textContent()).match(/step 1 of (\d)/)[1]);
    // Next walks Generate → Inspect → Train, switching tabs and outlining what each step is about.
    const atStep = (i) => page.waitForFunction(([i, n]) => {
      const t = document.querySelector('[data-testid=tour]');
      const tab = document.querySelector('[role=tab][aria-selected=true]')?.dataset.testid;
      return t?.textContent.includes(`step ${i} of ${n}`) && tab === `tab-${t.dataset.tab}` && document.querySelector('.tour-spot');
    }, [i, steps]);
    const tabs = [];
    for (let i = 1; i < steps; i++) {
      await page.click('[data-testid=tour-next]');
      await atStep(i + 1);
      tabs.push(await tour.getAttribute('data-tab'));
    }
    assert.ok(tabs.includes('inspect') && tabs.includes('train'), tabs.join(' '));
    assert.ok(tabs.indexOf('inspect') < tabs.indexOf('train'));
    await page.click('[data-testid=tour-back]');
    await atStep(steps - 1);
    await page.click('[data-testid=tour-skip]');
    assert.equal(await tour.count(), 0, 'skip hides it');
    await page.reload();
    assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
    assert.equal(await tour.count(), 0, 'and it stays hidden on reload');
    await page.click('[data-testid=help]');
    await tour.waitFor();
    assert.match(await tour.textContent(), /step 1 of/, 'Help opens it again');
    await page.click('[data-testid=tour-skip]');
    await assertClean(page, log, site.server.url);
    await page.close();
  });

  test('the tour pauses to one line when the tabs leave its step, and resumes there', async () => {
    // A first visit on a laptop (the test above remembered the tour as seen in this profile).
    const { page, log } = await openApp(site.browser.context, 'about:blank');
    await page.setViewportSize({ width: 1366, height: 768 });
    await page.goto(site.server.url);
    await page.evaluate(() => localStorage.removeItem('tinylm-tour-seen'));
    await page.reload();
    assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
    const tour = page.locator('[data-testid=tour]');
    assert.match(await tour.textContent(), /step 1 of/, 'a first visit opens the tour');
    // The person ignores it and opens Inspect: no box about the Prompt box pinned over the heads.
    await page.click('[data-testid=tab-inspect]');
    await page.waitForSelector('[data-testid=tour][data-folded=true]');
    assert.equal(await page.locator('[data-testid=tour]:not(.tour-folded)').count(), 0);
    assert.match(await tour.textContent(), /Tour paused\./);
    assert.equal(await tour.evaluate((el) => getComputedStyle(el).position), 'static', 'the line is not pinned');
    assert.equal(await page.locator('.tour-spot').count(), 0, 'nothing outlined on Inspect');
    assert.equal(await page.getAttribute('[data-testid=tab-inspect]', 'aria-selected'), 'true', 'Inspect stays shown');
    assert.equal(await page.evaluate(() => localStorage.getItem('tinylm-tour-seen')), null, 'not remembered as seen');
    // Resume: back to step 1 on its tab, the focus on Next.
    await page.click('[data-testid=tour-open]');
    await page.waitForFunction(() => document.querySelector('[data-testid=tour]:not(.tour-folded)')?.dataset.step === '0');
    assert.equal(await page.getAttribute('[data-testid=tab-generate]', 'aria-selected'), 'true');
    await page.waitForSelector('#prompt.tour-spot');
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.testid), 'tour-next');
    // Next still switches tabs itself without pausing; Skip from the paused line remembers.
    await page.click('[data-testid=tour-next]');
    await page.click('[data-testid=tour-next]');
    await page.waitForFunction(() => document.querySelector('[data-testid=tour]')?.dataset.step === '2');
    assert.equal(await page.getAttribute('[data-testid=tab-inspect]', 'aria-selected'), 'true');
    await page.click('[data-testid=tab-train]');
    await page.waitForSelector('[data-testid=tour][data-folded=true]');
    await page.click('[data-testid=tour-skip]');
    assert.equal(await tour.count(), 0);
    assert.equal(await page.evaluate(() => localStorage.getItem('tinylm-tour-seen')), '1');
    await assertClean(page, log, site.server.url);
    await page.close();
  });

  test('"What am I looking at?" on every view; glossary words explain themselves; the glossary has them all', async () => {
    const { page, log } = await openApp(site.browser.context, site.server.url);
    assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
    await skipTour(page);
    await storyAndInspect(page, 32);
    for (const tab of TABS) {
      await show(page, tab);
      const about = page.locator('details.about');
      assert.ok(await about.count() >= 1, `${tab} has a "What am I looking at?"`);
      assert.equal(await about.first().locator('summary').textContent(), 'What am I looking at?');
    }
    // Inspect: one on each card.
    await show(page, 'inspect');
    for (const card of ['.strip', '.overview', '.zoom', '.next', '.rollout', '.lens', '.playback']) {
      assert.equal(await page.locator(`${card} details.about`).count(), 1, card);
    }
    // A word in the text opens its definition just after it, and closes again.
    const word = page.locator('.overview button.term[data-term=head]').first();
    await page.click('.overview details.about summary');
    assert.equal(await word.getAttribute('aria-expanded'), 'false');
    await word.click();
    assert.equal(await word.getAttribute('aria-expanded'), 'true');
    assert.match(await page.locator('.overview [data-testid=definition]').textContent(), /attention pattern inside a layer/);
    await word.click();
    assert.equal(await page.locator('.overview [data-testid=definition]').count(), 0);
    // Where the words appear, across the views.
    const used = new Set();
    for (const tab of TABS) {
      await show(page, tab);
      for (const t of await page.$$eval('button.term', (els) => els.map((e) => e.dataset.term))) used.add(t);
    }
    const missing = GLOSSARY.filter((w) => !used.has(w));
    assert.deepEqual(missing, [], 'every glossary word is explained where it is used');
    // The glossary lists every word with its definition.
    const terms = await page.$$eval('[data-testid=glossary] dt', (els) => els.map((e) => e.textContent));
    assert.deepEqual(terms, GLOSSARY);
    await assertClean(page, log, site.server.url);
    await page.close();
  });

  test('Inspect with no story inspects "Once upon a time" and says so; axes, thumbnails, case, plurals', async () => {
    const { page, log } = await openApp(site.browser.context, site.server.url);
    assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
    await skipTour(page);
    await page.fill('[data-testid=prompt]', '');
    await page.click('[data-testid=tab-inspect]');
    await inspectReady(page);
    assert.match(await page.textContent('[data-testid=inspect-subject]'), /No story yet.*inspecting “Once upon a time”/);
    const short = await pieces(page);
    assert.deepEqual(short.slice(1), ['Once', '␣upon', '␣a', '␣time']);
    // Few tokens: every token labels both axes, in order.
    assert.deepEqual(await page.$$eval('.zoom [data-testid=axis-keys] .axis-label', (els) => els.map((e) => e.textContent)), short);
    assert.deepEqual(await page.$$eval('.zoom [data-testid=axis-queries] .axis-label', (els) => els.map((e) => e.textContent)), short);
    // Thumbnails large enough to see a pattern.
    const thumb = await page.locator('[data-testid=head-0-0] canvas').boundingBox();
    assert.ok(thumb.width >= 64 && thumb.height >= 64, `thumbnail ${thumb.width}×${thumb.height}`);
    // A prompt typed in Generate is inspected as the prompt.
    await page.click('[data-testid=tab-generate]');
    await page.fill('[data-testid=prompt]', 'The cat sat');
    await page.click('[data-testid=tab-inspect]');
    await page.click('[data-testid=inspect-again]');
    await inspectReady(page);
    assert.match(await page.textContent('[data-testid=inspect-subject]'), /^No story yet: inspecting the prompt\./);
    assert.deepEqual((await pieces(page)).slice(1).join(''), 'The␣cat␣sat');

    // A story: too many tokens for every label, so the axes label the pointed cell only.
    await page.click('[data-testid=tab-generate]');
    await storyAndInspect(page, 48);
    assert.equal(await page.textContent('[data-testid=inspect-subject]'), '');
    const all = await pieces(page);
    assert.ok(all.length > 24);
    assert.equal(await page.locator('.zoom [data-testid=axis-keys] .axis-label').count(), 0);
    const box = await page.locator('[data-testid=zoom]').boundingBox();
    const n = all.length;
    await page.mouse.move(box.x + (7.5 / n) * box.width, box.y + (20.5 / n) * box.height);
    assert.deepEqual(await page.$$eval('.zoom [data-testid=axis-keys] .axis-label', (els) => els.map((e) => e.textContent)), [all[7]]);
    assert.deepEqual(await page.$$eval('.zoom [data-testid=axis-queries] .axis-label', (els) => els.map((e) => e.textContent)), [all[20]]);
    // Headings and quoted tokens are never case-transformed.
    const transformed = await page.$$eval('h2, h3, h4, .piece, .tok, .axis-label, th', (els) =>
      els.filter((e) => getComputedStyle(e).textTransform !== 'none').map((e) => e.textContent));
    assert.deepEqual(transformed, []);
    // "1 token survives", "2 tokens survive".
    await page.click('[data-testid=tok-3]');
    await page.$eval('[data-testid=next-topp]', (el) => { el.value = '0.01'; el.dispatchEvent(new Event('input', { bubbles: true })); });
    assert.match(await page.textContent('[data-testid=kept-note]'), /^1 token survives the top-p cut/);
    await page.$eval('[data-testid=next-topp]', (el) => { el.value = '1'; el.dispatchEvent(new Event('input', { bubbles: true })); });
    const many = (await page.textContent('[data-testid=kept-note]')).match(/^(\d+) tokens survive the top-p cut/);
    assert.ok(many && Number(many[1]) > 1, String(many));
    // The kept share is the reshaped distribution's, so the note names the temperature.
    await page.$eval('[data-testid=next-topp]', (el) => { el.value = '0.9'; el.dispatchEvent(new Event('input', { bubbles: true })); });
    await page.$eval('[data-testid=next-temperature]', (el) => { el.value = '0.8'; el.dispatchEvent(new Event('input', { bubbles: true })); });
    assert.match(await page.textContent('[data-testid=kept-note]'), /survives? the top-p cut \(\d+\.\d% of the probability at temperature 0\.80, before renormalising\)/);
    await assertClean(page, log, site.server.url);
    await page.close();
  });

  test('developer tools behind "For developers"; file inputs look like buttons; licences are a page of the site', async () => {
    const { page, log } = await openApp(site.browser.context, site.server.url);
    assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
    await skipTour(page);
    await show(page, 'train');
    assert.equal(await page.isVisible('[data-testid=logits-tokens]'), false);
    assert.equal(await page.textContent('.devtools summary'), 'For developers');
    await page.click('.devtools summary');
    assert.equal(await page.isVisible('[data-testid=logits-tokens]'), true);
    // The file pickers' buttons wear the page's button style (the accent border), not the browser's grey.
    const button = await page.$eval('[data-testid=adapter-upload]', (el) => {
      const s = getComputedStyle(el, '::file-selector-button');
      return [s.borderTopColor, s.backgroundColor, s.fontWeight];
    });
    assert.deepEqual(button, ['rgb(47, 93, 138)', 'rgba(0, 0, 0, 0)', '600']);
    // The footer's licence link is an HTML page of this site that names nothing outside it.
    const href = await page.getAttribute('[data-testid=licences]', 'href');
    assert.equal(href, 'licences.html');
    const res = await page.goto(new URL(href, site.server.url).href);
    assert.equal(res.status(), 200);
    assert.match(res.headers()['content-type'], /^text\/html/);
    assert.equal(await page.textContent('h1'), 'Licences');
    const text = await page.textContent('main');
    assert.match(text, /stories260K\.bin[\s\S]*MIT/);
    assert.match(text, /CDLA-Sharing-1\.0/);
    assert.doesNotMatch(text, /shared\/|\.md\b|README/);
    void log;
    await page.close();
  });
});
