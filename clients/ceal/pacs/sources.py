"""Where series come from and derived objects go: the `Pacs` protocol and its two implementations.

- `DicomWebPacs(url, user, password)`: QIDO-RS / WADO-RS / STOW-RS, HTTP basic auth (`ceal.pacs.dicomweb`).
- `DimsePacs(host, port, called_aet, calling_aet)`: C-FIND / C-GET / C-STORE (`ceal.pacs.dimse`).

See `ceal.pacs.protocol` for the watermark (`since`) semantics and how a sync composes the pieces.
"""

from __future__ import annotations

from ceal.pacs.dicomweb import DicomWebPacs
from ceal.pacs.dimse import DimsePacs
from ceal.pacs.protocol import Pacs, SeriesInfo

__all__ = ["DicomWebPacs", "DimsePacs", "Pacs", "SeriesInfo"]
