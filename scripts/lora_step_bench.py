#!/usr/bin/env python3
"""Milliseconds per LoRA training step of PyTorch + PEFT on this CPU, the peer of
`tinylm bench --finetune` (scripts/lora_step_bench.sh runs both side by side, alternating).

    /work/venv-pretrain/bin/python scripts/lora_step_bench.py --threads 1 --shape s15m --rank 8 --batch 4 --seq 64

Same work as `tinylm bench --finetune`: a random llama2.c-shaped model as its Hugging Face twin
(float32, eager attention, base frozen), PEFT LoRA on q_proj and v_proj (alpha 8, no dropout),
forward, mean cross-entropy over next tokens, backward, AdamW on the adapter. Pinned: torch
2.15.0, transformers 5.23.0, peft 0.21.2 (pip install into the venv of pretrain_fixture.py).
Prints one JSON line: the median step in ms over --steps timed steps after two warm-ups.
"""
import argparse
import json
import statistics
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

# dim, hidden, layers, heads, kv heads, vocab, seq_len (tinylm's --shape names).
SHAPES = {"stories260K": (64, 172, 5, 8, 4, 512, 512), "s15m": (288, 768, 6, 6, 6, 32000, 256)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--shape", default="stories260K", choices=SHAPES)
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dim, hidden, layers, heads, kv, vocab, seq_len = SHAPES[a.shape]
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=dim, intermediate_size=hidden, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=kv, head_dim=dim // heads,
                      max_position_embeddings=seq_len, rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True,
                      attn_implementation="eager")
    base = LlamaForCausalLM(cfg).float()
    model = get_peft_model(base, LoraConfig(r=a.rank, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"]))
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    ids = torch.randint(0, vocab, (a.batch, a.seq))
    times = []
    for it in range(a.steps + 2):
        t0 = time.perf_counter()
        logits = model(input_ids=ids).logits
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, vocab), ids[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if it >= 2:
            times.append(time.perf_counter() - t0)
    print(json.dumps(dict(threads=a.threads, shape=a.shape, rank=a.rank, batch=a.batch, seq=a.seq,
                          step_ms=statistics.median(times) * 1e3, torch=torch.__version__)))


if __name__ == "__main__":
    main()
