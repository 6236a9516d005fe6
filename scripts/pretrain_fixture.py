#!/usr/bin/env python3
"""Reference runs for `tinylm pretrain`: trains the Hugging Face twin of a llama2.c model,
every parameter, with torch's AdamW, and saves what the engine's tests compare against.

Run by hand (not by the test command), in a venv with the pinned packages:

    python3 -m venv /work/venv-pretrain
    /work/venv-pretrain/bin/pip install torch==2.15.0 transformers==5.23.0 safetensors==0.8.0 numpy
    target/release/tinylm make-model --config 48,128,2,6,2,96,16,untied --seed 7 -o /tmp/gqa.bin
    /work/venv-pretrain/bin/python scripts/pretrain_fixture.py --model /tmp/gqa.bin \
        --out engine/tests/fixtures/pretrain/random_gqa --tokens-seed 11 --tokens 300 --batch 3 --seq 16 \
        --steps 5 --lr 3e-3 --min-lr 3e-4 --warmup 2 --schedule cosine --wd 0.1 --clip 1.0 --z-loss 1e-3
    /work/venv-pretrain/bin/python scripts/pretrain_fixture.py --model public/models/stories260K.bin \
        --out engine/tests/fixtures/pretrain/stories260K --tokens-seed 5 --tokens 400 --batch 4 --seq 32 \
        --steps 4 --lr 1e-3 --warmup 0 --schedule constant --wd 0.1 --z-loss 0

The math is llama2.c `train.py`'s: mean next-token cross-entropy (plus `z_loss ·
mean(logsumexp(logits)²)` over the same positions), `clip_grad_norm_`, `torch.optim.AdamW`
(single-tensor path) with weight decay on parameters of two or more dimensions only, and
`get_lr` (linear warm-up, cosine decay to `min_lr` at the last step) or a constant rate after the
warm-up. The data are the engine's (`lora::Dataset`): a token stream (BOS + splitmix64 ids, the
random-model recipe's `random_tokens`) cut into windows of `seq` overlapping by one token,
visited in the seeded Fisher–Yates order of each epoch.

Outputs (llama2.c layout and names: every tensor stacked over layers, `wq`/`wk` rows in
llama2.c's interleaved RoPE order): `reference.safetensors` with `grad.<name>` (step-0 gradient
of the training loss), `final.<name>` (weights after the last step), and `summary.json` (settings,
per-step cross-entropy, z-loss, gradient norm, rate, largest attention logit per layer, mean and
largest output logit, mean logsumexp, update-to-weight ratio per tensor; the loss at the final
weights on the next batch).
"""
import argparse
import json
import math
import struct

import numpy as np
import torch
import transformers
from safetensors.numpy import save_file
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

M64 = (1 << 64) - 1


