"""Hypothesis strategies for any protobuf message, read from its descriptor.

Every scalar field gets values across its whole range (NaN and infinities for floats, unknown enum numbers,
any text), repeated fields a few elements, nested messages to a bounded depth. A `ceal.v1.Tensor` is, half
of the time, a *consistent* one (a supported dtype, a small shape and exactly the bytes it needs), so the
fuzz also reaches the code past the codec's first checks; sometimes one whose declared shape overflows int64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

from ceal.v1 import tensor_pb2

F = FieldDescriptor
_INTS = {
    F.TYPE_INT32: (-(2**31), 2**31 - 1),
    F.TYPE_SINT32: (-(2**31), 2**31 - 1),
    F.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    F.TYPE_INT64: (-(2**63), 2**63 - 1),
    F.TYPE_SINT64: (-(2**63), 2**63 - 1),
    F.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    F.TYPE_UINT32: (0, 2**32 - 1),
    F.TYPE_FIXED32: (0, 2**32 - 1),
    F.TYPE_UINT64: (0, 2**64 - 1),
    F.TYPE_FIXED64: (0, 2**64 - 1),
}
_DTYPES = {
    tensor_pb2.DTYPE_UINT8: 1,
    tensor_pb2.DTYPE_UINT16: 2,
    tensor_pb2.DTYPE_INT16: 2,
    tensor_pb2.DTYPE_INT32: 4,
    tensor_pb2.DTYPE_FLOAT16: 2,
    tensor_pb2.DTYPE_FLOAT32: 4,
    tensor_pb2.DTYPE_FLOAT64: 8,
    tensor_pb2.DTYPE_BOOL: 1,
}


def _small_ints(lo: int, hi: int) -> st.SearchStrategy[int]:
    """Mostly small values (where the interesting boundaries are), sometimes anything in range."""
    return st.one_of(st.integers(max(lo, -3), min(hi, 300)), st.integers(lo, hi))


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    t = field.type
    if t in _INTS:
        return _small_ints(*_INTS[t])
    if t == F.TYPE_DOUBLE:
        return st.floats(allow_nan=True, allow_infinity=True)
    if t == F.TYPE_FLOAT:
        return st.floats(width=32, allow_nan=True, allow_infinity=True)
    if t == F.TYPE_BOOL:
        return st.booleans()
    if t == F.TYPE_STRING:
        return st.text(max_size=40)
    if t == F.TYPE_BYTES:
        return st.binary(max_size=300)
    if t == F.TYPE_ENUM:
        known = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(known), st.integers(-3, 200))
    raise TypeError(f"no strategy for field type {t}")  # pragma: no cover


@st.composite
def consistent_tensors(draw: st.DrawFn) -> tensor_pb2.Tensor:
    """A Tensor whose bytes match its dtype and shape (pixel values random)."""
    dtype = draw(st.sampled_from(sorted(_DTYPES)))
    shape = draw(st.lists(st.integers(1, 40), min_size=1, max_size=4))
    size = int(np.prod(shape)) * _DTYPES[dtype]
    data = draw(st.binary(min_size=size, max_size=size)) if size <= 2048 else bytes(size)
    return tensor_pb2.Tensor(dtype=dtype, shape=shape, data=data)


@st.composite
def overflowing_tensors(draw: st.DrawFn) -> tensor_pb2.Tensor:
    """A Tensor whose declared shape is astronomically large (its product overflows int64, e.g. 2^32 × 2^32
    or 2^62 × 4), with a few bytes of data: the shape arithmetic must stay exact and refuse it."""
    dtype = draw(st.sampled_from(sorted(_DTYPES)))
    big = st.sampled_from([2**31, 2**32, 2**62, 2**63 - 1])
    shape = draw(st.lists(st.one_of(big, st.integers(1, 8)), min_size=2, max_size=4).filter(lambda s: max(s) > 8))
    return tensor_pb2.Tensor(dtype=dtype, shape=shape, data=draw(st.binary(max_size=64)))


def messages(descriptor: Descriptor, depth: int = 3) -> st.SearchStrategy[Message]:
    """Messages of type `descriptor` with random field values."""
    cls = GetMessageClass(descriptor)
    if descriptor.full_name == "ceal.v1.Tensor":
        return st.one_of(consistent_tensors(), overflowing_tensors(), _fields(cls, descriptor, depth))
    return _fields(cls, descriptor, depth)


def _repeated(field: FieldDescriptor) -> bool:
    # protobuf >= 6 has `is_repeated`; older versions only `label`
    is_repeated = getattr(field, "is_repeated", None)
    return bool(is_repeated) if is_repeated is not None else field.label == F.LABEL_REPEATED


def _fields(cls: type[Message], descriptor: Descriptor, depth: int) -> st.SearchStrategy[Message]:
    @st.composite
    def build(draw: st.DrawFn) -> Message:
        msg = cls()
        for field in descriptor.fields:
            if not draw(st.booleans()):
                continue  # leave it unset
            if field.type == F.TYPE_MESSAGE:
                if depth <= 0:
                    continue
                sub = messages(field.message_type, depth - 1)
                if _repeated(field):
                    for item in draw(st.lists(sub, max_size=3)):
                        getattr(msg, field.name).add().CopyFrom(item)
                else:
                    getattr(msg, field.name).CopyFrom(draw(sub))
            elif _repeated(field):
                getattr(msg, field.name).extend(draw(st.lists(_scalar(field), max_size=4)))
            else:
                setattr(msg, field.name, draw(_scalar(field)))
        return msg

    return build()
