#!/usr/bin/python3
"""Independent float64 NumPy re-implementation of SPEC.md, checked against expected/.

It does NOT import mergekit.  Its purpose is to prove that SPEC.md is complete enough to
reproduce mergekit's outputs (within each case's tolerance) and to serve as executable
pseudo-code for the moeforge C++ port.  Tie-breaks use the rule SPEC.md recommends
(stable: lower flat index first).

    PYTHONPATH=/work/shared/tools/hf-reference/shims /usr/bin/python3 check_spec.py
"""
import json
import math
import os
import sys

import numpy as np

sys.path.append("/work/shared/tools/hf-reference/shims")
from safetensors.numpy import load_file  # noqa: E402  (shim; BF16 widened to float32)

HERE = os.path.dirname(os.path.abspath(__file__))
EXP = os.path.join(HERE, "expected")


# ---------------------------------------------------------------- helpers
def l1_rescale(x, masked, eps=1e-7):
    before = np.abs(x).sum()
    after = np.abs(masked).sum()
    if before < eps or after < eps:
        return masked
    return masked * (before / after)


def magnitude(x, density, rescale):
    if density >= 1:
        return x
    n = x.size
    k = int(density * n)
    if k <= 0:
        raise AssertionError("k == 0")
    order = np.argsort(-np.abs(x).reshape(-1), kind="stable")
    mask = np.zeros(n)
    mask[order[:k]] = 1
    masked = x * mask.reshape(x.shape)
    return l1_rescale(x, masked) if rescale else masked


def magnitude_outliers(x, density, gamma, rescale):
    if density >= 1:
        return x
    n = x.size
    keep = int(density * n)
    n_top = int(gamma * n)
    n_bot = n - keep - n_top
    if n_bot < 0:
        n_top += n_bot
        n_bot = 0
    order = np.argsort(np.abs(x).reshape(-1), kind="stable")
    mask = np.zeros(n)
    if n_top > 0:  # python slice [n_bot:-0] is empty
        mask[order[n_bot:n - n_top]] = 1
    masked = x * mask.reshape(x.shape)
    return l1_rescale(x, masked) if rescale else masked


def della_probs(x, density, eps):
    t = x if x.ndim >= 2 else x.reshape(1, -1)
    mag = np.abs(t)
    order = np.argsort(mag, axis=1, kind="stable")
    ranks = np.argsort(order, axis=1, kind="stable").astype(np.float64) + 1
    mn = ranks.min(axis=1, keepdims=True)
    mx = ranks.max(axis=1, keepdims=True)
    rn = np.clip((ranks - mn) / (mx - mn), 0, 1)
    return (density - eps) + rn * 2 * eps


def sign_mask(weighted):
    s = np.sign(weighted)
    maj = np.where(weighted.sum(0) >= 0, 1.0, -1.0)
    return (s == maj).astype(np.float64)


def gta(method, inputs, order, base, tp, gp, rng):
    spars = {"task_arithmetic": None, "ties": "magnitude", "dare_ties": "random", "dare_linear": "random",
             "breadcrumbs": "outliers", "breadcrumbs_ties": "outliers", "della": "della", "della_linear": "della"}[method]
    consensus = method in ("ties", "dare_ties", "breadcrumbs_ties", "della")
    b = inputs[base]
    deltas, weights = [], []
    ri = 0
    for m in order:
        if m == base:
            continue
        x = inputs[m]
        if x.shape != b.shape:
            continue  # (embed submatrix case handled by caller)
        d = x - b
        p = tp[m]
        if spars == "magnitude":
            d = magnitude(d, p["density"], gp["rescale"])
        elif spars == "outliers":
            d = magnitude_outliers(d, p["density"], p["gamma"], gp["rescale"])
        elif spars in ("random", "della") and p["density"] < 1:
            if spars == "della" and not (0 < p["density"] - p["epsilon"] and p["density"] + p["epsilon"] < 1):
                raise ValueError("epsilon")
            mask = rng[ri].reshape(d.shape)
            ri += 1
            masked = d * mask
            d = l1_rescale(d, masked) if gp["rescale"] else masked
        deltas.append(d)
        weights.append(p["weight"])
    if not deltas:
        return b
    D = np.stack(deltas)
    W = np.array(weights).reshape((-1,) + (1,) * b.ndim)
    WD = D * W
    if consensus:
        mask = sign_mask(WD)
        mixed = (WD * mask).sum(0)
        div = (W * mask).sum(0)
        div[div == 0] = 1
    else:
        mixed = WD.sum(0)
        div = W.sum(0)
        div = np.where(np.abs(div) < 1e-8, 1, div)
    if gp["normalize"]:
        mixed = mixed / div
    if gp["lambda"] != 1:
        mixed = mixed * gp["lambda"]
    return b + mixed


