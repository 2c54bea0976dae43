#!/usr/bin/python3
"""Generate expected data for moeforge's mergekit-compatible dense merging by running
mergekit's OWN merge-method, sparsify, config and planner code (see mk_shims.py for the
stand-ins needed to import it under Debian python3-torch 1.13).

Usage (see README.md):
    MERGEKIT_SRC=/tmp/mergekit-src PYTHONHASHSEED=0 \
    PYTHONPATH=/work/shared/tools/hf-reference/shims /usr/bin/python3 make_expected.py

Writes ./expected/*.safetensors, ./expected/cases.json, ./expected/registry.json
"""

import copy
import json
import os
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
SHIMS = "/work/shared/tools/hf-reference/shims"
if SHIMS not in sys.path:
    sys.path.append(SHIMS)

if os.environ.get("PYTHONHASHSEED") != "0":
    # set ordering of ModelReference objects (used by easy_define methods) depends on str
    # hashing; fix it so reruns are byte-identical.
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

import torch  # noqa: E402

torch.set_num_threads(1)

import mk_shims  # noqa: E402

SRC = os.environ.get("MERGEKIT_SRC", "/tmp/mergekit-src")
MERGEKIT_COMMIT = "a6e402884ba9bc30da7f23e8304a35f19485de95"
mk_shims.install(SRC)

from safetensors.torch import save_file  # noqa: E402  (numpy shim)

import mergekit.config as mkconfig  # noqa: E402
import mergekit.merge as mkmerge  # noqa: E402
import mergekit.plan as mkplan  # noqa: E402
from mergekit import merge_methods  # noqa: E402
from mergekit.architecture import (  # noqa: E402
    ModelArchitecture,
    ModuleArchitecture,
    ModuleDefinition,
    WeightInfo,
)
from mergekit.common import ImmutableMap, ModelReference  # noqa: E402
from mergekit.io.tasks import LoaderCache  # noqa: E402
from mergekit.options import MergeOptions  # noqa: E402

OUT = os.path.join(HERE, "expected")
os.makedirs(OUT, exist_ok=True)

# ============================================================================ config parsing
# Emulates what pydantic v2 does to a mergekit-yaml config before mergekit sees it:
#   ParameterSetting = Union[ConditionalParameter, List[ConditionalParameter], float, List[float]]
# -> numbers/bools become float (bool -> 1.0/0.0 in lax mode), lists of numbers -> list of float,
#    a dict -> ConditionalParameter, a list of dicts -> list of ConditionalParameter.


def parse_value(v):
    if isinstance(v, list):
        return [float(e) for e in v]
    return float(v)


def parse_setting(v):
    if isinstance(v, dict):
        return mkconfig.ConditionalParameter(value=parse_value(v["value"]), filter=v.get("filter"))
    if isinstance(v, list) and v and all(isinstance(e, dict) for e in v):
        return [parse_setting(e) for e in v]
    return parse_value(v)


def parse_params(d):
    if d is None:
        return None
    return {k: parse_setting(v) for k, v in d.items()}


def MR(x):
    return None if x is None else ModelReference(x)


def parse_config(d):
    d = copy.deepcopy(d)
    kw = dict(merge_method=d["merge_method"])
    kw["base_model"] = MR(d.get("base_model"))
    kw["dtype"] = d.get("dtype")
    kw["out_dtype"] = d.get("out_dtype")
    kw["tokenizer_source"] = d.get("tokenizer_source")
    kw["tokenizer"] = None
    kw["chat_template"] = None
    kw["parameters"] = parse_params(d.get("parameters"))
    kw["modules"] = None
    kw["models"] = None
    kw["slices"] = None
    if "models" in d:
        kw["models"] = [
            mkconfig.InputModelDefinition(model=MR(m["model"]), parameters=parse_params(m.get("parameters")))
            for m in d["models"]
        ]
    if "slices" in d:
        kw["slices"] = [
            mkconfig.OutputSliceDefinition(
                sources=[
                    mkconfig.InputSliceDefinition(
                        model=MR(s["model"]),
                        layer_range=tuple(s["layer_range"]),
                        parameters=parse_params(s.get("parameters")),
                    )
                    for s in sl["sources"]
                ],
                base_model=MR(sl.get("base_model")),
                residual_weight=None,
                parameters=parse_params(sl.get("parameters")),
            )
            for sl in d["slices"]
        ]
    return mkconfig.MergeConfiguration(**kw)


def jsonable(v):
    if isinstance(v, ModelReference):
        return str(v)
    if isinstance(v, (list, tuple)):
        return [jsonable(e) for e in v]
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if hasattr(v, "value") and hasattr(v, "name") and type(v).__module__.startswith("mergekit"):
        return v.value  # enums
    if isinstance(v, float) and v != v:
        return "nan"
    return v


# ============================================================================ tensor helpers
def gen(seed):
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def randn(shape, seed, scale=1.0):
    return torch.randn(*shape, generator=gen(seed)) * scale


def finetunes(shape, seed, names=("model_a", "model_b"), scale=0.1):
    base = randn(shape, seed)
    res = {"base": base}
    for i, n in enumerate(names):
        res[n] = base + randn(shape, seed * 100 + i + 1, scale)
    return res


def indep(shape, seed, names=("model_a", "model_b")):
    return {n: randn(shape, seed * 100 + i) for i, n in enumerate(names)}


# ============================================================================ method runner
class Rng:
    """Wraps torch.bernoulli to record (probabilities, draw) so DARE/DELLA become replayable."""

    def __init__(self):
        self.calls = []
        self.replay = None

    def __enter__(self):
        self.orig = torch.bernoulli

        def wrapped(p, *a, **k):
            if self.replay is not None:
                m = self.replay.pop(0)
            else:
                m = self.orig(p, *a, **k)
            self.calls.append((p.detach().clone(), m.detach().clone()))
            return m

        torch.bernoulli = wrapped
        return self

    def __exit__(self, *a):
        torch.bernoulli = self.orig
        return False


def layer_t(layer_index, num_layers):
    """plan.py MergePlanner.plan_slice: t = idx/(n-1) if n>1 else 1; pre/post weights use t=0."""
    if layer_index is None:
        return 0.0
    return layer_index / (num_layers - 1) if num_layers > 1 else 1.0


def resolve_and_make_task(cfg, tensor_name, t, is_embed):
    """Replicates MergePlanner.normalize_config (models -> one slice; base appended if absent)
    and MergePlanner.plan_tensor's parameter lookups with the REAL ConfigReader."""
    method = merge_methods.get(cfg.merge_method)
    base = cfg.base_model
    sources = [
        mkconfig.InputSliceDefinition(model=m.model, layer_range=(0, 1), parameters=m.parameters) for m in cfg.models
    ]
    if base is not None and not any(s.model == base for s in sources):
        sources.append(mkconfig.InputSliceDefinition(model=base, layer_range=(0, 1), parameters=None))
    slice_out = mkconfig.OutputSliceDefinition(sources=sources, base_model=None, residual_weight=None, parameters=None)
    module = mkconfig.OutputModuleDefinition(slices=[slice_out], models=None, parameters=None)
    reader = mkconfig.ConfigReader(config=cfg, slice_out=slice_out, t=0, module=module, tensor_name=None)
    reader = reader.with_t(t).for_tensor(tensor_name)
    global_params = {}
    for p in method.parameters():
        global_params[p.name] = reader.parameter(p.name, model=None, required=p.required, default=p.default_value)
    models = []
    for s in sources:  # dict(zip(models, weights_in)) collapses duplicate models
        if s.model not in models:
            models.append(s.model)
    tensor_params = {}
    for m in models:
        tensor_params[m] = {}
        for p in method.tensor_parameters():
            tensor_params[m][p.name] = reader.parameter(
                p.name, model=m, required=p.required and not (m == base), default=p.default_value
            )
    task = method.make_task(
        output_weight=WeightInfo(name=tensor_name, is_embed=is_embed),
        tensors=None,
        parameters=ImmutableMap(data=global_params),
        tensor_parameters=ImmutableMap(data={k: ImmutableMap(data=v) for k, v in tensor_params.items()}),
        base_model=base,
    )
    if type(task).__name__ == "KarcherTask":  # pydantic would coerce the int field
        task.max_iter = int(task.max_iter)
    return method, task, models, global_params, tensor_params


FILES = {}  # file -> {key: tensor}
CASES = []


def add_tensor(file, key, t):
    FILES.setdefault(file, {})[key] = t.detach().contiguous().clone()


def easy_define_order(models, base):
    """easy_define._execute: model_refs = set(keys) minus base -> list (set iteration order)."""
    refs = set(models)
    if base and base in refs:
        refs.remove(base)
    return list(refs)


