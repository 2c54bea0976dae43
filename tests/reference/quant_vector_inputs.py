#!/usr/bin/python3
"""Write the seeded float32 input rows for the quantiser test vectors (../inputs/NAME.f32, little-endian).
Needs numpy (Debian python3-numpy). Deterministic: numpy.random.default_rng(seed) (PCG64)."""
import json, os, sys
import numpy as np

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "inputs")
os.makedirs(out, exist_ok=True)
rows = {}

def add(name, arr, note):
    a = np.asarray(arr, dtype=np.float32)
    assert a.ndim == 1 and a.size % 256 == 0
    a.astype("<f4").tofile(os.path.join(out, name + ".f32"))
    rows[name] = {"n": int(a.size), "note": note}

r = np.random.default_rng(20240601)
add("gauss_256", r.standard_normal(256), "N(0,1), seed 20240601 draw 1")
add("weights_512", r.standard_normal(512) * 0.02, "N(0,0.02^2): typical weight scale, seed 20240601 draw 2")
add("zeros_256", np.zeros(256), "all +0.0")
x = r.standard_normal(256) * 0.01; x[37] = 10.0; x[200] = -0.5
add("outlier_256", x, "N(0,0.01^2) with x[37]=10.0 and x[200]=-0.5 (one huge outlier in sub-block 1)")
add("tiny_256", r.standard_normal(256) * 1e-6, "N(0,1e-12): tiny values, fp16 scales become subnormal")
add("eps_256", r.standard_normal(256) * 1e-17, "N(0,1e-34): below GROUP_MAX_EPS=1e-15 in every group")
x = np.zeros(512); x[256:] = r.uniform(-1, 1, 256)
add("halfzero_512", x, "first 256 zeros, last 256 U(-1,1)")
add("positive_256", r.uniform(0, 1, 256), "U(0,1): all non-negative (K-quant min clamps to 0)")
add("negmax_256", -np.abs(r.standard_normal(256)) * 0.1 + np.where(np.arange(256) % 32 == 5, -1.0, 0.0),
    "negative values, largest |x| in every 32-block is negative (q4_0/q8_0 sign convention)")
add("const_256", np.full(256, 0.3), "all 0.3 (max == min in every group)")
x = np.arange(256, dtype=np.float64) - 127.5
add("ramp_256", x / 127.5 * 127.0, "linear ramp -127 .. +127: many exact .5 ties for q8_0 (roundf: half away from zero)")
x = (np.arange(256) % 32 - 16) + 0.5
add("halves_256", x, "values k+0.5 in [-15.5, 15.5]: rounding-tie stress")
add("large_256", r.standard_normal(256) * 3000.0, "N(0,3000^2): large magnitudes, fp16 scales near the top of range")
# f16/bf16 conversion specials (only converted to f16/bf16, see qvec.c "fp_" prefix)
sp = [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, -np.nan,
      65504.0, 65519.99, 65520.0, 1e6, -1e6,               # f16 max, last value rounding down to max, first to inf
      6.103515625e-05, 6.097555160522461e-05,             # f16 min normal, largest f16 subnormal
      5.960464477539063e-08, 2.9802322387695312e-08, 2.98023259e-08, 1e-8,  # min f16 subnormal, half of it (tie->0), just above, below
      1.0009765625, 1.00048828125, 1.00146484375,          # f16: exact (1+2^-10), tie->even (1.0), tie->even (1+2^-9)
      1.00390625, 1.001953125, 1.005859375,                # bf16: tie->even(1.0), below tie (1.0), above tie (1.0078125)
      3.3895313892515355e+38, 3.4028234663852886e+38,      # bf16 max, f32 max (rounds to bf16 inf)
      1e-40, -1e-45, 1.1754942e-38]                        # f32 subnormals (bf16 keeps them, f16 flushes by rounding)
sp = np.array(sp, dtype=np.float32)
snan = np.array([0x7f800001, 0xffc00001, 0x7fa00000], dtype=np.uint32).view(np.float32)  # signalling / payload NaNs
x = np.concatenate([sp, snan, r.standard_normal(256 - len(sp) - len(snan)).astype(np.float32)])
add("fp_specials_256", x, "f16/bf16 conversion specials: +-0, +-inf, NaNs (incl. signalling/payload), f16 overflow/subnormal/ties, bf16 ties/overflow, f32 subnormals; rest N(0,1)")
json.dump({"generator": "gen_inputs.py", "rng": "numpy.random.default_rng(20240601), draws in the order listed", "rows": rows},
          open(os.path.join(out, "inputs.json"), "w"), indent=1)
print("wrote", len(rows), "rows to", out)
