// Steps the browser tests of the page's views share: a story and its inspection, the tabs, the tour.
import assert from 'node:assert/strict';
import { generate } from './helpers.mjs';

const SLOW = 120_000;

/** Writes a greedy story and inspects it, so every view has its full content. */
export async function storyAndInspect(page, steps = 64) {
  const run = await generate(page, { temperature: 0, topp: 0.9, seed: 1, steps });
  assert.equal(run.state, 'done', run.status);
  await page.click('[data-testid=tab-inspect]');
  await page.waitForFunction(() => document.querySelector('[data-testid=inspect-status]')?.dataset.state === 'ready',
    null, { timeout: SLOW });
  // The logit lens columns of the window arrive after the inspection.
  await page.waitForFunction(() => !document.querySelector('[data-testid=lens] [data-pending]'), null, { timeout: SLOW });
}

/** Closes the first-visit tour if it is open. */
export async function skipTour(page) {
  if (await page.locator('[data-testid=tour]').count()) await page.click('[data-testid=tour-skip]');
}

/** Shows `tab` and waits until its view is drawn. */
export async function show(page, tab) {
  await page.click(`[data-testid=tab-${tab}]`);
  await page.waitForFunction((t) => document.querySelector(`[data-testid=tab-${t}]`)?.getAttribute('aria-selected') === 'true', tab);
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