TOL = {
    "exact": {"atol": 1e-6, "rtol": 1e-6, "note": "elementwise float32 ops over <=3 models; bit-exact if the same op order is used (sum models in input order)"},
    "reduce": {"atol": 2e-6, "rtol": 2e-5, "note": "involves whole-tensor reductions (norms/dots/sums) whose float32 accumulation order in torch is not reproducible bit-for-bit"},
    "slerp": {"atol": 2e-6, "rtol": 2e-5, "note": "slerp runs in numpy float32 (dot/norm reductions); scalar trig in float64 under numpy<2, float32 under numpy>=2 (NEP 50)"},
    "illcond": {"atol": 2e-3, "rtol": 1e-3, "note": "contains nearly antiparallel short vectors (cos=-0.9993, length-2 vectors): sin(theta) is small, float32 acos error is amplified ~20x; only a bit-identical float32 acos/sin would match tightly"},
    "bf16": {"atol": 0.0, "rtol": 0.0078125, "note": "bfloat16 arithmetic: every torch op rounds to bf16; allow 1 bf16 ulp (2^-7 relative) of disagreement"},
}


def run_case(name, file, config, inputs, tensor_name="model.layers.0.mlp.down_proj.weight", layer_index=0,
             num_layers=1, is_embed=False, tol="exact", notes="", seed=None, replay_check=True, dtype=None):
    """Run one merge through mergekit's own task code and record it."""
    cfg = parse_config(config)
    t = layer_t(layer_index, num_layers)
    entry = {
        "name": name,
        "method": config["merge_method"],
        "file": file + ".safetensors",
        "tensor_name": tensor_name,
        "is_embed": is_embed,
        "layer_index": layer_index,
        "num_layers_in_slice": num_layers,
        "t": t,
        "config": config,
    }
    tensors = {}
    for model_name, ten in inputs.items():
        if dtype is not None:
            ten = ten.to(dtype)
        key = f"{name}/{model_name}"
        add_tensor(file, key, ten)
        tensors[ModelReference(model_name)] = ten
    try:
        method, task, models, gp, tp = resolve_and_make_task(cfg, tensor_name, t, is_embed)
        entry["resolved_parameters"] = {"global": jsonable(gp), "per_model": {str(k): jsonable(v) for k, v in tp.items()}}
        # GatherTensors returns tensors in source order; models with no tensor are dropped
        ordered = {m: tensors[m] for m in models if m in tensors}
        entry["inputs"] = {str(m): f"{name}/{m}" for m in ordered}
        entry["input_order"] = [str(m) for m in ordered]
        if method.name() in ("multislerp", "nearswap", "sce", "ram", "ramplus_tl"):
            entry["easy_define_model_order"] = [str(m) for m in easy_define_order(list(ordered), cfg.base_model)]
        if seed is not None:
            torch.manual_seed(seed)
        with Rng() as rng:
            out = task.execute(tensors=dict(ordered))
        if out is None:
            entry["expected"] = None
            entry["notes"] = (notes + " | mergekit returned None (tensor dropped)").strip(" |")
        else:
            add_tensor(file, f"{name}/out", out)
            entry["expected"] = f"{name}/out"
            entry["expected_dtype"] = str(out.dtype).replace("torch.", "")
        if rng.calls:
            non_base = [m for m in ordered if m != cfg.base_model]
            rec = []
            for i, (p, m) in enumerate(rng.calls):
                who = str(non_base[i]) if i < len(non_base) else f"call{i}"
                add_tensor(file, f"{name}/rng/{who}/mask", m)
                item = {"model": who, "mask": f"{name}/rng/{who}/mask"}
                if p.numel() > 1 and not bool((p == p.reshape(-1)[0]).all()):
                    add_tensor(file, f"{name}/rng/{who}/probs", p)
                    item["probs"] = f"{name}/rng/{who}/probs"
                    item["probs_shape_note"] = "probabilities exactly as passed to torch.bernoulli (1-D inputs are unsqueezed to [1,N])"
                else:
                    item["probs_constant"] = float(p.reshape(-1)[0])
                rec.append(item)
            entry["rng"] = {
                "calls_in_order": rec,
                "note": "torch.bernoulli draws recorded under torch.manual_seed(%s); substitute these masks (one call per non-base model, input order) to reproduce 'expected' exactly" % seed,
            }
            if replay_check:
                with Rng() as rng2:
                    rng2.replay = [m for _, m in rng.calls]
                    out2 = task_again(cfg, tensor_name, t, is_embed).execute(tensors=dict(ordered))
                assert torch.equal(out2, out), name
        entry["tolerance"] = TOL[tol]
    except Exception as e:  # record mergekit's failure mode
        entry["expected"] = None
        entry["expected_error"] = {"type": type(e).__name__, "message": str(e)}
        entry["tolerance"] = None
        tb = traceback.extract_tb(e.__traceback__)[-1]
        entry["expected_error"]["raised_at"] = f"{os.path.relpath(tb.filename, SRC)}:{tb.lineno}"
    if notes:
        entry["notes"] = (notes + (" | " + entry["notes"] if "notes" in entry and entry["notes"] != notes else "")).strip()
    CASES.append(entry)
    return entry


def task_again(cfg, tensor_name, t, is_embed):
    return resolve_and_make_task(cfg, tensor_name, t, is_embed)[1]


def models_cfg(method, params_per_model, global_params=None, base="base", include_base_in_models=True, **extra):
    models = []
    if base is not None and include_base_in_models:
        models.append({"model": base})
    for n, p in params_per_model.items():
        d = {"model": n}
        if p:
            d["parameters"] = p
        models.append(d)
    c = {"merge_method": method, "models": models}
    if base is not None:
        c["base_model"] = base
    if global_params:
        c["parameters"] = global_params
    c.update(extra)
    return c


# ============================================================================ method cases
def linear_cases():
    f = "linear"
    x = indep((8, 16), 1, ("model_a", "model_b"))
    run_case("linear_2m_default", f, models_cfg("linear", {"model_a": {"weight": 0.6}, "model_b": {"weight": 0.4}}, base=None), x,
             notes="normalize defaults to true: sum(w_i*x_i)/sum(w_i)")
    x = indep((16,), 2, ("model_a", "model_b", "model_c"))
    run_case("linear_3m_nonorm_1d", f, models_cfg("linear", {"model_a": {"weight": 1.0}, "model_b": {"weight": 0.5}, "model_c": {"weight": -0.25}},
             {"normalize": False}, base=None), x, tensor_name="model.layers.0.input_layernorm.weight")
    x = indep((2, 4, 6), 3, ("model_a", "model_b", "model_c"))
    run_case("linear_3m_3d", f, models_cfg("linear", {"model_a": {"weight": 0.3}, "model_b": {"weight": 0.3}, "model_c": {"weight": 0.7}}, base=None), x,
             tensor_name="model.layers.0.mlp.experts.down_proj", notes="3-D fused-expert-like tensor; weights sum to 1.3 -> normalized")
    x = indep((8, 16), 4, ("model_a", "model_b"))
    run_case("linear_gradient_weight_layer1of3", f, models_cfg("linear", {"model_a": {"weight": [0.0, 1.0]}, "model_b": {"weight": [1.0, 0.0]}}, base=None), x,
             tensor_name="model.layers.1.self_attn.q_proj.weight", layer_index=1, num_layers=3,
             notes="weight gradients evaluated at t=1/2 -> 0.5 each")
    x = {"model_a": randn((10, 8), 5), "model_b": randn((12, 8), 6)}
    run_case("linear_embed_size_mismatch", f, models_cfg("linear", {"model_a": {"weight": 0.5}, "model_b": {"weight": 0.5}}, base=None), x,
             tensor_name="model.embed_tokens.weight", layer_index=None, is_embed=True,
             notes="rectify_embed_sizes: all 2-D embeds cut to the common top-left submatrix [10,8]")
    x = {"model_a": randn((10, 8), 7), "model_b": randn((12, 8), 8)}
    run_case("linear_nonembed_size_mismatch_error", f, models_cfg("linear", {"model_a": {"weight": 0.5}, "model_b": {"weight": 0.5}}, base=None), x,
             tensor_name="model.layers.0.mlp.up_proj.weight", notes="non-embedding shape mismatch is an error for linear")
    x = indep((8, 16), 9, ("model_a", "model_b"))
    run_case("linear_bf16", f, models_cfg("linear", {"model_a": {"weight": 0.6}, "model_b": {"weight": 0.4}}, base=None, dtype="bfloat16"), x,
             dtype=torch.bfloat16, tol="bf16", notes="dtype: bfloat16 -> inputs cast to bf16, weights tensor bf16, all math in bf16")
    x = indep((8, 16), 10, ("model_a", "model_b"))
    run_case("linear_weights_sum_zero", f, models_cfg("linear", {"model_a": {"weight": 1.0}, "model_b": {"weight": -1.0}}, base=None), x,
             notes="no zero guard: division by sum(w)=0 gives inf/nan")


