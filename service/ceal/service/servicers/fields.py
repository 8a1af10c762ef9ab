"""Checks every request message gets before its handler runs: enum values known, float fields finite.

proto3 enums are open (any int32 arrives) and float fields carry NaN and infinities; a handler that compares
or stores them unchecked accepts nonsense (an unknown QueryLevel read as "image", a label's `seconds_spent`
of NaN). Walking the message's set fields once, by descriptor, covers every RPC and every field added later.
"""

from __future__ import annotations

import math

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from ceal.service.errors import InvalidInput

__all__ = ["check_fields"]

_FLOATS = (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE)


def _repeated(field: FieldDescriptor) -> bool:
    is_repeated = getattr(field, "is_repeated", None)  # protobuf >= 6; older versions only have `label`
    label = getattr(field, "label", None)
    return bool(is_repeated) if is_repeated is not None else label == FieldDescriptor.LABEL_REPEATED


def _check_value(field: FieldDescriptor, value: object, where: str) -> None:
    if field.type == FieldDescriptor.TYPE_ENUM:
        enum = field.enum_type
        assert enum is not None  # an enum field always has its type
        if value not in enum.values_by_number:
            names = ", ".join(v.name for v in enum.values)
            raise InvalidInput(f"{where}: {enum.name} {value} is not known; use one of {names}", field=where)
    elif field.type in _FLOATS and not math.isfinite(value):  # type: ignore[arg-type]
        raise InvalidInput(f"{where} is {value}; send a finite number", field=where)


def check_fields(message: Message, prefix: str = "") -> None:
    """Raise InvalidInput naming the first field (dotted path) with an unknown enum value or a non-finite float."""
    for field, value in message.ListFields():
        where = f"{prefix}{field.name}"
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            assert field.message_type is not None  # a message field always has its type
            if field.message_type.GetOptions().map_entry:
                continue  # no ceal request has a map of enums or floats
            items = value if _repeated(field) else [value]
            for i, item in enumerate(items):
                check_fields(item, f"{where}[{i}]." if _repeated(field) else f"{where}.")
        elif _repeated(field):
            for i, item in enumerate(value):
                _check_value(field, item, f"{where}[{i}]")
        else:
            _check_value(field, value, where)