def common_submatrix(ts):
    r = min(t.shape[0] for t in ts)
    c = min(t.shape[1] for t in ts)
    return [t[:r, :c] for t in ts]


def slerp(t, v0, v1, thr=0.9995, eps=1e-8):
    n0, n1 = np.linalg.norm(v0), np.linalg.norm(v1)
    u0 = v0 / n0 if n0 > eps else v0
    u1 = v1 / n1 if n1 > eps else v1
    dot = float((u0 * u1).sum())
    if abs(dot) > thr:
        return (1 - t) * v0 + t * v1
    th = math.acos(dot)
    s = math.sin(th)
    return math.sin(th - th * t) / s * v0 + math.sin(th * t) / s * v1


def nuslerp(t, v0, v1, row_wise, flatten, eps=1e-8):
    shape = v0.shape
    if flatten:
        a, b = v0.reshape(1, -1), v1.reshape(1, -1)
    else:
        a, b = (np.swapaxes(v0, 0, -1), np.swapaxes(v1, 0, -1)) if row_wise else (v0, v1)
    na = np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-7)
    nb = np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-7)
    cos = ((a / na) * (b / nb)).sum(-1, keepdims=True)
    th = np.arccos(np.clip(cos, -1, 1))
    s = np.sin(th)
    with np.errstate(divide="ignore", invalid="ignore"):
        res = (np.sin((1 - t) * th) * a + np.sin(t * th) * b) / s
    lin = (1 - t) * a + t * b
    res = np.where(np.abs(s) < eps, lin, res)
    if not flatten and row_wise:
        res = np.swapaxes(res, 0, -1)
    return res.reshape(shape)


def multislerp(ts, w, base, normalize, eps=1e-8):
    if len(ts) == 1:
        return ts[0]
    X = np.stack(ts)
    if base is not None:
        X = X - base
    F = X.reshape(len(ts), -1)
    w = np.array(w, dtype=np.float64)
    if normalize:
        w = w / w.sum()
    norms = np.linalg.norm(F, axis=-1, keepdims=True)
    U = F / (norms + eps)
    mean = (U * w[:, None]).sum(0)
    mn = np.linalg.norm(mean)
    if mn < eps:
        if len(ts) == 2:
            r = (X[0] * w[0] + X[1] * w[1])
            return r + base if base is not None else r
        raise ValueError("zero mean")
    mean = mean / mn
    dots = (U * mean).sum(-1, keepdims=True)
    T = U - dots * mean
    tr = (T * w[:, None]).sum(0)
    tn = np.linalg.norm(tr) + eps
    res = mean * math.cos(tn) + tr * (math.sin(tn) / tn)
    res = res * (norms[:, 0] * w).sum()
    res = res.reshape(X.shape[1:])
    return res + base if base is not None else res


