#!/usr/bin/python3
"""Regenerate the tiny MoE reference checkpoints and golden activations under models/.

Run with Debian's python3 (torch 1.13) after ./setup_sources.sh has unpacked and patched the sources:

    /usr/bin/python3 make_golden.py all        # build (5.2.0) -> v4pass (4.57.6) -> verify (5.2.0) -> numpy ref
    /usr/bin/python3 make_golden.py build      # only the transformers 5.2.0 pass, etc.

Each sub-step runs in its own process with the right PYTHONPATH (see env5.sh / env4.sh); `all` spawns them.
Nothing here is transformers code: the model code used is transformers' own (src/transformers-*/).
"""
import argparse
import copy
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys

FAM = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(FAM, "generated")  # full output; shrink.py derives the committed models/ from it
FIXTURES = os.path.join(os.environ.get("MOEFORGE_FIXTURES", os.path.join(FAM, "../../../../shared/fixtures")), "models")
PY = "/usr/bin/python3"

TF5_COMMIT = "7d9754a05193eb79b1d86aa744b622b8068008cd"  # tag v5.2.0
TF4_COMMIT = "753d61104116eefc8ffc977327b441ee0c8d599f"  # tag v4.57.6


def env_for(version):
    e = dict(os.environ)
    if version == "5":
        pp = [f"{FAM}/shims/meta-5.2.0", f"{FAM}/shims/common", f"{FAM}/src/transformers-5.2.0/src",
              f"{FAM}/src/huggingface_hub-1.4.1/src"]
    elif version == "4":
        pp = [f"{FAM}/shims/meta-4.57.6", f"{FAM}/shims/common", f"{FAM}/src/transformers-4.57.6/src",
              f"{FAM}/src/huggingface_hub-0.36.0/src", f"{FAM}/src/accelerate-0.34.2/src"]
    else:
        pp = []
    e["PYTHONPATH"] = ":".join(pp)
    e.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1",
             MKL_NUM_THREADS="1", HF_HUB_DISABLE_PROGRESS_BARS="1", TRANSFORMERS_VERBOSITY="error")
    return e


# The same inputs as every tiny fixture in /work/shared/fixtures (rows share their first 8 tokens).
INPUT_IDS = [[47, 211, 38, 53, 204, 116, 152, 249, 143, 177, 23, 233, 154, 30, 171, 158],
             [47, 211, 38, 53, 204, 116, 152, 249, 69, 80, 201, 127, 246, 254, 175, 50]]

INIT_RECIPE = ("torch.manual_seed(seed); one torch.Generator(seed) visits every state_dict tensor in sorted-name "
               "order (transformers 5.2.0 parameter names, i.e. fused experts.gate_up_proj/down_proj): "
               "embed_tokens ~ N(0, 0.05^2); every other >=2-D weight ~ N(0, 0.1^2); every 1-D bias ~ N(0, 0.1^2); "
               "every norm weight ~ 1 + N(0, 0.1^2); e_score_correction_bias ~ N(0, 0.05^2); "
               "gpt_oss attention sinks ~ N(0, 1); gpt_oss expert matrices are not drawn as floats: MXFP4 "
               "blocks (uniform random bytes) and E8M0 scales (uniform over a small exponent range, see "
               "mxfp4 in golden.json) are drawn at the tensor's place in the order and dequantised.")

# ----------------------------------------------------------------------------------------------------------
# Cases. Each entry: model_type, config kwargs for transformers 5.2.0 (`rope_scaling`/`rope_theta` are given in
# the v4 spelling, which 5.2.0 converts), and options.
# ----------------------------------------------------------------------------------------------------------
COMMON = dict(vocab_size=256, hidden_size=64, num_hidden_layers=2, max_position_embeddings=128,
              bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)

CASES = {
    "tiny-deepseek-v3-yarn": dict(
        model_type="deepseek_v3",
        config=dict(COMMON, num_attention_heads=4, num_key_value_heads=4, intermediate_size=64,
                    moe_intermediate_size=16, n_routed_experts=8, n_shared_experts=2, num_experts_per_tok=3,
                    n_group=4, topk_group=2, routed_scaling_factor=1.8, norm_topk_prob=True, first_k_dense_replace=1,
                    q_lora_rank=None, kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16,
                    rope_interleave=True, rms_norm_eps=1e-5, rope_theta=50000.0,
                    rope_scaling={"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32,
                                  "mscale": 0.707, "mscale_all_dim": 1.0, "beta_fast": 32.0, "beta_slow": 1.0}),
        fused_sibling="tiny-deepseek-v3-yarn-fused"),
    "tiny-glm4-moe": dict(
        model_type="glm4_moe",
        config=dict(COMMON, num_attention_heads=4, num_key_value_heads=2, head_dim=32, intermediate_size=64,
                    moe_intermediate_size=16, n_routed_experts=8, n_shared_experts=1, num_experts_per_tok=2,
                    n_group=2, topk_group=1, routed_scaling_factor=1.5, norm_topk_prob=True, first_k_dense_replace=1,
                    partial_rotary_factor=0.5, attention_bias=True, use_qk_norm=True, rms_norm_eps=1e-6,
                    rope_theta=50000.0),
        fused_sibling="tiny-glm4-moe-fused"),
    "tiny-glm4-moe-noqknorm": dict(
        model_type="glm4_moe",
        config=dict(COMMON, num_attention_heads=4, num_key_value_heads=2, head_dim=32, intermediate_size=64,
                    moe_intermediate_size=16, n_routed_experts=8, n_shared_experts=1, num_experts_per_tok=2,
                    n_group=2, topk_group=1, routed_scaling_factor=1.5, norm_topk_prob=True, first_k_dense_replace=1,
                    partial_rotary_factor=0.5, attention_bias=True, use_qk_norm=False, rms_norm_eps=1e-6,
                    rope_theta=50000.0),
        fused_sibling="tiny-glm4-moe-noqknorm-fused"),
    "tiny-gpt-oss": dict(
        model_type="gpt_oss",
        # hidden 32 (not COMMON's 64) keeps model.safetensors under 400 KB; I = 64 keeps two MXFP4 blocks per
        # row of down_proj (gate_up_proj has one: its input is H = 32, the MXFP4 block size).
        config=dict(COMMON, hidden_size=32, num_attention_heads=4, num_key_value_heads=2, head_dim=24,
                    intermediate_size=64, num_local_experts=4, num_experts_per_tok=2, sliding_window=4,
                    layer_types=["sliding_attention", "full_attention"], rms_norm_eps=1e-6,
                    max_position_embeddings=131072, rope_theta=150000.0,
                    rope_scaling={"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
                                  "truncate": False, "original_max_position_embeddings": 4096},
                    # extra keys that the published openai/gpt-oss configs carry (not GptOssConfig arguments;
                    # stored as plain attributes): the clamp limit and a duplicate of num_experts_per_tok
                    swiglu_limit=7.0, experts_per_token=2, initial_context_length=4096),
        mxfp4_sibling="tiny-gpt-oss-mxfp4",
        # exponent ranges of the E8M0 scales (value = fp4 * 2^e): wide for gate_up so that the SwiGLU clamp
        # (limit 7) is hit, small for down_proj to keep activations moderate. gate_up starts at -4 (was -5 with
        # hidden 64): its dot products now run over 32 inputs, and the clamp must still be hit (~1.5% / ~3%).
        mxfp4_exponents={"gate_up_proj": [-4, -3, -2], "down_proj": [-8, -7, -6]}),
}

