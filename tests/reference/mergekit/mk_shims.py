"""Minimal stand-ins that let mergekit's *own* merge-method / sparsify / config / plan
source files be imported under Debian's python3-torch 1.13 without pydantic v2,
transformers v5, huggingface_hub, peft, immutables, networkx, click, tqdm ...

Nothing here re-implements merge math.  The real mergekit files that get loaded are:

    mergekit/sparsify.py
    mergekit/config.py                       (evaluate_setting, ConfigReader, *Definition classes)
    mergekit/plan.py                         (MergePlanner: slices, t per layer, parameter lookup)
    mergekit/merge.py                        (only _model_out_config is called)
    mergekit/architecture/base.py            (WeightInfo, ModuleArchitecture, Configured*Architecture)
    mergekit/merge_methods/__init__.py, base.py, registry.py, easy_define.py,
        generalized_task_arithmetic.py, linear.py, slerp.py, nuslerp.py, multislerp.py,
        karcher.py, model_stock.py, nearswap.py, arcee_fusion.py, passthrough.py,
        sce.py, ram.py, rectify_embed.py

Stand-ins (all documented in README.md):
  * pydantic           -> BaseModel that just stores keyword arguments as attributes
                          (NO validation / coercion; callers must pass already-coerced values,
                          see parse_setting() in make_expected.py), Field, model_validator,
                          model_serializer (identity decorators), create_model (builds a plain
                          subclass; used by easy_define.py).
  * typing_extensions  -> the Debian 4.4 module lacks `Callable`; we add typing.Callable.
  * transformers       -> PretrainedConfig placeholder class only.
  * mergekit (package) -> empty package object whose __path__ points at the real tree.
  * mergekit.common    -> ImmutableMap (dict wrapper with .data), ModelReference (hashable by
                          its path string; equality by path), get/set_config_value (same dotted
                          getattr/setattr logic as the real ones), dtype_from_name (same table),
                          parse_kmb.
  * mergekit.graph     -> Task base class (plain, subscriptable), Executor placeholder.
  * mergekit.architecture -> package re-exporting the REAL architecture/base.py classes.
  * mergekit.io / mergekit.io.tasks -> GatherTensors (records its arguments), LoaderCache
                          (fake tensor index per model), Finalize/Return/Save/TensorWriterTask
                          placeholders.
  * mergekit.tokenizer, mergekit.tokenizer.config -> placeholders (tokenizer merging is not run).
  * mergekit.options   -> MergeOptions as a plain attribute bag with mergekit's defaults.
  * tqdm, mergekit._data.chat_templates, mergekit.card, mergekit.multigpu_executor -> empty
                          placeholders so merge.py imports.
"""

import importlib.util
import os
import sys
import types
import typing


def _mod(name, **attrs):
    m = types.ModuleType(name)
    for k, v in attrs.items():
        setattr(m, k, v)
    sys.modules[name] = m
    return m


# --------------------------------------------------------------------------- pydantic
class _BaseModel:
    """Stand-in for pydantic.BaseModel: stores kwargs, class attributes act as defaults."""

    def __init_subclass__(cls, **kwargs):  # swallow frozen=True, arbitrary_types_allowed=...
        super().__init_subclass__()

    def __init__(self, **data):
        for k, v in data.items():
            object.__setattr__(self, k, v)

    @classmethod
    def model_rebuild(cls, *a, **k):
        return None

    def _field_names(self):
        names = []
        for klass in reversed(type(self).__mro__):
            for n in getattr(klass, "__annotations__", {}):
                if n not in names:
                    names.append(n)
        return names

    def model_dump(self, exclude=None, **_kw):
        exclude = set(exclude or ())
        out = {}
        for n in self._field_names():
            if n in exclude:
                continue
            if hasattr(self, n):
                out[n] = getattr(self, n)
        return out

    def __repr__(self):
        return f"{type(self).__name__}({self.model_dump()!r})"


def _identity_decorator_factory(*_a, **_k):
    def deco(f):
        return f

    return deco


def _Field(default=..., **_kw):
    return None if default is ... else default


