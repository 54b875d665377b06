"""Exporting a sentence-transformers model to an ONNX graph, quantised to int8.

``torch.onnx.export`` (dynamo, needs ``onnxscript``) traces :func:`graph_module`, and
``onnxruntime.quantization.quantize_dynamic`` makes its matrices int8. No ``optimum``: its
releases pin older transformers and sentence-transformers.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from langchain_tasb.encoding.hardware import int8_matmul_saturates
from langchain_tasb.encoding.onnx_outliers import gelu_matmuls, split_outlier_graph
from langchain_tasb.encoding.torch_backend import describe_model

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from langchain_tasb.encoding.types import Similarity

logger = logging.getLogger(__name__)

EXPORT_FORMAT = 5
"""Version of the export recipe in this module; part of the cache key, bumped when it changes."""

MODEL_FILE = "model.onnx"
"""The graph that encodes documents (and queries, without a query graph)."""
QUERY_MODEL_FILE = "model.query.onnx"
# Modules after the transformer that the exported graph can hold.
_GRAPH_MODULES = ("Pooling", "Normalize", "Dense")
_INSTALL_HINT = "pip install 'onnx>=1.17' 'onnxscript>=0.5' 'onnxruntime>=1.20'"


@dataclass(frozen=True)
class OnnxSettings:
    """How the model is exported and quantised; every field is part of the cache key."""

    quantization: Literal["int8", "none"] = "int8"
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


def graph_module(model: Any) -> Any:
    """The module to export for ``model`` (a loaded SentenceTransformer); imports torch.

    Raises:
        RuntimeError: If the CLS-only last layer does not reproduce the full model.
    """
    import copy

    import torch

    # A private copy with eager attention: its additive mask exports as one Add, where
    # SDPA exports as Where/IsNaN/Where over every score.
    transformer = copy.deepcopy(model[0].auto_model)
    transformer.set_attn_implementation("eager")
    heads = list(model)[1:]
    poolings = [h for h in heads if type(h).__name__ == "Pooling"]
    # DistilBERT with CLS pooling first: the last layer may compute the CLS position alone.
    cls_only = (
        getattr(transformer.config, "model_type", None) == "distilbert"
        and len(poolings) == 1
        and poolings[0].pooling_mode == "cls"
        and type(heads[0]).__name__ == "Pooling"
    )

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
    kinds = [type(m).__name__ for m in model]
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


def export_onnx(model: Any, destination: Path, settings: OnnxSettings) -> None:
    """Write ``model`` (a loaded SentenceTransformer) as one ONNX graph into ``destination``.

    The graph maps ``input_ids`` and ``attention_mask`` (int64, dynamic axes) to the pooled
    ``sentence_embedding``, then is quantised as ``settings`` say.

    Raises:
        ImportError: If onnx, onnxscript or onnxruntime is missing.
    """
    try:
        import onnx
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
            fp32_path.rename(destination / MODEL_FILE)
            return
        graphs: dict[str, tuple[Path, list[str]]] = {MODEL_FILE: (fp32_path, [])}
        if settings.fp32_after_gelu:  # takes precedence over outliers_fp32
            proto = onnx.load(str(fp32_path), load_external_data=False)
            graphs[MODEL_FILE] = (fp32_path, [t.matmul for t in gelu_matmuls(proto)])
            if settings.query_graph:
                graphs[QUERY_MODEL_FILE] = (fp32_path, [])
        elif settings.outliers_fp32:
            graphs[MODEL_FILE] = split_outlier_graph(model, fp32_path, external)
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


def write_export(
    model: Any,
    name: str,
    destination: Path,
    settings: OnnxSettings,
    similarity_override: Similarity | None = None,
) -> dict[str, Any]:
    """Write the graph and tokenizer of ``model`` into ``destination``; say what it computes.

    Returns:
        The ``info``, ``prompts``, ``settings`` and ``query_graph`` of the export, as JSON.
    """
    check_exportable(model, name)
    try:  # the model's own similarity is recorded; the override only stands in for one
        info = describe_model(model, name)  # that no inner-product index can serve
    except ValueError:
        if similarity_override is None:
            raise
        info = describe_model(model, name, similarity_override)
    export_onnx(model, destination, settings)
    model.tokenizer.save_pretrained(str(destination / "tokenizer"))
    (destination / "tokenizer.json").write_text(model.tokenizer.backend_tokenizer.to_str())
    return {
        "info": asdict(info),
        "prompts": role_prompts(model),
        "settings": asdict(settings),
        "query_graph": settings.query_graph,
    }
