"""hypothesis strategies shared by the fuzz tests: XML documents shaped like COS's answers
(and broken ones), header values, JSON values."""
from __future__ import annotations

import encodings.aliases
import os
import xml.etree.ElementTree as ET

from hypothesis import settings
from hypothesis import strategies as st

# Examples per fuzz test: few in the suite (seconds), many for a deep run
# (COSFAST_FUZZ_EXAMPLES=20000 python3 -m pytest tests/test_fuzz_*.py).
FUZZ = settings(max_examples=int(os.environ.get("COSFAST_FUZZ_EXAMPLES", "100")), deadline=None)

# Tags COS's error and listing documents use, plus a few strangers.
COS_TAGS = ["Error", "Code", "Message", "Resource", "RequestId", "TraceId", "ListBucketResult",
            "Name", "Prefix", "Marker", "NextMarker", "MaxKeys", "Delimiter", "IsTruncated",
            "EncodingType", "Contents", "Key", "LastModified", "ETag", "Size", "Owner", "ID",
            "DisplayName", "StorageClass", "CommonPrefixes", "x", "y"]
NAMESPACES = ["", "{http://www.qcloud.com/document/product/436/7751}",
              "{http://s3.amazonaws.com/doc/2006-03-01/}", "{urn:other}"]

# Characters XML 1.0 allows in text (ElementTree does not check what it writes), with the
# ones that need escaping and URL-encoding drawn often.
xml_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xD7FF) | st.sampled_from("\t\n&<>\"'%2F"),
                   max_size=20)
tags = st.builds(lambda ns, tag: ns + tag, st.sampled_from(NAMESPACES), st.sampled_from(COS_TAGS))


@st.composite
def elements(draw, depth: int = 0) -> ET.Element:
    element = ET.Element(draw(tags))
    for name in draw(st.lists(st.sampled_from(["a", "Key", "xsi:type"]), max_size=2, unique=True)):
        if ":" not in name:
            element.set(name, draw(xml_text))
    if depth < 3:
        for child in draw(st.lists(elements(depth=depth + 1), max_size=3)):
            element.append(child)
    if draw(st.booleans()):
        element.text = draw(xml_text)
    return element


@st.composite
def xml_documents(draw) -> bytes:
    """A well-formed document of COS-like tags, sometimes cut short or with a stray byte."""
    body = ET.tostring(draw(elements()), encoding="utf-8")
    damage = draw(st.sampled_from(["none", "none", "cut", "byte"]))
    if damage == "cut" and body:
        body = body[: draw(st.integers(0, len(body) - 1))]
    elif damage == "byte" and body:
        at = draw(st.integers(0, len(body) - 1))
        body = body[:at] + bytes([draw(st.integers(0, 255))]) + body[at + 1:]
    return body


any_document = st.one_of(xml_documents(), st.binary(max_size=300), st.text(max_size=200))

charsets = st.one_of(st.sampled_from(sorted(set(encodings.aliases.aliases.values()))
                                     + ["idna", "punycode", "rot13", "hex", "base64", "bogus", ""]),
                     st.text(max_size=12))

# Header values as libcurl hands them over: any byte but CR/LF, decoded as ISO-8859-1.
header_values = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")
                                           .decode("latin-1"))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