def _create_model(name, __base__=_BaseModel, **fields):
    ns = {}
    ann = {}
    for k, v in fields.items():
        if callable(v) and not isinstance(v, tuple):
            ns[k] = v
        else:
            ann[k] = v[0] if isinstance(v, tuple) else v
    ns["__annotations__"] = ann
    return type(name, (__base__,), ns)


# --------------------------------------------------------------------------- mergekit.common
class ImmutableMap:
    def __class_getitem__(cls, item):
        return cls

    def __init__(self, data):
        self.data = dict(data)

    def __iter__(self):
        return iter(self.data)

    def __getitem__(self, k):
        return self.data[k]

    def __len__(self):
        return len(self.data)

    def __contains__(self, k):
        return k in self.data

    def keys(self):
        return self.data.keys()

    def items(self):
        return self.data.items()

    def values(self):
        return self.data.values()


class ModelReference:
    """Hashable by path string.  `config()` returns the fake config registered for the path."""

    CONFIGS = {}

    def __init__(self, path):
        self.path = str(path)
        self.model = types.SimpleNamespace(path=self.path, revision=None)
        self.lora = None

    def __eq__(self, other):
        return isinstance(other, ModelReference) and other.path == self.path

    def __hash__(self):
        return hash(("ModelReference", self.path))

    def __str__(self):
        return self.path

    __repr__ = __str__

    def config(self, trust_remote_code=False):
        cfg = ModelReference.CONFIGS.get(self.path)
        if cfg is None:
            cfg = types.SimpleNamespace(num_hidden_layers=4, architectures=["LlamaForCausalLM"])
        return types.SimpleNamespace(**vars(cfg))

    @classmethod
    def parse(cls, value):
        return cls(value)


def get_config_value(config, key):
    obj = config
    parts = key.split(".")
    for idx, part in enumerate(parts):
        if not hasattr(obj, part):
            raise RuntimeError(f"Config {config} has no attribute {'.'.join(parts[: idx + 1])}")
        obj = getattr(obj, part)
    return obj


def set_config_value(config, key, value):
    parts = key.split(".")
    obj = config
    for idx, part in enumerate(parts[:-1]):
        if not hasattr(obj, part):
            raise RuntimeError(f"Config {config} has no attribute {'.'.join(parts[: idx + 1])}")
        obj = getattr(obj, part)
    setattr(obj, parts[-1], value)


