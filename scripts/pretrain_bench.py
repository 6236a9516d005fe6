#!/usr/bin/env python3
"""Training tokens/s of PyTorch on this CPU for a llama2.c shape (the README's table puts it
beside `tinylm pretrain`; scripts/pretrain_bench.sh runs both, alternating).

    /work/venv-pretrain/bin/python scripts/pretrain_bench.py --threads 1 --batch 8 --seq 256 --steps 20

Same work as `tinylm pretrain`: the Hugging Face twin of the stories260K shape (dim 64, hidden
172, 5 layers, 8 heads, 4 kv heads, vocab 512, tied), full-batch steps of forward, mean
cross-entropy, backward, clip_grad_norm_(1.0) and AdamW (weight decay on matrices), eager
attention, float32. Pinned: torch 2.15.0, transformers 5.23.0 (see pretrain_fixture.py).
Prints one JSON line: median tokens/s over the timed steps and each step's seconds.
"""
import argparse
import json
import statistics
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--config", default="64,172,5,8,4,512,256")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dim, hidden, layers, heads, kv, vocab, seq_len = map(int, a.config.split(","))
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=dim, intermediate_size=hidden, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=kv, head_dim=dim // heads,
                      max_position_embeddings=seq_len, rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True,
                      attn_implementation="eager")
    model = LlamaForCausalLM(cfg).float().train()
    params = list(model.parameters())
    opt = torch.optim.AdamW([{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
                             {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
                            lr=5e-4, betas=(0.9, 0.95), eps=1e-8)
    ids = torch.randint(0, vocab, (a.batch, a.seq))
    times = []
    for it in range(a.steps + 2):
        t0 = time.perf_counter()
        logits = model(input_ids=ids).logits
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, vocab), ids[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if it >= 2:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(json.dumps(dict(threads=a.threads, batch=a.batch, seq=a.seq, tokens_per_s=a.batch * a.seq / med,
                          step_s=times, torch=torch.__version__)))


if __name__ == "__main__":
    main()
