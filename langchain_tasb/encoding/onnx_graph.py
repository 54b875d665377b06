"""The torch module that the ONNX export traces: the transformer and the model's own heads.

Eager attention, and for DistilBERT with CLS pooling (TAS-B) a last layer that computes the
CLS position only (checked against the full model).
"""

from __future__ import annotations

from typing import Any


def module_kind(module: Any) -> str:
    """A sentence-transformers module's kind: its class name ("Pooling", "Dense", ...)."""
    return type(module).__name__


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
    poolings = [h for h in heads if module_kind(h) == "Pooling"]
    # DistilBERT with CLS pooling first: the last layer may compute the CLS position alone.
    cls_only = (
        getattr(transformer.config, "model_type", None) == "distilbert"
        and len(poolings) == 1
        and poolings[0].pooling_mode == "cls"
        and module_kind(heads[0]) == "Pooling"
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