def fnv1a64(name):
    h = 0xCBF29CE484222325
    for b in name.encode():
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def splitmix64(seed, i):
    z = (seed + (i + 1) * 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def random_tokens(seed, n, vocab):
    return [1] + [splitmix64(seed, i) % vocab for i in range(n - 1)]


def windows(stream, seq):
    stride = seq - 1
    starts = [s for s in range(0, len(stream), stride) if s + seq <= len(stream)]
    if starts and starts[-1] + seq < len(stream):
        starts.append(len(stream) - seq)
    return [stream[s:s + seq] for s in starts]


def epoch_order(n, seed, epoch):
    s = seed ^ fnv1a64(f"lora.data.epoch.{epoch}")
    v = list(range(n))
    for i in range(n - 1, 0, -1):
        j = splitmix64(s, i) % (i + 1)
        v[i], v[j] = v[j], v[i]
    return v


def batch(wins, size, step, seed):
    out = []
    for j in range(size):
        at = step * size + j
        out.append(wins[epoch_order(len(wins), seed, at // len(wins))[at % len(wins)]])
    return torch.tensor(out, dtype=torch.long)


NAMES = ["tok_embeddings", "rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3", "rms_final", "wcls"]


def read_v0(path):
    data = open(path, "rb").read()
    dim, hidden, layers, heads, kv, vocab, seq = struct.unpack("<7i", data[:28])
    tied = vocab > 0
    vocab = abs(vocab)
    c = dict(dim=dim, hidden=hidden, layers=layers, heads=heads, kv=kv, vocab=vocab, seq=seq, tied=tied)
    hs = dim // heads
    shapes = dict(tok_embeddings=(vocab, dim), rms_att=(layers, dim), wq=(layers, dim, dim), wk=(layers, kv * hs, dim),
                  wv=(layers, kv * hs, dim), wo=(layers, dim, dim), rms_ffn=(layers, dim), w1=(layers, hidden, dim),
                  w2=(layers, dim, hidden), w3=(layers, hidden, dim), rms_final=(dim,))
    f = np.frombuffer(data, dtype="<f4", offset=28)
    at, t = 0, {}
    for name in NAMES[:-1]:
        n = int(np.prod(shapes[name]))
        t[name] = f[at:at + n].reshape(shapes[name]).copy()
        at += n
    at += 2 * seq * hs // 2  # freq_cis_real / freq_cis_imag
    if not tied:
        t["wcls"] = f[at:at + vocab * dim].reshape(vocab, dim).copy()
    return c, t


def to_hf_rows(w, heads, hs):
    """llama2.c rows (pairs 2j, 2j+1) -> HF rotate-half rows (j, j + hs/2), per head."""
    out, n_in = w.shape
    return w.reshape(heads, hs // 2, 2, n_in).transpose(0, 2, 1, 3).reshape(out, n_in)


def to_l2c_rows(w, heads, hs):
    out, n_in = w.shape
    return w.reshape(heads, 2, hs // 2, n_in).transpose(0, 2, 1, 3).reshape(out, n_in)


def hf_model(c, t):
    hs = c["dim"] // c["heads"]
    cfg = LlamaConfig(vocab_size=c["vocab"], hidden_size=c["dim"], intermediate_size=c["hidden"],
                      num_hidden_layers=c["layers"], num_attention_heads=c["heads"], num_key_value_heads=c["kv"],
                      head_dim=hs, max_position_embeddings=c["seq"], rms_norm_eps=1e-5, rope_theta=10000.0,
                      tie_word_embeddings=c["tied"], attention_bias=False, mlp_bias=False, hidden_act="silu",
                      bos_token_id=1, eos_token_id=2, attn_implementation="eager")
    model = LlamaForCausalLM(cfg).float()
    sd = {"model.embed_tokens.weight": t["tok_embeddings"], "model.norm.weight": t["rms_final"]}
    for l in range(c["layers"]):
        p = f"model.layers.{l}."
        sd[p + "input_layernorm.weight"] = t["rms_att"][l]
        sd[p + "post_attention_layernorm.weight"] = t["rms_ffn"][l]
        sd[p + "self_attn.q_proj.weight"] = to_hf_rows(t["wq"][l], c["heads"], hs)
        sd[p + "self_attn.k_proj.weight"] = to_hf_rows(t["wk"][l], c["kv"], hs)
        sd[p + "self_attn.v_proj.weight"] = t["wv"][l]
        sd[p + "self_attn.o_proj.weight"] = t["wo"][l]
        sd[p + "mlp.gate_proj.weight"] = t["w1"][l]
        sd[p + "mlp.down_proj.weight"] = t["w2"][l]
        sd[p + "mlp.up_proj.weight"] = t["w3"][l]
    sd["lm_head.weight"] = t["tok_embeddings"] if c["tied"] else t["wcls"]
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()},
                                                strict=False)
    assert not unexpected and all("rotary" in m for m in missing), (missing, unexpected)
    if c["tied"]:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    return model


def l2c(c, get):
    """The model's tensors (or their gradients, via `get`) in llama2.c layout."""
    hs = c["dim"] // c["heads"]
    m = {}
    stack = lambda key, fix=None: np.stack([(fix or (lambda w: w))(get(f"model.layers.{l}.{key}"))
                                            for l in range(c["layers"])])
    m["tok_embeddings"] = get("model.embed_tokens.weight")
    m["rms_att"] = stack("input_layernorm.weight")
    m["wq"] = stack("self_attn.q_proj.weight", lambda w: to_l2c_rows(w, c["heads"], hs))
    m["wk"] = stack("self_attn.k_proj.weight", lambda w: to_l2c_rows(w, c["kv"], hs))
    m["wv"] = stack("self_attn.v_proj.weight")
    m["wo"] = stack("self_attn.o_proj.weight")
    m["rms_ffn"] = stack("post_attention_layernorm.weight")
    m["w1"] = stack("mlp.gate_proj.weight")
    m["w2"] = stack("mlp.down_proj.weight")
    m["w3"] = stack("mlp.up_proj.weight")
    m["rms_final"] = get("model.norm.weight")
    if not c["tied"]:
        m["wcls"] = get("lm_head.weight")
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in m.items()}


def get_lr(a, it):
    if it < a.warmup:
        return a.lr * it / a.warmup
    if a.schedule == "constant":
        return a.lr
    if it > a.steps:
        return a.min_lr
    ratio = (it - a.warmup) / max(a.steps - a.warmup, 1)
    return a.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (a.lr - a.min_lr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--tokens-seed", type=int, required=True)
    ap.add_argument("--tokens", type=int, required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--seq", type=int, required=True)
    ap.add_argument("--data-seed", type=int, default=1234)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--min-lr", type=float, default=0.0)
    ap.add_argument("--warmup", type=int, default=0)
    ap.add_argument("--schedule", choices=["cosine", "constant"], default="cosine")
    ap.add_argument("--beta1", type=float, default=0.9)
    ap.add_argument("--beta2", type=float, default=0.95)
    ap.add_argument("--eps", type=float, default=1e-8)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=0.0)
    ap.add_argument("--z-loss", type=float, default=0.0)
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    c, t = read_v0(a.model)
    model = hf_model(c, t)
    stream = random_tokens(a.tokens_seed, a.tokens, c["vocab"])
    wins = windows(stream, a.seq)
    named = dict(model.named_parameters())  # a tied lm_head is the embedding's parameter, listed once
    decay = [p for p in named.values() if p.dim() >= 2]
    no_decay = [p for p in named.values() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(a.beta1, a.beta2), eps=a.eps, foreach=False)

    captured = {}

    def hook(mod, args, kwargs):
        captured[mod.layer_idx] = (kwargs.get("hidden_states", args[0] if args else None),
                                   kwargs["position_embeddings"])

    for layer in model.model.layers:
        layer.self_attn.register_forward_pre_hook(hook, with_kwargs=True)

    def attn_logit_max(l):
        h, (cos, sin) = captured[l]
        attn = model.model.layers[l].self_attn
        B, T, _ = h.shape
        hs = attn.head_dim
        q = attn.q_proj(h).view(B, T, -1, hs).transpose(1, 2)
        k = attn.k_proj(h).view(B, T, -1, hs).transpose(1, 2)
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
        s = q @ k.transpose(-1, -2) / math.sqrt(hs)
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        return s.masked_fill(~mask, -math.inf).max().item()

    def losses(ids):
        logits = model(input_ids=ids).logits
        lg = logits[:, :-1].reshape(-1, c["vocab"])
        ce = torch.nn.functional.cross_entropy(lg, ids[:, 1:].reshape(-1))
        lse = torch.logsumexp(lg, dim=-1)
        return ce, a.z_loss * lse.pow(2).mean(), lg, lse

    steps = []
    grads0 = None
    for it in range(a.steps):
        lr = get_lr(a, it)
        for g in opt.param_groups:
            g["lr"] = lr
        ids = batch(wins, a.batch, it, a.data_seed)
        ce, z, lg, lse = losses(ids)
        (ce + z).backward()
        with torch.no_grad():
            attn = [attn_logit_max(l) for l in range(c["layers"])]
            before = l2c(c, lambda k: named[k].detach().numpy().copy())
        if it == 0:
            grads0 = l2c(c, lambda k: named[k].grad.numpy().copy())
        params = list(named.values())
        if a.clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(params, a.clip).item()
        else:
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params])).item()
        opt.step()
        opt.zero_grad(set_to_none=True)
        after = l2c(c, lambda k: named[k].detach().numpy())
        ratio = {k: float(np.linalg.norm((after[k].astype(np.float64) - before[k])) / np.linalg.norm(before[k].astype(np.float64)))
                 for k in after}
        steps.append(dict(step=it + 1, lr=lr, loss=ce.item(), z_loss=z.item(), grad_norm=norm, attn_logit_max=attn,
                          logit_mean=lg.mean().item(), logit_max=lg.max().item(), lse_mean=lse.mean().item(),
                          update_ratio=ratio))
        print(f"step {it + 1}: lr {lr:.3g} loss {ce.item():.6f} z {z.item():.3g} norm {norm:.4f} attn max {max(attn):.3f}")
    with torch.no_grad():
        final_loss = losses(batch(wins, a.batch, a.steps, a.data_seed))[0].item()
    final = l2c(c, lambda k: named[k].detach().numpy())

    import os
    os.makedirs(a.out, exist_ok=True)
    tensors = {f"grad.{k}": v for k, v in grads0.items()}
    tensors.update({f"final.{k}": v for k, v in final.items()})
    save_file(tensors, os.path.join(a.out, "reference.safetensors"))
    summary = dict(
        versions=dict(torch=torch.__version__, transformers=transformers.__version__, numpy=np.__version__),
        model=os.path.basename(a.model), config=c,
        data=dict(tokens_seed=a.tokens_seed, tokens=a.tokens, batch=a.batch, seq=a.seq, data_seed=a.data_seed,
                  windows=len(wins)),
        settings=dict(steps=a.steps, lr=a.lr, min_lr=a.min_lr, warmup=a.warmup, schedule=a.schedule, beta1=a.beta1,
                      beta2=a.beta2, eps=a.eps, wd=a.wd, clip=a.clip, z_loss=a.z_loss),
        steps=steps, final_loss=final_loss)
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
