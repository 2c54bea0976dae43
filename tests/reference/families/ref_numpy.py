#!/usr/bin/python3
"""Independent float64 NumPy forward pass for the directories in models/ (no torch, no transformers).

Written from FACTS.md, not from transformers' code: reads only config.json (v4 `rope_theta`/`rope_scaling`
spelling or v5 `rope_parameters` spelling) and the safetensors files with its own parser, handles the
per-expert, the fused (transformers v5) and the MXFP4 (gpt-oss) expert layouts, and compares every golden
tensor. Results go to models/numpy_reference.json (and are merged into golden.json by make_golden.py finalize).
"""
import json
import math
import os
import sys

import numpy as np

FAM = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(FAM, "generated")  # full output; shrink.py derives the committed models/ from it
FIXTURES = os.path.join(os.environ.get("MOEFORGE_FIXTURES", os.path.join(FAM, "../../../../shared/fixtures")), "models")

# ------------------------------------------------------------------------------------------------ safetensors
_DT = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
       "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def read_safetensors(path):
    buf = open(path, "rb").read()
    n = int.from_bytes(buf[:8], "little")
    hdr = json.loads(buf[8:8 + n])
    hdr.pop("__metadata__", None)
    base = 8 + n
    out = {}
    for k, v in hdr.items():
        a, b = v["data_offsets"]
        raw = buf[base + a:base + b]
        if v["dtype"] == "BF16":
            arr = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(raw, _DT[v["dtype"]])
        out[k] = arr.reshape(v["shape"]).copy()
    return out


# ------------------------------------------------------------------------------------------------ config
def rope_params(cfg):
    """Return (rope_theta, scaling dict or None, partial_rotary_factor) for v4 or v5 config spellings."""
    rp = cfg.get("rope_parameters")
    if rp:  # v5 spelling: everything inside rope_parameters
        theta = rp["rope_theta"]
        kind = rp.get("rope_type", rp.get("type", "default"))
        prf = rp.get("partial_rotary_factor", cfg.get("partial_rotary_factor", 1.0))
        return theta, (rp if kind != "default" else None), prf
    theta = cfg["rope_theta"]
    sc = cfg.get("rope_scaling")
    if sc and sc.get("rope_type", sc.get("type", "default")) == "default":
        sc = None
    return theta, sc, cfg.get("partial_rotary_factor", 1.0)


def get_mscale(scale, mscale=1.0):
    return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0


def inv_freq_and_factor(cfg, dim):
    theta, sc, _ = rope_params(cfg)
    pos = theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
    if sc is None:
        return 1.0 / pos, 1.0
    kind = sc.get("rope_type", sc.get("type"))
    assert kind == "yarn", kind
    factor = sc.get("factor") or cfg["max_position_embeddings"] / sc["original_max_position_embeddings"]
    orig = sc["original_max_position_embeddings"]
    af = sc.get("attention_factor")
    if af is None:
        m, mad = sc.get("mscale"), sc.get("mscale_all_dim")
        af = get_mscale(factor, m) / get_mscale(factor, mad) if (m and mad) else get_mscale(factor)
    bf, bs = sc.get("beta_fast") or 32, sc.get("beta_slow") or 1

    def corr(nrot):
        return dim * math.log(orig / (nrot * 2 * math.pi)) / (2 * math.log(theta))
    low, high = corr(bf), corr(bs)
    if sc.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001
    ramp = np.clip((np.arange(dim // 2, dtype=np.float64) - low) / (high - low), 0, 1)
    extra = 1.0 - ramp  # weight of the unscaled (extrapolation) frequency
    inv = (1.0 / (factor * pos)) * (1 - extra) + (1.0 / pos) * extra
    return inv, af


def cos_sin(cfg, dim, T):
    inv, af = inv_freq_and_factor(cfg, dim)
    ang = np.arange(T, dtype=np.float64)[:, None] * inv[None, :]  # [T, dim/2]
    emb = np.concatenate([ang, ang], axis=-1)  # [T, dim] (halves repeated)
    return np.cos(emb) * af, np.sin(emb) * af, af


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)


def rope(x, cos, sin):  # x [..., T, d]
    return x * cos + rotate_half(x) * sin


def rms(x, w, eps):
    return w * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps))


