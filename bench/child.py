"""Runs inside a Python contender's own process: ``python -m bench.child JOB RESULT``.

Client construction and imports happen before the clock starts; the result file records the
transfer's wall time and the CPU spent before it (the harness subtracts that from the process
tree's total). A failure prints one line ``<Type>: <message>`` and exits 1.
"""
from __future__ import annotations

import json
import os
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from bench.job import Job
from bench.measure import vm_hwm_kib

Transfer = Callable[[], None]

RANGE_PART = 16 << 20  # obstore: bytes per ranged GET


# -- cosfast -----------------------------------------------------------------------------------

def _cosfast_client(job: Job):
    from bench.sdkconfig import cos_config_kwargs
    from cosfast import CosConfig, CosS3Client

    return CosS3Client(CosConfig(**cos_config_kwargs(job.endpoint_url)))


def cosfast_big(job: Job, **options) -> Transfer:
    client = _cosfast_client(job)
    return lambda: client.download_file(Bucket=job.bucket, Key=job.keys[0], DestFilePath=job.big_dest(), **options)


def cosfast_small(job: Job, **options) -> Transfer:
    client = _cosfast_client(job)

    # What landed is judged by the harness's verification, whatever the summary says.
    return lambda: client.download_dir(Bucket=job.bucket, Prefix=job.prefix, LocalDir=job.dest, **options)


# -- the official SDK ----------------------------------------------------------------------------

def _sdk_client(job: Job):
    from bench.sdkconfig import sdk_client

    return sdk_client(job.endpoint_url)


def sdk_big(job: Job, **options) -> Transfer:
    client = _sdk_client(job)
    return lambda: client.download_file(job.bucket, job.keys[0], job.big_dest(), **options)


def sdk_stream_big(job: Job) -> Transfer:
    client = _sdk_client(job)
    return lambda: client.get_object(Bucket=job.bucket, Key=job.keys[0])["Body"].get_stream_to_file(job.big_dest())


def sdk_recipe_small(job: Job, threads: int | None = None) -> Transfer:
    """The documented "Batch downloading files" recipe: list page by page, then download_file
    for every key in a SimpleThreadPool (its default size unless ``threads``)."""
    from qcloud_cos.cos_threadpool import SimpleThreadPool

    client = _sdk_client(job)

    def transfer() -> None:
        file_infos, marker = [], ""
        while True:
            response = client.list_objects(job.bucket, job.prefix, "", marker)
            file_infos.extend(response.get("Contents", []))
            if "NextMarker" not in response:
                break
            marker = response["NextMarker"]
        pool = SimpleThreadPool() if threads is None else SimpleThreadPool(threads)
        for info in file_infos:
            local = os.path.join(job.dest, info["Key"])
            os.makedirs(os.path.dirname(local), exist_ok=True)
            pool.add_task(client.download_file, job.bucket, info["Key"], local)
        pool.wait_completion()
        result = pool.get_result()
        if not result["success_all"]:
            failed = sum(fails for _ok, fails, _ret in result["detail"])
            raise RuntimeError(f"SimpleThreadPool reports {failed} failed downloads")

    return transfer


# -- boto3 ---------------------------------------------------------------------------------------

def _boto3_client(job: Job, max_pool: int):
    import boto3
    from botocore.config import Config

    from bench.sdkconfig import credentials

    secret_id, secret_key = credentials()
    return boto3.client(
        "s3", endpoint_url=job.endpoint_url, region_name="us-east-1",
        aws_access_key_id=secret_id, aws_secret_access_key=secret_key,
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=max_pool),
    )


def boto3_big(job: Job) -> Transfer:
    client = _boto3_client(job, max_pool=10)  # download_file's default max_concurrency is 10
    return lambda: client.download_file(job.bucket, job.keys[0], job.big_dest())


