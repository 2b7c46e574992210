"""cosfast: fast, verified downloads from Tencent Cloud COS.

A drop-in for the download half of the official SDK (``qcloud_cos``): change the imports,
keep the script."""
from __future__ import annotations

from cosfast.cos_exception import CosClientError, CosServiceError
from cosfast.crc64 import backend

__all__ = ["backend", "__version__", "CosClientError", "CosServiceError"]
__version__ = "0.1.0"
