"""cosfast: fast, verified downloads from Tencent Cloud COS.

A drop-in for the download half of the official SDK (``qcloud_cos``): change the imports,
keep the script."""
from __future__ import annotations

from cosfast._version import __version__
from cosfast.client import CosS3Client
from cosfast.config import CosConfig
from cosfast.cos_exception import CosClientError, CosServiceError
from cosfast.crc64 import backend
from cosfast.streambody import StreamBody

__all__ = ["backend", "__version__", "CosConfig", "CosS3Client", "CosClientError",
           "CosServiceError", "StreamBody"]