def slerp_cases():
    f = "slerp"
    x = indep((8, 16), 11, ("base", "model_b"))
    for tv in (0.0, 0.3, 1.0):
        run_case(f"slerp_t{tv}", f, models_cfg("slerp", {"model_b": {}}, {"t": tv}), x, tol="slerp")
    x = indep((16,), 12, ("base", "model_b"))
    run_case("slerp_1d_t0.7", f, models_cfg("slerp", {"model_b": {}}, {"t": 0.7}), x, tol="slerp",
             tensor_name="model.layers.0.input_layernorm.weight")
    x = indep((2, 4, 6), 13, ("base", "model_b"))
    run_case("slerp_3d_t0.5", f, models_cfg("slerp", {"model_b": {}}, {"t": 0.5}), x, tol="slerp",
             tensor_name="model.layers.0.mlp.experts.gate_up_proj", notes="whole tensor is ONE vector (flattened)")
    b = randn((8, 16), 14)
    run_case("slerp_colinear_lerp", f, models_cfg("slerp", {"model_b": {}}, {"t": 0.25}), {"base": b, "model_b": 2.5 * b}, tol="slerp",
             notes="|cos|>0.9995 -> plain lerp on the raw tensors")
    run_case("slerp_antiparallel_lerp", f, models_cfg("slerp", {"model_b": {}}, {"t": 0.25}), {"base": b, "model_b": -0.5 * b}, tol="slerp",
             notes="cos=-1 also takes the lerp fallback")
    run_case("slerp_zero_vector", f, models_cfg("slerp", {"model_b": {}}, {"t": 0.3}), {"base": torch.zeros(8, 16), "model_b": b}, tol="slerp",
             notes="zero tensor is not normalized (norm<=1e-8) -> dot=0 -> theta=pi/2 -> NOT lerp: out = sin(pi/2*(1-t))*v0 + sin(pi/2*t)*v1")
    x = indep((8, 16), 15, ("base", "model_b"))
    for li in (0, 2, 4):
        run_case(f"slerp_gradient_t_layer{li}of5", f, models_cfg("slerp", {"model_b": {}}, {"t": [0.0, 0.5, 0.3, 0.7, 1.0]}), x, tol="slerp",
                 tensor_name=f"model.layers.{li}.self_attn.o_proj.weight", layer_index=li, num_layers=5)
    run_case("slerp_gradient_t_embed", f, models_cfg("slerp", {"model_b": {}}, {"t": [0.2, 0.5, 1.0]}), x, tol="slerp",
             tensor_name="model.embed_tokens.weight", layer_index=None, is_embed=True, notes="pre/post-layer tensors use t=0 -> first gradient value")
    run_case("slerp_filter_t", f, models_cfg("slerp", {"model_b": {}}, {"t": [{"filter": "self_attn", "value": 0.1}, {"filter": "mlp", "value": 0.9}, {"value": 0.5}]}),
             x, tol="slerp", tensor_name="model.layers.0.mlp.gate_proj.weight", notes="filter 'mlp' matches (substring) -> t=0.9")
    x = indep((8, 16), 16, ("base", "model_b"))
    run_case("slerp_bf16", f, models_cfg("slerp", {"model_b": {}}, {"t": 0.4}, dtype="bfloat16"), x, tol="bf16", dtype=torch.bfloat16,
             notes="slerp upcasts to float32 numpy internally and casts the result back to the first (base) tensor dtype")
    x = indep((8, 16), 17, ("base", "model_b", "model_c"))
    run_case("slerp_three_models_error", f, models_cfg("slerp", {"model_b": {}, "model_c": {}}, {"t": 0.5}), x)


def nuslerp_cases():
    f = "nuslerp"
    x = indep((8, 16), 21, ("model_a", "model_b"))
    run_case("nuslerp_equal_weights", f, models_cfg("nuslerp", {"model_a": {"weight": 1.0}, "model_b": {"weight": 1.0}}, base=None), x, tol="reduce")
    run_case("nuslerp_w0.3_0.7", f, models_cfg("nuslerp", {"model_a": {"weight": 0.3}, "model_b": {"weight": 0.7}}, base=None), x, tol="reduce",
             notes="t = w_b/(w_a+w_b) = 0.7")
    run_case("nuslerp_rows", f, models_cfg("nuslerp", {"model_a": {"weight": 0.3}, "model_b": {"weight": 0.7}}, {"nuslerp_flatten": False}, base=None), x, tol="reduce",
             notes="flatten=false,row_wise=false: one slerp per vector along the LAST axis (each matrix row)")
    run_case("nuslerp_cols", f, models_cfg("nuslerp", {"model_a": {"weight": 0.3}, "model_b": {"weight": 0.7}}, {"nuslerp_flatten": False, "nuslerp_row_wise": True}, base=None), x, tol="reduce",
             notes="row_wise=true: vectors along axis 0 (each matrix column)")
    run_case("nuslerp_rowwise_ignored_when_flatten", f, models_cfg("nuslerp", {"model_a": {"weight": 0.3}, "model_b": {"weight": 0.7}}, {"nuslerp_row_wise": True}, base=None), x, tol="reduce",
             notes="flatten (default true) wins over row_wise")
    x3 = indep((2, 4, 6), 22, ("model_a", "model_b"))
    run_case("nuslerp_3d_rows", f, models_cfg("nuslerp", {"model_a": {"weight": 0.5}, "model_b": {"weight": 0.25}}, {"nuslerp_flatten": False}, base=None), x3, tol="reduce",
             tensor_name="model.layers.0.mlp.experts.down_proj")
    run_case("nuslerp_3d_cols", f, models_cfg("nuslerp", {"model_a": {"weight": 0.5}, "model_b": {"weight": 0.25}}, {"nuslerp_flatten": False, "nuslerp_row_wise": True}, base=None), x3, tol="illcond",
             tensor_name="model.layers.0.mlp.experts.down_proj", notes="3-D row_wise: transpose(0,-1), vectors along axis 0")
    x = finetunes((8, 16), 23, ("model_a", "model_b"))
    run_case("nuslerp_with_base", f, models_cfg("nuslerp", {"model_a": {"weight": 0.4}, "model_b": {"weight": 0.6}}, base="base", include_base_in_models=False), x, tol="reduce",
             notes="base given: base + nuslerp(t, a-base, b-base)")
    x = indep((8, 16), 24, ("model_a", "model_b"))
    run_case("nuslerp_weights_sum_zero", f, models_cfg("nuslerp", {"model_a": {"weight": 1.0}, "model_b": {"weight": -1.0}}, base=None), x, tol="reduce",
             notes="|sum(w)|<1e-6 -> t=0.5")
    a = randn((8, 16), 25)
    rows = a.clone()
    rows[3] = a[3] * 3.0
    run_case("nuslerp_colinear_row", f, models_cfg("nuslerp", {"model_a": {"weight": 0.5}, "model_b": {"weight": 0.5}}, {"nuslerp_flatten": False}, base=None),
             {"model_a": a, "model_b": torch.where(torch.arange(8).unsqueeze(1) == 3, rows, randn((8, 16), 26))}, tol="reduce",
             notes="row 3 of b is 3x row 3 of a (colinear): lerp is used if |sin(theta)|<1e-8 after float32 acos")
    run_case("nuslerp_zero_vector", f, models_cfg("nuslerp", {"model_a": {"weight": 0.5}, "model_b": {"weight": 0.5}}, base=None),
             {"model_a": torch.zeros(16), "model_b": randn((16,), 27)}, tol="reduce", tensor_name="model.layers.0.input_layernorm.weight",
             notes="zero vector normalizes to 0 -> theta=pi/2 -> out = sin(pi/4)*b")
    x = finetunes((8, 16), 28, ("model_a",))
    run_case("nuslerp_base_is_one_of_two_error", f, models_cfg("nuslerp", {"model_a": {"weight": 0.5}, "base": {"weight": 0.5}}, base="base", include_base_in_models=False), x)


def multislerp_cases():
    f = "multislerp"
    x = indep((8, 16), 31, ("model_a", "model_b", "model_c"))
    run_case("multislerp_3m", f, models_cfg("multislerp", {"model_a": {"weight": 1.0}, "model_b": {"weight": 2.0}, "model_c": {"weight": 1.0}}, base=None), x, tol="reduce")
    run_case("multislerp_3m_nonorm", f, models_cfg("multislerp", {"model_a": {"weight": 0.2}, "model_b": {"weight": 0.3}, "model_c": {"weight": 0.1}}, {"normalize_weights": False}, base=None), x, tol="reduce")
    x = finetunes((2, 4, 6), 32, ("model_a", "model_b", "model_c"))
    run_case("multislerp_3m_base_3d", f, models_cfg("multislerp", {"model_a": {"weight": 1.0}, "model_b": {"weight": 1.0}, "model_c": {"weight": 1.0}}, base="base", include_base_in_models=False), x,
             tol="reduce", tensor_name="model.layers.0.mlp.experts.gate_up_proj", notes="task-vector space: base subtracted, result + base")
    b = randn((16,), 33)
    run_case("multislerp_antipodal_2m_fallback", f, models_cfg("multislerp", {"model_a": {"weight": 1.0}, "model_b": {"weight": 1.0}}, base=None),
             {"model_a": b, "model_b": -b}, tol="reduce", tensor_name="model.layers.0.input_layernorm.weight",
             notes="weighted mean of unit vectors has norm < eps with 2 models -> linear fallback sum(w_i*x_i)")
    run_case("multislerp_antipodal_3m_error", f, models_cfg("multislerp", {"model_a": {"weight": 1.0}, "model_b": {"weight": 1.0}, "model_c": {"weight": 0.0}}, base=None),
             {"model_a": b, "model_b": -b, "model_c": randn((16,), 34)}, tensor_name="model.layers.0.input_layernorm.weight")
    x = indep((8, 16), 35, ("model_a", "model_b"))
    run_case("multislerp_2m", f, models_cfg("multislerp", {"model_a": {"weight": 0.3}, "model_b": {"weight": 0.7}}, base=None), x, tol="reduce")


