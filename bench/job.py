"""What one contender run must do, as the harness hands it to the contender's process."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote


@dataclass(frozen=True)
class Job:
    contender: str
    suite: str  # "big": keys[0] to dest/<last part of key>; "small": every key under dest
    endpoint_url: str
    bucket: str
    prefix: str
    keys: tuple[str, ...]
    dest: str  # an existing, empty folder
    concurrency: int  # for contenders whose own default is not the point (pools, ranges)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> Job:
        body = json.loads(Path(path).read_text())
        body["keys"] = tuple(body["keys"])
        return cls(**body)

    def big_dest(self) -> str:
        return str(Path(self.dest) / self.keys[0].rsplit("/", 1)[-1])

    def small_dest(self, key: str) -> str:
        return str(Path(self.dest) / key)

    def object_url(self, key: str) -> str:
        """Path-style URL (what curl, aria2c and S3 clients fetch)."""
        return f"{self.endpoint_url}/{self.bucket}/{quote(key, safe='/-_.~')}"
