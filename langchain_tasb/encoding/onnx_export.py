"""Exporting a sentence-transformers model to ONNX once, quantised to int8, and caching it.

The export path keeps every dependency current: ``torch.onnx.export`` (the torch.export-based
exporter, which needs ``onnxscript``) writes the transformer and the model's own pooling modules
as one graph, ``onnxruntime.quantization.quantize_dynamic`` turns its weight matrices into int8
(per output channel), and ONNX Runtime runs it with VNNI/AMX int8 kernels. No ``optimum``: its
releases pin older transformers and sentence-transformers.

The result is cached on disk, keyed by the model files and every setting and library version
that shapes the graph, so the export runs once per model and machine. It is written into a
temporary folder and moved into place with one atomic rename: a crashed or concurrent export
never leaves a half-written model where another process would load it.

Two changes to the graph make it cheaper without changing what it computes (checked at export
against the full model): attention is exported in its eager form (an additive mask, not
SDPA's masked select over every score), and for DistilBERT with CLS pooling (TAS-B) the last
layer computes the CLS position only, since nothing reads the others.

Running the export is :mod:`langchain_tasb.encoding.onnx_backend`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

# Re-exported: these names were defined here before config.py held them. ONNX exports go in
# ``cache_root() / "onnx"``.
from langchain_tasb.config import CACHE_ENV_VAR as CACHE_ENV_VAR
from langchain_tasb.config import cache_root as cache_root
from langchain_tasb.encoding.encoder import (
    ModelInfo,
    Role,
    describe_model,
    load_sentence_transformer,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

logger = logging.getLogger(__name__)

EXPORT_FORMAT = 3
"""Version of the export recipe below; part of the cache key, bumped when the recipe changes."""

Quantization = Literal["int8", "none"]

_MODEL_FILE = "model.onnx"
_QUERY_MODEL_FILE = "model.query.onnx"
_META_FILE = "meta.json"
_TOKENIZER_DIR = "tokenizer"
_STALE_TMP_SECONDS = 6 * 3600
# Modules after the transformer that the exported graph can hold; anything else (routers,
# custom modules) stays on the torch backend.
_GRAPH_MODULES = ("Pooling", "Normalize", "Dense")
_INSTALL_HINT = "pip install 'onnx>=1.17' 'onnxscript>=0.5' 'onnxruntime>=1.20'"


@dataclass(frozen=True)
class OnnxSettings:
    """How the model is exported and quantised; every field is part of the cache key."""

    quantization: Quantization = "int8"
    """"int8": dynamic int8 quantisation of the weight matrices; "none": plain fp32 ONNX."""
    per_channel: bool = True
    """One int8 scale per output channel instead of one per matrix. On all-MiniLM-L6-v2 it
    lifts the cosine to the fp32 vectors from about 0.94 to 0.995 at the same speed."""
    fp32_after_gelu: bool = True
    """Keep the feed-forward output projections (the matrices fed by GELU, whose long-tailed
    activations quantise worst) in fp32. With all-MiniLM-L6-v2, quantising them too moved
    nDCG@10 outside the 0.005 budget (Cranfield -0.0077 on an Intel Xeon, SciFact +0.0092 on an
    AMD Zen 4: int8 kernels differ by CPU) for about 20% more documents/s; keeping them, the
    differences are +0.0032 and +0.0016."""
    int8_queries: bool = True
    """Give queries a second graph with every matrix in int8 (used only when
    ``fp32_after_gelu`` keeps some in fp32). The fp32 matrices hold a third of the
    multiply-adds and run several times slower than int8 ones: the all-int8 graph answers a
    13-token question in 2.6 ms p50 on two cores instead of 4.6 ms (TAS-B shape). With
    all-MiniLM-L6-v2, documents from the default graph and queries from this one score
    nDCG@10 0.3810 on Cranfield and 0.6453 on SciFact (fp32: 0.3817 and 0.6451)."""

    @property
    def query_graph(self) -> bool:
        """Whether an export with these settings has a separate all-int8 query graph."""
        return self.quantization == "int8" and self.fp32_after_gelu and self.int8_queries


@dataclass(frozen=True)
class ExportedModel:
    """A complete export in the cache: where it is and what it computes."""

    directory: Path
    info: ModelInfo
    prompts: dict[str, str]
    """Prompt prepended per role ("query", "document"); empty when the model has none."""
    pad_token_id: int
    query_graph: bool = False
    """Whether queries have their own graph (see :attr:`OnnxSettings.int8_queries`)."""

    @property
    def model_file(self) -> Path:
        """The ONNX graph that encodes documents (and queries, without a query graph)."""
        return self.directory / _MODEL_FILE

    @property
    def tokenizer_dir(self) -> Path:
        """The model's Hugging Face tokenizer files, saved with the export."""
        return self.directory / _TOKENIZER_DIR

    def graph_for(self, role: Role) -> Path:
        """The ONNX graph that encodes texts of ``role``."""
        if role == "query" and self.query_graph:
            return self.directory / _QUERY_MODEL_FILE
        return self.model_file