MXFP4_QUANT_CONFIG = {"modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router",
                                                 "model.embed_tokens", "lm_head"],
                      "quant_method": "mxfp4"}

EXISTING_FIXTURES = {"tiny-qwen3-moe": "tiny-qwen3-moe-fused", "tiny-mixtral": "tiny-mixtral-fused",
                     "tiny-qwen2-moe": None, "tiny-olmoe": None, "tiny-deepseek-v3": None}

MIN_MARGIN = 2e-4


# ----------------------------------------------------------------------------------------------------------
# helpers (torch)
# ----------------------------------------------------------------------------------------------------------
def _torch():
    import torch_compat5  # noqa: F401  (torch-2 names for torch 1.13; see shims/common/torch_compat5.py)
    import torch
    torch.set_num_threads(1)
    return torch


FP4_VALUES = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]


def mxfp4_dequant_rows(blocks, scales):
    """blocks [..., G, 16] uint8, scales [..., G] uint8 -> [..., G*32] float32 (low nibble = even element)."""
    torch = _torch()
    lut = torch.tensor(FP4_VALUES, dtype=torch.float32)
    lo = lut[(blocks & 0x0F).long()]
    hi = lut[(blocks >> 4).long()]
    vals = torch.stack([lo, hi], dim=-1).reshape(*blocks.shape[:-1], 32)
    vals = vals * torch.pow(torch.tensor(2.0), scales.to(torch.float32) - 127.0).unsqueeze(-1)
    return vals.reshape(*blocks.shape[:-2], blocks.shape[-2] * 32)


def init_weights(model, model_type, seed, mxfp4_exponents=None):
    """Deterministic init (see INIT_RECIPE). Returns {name: (blocks, scales)} for gpt_oss MXFP4 experts."""
    torch = _torch()
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    sd = model.state_dict()
    mx = {}
    with torch.no_grad():
        for name in sorted(sd):
            t = sd[name]
            if model_type == "gpt_oss" and name.endswith(("mlp.experts.gate_up_proj", "mlp.experts.down_proj")):
                E, In, Out = t.shape  # [E, in, out]; stored rows are the `out` axis
                proj = name.rsplit(".", 1)[1]
                G = In // 32
                blocks = torch.randint(0, 256, (E, Out, G, 16), generator=g, dtype=torch.int64).to(torch.uint8)
                exps = torch.tensor(mxfp4_exponents[proj], dtype=torch.int64)
                pick = torch.randint(0, len(exps), (E, Out, G), generator=g)
                scales = (exps[pick] + 127).to(torch.uint8)
                w = mxfp4_dequant_rows(blocks, scales)  # [E, Out, In]
                t.copy_(w.transpose(1, 2))
                mx[name] = (blocks, scales)
                continue
            if name.endswith("embed_tokens.weight"):
                v = torch.randn(t.shape, generator=g) * 0.05
            elif name.endswith("e_score_correction_bias"):
                v = torch.randn(t.shape, generator=g) * 0.05
            elif name.endswith("self_attn.sinks"):
                v = torch.randn(t.shape, generator=g) * 1.0
            elif "norm" in name.rsplit(".", 2)[-2] and t.dim() == 1:
                v = 1.0 + torch.randn(t.shape, generator=g) * 0.1
            else:
                v = torch.randn(t.shape, generator=g) * 0.1
            t.copy_(v.to(t.dtype))
    return mx


def layer_mlp(layer):
    return layer.mlp if hasattr(layer, "mlp") else layer.block_sparse_moe  # Mixtral in transformers 4.x


def is_moe_layer(layer):
    return hasattr(layer_mlp(layer), "experts")


def router_module(layer):
    m = layer_mlp(layer)
    return getattr(m, "router", None) or getattr(m, "gate", None)


def capture(model, ids):
    """One forward pass with hooks; returns dict of float32/int64 tensors following the fixture conventions."""
    torch = _torch()
    import torch.nn.functional as F
    rec, hooks = {}, []
    base = model.model

    def out0(o):
        return o[0] if isinstance(o, tuple) else o

    def put(key):
        return lambda m, i, o: rec.__setitem__(key, out0(o).detach().clone())

    hooks.append(base.embed_tokens.register_forward_hook(put("embed_out")))
    for i, layer in enumerate(base.layers):
        hooks.append(layer.self_attn.register_forward_hook(put(f"attn_out.{i}")))
        hooks.append(layer_mlp(layer).register_forward_hook(put(f"mlp_out.{i}")))
        hooks.append(layer.register_forward_hook(put(f"layer_out.{i}")))
        if is_moe_layer(layer):
            r = router_module(layer)

            def rhook(m, inp, o, i=i):
                x = inp[0].reshape(-1, m.weight.shape[1])
                logits = F.linear(x.to(m.weight.dtype), m.weight, getattr(m, "bias", None))
                rec[f"router_logits.{i}"] = logits.detach().clone()
            hooks.append(r.register_forward_hook(rhook))

            def ehook(m, args, i=i):
                if len(args) < 3:  # transformers 4.57 gpt_oss passes them as keywords (not visible to a 1.13 hook)
                    return
                idx, w = args[1], args[2]
                if w.dim() == 2 and w.shape[1] != idx.shape[1]:  # dense [T, E] scores (4.57 gpt_oss)
                    w = w.gather(1, idx)
                rec[f"_idx.{i}"] = idx.detach().clone()
                rec[f"_w.{i}"] = w.detach().clone()
            hooks.append(layer_mlp(layer).experts.register_forward_pre_hook(ehook))
    hooks.append(base.norm.register_forward_hook(put("final_norm_out")))
    try:
        with torch.no_grad():
            out = model(input_ids=ids, use_cache=False)
    finally:
        for h in hooks:
            h.remove()
    rec["logits"] = out.logits.detach().clone()
    for k in [k for k in rec if k.startswith("_idx.")]:
        i = k.split(".")[1]
        idx, w = rec.pop(k), rec.pop(f"_w.{i}")
        order = torch.sort(w, dim=1, descending=True, stable=True).indices
        rec[f"topk_idx.{i}"] = idx.gather(1, order).to(torch.int64)
        rec[f"topk_weight.{i}"] = w.gather(1, order)
    return rec


