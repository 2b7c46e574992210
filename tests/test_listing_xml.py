"""list_objects result parsing against the SDK's xml_to_dict (+ format_dict, decode_result)."""
from __future__ import annotations

import pytest
from qcloud_cos import cos_comm

from cosfast import CosClientError
from cosfast.xmldict import parse_listing, xml_to_dict
from tests.listing_docs import SAMPLES


def sdk_listing(doc: bytes, decode: bool) -> dict:
    data = cos_comm.xml_to_dict(doc)
    cos_comm.format_dict(data, ["Contents", "CommonPrefixes"])
    if decode:
        cos_comm.decode_result(data, ["Prefix", "Marker", "NextMarker"],
                               [["Contents", "Key"], ["CommonPrefixes", "Prefix"]])
    return data


@pytest.mark.parametrize("name", sorted(SAMPLES))
@pytest.mark.parametrize("decode", [True, False])
def test_same_result_as_sdk(name, decode):
    doc = SAMPLES[name].encode("utf-8")
    ours = parse_listing(doc, decode=decode)
    theirs = sdk_listing(doc, decode)
    assert ours == theirs
    assert list(ours) == list(theirs)  # same key order, as printed by json.dumps


def test_lists_even_for_one_entry():
    result = parse_listing(SAMPLES["one"].encode(), decode=True)
    assert isinstance(result["Contents"], list) and len(result["Contents"]) == 1
    assert result["Contents"][0]["Key"] == "only.txt"
    assert result["Contents"][0]["Owner"] == {"ID": "1250000000", "DisplayName": "1250000000"}
    assert parse_listing(SAMPLES["empty"].encode(), decode=True).get("Contents") is None
    assert parse_listing(SAMPLES["one_prefix"].encode(), decode=True)["CommonPrefixes"] == \
        [{"Prefix": "only/"}]


def test_attributes_and_leaf_attributes_like_sdk():
    doc = (b'<R xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" a="1">'
           b'<Grantee xsi:type="Group"><URI>u</URI></Grantee><Leaf t="x">v</Leaf>'
           b'<Leaf t="y"/><E/></R>')
    assert xml_to_dict(doc) == cos_comm.xml_to_dict(doc)


def test_values_are_data_not_code():
    # The SDK evals its printed dict; a key shaped like Python must stay a string here.
    doc = b"<R><Key>__import__('os').system('false')</Key><K2>{'a': 1}</K2></R>"
    assert xml_to_dict(doc) == {"Key": "__import__('os').system('false')", "K2": "{'a': 1}"}


def test_malformed_document_is_a_client_error():
    with pytest.raises(CosClientError, match="not valid XML"):
        parse_listing(b"<ListBucketResult><Contents>", decode=True)