def import_onnxruntime() -> Any:
    """The ``onnxruntime`` module, or an ImportError that says what to install."""
    try:
        import onnxruntime
    except ImportError as exc:
        msg = f"backend='onnx-int8' needs onnxruntime: {_INSTALL_HINT}, or use backend='torch'."
        raise ImportError(msg) from exc
    return onnxruntime


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def _local_model_dir(name: str) -> Path | None:
    """The folder holding the model's files: the path itself, or its Hugging Face cache copy."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path.resolve()
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=name, local_files_only=True))
    except Exception:  # not cached, or not a repo id: the caller loads the model first
        return None


def _fingerprint_files(directory: Path) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime) of every model file: a changed weight changes the key."""
    files = []
    for file in sorted(directory.rglob("*")):
        relative = file.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts) or not file.is_file():
            continue
        stat = file.stat()
        files.append((relative.as_posix(), stat.st_size, stat.st_mtime_ns))
    return files


def cache_key(name: str, model_dir: Path, settings: OnnxSettings) -> str:
    """Hex digest naming one export: model files, settings, and the versions that shape it."""
    material = {
        "format": EXPORT_FORMAT,
        "name": name,
        "directory": str(model_dir),
        "files": _fingerprint_files(model_dir),
        "settings": asdict(settings),
        "versions": {
            package: _version(package)
            for package in (
                "torch",
                "onnxruntime",
                "onnx",
                "onnxscript",
                "transformers",
                "sentence-transformers",
            )
        },
    }
    encoded = json.dumps(material, sort_keys=True).encode()
    return hashlib.sha256(encoded).hexdigest()[:32]


def _module_kind(module: Any) -> str:
    return type(module).__name__


def check_exportable(model: Any, name: str) -> None:
    """Refuse models the ONNX graph cannot reproduce, naming the module and the fix."""
    modules = list(model)
    if not modules or _module_kind(modules[0]) != "Transformer":
        kinds = [_module_kind(m) for m in modules]
        msg = (
            f"Model {name!r} has modules {kinds}; the ONNX backend exports a Transformer "
            "followed by Pooling/Normalize/Dense. Use backend='torch' for this model."
        )
        raise ValueError(msg)
    for module in modules[1:]:
        kind = _module_kind(module)
        if kind not in _GRAPH_MODULES:
            msg = (
                f"Model {name!r} has a {kind} module, which the ONNX backend does not export "
                f"(supported after the Transformer: {', '.join(_GRAPH_MODULES)}). "
                "Use backend='torch' for this model."
            )
            raise ValueError(msg)
        if kind == "Pooling" and not getattr(module, "include_prompt", True) and model.prompts:
            msg = (
                f"Model {name!r} pools without its prompt tokens (include_prompt=False); the "
                "ONNX backend cannot. Use backend='torch' for this model."
            )
            raise ValueError(msg)