def karcher_cases():
    f = "karcher"
    x = indep((8, 16), 41, ("model_a", "model_b", "model_c"))
    run_case("karcher_3m_default", f, models_cfg("karcher", {"model_a": {}, "model_b": {}, "model_c": {}}, base=None), x, tol="reduce")
    run_case("karcher_3m_iter1", f, models_cfg("karcher", {"model_a": {}, "model_b": {}, "model_c": {}}, {"max_iter": 1}, base=None), x, tol="reduce")
    run_case("karcher_3m_iter50_tol1e-8", f, models_cfg("karcher", {"model_a": {}, "model_b": {}, "model_c": {}}, {"max_iter": 50, "tol": 1e-8}, base=None), x, tol="reduce")
    x = indep((2, 4, 6), 42, ("model_a", "model_b"))
    run_case("karcher_2m_3d", f, models_cfg("karcher", {"model_a": {}, "model_b": {}}, base=None), x, tol="reduce", tensor_name="model.layers.0.mlp.experts.down_proj")
    x = indep((16,), 43, ("model_a", "model_b"))
    x["model_c"] = torch.zeros(16)
    run_case("karcher_zero_vector", f, models_cfg("karcher", {"model_a": {}, "model_b": {}, "model_c": {}}, base=None), x, tol="reduce",
             tensor_name="model.layers.0.input_layernorm.weight",
             notes="zero tensor excluded from the mean direction but still counts (norm 0, alpha 1/3) in the output scale")
    x = {"model_a": randn((10, 8), 45), "model_b": randn((12, 8), 46)}
    run_case("karcher_embed_mismatch_error", f, models_cfg("karcher", {"model_a": {}, "model_b": {}}, base=None), x, tensor_name="model.embed_tokens.weight",
             layer_index=None, is_embed=True, notes="karcher calls rectify_embed_sizes on a temporary list, so the truncation is lost and mismatched embeddings fail")
    x = finetunes((8, 16), 44, ("model_a", "model_b"))
    run_case("karcher_with_base_model", f, models_cfg("karcher", {"model_a": {}, "model_b": {}}, base="base", include_base_in_models=False), x, tol="reduce",
             notes="base_model is NOT special for karcher: it is appended to the inputs and averaged with equal alpha")


def gta_inputs(shape, seed, names=("model_a", "model_b"), scale=0.1):
    return finetunes(shape, seed, names, scale)


