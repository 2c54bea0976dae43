#!/usr/bin/python3
"""The same forward pass as `moeforge eval`, written directly in PyTorch (eager, float32), for
the side-by-side benchmark: llama, mixtral, and deepseek_v3 (MLA attention, group-limited sigmoid
routing, shared experts, optional YaRN) computed the way transformers' modeling files do. Reads config.json and the safetensors files itself (no transformers
or safetensors packages on Debian). Prints tokens/s and the mean NLL so the two can be checked
against each other.

usage: torch_forward.py MODEL_DIR TOKENS.bin SEQ_LEN THREADS
"""
import json, math, os, struct, sys, time

import numpy as np
import torch
import torch.nn.functional as F

DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": None, "F64": np.float64, "I64": np.int64}


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
        if f.endswith(".safetensors") and not f.startswith("golden"):  # fixtures keep golden data beside the model
            w.update(load_safetensors(os.path.join(model_dir, f)))
    return cfg, w


def rms_norm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rope(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


def forward(cfg, w, ids):
    if cfg["model_type"] == "deepseek_v3":
        return deepseek_forward(cfg, w, ids)
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


def yarn_inv_freq(cfg, rs, dim, base):
    # transformers' _compute_yarn_parameters: blend interpolated and extrapolated frequencies.
    factor = rs["factor"]
    orig = rs.get("original_max_position_embeddings") or cfg["max_position_embeddings"]

    def get_mscale(scale, m=1.0):
        return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0

    att = rs.get("attention_factor")
    if att is None:
        m, m_all = rs.get("mscale"), rs.get("mscale_all_dim")
        att = get_mscale(factor, m) / get_mscale(factor, m_all) if m and m_all else get_mscale(factor)

    def corr_dim(rot):
        return dim * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(base))

    low, high = corr_dim(rs.get("beta_fast") or 32), corr_dim(rs.get("beta_slow") or 1)
    if rs.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001
    ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low), 0, 1)
    pos = base ** (torch.arange(0, dim, 2).float() / dim)
    extra = 1 - ramp
    return (1.0 / (factor * pos)) * (1 - extra) + (1.0 / pos) * extra, att


def deepseek_rope(cfg, T):
    """cos/sin of the rope part and the softmax scale (with YaRN's mscale² when mscale_all_dim)."""
    dim, base = cfg["qk_rope_head_dim"], cfg.get("rope_theta", 10000.0)
    rs = cfg.get("rope_scaling") or cfg.get("rope_parameters") or {}
    scale = (cfg["qk_nope_head_dim"] + dim) ** -0.5
    if rs.get("rope_type", rs.get("type", "default")) == "yarn":
        inv, att = yarn_inv_freq(cfg, rs, dim, base)
        if rs.get("mscale_all_dim"):
            m = 0.1 * rs["mscale_all_dim"] * math.log(rs["factor"]) + 1.0 if rs["factor"] > 1 else 1.0
            scale *= m * m
    else:
        inv, att = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim)), 1.0
    freqs = torch.outer(torch.arange(T).float(), inv)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos() * att, emb.sin() * att, scale


