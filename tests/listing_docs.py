"""Sample ListBucketResult documents in the shapes COS sends."""
from __future__ import annotations

from urllib.parse import quote

NS = "http://www.qcloud.com/document/product/436/7751"


def contents(key: str, size: int = 10, etag: str = '"d41d8cd98f00b204e9800998ecf8427e"') -> str:
    etag_xml = etag.replace('"', "&quot;")
    return (
        f"<Contents><Key>{quote(key, safe='')}</Key>"
        f"<LastModified>2024-01-02T03:04:05.000Z</LastModified>"
        f"<ETag>{etag_xml}</ETag><Size>{size}</Size>"
        "<Owner><ID>1250000000</ID><DisplayName>1250000000</DisplayName></Owner>"
        "<StorageClass>STANDARD</StorageClass></Contents>"
    )


def listing(keys=(), prefixes=(), *, prefix="", marker="", next_marker=None, truncated=False,
            ns=NS, delimiter=None) -> str:
    parts = [f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="{ns}">'
             if ns else '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult>',
             "<Name>examplebucket-1250000000</Name><EncodingType>url</EncodingType>",
             f"<Prefix>{quote(prefix, safe='')}</Prefix>" if prefix else "<Prefix/>",
             f"<Marker>{quote(marker, safe='')}</Marker>" if marker else "<Marker/>",
             "<MaxKeys>1000</MaxKeys>"]
    if delimiter is not None:
        parts.append(f"<Delimiter>{quote(delimiter, safe='')}</Delimiter>")
    parts.append(f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>")
    if next_marker is not None:
        parts.append(f"<NextMarker>{quote(next_marker, safe='')}</NextMarker>")
    parts.extend(contents(k) for k in keys)
    parts.extend(f"<CommonPrefixes><Prefix>{quote(p, safe='')}</Prefix></CommonPrefixes>"
                 for p in prefixes)
    parts.append("</ListBucketResult>")
    return "".join(parts)


SAMPLES = {
    "empty": listing(),
    "one": listing(["only.txt"]),
    "two": listing(["a", "b"]),
    "unicode_and_odd": listing(["中文/文件 名.txt", "a+b c", "100%", "x&y<z>", "q?x=1#f"],
                               prefixes=["dir 1/"], prefix="", delimiter="/"),
    "one_prefix": listing([], prefixes=["only/"], delimiter="/"),
    "truncated": listing([f"k{i:04d}" for i in range(5)], truncated=True, next_marker="k0004",
                         marker="a b"),
    "no_namespace": listing(["n"], ns=None),
    "s3_namespace": listing(["s"], ns="http://s3.amazonaws.com/doc/2006-03-01/"),
    "other_namespace": listing(["o"], ns="urn:other"),
    "page_1000": listing([f"dir/{i:06d}/文件-{i}.bin" for i in range(1000)], truncated=True,
                         next_marker="dir/000999"),
}
