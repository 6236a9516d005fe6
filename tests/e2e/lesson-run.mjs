// A lesson-length run (issue 21; a measurement, not a test): the Build view in headless Chromium
// grows a model from random weights on a bundled text for about a lesson's time, as a class would
// see it. The page's own estimate picks the steps that fit MINUTES; then the run goes to its end
// and this records, every 15 s, the step, training loss and newest held-out loss, and at the end
// every sample of the timeline. Writes tests/e2e/artifacts/lesson-run.json and prints a summary.
//   node tests/e2e/lesson-run.mjs      SHAPE=s260k MINUTES=15 TEXT=tinystories BATCH=8 SEQ=64 LR=0.005
//                                      SAMPLE_EVERY=… (default: about 12 samples) DEVICE=cpu|gpu
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ARTIFACTS, launchBrowser, openApp, startServer, statusText, waitForState } from './helpers.mjs';

const env = process.env;
const SHAPE = env.SHAPE ?? 's260k';
const MINUTES = Number(env.MINUTES ?? 15);
const TEXT = env.TEXT ?? 'tinystories';
const SETTINGS = { batch: Number(env.BATCH ?? 8), seq: Number(env.SEQ ?? 64), lr: Number(env.LR ?? 0.005), warmup: Number(env.WARMUP ?? 50) };
const DEVICE = env.DEVICE ?? 'cpu';

const server = await startServer('/');
const browser = await launchBrowser({ webgpu: DEVICE === 'gpu', isolateReload: true });
const status = (page, attr) => page.getAttribute('[data-testid=build-status]', attr);
try {
  // The first visit's service worker reloads the page once to make it cross-origin isolated
  // (every thread, as a class's second visit has).
  const first = (await openApp(browser.context, server.url)).page;
  await first.waitForFunction(() => self.crossOriginIsolated, null, { timeout: 60_000 });
  await first.close();
  const { page } = await openApp(browser.context, server.url);
  if ((await waitForState(page, ['ready', 'error'], 120_000)) !== 'ready') throw new Error(await statusText(page));
  await page.click('[data-testid=tab-build]');
  await page.check(`[data-testid=build-shape-${SHAPE}]`);
  await page.selectOption('[data-testid=build-text]', TEXT);
  await page.selectOption('[data-testid=build-device]', DEVICE);
  for (const [k, v] of Object.entries(SETTINGS)) await page.fill(`[data-testid=build-${k}]`, String(v));
  // First with 1,000 steps and a check every 100, to read the page's costs of a step and a check.
  await page.fill('[data-testid=build-steps]', '1000');
  await page.fill('[data-testid=build-sample-every]', '100');
  const estimate = async () => {
    await page.waitForFunction(() => document.querySelector('[data-testid=build-estimate]')?.dataset.seconds, null, { timeout: 300_000 });
    return page.$eval('[data-testid=build-estimate]', (e) => ({ stepMs: Number(e.dataset.stepMs), checkMs: Number(e.dataset.checkMs), seconds: Number(e.dataset.seconds), text: e.textContent }));
  };
  const probe = await estimate();
  // Steps and checks (about 12) that fill the lesson: steps·step + (steps/every + 1)·check.
  const budget = MINUTES * 60_000;
  const checks = 12;
  const steps = Math.max(10, Math.floor((budget - (checks + 1) * probe.checkMs) / probe.stepMs));
  const every = Number(env.SAMPLE_EVERY ?? Math.max(1, Math.round(steps / checks)));
  await page.fill('[data-testid=build-steps]', String(steps));
  await page.fill('[data-testid=build-sample-every]', String(every));
  await page.evaluate(() => document.querySelector('[data-testid=build-estimate]')?.removeAttribute('data-seconds'));
  const planned = await estimate();
  console.log(`# ${SHAPE} on ${TEXT}, ${DEVICE}: ${probe.stepMs.toFixed(1)} ms/step, ${probe.checkMs.toFixed(0)} ms/check -> ${steps} steps, a sample every ${every}; the page says: ${planned.text.trim()}`);
  const t0 = Date.now();
  await page.click('[data-testid=build-start]');
  const trace = [];
  let phase = 'running';
  while (phase === 'running') {
    await page.waitForTimeout(15_000);
    phase = await status(page, 'data-phase');
    const held = (await status(page, 'data-held')) || '';
    const [heldStep, heldLoss] = held.split(',').map(Number);
    const point = { s: Math.round((Date.now() - t0) / 1000), step: Number(await status(page, 'data-step')), loss: Number(await status(page, 'data-loss')), heldStep, heldLoss };
    trace.push(point);
    console.log(`# ${point.s} s: step ${point.step}, loss ${point.loss.toFixed(3)}, held-out ${heldLoss ? heldLoss.toFixed(3) : '-'} (step ${heldStep ?? '-'})`);
  }
  const seconds = (Date.now() - t0) / 1000;
  const samples = await page.$$eval('[data-testid=build-samples] li', (li) => li.map((l) => ({ step: Number(l.dataset.step), text: l.querySelector('.sample').textContent })));
  const timing = await page.$eval('[data-testid=build-timing]', (e) => ({ ...e.dataset })).catch(() => null);
  const device = await page.getAttribute('[data-testid=build-device-used]', 'data-device').catch(() => null);
  const threads = await page.evaluate(() => [self.crossOriginIsolated, navigator.hardwareConcurrency]);
  const result = { threads, shape: SHAPE, text: TEXT, settings: { ...SETTINGS, steps, sample_every: every }, device, phase, estimate_s: planned.seconds, seconds, timing, trace, samples, when: new Date().toISOString() };
  mkdirSync(ARTIFACTS, { recursive: true });
  writeFileSync(join(ARTIFACTS, 'lesson-run.json'), `${JSON.stringify(result, null, 2)}\n`);
  console.log(`# ended ${phase} after ${seconds.toFixed(0)} s (estimate ${planned.seconds.toFixed(0)} s)`);
  for (const s of samples) console.log(`step ${s.step}: ${s.text}`);
} finally {
  await browser.close();
  await server.close();
}