def karcher(ts, max_iter, tol):
    n = len(ts)
    alphas = [1.0 / n] * n
    norms, units = [], []
    for t in ts:
        nv = float(np.linalg.norm(t))
        norms.append(nv)
        units.append(t / nv if nv != 0 else np.zeros_like(t))
    valid = [i for i in range(n) if norms[i] > tol]
    if not valid:
        return np.zeros_like(ts[0])
    va = [alphas[i] for i in valid]
    va = [a / sum(va) for a in va]
    vu = [units[i] for i in valid]
    u = sum(a * x for a, x in zip(va, vu))
    nu = float(np.linalg.norm(u))
    u = vu[0].copy() if nu < tol else u / nu
    for _ in range(max_iter):
        T = np.zeros_like(u)
        for a, x in zip(va, vu):
            d = min(max(float((u * x).sum()), -1.0), 1.0)
            th = math.acos(d)
            if th < tol:
                continue
            T += a * (th / math.sin(th)) * (x - d * u)
        nT = float(np.linalg.norm(T))
        if nT < tol:
            break
        u = math.cos(nT) * u + math.sin(nT) * (T / nT)
        un = float(np.linalg.norm(u))
        if un > tol:
            u = u / un
    return sum(a * nv for a, nv in zip(alphas, norms)) * u


def model_stock(w0, ws, filter_wise):
    shape = w0.shape
    if filter_wise:
        if w0.ndim == 1:
            w0 = w0[None]
            ws = [w[None] for w in ws]
    else:
        w0 = w0.reshape(-1)
        ws = [w.reshape(-1) for w in ws]
    offs = [w - w0 for w in ws]
    cos = []
    for i in range(len(offs)):
        for j in range(i + 1, len(offs)):
            npd = np.linalg.norm(offs[i], axis=-1) * np.linalg.norm(offs[j], axis=-1)
            cos.append(np.clip((offs[i] * offs[j]).sum(-1) / np.maximum(npd, 1e-6), -1, 1))
    c = np.mean(np.stack(cos), axis=0)[..., None]
    N = len(ws)
    t = N * c / (1 + (N - 1) * c)
    avg = sum(ws) / N
    return (t * avg + (1 - t) * w0).reshape(shape)


def sce(tvs_in, base, topk):
    tv = np.stack([t - base for t in tvs_in])
    if topk < 1:
        var = tv.var(axis=0)
        k = int(np.count_nonzero(var) * topk)
        mask = np.zeros(var.size)
        if k > 0:
            idx = np.argsort(-np.abs(var).reshape(-1), kind="stable")[:k]
            mask[idx] = 1
        tv = tv * mask.reshape(var.shape)[None]
    em = sign_mask(tv)
    w = (tv ** 2).reshape(len(tv), -1).mean(1)
    ws = w.sum()
    w = np.ones_like(w) / len(w) if abs(ws) < 1e-6 else w / ws
    w = w.reshape((-1,) + (1,) * base.ndim)
    ew = w * em
    return base + (tv * ew).sum(0) / np.maximum(ew.sum(0), 1e-6)


def ram(tvs_in, base, eps, plus=None):
    tv = np.stack([t - base for t in tvs_in]).reshape(len(tvs_in), -1)
    nz = np.abs(tv) > eps
    cnt = nz.sum(0, keepdims=True)
    ov = cnt > 1
    un = cnt == 1
    z = tv * nz
    if plus is None:
        lam = np.ones((len(tvs_in), 1))
    else:
        r, alpha = plus
        shared = (nz & ov).sum(1)
        uniq = (nz & un).sum(1)
        rho = shared / np.maximum(uniq, eps)
        lam = (1 + r * np.clip(rho, 0, alpha))[:, None]
    merged = (z * un * lam + z * ov / np.maximum(cnt, 1)).sum(0)
    return base + merged.reshape(base.shape)


def arcee_fusion(a, b):
    def softmax(x):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    diff = np.abs(b - a)
    p = softmax(b) + 1e-8
    q = softmax(a) + 1e-8
    kl = (p * np.log(p / q)).sum(-1)
    imp = diff * np.expand_dims(kl, -1)
    s = np.sort(imp.reshape(-1))
    n = s.size

    def q_at(f):
        return s[int(np.float32(f) * np.float32(n - 1))]

    thr = q_at(0.5) + 1.5 * (q_at(0.75) - q_at(0.25))
    return a + (b - a) * (imp >= thr)