def golden_order(rec, n_layers):
    keys = ["input_ids", "logits", "embed_out"]
    for i in range(n_layers):
        keys += [f"attn_out.{i}", f"mlp_out.{i}", f"layer_out.{i}"]
    keys += ["final_norm_out"]
    for i in range(n_layers):
        keys += [k for k in (f"router_logits.{i}", f"topk_idx.{i}", f"topk_weight.{i}") if k in rec]
    return [k for k in keys if k in rec]


def routing_margins(model, model_type, rec):
    """Per MoE layer: the gaps that decide the expert choice (computed in float64 from the float32 router logits)."""
    torch = _torch()
    cfg = model.config
    res = {}
    for i, layer in enumerate(model.model.layers):
        if f"router_logits.{i}" not in rec:
            continue
        lg = rec[f"router_logits.{i}"].double()
        k = cfg.num_experts_per_tok
        d = {}
        if model_type in ("deepseek_v3", "glm4_moe"):
            E, G, TG = cfg.n_routed_experts, cfg.n_group, cfg.topk_group
            s = lg.sigmoid()
            c = s + layer.mlp.gate.e_score_correction_bias.double()
            gs = c.view(-1, G, E // G).topk(2, dim=-1)[0].sum(-1)
            gsorted = gs.sort(dim=1, descending=True).values
            d["group_margin"] = float((gsorted[:, TG - 1] - gsorted[:, TG]).min()) if TG < G else None
            gidx = gs.topk(TG, dim=1).indices
            gmask = torch.zeros_like(gs).scatter_(1, gidx, 1).bool()
            emask = gmask.unsqueeze(-1).expand(-1, G, E // G).reshape(-1, E)
            cm = c.masked_fill(~emask, 0.0)
            cs = cm.sort(dim=1, descending=True).values
            d["expert_margin"] = float((cs[:, k - 1] - cs[:, k]).min())
            d["min_choice_score_of_chosen"] = float(cs[:, k - 1].min())
            d["margin"] = min(x for x in (d["group_margin"], d["expert_margin"]) if x is not None)
        elif model_type == "gpt_oss":
            ls = lg.sort(dim=1, descending=True).values
            d["margin"] = float((ls[:, k - 1] - ls[:, k]).min())
            d["margin_space"] = "router logits (incl. bias)"
        else:
            p = lg.softmax(-1).sort(dim=1, descending=True).values
            d["margin"] = float((p[:, k - 1] - p[:, k]).min())
            d["margin_space"] = "softmax probability"
        w = rec[f"topk_weight.{i}"].double()
        d["min_gap_between_chosen_weights"] = float((w[:, :-1] - w[:, 1:]).min()) if k > 1 else None
        res[str(i)] = d
    return res


def tensor_table(path):
    """name -> {dtype, shape} of a safetensors file, in file order."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        h = json.loads(f.read(n))
    h.pop("__metadata__", None)
    return {k: {"dtype": v["dtype"], "shape": v["shape"]} for k, v in sorted(h.items())}


def canonical_bytes_check(path):
    """Re-serialise the file's tensors with the (official-format) writer and compare bytes."""
    from safetensors import safe_open
    from safetensors.torch import save
    with safe_open(path, "pt") as f:
        meta = f.metadata()
        t = {k: f.get_tensor(k) for k in f.keys()}
    return save(t, meta) == open(path, "rb").read()


def save_golden(path, rec, order, producer):
    from safetensors.torch import save_file
    save_file({k: rec[k].contiguous() for k in order}, path, metadata={"producer": producer})


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def dir_size(d):
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))


def non_defaults(cfg):
    defaults = type(cfg)().to_dict()
    out = {}
    for k, v in cfg.to_dict().items():
        if k in ("transformers_version", "architectures", "dtype", "torch_dtype", "_name_or_path"):
            continue
        if defaults.get(k, object()) != v:
            out[k] = v
    return out


def max_abs_diff(a, b):
    return float((a.double() - b.double()).abs().max())


# ----------------------------------------------------------------------------------------------------------
# build (transformers 5.2.0)
# ----------------------------------------------------------------------------------------------------------
def make_model(model_type, cfg_kwargs):
    torch = _torch()
    from transformers import AutoConfig, AutoModelForCausalLM
    cfg = AutoConfig.for_model(model_type, **copy.deepcopy(cfg_kwargs))
    cfg._attn_implementation = "eager"
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager", experts_implementation="eager")
    return model.eval().to(torch.float32)


def seed_search(name, case, max_seed=200):
    torch = _torch()
    ids = torch.tensor(INPUT_IDS)
    for seed in range(max_seed):
        model = make_model(case["model_type"], case["config"])
        mx = init_weights(model, case["model_type"], seed, case.get("mxfp4_exponents"))
        rec = capture(model, ids)
        m = routing_margins(model, case["model_type"], rec)
        mins = min(v["margin"] for v in m.values())
        ok = mins >= MIN_MARGIN
        if case["model_type"] in ("deepseek_v3", "glm4_moe"):
            ok = ok and all(v["min_choice_score_of_chosen"] > 0.05 for v in m.values())
        if ok:
            print(f"[{name}] seed {seed}: min routing margin {mins:.3g}", flush=True)
            return seed, model, mx, rec, m
    raise RuntimeError(f"no seed < {max_seed} with margins >= {MIN_MARGIN} for {name}")


