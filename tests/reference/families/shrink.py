#!/usr/bin/python3
"""Derive the committed reference data (models/) from make_golden.py's full output (generated/).

What is dropped, and why nothing is lost:
* golden.safetensors of a sibling directory (`*-fused`, `*-mxfp4`) is a byte copy of its source's; the
  sibling's golden.json names the source ("golden_from"), tests read the source's file.
* The fused copies of GLM-4-MoE (with and without q/k norm) and of the shared fixtures tiny-qwen3-moe and
  tiny-mixtral are 0.5-2 MB each and hold nothing but re-laid-out tensors. They are kept as config.json (the
  transformers 5.2.0 spelling, which readers must accept) plus tensors.json: every tensor's dtype, shape and
  FNV-1a 64 hash of its bytes. The tests write the fused layout from the per-expert source with moeforge and
  compare every tensor's hash with what transformers 5.2.0 wrote, then run the golden activations with the
  5.2.0 config.json.

usage: shrink.py [GENERATED_DIR] [MODELS_DIR]      (defaults: generated/ and models/ beside this script)
"""
import json
import os
import shutil
import struct
import sys

FAM = os.path.dirname(os.path.abspath(__file__))
SRC = sys.argv[1] if len(sys.argv) > 1 else os.path.join(FAM, "generated")
DST = sys.argv[2] if len(sys.argv) > 2 else os.path.join(FAM, "models")

FULL = ["tiny-deepseek-v3-yarn", "tiny-glm4-moe", "tiny-glm4-moe-noqknorm", "tiny-gpt-oss"]
SIBLINGS = {"tiny-deepseek-v3-yarn-fused": "tiny-deepseek-v3-yarn", "tiny-gpt-oss-mxfp4": "tiny-gpt-oss"}
HASHED = {"tiny-glm4-moe-fused": "tiny-glm4-moe", "tiny-glm4-moe-noqknorm-fused": "tiny-glm4-moe-noqknorm",
          "tiny-qwen3-moe-fused": "fixture:tiny-qwen3-moe", "tiny-mixtral-fused": "fixture:tiny-mixtral"}
TOP_FILES = ["numpy_reference.json", "routing_constraints_5.2.0.json", "verify_4.57.6.json", "verify_5.2.0.json"]


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def tensor_hashes(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name in sorted(k for k in header if k != "__metadata__"):
        e = header[name]
        a, b = e["data_offsets"]
        out[name] = {"dtype": e["dtype"], "shape": e["shape"], "fnv1a64": "%016x" % fnv1a64(data[a:b])}
    return out


def copy(src_dir, dst_dir, skip=()):
    os.makedirs(dst_dir, exist_ok=True)
    for f in sorted(os.listdir(src_dir)):
        if f not in skip:
            shutil.copyfile(os.path.join(src_dir, f), os.path.join(dst_dir, f))


def main():
    os.makedirs(DST, exist_ok=True)
    for f in TOP_FILES:
        shutil.copyfile(os.path.join(SRC, f), os.path.join(DST, f))
    for d in FULL:
        copy(os.path.join(SRC, d), os.path.join(DST, d))
    for d, source in SIBLINGS.items():
        copy(os.path.join(SRC, d), os.path.join(DST, d), skip=("golden.safetensors",))
        gj = os.path.join(DST, d, "golden.json")
        info = json.load(open(gj))
        info["golden_from"] = source
        json.dump(info, open(gj, "w"), indent=1)
    for d, source in HASHED.items():
        out = os.path.join(DST, d)
        copy(os.path.join(SRC, d), out, skip=("golden.safetensors", "model.safetensors"))
        info = {"layout_of": source, "written_by": "transformers 5.2.0 save_pretrained(save_original_format=False)",
                "model_safetensors_bytes": os.path.getsize(os.path.join(SRC, d, "model.safetensors")),
                "tensors": tensor_hashes(os.path.join(SRC, d, "model.safetensors"))}
        json.dump(info, open(os.path.join(out, "tensors.json"), "w"), indent=1)
        gj = os.path.join(out, "golden.json")
        g = json.load(open(gj))
        g["golden_from"] = source
        json.dump(g, open(gj, "w"), indent=1)
    total = 0
    for root, _, files in os.walk(DST):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    print(f"{DST}: {total / 1024:.0f} KiB")


main()
