// Measures the Train view's presets with the CLI (the same engine): for each preset and bundled
// text, the held-out loss before and after training, the duration, and the page's sample pair
// (the text's own prompt, seed 1234, temperature 0.8, top-p 0.9, 48 tokens after the prompt)
// with the adapter off and on, counting the text's distinctive words in each
// (tests/e2e/style-words.mjs). The text is split as the page splits it (app/src/train/mod.rs
// `split`: the last tenth, at a paragraph). Prints the README's table (markdown), then the samples.
//   node scripts/measure-presets.mjs            (TINYLM_CLI: a built tinylm; default target/release)
// Candidates are tried with PRESETS='{"name":{"targets":…,"rank":…,"alpha":…,"lr":…,"steps":…}}'
// (replacing the page's two) and SEEDS=1234,7,42 (the samples' seeds; the first is the page's).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { countDistinctive, distinctiveWords } from '../tests/e2e/style-words.mjs';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = process.env.TINYLM_CLI ?? join(REPO, 'target/release/tinylm');
const MODEL = join(REPO, 'public/models/stories260K.bin');
const TOK = join(REPO, 'public/models/tok512.bin');
const SHARED = process.env.TINYLM_SHARED_DATA ?? resolve(REPO, '../shared/data');
// Each text with its samples' prompt, as app/src/page/train/data.rs CORPORA.
// TEXTS='[["aesop","The Fox"],…]' tries other prompts (a text may come more than once).
const TEXTS = process.env.TEXTS ? JSON.parse(process.env.TEXTS)
  : Object.entries({ 'peter-rabbit': 'Mr. McGregor', aesop: 'The Fox and the', alice: 'Alice', tinystories: 'Once upon a time' });
// As app/src/train/mod.rs PRESETS (batch 4, seq 64, seed 1234 for both). `steps: "pass"` is one
// pass over the training windows within 100–500 steps (`one_pass_steps` there).
const PRESETS = process.env.PRESETS ? JSON.parse(process.env.PRESETS) : {
  quick: { targets: 'gate_proj,up_proj,down_proj', rank: 8, alpha: 16, lr: 3e-3, steps: 80 },
  better: { targets: 'all', rank: 4, alpha: 8, lr: 2e-3, steps: 'pass' },
};
const onePass = (windows) => Math.min(500, Math.max(100, Math.ceil(windows / 4)));
const SEEDS = (process.env.SEEDS ?? '1234').split(',');
const SAMPLE_TOKENS = Number(process.env.SAMPLE_TOKENS ?? 48);

/** The page's split: byte 90%, moved back to a paragraph (or line) break after byte 80%. */
function split(bytes) {
  const n = bytes.length;
  if (n < 2000) return [bytes, Buffer.alloc(0)];
  let at = Math.floor((n * 9) / 10);
  while (at > 0 && (bytes[at] & 0xc0) === 0x80) at--;
  const head = bytes.subarray(0, at).toString('latin1');
  const para = head.lastIndexOf('\n\n');
  const line = head.lastIndexOf('\n');
  if (para > Math.floor((n * 8) / 10)) at = para + 2;
  else if (line > Math.floor((n * 8) / 10)) at = line + 1;
  return [bytes.subarray(0, at), bytes.subarray(at)];
}

const run = (args) => execFileSync(CLI, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const heldOut = (out) => Number(out.match(/held-out loss ([\d.]+)/)[1]);

const work = mkdtempSync(join(tmpdir(), 'tinylm-presets-'));
const rows = [];
const samples = [];
try {
  for (const [text, prompt] of TEXTS) {
    const [train, held] = split(readFileSync(join(REPO, 'public/corpora', `${text}.txt`)));
    const distinct = distinctiveWords(train.toString('utf8'), SHARED);
    // The page's sample: the prompt's tokens (BOS first) and 48 more.
    const steps = run(['encode', '-z', TOK, prompt]).trim().split(/\s+/).length + SAMPLE_TOKENS;
    const sample = (adapter, seed) => run(['generate', MODEL, '-z', TOK, ...(adapter ? ['--adapter', adapter] : []), '-t', '0.8', '-p', '0.9',
      '-s', seed, '-n', `${steps}`, '-i', prompt]).trim().replace(/\s+/g, ' ');
    const plain = SEEDS.map((seed) => sample(null, seed));
    const trainFile = join(work, `${text}.train.txt`);
    const heldFile = join(work, `${text}.held.txt`);
    writeFileSync(trainFile, train);
    writeFileSync(heldFile, held);
    for (const [name, p] of Object.entries(PRESETS)) {
      const common = ['finetune', MODEL, '-z', TOK, '--text-file', trainFile, '--eval-file', heldFile, '--targets', p.targets,
        '--rank', `${p.rank}`, '--alpha', `${p.alpha}`, '--lr', `${p.lr}`, '--batch', '4', '--seq', '64',
        '--init-seed', '1234', '--data-seed', '1234'];
      const zero = run([...common, '--steps', '0', '-o', join(work, 'zero')]);
      const before = heldOut(zero);
      const trainSteps = p.steps === 'pass' ? onePass(Number(zero.match(/data: (\d+) window/)[1])) : p.steps;
      const dir = join(work, `${text}-${name}`);
      const t0 = process.hrtime.bigint();
      const after = heldOut(run([...common, '--steps', `${trainSteps}`, '-o', dir]));
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const on = SEEDS.map((seed) => sample(dir, seed));
      // Per seed, the plain model's count and the adapter's.
      const words = [plain, on].map((texts) => texts.map((t) => countDistinctive(t, prompt, distinct)));
      rows.push({ preset: name, text, prompt, steps: trainSteps, before, after, seconds, words });
      samples.push({ preset: name, text, plain: plain[0], sample: on[0] });
      console.error(JSON.stringify(rows[rows.length - 1]));
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
console.log('| preset | text (prompt) | steps | held-out before | held-out after | duration (CLI, 1 thread) | distinctive words plain → adapter |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const r of rows) {
  console.log(`| ${r.preset} | ${r.text} (“${r.prompt}”) | ${r.steps} | ${r.before.toFixed(3)} | ${r.after.toFixed(3)} | ${r.seconds.toFixed(1)} s | ${r.words[0][0]} → ${r.words[1][0]}${SEEDS.length > 1 ? ` (seeds ${SEEDS.join(', ')}: ${r.words[0].join('/')} → ${r.words[1].join('/')})` : ''} |`);
}
console.log();
for (const s of samples) console.log(`- ${s.preset}, ${s.text}: plain “${s.plain}”; adapter “${s.sample}”`);
