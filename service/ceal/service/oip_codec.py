"""Open Inference Protocol tensors ↔ numpy: the `image` input, the outputs, and the request parameters.

Tensors arrive either as raw bytes (`raw_input_contents[i]`: little-endian, row-major, what tritonclient
sends) or in the typed repeated field of InferTensorContents (`uint_contents` for UINT8/UINT16,
`fp32_contents` for FP32). Every check raises `InvalidInput` naming the request field to change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ceal.oip import grpc_predict_v2_pb2 as pb
from ceal.service.codec import check_image_array
from ceal.service.errors import InvalidInput

__all__ = [
    "IGNORED_PARAMETERS",
    "IMAGE_DATATYPES",
    "InferParameters",
    "decode_image_input",
    "decode_parameters",
    "output_tensor",
]

# Input datatypes ceal accepts for `image` and the numpy dtype of each (little-endian on the wire).
IMAGE_DATATYPES: dict[str, np.dtype[np.generic]] = {
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "FP32": np.dtype("<f4"),
}
_OUTPUT_DATATYPES: dict[np.dtype[np.generic], str] = {
    np.dtype("u1"): "UINT8",
    np.dtype("u2"): "UINT16",
    np.dtype("f4"): "FP32",
    np.dtype("f8"): "FP64",
}
# Parameters that Triton clients may send and that mean nothing for ceal; accepted and ignored.
IGNORED_PARAMETERS = frozenset(
    {"priority", "timeout", "sequence_id", "sequence_start", "sequence_end", "binary_data_output", "headers"}
)


@dataclass(frozen=True)
class InferParameters:
    """The request parameters ceal reads; None = the server's default."""

    samples: int | None = None
    seed: int | None = None
    adaptive_tolerance: float = 0.0
    threshold: float | None = None


def _number(name: str, value: pb.InferParameter) -> float | int:
    which = value.WhichOneof("parameter_choice")
    if which in ("int64_param", "uint64_param", "double_param"):
        number: float | int = getattr(value, which)
        return number
    if which == "string_param":
        try:
            return float(value.string_param) if "." in value.string_param else int(value.string_param)
        except ValueError:
            pass
    raise InvalidInput(f"parameter {name!r} must be a number, got {which or 'nothing'}", field=f"parameters.{name}")


def _integer(name: str, value: pb.InferParameter, low: int) -> int:
    number = _number(name, value)
    if isinstance(number, float) and not number.is_integer():
        raise InvalidInput(f"parameter {name!r} must be a whole number, got {number}", field=f"parameters.{name}")
    if number < low:
        raise InvalidInput(f"parameter {name!r} must be at least {low}, got {number}", field=f"parameters.{name}")
    return int(number)


def decode_parameters(params: Mapping[str, pb.InferParameter]) -> InferParameters:
    """`samples` (Monte-Carlo T, ≥ 1), `seed` (≥ 0), `adaptive_tolerance` (≥ 0, score units) and `threshold`
    (foreground threshold on the mean probability of a binary model, in (0, 1); the engine checks the range)."""
    known = {"samples", "seed", "adaptive_tolerance", "threshold"}
    unknown = sorted(set(params) - known - IGNORED_PARAMETERS)
    if unknown:
        raise InvalidInput(
            f"unknown parameters {unknown}; ceal reads {sorted(known)}", field=f"parameters.{unknown[0]}"
        )
    samples = _integer("samples", params["samples"], 1) if "samples" in params else None
    seed = _integer("seed", params["seed"], 0) if "seed" in params else None
    tolerance = 0.0
    if "adaptive_tolerance" in params:
        tolerance = float(_number("adaptive_tolerance", params["adaptive_tolerance"]))
        if not (math.isfinite(tolerance) and tolerance >= 0.0):
            raise InvalidInput(
                f"parameter 'adaptive_tolerance' must be >= 0 (0 = fixed T), got {tolerance}",
                field="parameters.adaptive_tolerance",
            )
    threshold = float(_number("threshold", params["threshold"])) if "threshold" in params else None
    return InferParameters(samples=samples, seed=seed, adaptive_tolerance=tolerance, threshold=threshold)


