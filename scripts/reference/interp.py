#!/usr/bin/env python3
"""Reference numbers for the Inspect experiments (issue 18): head knock-outs (zero and mean),
skipped blocks, activation patching and steering, computed by Hugging Face transformers'
LlamaForCausalLM with forward hooks, in float64, for stories260K and a random GQA model.

Independent of the engine: the weights are read from the llama2.c file (stories260K) or made by
this file's own implementation of the random-model recipe (shared/docs/reference-models.md,
checked against shared/data/reference/random_models_sha256.json); texts are encoded by
SentencePiece's tok512.model. Patching reruns every patched prompt from scratch.

Run by hand, from the repository root (outputs are committed; see engine/tests/suite/interp.rs):

    python3 -m venv /work/venv-interp
    /work/venv-interp/bin/pip install -r scripts/reference/requirements-interp.txt
    /work/venv-interp/bin/python scripts/reference/interp.py --shared ../shared/data \
        --out engine/tests/fixtures/interp
"""

import argparse
import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file
from transformers import LlamaConfig, LlamaForCausalLM

torch.set_grad_enabled(False)

# ---------------------------------------------------------------- llama2.c v0 weights


def read_v0(path):
    """(config dict, tensors dict) of a llama2.c v0 checkpoint."""
    raw = Path(path).read_bytes()
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq = struct.unpack("<7i", raw[:28])
    cfg = dict(dim=dim, hidden=hidden, layers=n_layers, heads=n_heads, kv_heads=n_kv, vocab=abs(vocab), seq=seq, tied=vocab > 0)
    data = np.frombuffer(raw[28:], dtype="<f4")
    tensors, at = {}, 0
    for name, shape in v0_shapes(cfg):
        n = int(np.prod(shape))
        tensors[name] = data[at : at + n].reshape(shape).astype(np.float64)
        at += n
    assert at == data.size, "unexpected trailing data"
    return cfg, tensors


