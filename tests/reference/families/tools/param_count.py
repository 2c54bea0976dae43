#!/usr/bin/python3
"""Parameter counts from config.json alone (formulas of FACTS.md section 9); checked against the tiny
models' safetensors and against published totals. Usage: param_count.py DIR_OR_CONFIG_JSON..."""
import json, os, sys


def counts(c):
    mt = c["model_type"]
    H, L, V = c["hidden_size"], c["num_hidden_layers"], c["vocab_size"]
    nh = c["num_attention_heads"]
    nkv = c.get("num_key_value_heads") or nh
    hd = c.get("head_dim") or H // nh
    tie = c.get("tie_word_embeddings", False)
    emb = V * H * (1 if tie else 2) + H  # embed (+ lm_head) + final norm
    attn = 0
    if mt in ("deepseek_v3", "kimi_k2"):
        nope, rd, vd, kvr, qr = c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"], c["kv_lora_rank"], c.get("q_lora_rank")
        b = c.get("attention_bias", False)
        q = H * nh * (nope + rd) if qr is None else H * qr + (qr if b else 0) + qr + qr * nh * (nope + rd)
        attn = q + H * (kvr + rd) + ((kvr + rd) if b else 0) + kvr + kvr * nh * (nope + vd) + nh * vd * H + (H if b else 0)
    else:
        b_qkv = {"gpt_oss": True, "qwen2_moe": c.get("qkv_bias", True)}.get(mt, c.get("attention_bias", False))
        b_o = {"gpt_oss": True, "qwen2_moe": False, "glm4_moe": False}.get(mt, c.get("attention_bias", False))
        attn = H * nh * hd + 2 * H * nkv * hd + nh * hd * H
        attn += (nh * hd + 2 * nkv * hd) if b_qkv else 0
        attn += H if b_o else 0
        if mt == "qwen3_moe" or (mt == "glm4_moe" and c.get("use_qk_norm")):
            attn += 2 * hd
        if mt == "olmoe":
            attn += nh * hd + nkv * hd
        if mt == "gpt_oss":
            attn += nh  # sinks
    norms = 2 * H
    total = emb + L * (attn + norms)
    active = emb + L * (attn + norms)
    swiglu = lambda i: 3 * H * i
    for l in range(L):
        if mt in ("deepseek_v3", "kimi_k2", "glm4_moe"):
            if l < c["first_k_dense_replace"]:
                total += swiglu(c["intermediate_size"]); active += swiglu(c["intermediate_size"]); continue
            E, k, mi, ns = c["n_routed_experts"], c["num_experts_per_tok"], c["moe_intermediate_size"], c.get("n_shared_experts") or 0
            common = E * H + E + swiglu(mi * ns)  # router, e_score_correction_bias, shared experts
            total += common + E * swiglu(mi); active += common + k * swiglu(mi)
        elif mt == "gpt_oss":
            E, k, I = c["num_local_experts"], c["num_experts_per_tok"], c["intermediate_size"]
            per = H * 2 * I + 2 * I + I * H + H
            total += E * H + E + E * per; active += E * H + E + k * per
        else:
            E = c.get("num_local_experts") or c.get("num_experts")
            k = c["num_experts_per_tok"]
            sparse = (l not in (c.get("mlp_only_layers") or [])) and E and (l + 1) % (c.get("decoder_sparse_step") or 1) == 0
            if not sparse:
                total += swiglu(c["intermediate_size"]); active += swiglu(c["intermediate_size"]); continue
            mi = c.get("moe_intermediate_size") or c["intermediate_size"]
            common = E * H
            if mt == "qwen2_moe":
                common += swiglu(c["shared_expert_intermediate_size"]) + H
            total += common + E * swiglu(mi); active += common + k * swiglu(mi)
    return total, active


def stored(d):
    import struct
    n = 0
    for f in os.listdir(d):
        if f.endswith(".safetensors") and f.startswith("model"):
            b = open(os.path.join(d, f), "rb").read()
            h = json.loads(b[8:8 + struct.unpack("<Q", b[:8])[0]])
            h.pop("__metadata__", None)
            for k, v in h.items():
                x = 1
                for s in v["shape"]:
                    x *= s
                if k.endswith("_blocks"):
                    x *= 2  # two FP4 values per byte
                if k.endswith("_scales"):
                    continue
                n += x
    return n


if __name__ == "__main__":
    for a in sys.argv[1:]:
        if os.path.isdir(a):
            c = json.load(open(os.path.join(a, "config.json")))
            t, act = counts(c)
            print(f"{a}: formula total {t} active {act}; stored {stored(a)}")
        else:
            c = json.load(open(a))
            t, act = counts(c)
            print(f"{a}: total {t:,} active {act:,}")
