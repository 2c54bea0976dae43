#!/usr/bin/python3
"""Show that transformers 4.57.6 cannot read the v5 fused layout (run under env4.sh)."""
import sys; sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.dirname(__import__("os").path.abspath(__file__))))
import make_golden as mg
torch = mg._torch()
import transformers; transformers.utils.logging.set_verbosity_warning()
from transformers import AutoModelForCausalLM
from safetensors.torch import load_file
for d in ["tiny-qwen3-moe-fused", "tiny-deepseek-v3-yarn-fused"]:
    try:
        m, info = AutoModelForCausalLM.from_pretrained(mg.OUT + f"/{d}", attn_implementation="eager", output_loading_info=True)
        rec = mg.capture(m, torch.tensor(mg.INPUT_IDS))
        g = load_file(mg.OUT + f"/{d}/golden.safetensors")
        print(d, "missing", len(info["missing_keys"]), info["missing_keys"][:2], "unexpected", len(info["unexpected_keys"]), info["unexpected_keys"][:2], "logit diff", float((rec["logits"]-g["logits"]).abs().max()))
    except Exception as e:
        print(d, "ERROR", type(e).__name__, str(e)[:300])