# ---------------------------------------------------------------- bf16 emulation
def rbf(x):
    """round float32 -> bfloat16 (round-to-nearest-even), returned as float32"""
    b = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    b = (b + 0x7FFF + ((b >> 16) & 1)) & 0xFFFF0000
    return b.astype(np.uint32).view(np.float32)


def seq_sum(a):
    """sum over axis 0 in float32, models in order (torch CPU reduction of bf16 over a small dim)"""
    acc = a[0].astype(np.float32)
    for i in range(1, len(a)):
        acc = (acc + a[i]).astype(np.float32)
    return acc


def bf16_case(c, inputs, order, gp, tp, base):
    f32 = {m: v.astype(np.float32) for m, v in inputs.items()}
    method = c["method"]
    if method == "linear":
        X = np.stack([f32[m] for m in order])
        W = rbf(np.array([tp[m]["weight"] for m in order], dtype=np.float32)).reshape((-1,) + (1,) * (X.ndim - 1))
        S = rbf(seq_sum(rbf(X * W)))
        return rbf(S / rbf(seq_sum(W))) if gp["normalize"] else S
    if method == "slerp":
        other = [m for m in order if m != base][0]
        return rbf(slerp(gp["t"], f32[base].astype(np.float64), f32[other].astype(np.float64)).astype(np.float32))
    b = f32[base]
    ms = [m for m in order if m != base]
    D = []
    for m in ms:
        d = rbf(f32[m] - b)
        dens = tp[m]["density"]
        if method == "ties" and dens < 1:
            k = int(dens * d.size)
            idx = np.argsort(-np.abs(d).reshape(-1), kind="stable")[:k]
            mask = np.zeros(d.size, dtype=np.float32)
            mask[idx] = 1
            d = d * mask.reshape(d.shape)
        D.append(d)
    D = np.stack(D)
    W = rbf(np.array([tp[m]["weight"] for m in ms], dtype=np.float32)).reshape((-1,) + (1,) * b.ndim)
    WD = rbf(D * W)
    if method == "ties":
        sw = seq_sum(WD)
        mask = (np.sign(WD) == np.where(sw >= 0, 1, -1)).astype(np.float32)
        mixed = rbf(seq_sum(WD * mask))
        div = rbf(seq_sum(np.broadcast_to(W, WD.shape) * mask))
        div[div == 0] = 1
    else:
        mixed = rbf(seq_sum(WD))
        div = rbf(seq_sum(W))
        div = np.where(np.abs(div) < 1e-8, 1, div)
    if gp["normalize"]:
        mixed = rbf(mixed / div)
    if gp["lambda"] != 1:
        mixed = rbf(mixed * rbf(np.float32(gp["lambda"])))
    return rbf(b + mixed)


