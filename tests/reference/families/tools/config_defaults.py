#!/usr/bin/python3
"""Dump the __init__ defaults of the seven config classes (run under env5.sh and env4.sh; see README)."""
import torch_compat5, inspect, json, transformers
from transformers import DeepseekV3Config, Glm4MoeConfig, GptOssConfig, Qwen3MoeConfig, Qwen2MoeConfig, MixtralConfig, OlmoeConfig
out = {}
for c in (DeepseekV3Config, Glm4MoeConfig, GptOssConfig, Qwen3MoeConfig, Qwen2MoeConfig, MixtralConfig, OlmoeConfig):
    sig = inspect.signature(c.__init__)
    d = {k: (v.default if v.default is not inspect._empty else "<required>") for k, v in sig.parameters.items() if k not in ("self", "kwargs")}
    inst = c()
    out[c.model_type] = dict(signature=d, attribute_map=getattr(c, "attribute_map", {}), default_theta=getattr(c, "default_theta", None),
                             instance_rope=getattr(inst, "rope_parameters", None) if hasattr(inst, "rope_parameters") else (getattr(inst, "rope_theta", None), getattr(inst, "rope_scaling", None)),
                             instance_extra={k: getattr(inst, k) for k in ("head_dim", "partial_rotary_factor", "layer_types", "mlp_only_layers", "decoder_sparse_step", "qk_head_dim", "sliding_window", "use_sliding_window", "attention_bias") if hasattr(inst, k)})
print(json.dumps(out, indent=1, default=str))