def silu(x):
    return x / (1 + np.exp(-x))


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def softmax(x, axis=-1):
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def attend(q, k, v, scale, mask, sinks=None):
    """q [H,T,d], k/v [H,T,d] (already expanded for GQA); mask [T,T] bool (True = may attend)."""
    s = np.einsum("htd,hsd->hts", q, k) * scale
    s = np.where(mask[None], s, -np.inf)
    if sinks is not None:
        s = np.concatenate([s, np.broadcast_to(sinks[:, None, None], (s.shape[0], s.shape[1], 1))], axis=-1)
        p = softmax(s)[..., :-1]
    else:
        p = softmax(s)
    return np.einsum("hts,hsd->htd", p, v)


# ------------------------------------------------------------------------------------------------ experts
FP4 = np.array([0, .5, 1, 1.5, 2, 3, 4, 6, -0., -.5, -1, -1.5, -2, -3, -4, -6], dtype=np.float64)


def mxfp4_rows(blocks, scales):
    """blocks [..., rows, G, 16] u8, scales [..., rows, G] u8 -> [..., rows, G*32]."""
    lo, hi = FP4[blocks & 15], FP4[blocks >> 4]
    v = np.stack([lo, hi], axis=-1).reshape(*blocks.shape[:-1], 32)
    v = v * np.exp2(scales.astype(np.float64) - 127)[..., None]
    return v.reshape(*blocks.shape[:-2], blocks.shape[-2] * 32)


def expert_weights(W, prefix, E, layout):
    """Return per-expert (gate [I,H], up [I,H], down [H,I]) for SwiGLU families, from either layout."""
    out = []
    if f"{prefix}.experts.gate_up_proj" in W:  # transformers v5 fused: gate_up [E, 2I, H] = cat(gate, up)
        gu, dn = W[f"{prefix}.experts.gate_up_proj"], W[f"{prefix}.experts.down_proj"]
        I = gu.shape[1] // 2
        for e in range(E):
            out.append((gu[e, :I], gu[e, I:], dn[e]))
    elif f"{prefix}.experts.0.w1.weight" in W:  # Mixtral original
        for e in range(E):
            out.append((W[f"{prefix}.experts.{e}.w1.weight"], W[f"{prefix}.experts.{e}.w3.weight"],
                        W[f"{prefix}.experts.{e}.w2.weight"]))
    else:
        for e in range(E):
            out.append((W[f"{prefix}.experts.{e}.gate_proj.weight"], W[f"{prefix}.experts.{e}.up_proj.weight"],
                        W[f"{prefix}.experts.{e}.down_proj.weight"]))
    return out


# ------------------------------------------------------------------------------------------------ forward
def forward(d):
    cfg = json.load(open(os.path.join(d, "config.json")))
    W = {k: (v.astype(np.float64) if v.dtype.kind == "f" else v)
         for k, v in read_safetensors(os.path.join(d, "model.safetensors")).items()}
    G = read_safetensors(os.path.join(d, "golden.safetensors"))
    ids = G["input_ids"]
    mt = cfg["model_type"]
    B, T = ids.shape
    Hd = cfg["hidden_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads") or nh
    eps = cfg["rms_norm_eps"]
    L = cfg["num_hidden_layers"]
    rec = {}
    causal = np.tril(np.ones((T, T), bool))
    x = W["model.embed_tokens.weight"][ids]  # [B,T,H]
    rec["embed_out"] = x
    lm = W.get("lm_head.weight", W["model.embed_tokens.weight"])
    for l in range(L):
        p = f"model.layers.{l}"
        h = rms(x, W[f"{p}.input_layernorm.weight"], eps)
        a = np.zeros_like(x)
        for b in range(B):
            a[b] = attention(cfg, mt, W, p, h[b], l, causal)
        rec[f"attn_out.{l}"] = a
        x = x + a
        h = rms(x, W[f"{p}.post_attention_layernorm.weight"], eps)
        m = mlp(cfg, mt, W, p, h.reshape(B * T, Hd), l, rec).reshape(B, T, Hd)
        rec[f"mlp_out.{l}"] = m
        x = x + m
        rec[f"layer_out.{l}"] = x
    x = rms(x, W["model.norm.weight"], eps)
    rec["final_norm_out"] = x
    rec["logits"] = x @ lm.T
    return cfg, rec, G


