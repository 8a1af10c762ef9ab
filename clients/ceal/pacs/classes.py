"""Model classes ↔ DICOM SEG segments: the coded category and type of each foreground class.

Writing: class `k` (1..C-1 of the model's class names) becomes segment `k`, its Segmented Property Type the
SNOMED CT code pydicom knows by the class name ("lesion" → SCT 52988006 Lesion, "left kidney" → LeftKidney if
it exists), its category Morphologically Abnormal Structure for findings and Anatomical Structure otherwise.
A name SNOMED CT does not know gets a private code (scheme "99CEAL"); a mapping file overrides any class:

    {"lesion": {"type": "SCT:52988006:Lesion", "category": "SCT:49755003:Morphologically Abnormal Structure"}}

Reading (`class_of_segment`): a segment is class `k` when its type code (scheme and value) is class k's, or,
failing that, when its Segment Label or its type's meaning is the class name (case and spaces ignored).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from highdicom.sr import CodedConcept
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from ceal.pacs.errors import PacsError

__all__ = ["PRIVATE_SCHEME", "ClassCode", "class_codes", "class_of_segment", "read_mapping"]

PRIVATE_SCHEME = "99CEAL"
_FINDINGS = {"lesion", "tumor", "tumour", "neoplasm", "mass", "nodule", "cyst", "edema", "oedema", "necrosis"}


class MappingError(PacsError):
    """The class mapping file is unreadable or names a code wrongly; the message says how to fix it."""


@dataclass(frozen=True)
class ClassCode:
    """One foreground class as a SEG segment: `index` (1-based, the class index in the model's masks)."""

    index: int
    name: str
    category: Code
    type: Code


def _key(text: str) -> str:
    return "".join(text.lower().split()).replace("_", "").replace("-", "")


def _parse_code(text: str, where: str) -> Code:
    parts = str(text).split(":", 2)
    if len(parts) != 3 or not all(p.strip() for p in parts):
        raise MappingError(f"{where}: {text!r} is not SCHEME:VALUE:MEANING (e.g. 'SCT:52988006:Lesion')")
    scheme, value, meaning = (p.strip() for p in parts)
    return Code(value=value, scheme_designator=scheme, meaning=meaning)


def read_mapping(path: Path | None) -> dict[str, dict[str, Code]]:
    """A mapping file (see the module doc) → {class name: {"type": Code, "category": Code}}; {} for None."""
    if path is None:
        return {}
    try:
        raw: Any = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise MappingError(f"cannot read the class mapping {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise MappingError(f"class mapping {path}: expected an object of class name → codes")
    out: dict[str, dict[str, Code]] = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict) or "type" not in entry:
            raise MappingError(f"class mapping {path}: {name!r} needs at least a 'type' code")
        out[_key(name)] = {k: _parse_code(v, f"class mapping {path}, {name!r}") for k, v in entry.items()}
    return out


def _snomed(name: str) -> Code | None:
    camel = "".join(word.capitalize() for word in name.replace("_", " ").replace("-", " ").split())
    try:
        code = getattr(codes.SCT, camel)
    except AttributeError:
        return None
    return code if isinstance(code, Code) else None


def class_codes(class_names: Sequence[str], mapping: Mapping[str, Mapping[str, Code]] | None = None) -> list[ClassCode]:
    """The foreground classes (every name after the first, the background) as coded segments."""
    if len(class_names) < 2:
        raise MappingError(f"class names {list(class_names)} need a background and at least one class")
    out = []
    for index, name in enumerate(class_names[1:], start=1):
        given = (mapping or {}).get(_key(name), {})
        found = _snomed(name)
        type_code = given.get("type") or found or Code(_key(name)[:16] or f"class{index}", PRIVATE_SCHEME, name)
        finding = _key(name) in _FINDINGS
        default_category = codes.SCT.MorphologicallyAbnormalStructure if finding else codes.SCT.AnatomicalStructure
        out.append(ClassCode(index, name, given.get("category") or default_category, type_code))
    return out


def class_of_segment(segment_label: str, segment_type: Code | CodedConcept, classes: Sequence[ClassCode]) -> int | None:
    """The class index a read segment stands for (see the module doc), or None when no class matches."""
    for c in classes:
        if (c.type.scheme_designator, c.type.value) == (segment_type.scheme_designator, segment_type.value):
            return c.index
    for c in classes:
        if _key(c.name) in (_key(segment_label), _key(segment_type.meaning)):
            return c.index
    return None
