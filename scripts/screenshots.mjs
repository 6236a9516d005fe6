// Screenshots of every tab for the README (docs/screenshots/): a phone (390×844) and a projector
// (1920×1080), and presentation mode, after writing a greedy story and inspecting it. Run by hand
// after `trunk build --release` (not part of the test command):
//   node scripts/screenshots.mjs            (writes docs/screenshots/*.png)
//   node scripts/screenshots.mjs shelf      (only the model shelf in the model card: *-shelf.png)
//   node scripts/screenshots.mjs compare    (only the Generate view's Compare settings: *-compare.png)
// Each shot is the viewport only (what a student or a class sees at once), so the files stay small.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, launchBrowser, startServer, waitForState } from '../tests/e2e/helpers.mjs';
import { show, skipTour, storyAndInspect } from '../tests/e2e/views.mjs';

const OUT = join(REPO, 'docs/screenshots');
const TABS = ['generate', 'inspect', 'train', 'build', 'storage'];
const SIZES = [['phone', 390, 844], ['projector', 1920, 1080]];

mkdirSync(OUT, { recursive: true });
const server = await startServer();
const browser = await launchBrowser();
const onlyShelf = process.argv.includes('shelf');
const onlyCompare = process.argv.includes('compare');
try {
  const page = await browser.context.newPage();
  await page.goto(server.url);
  await waitForState(page, ['ready']);
  if (onlyCompare) {
    // Three settings (the section's defaults) on one prompt, written together.
    await skipTour(page);
    await page.fill('[data-testid=prompt]', 'Once upon a time');
    await page.fill('[data-testid=steps]', '128');
    await page.click('[data-testid=compare-settings] summary');
    await page.click('[data-testid=compare-write]');
    await page.waitForFunction(() => document.querySelector('[data-testid=compare-status]')?.dataset.state === 'done');
    for (const [size, width, height] of SIZES) {
      await page.setViewportSize({ width, height });
      // The phone shows the stories (stacked); the projector the whole section.
      const at = size === 'phone' ? '[data-testid=compare-status]' : '[data-testid=compare-settings]';
      await page.$eval(at, (el) => el.scrollIntoView({ block: 'start' }));
      await page.screenshot({ path: join(OUT, `${size}-compare.png`) });
      console.log(`wrote docs/screenshots/${size}-compare.png`);
    }
    await browser.close();
    await server.close();
    process.exit(0);
  }
  if (!onlyShelf) {
    // The first visit's tour, as a newcomer sees it.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(OUT, 'phone-tour.png') });
  }
  // The shelf, scrolled to the top of the screen, at each size.
  for (const [size, width, height] of SIZES) {
    await page.setViewportSize({ width, height });
    await skipTour(page);
    await page.waitForSelector('[data-testid=shelf-item]');
    await page.$eval('[data-testid=shelf]', (el) => el.scrollIntoView({ block: 'start' }));
    await page.screenshot({ path: join(OUT, `${size}-shelf.png`) });
    console.log(`wrote docs/screenshots/${size}-shelf.png`);
  }
  if (!onlyShelf) {
    await skipTour(page);
    await page.fill('[data-testid=prompt]', 'Once upon a time');
    await storyAndInspect(page, 96);
    const shoot = async (name) => {
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: join(OUT, `${name}.png`) });
      console.log(`wrote docs/screenshots/${name}.png`);
    };
    for (const [size, width, height] of SIZES) {
      await page.setViewportSize({ width, height });
      for (const tab of TABS) {
        await show(page, tab);
        // The Build view's time estimate, measured when the view is shown.
        if (tab === 'build') await page.waitForFunction(() => document.querySelector('[data-testid=build-estimate]')?.dataset.seconds);
        await shoot(`${size}-${tab}`);
      }
    }
    // The Build tab after its learning-rate experiment (the form's defaults: four rates, four
    // ways each), scrolled to the experiment's charts.
    await show(page, 'build');
    await page.waitForSelector('[data-testid=build][data-form-restored=true]');
    await page.click('[data-testid=build-sweep-start]');
    await page.waitForFunction(() => document.querySelector('[data-testid=build-sweep-legend]')?.dataset.running === 'false', null, { timeout: 300_000 });
    for (const [size, width, height] of SIZES) {
      await page.setViewportSize({ width, height });
      await page.$eval('[data-testid=build-sweep]', (el) => el.scrollIntoView({ block: 'start' }));
      await page.screenshot({ path: join(OUT, `${size}-build-experiment.png`) });
      console.log(`wrote docs/screenshots/${size}-build-experiment.png`);
    }
    // Presentation mode on the projector: the story, and Inspect with a token pointed at.
    await page.setViewportSize({ width: 1920, height: 1080 });
    await page.click('[data-testid=present]');
    await show(page, 'generate');
    await shoot('present-generate');
    await show(page, 'inspect');
    await page.$eval('[data-testid=zoom]', (el) => el.scrollIntoView({ block: 'nearest' }));
    await page.hover('[data-testid=tok-12]');
    await page.screenshot({ path: join(OUT, 'present-inspect.png') });
    console.log('wrote docs/screenshots/present-inspect.png');
  }
} finally {
  await browser.close();
  await server.close();
}