def sensitivity(name, case, model, rec):
    """Logit change caused by one wrong reading of the config (diagnostics for implementers)."""
    torch = _torch()
    ids = torch.tensor(INPUT_IDS)
    base = rec["logits"]
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    mt = case["model_type"]
    out = {}

    def run_variant(label, cfg_update=None, patch=None):
        kw = copy.deepcopy(case["config"])
        kw.update(cfg_update or {})
        m = make_model(mt, kw)
        m.load_state_dict(sd, strict=True)
        if patch:
            with torch.no_grad():
                patch(m)
        r = capture(m, ids)
        out[label] = max_abs_diff(r["logits"], base)

    from transformers import AutoConfig
    dcfg = type(AutoConfig.for_model(mt))()
    if "rms_norm_eps" in case["config"]:
        run_variant(f"rms_norm_eps={dcfg.rms_norm_eps} (class default)", {"rms_norm_eps": dcfg.rms_norm_eps})
    if mt in ("deepseek_v3", "glm4_moe"):
        run_variant("routed_scaling_factor=1.0", {"routed_scaling_factor": 1.0})
        run_variant("no group limit (topk_group=n_group)", {"topk_group": case["config"]["n_group"]})
        run_variant("norm_topk_prob=false", {"norm_topk_prob": False})

        def nobias(m):
            for l in m.model.layers:
                if is_moe_layer(l):
                    l.mlp.gate.e_score_correction_bias.zero_()
        run_variant("e_score_correction_bias ignored", patch=nobias)
    if mt == "deepseek_v3":
        run_variant("rope_interleave=false", {"rope_interleave": False})
        run_variant("rope_scaling=null (no YaRN at all)", {"rope_scaling": None})

        def no_mscale_softmax(m):
            for l in m.model.layers:
                l.self_attn.scaling = l.self_attn.qk_head_dim ** -0.5
        run_variant("softmax scale without mscale(factor, mscale_all_dim)^2", patch=no_mscale_softmax)

        def no_attn_factor(m):
            m.model.rotary_emb.attention_scaling = 1.0
        run_variant("cos/sin without YaRN attention_factor", patch=no_attn_factor)

        def latent_eps(m):
            for l in m.model.layers:
                for n in ("q_a_layernorm", "kv_a_layernorm"):
                    if hasattr(l.self_attn, n):
                        getattr(l.self_attn, n).variance_epsilon = m.config.rms_norm_eps
        run_variant("latent RMSNorms (kv_a_layernorm/q_a_layernorm) with rms_norm_eps instead of 1e-6", patch=latent_eps)
    if mt == "glm4_moe":
        run_variant("partial_rotary_factor=1.0 (rotate the whole head)", {"partial_rotary_factor": 1.0})
    if mt == "gpt_oss":
        def no_sinks(m):
            for l in m.model.layers:
                l.self_attn.sinks.fill_(-1e30)
        run_variant("attention sinks ignored", patch=no_sinks)
        run_variant("sliding_window ignored (all layers full attention)",
                    {"layer_types": ["full_attention"] * case["config"]["num_hidden_layers"]})
        run_variant("rope_type default (plain RoPE, theta only)", {"rope_scaling": {"rope_type": "default"}})

        def no_attn_factor(m):
            m.model.rotary_emb.attention_scaling = 1.0
        run_variant("cos/sin without YaRN attention_factor", patch=no_attn_factor)
        run_variant("YaRN truncate=true (DeepSeek-style rounding of the ramp bounds)",
                    {"rope_scaling": dict(case["config"]["rope_scaling"], truncate=True)})

        def no_clamp(m):
            for l in m.model.layers:
                l.mlp.experts.limit = float("inf")
        run_variant("SwiGLU without clamp (limit=inf)", patch=no_clamp)
    return out


def clamp_stats(model, ids):
    """How often gpt_oss's clamps are active (to show the golden data exercises them)."""
    torch = _torch()
    stats = {}
    hooks = []
    for i, layer in enumerate(model.model.layers):
        ex = layer.mlp.experts

        def pre(m, args, i=i):
            x, idx = args[0], args[1]
            g_hit = u_hit = n = 0
            for e in idx.unique().tolist():
                tok = (idx == e).any(dim=1).nonzero().flatten()
                gu = x[tok] @ m.gate_up_proj[e] + m.gate_up_proj_bias[e]
                gate, up = gu[..., ::2], gu[..., 1::2]
                g_hit += int((gate > m.limit).sum())
                u_hit += int((up.abs() > m.limit).sum())
                n += gate.numel()
            stats[str(i)] = {"gate_values": n, "gate_above_limit": g_hit, "up_outside_plus_minus_limit": u_hit}
        hooks.append(ex.register_forward_pre_hook(pre))
    with torch.no_grad():
        model(input_ids=ids, use_cache=False)
    for h in hooks:
        h.remove()
    return stats


def fp64_check(model, rec):
    torch = _torch()
    m64 = copy.deepcopy(model).to(torch.float64)
    r64 = capture(m64, torch.tensor(INPUT_IDS))
    per = {k: max_abs_diff(rec[k], r64[k]) for k in rec if rec[k].is_floating_point()}
    same = all(torch.equal(rec[k], r64[k]) for k in rec if k.startswith("topk_idx"))
    return per, same


def write_mxfp4_dir(src_dir, dst_dir, mx):
    """Same weights as src_dir, experts stored the way openai/gpt-oss checkpoints store them."""
    torch = _torch()
    from safetensors import safe_open
    from safetensors.torch import save_file
    os.makedirs(dst_dir, exist_ok=True)
    with safe_open(os.path.join(src_dir, "model.safetensors"), "pt") as f:
        meta = f.metadata()
        t = {k: f.get_tensor(k) for k in f.keys()}
    for name, (blocks, scales) in mx.items():
        w = t.pop(name)
        assert torch.equal(mxfp4_dequant_rows(blocks, scales).transpose(1, 2), w)
        t[name + "_blocks"] = blocks.contiguous()
        t[name + "_scales"] = scales.contiguous()
    save_file(t, os.path.join(dst_dir, "model.safetensors"), metadata=meta)
    for fn in ("config.json", "generation_config.json"):
        if os.path.exists(os.path.join(src_dir, fn)):
            shutil.copy(os.path.join(src_dir, fn), os.path.join(dst_dir, fn))
    c = json.load(open(os.path.join(dst_dir, "config.json")))
    c["quantization_config"] = MXFP4_QUANT_CONFIG
    json.dump(c, open(os.path.join(dst_dir, "config.json"), "w"), indent=2, sort_keys=True)
    open(os.path.join(dst_dir, "config.json"), "a").write("\n")


