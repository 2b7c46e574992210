"""COS response XML -> the SDK's dicts, without the SDK's ``eval``.

The SDK builds its result with ``Xml2Dict``, prints it, deletes a few namespace URIs from
the printed text and ``eval``s it back. ``xml_to_dict`` builds the same dict directly from
``xml.etree`` (expat): same keys, same nesting, repeated elements as lists, attributes
merged in, text as ``str`` (``None`` for empty elements). The namespaces the SDK deletes
are removed from tag and attribute names only; the SDK also deletes them inside values,
which could alter an object key that happens to contain one."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any, Union
from urllib.parse import unquote

from cosfast.cos_exception import CosClientError

__all__ = ["xml_to_dict", "format_dict", "decode_result", "parse_listing"]

_STRIPPED_NAMESPACES = (
    "{http://www.qcloud.com/document/product/436/7751}",
    "{https://cloud.tencent.com/document/product/436}",
    "{http://doc.s3.amazonaws.com/2006-03-01}",
    "{http://s3.amazonaws.com/doc/2006-03-01/}",
    "{http://www.w3.org/2001/XMLSchema-instance}",
)


_NAMES: dict = {}


def _name(tag: str) -> str:
    """A tag without the namespaces the SDK removes (memoised: a page repeats few tags)."""
    name = _NAMES.get(tag)
    if name is None:
        name = tag
        if tag[0] == "{":
            for ns in _STRIPPED_NAMESPACES:
                if tag.startswith(ns):
                    name = tag[len(ns):]
                    break
        if len(_NAMES) < 4096:
            _NAMES[tag] = name
    return name


def _put(out: dict, key: str, value: Any) -> None:
    """Xml2Dict.updateDict: a repeated key becomes a list, moved to the end of the dict."""
    if key in out:
        old = out.pop(key)
        if type(old) is list:
            old.append(value)
            out[key] = old
        else:
            out[key] = [old, value]
    else:
        out[key] = value


def _attributes(node: ET.Element) -> list:
    return [(_name(k), v) for k, v in node.items()]


def _node_dict(node: ET.Element) -> dict:
    out: dict = {}
    if node.attrib:
        for key, value in _attributes(node):
            _put(out, key, value)
    if len(node) == 0:
        _put(out, _name(node.tag), node.text)
    for child in node:
        if len(child):
            value: Any = _node_dict(child)
        elif child.attrib:
            pairs = _attributes(child)
            if child.text:
                pairs.append((_name(child.tag), child.text))
            value = dict(pairs)
        else:
            value = child.text
        name = _name(child.tag)
        if name in out:
            _put(out, name, value)
        else:
            out[name] = value
    return out


def xml_to_dict(data: Union[bytes, str]) -> dict:
    """The SDK's ``xml_to_dict`` result for a COS response document."""
    try:
        root = ET.fromstring(data)
    except (ET.ParseError, ValueError) as exc:  # ValueError: a str that is not encodable text
        raise CosClientError(f"COS returned a response that is not valid XML: {exc}") from None
    return _node_dict(root)


def format_dict(data: Any, keys: list) -> Any:
    """Make the repeatable fields lists even for one entry (or none) as the SDK does."""
    if not isinstance(data, dict):
        return data
    for key in keys:
        if key in data:
            value = data[key]
            if isinstance(value, (dict, str)):
                data[key] = [value]
            elif value is None:
                data[key] = []
    return data


def decode_result(data: dict, keys: list, nested: list) -> dict:
    """URL-decode the fields COS encodes with encoding-type=url (the SDK's decode_result).
    Only text is decoded: a field a malformed document filled with elements is left as parsed."""
    for key in keys:
        if isinstance(data.get(key), str):
            data[key] = unquote(data[key])
    for outer, inner in nested:
        for item in data.get(outer, ()):
            if isinstance(item, dict) and isinstance(item.get(inner), str):
                item[inner] = unquote(item[inner])
    return data


def parse_listing(data: Union[bytes, str], *, decode: bool) -> dict:
    """A ListBucketResult page as ``list_objects`` returns it."""
    result = format_dict(xml_to_dict(data), ["Contents", "CommonPrefixes"])
    if decode:
        decode_result(result, ["Prefix", "Marker", "NextMarker"],
                      [["Contents", "Key"], ["CommonPrefixes", "Prefix"]])
    return result