def role_prompts(model: Any) -> dict[str, str]:
    """The prompt sentence-transformers' ``encode_query`` / ``encode_document`` would prepend."""
    prompts: dict[str, str] = dict(getattr(model, "prompts", None) or {})
    default_name = getattr(model, "default_prompt_name", None)
    default = prompts.get(default_name, "") if default_name else ""
    query = prompts.get("query", default)
    document = next(
        (prompts[key] for key in ("document", "passage", "corpus") if key in prompts), default
    )
    return {"query": query, "document": document}


def _cls_only_last_layer(transformer: Any, heads: list[Any]) -> bool:
    """Whether the last layer may compute the CLS position alone (DistilBERT, CLS pooling).

    With CLS pooling nothing reads the other positions of the last layer, so their
    attention, feed-forward and layer norms (a sixth of TAS-B's work) can be skipped.
    """
    poolings = [h for h in heads if _module_kind(h) == "Pooling"]
    return (
        getattr(transformer.config, "model_type", None) == "distilbert"
        and len(poolings) == 1
        and poolings[0].pooling_mode == "cls"
        and _module_kind(heads[0]) == "Pooling"
    )


class _Graph:  # built lazily: torch is imported only when an export actually runs
    @staticmethod
    def module(model: Any) -> Any:
        import copy

        import torch

        # A private copy with eager attention: its additive mask exports as one Add, where
        # the SDPA path exports as Where/IsNaN/Where over every (batch, head, query, key)
        # score, a third of the int8 model's time on 256-token passages.
        transformer = copy.deepcopy(model[0].auto_model)
        transformer.set_attn_implementation("eager")
        heads = list(model)[1:]
        cls_only = _cls_only_last_layer(transformer, heads)

        class ClsOnlyBlock(torch.nn.Module):
            """A DistilBERT TransformerBlock evaluated for the first (CLS) position only."""

            def __init__(self, block: Any) -> None:
                super().__init__()
                self.block = block

            def forward(self, hidden: Any, attention_mask: Any = None, **kwargs: Any) -> Any:
                attention = self.block.attention
                size = attention.attention_head_size
                cls = hidden[:, :1]
                query = attention.q_lin(cls).unflatten(-1, (-1, size)).transpose(1, 2)
                key = attention.k_lin(hidden).unflatten(-1, (-1, size)).transpose(1, 2)
                value = attention.v_lin(hidden).unflatten(-1, (-1, size)).transpose(1, 2)
                scores = torch.matmul(query, key.transpose(2, 3)) * attention.scaling
                if attention_mask is not None:
                    scores = scores + attention_mask[:, :, :1, :]
                context = torch.matmul(torch.softmax(scores, dim=-1), value)
                context = context.transpose(1, 2).flatten(2)
                attended = self.block.sa_layer_norm(attention.out_lin(context) + cls)
                return self.block.output_layer_norm(self.block.ffn(attended) + attended)

        class Pooled(torch.nn.Module):
            """The transformer, then the model's own pooling/dense/normalise modules."""

            def __init__(self, cls_only: bool) -> None:
                super().__init__()
                self.transformer = transformer
                self.heads = torch.nn.ModuleList(heads[1:] if cls_only else heads)
                self.cls_only = cls_only

            def forward(self, input_ids: Any, attention_mask: Any) -> Any:
                output = self.transformer(input_ids=input_ids, attention_mask=attention_mask)
                features = {"token_embeddings": output[0], "attention_mask": attention_mask}
                if self.cls_only:  # inputs are right-padded: CLS is position 0
                    features = {"sentence_embedding": output[0][:, 0]}
                for head in self.heads:
                    features = head(features)
                return features["sentence_embedding"]

        full = Pooled(cls_only=False).eval()
        if not cls_only:
            return full
        sample_ids = torch.randint(5, 100, (3, 9))
        sample_mask = torch.tensor([[1] * 9, [1] * 5 + [0] * 4, [1] * 2 + [0] * 7])
        with torch.no_grad():
            expected = full(sample_ids, sample_mask)
            layers = transformer.transformer.layer
            layers[-1] = ClsOnlyBlock(layers[-1])
            graph = Pooled(cls_only=True).eval()
            actual = graph(sample_ids, sample_mask)
        if not torch.allclose(actual, expected, rtol=1e-4, atol=1e-4):
            difference = float((actual - expected).abs().max())
            msg = (
                f"The CLS-only last layer differs from the full model by {difference:.3g}; "
                "this transformers version changed DistilBERT. Use backend='torch'."
            )
            raise RuntimeError(msg)
        return graph


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporters' chatter (deprecation notes, per-pass INFO lines) for one export."""

    class _DropPreprocessHint(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            # quantize_dynamic logs progress and an unconditional "pre-processing" hint
            # straight to the root logger; only its errors are worth passing on.
            return record.levelno >= logging.ERROR

    noisy = [logging.getLogger(n) for n in ("onnx_ir", "onnxscript", "torch.onnx")]
    levels = [log.level for log in noisy]
    hint_filter = _DropPreprocessHint()
    root = logging.getLogger()
    root.addFilter(hint_filter)
    try:
        for log in noisy:
            log.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.removeFilter(hint_filter)
        for log, level in zip(noisy, levels, strict=True):
            log.setLevel(level)


def _matmuls_after_gelu(path: Path) -> list[str]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    producers = {output: node.op_type for node in graph.node for output in node.output}
    return [
        node.name
        for node in graph.node
        if node.op_type == "MatMul" and producers.get(node.input[0]) == "Gelu"
    ]


def export_onnx(model: Any, destination: Path, settings: OnnxSettings) -> None:
    """Write ``model`` (a loaded SentenceTransformer) as one ONNX graph into ``destination``.

    The graph maps ``input_ids`` and ``attention_mask`` (int64, dynamic batch and sequence
    axes) to the pooled ``sentence_embedding``; int8 quantisation follows when asked for.

    Raises:
        ImportError: If onnx, onnxscript or onnxruntime is missing (the message says what to
            install).
    """
    try:
        import onnx  # noqa: F401  (needed by both export and quantisation)
        import onnxscript  # noqa: F401  (needed by the torch.export-based exporter)
        import torch
    except ImportError as exc:
        msg = f"Exporting to ONNX needs onnx and onnxscript: {_INSTALL_HINT}"
        raise ImportError(msg) from exc
    import_onnxruntime()
    from onnxruntime import quantization

    graph = _Graph.module(model)
    # Two distinct tensors: one tensor passed twice would be traced as one aliased input.
    sample_ids = torch.full((2, 8), int(model.tokenizer.cls_token_id or 1), dtype=torch.int64)
    sample_mask = torch.ones((2, 8), dtype=torch.int64)
    batch = torch.export.Dim("batch")
    sequence = torch.export.Dim("sequence", max=int(model.max_seq_length or 512))
    fp32_path = destination / "model.fp32.onnx"
    size = sum(p.numel() * p.element_size() for p in graph.parameters())
    external = size > 1_800_000_000  # protobuf's 2 GB limit
    with _quiet_exporter(), torch.no_grad():
        torch.onnx.export(
            graph,
            (sample_ids, sample_mask),
            str(fp32_path),
            dynamo=True,
            input_names=["input_ids", "attention_mask"],
            output_names=["sentence_embedding"],
            dynamic_shapes={
                "input_ids": {0: batch, 1: sequence},
                "attention_mask": {0: batch, 1: sequence},
            },
            external_data=external,
            verbose=False,
        )
        if settings.quantization == "int8":
            excluded = _matmuls_after_gelu(fp32_path) if settings.fp32_after_gelu else []
            graphs = {_MODEL_FILE: excluded}
            if settings.query_graph:
                graphs[_QUERY_MODEL_FILE] = []
            for file_name, fp32_nodes in graphs.items():
                quantization.quantize_dynamic(
                    str(fp32_path),
                    str(destination / file_name),
                    weight_type=quantization.QuantType.QInt8,
                    per_channel=settings.per_channel,
                    op_types_to_quantize=["MatMul"],
                    nodes_to_exclude=fp32_nodes,
                    use_external_data_format=external,
                )
            for file in destination.glob("model.fp32.onnx*"):
                file.unlink()
        else:
            fp32_path.rename(destination / _MODEL_FILE)


def _write_export(model: Any, name: str, destination: Path, settings: OnnxSettings) -> None:
    check_exportable(model, name)
    info = describe_model(model, name)
    export_onnx(model, destination, settings)
    model.tokenizer.save_pretrained(str(destination / _TOKENIZER_DIR))
    (destination / "tokenizer.json").write_text(model.tokenizer.backend_tokenizer.to_str())
    meta = {
        "info": asdict(info),
        "prompts": role_prompts(model),
        "pad_token_id": int(model.tokenizer.pad_token_id or 0),
        "settings": asdict(settings),
        "query_graph": settings.query_graph,
    }
    # Written last: a folder with meta.json is a finished export.
    (destination / _META_FILE).write_text(json.dumps(meta, indent=2))


def _read_export(directory: Path) -> ExportedModel | None:
    try:
        meta = json.loads((directory / _META_FILE).read_text())
        query_graph = bool(meta.get("query_graph", False))
        if not (directory / _MODEL_FILE).is_file():
            return None
        if query_graph and not (directory / _QUERY_MODEL_FILE).is_file():
            return None
        return ExportedModel(
            directory=directory,
            info=ModelInfo(**meta["info"]),
            prompts=dict(meta["prompts"]),
            pad_token_id=int(meta["pad_token_id"]),
            query_graph=query_graph,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _remove_stale_temporaries(root: Path) -> None:
    now = time.time()
    for leftover in root.glob(".tmp-*"):
        with contextlib.suppress(OSError):
            if now - leftover.stat().st_mtime > _STALE_TMP_SECONDS:
                shutil.rmtree(leftover, ignore_errors=True)


def ensure_exported(
    name: str,
    *,
    settings: OnnxSettings | None = None,
    cache_dir: str | Path | None = None,
    trust_remote_code: bool = False,
) -> ExportedModel:
    """The cached export of model ``name``, exporting it first if there is none.

    A finished export is a folder ``<cache>/onnx/<key>`` holding ``meta.json``; it appears in
    one ``os.replace``. A broken folder (files deleted by hand) is set aside and exported anew.
    """
    settings = settings or OnnxSettings()
    root = Path(cache_dir).expanduser() if cache_dir else cache_root() / "onnx"
    model_dir = _local_model_dir(name)
    model = None
    if model_dir is None:  # a hub model not downloaded yet: loading it downloads it
        model = load_sentence_transformer(
            name, "cpu", trust_remote_code=trust_remote_code, share=False
        )
        model_dir = _local_model_dir(name)
        if model_dir is None:
            msg = f"Model {name!r} loaded, but its files cannot be found to key the ONNX cache."
            raise OSError(msg)
    final = root / cache_key(name, model_dir, settings)
    exported = _read_export(final)
    if exported is not None:
        return exported

    if model is None:  # used for the export only: not kept in the process afterwards
        model = load_sentence_transformer(
            name, "cpu", trust_remote_code=trust_remote_code, share=False
        )
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(root)
    logger.info(
        "exporting %s to ONNX (%s) in %s (once; later loads reuse it)",
        name,
        settings.quantization,
        final,
    )
    started = time.perf_counter()
    temporary = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=root))
    try:
        _write_export(model, name, temporary, settings)
        if final.exists() and _read_export(final) is None:  # broken leftover: set it aside
            shutil.rmtree(final.rename(root / f".tmp-broken-{final.name}-{os.getpid()}"))
        try:
            os.replace(temporary, final)
        except OSError:  # another process finished first; its export is as good as ours
            if _read_export(final) is None:
                raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    exported = _read_export(final)
    if exported is None:
        msg = f"ONNX export of {name!r} in {final} is incomplete; delete that folder and retry."
        raise OSError(msg)
    logger.debug("exported %s in %.1f s", name, time.perf_counter() - started)
    return exported