def build(only=None):
    torch = _torch()
    import transformers
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    assert transformers.__version__ == "5.2.0", transformers.__version__
    os.makedirs(OUT, exist_ok=True)
    ids = torch.tensor(INPUT_IDS)
    producer = f"transformers 5.2.0 ({TF5_COMMIT[:9]}) on torch {torch.__version__}, float32, eager, cpu"
    for name, case in CASES.items():
        if only and name not in only:
            continue
        mt = case["model_type"]
        seed, model, mx, rec, margins = seed_search(name, case)
        d = os.path.join(OUT, name)
        shutil.rmtree(d, ignore_errors=True)
        model.save_pretrained(d)  # original layout (save_original_format=True is the 5.2.0 default)
        rec["input_ids"] = ids.clone()
        order = golden_order(rec, model.config.num_hidden_layers)
        save_golden(os.path.join(d, "golden.safetensors"), rec, order, producer)
        per64, same64 = fp64_check(model, rec)
        info = dict(
            arch=name, model_type=mt, hf_class=type(model).__name__,
            producer=dict(transformers="5.2.0", transformers_commit=TF5_COMMIT, torch=torch.__version__,
                          dtype="float32", attn_implementation=model.config._attn_implementation,
                          experts_implementation=model.config._experts_implementation, device="cpu",
                          patches="see ../../README.md (torch-1.13 shims and source patches)"),
            init=dict(seed=seed, recipe=INIT_RECIPE),
            config_non_defaults=non_defaults(model.config),
            input_ids=INPUT_IDS,
            input_note="rows share their first 8 tokens, so logits[0,:8] == logits[1,:8] (causal attention)",
            tensors=tensor_table(os.path.join(d, "model.safetensors")),
            lm_head_weight_stored=True,
            golden_tensors={k: {"dtype": str(rec[k].dtype).replace("torch.", ""), "shape": list(rec[k].shape)}
                            for k in order},
            routing=dict(kind=mt, k=model.config.num_experts_per_tok, per_layer=margins),
            checks=dict(
                min_routing_margin=min(v["margin"] for v in margins.values()),
                fp32_vs_fp64_max_abs_per_tensor=per64,
                max_abs_diff_fp32_vs_fp64=max(per64.values()),
                topk_idx_identical_in_fp64=same64,
                max_abs_value_per_tensor={k: float(rec[k].abs().max()) for k in order
                                          if rec[k].is_floating_point()},
                max_abs_logit_diff_rows_0_1_first8_positions=max_abs_diff(rec["logits"][0, :8],
                                                                          rec["logits"][1, :8]),
                sensitivity_max_abs_logit_diff=sensitivity(name, case, model, rec),
            ),
            tolerance={"float_tensors_atol": 1e-4,
                       "topk_idx": "exact (sorted by descending weight; compare as sets if your order differs)"},
        )
        if mt == "gpt_oss":
            info["checks"]["swiglu_clamp_activity"] = clamp_stats(model, ids)
            info["mxfp4"] = dict(exponent_ranges=case["mxfp4_exponents"],
                                 note="expert matrices are exactly representable in MXFP4; the sibling "
                                      f"{case['mxfp4_sibling']} stores the same weights as *_blocks/*_scales")
        json.dump(info, open(os.path.join(d, "golden.json"), "w"), indent=1)
        print(f"[{name}] written, fp32 vs fp64 max {max(per64.values()):.2e}", flush=True)

        if case.get("fused_sibling"):
            fd = os.path.join(OUT, case["fused_sibling"])
            shutil.rmtree(fd, ignore_errors=True)
            model.save_pretrained(fd, save_original_format=False)
            shutil.copy(os.path.join(d, "golden.safetensors"), fd)
        if case.get("mxfp4_sibling"):
            md = os.path.join(OUT, case["mxfp4_sibling"])
            shutil.rmtree(md, ignore_errors=True)
            write_mxfp4_dir(d, md, mx)
            shutil.copy(os.path.join(d, "golden.safetensors"), md)

    # fused-layout copies of existing fixtures
    for src, dst in EXISTING_FIXTURES.items():
        if dst is None or (only and dst not in only):
            continue
        from transformers import AutoModelForCausalLM
        m = AutoModelForCausalLM.from_pretrained(os.path.join(FIXTURES, src), attn_implementation="eager",
                                                 experts_implementation="eager", dtype=torch.float32).eval()
        fd = os.path.join(OUT, dst)
        shutil.rmtree(fd, ignore_errors=True)
        m.save_pretrained(fd, save_original_format=False)
        shutil.copy(os.path.join(FIXTURES, src, "golden.safetensors"), fd)
        print(f"[{dst}] written from {src}", flush=True)


# ----------------------------------------------------------------------------------------------------------
# cross-check against the existing fixtures + reload checks (transformers 5.2.0)
# ----------------------------------------------------------------------------------------------------------
def load_golden(path):
    from safetensors.torch import load_file
    return load_file(path)


def compare_to_golden(rec, gold):
    torch = _torch()
    res = {}
    for k, v in gold.items():
        if k == "input_ids" or k not in rec:
            continue
        if v.is_floating_point():
            res[k] = max_abs_diff(rec[k], v)
        else:
            same = torch.equal(rec[k], v) or torch.equal(rec[k].sort(1).values, v.sort(1).values)
            res[k] = "equal" if torch.equal(rec[k], v) else ("equal as sets" if same else "DIFFERENT")
    fl = [x for x in res.values() if isinstance(x, float)]
    return res, (max(fl) if fl else None)


def run_dir(d, **kw):
    torch = _torch()
    from transformers import AutoModelForCausalLM
    m = AutoModelForCausalLM.from_pretrained(d, attn_implementation="eager", dtype=torch.float32, **kw).eval()
    m._loaded_dtypes = sorted({str(v.dtype) for v in m.state_dict().values()})
    # transformers dequantises MXFP4 experts to bfloat16 on CPU whatever dtype was requested; every MXFP4 value
    # is exact in bfloat16, so the cast back to float32 is exact.
    m = m.to(torch.float32)
    return m, capture(m, torch.tensor(INPUT_IDS))