def v0_shapes(c):
    d, h, l, v, s = c["dim"], c["hidden"], c["layers"], c["vocab"], c["seq"]
    hs = d // c["heads"]
    kv = hs * c["kv_heads"]
    shapes = [
        ("tok_embeddings", (v, d)),
        ("rms_att", (l, d)),
        ("wq", (l, d, d)),
        ("wk", (l, kv, d)),
        ("wv", (l, kv, d)),
        ("wo", (l, d, d)),
        ("rms_ffn", (l, d)),
        ("w1", (l, h, d)),
        ("w2", (l, d, h)),
        ("w3", (l, h, d)),
        ("rms_final", (d,)),
        ("freq_cis_real", (s, hs // 2)),
        ("freq_cis_imag", (s, hs // 2)),
    ]
    if not c["tied"]:
        shapes.append(("wcls", (v, d)))
    return shapes


# ---------------------------------------------------------------- the random-model recipe

M64 = (1 << 64) - 1


def fnv1a64(name):
    h = 0xCBF29CE484222325
    for b in name.encode():
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def splitmix64(seed, idx):
    """Element idx (a uint64 array) of the splitmix64 stream of seed."""
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + (idx + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def det_uniform(seed, name, n, bound, center):
    s = seed ^ fnv1a64(name)
    u = (splitmix64(s, np.arange(n, dtype=np.uint64)) >> np.uint64(40)).astype(np.float64) / float(1 << 24)
    return (center + bound * (2.0 * u - 1.0)).astype(np.float32)


def random_model(c, seed):
    d, h = float(c["dim"]), float(c["hidden"])
    std = {
        "tok_embeddings": (0.0, 3.0 / np.sqrt(d)),
        "wcls": (0.0, 3.0 / np.sqrt(d)),
        "wq": (0.0, 2.0 / np.sqrt(d)),
        "w2": (0.0, 1.0 / np.sqrt(h)),
        "rms_att": (1.0, 0.2 / np.sqrt(3.0)),
        "rms_ffn": (1.0, 0.2 / np.sqrt(3.0)),
        "rms_final": (1.0, 0.2 / np.sqrt(3.0)),
    }
    tensors = {}
    for name, shape in v0_shapes(c):
        if name.startswith("freq_cis"):
            continue
        center, sd = std.get(name, (0.0, 1.0 / np.sqrt(d)))
        tensors[name] = det_uniform(seed, name, int(np.prod(shape)), sd * np.sqrt(3.0), center).reshape(shape)
    return tensors


def v0_sha_without_rope(c, tensors):
    head = struct.pack("<7i", c["dim"], c["hidden"], c["layers"], c["heads"], c["kv_heads"], c["vocab"] if c["tied"] else -c["vocab"], c["seq"])
    body = b"".join(tensors[n].astype("<f4").tobytes() for n, _ in v0_shapes(c) if not n.startswith("freq_cis"))
    return hashlib.sha256(head + body).hexdigest()


def random_tokens(seed, n, vocab):
    return [1] + [int(x) % vocab for x in splitmix64(seed, np.arange(n - 1, dtype=np.uint64))]


def parse_config(spec):
    p = spec.split(",")
    names = ["dim", "hidden", "layers", "heads", "kv_heads", "vocab", "seq"]
    c = {k: int(v) for k, v in zip(names, p)}
    c["tied"] = len(p) < 8 or p[7] == "tied"
    return c


# ---------------------------------------------------------------- the Hugging Face twin


def hf_model(c, t):
    """LlamaForCausalLM in float64 holding llama2.c weights `t` (q/k rows permuted per head:
    llama2.c rotates pairs (2j, 2j+1), HF's rotate_half pairs j with j + hs/2)."""
    d, hs = c["dim"], c["dim"] // c["heads"]
    cfg = LlamaConfig(
        vocab_size=c["vocab"],
        hidden_size=d,
        intermediate_size=c["hidden"],
        num_hidden_layers=c["layers"],
        num_attention_heads=c["heads"],
        num_key_value_heads=c["kv_heads"],
        head_dim=hs,
        max_position_embeddings=c["seq"],
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=c["tied"],
        attention_bias=False,
        mlp_bias=False,
        hidden_act="silu",
    )
    cfg._attn_implementation = "eager"
    m = LlamaForCausalLM(cfg).to(torch.float64).eval()

    def perm(w, heads):
        return w.reshape(heads, hs // 2, 2, -1).transpose(0, 2, 1, 3).reshape(w.shape)

    T = lambda a: torch.tensor(np.asarray(a, dtype=np.float64))
    sd = {"model.embed_tokens.weight": T(t["tok_embeddings"]), "model.norm.weight": T(t["rms_final"])}
    sd["lm_head.weight"] = T(t["tok_embeddings"] if c["tied"] else t["wcls"])
    for i in range(c["layers"]):
        p = f"model.layers.{i}."
        sd[p + "input_layernorm.weight"] = T(t["rms_att"][i])
        sd[p + "post_attention_layernorm.weight"] = T(t["rms_ffn"][i])
        sd[p + "self_attn.q_proj.weight"] = T(perm(t["wq"][i], c["heads"]))
        sd[p + "self_attn.k_proj.weight"] = T(perm(t["wk"][i], c["kv_heads"]))
        sd[p + "self_attn.v_proj.weight"] = T(t["wv"][i])
        sd[p + "self_attn.o_proj.weight"] = T(t["wo"][i])
        sd[p + "mlp.gate_proj.weight"] = T(t["w1"][i])
        sd[p + "mlp.up_proj.weight"] = T(t["w3"][i])
        sd[p + "mlp.down_proj.weight"] = T(t["w2"][i])
    missing, unexpected = m.load_state_dict(sd, strict=False)
    assert not unexpected and all("rotary" in k for k in missing), (missing, unexpected)
    return m


class Hooks:
    """Forward hooks on the twin, removed on exit."""

    def __init__(self, m):
        self.m, self.handles = m, []

    def __enter__(self):
        return self

    def __exit__(self, *a):
        for h in self.handles:
            h.remove()

    def layer(self, i):
        return self.m.model.layers[i]

    def heads(self, i, fn):
        """fn(o [T, dim]) may change the heads' outputs (o_proj's input) in place."""

        def pre(_mod, args):
            o = args[0].clone()
            fn(o[0])
            return (o,) + tuple(args[1:])

        self.handles.append(self.layer(i).self_attn.o_proj.register_forward_pre_hook(pre))

    def attention_out(self, i, fn):
        def post(_mod, _args, out):
            y = out[0].clone()
            fn(y[0])
            return (y,) + tuple(out[1:])

        self.handles.append(self.layer(i).self_attn.register_forward_hook(post))

    def mlp_out(self, i, fn):
        def post(_mod, _args, out):
            y = out.clone()
            fn(y[0])
            return y

        self.handles.append(self.layer(i).mlp.register_forward_hook(post))

    def resid(self, i, fn):
        """fn(x [T, dim]) sees (and may change) the residual after layer i."""

        def post(_mod, _args, out):
            x = (out[0] if isinstance(out, tuple) else out).clone()
            fn(x[0])
            return (x,) + tuple(out[1:]) if isinstance(out, tuple) else x

        self.handles.append(self.layer(i).register_forward_hook(post))


def logits(m, tokens):
    return m(torch.tensor([tokens]), use_cache=False).logits[0]


def record(m, c, tokens):
    """(logits [T,V], resid [L,T,D] after each layer, heads [L,T,D] before o_proj)."""
    resid, heads = [None] * c["layers"], [None] * c["layers"]
    with Hooks(m) as h:
        for i in range(c["layers"]):
            h.resid(i, lambda x, i=i: resid.__setitem__(i, x.clone()))
            h.heads(i, lambda o, i=i: heads.__setitem__(i, o.clone()))
        out = logits(m, tokens)
    return out, torch.stack(resid), torch.stack(heads)


# ---------------------------------------------------------------- the experiments


def knockout(m, c, tokens, heads, means=None, skip_attn=(), skip_mlp=()):
    hs = c["dim"] // c["heads"]
    with Hooks(m) as h:
        for layer in sorted({l for l, _ in heads}):
            mine = [hd for l, hd in heads if l == layer]

            def fill(o, layer=layer, mine=mine):
                for hd in mine:
                    sl = slice(hd * hs, (hd + 1) * hs)
                    o[:, sl] = 0.0 if means is None else means[layer, sl]

            h.heads(layer, fill)
        for layer in skip_attn:
            h.attention_out(layer, lambda y: y.zero_())
        for layer in skip_mlp:
            h.mlp_out(layer, lambda y: y.zero_())
        return logits(m, tokens)


def patching(m, c, clean, corrupt, answers):
    a, b = answers
    diff = lambda lg: float(lg[-1, a] - lg[-1, b])
    clean_logits, clean_resid, clean_heads = record(m, c, clean)
    corrupt_diff = diff(logits(m, corrupt))
    L, H, T, hs = c["layers"], c["heads"], len(clean), c["dim"] // c["heads"]
    resid_map = np.zeros((L, T))
    heads_map = np.zeros((L, H, T))
    for layer in range(L):
        for t in range(T):
            with Hooks(m) as h:
                h.resid(layer, lambda x, layer=layer, t=t: x[t].copy_(clean_resid[layer, t]))
                resid_map[layer, t] = diff(logits(m, corrupt))
            for hd in range(H):
                sl = slice(hd * hs, (hd + 1) * hs)
                with Hooks(m) as h:
                    h.heads(layer, lambda o, layer=layer, t=t, sl=sl: o[t, sl].copy_(clean_heads[layer, t, sl]))
                    heads_map[layer, hd, t] = diff(logits(m, corrupt))
    return diff(clean_logits), corrupt_diff, resid_map, heads_map


def direction(m, c, toward, away, layer):
    """Per prompt the residual after `layer` averaged over positions after BOS; the list means'
    difference."""

    def mean(prompts):
        return torch.stack([record(m, c, p)[1][layer, 1:].mean(0) for p in prompts]).mean(0)

    return mean(toward) - mean(away)


def steered(m, c, tokens, layer, vec, strength):
    with Hooks(m) as h:
        h.resid(layer, lambda x: x.add_(strength * vec))
        return logits(m, tokens)


# ---------------------------------------------------------------- the cases

F32 = lambda x: np.ascontiguousarray(np.asarray(x, dtype=np.float64), dtype=np.float32)
I32 = lambda x: np.asarray(x, dtype=np.int32)


def run_case(name, c, t, spec, out):
    m = hf_model(c, t)
    tokens = spec["tokens"]
    base, _, heads = record(m, c, tokens)
    means = heads.mean(1)  # [L, D]: each head's mean output over the text's positions
    k = spec["knockout"]
    tensors = {
        "tokens": I32(tokens),
        "logits": F32(base),
        "ablate_zero.logits": F32(knockout(m, c, tokens, k["heads"])),
        "ablate_mean.means": F32(means),
        "ablate_mean.logits": F32(knockout(m, c, tokens, k["heads"], means=means)),
        "skip.logits": F32(knockout(m, c, tokens, [], skip_attn=k["skip_attn"], skip_mlp=k["skip_mlp"])),
    }
    p = spec["patch"]
    cd, xd, rmap, hmap = patching(m, c, p["clean"], p["corrupt"], p["answers"])
    tensors.update({"patch.diffs": F32([cd, xd]), "patch.resid": F32(rmap), "patch.heads": F32(hmap)})
    s = spec["steer"]
    vec = direction(m, c, s["toward"], s["away"], s["layer"])
    tensors["steer.direction"] = F32(vec)
    tensors["steer.logits"] = F32(steered(m, c, tokens, s["layer"], vec, s["strength"]))
    save_file(tensors, str(out / f"{name}.safetensors"))
    (out / f"{name}.json").write_text(json.dumps(spec, indent=1) + "\n")
    print(f"{name}: clean diff {cd:.4f}, corrupt diff {xd:.4f}; |direction| {float(vec.norm()):.4f}")
    return base


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default="../shared/data")
    ap.add_argument("--out", default="engine/tests/fixtures/interp")
    a = ap.parse_args()
    shared, out = Path(a.shared), Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    # The recipe, checked against the independent implementation's hashes.
    ref = json.loads((shared / "reference/random_models_sha256.json").read_text())["cases"]
    for case in ref.values():
        c = parse_config(case["config"])
        assert v0_sha_without_rope(c, random_model(c, case["seed"])) == case["sha256_without_rope_tables"], case

    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(shared / "tokenizers/tok512.model"))
    enc = lambda s: [1] + sp.encode(s)
    one = lambda s: (lambda ids: ids[0] if len(ids) == 1 else (_ for _ in ()).throw(ValueError(f"{s!r} is {ids}")))(sp.encode(s))

    c, t = read_v0(shared / "models/stories260K.bin")
    text = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426]
    # The engine's ready-made example "she or he" (trace::PATCH_EXAMPLES).
    clean, corrupt = "Once upon a time, there was a little girl. One day,", "Once upon a time, there was a little boy. One day,"
    spec = {
        "model": "stories260K.bin",
        "tokens": text,
        "knockout": {"heads": [[0, 2], [1, 5], [3, 0], [4, 7]], "skip_attn": [1], "skip_mlp": [3]},
        "patch": {"clean_text": clean, "corrupt_text": corrupt, "clean": enc(clean), "corrupt": enc(corrupt), "answers": [one("she"), one("he")]},
        "steer": {
            "layer": 2,
            "strength": 4.0,
            "toward_text": ["Lily was very happy.", "They laughed and played all day.", "She smiled a big smile."],
            "away_text": ["Lily was very sad.", "They cried and were scared all day.", "She frowned and cried."],
        },
    }
    spec["steer"]["toward"] = [enc(s) for s in spec["steer"]["toward_text"]]
    spec["steer"]["away"] = [enc(s) for s in spec["steer"]["away_text"]]
    assert len(spec["patch"]["clean"]) == len(spec["patch"]["corrupt"])
    base = run_case("stories260K", c, t, spec, out)
    # The twin against llama2.c run.c's own logits (shared fixture).
    from safetensors.numpy import load_file

    runc = load_file(str(shared / "reference/stories260K_attention.safetensors"))["llama2c.logits"]
    print(f"twin vs run.c logits: max |diff| {np.abs(base.numpy() - runc).max():.2e}")

    shape, seed = "60,144,3,6,2,300,64,untied", 18
    c = parse_config(shape)
    t = {k: v.astype(np.float64) for k, v in random_model(c, seed).items()}
    v = c["vocab"]
    spec = {
        "model": f"random {shape} seed {seed} (shared/docs/reference-models.md)",
        "config": shape,
        "seed": seed,
        "tokens": random_tokens(181, 12, v),
        "knockout": {"heads": [[0, 1], [1, 4], [1, 5], [2, 0]], "skip_attn": [2], "skip_mlp": [0]},
        "patch": {"clean": random_tokens(182, 10, v), "answers": [7, 42]},
        "steer": {"layer": 1, "strength": 2.5, "toward": [random_tokens(183 + i, 6, v) for i in range(3)], "away": [random_tokens(186 + i, 5, v) for i in range(2)]},
    }
    corrupt = list(spec["patch"]["clean"])
    corrupt[3], corrupt[6] = (corrupt[3] + 1) % v, (corrupt[6] + 100) % v
    spec["patch"]["corrupt"] = corrupt
    run_case("random_gqa", c, t, spec, out)


if __name__ == "__main__":
    main()
