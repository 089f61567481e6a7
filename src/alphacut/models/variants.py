"""Derived model files: a float32 copy of a model shipped with float16 weights, for CPUs.

IMG.LY's IS-Net is a float16 graph (weights and activations). ONNX Runtime has no float16
convolution on x86 CPUs, so it wraps every layer in casts: each activation is converted to
float32 for the convolution and back to float16 after it. Rewriting the graph once as float32
removes those ~110 casts. Measured on this machine (``bench/inference.py``): 0.86x the CPU time
of the float16 file and ~210 MB less peak memory (``bench/memory.py``: 976 -> 764 MB), with mattes within 7.3e-4 (max) and
7.5e-6 (mean) of the float16 file's on the same input — the float16 rounding of activations is
all that changes. GPU providers keep the float16 file (it is their fast path).

Why by hand: the onnx package converts float32 models *to* float16 (onnxconverter-common) but has
no maintained float16-to-float32 converter; the rewrite is three loops over the graph with
``onnx``'s own helpers.

The copy lives next to the original (``<name>.fp32.onnx``) and is rebuilt whenever the source
file's verified sha256 or this converter's version changes; ``derived.json`` records both.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["CONVERTER_VERSION", "float32_copy", "has_float16_tensors"]

#: bump when the rewrite changes, so every cached copy is rebuilt
CONVERTER_VERSION = 1


def float32_copy(source: Path, dest: Path) -> None:
    """Write ``dest``: ``source`` with every float16 tensor, cast and type made float32.

    Written atomically (a temporary file in the same folder, then ``os.replace``).
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    for i, tensor in enumerate(graph.initializer):
        if tensor.data_type == TensorProto.FLOAT16:
            as32 = numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float32), tensor.name)
            graph.initializer[i].CopyFrom(as32)
    for node in graph.node:
        for attr in node.attribute:
            if node.op_type == "Constant" and attr.name == "value" and attr.t.data_type == TensorProto.FLOAT16:
                attr.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attr.t).astype(np.float32), attr.t.name))
            elif node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT16:
                attr.i = TensorProto.FLOAT  # a cast to float16 becomes a no-op cast to float32
    for info in [*graph.value_info, *graph.input, *graph.output]:
        if info.type.tensor_type.elem_type == TensorProto.FLOAT16:
            info.type.tensor_type.elem_type = TensorProto.FLOAT
    _save_atomically(model, dest)


def _save_atomically(model, dest: Path) -> None:
    import onnx

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    os.close(fd)
    try:
        onnx.save(model, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def has_float16_tensors(path: Path) -> bool:
    """True when any weight, constant or declared value of the model is float16."""
    import onnx
    from onnx import TensorProto

    model = onnx.load(str(path))
    g = model.graph
    return (
        any(t.data_type == TensorProto.FLOAT16 for t in g.initializer)
        or any(a.t.data_type == TensorProto.FLOAT16 for n in g.node if n.op_type == "Constant" for a in n.attribute)
        or any(i.type.tensor_type.elem_type == TensorProto.FLOAT16 for i in [*g.value_info, *g.input, *g.output])
    )
