// A text's distinctive words (its names and words), to check that an adapter's samples take its
// style: words of 3+ letters seen at least 4 times in the training part of the text whose rate
// there is over 20 times their rate in TinyStories (the plain model's training text; the head of
// its training split in shared/data, add-one smoothed). Used by scripts/measure-presets.mjs and
// the Train view's preset test (tests/e2e/ux.test.mjs).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const words = (s) => s.toLowerCase().match(/[a-z]+/g) ?? [];

function counts(s) {
  const c = new Map();
  for (const w of words(s)) c.set(w, (c.get(w) ?? 0) + 1);
  return c;
}

let reference;
/** Word counts of TinyStories (cached): `shared` is the shared data folder. */
function tinyStories(shared) {
  reference ??= counts(readFileSync(join(shared, 'corpora/tinystories/TinyStories-train.head.txt'), 'utf8'));
  return reference;
}

/** The distinctive words of `train` (the part of a text the adapter trains on), as a Set. */
export function distinctiveWords(train, shared) {
  const ref = tinyStories(shared);
  const refTotal = [...ref.values()].reduce((a, b) => a + b, 0);
  const mine = counts(train);
  const total = [...mine.values()].reduce((a, b) => a + b, 0);
  const out = new Set();
  for (const [w, k] of mine) {
    if (k >= 4 && w.length >= 3 && k / total > (20 * ((ref.get(w) ?? 0) + 1)) / refTotal) out.add(w);
  }
  return out;
}

/** How many words of `sample` (after its prompt) are in `distinct` (each occurrence counts). */
export function countDistinctive(sample, prompt, distinct) {
  const rest = sample.startsWith(prompt) ? sample.slice(prompt.length) : sample;
  return words(rest).filter((w) => distinct.has(w)).length;
}
