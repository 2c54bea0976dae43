"""Stubs that let transformers 5.2.0 / 4.57.6 import and run (eager attention, CPU, float32/64) on
Debian's torch 1.13. Each entry only supplies a torch-2 name that is missing in 1.13; nothing here
changes numerics of code paths used by the golden runs. Import this before transformers."""
import sys, types
import torch_compat  # noqa: F401
import torch
import torch.utils._pytree as _pytree

if not hasattr(_pytree, "register_pytree_node"):
    def register_pytree_node(cls, flatten_fn, unflatten_fn, *, serialized_type_name=None,
                             to_dumpable_context=None, from_dumpable_context=None, flatten_with_keys_fn=None):
        return _pytree._register_pytree_node(cls, flatten_fn, unflatten_fn)
    _pytree.register_pytree_node = register_pytree_node

# torch 2 allows the bare decorator form `@torch.no_grad` (without parentheses).
_orig_no_grad = torch.no_grad
if not getattr(_orig_no_grad, "_moeforge_shim", False):
    def no_grad(orig_func=None):
        if orig_func is None:
            return _orig_no_grad()
        return _orig_no_grad()(orig_func)
    no_grad._moeforge_shim = True
    torch.no_grad = no_grad

# torch.compiler.* decorators used at class-definition time (no effect without torch.compile).
for _name in ("allow_in_graph", "assume_constant_result"):
    if not hasattr(torch.compiler, _name):
        setattr(torch.compiler, _name, lambda fn=None, *a, **k: fn)

# torch.get_default_device (torch >= 2.3): torch 1.13 has no default-device setting, so it is always CPU.
if not hasattr(torch, "get_default_device"):
    torch.get_default_device = lambda: torch.device("cpu")

# torch.nn.init.* accept `generator=` since torch 2.x. Wrap the ones that lack it (generator=None -> original call;
# a generator -> the in-place Tensor method that takes it). Weights are re-initialised by make_golden.py anyway.
import inspect as _inspect
import torch.nn.init as _init

def _wrap_init(name, impl):
    orig = getattr(_init, name)
    if "generator" in _inspect.signature(orig).parameters:
        return
    def f(tensor, *args, generator=None, **kwargs):
        if generator is None:
            return orig(tensor, *args, **kwargs)
        with torch.no_grad():
            return impl(tensor, *args, generator=generator, **kwargs)
    f.__name__ = name
    setattr(_init, name, f)

_wrap_init("normal_", lambda t, mean=0.0, std=1.0, generator=None: t.normal_(mean, std, generator=generator))
_wrap_init("uniform_", lambda t, a=0.0, b=1.0, generator=None: t.uniform_(a, b, generator=generator))
for _n in ("trunc_normal_", "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_", "xavier_normal_", "orthogonal_"):
    if hasattr(_init, _n) and "generator" not in _inspect.signature(getattr(_init, _n)).parameters:
        def _mk(orig):
            def f(tensor, *a, generator=None, **k):
                return orig(tensor, *a, **k)
            return f
        setattr(_init, _n, _mk(getattr(_init, _n)))

# torch.is_autocast_enabled(device_type) (torch >= 2.4); 1.13 only has the no-argument (CUDA) form and
# torch.is_autocast_cpu_enabled().
_orig_is_autocast_enabled = torch.is_autocast_enabled
try:
    _orig_is_autocast_enabled("cpu")
except TypeError:
    def is_autocast_enabled(device_type=None):
        if device_type == "cpu":
            return torch.is_autocast_cpu_enabled()
        return _orig_is_autocast_enabled()
    torch.is_autocast_enabled = is_autocast_enabled

# nn.Module.named_parameters / named_buffers(remove_duplicate=...) (torch >= 2.0).
import torch.nn as _nn
for _attr, _store in (("named_parameters", "_parameters"), ("named_buffers", "_buffers")):
    _orig_named = getattr(_nn.Module, _attr)
    if "remove_duplicate" in _inspect.signature(_orig_named).parameters:
        continue
    def _mk_named(orig, store):
        def named(self, prefix="", recurse=True, remove_duplicate=True):
            if remove_duplicate:
                yield from orig(self, prefix=prefix, recurse=recurse)
                return
            mods = self.named_modules(prefix=prefix, remove_duplicate=False) if recurse else [(prefix, self)]
            for mprefix, mod in mods:
                for k, v in getattr(mod, store).items():
                    if v is None:
                        continue
                    yield (mprefix + ("." if mprefix else "") + k), v
        return named
    setattr(_nn.Module, _attr, _mk_named(_orig_named, _store))

# torch._dynamo (torch >= 2.0): only decorators / is_compiling are used at import or in eager code.
if not hasattr(torch, "_dynamo"):
    _dyn = types.ModuleType("torch._dynamo")
    _dyn.allow_in_graph = lambda fn=None, *a, **k: fn
    _dyn.disable = lambda fn=None, recursive=True: (fn if fn is not None else (lambda f: f))
    _dyn.is_compiling = lambda: False
    _dyn.mark_static_address = lambda *a, **k: None
    sys.modules["torch._dynamo"] = _dyn
    torch._dynamo = _dyn

# torch.vmap (torch >= 2.0) = functorch.vmap in torch 1.13 (used by transformers 4.57 masking_utils).
if not hasattr(torch, "vmap"):
    import functorch as _functorch
    torch.vmap = _functorch.vmap

# torch.xpu (torch >= 2.4): transformers' quantizers probe torch.xpu.is_available(); there is no XPU here.
if not hasattr(torch, "xpu"):
    _xpu = types.ModuleType("torch.xpu")
    _xpu.is_available = lambda: False
    _xpu.device_count = lambda: 0
    sys.modules["torch.xpu"] = _xpu
    torch.xpu = _xpu

# torch.OutOfMemoryError (torch >= 2.1) is only named in an `except` clause by transformers' MXFP4 dequantiser.
if not hasattr(torch, "OutOfMemoryError"):
    torch.OutOfMemoryError = getattr(torch.cuda, "OutOfMemoryError", None) or type("OutOfMemoryError", (RuntimeError,), {})