def attention(cfg, mt, W, p, h, l, causal):
    T = h.shape[0]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads") or nh
    A = f"{p}.self_attn"

    def lin(name, x):
        y = x @ W[f"{A}.{name}.weight"].T
        if f"{A}.{name}.bias" in W:
            y = y + W[f"{A}.{name}.bias"]
        return y

    if mt == "deepseek_v3":
        nope, rd, vd = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"]
        kvr = cfg["kv_lora_rank"]
        if cfg.get("q_lora_rank") is None:
            q = lin("q_proj", h)
        else:
            q = lin("q_b_proj", rms(lin("q_a_proj", h), W[f"{A}.q_a_layernorm.weight"], 1e-6))
        q = q.reshape(T, nh, nope + rd).transpose(1, 0, 2)
        ckv = lin("kv_a_proj_with_mqa", h)
        lat, krot = ckv[:, :kvr], ckv[:, kvr:]
        kv = lin("kv_b_proj", rms(lat, W[f"{A}.kv_a_layernorm.weight"], 1e-6)).reshape(T, nh, nope + vd)
        kv = kv.transpose(1, 0, 2)
        knope, v = kv[..., :nope], kv[..., nope:]
        qnope, qrot = q[..., :nope], q[..., nope:]
        krot = krot[None]  # one rope key shared by all heads
        if cfg.get("rope_interleave", True):
            perm = np.concatenate([np.arange(0, rd, 2), np.arange(1, rd, 2)])
            qrot, krot = qrot[..., perm], krot[..., perm]
        cos, sin, _ = cos_sin(cfg, rd, T)
        qrot, krot = rope(qrot, cos, sin), rope(krot, cos, sin)
        qq = np.concatenate([qnope, qrot], -1)
        kk = np.concatenate([knope, np.broadcast_to(krot, (nh, T, rd))], -1)
        scale = (nope + rd) ** -0.5
        _, sc, _ = rope_params(cfg)
        if sc is not None and sc.get("mscale_all_dim"):
            ms = get_mscale(sc["factor"], sc["mscale_all_dim"])
            scale *= ms * ms
        o = attend(qq, kk, v, scale, causal)
        return lin("o_proj", o.transpose(1, 0, 2).reshape(T, nh * vd))

    hd = cfg.get("head_dim") or cfg["hidden_size"] // nh
    q = lin("q_proj", h).reshape(T, nh, hd)
    k = lin("k_proj", h).reshape(T, nkv, hd)
    v = lin("v_proj", h).reshape(T, nkv, hd)
    if f"{A}.q_norm.weight" in W:
        qn, kn = W[f"{A}.q_norm.weight"], W[f"{A}.k_norm.weight"]
        if qn.shape[0] == hd and mt != "olmoe":  # per-head norm (qwen3_moe, glm4_moe use_qk_norm)
            q, k = rms(q, qn, cfg["rms_norm_eps"]), rms(k, kn, cfg["rms_norm_eps"])
        else:  # olmoe: over the whole projection
            q = rms(q.reshape(T, -1), qn, cfg["rms_norm_eps"]).reshape(T, nh, hd)
            k = rms(k.reshape(T, -1), kn, cfg["rms_norm_eps"]).reshape(T, nkv, hd)
    q, k, v = q.transpose(1, 0, 2), k.transpose(1, 0, 2), v.transpose(1, 0, 2)
    _, _, prf = rope_params(cfg)
    rd = int(hd * prf)
    cos, sin, _ = cos_sin(cfg, rd, T)
    q = np.concatenate([rope(q[..., :rd], cos, sin), q[..., rd:]], -1)
    k = np.concatenate([rope(k[..., :rd], cos, sin), k[..., rd:]], -1)
    rep = nh // nkv
    k, v = np.repeat(k, rep, axis=0), np.repeat(v, rep, axis=0)  # head i uses kv head i // rep
    mask = causal
    sinks = None
    if mt == "gpt_oss":
        if cfg["layer_types"][l] == "sliding_attention":
            i, j = np.arange(T)[:, None], np.arange(T)[None, :]
            mask = causal & (j > i - cfg["sliding_window"])
        sinks = W[f"{A}.sinks"]
    o = attend(q, k, v, hd ** -0.5, mask, sinks)
    return lin("o_proj", o.transpose(1, 0, 2).reshape(T, nh * hd))