# ---------------------------------------------------------------- driver
def main():
    doc = json.load(open(os.path.join(EXP, "cases.json")))
    cache = {}
    worst = []
    fails = 0
    for c in doc["method_cases"]:
        if c.get("expected") is None:
            continue
        f = c["file"]
        if f not in cache:
            cache[f] = {k: v.astype(np.float64) for k, v in load_file(os.path.join(EXP, f)).items()}
        T = cache[f]
        inputs = {m: T[k] for m, k in c["inputs"].items()}
        order = c["input_order"]
        gp = c["resolved_parameters"]["global"]
        tp = c["resolved_parameters"]["per_model"]
        base = c["config"].get("base_model")
        method = c["method"]
        rng = [T[r["mask"]] for r in c.get("rng", {}).get("calls_in_order", [])]
        ts = [inputs[m] for m in order]
        if method == "linear":
            if c["is_embed"]:
                ts = common_submatrix(ts)
            w = np.array([tp[m]["weight"] for m in order]).reshape((-1,) + (1,) * ts[0].ndim)
            out = (np.stack(ts) * w).sum(0)
            if gp["normalize"]:
                out = out / w.sum(0)
        elif method == "slerp":
            other = [m for m in order if m != base][0]
            out = slerp(gp["t"], inputs[base], inputs[other])
        elif method == "nuslerp":
            ms = [m for m in order if m != base]
            w = [tp[m]["weight"] for m in ms]
            t = 0.5 if abs(sum(w)) < 1e-6 else w[1] / sum(w)
            if base:
                b = inputs[base]
                out = b + nuslerp(t, inputs[ms[0]] - b, inputs[ms[1]] - b, gp["nuslerp_row_wise"], gp["nuslerp_flatten"])
            else:
                out = nuslerp(t, inputs[ms[0]], inputs[ms[1]], gp["nuslerp_row_wise"], gp["nuslerp_flatten"])
        elif method == "multislerp":
            ms = c["easy_define_model_order"]
            out = multislerp([inputs[m] for m in ms], [tp[m]["weight"] for m in ms], inputs[base] if base else None, gp["normalize_weights"], gp["eps"])
        elif method == "karcher":
            out = karcher(ts, int(gp["max_iter"]), gp["tol"])
        elif method in ("task_arithmetic", "ties", "dare_ties", "dare_linear", "breadcrumbs", "breadcrumbs_ties", "della", "della_linear"):
            if c["is_embed"]:
                b = inputs[base]
                inputs = {m: (v[: b.shape[0], : b.shape[1]] if m != base else v) for m, v in inputs.items()}
            out = gta(method, inputs, order, base, tp, gp, rng)
            if method in ("della", "della_linear"):
                for r, m in zip(c["rng"]["calls_in_order"] if "rng" in c else [], [x for x in order if x != base]):
                    if "probs" in r:
                        d = inputs[m] - inputs[base]
                        pr = della_probs(d, tp[m]["density"], tp[m]["epsilon"])
                        e = np.max(np.abs(pr.reshape(T[r["probs"]].shape) - T[r["probs"]]))
                        if e > 1e-6:
                            print(f"PROBS MISMATCH {c['name']} {m}: {e}")
                            fails += 1
        elif method == "sce":
            ms = c["easy_define_model_order"]
            out = sce([inputs[m] for m in ms], inputs[base], gp["select_topk"])
        elif method in ("ram", "ramplus_tl"):
            ms = c["easy_define_model_order"]
            plus = (gp["r"], gp["alpha"]) if method == "ramplus_tl" else None
            out = ram([inputs[m] for m in ms], inputs[base], gp["epsilon"], plus)
        elif method == "model_stock":
            out = model_stock(inputs[base], [inputs[m] for m in order if m != base], gp["filter_wise"])
        elif method == "nearswap":
            a = inputs[base]
            b = inputs[[m for m in order if m != base][0]]
            w = np.clip(gp["t"] / np.maximum(np.abs(a - b), 1e-6), 0, 1)
            out = w * b + (1 - w) * a
        elif method == "arcee_fusion":
            other = [m for m in order if m != base][0]
            out = arcee_fusion(inputs[base], inputs[other])
        elif method == "passthrough":
            s = tp[order[0]]["scale"]
            out = ts[0] * (s if s is not None else 1)
        else:
            print("no checker for", method)
            continue
        exp = T[c["expected"]]
        tol = c["tolerance"]
        if c.get("expected_dtype") == "bfloat16":
            out = bf16_case(c, inputs, order, gp, tp, base).astype(np.float64)
        with np.errstate(invalid="ignore"):
            err = np.abs(out - exp)
            bad = ~((err <= tol["atol"] + tol["rtol"] * np.abs(exp)) | (np.isnan(out) & np.isnan(exp)) | (out == exp))
        worst.append((float(np.nanmax(err)) if err.size else 0.0, c["name"]))
        if bad.any():
            fails += 1
            print(f"FAIL {c['name']}: {int(bad.sum())} elements, max err {np.nanmax(err):.3g}")
    worst.sort(reverse=True)
    print("largest abs deviations:", [(n, f"{e:.2e}") for e, n in worst[:8]])
    print("checked", len(worst), "cases;", "failures:", fails)
    return fails


if __name__ == "__main__":
    sys.exit(1 if main() else 0)