def boto3_small(job: Job) -> Transfer:
    """List (v1, as COS speaks it) then download_file per key from a pool of ``concurrency``."""
    client = _boto3_client(job, max_pool=job.concurrency)

    def fetch(key: str) -> None:
        local = job.small_dest(key)
        os.makedirs(os.path.dirname(local), exist_ok=True)
        client.download_file(job.bucket, key, local)

    def transfer() -> None:
        keys = [o["Key"] for page in client.get_paginator("list_objects").paginate(Bucket=job.bucket, Prefix=job.prefix)
                for o in page.get("Contents", [])]
        with ThreadPoolExecutor(job.concurrency) as pool:
            list(pool.map(fetch, keys))

    return transfer


# -- obstore -------------------------------------------------------------------------------------

def _obstore(job: Job):
    from obstore.store import S3Store

    return S3Store(
        job.bucket, endpoint=job.endpoint_url, region="us-east-1", skip_signature=True,
        virtual_hosted_style_request=False, client_options={"allow_http": True},
    )


def obstore_big(job: Job) -> Transfer:
    """``concurrency`` ranged GETs of RANGE_PART bytes in flight, each pwritten at its offset."""
    import obstore

    store = _obstore(job)

    def fetch(fd: int, start: int, end: int) -> None:
        view = memoryview(obstore.get_range(store, job.keys[0], start=start, end=end))
        offset = start
        while view:
            written = os.pwrite(fd, view, offset)
            view, offset = view[written:], offset + written

    def transfer() -> None:
        size = obstore.head(store, job.keys[0])["size"]
        fd = os.open(job.big_dest(), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            with ThreadPoolExecutor(job.concurrency) as pool:
                spans = [(o, min(o + RANGE_PART, size)) for o in range(0, size, RANGE_PART)]
                list(pool.map(lambda span: fetch(fd, *span), spans))
        finally:
            os.close(fd)

    return transfer


def obstore_small(job: Job) -> Transfer:
    """The key list given (obstore lists with ListObjectsV2, which COS's v1 API lacks)."""
    import obstore

    store = _obstore(job)

    def fetch(key: str) -> None:
        local = job.small_dest(key)
        os.makedirs(os.path.dirname(local), exist_ok=True)
        with open(local, "wb") as f:
            f.write(obstore.get(store, key).bytes())

    def transfer() -> None:
        with ThreadPoolExecutor(job.concurrency) as pool:
            list(pool.map(fetch, job.keys))

    return transfer


FACTORIES: dict[tuple[str, str], Callable[[Job], Transfer]] = {
    ("cosfast", "big"): cosfast_big,
    ("cosfast-direct", "big"): lambda job: cosfast_big(job, DirectIO=True),
    ("cosfast-buffered", "big"): lambda job: cosfast_big(job, DirectIO=False),
    ("cosfast-keep", "big"): lambda job: cosfast_big(job, KeepPageCache=True),
    ("cosfast-keep", "small"): lambda job: cosfast_small(job, KeepPageCache=True),
    ("cosfast-drop", "big"): lambda job: cosfast_big(job, KeepPageCache=False),
    ("cosfast-drop", "small"): lambda job: cosfast_small(job, KeepPageCache=False),
    ("cosfast", "small"): cosfast_small,
    ("sdk", "big"): sdk_big,
    ("sdk-t16", "big"): lambda job: sdk_big(job, MAXThread=16),
    ("sdk-stream", "big"): sdk_stream_big,
    ("sdk-recipe", "small"): sdk_recipe_small,
    ("sdk-recipe-10", "small"): lambda job: sdk_recipe_small(job, threads=10),
    ("boto3", "big"): boto3_big,
    ("boto3", "small"): boto3_small,
    ("obstore", "big"): obstore_big,
    ("obstore", "small"): obstore_small,
}

def main(argv: list[str]) -> int:
    job_path, result_path = argv
    job = Job.load(Path(job_path))
    try:
        transfer = FACTORIES[(job.contender, job.suite)](job)
        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        transfer()
        wall = time.perf_counter() - start
    except Exception as exc:  # noqa: BLE001 - any failure: one line for the harness's table, not a traceback
        print(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}",
              file=sys.stderr)
        return 1
    result = {"transfer_wall": wall, "setup_cpu": before.ru_utime + before.ru_stime, "peak_rss_kib": vm_hwm_kib()}
    Path(result_path).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
