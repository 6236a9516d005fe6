"""SmolLM2-135M-shaped random models as GGUF in F32, F16, BF16, Q8_0 and a Q4_K_M-style mix, for
`tinylm bench` (issue: models people have). Run by hand, not by the test command:

    python3 -m venv /tmp/smolvenv && /tmp/smolvenv/bin/pip install gguf==0.19.0 numpy==2.3.5
    /tmp/smolvenv/bin/python scripts/smol_bench_models.py /tmp/smol      # ~1.3 GB written
    /tmp/smolvenv/bin/python scripts/smol_bench_models.py /tmp/smol f16 bf16   # only those

Shape: vocab 49152, dim 576, 30 layers, 9 heads, 3 KV heads, hidden 1536, tied embeddings,
rope_theta 1e5, eps 1e-5 (SmolLM2-135M's config), context 512. Weights: normal, std 0.02 (the
norms 1), one seed. F16 by numpy, BF16 and Q8_0 by gguf's own quantizer (norms stay F32); Q4_K and Q6_K blocks (gguf quantizes neither)
are valid random blocks scaled to the same range, in llama.cpp's Q4_K_M recipe (Q6_K for attn_v
and ffn_down, Q4_K else) where rows are whole 256-value super-blocks, and its fallbacks where not
(in this shape every matrix but ffn_down): Q8_0 for attn_v, Q5_0 (gguf's quantizer) else, as a
real SmolLM2-135M Q4_K_M file has them. No tokenizer: the bench decodes token ids.
"""

import sys
from pathlib import Path

import gguf
import numpy as np

# The fixtures' k-quant block maker (engine/tests/fixtures/formats/kquant_blocks.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine/tests/fixtures/formats"))
from kquant_blocks import random_blocks  # noqa: E402

QT = gguf.GGMLQuantizationType
SHAPE = dict(vocab=49152, dim=576, hidden=1536, layers=30, heads=9, kv_heads=3, seq=512, eps=1e-5, theta=100000.0)


def tensors(rng):
    """(gguf name, f32 array) of every tensor, in llama.cpp's names and row order."""
    s = SHAPE
    d, h, hd = s["dim"], s["hidden"], s["dim"] // s["heads"]
    w = lambda rows, cols: rng.normal(0.0, 0.02, size=(rows, cols)).astype(np.float32)
    yield "token_embd.weight", w(s["vocab"], d)
    for layer in range(s["layers"]):
        b = f"blk.{layer}."
        yield b + "attn_norm.weight", np.ones(d, np.float32)
        yield b + "attn_q.weight", w(s["heads"] * hd, d)
        yield b + "attn_k.weight", w(s["kv_heads"] * hd, d)
        yield b + "attn_v.weight", w(s["kv_heads"] * hd, d)
        yield b + "attn_output.weight", w(d, s["heads"] * hd)
        yield b + "ffn_norm.weight", np.ones(d, np.float32)
        yield b + "ffn_gate.weight", w(h, d)
        yield b + "ffn_up.weight", w(h, d)
        yield b + "ffn_down.weight", w(d, h)
    yield "output_norm.weight", np.ones(d, np.float32)


def q4_k_m(name, cols):
    """llama.cpp's recipe (Q6_K for attn_v and ffn_down, Q4_K else), and its fallbacks for rows
    that are not whole 256-value super-blocks (SmolLM2's 576): Q8_0 for Q6_K, Q5_0 for Q4_K."""
    wanted = QT.Q6_K if ("attn_v" in name or "ffn_down" in name) else QT.Q4_K
    if cols % 256:
        return QT.Q8_0 if wanted == QT.Q6_K else QT.Q5_0
    return wanted


def write(path, kind, seed=135):
    s = SHAPE
    wr = gguf.GGUFWriter(str(path), "llama")
    wr.add_name(f"smol135m-random-{kind}")
    wr.add_context_length(s["seq"])
    wr.add_embedding_length(s["dim"])
    wr.add_block_count(s["layers"])
    wr.add_feed_forward_length(s["hidden"])
    wr.add_head_count(s["heads"])
    wr.add_head_count_kv(s["kv_heads"])
    wr.add_rope_freq_base(s["theta"])
    wr.add_layer_norm_rms_eps(s["eps"])
    wr.add_rope_dimension_count(s["dim"] // s["heads"])
    wr.add_vocab_size(s["vocab"])
    rng = np.random.default_rng(seed)
    blocks = np.random.default_rng(seed + 1)
    for name, w in tensors(rng):
        if w.ndim == 1 or kind == "f32":
            wr.add_tensor(name, w)
            continue
        if kind == "f16":
            wr.add_tensor(name, w.astype(np.float16))
            continue
        if kind == "bf16":
            data = gguf.quants.quantize(w, QT.BF16)
            wr.add_tensor(name, data, raw_shape=data.shape, raw_dtype=QT.BF16)
            continue
        qtype = QT.Q8_0 if kind == "q8_0" else q4_k_m(name, w.shape[1])
        if qtype in (QT.Q8_0, QT.Q5_0):
            data = gguf.quants.quantize(w, qtype)
        else:
            data = random_blocks(qtype, w.shape[0], w.shape[1], blocks, float(np.abs(w).max()))
        wr.add_tensor(name, data, raw_shape=data.shape, raw_dtype=qtype)
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()
    print(f"{path}: {path.stat().st_size / 1e6:.0f} MB", file=sys.stderr)


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/smol")
    out.mkdir(parents=True, exist_ok=True)
    for kind in sys.argv[2:] or ("f32", "f16", "bf16", "q8_0", "q4_k_m"):
        write(out / f"smol135m.{kind}.gguf", kind)


if __name__ == "__main__":
    main()