def gta_cases():
    # task_arithmetic --------------------------------------------------------------
    f = "task_arithmetic"
    x = gta_inputs((8, 16), 51, ("model_a", "model_b"))
    run_case("ta_basic", f, models_cfg("task_arithmetic", {"model_a": {"weight": 0.7}, "model_b": {"weight": 0.5}}), x)
    run_case("ta_lambda_normalize", f, models_cfg("task_arithmetic", {"model_a": {"weight": 0.7}, "model_b": {"weight": 0.5}}, {"lambda": 0.5, "normalize": True}), x)
    run_case("ta_base_not_listed", f, models_cfg("task_arithmetic", {"model_a": {"weight": 0.7}, "model_b": {"weight": 0.5}}, include_base_in_models=False), x,
             notes="base_model absent from models: planner appends it as an extra source (same result)")
    run_case("ta_global_weight", f, models_cfg("task_arithmetic", {"model_a": {}, "model_b": {"weight": 0.25}}, {"weight": 1.0}), x,
             notes="per-model weight falls back to the global parameters block")
    x = gta_inputs((2, 4, 6), 52, ("model_a", "model_b", "model_c"))
    run_case("ta_3d_3m_negative", f, models_cfg("task_arithmetic", {"model_a": {"weight": 1.0}, "model_b": {"weight": -0.5}, "model_c": {"weight": 0.3}}), x,
             tensor_name="model.layers.0.mlp.experts.gate_up_proj")
    x = {"base": randn((10, 8), 53)}
    x["model_a"] = torch.cat([x["base"], randn((2, 8), 54)], 0) + 0.1 * randn((12, 8), 55)
    run_case("ta_embed_bigger_vocab", f, models_cfg("task_arithmetic", {"model_a": {"weight": 1.0}}), x, tensor_name="model.embed_tokens.weight", layer_index=None, is_embed=True,
             notes="embed larger than base -> x[:base_rows, :base_cols]; output keeps base shape")
    x = {"base": randn((10, 8), 56), "model_a": randn((10, 8), 57), "model_b": randn((12, 8), 58)}
    run_case("ta_nonembed_mismatch_skipped", f, models_cfg("task_arithmetic", {"model_a": {"weight": 0.5}, "model_b": {"weight": 0.5}}), x,
             tensor_name="model.layers.0.mlp.up_proj.weight", notes="non-embed shape mismatch: that model is silently skipped (warning)")
    x = gta_inputs((8, 16), 59, ("model_a", "model_b"))
    run_case("ta_bf16", f, models_cfg("task_arithmetic", {"model_a": {"weight": 0.7}, "model_b": {"weight": 0.5}}, dtype="bfloat16"), x, dtype=torch.bfloat16, tol="bf16")
    run_case("ta_missing_weight_error", f, models_cfg("task_arithmetic", {"model_a": {"weight": 0.7}, "model_b": {}}), x)
    run_case("ta_no_base_error", f, models_cfg("task_arithmetic", {"model_a": {"weight": 0.7}, "model_b": {"weight": 0.5}}, base=None), x)

    # ties ---------------------------------------------------------------------------
    f = "ties"
    x = gta_inputs((8, 16), 61, ("model_a", "model_b", "model_c"))
    p3 = {"model_a": {"weight": 1.0, "density": 0.5}, "model_b": {"weight": 0.5, "density": 0.3}, "model_c": {"weight": 0.8, "density": 0.7}}
    run_case("ties_default", f, models_cfg("ties", p3), x, notes="normalize defaults to TRUE for ties; divisor = sum of weights of models agreeing with the elected sign")
    run_case("ties_normalize_false", f, models_cfg("ties", p3, {"normalize": False}), x)
    run_case("ties_int8_mask", f, models_cfg("ties", p3, {"int8_mask": True}), x, notes="int8_mask changes only the dtype of the sign computation; result identical to ties_default")
    run_case("ties_lambda", f, models_cfg("ties", p3, {"lambda": 1.5}), x)
    run_case("ties_rescale", f, models_cfg("ties", p3, {"rescale": True}), x, tol="reduce",
             notes="rescale:true -> each sparsified task vector scaled so its L1 norm equals the unsparsified one")
    run_case("ties_density1_consensus_only", f, models_cfg("ties", {k: {"weight": v["weight"]} for k, v in p3.items()}), x,
             notes="density default 1.0 -> no pruning, only sign election")
    run_case("ties_negative_weight", f, models_cfg("ties", {"model_a": {"weight": 1.0, "density": 0.5}, "model_b": {"weight": -0.5, "density": 0.5}}), x,
             notes="signs are taken from weight*delta, so a negative weight flips a model's votes")
    x3 = gta_inputs((2, 4, 6), 62, ("model_a", "model_b"))
    run_case("ties_3d", f, models_cfg("ties", {"model_a": {"weight": 0.6, "density": 0.4}, "model_b": {"weight": 0.6, "density": 0.4}}), x3,
             tensor_name="model.layers.0.mlp.experts.down_proj", notes="top-k over the whole (flattened) tensor, not per expert")
    base16 = torch.round(randn((16,), 63) * 64) / 64  # dyadic base + dyadic deltas -> exact ties
    da = torch.tensor([0.5, -0.5, 0.5, 0.25, -0.5, 0.5, 0.125, -0.125, 0.5, 0.0, 0.375, -0.5, 0.25, 0.5, -0.0625, 0.375])
    db = torch.tensor([-0.25, 0.25, 0.0, 0.25, -0.25, 0.25, -0.25, 0.25, 0.0, 0.0, 0.25, 0.25, -0.25, -0.25, 0.25, 0.25])
    x = {"base": base16, "model_a": base16 + da, "model_b": base16 + db}
    run_case("ties_magnitude_ties_1d", f, models_cfg("ties", {"model_a": {"weight": 1.0, "density": 0.25}, "model_b": {"weight": 1.0, "density": 0.5}}), x,
             tensor_name="model.layers.0.input_layernorm.weight",
             notes="exact equal magnitudes straddle the top-k cut (dyadic values, so deltas are exact); torch 1.13 CPU argsort on n<=16 "
                   "(insertion sort) keeps the LOWER flat index first. mergekit's own tie-break is implementation-defined (torch.argsort stable=False)")
    zero = {"base": base16, "model_a": base16.clone(), "model_b": base16 + db}
    run_case("ties_zero_delta_model", f, models_cfg("ties", {"model_a": {"weight": 1.0, "density": 0.5}, "model_b": {"weight": 1.0, "density": 0.5}}), zero,
             tensor_name="model.layers.0.input_layernorm.weight",
             notes="a model identical to base: its zeros never match the elected sign (sign 0), so it does not dilute the normalization")
    run_case("ties_density_too_low_error", f, models_cfg("ties", {"model_a": {"weight": 1.0, "density": 0.05}, "model_b": {"weight": 1.0, "density": 0.5}}), x,
             tensor_name="model.layers.0.input_layernorm.weight", notes="int(0.05*16)=0 -> assert k>0 fails")
    x = gta_inputs((8, 16), 64, ("model_a", "model_b"))
    run_case("ties_bf16", f, models_cfg("ties", {"model_a": {"weight": 1.0, "density": 0.5}, "model_b": {"weight": 0.5, "density": 0.5}}, dtype="bfloat16"), x,
             dtype=torch.bfloat16, tol="bf16", notes="magnitude ranking on float32 copy of |bf16 delta|; all other math bf16")
    x = gta_inputs((8, 16), 65, ("model_a", "model_b"))
    run_case("ties_gradient_density", f, models_cfg("ties", {"model_a": {"weight": 1.0, "density": [0.2, 0.8]}, "model_b": {"weight": 1.0, "density": 0.5}}), x,
             tensor_name="model.layers.2.mlp.down_proj.weight", layer_index=2, num_layers=4, notes="density gradient at t=2/3 -> 0.6")

    # breadcrumbs --------------------------------------------------------------------
    f = "breadcrumbs"
    x = gta_inputs((8, 16), 71, ("model_a", "model_b"))
    run_case("breadcrumbs_d0.8_g0.1", f, models_cfg("breadcrumbs", {"model_a": {"weight": 1.0, "density": 0.8, "gamma": 0.1}, "model_b": {"weight": 0.5, "density": 0.8, "gamma": 0.1}}), x,
             notes="N=128: keep=int(0.8N)=102, n_top=int(0.1N)=12, n_bot=14; keeps ascending-sorted positions [14,116)")
    run_case("breadcrumbs_default_gamma", f, models_cfg("breadcrumbs", {"model_a": {"weight": 1.0, "density": 0.8}, "model_b": {"weight": 0.5, "density": 0.8}}), x,
             notes="gamma default 0.01 -> n_top=int(1.28)=1")
    run_case("breadcrumbs_gamma_too_big", f, models_cfg("breadcrumbs", {"model_a": {"weight": 1.0, "density": 0.8, "gamma": 0.5}, "model_b": {"weight": 0.5, "density": 0.8, "gamma": 0.3}}), x,
             notes="n_bot<0 -> n_top reduced to N-keep, n_bot=0")
    run_case("breadcrumbs_rescale_normalize", f, models_cfg("breadcrumbs", {"model_a": {"weight": 1.0, "density": 0.6, "gamma": 0.05}, "model_b": {"weight": 0.5, "density": 0.6, "gamma": 0.05}},
             {"rescale": True, "normalize": True}), x, tol="reduce")
    x1 = gta_inputs((16,), 72, ("model_a", "model_b"))
    run_case("breadcrumbs_ntop_zero_bug", f, models_cfg("breadcrumbs", {"model_a": {"weight": 1.0, "density": 0.5}, "model_b": {"weight": 1.0, "density": 0.5}}), x1,
             tensor_name="model.layers.0.input_layernorm.weight",
             notes="N=16, gamma 0.01 -> n_top=0 -> slice indices[n_bot:-0] is EMPTY -> every task vector zeroed -> output == base")
    run_case("breadcrumbs_gamma0_bug", f, models_cfg("breadcrumbs", {"model_a": {"weight": 1.0, "density": 0.7, "gamma": 0.0}, "model_b": {"weight": 1.0, "density": 0.7, "gamma": 0.0}}), x,
             notes="gamma: 0 also gives n_top=0 -> all deltas dropped -> output == base (for any size)")
    run_case("breadcrumbs_density1", f, models_cfg("breadcrumbs", {"model_a": {"weight": 1.0}, "model_b": {"weight": 1.0}}), x,
             notes="density default 1 -> no sparsification -> plain task arithmetic")
    x3 = gta_inputs((2, 4, 6), 73, ("model_a", "model_b"))
    f = "breadcrumbs_ties"
    run_case("breadcrumbs_ties_basic", f, models_cfg("breadcrumbs_ties", {"model_a": {"weight": 1.0, "density": 0.7, "gamma": 0.1}, "model_b": {"weight": 0.7, "density": 0.7, "gamma": 0.1}}), x,
             notes="normalize defaults to FALSE for breadcrumbs_ties")
    run_case("breadcrumbs_ties_3d_normalize", f, models_cfg("breadcrumbs_ties", {"model_a": {"weight": 1.0, "density": 0.7, "gamma": 0.1}, "model_b": {"weight": 0.7, "density": 0.7, "gamma": 0.1}},
             {"normalize": True}), x3, tensor_name="model.layers.0.mlp.experts.gate_up_proj")

    # dare ------------------------------------------------------------------------------
    f = "dare"
    x = gta_inputs((8, 16), 81, ("model_a", "model_b"))
    pd = {"model_a": {"weight": 1.0, "density": 0.5}, "model_b": {"weight": 0.6, "density": 0.3}}
    run_case("dare_linear_default", f, models_cfg("dare_linear", pd), x, seed=1234, tol="reduce",
             notes="rescale defaults TRUE: masked delta * (L1(delta)/L1(masked)) -- NOT 1/density; normalize defaults FALSE")
    run_case("dare_linear_norescale", f, models_cfg("dare_linear", pd, {"rescale": False}), x, seed=1234)
    run_case("dare_ties_default", f, models_cfg("dare_ties", pd), x, seed=99, tol="reduce", notes="dare_ties: normalize default FALSE (unlike ties)")
    run_case("dare_ties_normalize", f, models_cfg("dare_ties", pd, {"normalize": True}), x, seed=99, tol="reduce")
    run_case("dare_density1_deterministic", f, models_cfg("dare_ties", {"model_a": {"weight": 1.0}, "model_b": {"weight": 0.6}}), x,
             notes="density 1 -> no RNG at all; identical to ties with density 1 and normalize false")
    x3 = gta_inputs((2, 4, 6), 82, ("model_a", "model_b"))
    run_case("dare_linear_3d", f, models_cfg("dare_linear", {"model_a": {"weight": 0.5, "density": 0.4}, "model_b": {"weight": 0.5, "density": 0.4}}), x3, seed=7, tol="reduce",
             tensor_name="model.layers.0.mlp.experts.down_proj")

    # della -----------------------------------------------------------------------------
    f = "della"
    x = gta_inputs((8, 16), 91, ("model_a", "model_b"))
    pe = {"model_a": {"weight": 1.0, "density": 0.5, "epsilon": 0.1}, "model_b": {"weight": 0.6, "density": 0.4, "epsilon": 0.2}}
    run_case("della_default", f, models_cfg("della", pe), x, seed=5, tol="reduce",
             notes="keep-probabilities ranked per ROW (dim=1): (d-eps) + 2*eps*(rank-1)/(n-1); rescale (L1) and normalize default TRUE")
    run_case("della_linear_default", f, models_cfg("della_linear", pe), x, seed=5, tol="reduce", notes="della_linear: normalize FALSE, rescale TRUE")
    run_case("della_default_epsilon", f, models_cfg("della", {"model_a": {"weight": 1.0, "density": 0.5}, "model_b": {"weight": 1.0, "density": 0.6}}), x, seed=6, tol="reduce",
             notes="epsilon default 0.15")
    x1 = gta_inputs((16,), 92, ("model_a", "model_b"))
    run_case("della_1d", f, models_cfg("della", pe), x1, seed=8, tol="reduce", tensor_name="model.layers.0.input_layernorm.weight",
             notes="1-D tensors are treated as a single row [1,N]")
    x3 = gta_inputs((2, 4, 6), 93, ("model_a", "model_b"))
    run_case("della_3d", f, models_cfg("della", pe), x3, seed=9, tol="reduce", tensor_name="model.layers.0.mlp.experts.down_proj",
             notes="3-D: ranking along dim=1 (the MIDDLE axis) for each (i, :, k)")
    run_case("della_bad_epsilon_error", f, models_cfg("della", {"model_a": {"weight": 1.0, "density": 0.5, "epsilon": 0.5}, "model_b": {"weight": 1.0, "density": 0.5}}), x, seed=1)
    run_case("della_density1_no_epsilon_check", f, models_cfg("della", {"model_a": {"weight": 1.0, "epsilon": 0.5}, "model_b": {"weight": 1.0}}), x,
             notes="density 1 returns before the epsilon range check")
    b = torch.round(randn((8, 16), 94) * 64) / 64
    tie = {"base": b, "model_a": b + torch.tensor([0.25, -0.25, 0.5, -0.5] * 32).reshape(8, 16), "model_b": b + 0.1 * randn((8, 16), 95)}
    run_case("della_magnitude_ties", f, models_cfg("della", pe), tie, seed=10, tol="reduce",
             notes="equal magnitudes inside a row: ranks come from argsort(argsort(|d|)) (n=16 per row: lower index ranks lower in torch 1.13); probs recorded")