def swiglu_mlp(x, gate, up, down):
    return (silu(x @ gate.T) * (x @ up.T)) @ down.T


def mlp(cfg, mt, W, p, x, l, rec):
    M = f"{p}.mlp" if mt != "mixtral" or f"{p}.mlp.gate.weight" in W else f"{p}.block_sparse_moe"
    if mt in ("deepseek_v3", "glm4_moe") and l < cfg["first_k_dense_replace"]:
        return swiglu_mlp(x, W[f"{M}.gate_proj.weight"], W[f"{M}.up_proj.weight"], W[f"{M}.down_proj.weight"])
    N = x.shape[0]
    if mt == "gpt_oss":
        E, k = cfg["num_local_experts"], cfg["num_experts_per_tok"]
        logits = x @ W[f"{M}.router.weight"].T + W[f"{M}.router.bias"]
        if f"{M}.experts.gate_up_proj_blocks" in W:
            gu = mxfp4_rows(W[f"{M}.experts.gate_up_proj_blocks"], W[f"{M}.experts.gate_up_proj_scales"])
            dn = mxfp4_rows(W[f"{M}.experts.down_proj_blocks"], W[f"{M}.experts.down_proj_scales"])
            gu, dn = gu.transpose(0, 2, 1), dn.transpose(0, 2, 1)  # -> [E, H, 2I], [E, I, H]
        else:
            gu, dn = W[f"{M}.experts.gate_up_proj"], W[f"{M}.experts.down_proj"]
        gub, dnb = W[f"{M}.experts.gate_up_proj_bias"], W[f"{M}.experts.down_proj_bias"]
        idx = np.argsort(-logits, axis=1, kind="stable")[:, :k]
        w = softmax(np.take_along_axis(logits, idx, 1))
        limit, alpha = cfg.get("swiglu_limit", 7.0), 1.702
        out = np.zeros_like(x)
        for t in range(N):
            for j in range(k):
                e = idx[t, j]
                g = x[t] @ gu[e] + gub[e]
                gate, upv = np.minimum(g[0::2], limit), np.clip(g[1::2], -limit, limit)
                glu = gate * sigmoid(gate * alpha)
                out[t] += w[t, j] * (((upv + 1) * glu) @ dn[e] + dnb[e])
        rec[f"router_logits.{l}"], rec[f"topk_idx.{l}"], rec[f"topk_weight.{l}"] = logits, idx, w
        return out
    if mt in ("deepseek_v3", "glm4_moe"):
        E, k = cfg["n_routed_experts"], cfg["num_experts_per_tok"]
        ng, tg = cfg["n_group"], cfg["topk_group"]
        logits = x @ W[f"{M}.gate.weight"].T
        s = sigmoid(logits)
        c = s + W[f"{M}.gate.e_score_correction_bias"]
        gs = np.sort(c.reshape(N, ng, E // ng), axis=-1)[..., -2:].sum(-1)  # sum of the top-2 per group
        keep = np.argsort(-gs, axis=1, kind="stable")[:, :tg]
        emask = np.zeros((N, ng), bool)
        np.put_along_axis(emask, keep, True, 1)
        cm = np.where(np.repeat(emask, E // ng, axis=1), c, 0.0)
        idx = np.argsort(-cm, axis=1, kind="stable")[:, :k]
        w = np.take_along_axis(s, idx, 1)
        if cfg.get("norm_topk_prob", True):
            w = w / (w.sum(1, keepdims=True) + 1e-20)
        w = w * cfg["routed_scaling_factor"]
        ex = expert_weights(W, M, E, None)
        out = np.zeros_like(x)
        for t in range(N):
            for j in range(k):
                out[t] += w[t, j] * swiglu_mlp(x[t:t + 1], *ex[idx[t, j]])[0]
        out += swiglu_mlp(x, W[f"{M}.shared_experts.gate_proj.weight"], W[f"{M}.shared_experts.up_proj.weight"],
                          W[f"{M}.shared_experts.down_proj.weight"])
        order = np.argsort(-w, axis=1, kind="stable")
        rec[f"router_logits.{l}"] = logits
        rec[f"topk_idx.{l}"] = np.take_along_axis(idx, order, 1)
        rec[f"topk_weight.{l}"] = np.take_along_axis(w, order, 1)
        return out
    # softmax routers: mixtral, qwen2_moe, qwen3_moe, olmoe
    E = cfg.get("num_local_experts") or cfg["num_experts"]
    k = cfg["num_experts_per_tok"]
    logits = x @ W[f"{M}.gate.weight"].T
    pr = softmax(logits)
    idx = np.argsort(-pr, axis=1, kind="stable")[:, :k]
    w = np.take_along_axis(pr, idx, 1)
    if mt == "mixtral" or cfg.get("norm_topk_prob", False):
        w = w / w.sum(1, keepdims=True)
    ex = expert_weights(W, M, E, None)
    out = np.zeros_like(x)
    for t in range(N):
        for j in range(k):
            out[t] += w[t, j] * swiglu_mlp(x[t:t + 1], *ex[idx[t, j]])[0]
    if mt == "qwen2_moe":
        sh = swiglu_mlp(x, W[f"{M}.shared_expert.gate_proj.weight"], W[f"{M}.shared_expert.up_proj.weight"],
                        W[f"{M}.shared_expert.down_proj.weight"])
        out += sigmoid(x @ W[f"{M}.shared_expert_gate.weight"].T) * sh
    rec[f"router_logits.{l}"], rec[f"topk_idx.{l}"], rec[f"topk_weight.{l}"] = logits, idx, w
    return out


def compare(rec, G):
    res = {}
    for k, g in G.items():
        if k == "input_ids":
            continue
        if k.startswith("topk_idx"):
            r = rec[k]
            res[k] = "equal" if np.array_equal(r, g) else (
                "equal as sets" if np.array_equal(np.sort(r, 1), np.sort(g, 1)) else "DIFFERENT")
        else:
            res[k] = float(np.abs(rec[k].reshape(g.shape) - g.astype(np.float64)).max())
    return res


def main():
    dirs = [os.path.join(OUT, n) for n in sorted(os.listdir(OUT)) if os.path.isdir(os.path.join(OUT, n))]
    dirs += [os.path.join(FIXTURES, n) for n in ("tiny-deepseek-v3", "tiny-qwen3-moe", "tiny-mixtral",
                                                 "tiny-qwen2-moe", "tiny-olmoe")]
    report = {}
    for d in dirs:
        cfg, rec, G = forward(d)
        res = compare(rec, G)
        fl = [v for v in res.values() if isinstance(v, float)]
        name = os.path.basename(d) if d.startswith(OUT) else "existing:" + os.path.basename(d)
        report[name] = dict(max_abs_float_diff=max(fl), max_abs_logit_diff=res["logits"],
                            topk_idx={k: v for k, v in res.items() if k.startswith("topk_idx")},
                            per_tensor=res)
        print(f"[{name}] numpy float64 vs golden: max {max(fl):.3g}, logits {res['logits']:.3g}, "
              f"topk {set(report[name]['topk_idx'].values())}", flush=True)
    json.dump(report, open(os.path.join(OUT, "numpy_reference.json"), "w"), indent=1)
    bad = [n for n, r in report.items() if r["max_abs_float_diff"] > 1e-4 or "DIFFERENT" in r["topk_idx"].values()]
    if bad:
        print("FAILED:", bad)
        sys.exit(1)


if __name__ == "__main__":
    main()