def verify():
    torch = _torch()
    import transformers
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    report = {}
    # 1. existing fixtures under 5.2.0
    for src in EXISTING_FIXTURES:
        d = os.path.join(FIXTURES, src)
        m, rec = run_dir(d, experts_implementation="eager")
        per, mx = compare_to_golden(rec, load_golden(os.path.join(d, "golden.safetensors")))
        report[f"existing:{src}"] = dict(max_abs_float_diff=mx, per_tensor=per)
        print(f"[existing {src}] 5.2.0 vs golden: max {mx:.3g}", flush=True)
    # 2. every directory we made: reload with from_pretrained and compare with its golden
    for name in sorted(os.listdir(OUT)):
        d = os.path.join(OUT, name)
        if not os.path.isdir(d):
            continue
        kw = {} if "mxfp4" in name else {"experts_implementation": "eager"}
        m, rec = run_dir(d, **kw)
        gold = load_golden(os.path.join(d, "golden.safetensors"))
        per, mx = compare_to_golden(rec, gold)
        entry = dict(max_abs_float_diff=mx, per_tensor=per,
                     safetensors_canonical={f: canonical_bytes_check(os.path.join(d, f))
                                            for f in ("model.safetensors", "golden.safetensors")})
        if "mxfp4" in name:
            # dequantised weights must equal the plain float model's bit for bit
            plain = os.path.join(OUT, name.replace("-mxfp4", ""))
            from safetensors import safe_open
            with safe_open(os.path.join(plain, "model.safetensors"), "pt") as f:
                ref = {k: f.get_tensor(k) for k in f.keys()}
            sd = m.state_dict()
            entry["dequantised_equals_plain_bitwise"] = all(torch.equal(sd[k], ref[k]) for k in ref)
            entry["quantization_config_seen_by_5.2.0"] = str(getattr(m.config, "quantization_config", None))
            entry["dtypes_after_from_pretrained_dtype_float32"] = m._loaded_dtypes
        report[name] = entry
        print(f"[{name}] reload (5.2.0) vs golden: max {mx}", flush=True)
    json.dump(report, open(os.path.join(OUT, "verify_5.2.0.json"), "w"), indent=1)


# ----------------------------------------------------------------------------------------------------------
# transformers 4.57.6 pass: write the v4-style config.json (the spelling the published checkpoints use) and
# check that 4.57.6 reproduces the 5.2.0 golden data from the same files.
# ----------------------------------------------------------------------------------------------------------
def v4pass():
    torch = _torch()
    import transformers
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    assert transformers.__version__ == "4.57.6", transformers.__version__
    from transformers import AutoConfig, AutoModelForCausalLM
    from safetensors import safe_open
    report = {}
    for name, case in CASES.items():
        d = os.path.join(OUT, name)
        cfg = AutoConfig.for_model(case["model_type"], **copy.deepcopy(case["config"]))
        model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager").eval().to(torch.float32)
        with safe_open(os.path.join(d, "model.safetensors"), "pt") as f:
            sd = {k: f.get_tensor(k) for k in f.keys()}
        missing, unexpected = model.load_state_dict(sd, strict=False)
        tmp = d + ".v4tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        same_bytes = open(os.path.join(tmp, "model.safetensors"), "rb").read() == \
            open(os.path.join(d, "model.safetensors"), "rb").read()
        for fn in ("config.json", "generation_config.json"):
            shutil.copy(os.path.join(tmp, fn), os.path.join(d, fn))
        shutil.rmtree(tmp)
        m2 = AutoModelForCausalLM.from_pretrained(d, attn_implementation="eager", dtype=torch.float32).eval()
        rec = capture(m2, torch.tensor(INPUT_IDS))
        per, mx = compare_to_golden(rec, load_golden(os.path.join(d, "golden.safetensors")))
        report[name] = dict(missing_keys=list(missing), unexpected_keys=list(unexpected),
                            model_safetensors_byte_identical_to_5_2_0_save=same_bytes,
                            max_abs_float_diff_vs_golden=mx, per_tensor=per)
        print(f"[{name}] 4.57.6: missing {len(missing)} unexpected {len(unexpected)}, same bytes {same_bytes}, "
              f"max diff vs 5.2.0 golden {mx}", flush=True)
        if case.get("mxfp4_sibling"):
            md = os.path.join(OUT, case["mxfp4_sibling"])
            c = json.load(open(os.path.join(d, "config.json")))
            c["quantization_config"] = MXFP4_QUANT_CONFIG
            with open(os.path.join(md, "config.json"), "w") as f:
                json.dump(c, f, indent=2, sort_keys=True)
                f.write("\n")
            shutil.copy(os.path.join(d, "generation_config.json"), md)
            try:
                m3 = AutoModelForCausalLM.from_pretrained(md, attn_implementation="eager",
                                                          dtype=torch.float32).eval()
                dts = sorted({str(v.dtype) for k, v in m3.state_dict().items() if ".experts." in k})
                # 4.57.6 dequantises MXFP4 on CPU to bfloat16 whatever dtype was asked for (its forward then
                # fails on float32 activations); every MXFP4 value is exact in bf16, so cast back to float32.
                m3 = m3.to(torch.float32)
                plain = {k: v for k, v in model.state_dict().items()}
                sd3 = m3.state_dict()
                bitwise = all(torch.equal(sd3[k], plain[k]) for k in plain)
                rec3 = capture(m3, torch.tensor(INPUT_IDS))
                per3, mx3 = compare_to_golden(rec3, load_golden(os.path.join(md, "golden.safetensors")))
                report[case["mxfp4_sibling"]] = dict(expert_dtypes_after_load=dts,
                                                     dequantised_equals_plain_bitwise_after_cast=bitwise,
                                                     max_abs_float_diff_vs_golden=mx3, per_tensor=per3)
            except Exception as e:  # noqa
                report[case["mxfp4_sibling"]] = dict(error=f"{type(e).__name__}: {e}"[:500])
            print(f"[{case['mxfp4_sibling']}] 4.57.6: {report[case['mxfp4_sibling']].get('max_abs_float_diff_vs_golden', report[case['mxfp4_sibling']].get('error'))}", flush=True)
    # existing fixtures under 4.57.6 too
    for src in EXISTING_FIXTURES:
        d = os.path.join(FIXTURES, src)
        m = AutoModelForCausalLM.from_pretrained(d, attn_implementation="eager", dtype=torch.float32).eval()
        rec = capture(m, torch.tensor(INPUT_IDS))
        per, mx = compare_to_golden(rec, load_golden(os.path.join(d, "golden.safetensors")))
        report[f"existing:{src}"] = dict(max_abs_float_diff=mx, per_tensor=per)
        print(f"[existing {src}] 4.57.6 vs golden: max {mx}", flush=True)
    json.dump(report, open(os.path.join(OUT, "verify_4.57.6.json"), "w"), indent=1)


# ----------------------------------------------------------------------------------------------------------
# finalize (plain python + numpy): merge the check reports into golden.json, describe the sibling directories,
# verify the layout mappings bit for bit, write MANIFEST.json
# ----------------------------------------------------------------------------------------------------------
FUSED_RULE = ("transformers 5.2.0 save_pretrained(save_original_format=False) layout: for every MoE layer L, "
              "model.layers.L.mlp.experts.gate_up_proj [E, 2*I, H] with gate_up_proj[e] = concat(gate_e, up_e) along "
              "dim 0 (rows 0..I-1 = gate_proj.weight of expert e, rows I..2I-1 = up_proj.weight; NOT interleaved) and "
              "model.layers.L.mlp.experts.down_proj [E, H, I] with down_proj[e] = down_proj.weight of expert e; no "
              "transposes (each slice is the nn.Linear weight [out, in]). All other tensors unchanged.")