def install(src_root):
    """src_root: directory that contains the real `mergekit/` package directory."""
    import torch

    pkg_dir = os.path.join(src_root, "mergekit")
    if not os.path.isdir(pkg_dir):
        raise SystemExit(f"mergekit source not found at {pkg_dir}")

    # typing_extensions 4.4 (Debian) lacks Callable
    import typing_extensions

    if not hasattr(typing_extensions, "Callable"):
        typing_extensions.Callable = typing.Callable

    _mod(
        "pydantic",
        BaseModel=_BaseModel,
        Field=_Field,
        model_validator=_identity_decorator_factory,
        model_serializer=_identity_decorator_factory,
        create_model=_create_model,
        ConfigDict=dict,
    )
    _mod("pydantic_core", core_schema=types.SimpleNamespace())

    class PretrainedConfig:  # placeholder
        pass

    _mod("transformers", PretrainedConfig=PretrainedConfig, PreTrainedTokenizerBase=PretrainedConfig)
    _mod("tqdm", tqdm=lambda it=None, **k: it)

    # ---- mergekit package skeleton (real files are found through __path__)
    mk = _mod("mergekit")
    mk.__path__ = [pkg_dir]

    def dtype_from_name(name):
        if not name:
            return None
        if name.startswith("torch."):
            name = name[len("torch."):]
        table = {
            "bfloat16": torch.bfloat16,
            "float16": torch.float16,
            "float32": torch.float32,
            "int64": torch.int64,
        }
        if name in table:
            return table[name]
        raise RuntimeError(f'Unimplemented dtype "{name}"')

    def parse_kmb(v):
        return int(v) if not isinstance(v, str) else int(float(v[:-1]) * {"k": 1e3, "m": 1e6, "b": 1e9}[v[-1].lower()])

    _mod(
        "mergekit.common",
        ImmutableMap=ImmutableMap,
        ModelReference=ModelReference,
        ModelPath=types.SimpleNamespace,
        get_config_value=get_config_value,
        set_config_value=set_config_value,
        dtype_from_name=dtype_from_name,
        parse_kmb=parse_kmb,
    )

    class Task(_BaseModel):
        def __class_getitem__(cls, item):
            return cls

        def priority(self):
            return 0

        def group_label(self):
            return None

        def uses_accelerator(self):
            return False

    class Executor:  # placeholder
        pass

    _mod("mergekit.graph", Task=Task, Executor=Executor)

    # real architecture/base.py, exposed through a stub package
    arch_pkg = _mod("mergekit.architecture")
    arch_pkg.__path__ = [os.path.join(pkg_dir, "architecture")]
    base = _load_file("mergekit.architecture.base", os.path.join(pkg_dir, "architecture", "base.py"))
    for n in (
        "WeightInfo",
        "ModuleArchitecture",
        "ModelArchitecture",
        "ModuleDefinition",
        "ConfiguredModuleArchitecture",
        "ConfiguredModelArchitecture",
    ):
        setattr(arch_pkg, n, getattr(base, n))
    arch_pkg.get_architecture_info = None
    arch_pkg.arch_info_for_config = None

    # io.tasks
    io_pkg = _mod("mergekit.io")
    io_pkg.__path__ = []

    class GatherTensors(_BaseModel):
        pass

    class _FakeIndex:
        def __init__(self, names):
            self.tensor_paths = {n: "model.safetensors" for n in names}

    class LoaderCache:
        MISSING = {}  # path -> set of tensor names absent from that model

        def get(self, model):
            missing = LoaderCache.MISSING.get(str(model), set())

            class _AllNames(dict):
                def __contains__(self, k):
                    return k not in missing

            idx = _FakeIndex([])
            idx.tensor_paths = _AllNames()
            return types.SimpleNamespace(index=idx)

    class _Placeholder(_BaseModel):
        pass

    _mod(
        "mergekit.io.tasks",
        GatherTensors=GatherTensors,
        LoaderCache=LoaderCache,
        FinalizeModel=_Placeholder,
        ReturnTensor=_Placeholder,
        SaveTensor=_Placeholder,
        TensorWriterTask=_Placeholder,
    )

    tok = _mod("mergekit.tokenizer", PermutedEmbeddings=_Placeholder, BuildTokenizer=_Placeholder, TokenizerInfo=_Placeholder)
    tok.__path__ = []
    _mod("mergekit.tokenizer.config", TokenizerConfig=_Placeholder)

    class MergeOptions(_BaseModel):
        allow_crimes = False
        trust_remote_code = False
        device = "cpu"
        read_to_gpu = False
        clone_tensors = False
        out_shard_size = 5_000_000_000
        safe_serialization = True
        async_write = False
        write_threads = 1
        random_seed = None

    _mod("mergekit.options", MergeOptions=MergeOptions)
    data_pkg = _mod("mergekit._data", chat_templates=types.ModuleType("chat_templates"))
    data_pkg.__path__ = []
    _mod("mergekit._data.chat_templates")
    _mod("mergekit.card", generate_card=None)
    _mod("mergekit.multigpu_executor", MultiGPUExecutor=None)

    # real merge_methods package (runs its __init__, which imports every method module)
    mm = _load_file(
        "mergekit.merge_methods",
        os.path.join(pkg_dir, "merge_methods", "__init__.py"),
        package_dir=os.path.join(pkg_dir, "merge_methods"),
    )
    mk.merge_methods = mm
    import mergekit.sparsify  # noqa: F401  (real file)
    import mergekit.config  # noqa: F401  (real file)
    import mergekit.plan  # noqa: F401  (real file)
    import mergekit.merge  # noqa: F401  (real file; only _model_out_config is used)

    return sys.modules["mergekit"]


def _load_file(name, path, package_dir=None):
    if package_dir is not None:
        spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=[package_dir])
    else:
        spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
