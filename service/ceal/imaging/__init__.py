"""The preprocessing contract shared by the trainer, the server and the PACS bridge (numpy; pydicom for DICOM).

A standalone namespace package, beside `ceal.service` rather than inside it: `clients/` may not import the
service, yet the PACS bridge must prepare pixels exactly as the server does. It depends on numpy alone
(`ceal.imaging.dicom` also on pydicom), so every install of ceal can import it.
"""

from ceal.imaging.contract import (
    CONTRACT_VERSION,
    PreprocessParams,
    content_box,
    fit_planes,
    resize_planes,
    to_channels,
    to_model_input,
    to_unit,
)

__all__ = [
    "CONTRACT_VERSION",
    "PreprocessParams",
    "content_box",
    "fit_planes",
    "resize_planes",
    "to_channels",
    "to_model_input",
    "to_unit",
]
