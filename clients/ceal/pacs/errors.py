"""The PACS bridge's exceptions. Messages say what to change and never carry patient identifiers.

PacsError                      base of everything raised by ceal.pacs
├── DicomDecodeError           an instance cannot become image slices (no pixels, unsupported encoding)
├── DicomBuildError            a SEG / Parametric Map cannot be built from these sources and arrays
├── PacsUnavailableError       the PACS cannot be reached, or refused the association / login
└── PacsRequestError           the PACS answered, but with a failure status
"""

from __future__ import annotations

__all__ = [
    "DicomBuildError",
    "DicomDecodeError",
    "PacsError",
    "PacsRequestError",
    "PacsUnavailableError",
]


class PacsError(Exception):
    """Base class of the PACS bridge's errors."""


class DicomDecodeError(PacsError):
    """A DICOM instance cannot be decoded into image slices."""


class DicomBuildError(PacsError):
    """A derived DICOM object (SEG, Parametric Map) cannot be built from the given sources and arrays."""


class PacsUnavailableError(PacsError):
    """The PACS cannot be reached, or it refused the connection, association or credentials."""


class PacsRequestError(PacsError):
    """The PACS answered a query, retrieval or store with a failure."""