def sce_cases():
    f = "sce"
    x = gta_inputs((8, 16), 101, ("model_a", "model_b", "model_c"))
    c = lambda params=None: models_cfg("sce", {"model_a": {}, "model_b": {}, "model_c": {}}, params)  # noqa: E731
    run_case("sce_default", f, c(), x, tol="reduce", notes="select_topk 1 -> no variance selection; per-model weight = mean(tv^2)/sum")
    run_case("sce_topk0.3", f, c({"select_topk": 0.3}), x, tol="reduce", notes="k=int(count_nonzero(var)*0.3); topk over |var|")
    run_case("sce_topk0.3_int8", f, c({"select_topk": 0.3, "int8_mask": True}), x, tol="reduce")
    x3 = gta_inputs((2, 4, 6), 102, ("model_a", "model_b"))
    run_case("sce_3d_topk0.5", f, models_cfg("sce", {"model_a": {}, "model_b": {}}, {"select_topk": 0.5}), x3, tol="reduce", tensor_name="model.layers.0.mlp.experts.down_proj")
    xs = gta_inputs((8, 16), 103, ("model_a", "model_b"), scale=1e-4)
    run_case("sce_tiny_deltas_uniform_weights", f, models_cfg("sce", {"model_a": {}, "model_b": {}}), xs, tol="reduce",
             notes="sum of mean-squares < 1e-6 -> weights fall back to uniform 1/n (typical for real fine-tune deltas!)")
    run_case("sce_ignores_weight", f, models_cfg("sce", {"model_a": {"weight": 5.0}, "model_b": {"weight": 0.1}}), xs, tol="reduce",
             notes="per-model 'weight' is not a parameter of sce; it is ignored")


def ram_cases():
    f = "ram"
    b = randn((8, 16), 111)
    da = randn((8, 16), 112, 0.1) * (randn((8, 16), 113) > 0.3)
    db = randn((8, 16), 114, 0.1) * (randn((8, 16), 115) > 0.3)
    x = {"base": b, "model_a": b + da, "model_b": b + db}
    run_case("ram_basic", f, models_cfg("ram", {"model_a": {}, "model_b": {}}), x, notes="unique deltas summed, shared deltas averaged, |d|<=epsilon ignored")
    run_case("ram_epsilon", f, models_cfg("ram", {"model_a": {}, "model_b": {}}, {"epsilon": 0.05}), x)
    run_case("ramplus_tl_basic", f, models_cfg("ramplus_tl", {"model_a": {}, "model_b": {}}), x, tol="reduce")
    run_case("ramplus_tl_params", f, models_cfg("ramplus_tl", {"model_a": {}, "model_b": {}}, {"r": 0.5, "alpha": 1.0, "epsilon": 0.02}), x, tol="reduce")


def model_stock_cases():
    f = "model_stock"
    x = gta_inputs((8, 16), 121, ("model_a", "model_b"))
    run_case("model_stock_2", f, models_cfg("model_stock", {"model_a": {}, "model_b": {}}), x, tol="reduce")
    x = gta_inputs((8, 16), 122, ("model_a", "model_b", "model_c"))
    run_case("model_stock_3", f, models_cfg("model_stock", {"model_a": {}, "model_b": {}, "model_c": {}}), x, tol="reduce", notes="cos = mean of the 3 pairwise cosines; N=3")
    run_case("model_stock_filter_wise", f, models_cfg("model_stock", {"model_a": {}, "model_b": {}, "model_c": {}}, {"filter_wise": True}), x, tol="reduce",
             notes="one t per row (last-axis vector)")
    x1 = gta_inputs((16,), 123, ("model_a", "model_b"))
    run_case("model_stock_filter_wise_1d", f, models_cfg("model_stock", {"model_a": {}, "model_b": {}}, {"filter_wise": True}), x1, tol="reduce",
             tensor_name="model.layers.0.input_layernorm.weight")
    x3 = gta_inputs((2, 4, 6), 124, ("model_a", "model_b"))
    run_case("model_stock_3d", f, models_cfg("model_stock", {"model_a": {}, "model_b": {}}), x3, tol="reduce", tensor_name="model.layers.0.mlp.experts.down_proj")
    run_case("model_stock_3d_filter_wise", f, models_cfg("model_stock", {"model_a": {}, "model_b": {}}, {"filter_wise": True}), x3, tol="reduce",
             tensor_name="model.layers.0.mlp.experts.down_proj")
    x = gta_inputs((8, 16), 125, ("model_a",))
    run_case("model_stock_too_few_error", f, models_cfg("model_stock", {"model_a": {}}), x)


def nearswap_cases():
    f = "nearswap"
    b = randn((8, 16), 131)
    d = randn((8, 16), 132, 0.05)
    d[0, :4] = 0.0
    x = {"base": b, "model_a": b + d}
    for tv in (0.001, 0.02, 1.0):
        run_case(f"nearswap_t{tv}", f, models_cfg("nearswap", {"model_a": {}}, {"t": tv}), x,
                 notes="w = clamp(t/max(|a-b|,1e-6), 0, 1); out = w*b + (1-w)*a (a = base)")
    run_case("nearswap_missing_t_error", f, models_cfg("nearswap", {"model_a": {}}), x)


def arcee_fusion_cases():
    f = "arcee_fusion"
    x = gta_inputs((8, 16), 141, ("model_a",), scale=0.3)
    run_case("arcee_fusion_2d", f, models_cfg("arcee_fusion", {"model_a": {}}), x, tol="reduce")
    x1 = gta_inputs((16,), 142, ("model_a",), scale=0.3)
    run_case("arcee_fusion_1d", f, models_cfg("arcee_fusion", {"model_a": {}}), x1, tol="reduce", tensor_name="model.layers.0.input_layernorm.weight",
             notes="1-D: softmax/KL over the whole vector (one scalar KL)")
    x3 = gta_inputs((2, 4, 6), 143, ("model_a",), scale=0.3)
    run_case("arcee_fusion_3d", f, models_cfg("arcee_fusion", {"model_a": {}}), x3, tol="reduce", tensor_name="model.layers.0.mlp.experts.down_proj")
    x = gta_inputs((8, 16), 144, ("model_a", "model_b"))
    run_case("arcee_fusion_three_error", f, models_cfg("arcee_fusion", {"model_a": {}, "model_b": {}}), x)


def passthrough_cases():
    f = "passthrough"
    a = randn((8, 16), 151)
    run_case("passthrough_plain", f, {"merge_method": "passthrough", "models": [{"model": "model_a"}]}, {"model_a": a})
    run_case("passthrough_scale", f, {"merge_method": "passthrough", "models": [{"model": "model_a", "parameters": {"scale": 0.5}}]}, {"model_a": a})
    cfg = {"merge_method": "passthrough", "models": [{"model": "model_a", "parameters": {"scale": [{"filter": "o_proj", "value": 0.0}, {"value": 1.0}]}}]}
    run_case("passthrough_scale_filter_hit", f, cfg, {"model_a": a}, tensor_name="model.layers.0.self_attn.o_proj.weight")
    run_case("passthrough_scale_filter_miss", f, cfg, {"model_a": a}, tensor_name="model.layers.0.self_attn.q_proj.weight")
    run_case("passthrough_scale_gradient", f, {"merge_method": "passthrough", "models": [{"model": "model_a", "parameters": {"scale": [1.0, 0.0]}}]}, {"model_a": a},
             tensor_name="model.layers.3.mlp.down_proj.weight", layer_index=3, num_layers=4, notes="t=1 at the last layer of the slice -> scale 0")
    run_case("passthrough_two_models_error", f, {"merge_method": "passthrough", "models": [{"model": "model_a"}, {"model": "model_b"}]}, {"model_a": a, "model_b": a})
    run_case("passthrough_bare_conditional_error", f, {"merge_method": "passthrough", "models": [{"model": "model_a", "parameters": {"scale": {"filter": "o_proj", "value": 0.5}}}]},
             {"model_a": a}, tensor_name="model.layers.0.self_attn.o_proj.weight",
             notes="a single {filter,value} dict (not inside a list) parses as ConditionalParameter, which evaluate_setting rejects")


