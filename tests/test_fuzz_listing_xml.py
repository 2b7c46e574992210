"""Fuzzing the listing parser (cosfast/xmldict.py): any response body gives the SDK-shaped dict
or a CosClientError, never another exception; a well-formed listing keeps its keys."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import quote

import pytest
from fuzz_strategies import FUZZ, any_document, xml_text
from hypothesis import given
from hypothesis import strategies as st

from cosfast.cos_exception import CosClientError
from cosfast.xmldict import parse_listing, xml_to_dict


@FUZZ
@given(any_document)
def test_xml_to_dict_gives_a_dict_or_a_client_error(data):
    try:
        result = xml_to_dict(data)
    except CosClientError:
        return
    assert isinstance(result, dict)


@FUZZ
@given(any_document, st.booleans())
def test_parse_listing_gives_lists_or_a_client_error(data, decode):
    try:
        result = parse_listing(data, decode=decode)
    except CosClientError:
        return
    assert isinstance(result, dict)
    for name in ("Contents", "CommonPrefixes"):
        assert name not in result or isinstance(result[name], list)


def listing(keys: list, prefixes: list, *, encode: bool) -> bytes:
    root = ET.Element("ListBucketResult")
    ET.SubElement(root, "Name").text = "b-1250000000"
    ET.SubElement(root, "EncodingType").text = "url"
    for key in keys:
        contents = ET.SubElement(root, "Contents")
        ET.SubElement(contents, "Key").text = quote(key, safe="/") if encode else key
        ET.SubElement(contents, "Size").text = "1"
    for prefix in prefixes:
        ET.SubElement(ET.SubElement(root, "CommonPrefixes"), "Prefix").text = quote(prefix, safe="/")
    return ET.tostring(root, encoding="utf-8")


@FUZZ
@given(st.lists(xml_text.filter(bool), max_size=5), st.lists(xml_text.filter(bool), max_size=3))
def test_url_encoded_keys_come_back_as_they_were(keys, prefixes):
    result = parse_listing(listing(keys, prefixes, encode=True), decode=True)
    assert [entry["Key"] for entry in result.get("Contents", [])] == keys
    assert [entry["Prefix"] for entry in result.get("CommonPrefixes", [])] == prefixes


@pytest.mark.parametrize("body", [
    b"<ListBucketResult><Prefix><a/>x</Prefix></ListBucketResult>",
    b"<ListBucketResult><Contents><Key><a>1</a></Key></Contents></ListBucketResult>",
    b"<ListBucketResult><CommonPrefixes><Prefix><p/></Prefix></CommonPrefixes></ListBucketResult>",
])
def test_nested_elements_where_text_belongs_are_left_undecoded(body):
    # Found by fuzzing: decode_result called unquote() on a dict (AttributeError).
    parse_listing(body, decode=True)


def test_text_with_lone_surrogates_is_a_client_error():
    # Found by fuzzing: a str that cannot be encoded escaped as UnicodeEncodeError.
    with pytest.raises(CosClientError):
        xml_to_dict("<a>\ud800</a>")