def deinterleave(x):
    # rope_interleave: [x0, x1, x2, x3, ...] -> [x0, x2, ..., x1, x3, ...], then rotate-half RoPE.
    *lead, d = x.shape
    return x.reshape(*lead, d // 2, 2).transpose(-1, -2).reshape(*lead, d)


def mla(cfg, w, p, h, cos, sin, scale, mask):
    B, T, _ = h.shape
    nh, nope, rot, vd, lora = (cfg["num_attention_heads"], cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"],
                               cfg["v_head_dim"], cfg["kv_lora_rank"])
    a = p + "self_attn."
    if cfg.get("q_lora_rank"):
        q = rms_norm(h @ w[a + "q_a_proj.weight"].T, w[a + "q_a_layernorm.weight"], 1e-6) @ w[a + "q_b_proj.weight"].T
    else:
        q = h @ w[a + "q_proj.weight"].T
    q = q.view(B, T, nh, nope + rot).transpose(1, 2)
    q_pass, q_rot = torch.split(q, [nope, rot], dim=-1)
    c = h @ w[a + "kv_a_proj_with_mqa.weight"].T
    k_pass, k_rot = torch.split(c, [lora, rot], dim=-1)
    kv = (rms_norm(k_pass, w[a + "kv_a_layernorm.weight"], 1e-6) @ w[a + "kv_b_proj.weight"].T)
    kv = kv.view(B, T, nh, nope + vd).transpose(1, 2)
    k_pass, v = torch.split(kv, [nope, vd], dim=-1)
    k_rot = k_rot.view(B, 1, T, rot)
    if cfg.get("rope_interleave", True):
        q_rot, k_rot = deinterleave(q_rot), deinterleave(k_rot)
    q_rot, k_rot = rope(q_rot, cos, sin), rope(k_rot, cos, sin)
    q = torch.cat((q_pass, q_rot), dim=-1)
    k = torch.cat((k_pass, k_rot.expand(B, nh, T, rot)), dim=-1)
    att = torch.softmax(q @ k.transpose(-1, -2) * scale + mask, dim=-1)
    o = (att @ v).transpose(1, 2).reshape(B, T, nh * vd)
    return o @ w[a + "o_proj.weight"].T


def mlp(w, q, x):
    return (F.silu(x @ w[q + "gate_proj.weight"].T) * (x @ w[q + "up_proj.weight"].T)) @ w[q + "down_proj.weight"].T


def deepseek_moe(cfg, w, p, h):
    # As DeepseekV3MoE: sigmoid scores; the correction bias only chooses; best topk_group groups
    # (group score = sum of its 2 best); top-k; weights from the plain scores, renormalised, scaled.
    E, k, G, TG = cfg["n_routed_experts"], cfg["num_experts_per_tok"], cfg["n_group"], cfg["topk_group"]
    N = h.shape[0]
    s = torch.sigmoid(h @ w[p + "mlp.gate.weight"].T)
    choice = s + w[p + "mlp.gate.e_score_correction_bias"]
    group_scores = choice.view(N, G, E // G).topk(2, dim=-1)[0].sum(-1)
    group_idx = torch.topk(group_scores, k=TG, dim=-1, sorted=False)[1]
    group_mask = torch.zeros_like(group_scores).scatter_(1, group_idx, 1)
    score_mask = group_mask.unsqueeze(-1).expand(N, G, E // G).reshape(N, E)
    chosen = torch.topk(choice.masked_fill(~score_mask.bool(), 0.0), k=k, dim=-1, sorted=False)[1]
    weights = s.gather(1, chosen)
    if cfg.get("norm_topk_prob", True):
        weights = weights / (weights.sum(-1, keepdim=True) + 1e-20)
    weights = weights * cfg.get("routed_scaling_factor", 1.0)
    out = torch.zeros_like(h)
    for e in range(E):
        rows, slot = torch.where(chosen == e)
        if rows.numel() == 0:
            continue
        y = mlp(w, p + f"mlp.experts.{e}.", h[rows])
        out.index_add_(0, rows, y * weights[rows, slot, None])
    if cfg.get("n_shared_experts"):
        out = out + mlp(w, p + "mlp.shared_experts.", h)
    return out


def deepseek_forward(cfg, w, ids):
    B, T = ids.shape
    H, eps = cfg["hidden_size"], cfg["rms_norm_eps"]
    cos, sin, scale = deepseek_rope(cfg, T)
    mask = torch.full((T, T), float("-inf")).triu(1)
    x = w["model.embed_tokens.weight"][ids]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        x = x + mla(cfg, w, p, rms_norm(x, w[p + "input_layernorm.weight"], eps), cos, sin, scale, mask)
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        if l >= cfg.get("first_k_dense_replace", 0):
            x = x + deepseek_moe(cfg, w, p, h.view(B * T, H)).view(B, T, H)
        else:
            x = x + mlp(w, p + "mlp.", h)
    x = rms_norm(x, w["model.norm.weight"], eps)
    return x @ w["lm_head.weight"].T


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


if __name__ == "__main__":
    main()
