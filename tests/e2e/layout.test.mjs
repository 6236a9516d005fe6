// Layout on phones and projectors (issue 17): no sideways page scroll on any tab from 360 to
// 430 px wide (the tab bar wraps, wide tables scroll inside their card, the run's figures never
// break into stacked letters, every attention-head thumbnail whole), nor at 1366 and 1920 px,
// where no card is wider than the header; presentation mode at 1920×1080 uses the whole width
// (Generate: the settings beside the story), and Inspect there has the tokens and the zoomed
// head on screen together. A first visit on a phone folds the tour to one line, so the prompt
// and the Generate button are in the first screen.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { join } from 'node:path';
import { ARTIFACTS, assertClean, openApp, screenshot, useSite, waitForState, withSite } from './helpers.mjs';
import { show, skipTour, storyAndInspect } from './views.mjs';

const TABS = ['generate', 'inspect', 'train', 'build', 'storage'];

/** The page's width against the viewport's, and anything that pokes out on the right. */
async function overflow(page) {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const wide = [...document.querySelectorAll('body *')]
      .filter((el) => {
        const r = el.getBoundingClientRect();
        if (r.width === 0 || r.right <= width + 0.5) return false;
        // Inside a scrolling box, poking out is fine: it scrolls there.
        for (let p = el.parentElement; p; p = p.parentElement) {
          const o = getComputedStyle(p).overflowX;
          if ((o === 'auto' || o === 'scroll' || o === 'hidden') && p.getBoundingClientRect().right <= width + 0.5) return false;
        }
        return true;
      })
      .slice(0, 5)
      .map((el) => `${el.tagName.toLowerCase()}.${el.className} (${Math.round(el.getBoundingClientRect().right)} px)`);
    return { scroll: document.documentElement.scrollWidth, width, wide };
  });
}

/** The app at 1920×1080 with a story inspected, in presentation mode, on `tab`. */
async function presenting(site, tab) {
  const { page } = await openApp(site.browser.context, site.server.url);
  await page.setViewportSize({ width: 1920, height: 1080 });
  assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
  await storyAndInspect(page);
  await page.click('[data-testid=present]');
  await skipTour(page);
  await show(page, tab);
  return page;
}

/** The boxes of the elements `sels` names (by key), the viewport's size and the page's width. */
async function boxes(page, sels) {
  return page.evaluate((sels) => {
    const out = { w: document.documentElement.clientWidth, h: innerHeight, scroll: document.documentElement.scrollWidth };
    for (const [key, sel] of Object.entries(sels)) {
      const b = document.querySelector(sel).getBoundingClientRect();
      out[key] = { top: b.top, bottom: b.bottom, left: b.left, right: b.right };
    }
    return out;
  }, sels);
}

