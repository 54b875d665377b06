"""Exporting a sentence-transformers model to ONNX, quantised to int8, and the export's files.

``torch.onnx.export`` (dynamo, needs ``onnxscript``) writes one graph, and
``onnxruntime.quantization.quantize_dynamic`` makes its matrices int8. No ``optimum``: its
releases pin older transformers and sentence-transformers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from langchain_tasb.encoding.hardware import int8_matmul_saturates
from langchain_tasb.encoding.loading import describe_model
from langchain_tasb.encoding.onnx_graph import graph_module, module_kind
from langchain_tasb.encoding.onnx_outliers import (
    CALIBRATION_TEXTS,
    calibrate,
    gelu_matmuls,
    split_outliers,
)
from langchain_tasb.encoding.types import ModelInfo, Role

if TYPE_CHECKING:
    from collections.abc import Iterator

logger = logging.getLogger(__name__)

EXPORT_FORMAT = 5
"""Version of the export recipe in this module; part of the cache key, bumped when it changes."""

Quantization = Literal["int8", "none"]

_MODEL_FILE = "model.onnx"
_QUERY_MODEL_FILE = "model.query.onnx"
_META_FILE = "meta.json"
# Modules after the transformer that the exported graph can hold.
_GRAPH_MODULES = ("Pooling", "Normalize", "Dense")
_INSTALL_HINT = "pip install 'onnx>=1.17' 'onnxscript>=0.5' 'onnxruntime>=1.20'"


@dataclass(frozen=True)
class OnnxSettings:
    """How the model is exported and quantised; every field is part of the cache key."""

    quantization: Quantization = "int8"
    """"int8": dynamic int8 quantisation of the weight matrices; "none": plain fp32 ONNX."""
    per_channel: bool = True
    """One int8 scale per output channel instead of one per matrix."""
    outliers_fp32: bool = True
    """Keep the few outlier input channels of the GELU-fed matrices in fp32
    (:mod:`.onnx_outliers`), found once at export time. False: plain int8 of every matrix."""
    fp32_after_gelu: bool = False
    """Keep the GELU-fed matrices wholly in fp32 instead (takes precedence over
    ``outliers_fp32``); slower."""
    int8_queries: bool = True
    """Give queries a second graph with every matrix in plain int8; used only when
    ``fp32_after_gelu`` keeps some matrices in fp32."""
    reduce_range: bool = field(default_factory=int8_matmul_saturates)
    """Quantise weights to 7 bits instead of 8; default: True where ONNX Runtime's int8
    MatMul can saturate (:func:`~langchain_tasb.encoding.hardware.int8_matmul_saturates`)."""

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
    """Prompt prepended per role ("query", "document")."""
    pad_token_id: int
    query_graph: bool = False
    """Whether queries have their own graph."""
    digests: dict[str, str] = field(default_factory=dict)
    """SHA-256 of each file, recorded when the export was written."""

    @property
    def model_file(self) -> Path:
        """The ONNX graph that encodes documents (and queries, without a query graph)."""
        return self.directory / _MODEL_FILE

    @property
    def tokenizer_dir(self) -> Path:
        """The model's Hugging Face tokenizer files, saved with the export."""
        return self.directory / "tokenizer"

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


def check_exportable(model: Any, name: str) -> None:
    """Refuse models the ONNX graph cannot reproduce, naming the module and the fix."""
    kinds = [module_kind(m) for m in model]
    if not kinds or kinds[0] != "Transformer":
        msg = (
            f"Model {name!r} has modules {kinds}; the ONNX backend exports a Transformer "
            "followed by Pooling/Normalize/Dense. Use backend='torch' for this model."
        )
        raise ValueError(msg)
    for kind, module in zip(kinds[1:], list(model)[1:], strict=True):
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
    document = [prompts[key] for key in ("document", "passage", "corpus") if key in prompts]
    return {"query": prompts.get("query", default), "document": (document or [default])[0]}