MIXTRAL_RULE = ("as above with Mixtral names: gate = block_sparse_moe.experts.e.w1.weight, up = ...w3.weight, "
                "down = ...w2.weight; and the module is renamed block_sparse_moe -> mlp, so the router is "
                "model.layers.L.mlp.gate.weight (was model.layers.L.block_sparse_moe.gate.weight).")


def check_fused_mapping(orig_dir, fused_dir, mixtral=False):
    sys.path.insert(0, FAM)
    import numpy as np
    from ref_numpy import read_safetensors
    A, F = read_safetensors(os.path.join(orig_dir, "model.safetensors")), read_safetensors(
        os.path.join(fused_dir, "model.safetensors"))
    used = set()
    ok = True
    for k in F:
        if k.endswith("mlp.experts.gate_up_proj") or k.endswith("mlp.experts.down_proj"):
            L = k.split(".")[2]
            src = f"model.layers.{L}.block_sparse_moe.experts" if mixtral else f"model.layers.{L}.mlp.experts"
            E = F[k].shape[0]
            for e in range(E):
                if k.endswith("gate_up_proj"):
                    g, u = (("w1", "w3") if mixtral else ("gate_proj", "up_proj"))
                    want = np.concatenate([A[f"{src}.{e}.{g}.weight"], A[f"{src}.{e}.{u}.weight"]], axis=0)
                    used |= {f"{src}.{e}.{g}.weight", f"{src}.{e}.{u}.weight"}
                else:
                    d = "w2" if mixtral else "down_proj"
                    want = A[f"{src}.{e}.{d}.weight"]
                    used.add(f"{src}.{e}.{d}.weight")
                ok &= bool(np.array_equal(F[k][e], want))
        else:
            src = k.replace(".mlp.gate.", ".block_sparse_moe.gate.") if mixtral else k
            ok &= bool(np.array_equal(F[k], A[src]))
            used.add(src)
    return ok and used == set(A)


def finalize():
    v5 = json.load(open(os.path.join(OUT, "verify_5.2.0.json")))
    v4 = json.load(open(os.path.join(OUT, "verify_4.57.6.json")))
    npref = json.load(open(os.path.join(OUT, "numpy_reference.json")))
    for name, case in CASES.items():
        d = os.path.join(OUT, name)
        g = json.load(open(os.path.join(d, "golden.json")))
        c = g["checks"]
        c["max_abs_diff_after_save_and_reload_5.2.0"] = v5[name]["max_abs_float_diff"]
        c["safetensors_files"] = {f: {"canonical": v} for f, v in v5[name]["safetensors_canonical"].items()}
        c["transformers_4.57.6_crosscheck"] = {
            "max_abs_float_diff_vs_golden": v4[name]["max_abs_float_diff_vs_golden"],
            "topk_idx": {k: v for k, v in v4[name]["per_tensor"].items() if k.startswith("topk_idx")},
            "model_safetensors_byte_identical_to_5.2.0_save": v4[name]["model_safetensors_byte_identical_to_5_2_0_save"],
            "note": "config.json in this directory was written by 4.57.6 save_pretrained (v4 spelling: rope_theta + "
                    "rope_scaling, as the published checkpoints use); 5.2.0 reads it back to the same outputs "
                    "(max_abs_diff_after_save_and_reload_5.2.0)."}
        r = npref[name]
        c["independent_numpy_float64_reimplementation"] = {
            "max_abs_float_diff": r["max_abs_float_diff"], "max_abs_logit_diff": r["max_abs_logit_diff"],
            "topk_idx": r["topk_idx"],
            "note": "ref_numpy.py: float64 NumPy forward written from FACTS.md, reading only config.json and the "
                    "safetensors files with its own parser"}
        g["config_json_written_by"] = "transformers 4.57.6 save_pretrained (v4 key spelling)"
        siblings = {}
        if case.get("fused_sibling"):
            siblings[case["fused_sibling"]] = "same weights, transformers-v5 fused expert layout"
        if case.get("mxfp4_sibling"):
            siblings[case["mxfp4_sibling"]] = "same weights, experts stored as MXFP4 *_blocks/*_scales"
        g["sibling_directories"] = siblings
        json.dump(g, open(os.path.join(d, "golden.json"), "w"), indent=1)
        for sib, what in siblings.items():
            sd = os.path.join(OUT, sib)
            info = dict(arch=sib, model_type=case["model_type"], derived_from=name, what=what,
                        golden="golden.safetensors is a byte copy of ../%s/golden.safetensors (same inputs, same "
                               "expected outputs); see ../%s/golden.json for config, routing margins, checks" % (name, name),
                        golden_sha256_equal=sha256(os.path.join(sd, "golden.safetensors")) ==
                        sha256(os.path.join(d, "golden.safetensors")),
                        tensors=tensor_table(os.path.join(sd, "model.safetensors")),
                        checks={"max_abs_diff_5.2.0_from_pretrained_vs_golden": v5[sib]["max_abs_float_diff"],
                                "safetensors_canonical": v5[sib]["safetensors_canonical"],
                                "independent_numpy_float64": {k: npref[sib][k] for k in
                                                              ("max_abs_float_diff", "topk_idx")}},
                        tolerance=g["tolerance"])
            if "fused" in sib:
                info["layout_rule"] = FUSED_RULE
                info["mapping_verified_bitwise_against_%s" % name] = check_fused_mapping(d, sd)
                info["config_json_written_by"] = "transformers 5.2.0 save_pretrained (v5 key spelling: rope_parameters)"
            else:
                info["layout_rule"] = ("gpt-oss MXFP4: gate_up_proj_blocks [E, 2I, H/32, 16] U8 + gate_up_proj_scales "
                                       "[E, 2I, H/32] U8, down_proj_blocks [E, H, I/32, 16] + down_proj_scales "
                                       "[E, H, I/32]; dequantised (FACTS.md) and transposed over the last two axes "
                                       "they equal ../%s's gate_up_proj [E, H, 2I] and down_proj [E, I, H] exactly" % name)
                info["dequantised_equals_plain_bitwise_5.2.0"] = v5[sib]["dequantised_equals_plain_bitwise"]
                info["transformers_4.57.6_crosscheck"] = {k: v for k, v in v4[sib].items() if k != "per_tensor"}
                info["dtype_note"] = ("transformers (5.2.0 and 4.57.6) dequantise MXFP4 on CPU to bfloat16 even with "
                                      "dtype=float32; every value here is exact in bfloat16, and the checks cast the "
                                      "model back to float32 before running it")
                info["config_json_written_by"] = ("transformers 4.57.6 save_pretrained of the plain model + the "
                                                  "quantization_config block of the published gpt-oss configs")
            json.dump(info, open(os.path.join(sd, "golden.json"), "w"), indent=1)
    for src, dst in EXISTING_FIXTURES.items():
        if dst is None:
            continue
        sd = os.path.join(OUT, dst)
        mix = src == "tiny-mixtral"
        info = dict(arch=dst, derived_from=f"/work/shared/fixtures/models/{src}",
                    what="the existing fixture's weights re-laid-out only (loaded with transformers 5.2.0 and saved with "
                         "save_pretrained(save_original_format=False))",
                    layout_rule=FUSED_RULE + ((" " + MIXTRAL_RULE) if mix else ""),
                    mapping_verified_bitwise=check_fused_mapping(os.path.join(FIXTURES, src), sd, mixtral=mix),
                    golden=f"golden.safetensors is a byte copy of the fixture's golden.safetensors (transformers "
                           f"{'4.46.1' if src in ('tiny-mixtral',) else '4.51.0.dev0'}); see its golden.json",
                    tensors=tensor_table(os.path.join(sd, "model.safetensors")),
                    config_json_written_by="transformers 5.2.0 save_pretrained (v5 key spelling: rope_parameters, "
                                           "dtype" + (", num_local_experts instead of num_experts" if "qwen3" in src else "") + ")",
                    checks={"max_abs_diff_5.2.0_from_pretrained_vs_golden": v5[dst]["max_abs_float_diff"],
                            "safetensors_canonical": v5[dst]["safetensors_canonical"],
                            "independent_numpy_float64": {k: npref[dst][k] for k in ("max_abs_float_diff", "topk_idx")}},
                    tolerance={"float_tensors_atol": 1e-4, "topk_idx": "exact"})
        json.dump(info, open(os.path.join(sd, "golden.json"), "w"), indent=1)
    # manifest
    man = {}
    for root, _, files in os.walk(OUT):
        for f in sorted(files):
            p = os.path.join(root, f)
            man[os.path.relpath(p, FAM)] = {"bytes": os.path.getsize(p), "sha256": sha256(p)}
    json.dump(dict(sorted(man.items())), open(os.path.join(FAM, "MANIFEST.json"), "w"), indent=1)
    for n in sorted(os.listdir(OUT)):
        if os.path.isdir(os.path.join(OUT, n)):
            print(f"{n:36s} {dir_size(os.path.join(OUT, n)) / 1024:7.1f} KiB")