# ============================================================================ evaluate_setting / ConfigReader cases
def setting_cases():
    out = []

    def ev(desc, config, param, tensor_name, layer_index, num_layers, model=None, default=None, required=False):
        cfg = parse_config(config)
        t = layer_t(layer_index, num_layers)
        base = cfg.base_model
        if cfg.models:
            sources = [mkconfig.InputSliceDefinition(model=m.model, layer_range=(0, num_layers), parameters=m.parameters) for m in cfg.models]
            slice_out = mkconfig.OutputSliceDefinition(sources=sources, base_model=None, residual_weight=None, parameters=None)
        else:
            slice_out = cfg.slices[config.get("_slice_index", 0)]
        module = mkconfig.OutputModuleDefinition(slices=[slice_out], models=None, parameters=None)
        reader = mkconfig.ConfigReader(config=cfg, slice_out=slice_out, t=0, module=module, tensor_name=None).with_t(t).for_tensor(tensor_name)
        rec = {
            "description": desc,
            "config": {k: v for k, v in config.items() if not k.startswith("_")},
            "parameter": param,
            "model": model,
            "tensor_name": tensor_name,
            "layer_index": layer_index,
            "num_layers_in_slice": num_layers,
            "t": t,
            "default": default,
        }
        if "_slice_index" in config:
            rec["slice_index"] = config["_slice_index"]
        try:
            v = reader.parameter(param, model=MR(model), default=default, required=required)
            rec["value"] = jsonable(v)
        except Exception as e:
            rec["value"] = None
            rec["error"] = {"type": type(e).__name__, "message": str(e)}
        out.append(rec)

    grad5 = {"merge_method": "slerp", "base_model": "a", "models": [{"model": "a"}, {"model": "b"}], "parameters": {"t": [0.0, 0.5, 0.3, 0.7, 1.0]}}
    for li in (0, 3, 4, 8, 11, 12, 15, 24, 31):
        ev("5-point gradient over 32 layers", grad5, "t", f"model.layers.{li}.self_attn.q_proj.weight", li, 32)
    ev("gradient on a pre-layer tensor uses t=0", grad5, "t", "model.embed_tokens.weight", None, 32)
    ev("gradient on a post-layer tensor uses t=0 too", grad5, "t", "lm_head.weight", None, 32)
    two = {"merge_method": "slerp", "base_model": "a", "models": [{"model": "a"}, {"model": "b"}], "parameters": {"t": [0, 1]}}
    for li in range(5):
        ev("2-point integer gradient over 5 layers", two, "t", f"model.layers.{li}.mlp.up_proj.weight", li, 5)
    ev("single-layer slice: t=1 -> last value", two, "t", "model.layers.0.mlp.up_proj.weight", 0, 1)
    one = {"merge_method": "slerp", "base_model": "a", "models": [{"model": "a"}, {"model": "b"}], "parameters": {"t": [0.42]}}
    ev("1-element list", one, "t", "model.layers.3.mlp.up_proj.weight", 3, 8)
    three = {"merge_method": "slerp", "base_model": "a", "models": [{"model": "a"}, {"model": "b"}], "parameters": {"t": [0.1, 0.9, 0.3]}}
    for li in (0, 1, 2, 3, 4, 5, 6):
        ev("3-point gradient over 7 layers (t*(n-1) = 2*li/6)", three, "t", f"model.layers.{li}.mlp.up_proj.weight", li, 7)
    filt = {
        "merge_method": "slerp", "base_model": "a", "models": [{"model": "a"}, {"model": "b"}],
        "parameters": {"t": [
            {"filter": "self_attn", "value": [0, 0.5, 0.3, 0.7, 1]},
            {"filter": "mlp", "value": [1, 0.5, 0.7, 0.3, 0]},
            {"value": 0.5},
        ]},
    }
    for name, li in [("model.layers.8.self_attn.k_proj.weight", 8), ("model.layers.8.mlp.down_proj.weight", 8), ("model.layers.8.input_layernorm.weight", 8),
                     ("model.embed_tokens.weight", None), ("model.norm.weight", None), ("lm_head.weight", None)]:
        ev("classic slerp filter list (substring match, first match wins, unfiltered fallback)", filt, "t", name, li, 32)
    first = {"merge_method": "linear", "models": [{"model": "a", "parameters": {"weight": [{"filter": "proj", "value": 1}, {"filter": "q_proj", "value": 2}, {"value": 3}]}}, {"model": "b", "parameters": {"weight": 1}}]}
    ev("first matching filter wins even if a later one is more specific", first, "weight", "model.layers.0.self_attn.q_proj.weight", 0, 4, model="a", required=True)
    ev("no filter matches -> unfiltered entry", first, "weight", "model.layers.0.input_layernorm.weight", 0, 4, model="a", required=True)
    star = {"merge_method": "linear", "models": [{"model": "a", "parameters": {"weight": [{"filter": "*", "value": 0.25}, {"value": 3}]}}, {"model": "b", "parameters": {"weight": 1}}]}
    ev("filter '*' matches everything", star, "weight", "model.norm.weight", None, 4, model="a", required=True)
    fall = {"merge_method": "linear", "models": [{"model": "a", "parameters": {"weight": [{"filter": "mlp", "value": 0.9}]}}, {"model": "b", "parameters": {"weight": 1}}],
            "parameters": {"weight": 0.1}}
    ev("per-model conditional list with no match falls through to global parameters", fall, "weight", "model.layers.0.self_attn.v_proj.weight", 0, 4, model="a", required=True)
    ev("per-model conditional list match", fall, "weight", "model.layers.0.mlp.gate_proj.weight", 0, 4, model="a", required=True)
    ev("model without own value uses the global parameter", fall, "weight", "model.layers.0.mlp.gate_proj.weight", 0, 4, model="b", required=True)
    nomatch = {"merge_method": "linear", "models": [{"model": "a", "parameters": {"weight": [{"filter": "mlp", "value": 0.9}]}}, {"model": "b", "parameters": {"weight": 1}}]}
    ev("no match anywhere and required -> error", nomatch, "weight", "model.layers.0.self_attn.v_proj.weight", 0, 4, model="a", required=True)
    ev("no match anywhere, not required -> default", nomatch, "density", "model.layers.0.self_attn.v_proj.weight", 0, 4, model="a", default=1.0)
    gfilt = {"merge_method": "ties", "base_model": "a", "models": [{"model": "a"}, {"model": "b", "parameters": {"weight": 1, "density": [{"filter": "mlp", "value": [0.2, 0.8]}, {"value": 0.5}]}}]}
    for li in (0, 1, 2, 3):
        ev("filter whose value is a gradient", gfilt, "density", f"model.layers.{li}.mlp.up_proj.weight", li, 4, model="b", default=1.0)
    boolc = {"merge_method": "ties", "base_model": "a", "models": [{"model": "a"}, {"model": "b", "parameters": {"weight": 1}}], "parameters": {"normalize": False, "int8_mask": True}}
    ev("YAML booleans arrive as floats (pydantic Union[...,float,...] lax coercion)", boolc, "normalize", "model.layers.0.mlp.up_proj.weight", 0, 4, default=True)
    ev("YAML booleans arrive as floats", boolc, "int8_mask", "model.layers.0.mlp.up_proj.weight", 0, 4, default=False)
    ev("unset global parameter -> method default", boolc, "lambda", "model.layers.0.mlp.up_proj.weight", 0, 4, default=1.0)
    boolgrad = {"merge_method": "ties", "base_model": "a", "models": [{"model": "a"}, {"model": "b", "parameters": {"weight": 1}}], "parameters": {"normalize": [True, False]}}
    ev("a list of booleans is a numeric gradient", boolgrad, "normalize", "model.layers.1.mlp.up_proj.weight", 1, 4, default=True)
    slices = {
        "merge_method": "slerp",
        "base_model": "a",
        "parameters": {"t": 0.5},
        "slices": [
            {"sources": [{"model": "a", "layer_range": [0, 4]}, {"model": "b", "layer_range": [0, 4]}], "parameters": {"t": [0, 1]}},
            {"sources": [{"model": "a", "layer_range": [4, 8]}, {"model": "b", "layer_range": [4, 8], "parameters": {"weight": 0.3}}]},
        ],
    }
    for li in range(4):
        ev("slice-level gradient: t restarts at 0 in every slice", dict(slices, _slice_index=0), "t", f"model.layers.{li}.mlp.up_proj.weight", li, 4)
    ev("slice without own parameter uses global", dict(slices, _slice_index=1), "t", "model.layers.5.mlp.up_proj.weight", 1, 4)
    ev("source-level parameter inside a slice", dict(slices, _slice_index=1), "weight", "model.layers.5.mlp.up_proj.weight", 1, 4, model="b")
    ev("source-level parameter not set for this source -> default", dict(slices, _slice_index=1), "weight", "model.layers.5.mlp.up_proj.weight", 1, 4, model="a", default=None)
    # raw evaluate_setting edge cases
    raw = []
    for setting, t, tn in [(0.7, 0.3, "x"), ([0.0, 1.0], 0.3, "x"), ([1.0, 2.0, 4.0], 0.75, "x"), ([1.0, 2.0, 4.0], 1.0, "x"),
                           ([0.0, 1.0, 0.0], 0.5, "x"), ([0.1, 0.2, 0.3, 0.4], 2 / 3, "x"), ([0.1, 0.2, 0.3, 0.4], 1 / 3, "x")]:
        raw.append({"setting": setting, "t": t, "tensor_name": tn, "value": mkconfig.evaluate_setting(tn, setting, t)})
    return out, raw


