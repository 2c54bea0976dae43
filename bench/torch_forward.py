#!/usr/bin/python3
"""The same forward pass as `moeforge eval`, written directly in PyTorch (eager, float32), for
the side-by-side benchmark. Reads config.json and the safetensors files itself (no transformers
or safetensors packages on Debian). Prints tokens/s and the mean NLL so the two can be checked
against each other.

usage: torch_forward.py MODEL_DIR TOKENS.bin SEQ_LEN THREADS
"""
import json, math, os, struct, sys, time

import numpy as np
import torch
import torch.nn.functional as F

DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": None, "F64": np.float64}


def load_safetensors(path):
    out = {}
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        raw = np.frombuffer(data[a:b], dtype=np.uint16 if e["dtype"] == "BF16" else DTYPES[e["dtype"]])
        if e["dtype"] == "BF16":
            t = torch.from_numpy((raw.astype(np.uint32) << 16).view(np.float32).copy())
        else:
            t = torch.from_numpy(raw.astype(np.float32))
        out[name] = t.reshape(e["shape"])
    return out


def load(model_dir):
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    w = {}
    for f in sorted(os.listdir(model_dir)):
        if f.endswith(".safetensors"):
            w.update(load_safetensors(os.path.join(model_dir, f)))
    return cfg, w


def rms_norm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rope(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


def forward(cfg, w, ids):
    B, T = ids.shape
    H, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads", nh)
    hd = cfg.get("head_dim", H // nh)
    eps = cfg["rms_norm_eps"]
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2).float() / hd))
    freqs = torch.outer(torch.arange(T).float(), inv)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    mask = torch.full((T, T), float("-inf")).triu(1)
    x = w["model.embed_tokens.weight"][ids]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = (h @ w[p + "self_attn.q_proj.weight"].T).view(B, T, nh, hd).transpose(1, 2)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).view(B, T, nkv, hd).transpose(1, 2)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).view(B, T, nkv, hd).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        k = k.repeat_interleave(nh // nkv, dim=1)
        v = v.repeat_interleave(nh // nkv, dim=1)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + mask, dim=-1)
        o = (att @ v).transpose(1, 2).reshape(B, T, nh * hd)
        x = x + o @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        if "num_local_experts" in cfg:
            x = x + moe(cfg, w, p, h.view(B * T, H)).view(B, T, H)
        else:
            g = h @ w[p + "mlp.gate_proj.weight"].T
            u = h @ w[p + "mlp.up_proj.weight"].T
            x = x + (F.silu(g) * u) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], eps)
    return x @ w["lm_head.weight"].T


def moe(cfg, w, p, h):
    # As transformers' Mixtral block: softmax, top-k, renormalise, loop over experts.
    E, k = cfg["num_local_experts"], cfg["num_experts_per_tok"]
    probs = torch.softmax(h @ w[p + "block_sparse_moe.gate.weight"].T, dim=-1)
    weights, chosen = torch.topk(probs, k, dim=-1)
    weights = weights / weights.sum(-1, keepdim=True)
    out = torch.zeros_like(h)
    for e in range(E):
        rows, slot = torch.where(chosen == e)
        if rows.numel() == 0:
            continue
        x = h[rows]
        q = p + f"block_sparse_moe.experts.{e}."
        y = (F.silu(x @ w[q + "w1.weight"].T) * (x @ w[q + "w3.weight"].T)) @ w[q + "w2.weight"].T
        out.index_add_(0, rows, y * weights[rows, slot, None])
    return out


def main():
    model_dir, tokens_path, seq_len, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    cfg, w = load(model_dir)
    ids = torch.from_numpy(np.fromfile(tokens_path, dtype=np.uint16).astype(np.int64))
    ids = ids[: len(ids) // seq_len * seq_len].view(-1, seq_len)
    batch = max(1, 4096 // seq_len)
    start = time.time()
    nll, count = 0.0, 0
    with torch.no_grad():
        for b in range(0, ids.shape[0], batch):
            chunk = ids[b : b + batch]
            logits = forward(cfg, w, chunk)
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), chunk[:, 1:].reshape(-1), reduction="sum")
            nll += loss.item()
            count += chunk.shape[0] * (seq_len - 1)
    seconds = time.time() - start
    print(json.dumps({"tokens": ids.numel(), "seconds": seconds, "tokens_per_second": ids.numel() / seconds, "mean_nll": nll / count}))


main()