def write_json(path: Path, data: Any) -> None:
    """Replace ``path`` whole with ``data`` as JSON; a cache that cannot be written only logs."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(data), encoding="utf-8")
        os.replace(temporary, path)
    except OSError as exc:
        logger.debug("cannot write %s: %s", path, exc)
        temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    noisy = [logging.getLogger(n) for n in ("onnx_ir", "onnxscript", "torch.onnx")]
    levels = [log.level for log in noisy]

    # quantize_dynamic logs progress and an unconditional "pre-processing" hint straight to
    # the root logger; only its errors are worth passing on.
    def errors_only(record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR

    logging.getLogger().addFilter(errors_only)
    try:
        for log in noisy:
            log.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.getLogger().removeFilter(errors_only)
        for log, level in zip(noisy, levels, strict=True):
            log.setLevel(level)


def _matmuls_after_gelu(path: Path) -> list[str]:
    import onnx

    nodes = onnx.load(str(path), load_external_data=False).graph.node
    producers = {output: node.op_type for node in nodes for output in node.output}
    return [n.name for n in nodes if n.op_type == "MatMul" and producers.get(n.input[0]) == "Gelu"]


def _split_outliers(model: Any, fp32_path: Path, external: bool) -> tuple[Path, list[str]]:
    """The fp32 graph with its GELU outlier channels split off, and its fp32 MatMuls."""
    import onnx

    proto = onnx.load(str(fp32_path))
    limit = int(model.max_seq_length or 512)
    samples = [
        model.tokenizer(text, truncation=True, max_length=limit)["input_ids"]
        for text in CALIBRATION_TEXTS
    ]
    maxima = calibrate(fp32_path, [t.activation for t in gelu_matmuls(proto)], samples)
    fp32_nodes = split_outliers(proto, maxima)
    logger.debug("%d GELU MatMuls keep outlier channels in fp32", len(fp32_nodes))
    split_path = fp32_path.with_name("model.fp32.split.onnx")
    onnx.save(proto, str(split_path), save_as_external_data=external)
    return split_path, fp32_nodes


def export_onnx(model: Any, destination: Path, settings: OnnxSettings) -> None:
    """Write ``model`` (a loaded SentenceTransformer) as one ONNX graph into ``destination``.

    The graph maps ``input_ids`` and ``attention_mask`` (int64, dynamic axes) to the pooled
    ``sentence_embedding``, then is quantised as ``settings`` say.

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

    graph = graph_module(model)
    # Two distinct tensors: one tensor passed twice would be traced as one aliased input.
    sample_ids = torch.full((2, 8), int(model.tokenizer.cls_token_id or 1), dtype=torch.int64)
    sample_mask = torch.ones((2, 8), dtype=torch.int64)
    axes = {
        0: torch.export.Dim("batch"),
        1: torch.export.Dim("sequence", max=int(model.max_seq_length or 512)),
    }
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
            dynamic_shapes={"input_ids": axes, "attention_mask": axes},
            external_data=external,
            verbose=False,
        )
        if settings.quantization != "int8":
            fp32_path.rename(destination / _MODEL_FILE)
            return
        excluded = _matmuls_after_gelu(fp32_path) if settings.fp32_after_gelu else []
        graphs = {_MODEL_FILE: (fp32_path, excluded)}
        if settings.query_graph:
            graphs[_QUERY_MODEL_FILE] = (fp32_path, [])
        elif settings.outliers_fp32:
            graphs[_MODEL_FILE] = _split_outliers(model, fp32_path, external)
        for file_name, (source, fp32_nodes) in graphs.items():
            quantization.quantize_dynamic(
                str(source),
                str(destination / file_name),
                weight_type=quantization.QuantType.QInt8,
                per_channel=settings.per_channel,
                reduce_range=settings.reduce_range,
                op_types_to_quantize=["MatMul"],
                nodes_to_exclude=fp32_nodes,
                use_external_data_format=external,
            )
        for file in destination.glob("model.fp32*"):
            file.unlink()


def write_export(model: Any, name: str, destination: Path, settings: OnnxSettings) -> None:
    """Write the export of ``model`` into the empty folder ``destination``; meta.json last."""
    check_exportable(model, name)
    info = describe_model(model, name)
    export_onnx(model, destination, settings)
    model.tokenizer.save_pretrained(str(destination / "tokenizer"))
    (destination / "tokenizer.json").write_text(model.tokenizer.backend_tokenizer.to_str())
    files = {f.relative_to(destination).as_posix(): f for f in sorted(destination.rglob("*"))}
    files = {name: f for name, f in files.items() if f.is_file()}
    meta = {
        "info": asdict(info),
        "prompts": role_prompts(model),
        "pad_token_id": int(model.tokenizer.pad_token_id or 0),
        "settings": asdict(settings),
        "query_graph": settings.query_graph,
        # Every file's size, checked on each read: a crash can leave a file short or empty.
        "files": {name: f.stat().st_size for name, f in files.items()},
        # And its SHA-256, checked once per load: a file replaced by another of the same
        # size (another model's graph of the same shape) keeps every size.
        "sha256": {name: file_digest(f) for name, f in files.items()},
    }
    # Written last: a folder with meta.json is a finished export.
    (destination / _META_FILE).write_text(json.dumps(meta, indent=2))


def read_export(directory: Path) -> ExportedModel | None:
    """The finished export in ``directory``, or None when absent or a file's size changed."""
    try:
        meta = json.loads((directory / _META_FILE).read_text())
        query_graph = bool(meta.get("query_graph", False))
        sizes = dict(meta["files"])
        required = [_MODEL_FILE, _QUERY_MODEL_FILE] if query_graph else [_MODEL_FILE]
        if any(name not in sizes for name in required):
            return None
        for name, size in sizes.items():
            if (directory / name).stat().st_size != size:
                logger.debug("%s is no longer the %d bytes written", directory / name, size)
                return None
        return ExportedModel(
            directory=directory,
            info=ModelInfo(**meta["info"]),
            prompts=dict(meta["prompts"]),
            pad_token_id=int(meta["pad_token_id"]),
            query_graph=query_graph,
            digests={str(k): str(v) for k, v in dict(meta.get("sha256") or {}).items()},
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def file_digest(path: Path) -> str:
    """SHA-256 of a file's content, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_export(exported: ExportedModel) -> str | None:
    """Why the export's files are not the ones written (None when every digest matches)."""
    if not exported.digests:
        return "records no file digests (written by an older version)"
    for name, recorded in sorted(exported.digests.items()):
        try:
            actual = file_digest(exported.directory / name)
        except OSError as exc:
            return f"cannot read {name} ({exc.strerror or exc})"
        if actual != recorded:
            return f"has a {name} that is not the file written there (its SHA-256 differs)"
    return None