describe('Layout', () => {
  const site = useSite();

  test('no sideways scroll on any tab at 360, 390 and 430 px; tabs, figures and tables fit', async () => {
    const { page } = await openApp(site.browser.context, site.server.url);
    await page.setViewportSize({ width: 390, height: 844 });
    assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
    await storyAndInspect(page);
    for (const width of [360, 390, 430]) {
      await page.setViewportSize({ width, height: 800 });
      for (const tab of TABS) {
        await show(page, tab);
        const o = await overflow(page);
        assert.ok(o.scroll <= width, `${tab} at ${width} px: the page is ${o.scroll} px wide; poking out: ${o.wide.join(', ')}`);
        assert.deepEqual(o.wide, [], `${tab} at ${width} px`);
        // Every tab button is on screen (the bar wraps).
        const tabs = await page.$$eval('[role=tab]', (els) => els.map((e) => e.getBoundingClientRect().right));
        assert.ok(tabs.every((r) => r <= width), `${tab} at ${width} px: tab bar ${tabs}`);
        // From 390 px the five tabs fit one row (below, they wrap).
        const tops = await page.$$eval('[role=tab]', (els) => els.map((e) => Math.round(e.getBoundingClientRect().top)));
        if (width >= 390) assert.equal(new Set(tops).size, 1, `${tab} at ${width} px: tab rows at ${tops}`);
      }
      // The run's figures: each label and value on one line ("CPU", not "C/P/U").
      await show(page, 'generate');
      const lines = await page.$$eval('[data-testid=figures] dt, [data-testid=figures] dd', (els) =>
        els.map((e) => [e.textContent, e.getBoundingClientRect().height / parseFloat(getComputedStyle(e).lineHeight)]));
      for (const [text, n] of lines) assert.ok(n < 1.5, `"${text}" takes ${n.toFixed(1)} lines at ${width} px`);
      if (width === 390) {
        for (const tab of TABS) {
          await show(page, tab);
          await screenshot(page, `layout-390-${tab}`);
        }
      }
    }
    // Every attention-head thumbnail whole on a phone: a layer's heads wrap onto more lines
    // rather than run past the card's edge (at 390 px the fourth was cut in half).
    for (const width of [360, 390, 430]) {
      await page.setViewportSize({ width, height: 800 });
      await show(page, 'inspect');
      const cut = await page.evaluate(() => {
        const box = document.querySelector('.heads').getBoundingClientRect();
        return [...document.querySelectorAll('.heads .thumb')]
          .map((t) => [t.dataset.testid, t.getBoundingClientRect()])
          .filter(([, r]) => r.left < box.left - 0.5 || r.right > box.right + 0.5)
          .map(([id, r]) => `${id} ${Math.round(r.left)}–${Math.round(r.right)} in ${Math.round(box.left)}–${Math.round(box.right)}`);
      });
      assert.deepEqual(cut, [], `${width} px: thumbnails cut off`);
      // All of them can be seen without scrolling the heads sideways.
      assert.equal(await page.$eval('.heads', (el) => el.scrollWidth <= el.clientWidth), true, `${width} px: the heads scroll sideways`);
      if (width === 390) {
        await page.locator('.overview').scrollIntoViewIfNeeded();
        await page.screenshot({ path: join(ARTIFACTS, 'layout-390-heads.png') });
      }
    }
    // The logit lens table is wider than a phone: it scrolls inside its card.
    await page.setViewportSize({ width: 360, height: 800 });
    await show(page, 'inspect');
    const lens = await page.$eval('.lens .scroll', (el) => [el.scrollWidth, el.clientWidth]);
    assert.ok(lens[0] > lens[1], `the lens table (${lens[0]} px) should scroll inside its card (${lens[1]} px)`);
    await page.close();
  });

  test('a first visit on a phone (390×844): the tour folds to one line, the prompt and Generate in the first screen; it still opens', async () => {
    // A fresh profile: nothing remembers the tour as seen.
    await withSite({}, async ({ server, browser }) => {
      // A laptop's first visit keeps the whole tour (the steps, not the folded line).
      const laptop = await browser.context.newPage();
      await laptop.setViewportSize({ width: 1366, height: 768 });
      await laptop.goto(server.url);
      assert.equal(await waitForState(laptop, ['ready', 'error']), 'ready');
      assert.match(await laptop.textContent('[data-testid=tour]'), /step 1 of \d/);
      assert.equal(await laptop.locator('[data-testid=tour-open]').count(), 0);
      await laptop.close();

      const { page, log } = await openApp(browser.context, 'about:blank');
      await page.setViewportSize({ width: 390, height: 844 });
      await page.goto(server.url);
      assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
      const tour = page.locator('[data-testid=tour]');
      assert.equal(await tour.count(), 1, 'a first visit still offers the tour');
      const b = await boxes(page, { tour: '[data-testid=tour]', prompt: '#prompt', generate: '[data-testid=generate]' });
      for (const key of ['tour', 'prompt', 'generate']) {
        const r = b[key];
        assert.ok(r.top >= 0 && r.bottom <= b.h && r.left >= 0 && r.right <= b.w, `${key} at ${JSON.stringify(r)}: outside the ${b.w}×${b.h} first screen`);
      }
      assert.ok(b.tour.bottom - b.tour.top < 80, `the folded tour is ${b.tour.bottom - b.tour.top} px tall`);
      await page.screenshot({ path: join(ARTIFACTS, 'layout-390-first-visit.png') });
      // The settings' hints wait for a setting to be used, then stay.
      assert.equal(await page.isVisible('#temperature-hint'), false);
      await page.focus('#temperature');
      await page.focus('#prompt');
      assert.ok(await page.isVisible('#temperature-hint') && await page.isVisible('#pace-hint'));
      // "Show the tour" opens its first step, readable and in view, the focus on Next.
      await page.click('[data-testid=tour-open]');
      await page.waitForFunction(() => /step 1 of \d/.test(document.querySelector('[data-testid=tour]')?.textContent ?? ''));
      assert.match(await tour.locator('h2').textContent(), /\S/);
      assert.ok(await tour.locator('h2 + p').isVisible());
      assert.ok((await tour.locator('h2 + p').textContent()).length > 40);
      assert.equal(await page.evaluate(() => document.activeElement?.dataset.testid), 'tour-next');
      await page.click('[data-testid=tour-next]');
      await page.waitForFunction(() => /step 2 of/.test(document.querySelector('[data-testid=tour]')?.textContent ?? ''));
      // The step's subject (Generate, below the tall tour box) is outlined and scrolled into the
      // screen, with the tour's text and Next button still on it.
      await page.waitForSelector('[data-testid=generate].tour-spot');
      await page.waitForFunction(() => document.querySelector('.tour-spot').getBoundingClientRect().bottom <= innerHeight);
      const s = await boxes(page, { spot: '.tour-spot', tour: '[data-testid=tour] h2', next: '[data-testid=tour-next]' });
      for (const key of ['spot', 'tour', 'next']) {
        const r = s[key];
        assert.ok(r.top >= 0 && r.bottom <= s.h, `step 2's ${key} at ${JSON.stringify(r)}: outside the ${s.w}×${s.h} screen`);
      }
      await page.screenshot({ path: join(ARTIFACTS, 'layout-390-tour-open.png') });
      // Skipping is remembered as on a laptop.
      await page.click('[data-testid=tour-skip]');
      await page.reload();
      assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
      assert.equal(await tour.count(), 0);
      await assertClean(page, log, server.url);
      await page.close();
    });
  });

  test('every tour step shows its subject under the step\'s text on a laptop, a projector and a phone', async () => {
    // Steps 5 and 6 (the next-token table, Train's Start) lie far down their views: the tour box
    // stays at the screen's top and the subject comes up to just under it (it stayed below the
    // screen, 800 px and more, with the box unmoved).
    for (const [w, h] of [[1366, 768], [1920, 1080], [390, 844]]) {
      const { page, log } = await openApp(site.browser.context, site.server.url);
      await page.setViewportSize({ width: w, height: h });
      assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
      await skipTour(page);
      await page.click('[data-testid=help]');
      const steps = Number((await page.textContent('.tour-count')).match(/of (\d+)/)[1]);
      for (let i = 0; i < steps; i++) {
        await page.waitForFunction((i) => document.querySelector('[data-testid=tour]')?.dataset.step === String(i), i);
        // In view once the step's tab has drawn it: its top under the box (and on the screen),
        // the step's title and Next whole on the screen.
        const inView = () => {
          const box = (sel) => document.querySelector(sel)?.getBoundingClientRect();
          const [spot, tour, title, next] = ['.tour-spot', '[data-testid=tour]', '#tour-title', '[data-testid=tour-next]'].map(box);
          if (!spot) return false;
          const whole = (r) => r.top >= 0 && r.bottom <= innerHeight;
          const under = spot.bottom <= tour.top || spot.top >= tour.bottom;
          return under && spot.top >= 0 && spot.top <= innerHeight - 40 && whole(title) && whole(next);
        };
        const shown = await page.waitForFunction(inView, null, { timeout: 10_000 }).then(() => true, () => false);
        if (!shown) await page.screenshot({ path: join(ARTIFACTS, `layout-tour-${w}-step-${i + 1}.png`) });
        const where = await boxes(page, { spot: '.tour-spot', tour: '[data-testid=tour]' }).catch(() => 'no outlined subject');
        assert.ok(shown, `${w}×${h}, tour step ${i + 1}: its subject is not on the screen under the tour: ${JSON.stringify(where)}`);
        await page.click('[data-testid=tour-next]');
      }
      await assertClean(page, log, site.server.url);
      await page.close();
    }
  });

  test('a laptop (1366×768) and a projector (1920×1080): no sideways scroll on any tab; no card wider than the header', async () => {
    const { page } = await openApp(site.browser.context, site.server.url);
    await page.setViewportSize({ width: 1366, height: 768 });
    assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
    await skipTour(page);
    await storyAndInspect(page);
    for (const [width, height] of [[1366, 768], [1920, 1080]]) {
      await page.setViewportSize({ width, height });
      for (const tab of TABS) {
        await show(page, tab);
        const o = await overflow(page);
        assert.ok(o.scroll <= width, `${tab} at ${width} px: the page is ${o.scroll} px wide; poking out: ${o.wide.join(', ')}`);
        assert.deepEqual(o.wide, [], `${tab} at ${width} px`);
        // No card of the view is wider than the header (Inspect's were 80rem under a 68rem one).
        const r = await page.evaluate(() => {
          const top = document.querySelector('.top').getBoundingClientRect();
          const cards = [...document.querySelectorAll('#tab-panel .card')].filter((c) => c.getBoundingClientRect().width > 0);
          return {
            left: top.left, right: top.right,
            cards: cards.map((c) => { const b = c.getBoundingClientRect(); return [c.className, Math.round(b.left), Math.round(b.right)]; }),
          };
        });
        const out = r.cards.filter(([, l, rr]) => l < r.left - 1 || rr > r.right + 1);
        assert.deepEqual(out, [], `${tab} at ${width} px: cards outside the header's ${Math.round(r.left)}–${Math.round(r.right)}`);
      }
      await show(page, 'inspect');
      await screenshot(page, `layout-${width}-inspect`);
    }
    await page.close();
  });

  test('presentation mode at 1920×1080 on Generate: the settings beside the story, the whole width used', async () => {
    const page = await presenting(site, 'generate');
    await page.evaluate(() => window.scrollTo(0, 0));
    const r = await boxes(page, { controls: '.controls', story: '.story', top: '.top' });
    // No empty third on the right: the story reaches the right edge (less the page's margin).
    assert.ok(r.story.right >= r.w - 40, `the story ends at ${r.story.right} of ${r.w} px`);
    assert.ok(r.controls.left <= 40, `the settings start at ${r.controls.left} px`);
    // Side by side, both on screen, the story the wider.
    assert.ok(r.controls.right <= r.story.left && r.story.top < r.controls.bottom, JSON.stringify(r));
    assert.ok(r.story.right - r.story.left > r.controls.right - r.controls.left, JSON.stringify(r));
    assert.ok(r.story.bottom <= r.h && r.controls.bottom <= r.h, JSON.stringify(r));
    // The header spans the same width.
    assert.ok(Math.abs(r.top.right - r.w) <= 1 && r.top.left <= 1, JSON.stringify(r.top));
    const o = await overflow(page);
    assert.deepEqual(o.wide, []);
    // Every setting's menu shows its choice whole ("Typewriter (15 tok…" was cut off).
    await page.selectOption('[data-testid=pace]', 'typewriter');
    const cut = await page.$$eval('.controls select', (els) => els
      .filter((el) => el.getClientRects().length > 0)
      .filter((el) => el.scrollWidth > el.clientWidth || (() => {
        const probe = document.createElement('span');
        probe.style.cssText = `font: ${getComputedStyle(el).font}; white-space: pre; position: absolute; visibility: hidden`;
        probe.textContent = el.selectedOptions[0]?.textContent ?? '';
        document.body.append(probe);
        const w = probe.getBoundingClientRect().width;
        probe.remove();
        const cs = getComputedStyle(el);
        // The text, the padding and room for the menu's arrow (about 1.5em).
        return w + parseFloat(cs.paddingLeft) + parseFloat(cs.paddingRight) + 1.5 * parseFloat(cs.fontSize) > el.clientWidth;
      })())
      .map((el) => `${el.id}: ${el.selectedOptions[0]?.textContent} in ${el.clientWidth} px`));
    await screenshot(page, 'layout-present-1920-generate');
    await page.selectOption('[data-testid=pace]', 'fast');
    assert.deepEqual(cut, []);
    await page.close();
  });

  test('presentation mode at 1920×1080: the tokens and the zoomed head are on screen together', async () => {
    const page = await presenting(site, 'inspect');
    // Scroll so the zoomed head is wholly in view, then the token strip must be in view too.
    await page.$eval('[data-testid=zoom]', (el) => el.scrollIntoView({ block: 'nearest' }));
    const r = await boxes(page, { zoom: '[data-testid=zoom]', tokens: '[data-testid=tokens]', heads: '.heads' });
    assert.ok(r.scroll <= 1920, `the page is ${r.scroll} px wide`);
    assert.ok(r.zoom.top >= 0 && r.zoom.bottom <= r.h, `zoomed head ${JSON.stringify(r.zoom)} in ${r.h}`);
    assert.ok(r.zoom.bottom - r.zoom.top >= 400, `the zoomed head is ${r.zoom.bottom - r.zoom.top} px: too small for a projector`);
    assert.ok(r.tokens.top >= 0 && r.tokens.bottom <= r.h, `tokens ${JSON.stringify(r.tokens)} in ${r.h}`);
    // Side by side: the strip on the left, the zoomed head on the right.
    assert.ok(r.tokens.right <= r.zoom.left, `tokens ${JSON.stringify(r.tokens)}, zoom ${JSON.stringify(r.zoom)}`);
    await screenshot(page, 'layout-present-1920');
    await page.close();
  });
});