# ============================================================================ planner cases (real MergePlanner)
LLAMA_JSON = None


class FakeLlama(ModuleArchitecture):
    """Llama layout read from mergekit/_data/architectures/llama.json (${layer_index} substituted)."""

    def __init__(self, spec):
        self.spec = spec

    def _wi(self, d, idx=None):
        keep = {k: d[k] for k in ("name", "is_embed", "optional", "aliases", "tied_names", "force_dtype") if k in d}
        if idx is not None:
            keep["name"] = keep["name"].replace("${layer_index}", str(idx))
        return WeightInfo(**keep)

    def pre_weights(self, config):
        return [self._wi(d) for d in self.spec["pre_weights"]]

    def post_weights(self, config):
        return [self._wi(d) for d in self.spec["post_weights"]]

    def layer_weights(self, index, config):
        return [self._wi(d, index) for d in self.spec["layer_templates"]["weights"]]

    def num_layers_config_key(self):
        return self.spec["num_layers_config_key"]


def plan_cases():
    spec = json.load(open(os.path.join(SRC, "mergekit", "_data", "architectures", "llama.json")))
    arch = ModelArchitecture(modules={"default": ModuleDefinition(architecture=FakeLlama(spec), weight_prefix=None, subfolder=None)},
                             architectures=["LlamaForCausalLM"], model_type="llama")
    results = []

    def plan(desc, config, model_layers, missing=None, keep=None):
        import types as _t
        ModelReference.CONFIGS.clear()
        for m, n in model_layers.items():
            ModelReference.CONFIGS[m] = _t.SimpleNamespace(num_hidden_layers=n, architectures=["LlamaForCausalLM"], torch_dtype="float16")
        LoaderCache.MISSING.clear()
        LoaderCache.MISSING.update(missing or {})
        cfg = parse_config(config)
        out_cfg = mkmerge._model_out_config(copy.deepcopy(cfg), arch)
        planner = mkplan.MergePlanner(cfg, arch, MergeOptions(), out_cfg)
        recorded = []
        orig = planner._method.make_task

        def rec(**kw):
            recorded.append({
                "output": kw["output_weight"].name,
                "sources": [[str(m), w.name] for m, w in kw["tensors"].weight_info.items()],
                "dtype": kw["tensors"].dtype,
                "global": jsonable(dict(kw["parameters"].items())),
                "per_model": {str(k): jsonable(dict(v.items())) for k, v in kw["tensor_parameters"].items()},
            })
            return orig(**kw)

        planner._method.make_task = rec
        try:
            planner._plan()
        finally:
            del planner._method.make_task
        if keep:
            recorded = [r for r in recorded if any(k in r["output"] for k in keep)]
        results.append({
            "description": desc,
            "config": config,
            "input_num_hidden_layers": model_layers,
            "output_config": {"num_hidden_layers": out_cfg.num_hidden_layers, "torch_dtype": getattr(out_cfg, "torch_dtype", None)},
            "planned_tensors_in_order": recorded,
        })

    frank = {
        "merge_method": "passthrough",
        "dtype": "bfloat16",
        "slices": [
            {"sources": [{"model": "a", "layer_range": [0, 3]}]},
            {"sources": [{"model": "b", "layer_range": [1, 4], "parameters": {"scale": [{"filter": "o_proj", "value": 0.5}, {"value": 1.0}]}}]},
            {"sources": [{"model": "a", "layer_range": [3, 4]}]},
        ],
    }
    plan("passthrough frankenmerge: 3+3+1 layers renumbered 0..6; embed from first slice, norm/lm_head from last slice", frank,
         {"a": 4, "b": 4}, keep=["embed", "input_layernorm", "o_proj", "norm.weight", "lm_head"])
    grad = {
        "merge_method": "slerp",
        "base_model": "a",
        "models": [{"model": "a"}, {"model": "b"}],
        "parameters": {"t": [{"filter": "self_attn", "value": [0, 1]}, {"value": 0.5}]},
    }
    plan("models: config -> one slice over all layers; t=idx/(n-1); pre/post tensors t=0", grad, {"a": 3, "b": 3},
         keep=["embed", "q_proj", "up_proj", "model.norm", "lm_head"])
    ties = {
        "merge_method": "ties",
        "base_model": "base",
        "models": [{"model": "a", "parameters": {"weight": 0.5, "density": [0.3, 0.9]}}, {"model": "b", "parameters": {"weight": 0.5, "density": 0.5}}],
    }
    plan("base_model not listed in models is appended as the LAST source; base gets default tensor params", ties, {"base": 2, "a": 2, "b": 2},
         keep=["embed", "layers.0.mlp.down_proj", "layers.1.mlp.down_proj"])
    plan("lm_head is optional: skipped when no model has it (tied embeddings)", ties, {"base": 2, "a": 2, "b": 2},
         missing={"base": {"lm_head.weight"}, "a": {"lm_head.weight"}, "b": {"lm_head.weight"}}, keep=["lm_head", "norm.weight"])
    sl = {
        "merge_method": "linear",
        "slices": [
            {"sources": [{"model": "a", "layer_range": [0, 2], "parameters": {"weight": [1, 0]}}, {"model": "b", "layer_range": [2, 4], "parameters": {"weight": [0, 1]}}]},
        ],
    }
    plan("slices with different layer ranges per source: output layer i takes a.layer[0+i] and b.layer[2+i]", sl, {"a": 4, "b": 4},
         keep=["embed", "q_proj", "lm_head"])
    return results


# ============================================================================ main
def main():
    groups = [linear_cases, slerp_cases, nuslerp_cases, multislerp_cases, karcher_cases, gta_cases, sce_cases, ram_cases,
              model_stock_cases, nearswap_cases, arcee_fusion_cases, passthrough_cases]
    for g in groups:
        g()
    settings, raw = setting_cases()
    plans = plan_cases()

    registry = {}
    for n, m in merge_methods.REGISTERED_MERGE_METHODS.items():
        registry[n] = {
            "global_parameters": [{"name": p.name, "required": p.required, "default": p.default_value} for p in m.parameters()],
            "per_model_parameters": [{"name": p.name, "required": p.required, "default": p.default_value} for p in m.tensor_parameters()],
        }
        for attr in ("consensus_method", "sparsification_method", "default_normalize", "default_rescale"):
            if hasattr(m, attr):
                registry[n][attr] = jsonable(getattr(m, attr))

    for fname, tensors in FILES.items():
        save_file(tensors, os.path.join(OUT, fname + ".safetensors"), metadata={"generator": "make_expected.py", "mergekit_commit": MERGEKIT_COMMIT})

    doc = {
        "format": 1,
        "mergekit_commit": MERGEKIT_COMMIT,
        "torch_version": torch.__version__,
        "generated_by": "make_expected.py (mergekit's own task/sparsify/config/plan code under mk_shims.py stand-ins)",
        "conventions": {
            "tensor_keys": "<case>/<model name> for inputs, <case>/out for the expected output, <case>/rng/<model>/mask|probs for recorded torch.bernoulli calls",
            "config": "exactly as it would appear in a mergekit-yaml file (models list includes base when listed)",
            "t": "gradient position mergekit used for this tensor: layer_index/(num_layers_in_slice-1), 1 for a one-layer slice, 0 for non-layer tensors (layer_index null)",
            "resolved_parameters": "values mergekit passed to the method after pydantic coercion (numbers/bools -> float) and ConfigReader lookup",
            "input_order": "order of the tensors dict handed to the method (slice source order: models list order, base appended last if not listed)",
            "easy_define_model_order": "for multislerp/nearswap/sce/ram*: the function receives non-base models in Python set order (hash dependent!); this is the order that produced 'expected'",
            "expected_error": "mergekit raised instead of producing a tensor",
        },
        "method_cases": CASES,
        "setting_cases": settings,
        "evaluate_setting_raw": raw,
        "plan_cases": plans,
    }
    with open(os.path.join(OUT, "cases.json"), "w") as fh:
        json.dump(doc, fh, indent=1, default=jsonable)
    with open(os.path.join(OUT, "registry.json"), "w") as fh:
        json.dump({"mergekit_commit": MERGEKIT_COMMIT, "methods": registry}, fh, indent=1)
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"{len(CASES)} method cases, {len(settings)} setting cases, {len(plans)} plan cases; {total} bytes in {OUT}")


if __name__ == "__main__":
    main()
