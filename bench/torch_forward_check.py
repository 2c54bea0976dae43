#!/usr/bin/python3
"""Checks bench/torch_forward.py's forward against a fixture's golden logits (transformers' own
output), so the PyTorch side of the benchmark is known to compute the model it claims to.

usage: torch_forward_check.py MODEL_DIR   (a directory with golden.json + golden.safetensors)
"""
import json, os, sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_forward as tf  # noqa: E402

model_dir = sys.argv[1]
cfg, w = tf.load(model_dir)
golden = tf.load_safetensors(os.path.join(model_dir, "golden.safetensors"))
ids = torch.tensor(json.load(open(os.path.join(model_dir, "golden.json")))["input_ids"])
with torch.no_grad():
    logits = tf.forward(cfg, w, ids)
diff = (logits - golden["logits"]).abs().max().item()
print(f"{model_dir}: max |logits - golden| = {diff:.3g}")
sys.exit(0 if diff < 1e-4 else 1)