def _typed_contents(tensor: pb.ModelInferRequest.InferInputTensor, dtype: np.dtype[np.generic], field: str) -> bytes:
    if tensor.datatype == "FP32":
        values = np.asarray(tensor.contents.fp32_contents, dtype=np.float32)
    else:
        ints = np.asarray(tensor.contents.uint_contents, dtype=np.int64)
        limit = 255 if dtype.itemsize == 1 else 65535
        if ints.size and int(ints.max()) > limit:
            raise InvalidInput(f"{tensor.datatype} values must be at most {limit}", field=f"{field}.contents")
        values = ints.astype(dtype)
    return values.astype(dtype).tobytes()


def decode_image_input(request: pb.ModelInferRequest, *, max_pixels: int) -> np.ndarray:
    """The request's one input, `image`: UINT8, UINT16 or FP32 of shape (H, W) or (H, W, C), C in {1, 3}."""
    if len(request.inputs) != 1 or request.inputs[0].name != "image":
        names = [t.name for t in request.inputs]
        raise InvalidInput(f"send exactly one input named 'image', got {names}", field="inputs")
    tensor, field = request.inputs[0], "inputs[0]"
    if tensor.datatype not in IMAGE_DATATYPES:
        raise InvalidInput(
            f"image datatype {tensor.datatype!r} is not supported; use one of {list(IMAGE_DATATYPES)}",
            field=f"{field}.datatype",
        )
    shape = tuple(int(s) for s in tensor.shape)
    if len(shape) not in (2, 3) or any(s <= 0 for s in shape) or (len(shape) == 3 and shape[2] not in (1, 3)):
        raise InvalidInput(
            f"image shape {list(shape)} is not an image; send (H, W), (H, W, 1) or (H, W, 3)", field=f"{field}.shape"
        )
    if shape[0] * shape[1] > max_pixels:
        raise InvalidInput(
            f"image of {shape[0]}×{shape[1]} pixels exceeds the limit of {max_pixels}; downsample it first",
            field=f"{field}.shape",
        )
    dtype = IMAGE_DATATYPES[tensor.datatype]
    if request.raw_input_contents:
        if tensor.HasField("contents"):
            raise InvalidInput("set raw_input_contents or inputs[0].contents, not both", field=f"{field}.contents")
        data, where = request.raw_input_contents[0], "raw_input_contents[0]"
    else:
        data, where = _typed_contents(tensor, dtype, field), f"{field}.contents"
    need = math.prod(shape) * dtype.itemsize
    if len(data) != need:
        raise InvalidInput(
            f"image of shape {list(shape)} and datatype {tensor.datatype} needs {need} bytes, got {len(data)}",
            field=where,
        )
    pixels = np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
    return check_image_array(pixels, max_pixels=max_pixels)


def output_tensor(
    name: str, array: np.ndarray, *, raw: bool
) -> tuple[pb.ModelInferResponse.InferOutputTensor, bytes | None]:
    """One output: its metadata and either the raw bytes (returned) or typed contents (set on the tensor)."""
    native = array.dtype.newbyteorder("=")
    datatype = _OUTPUT_DATATYPES[native]
    out = pb.ModelInferResponse.InferOutputTensor(name=name, datatype=datatype, shape=list(array.shape))
    if raw:
        return out, np.ascontiguousarray(array, dtype=native.newbyteorder("<")).tobytes()
    flat = array.reshape(-1)
    if datatype in ("UINT8", "UINT16"):
        out.contents.uint_contents.extend(flat.astype(np.uint32).tolist())
    elif datatype == "FP32":
        out.contents.fp32_contents.extend(flat.tolist())
    else:
        out.contents.fp64_contents.extend(flat.tolist())
    return out, None
