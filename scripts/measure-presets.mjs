// Measures the Train view's presets with the CLI (the same engine): for each preset and bundled
// text, the held-out loss before and after training, the duration, and a sample with the adapter.
// The text is split as the page splits it (app/src/train/mod.rs `split`: the last tenth, at a
// paragraph). Prints the README's table (markdown), then the samples.
//   node scripts/measure-presets.mjs            (TINYLM_CLI: a built tinylm; default target/release)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = process.env.TINYLM_CLI ?? join(REPO, 'target/release/tinylm');
const MODEL = join(REPO, 'public/models/stories260K.bin');
const TOK = join(REPO, 'public/models/tok512.bin');
const TEXTS = ['peter-rabbit', 'aesop', 'alice', 'tinystories'];
// As app/src/train/mod.rs PRESETS (batch 4, seq 64, seed 1234 for both).
const PRESETS = {
  quick: { targets: 'q_proj,v_proj', rank: 4, alpha: 8, lr: 2e-3, steps: 150 },
  better: { targets: 'q_proj,k_proj,v_proj,o_proj', rank: 8, alpha: 16, lr: 1e-3, steps: 150 },
};

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
  for (const text of TEXTS) {
    const [train, held] = split(readFileSync(join(REPO, 'public/corpora', `${text}.txt`)));
    const trainFile = join(work, `${text}.train.txt`);
    const heldFile = join(work, `${text}.held.txt`);
    writeFileSync(trainFile, train);
    writeFileSync(heldFile, held);
    for (const [name, p] of Object.entries(PRESETS)) {
      const common = ['finetune', MODEL, '-z', TOK, '--text-file', trainFile, '--eval-file', heldFile, '--targets', p.targets,
        '--rank', `${p.rank}`, '--alpha', `${p.alpha}`, '--lr', `${p.lr}`, '--batch', '4', '--seq', '64',
        '--init-seed', '1234', '--data-seed', '1234'];
      const before = heldOut(run([...common, '--steps', '0', '-o', join(work, 'zero')]));
      const dir = join(work, `${text}-${name}`);
      const t0 = process.hrtime.bigint();
      const after = heldOut(run([...common, '--steps', `${p.steps}`, '-o', dir]));
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      rows.push({ preset: name, text, before, after, seconds });
      const sample = run(['generate', MODEL, '-z', TOK, '--adapter', dir, '-t', '0.8', '-p', '0.9', '-s', '1234', '-n', '60', '-i', 'Once upon a time']);
      samples.push({ preset: name, text, sample: sample.trim().replace(/\s+/g, ' ') });
      console.error(JSON.stringify(rows[rows.length - 1]));
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
console.log('| preset | text | held-out before | held-out after | duration (CLI, 1 thread) |');
console.log('| --- | --- | --- | --- | --- |');
for (const r of rows) {
  console.log(`| ${r.preset} | ${r.text} | ${r.before.toFixed(3)} | ${r.after.toFixed(3)} | ${r.seconds.toFixed(1)} s |`);
}
console.log();
for (const s of samples) console.log(`- ${s.preset}, ${s.text}: “${s.sample}”`);
