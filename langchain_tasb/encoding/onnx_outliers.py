"""Keeping the outlier channels of the feed-forward output projections in fp32.

A few GELU output channels carry values many times larger than the rest and would set the
int8 ranges. As in LLM.int8() (Dettmers et al., 2022), but with the channels calibrated once
at export time on :data:`CALIBRATION_TEXTS`, they are split off into a small fp32 MatMul.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

    from numpy.typing import NDArray

logger = logging.getLogger(__name__)

CALIBRATION_TEXTS: tuple[str, ...] = (
    "What is the boiling point of water at high altitude?",
    "how do vaccines train the immune system",
    "The committee approved the budget after a long debate about school funding.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "Heat transfer in a laminar boundary layer depends on the Prandtl number of the fluid.",
    "The patient was treated with a low dose of aspirin for three months.",
    "Mutations in the tumour suppressor gene were found in most of the samples.",
    "She walked along the river until the bridge came into view.",
    "A simple pendulum swings with a period that depends on its length.",
    "Interest rates rose for the fourth time this year, and house prices fell.",
    "The compiler reports an error when a variable is used before it is declared.",
    "Which proteins bind to the promoter region during transcription?",
    "Supersonic flow over a wedge produces an oblique shock wave attached to its tip.",
    "In a randomised controlled trial, neither the patients nor the doctors knew who "
    "received the drug.",
    "The castle was built in the twelfth century and rebuilt after a fire.",
    "Increased expression of the receptor was associated with poorer survival.",
    "Buckling of thin cylindrical shells under axial compression is sensitive to small "
    "imperfections.",
    "Add two cups of flour, a pinch of salt and stir until smooth.",
    "The theorem states that every bounded monotone sequence of real numbers converges.",
    "Electrons in a metal behave like a gas of free particles obeying Fermi statistics.",
    "Does regular exercise lower blood pressure in older adults?",
    "The train to the airport leaves every fifteen minutes from platform two.",
    "Mice lacking the enzyme gained weight on a high-fat diet but not on a normal one.",
    "The wing was tested in a wind tunnel at several angles of attack and Mach numbers.",
    "Climate models predict more frequent droughts in the southern regions.",
    "The library lends books, music and films to anyone with a card.",
    "Antibiotic resistance spreads between bacteria through plasmids.",
    "A transformer encoder maps each token to a vector that depends on its context.",
    "The orchestra played the symphony without a conductor.",
    "Stress concentrations near a circular hole in a plate reach three times the applied stress.",
    "Cells were incubated at 37 degrees for 48 hours before staining.",
    "Why is the sky blue during the day and red at sunset?",
    "The new bridge reduced the journey across the bay from an hour to ten minutes.",
    "Viscous drag on a sphere at low Reynolds number is proportional to its velocity.",
    "Children who slept less than eight hours had lower test scores, the survey found.",
    "Insulin regulates the uptake of glucose by muscle and fat cells.",
    "The museum reopened after renovation with a new wing for modern art.",
    "Numerical solutions of the Navier-Stokes equations require fine grids near walls.",
    "Smoking is the leading cause of lung cancer, but not the only one.",
    "He fixed the bicycle chain with a spare link and rode home before dark.",
    "We measured the thermal conductivity of the samples between 20 and 300 kelvin. The "
    "results agree with the theory within experimental error, except at the lowest "
    "temperatures, where impurity scattering dominates and the conductivity falls.",
    "The study enrolled 1,204 participants aged 18 to 65. After twelve weeks, those given "
    "the supplement reported fewer colds (relative risk 0.78, 95% confidence interval "
    "0.64 to 0.95), although the effect disappeared at the six-month follow-up.",
)
"""Fixed calibration sample shipped with the package (nothing is downloaded)."""


class GeluMatMul(NamedTuple):
    """A GELU-fed MatMul: its name, the GELU output it reads, its weight initializer."""

    matmul: str
    activation: str
    weight: str


def gelu_matmuls(model: Any) -> list[GeluMatMul]:
    """The MatMuls of ``model`` (an onnx ModelProto) fed by a Gelu, with weight initializers."""
    nodes = model.graph.node
    producers = {output: node.op_type for node in nodes for output in node.output}
    weights = {init.name for init in model.graph.initializer}
    return [
        GeluMatMul(node.name, node.input[0], node.input[1])
        for node in nodes
        if node.op_type == "MatMul"
        and producers.get(node.input[0]) == "Gelu"
        and node.input[1] in weights
    ]


def calibrate(
    model_file: Path, activations: Sequence[str], samples: Iterable[list[int]]
) -> dict[str, NDArray[np.float32]]:
    """Per-channel ``max|x|`` of each activation, running ``model_file`` on each sample alone."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(model_file))
    for name in activations:
        model.graph.output.append(
            onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    maxima: dict[str, NDArray[np.float32]] = {}
    for ids in samples:
        feed = np.asarray([ids], dtype=np.int64)
        ones = np.ones_like(feed)
        outputs = session.run(list(activations), {"input_ids": feed, "attention_mask": ones})
        for name, value in zip(activations, outputs, strict=True):
            peak = np.abs(np.asarray(value, dtype=np.float32)).reshape(-1, value.shape[-1]).max(0)
            maxima[name] = np.maximum(maxima[name], peak) if name in maxima else peak
    return maxima


def split_outlier_graph(model: Any, fp32_path: Path, external: bool) -> tuple[Path, list[str]]:
    """The fp32 graph of ``model`` with its GELU outlier channels split off, and its fp32 MatMuls.

    Calibrates on :data:`CALIBRATION_TEXTS`, tokenised by ``model`` (a SentenceTransformer).
    """
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


OUTLIER_RATIO = 3.0
"""A channel is an outlier when its calibrated ``max|x|`` exceeds this many times the 99th
percentile of its matrix's channel maxima."""
MAX_OUTLIERS = 8
"""At most this many outlier channels per matrix are split off (the largest)."""


def outlier_channels(
    activation_max: NDArray[np.float32],
    ratio: float = OUTLIER_RATIO,
    limit: int = MAX_OUTLIERS,
) -> NDArray[np.int64]:
    """The input channels whose calibrated maximum stands out (largest first, at most ``limit``)."""
    threshold = ratio * float(np.percentile(activation_max, 99))
    order = np.argsort(-activation_max, kind="stable")[:limit]
    return np.asarray([j for j in order if activation_max[j] > threshold], dtype=np.int64)


def split_outliers(
    model: Any, maxima: dict[str, NDArray[np.float32]], ratio: float = OUTLIER_RATIO
) -> list[str]:
    """Rewrite ``model`` (in place) so the outlier channels of each GELU MatMul stay fp32.

    ``y = x @ W`` with outlier channels ``O`` becomes ``(x * m) @ W' + x[..., O] @ W[O]``:
    ``m`` is 0 on ``O``, ``W'`` is ``W`` with rows ``O`` zeroed, and the product over ``O`` is
    a separate fp32 MatMul. Returns the names of those MatMuls, for quantisation to leave out.
    """
    from onnx import helper, numpy_helper
    from onnxruntime.quantization.onnx_model import ONNXModel

    graph = ONNXModel(model)
    readers = graph.input_name_to_nodes()
    added: list[str] = []
    for target in gelu_matmuls(model):
        if target.activation not in maxima or len(readers.get(target.weight, [])) != 1:
            continue
        outliers = outlier_channels(maxima[target.activation], ratio)
        if outliers.size == 0:
            continue
        initializer = graph.get_initializer(target.weight)
        weight = numpy_helper.to_array(initializer).astype(np.float32)
        mask = np.ones(weight.shape[0], dtype=np.float32)
        mask[outliers] = 0.0
        initializer.CopyFrom(numpy_helper.from_array(weight * mask[:, None], target.weight))
        x, p = target.activation, f"{target.matmul}_outliers"
        for suffix, array in (("mask", mask), ("index", outliers), ("weight", weight[outliers])):
            graph.add_initializer(numpy_helper.from_array(array, f"{p}_{suffix}"))
        # The correction is added after the MatMul's bias Add when there is one, so that
        # ONNX Runtime can still fuse the int8 MatMul with its bias.
        after = matmul = readers[target.weight][0]
        consumers = readers.get(matmul.output[0], [])
        biased = len(consumers) == 1 and consumers[0].op_type == "Add"
        if biased and any(graph.get_initializer(name) for name in consumers[0].input):
            after = consumers[0]
        output = after.output[0]
        after.output[0] = f"{p}_partial"
        matmul.input[0] = f"{p}_masked"
        graph.add_nodes(
            [
                helper.make_node("Mul", [x, f"{p}_mask"], [f"{p}_masked"], name=f"{p}_mask"),
                helper.make_node(
                    "Gather", [x, f"{p}_index"], [f"{p}_x"], name=f"{p}_gather", axis=-1
                ),
                helper.make_node(
                    "MatMul", [f"{p}_x", f"{p}_weight"], [f"{p}_y"], name=f"{p}_matmul"
                ),
                helper.make_node("Add", [f"{p}_partial", f"{p}_y"], [output], name=f"{p}_add"),
            ]
        )
        added.append(f"{p}_matmul")
    graph.topological_sort()
    return added