# ----------------------------------------------------------------------------------------------------------
# which group-routing configurations transformers 5.2.0 accepts (deepseek_v3 / glm4_moe)
# ----------------------------------------------------------------------------------------------------------
def constraints():
    torch = _torch()
    import transformers
    transformers.utils.logging.set_verbosity_error()
    ids = torch.tensor(INPUT_IDS)
    res = {}
    for mt, base in (("deepseek_v3", CASES["tiny-deepseek-v3-yarn"]["config"]),
                     ("glm4_moe", CASES["tiny-glm4-moe"]["config"])):
        for label, upd in (("E=8,n_group=8 (1 expert/group)", dict(n_routed_experts=8, n_group=8, topk_group=4)),
                           ("E=8,n_group=3 (does not divide)", dict(n_routed_experts=8, n_group=3, topk_group=2)),
                           ("E=8,n_group=4,topk_group=5 (> n_group)", dict(n_routed_experts=8, n_group=4, topk_group=5)),
                           ("E=8,n_group=4,topk_group=1,k=3 (k > experts in kept groups)",
                            dict(n_routed_experts=8, n_group=4, topk_group=1, num_experts_per_tok=3)),
                           ("E=2,n_group=1,topk_group=1,k=1", dict(n_routed_experts=2, n_group=1, topk_group=1,
                                                                   num_experts_per_tok=1)),
                           ("E=1,n_group=1,topk_group=1,k=1 (pruned to one expert)",
                            dict(n_routed_experts=1, n_group=1, topk_group=1, num_experts_per_tok=1)),
                           ("E=8,n_group=1,topk_group=1 (no grouping)", dict(n_routed_experts=8, n_group=1, topk_group=1))):
            kw = copy.deepcopy(base)
            kw.update(upd)
            try:
                m = make_model(mt, kw)
                init_weights(m, mt, 0)
                rec = capture(m, ids)
                note = "runs"
                if "k > experts" in label:
                    l = m.model.layers[1]
                    c = rec["router_logits.1"].sigmoid() + l.mlp.gate.e_score_correction_bias
                    g = c.view(-1, 4, 2).topk(2, -1)[0].sum(-1).argmax(1)
                    chosen = rec["topk_idx.1"]
                    outside = int(((chosen // 2) != g[:, None]).sum())
                    note += (f"; {outside} of {chosen.numel()} chosen experts lie outside the kept group "
                             "(their choice score was masked to 0)")
                res[f"{mt}: {label}"] = note
            except Exception as e:  # noqa
                res[f"{mt}: {label}"] = f"FAILS: {type(e).__name__}: {str(e)[:150]}"
    json.dump(res, open(os.path.join(OUT, "routing_constraints_5.2.0.json"), "w"), indent=1)
    print(json.dumps(res, indent=1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("step", choices=["all", "build", "v4pass", "verify", "constraints", "numpy", "finalize"])
    ap.add_argument("--only", nargs="*")
    a = ap.parse_args()
    if a.step == "all":
        for step, ver in (("build", "5"), ("v4pass", "4"), ("verify", "5"), ("constraints", "5"), ("numpy", "none"),
                          ("finalize", "none")):
            cmd = [PY, os.path.abspath(__file__), step] + (["--only"] + a.only if a.only and step == "build" else [])
            if step == "numpy":
                cmd = [PY, os.path.join(FAM, "ref_numpy.py")]
            print("==>", " ".join(cmd), flush=True)
            subprocess.run(cmd, env=env_for(ver), check=True)
        return
    if a.step == "build":
        build(a.only)
    elif a.step == "v4pass":
        v4pass()
    elif a.step == "verify":
        verify()
    elif a.step == "constraints":
        constraints()
    elif a.step == "finalize":
        finalize()
    elif a.step == "numpy":
        subprocess.run([PY, os.path.join(FAM, "ref_numpy.py")], env=env_for("none"), check=True)


if __name__ == "__main__":
    main()
