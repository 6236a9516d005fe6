// Accessibility (issue 17): axe-core (from npm, injected by this test only, which is why its
// browser bypasses the page's CSP) finds no critical or serious violation, nor a missing main
// landmark or content outside landmarks, on any tab, in presentation mode too; and the token
// strip is one Tab stop with the arrow keys inside it (a roving tabindex).
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, test } from 'node:test';
import { openApp, useSite, waitForState } from './helpers.mjs';
import { show, storyAndInspect } from './views.mjs';

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const TABS = ['generate', 'inspect', 'train', 'build', 'storage'];
/** Moderate rules the issue names as findings: they must stay fixed too. */
const ALSO = ['landmark-one-main', 'region'];

/** axe-core's violations on the page as it is now: "rule (impact): node, node" lines. */
async function violations(page) {
  if (!(await page.evaluate(() => 'axe' in window))) await page.addScriptTag({ path: AXE });
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 4) }));
  });
  return found
    .filter((v) => v.impact === 'critical' || v.impact === 'serious' || ALSO.includes(v.id))
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.join(', ')}`);
}

describe('Accessibility', () => {
  const site = useSite({ bypassCSP: true });

  test('axe-core: no critical or serious violations on any tab, normal and presentation mode', async () => {
    const { page } = await openApp(site.browser.context, site.server.url);
    assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
    await storyAndInspect(page);
    for (const present of [false, true]) {
      if (present) await page.click('[data-testid=present]');
      for (const tab of TABS) {
        await show(page, tab);
        // Open every "What am I looking at?" and one glossary word, so their text is checked too.
        await page.$$eval('details.about', (ds) => ds.forEach((d) => { d.open = true; }));
        const term = page.locator('button.term').first();
        if (await term.count()) await term.click();
        const v = await violations(page);
        assert.deepEqual(v, [], `${tab}${present ? ' (presentation mode)' : ''}`);
      }
    }
    console.log(`# axe-core ${await page.evaluate(() => window.axe.version)}: 0 critical, 0 serious on ${TABS.length} tabs × 2 modes`);
    await page.close();
  });

  test('the token strip is one Tab stop; arrow keys, Home and End move inside it; Enter picks', async () => {
    const { page } = await openApp(site.browser.context, site.server.url);
    assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
    await storyAndInspect(page, 40);
    const n = await page.locator('[data-testid=tokens] .tok').count();
    assert.ok(n > 30, `${n} tokens`);
    assert.equal(await page.locator('[data-testid=tokens] .tok[tabindex="0"]').count(), 1);
    const focused = () => page.evaluate(() => document.activeElement?.dataset.testid ?? document.activeElement?.tagName);
    // Tab from the control before the strip lands on one token; the next Tab leaves the strip.
    await page.focus('[data-testid=mean-heads]');
    await page.keyboard.press('Tab');
    const first = await focused();
    assert.match(first, /^tok-\d+$/);
    await page.keyboard.press('Tab');
    assert.doesNotMatch(await focused(), /^tok-/, 'a second Tab must leave the strip');
    await page.keyboard.press('Shift+Tab');
    assert.equal(await focused(), first);
    // Arrows move one token; Home and End go to the ends; the Tab stop follows.
    const at = Number(first.slice(4));
    await page.keyboard.press('ArrowRight');
    assert.equal(await focused(), `tok-${at + 1}`);
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowLeft');
    assert.equal(await focused(), `tok-${at + 1}`);
    await page.keyboard.press('ArrowDown');
    assert.equal(await focused(), `tok-${at + 2}`);
    await page.keyboard.press('End');
    assert.equal(await focused(), `tok-${n - 1}`);
    await page.keyboard.press('Home');
    assert.equal(await focused(), 'tok-0');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    assert.equal(await page.getAttribute('[data-testid=tok-2]', 'tabindex'), '0');
    assert.equal(await page.locator('[data-testid=tokens] .tok[tabindex="0"]').count(), 1);
    // Focus lights up what the token attends to; Enter picks it for the next-token view.
    const lit = await page.$$eval('[data-testid=tokens] .tok', (els) => els.slice(0, 4).map((el) => el.style.backgroundColor));
    assert.ok(lit.slice(0, 3).includes('rgb(230, 159, 0)'), `the strongest of tokens 0–2 is lit fully: ${lit}`);
    assert.equal(lit[3], 'rgba(230, 159, 0, 0)', 'a later token gets no attention');
    await page.keyboard.press('Enter');
    assert.match(await page.textContent('.next h2'), /^After token 2 /);
    // Passing the whole strip takes one Tab, not 40.
    await page.keyboard.press('Tab');
    assert.doesNotMatch(await focused(), /^tok-/);
    await page.close();
  });

  test('axe-core: the Build tab with the learning-rate experiment run (its charts and legends)', async () => {
    const { page } = await openApp(site.browser.context, site.server.url);
    assert.equal(await waitForState(page, ['ready', 'error']), 'ready');
    await show(page, 'build');
    await page.waitForSelector('[data-testid=build][data-form-restored=true]');
    // A short experiment, four ways at two rates (30: past where training breaks).
    await page.fill('[data-testid=build-rates]', '0.003, 30');
    await page.fill('[data-testid=build-sweep-steps]', '8');
    await page.click('[data-testid=build-sweep-start]');
    await page.waitForFunction(() => document.querySelector('[data-testid=build-sweep-legend]')?.dataset.running === 'false', null, { timeout: 120_000 });
    assert.equal(await page.$$eval('[data-testid=build-rate-loss] svg [data-lr]', (p) => p.length), 8);
    assert.deepEqual(await violations(page), []);
    await page.close();
  });
});
