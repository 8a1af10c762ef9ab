"""Training data: synthetic lesions (`synth`) and image/mask folder pairs (`folders`)."""

from ceal.trainer.data.folders import (
    DatasetError,
    Pair,
    find_pairs,
    load_image,
    load_mask,
    resize_pair,
    split_ids,
)
from ceal.trainer.data.synth import (
    CASE_KINDS,
    CaseAttributes,
    CaseKind,
    SynthCase,
    case_rng,
    make_case,
    write_isic,
)

__all__ = [
    "CASE_KINDS",
    "CaseAttributes",
    "CaseKind",
    "DatasetError",
    "Pair",
    "SynthCase",
    "case_rng",
    "find_pairs",
    "load_image",
    "load_mask",
    "make_case",
    "resize_pair",
    "split_ids",
    "write_isic",
]
