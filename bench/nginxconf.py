"""An nginx configuration that serves a corpus the way COS clients ask for it.

Path-style ``/<bucket>/<key>`` comes straight from the corpus root. Virtual-host requests (the
official SDK configured with ``IP=``/``Port=`` sends ``Host: <bucket>.cos.<region>.myqcloud.com``
and ``/<key>``) are served from ``<root>/<bucket>``. Every object gets COS's
``x-cos-hash-crc64ecma`` header, and ``GET /?prefix=...`` answers List Objects (v1) from
pre-rendered pages chosen by ``marker``, so listing clients work against a plain sendfile server.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import quote
from xml.sax.saxutils import escape

from bench.corpus import Corpus

PAGE_SIZE = 1000  # COS's default and maximum max-keys


def render_config(*, corpus: Corpus, port: int, state_dir: Path, list_dir: Path) -> str:
    bucket = corpus.bucket
    crc_entries = []
    for obj in corpus.objects:
        for uri in (f"/{bucket}/{obj.key}", f"/{obj.key}"):
            crc_entries.append(f'        "{uri}" "{obj.crc64}";')
    page_entries = []
    for number, marker in enumerate(_page_markers(corpus)):
        for form in {marker, quote(marker, safe="-_.~"), quote(marker, safe="/-_.~")}:
            page_entries.append(f'        "{form}" "page-{number}.xml";')
    temp = state_dir / "tmp"
    return f"""
worker_processes 1;
daemon off;
pid {state_dir}/nginx.pid;
error_log {state_dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 120;
    default_type application/octet-stream;
    types {{ }}
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    map_hash_max_size {max(1024, 4 * len(crc_entries))};
    map_hash_bucket_size 256;
    map $uri $cos_crc64 {{
        default "";
{chr(10).join(crc_entries)}
    }}
    map $arg_marker $list_page {{
        default "no-such-page";
{chr(10).join(page_entries)}
    }}
    add_header x-cos-hash-crc64ecma $cos_crc64;
    server {{
        listen 127.0.0.1:{port} default_server;
        server_name _;
        root {corpus.root};
        location = /{bucket} {{ root {list_dir}; default_type application/xml; try_files /$list_page =404; }}
        location = /{bucket}/ {{ root {list_dir}; default_type application/xml; try_files /$list_page =404; }}
    }}
    server {{
        listen 127.0.0.1:{port};
        server_name {bucket}.cos.*;
        root {corpus.root / bucket};
        location = / {{ root {list_dir}; default_type application/xml; try_files /$list_page =404; }}
    }}
}}
"""


def write_list_pages(corpus: Corpus, list_dir: Path) -> None:
    """List Objects (v1) pages of the corpus prefix, as COS shapes them (NextMarker when truncated)."""
    list_dir.mkdir(parents=True, exist_ok=True)
    objects = sorted(corpus.objects, key=lambda o: o.key)
    pages = [objects[i:i + PAGE_SIZE] for i in range(0, len(objects), PAGE_SIZE)] or [[]]
    for number, page in enumerate(pages):
        truncated = number < len(pages) - 1
        contents = "".join(_contents_entry(o.key, corpus.path(o).stat()) for o in page)
        next_marker = f"<NextMarker>{escape(page[-1].key)}</NextMarker>" if truncated else ""
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult>'
            f"<Name>{corpus.bucket}</Name><EncodingType></EncodingType><Prefix>{escape(corpus.prefix)}</Prefix>"
            f"<Marker></Marker><MaxKeys>{PAGE_SIZE}</MaxKeys><Delimiter></Delimiter>"
            f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>{next_marker}{contents}"
            "</ListBucketResult>"
        )
        (list_dir / f"page-{number}.xml").write_text(body)


def _contents_entry(key: str, stat: os.stat_result) -> str:
    """One listed object, with the ETag and Last-Modified nginx itself sends for the file."""
    mtime = int(stat.st_mtime)
    modified = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(mtime))
    return (
        f"<Contents><Key>{escape(key)}</Key><LastModified>{modified}</LastModified>"
        f'<ETag>"{mtime:x}-{stat.st_size:x}"</ETag><Size>{stat.st_size}</Size>'
        "<Owner><ID>1250000000</ID><DisplayName>1250000000</DisplayName></Owner>"
        "<StorageClass>STANDARD</StorageClass></Contents>"
    )


def _page_markers(corpus: Corpus) -> list[str]:
    """The marker that asks for each page: empty for the first, then the last key of the one before."""
    keys = sorted(o.key for o in corpus.objects)
    return [""] + [keys[i - 1] for i in range(PAGE_SIZE, len(keys), PAGE_SIZE)]
