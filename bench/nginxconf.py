"""An nginx configuration that serves a corpus the way COS clients ask for it.

Path-style ``/<bucket>/<key>`` comes straight from the corpus root. Virtual-host requests (the
official SDK configured with ``IP=``/``Port=`` sends ``Host: <bucket>.cos.<region>.myqcloud.com``
and ``/<key>``) are served from ``<root>/<bucket>``. Every object gets COS's
``x-cos-hash-crc64ecma`` header, and ``GET /?prefix=...`` answers List Objects (v1) from
pre-rendered pages chosen by ``max-keys`` and ``marker``, so listing clients work against a plain
sendfile server.

Pages come in chains, one per first-page size in FIRST_PAGE_SIZES: a first page of that many
keys (``max-keys`` of that size, no marker), then pages of PAGE_SIZE keys (``max-keys`` 1000, the
marker the page before gave). COS honours ``max-keys``; serving 1000 keys to a client that asked
for fewer would make its first page cost what COS never charges.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import quote
from xml.sax.saxutils import escape

from bench.corpus import Corpus

PAGE_SIZE = 1000  # COS's default and maximum max-keys
# COS's default, and the small first page of cosfast's download_dir (FIRST_PAGE_KEYS).
FIRST_PAGE_SIZES = (PAGE_SIZE, 100)


def render_config(*, corpus: Corpus, port: int, state_dir: Path, list_dir: Path) -> str:
    bucket = corpus.bucket
    crc_entries = []
    for obj in corpus.objects:
        for uri in (f"/{bucket}/{obj.key}", f"/{obj.key}"):
            crc_entries.append(f'        "{uri}" "{obj.crc64}";')
    page_entries = []
    for first_size, pages in _chains(corpus):
        for number, (max_keys, marker) in enumerate(_page_requests(pages, first_size)):
            for form in {marker, quote(marker, safe="-_.~"), quote(marker, safe="/-_.~")}:
                page_entries.append(f'        "{max_keys}|{form}" "{_page_name(first_size, number)}";')
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
    # $arg_ cannot name "max-keys" (the hyphen ends the variable's name): a regex finds it.
    map $args $list_max_keys {{
        default "{PAGE_SIZE}";
        "~(?:^|&)max-keys=(?<max_keys>[0-9]+)(?:&|$)" $max_keys;
    }}
    map "$list_max_keys|$arg_marker" $list_page {{
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
    """List Objects (v1) pages of the corpus prefix, as COS shapes them (NextMarker when
    truncated), for every chain (see the module docstring)."""
    list_dir.mkdir(parents=True, exist_ok=True)
    entries = {o.key: _contents_entry(o.key, corpus.path(o).stat()) for o in corpus.objects}
    for first_size, pages in _chains(corpus):
        requests = _page_requests(pages, first_size)
        for number, page in enumerate(pages):
            truncated = number < len(pages) - 1
            max_keys, marker = requests[number]
            next_marker = f"<NextMarker>{escape(page[-1].key)}</NextMarker>" if truncated else ""
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult>'
                f"<Name>{corpus.bucket}</Name><EncodingType></EncodingType><Prefix>{escape(corpus.prefix)}</Prefix>"
                f"<Marker>{escape(marker)}</Marker><MaxKeys>{max_keys}</MaxKeys><Delimiter></Delimiter>"
                f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>{next_marker}"
                f"{''.join(entries[o.key] for o in page)}</ListBucketResult>"
            )
            (list_dir / _page_name(first_size, number)).write_text(body)


def _chains(corpus: Corpus) -> list[tuple[int, list[list]]]:
    """(first-page size, its pages) for every chain: the objects in key order, ``first_size`` of
    them, then PAGE_SIZE at a time."""
    objects = sorted(corpus.objects, key=lambda o: o.key)
    return [(first_size, [objects[:first_size]] +
             [objects[i:i + PAGE_SIZE] for i in range(first_size, len(objects), PAGE_SIZE)])
            for first_size in FIRST_PAGE_SIZES]


def _page_name(first_size: int, number: int) -> str:
    return f"page-{first_size}-{number}.xml"


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


def _page_requests(pages: list[list], first_size: int) -> list[tuple[int, str]]:
    """(max-keys, marker) that ask for each page of a chain: no marker for the first, then the
    last key of the page before."""
    return [(first_size, "")] + [(PAGE_SIZE, page[-1].key) for page in pages[:-1]]
