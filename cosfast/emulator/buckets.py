"""Bucket and service requests: GET Bucket (list), HEAD/PUT/DELETE Bucket, GET Service."""

from __future__ import annotations

import time
from xml.sax.saxutils import escape

from aiohttp import web

from cosfast.emulator.errors import CosError
from cosfast.emulator.faults import BEFORE_KINDS, FaultSet, answer_before, listing_candidate
from cosfast.emulator.listing import ListPage, list_page, listing_xml, parse_list_query
from cosfast.emulator.requestlog import RequestRecord
from cosfast.emulator.storage import Storage

XML = "application/xml"
# Sub-resources (?acl, ?versioning, ?uploads, ...) of buckets the emulator does not implement.
_LIST_PARAMS = {"prefix", "delimiter", "marker", "max-keys", "encoding-type"}


class BucketHandlers:
    def __init__(self, storage: Storage, faults: FaultSet, region: str) -> None:
        self.storage = storage
        self.faults = faults
        self.region = region

    async def dispatch(
        self, method: str, bucket: str, query: dict, record: RequestRecord
    ) -> web.StreamResponse:
        extra = set(query) - _LIST_PARAMS
        if extra:
            raise CosError(
                "NotImplemented", f"bucket sub-resource {sorted(extra)[0]!r} is not emulated"
            )
        if method == "GET":
            return await self.list_objects(bucket, query, record)
        if method == "HEAD":
            self.storage.bucket(bucket)
            return web.Response(status=200, headers={"x-cos-bucket-region": self.region})
        if method == "PUT":
            self.storage.create_bucket(bucket, exist_ok=False)
            return web.Response(status=200)
        if method == "DELETE":
            self.storage.delete_bucket(bucket)
            return web.Response(status=204)
        raise CosError("MethodNotAllowed")

    async def list_objects(self, bucket: str, query: dict, record: RequestRecord) -> web.Response:
        q = parse_list_query(query)
        faults = self.faults.select(listing_candidate(bucket, q.marker), BEFORE_KINDS)
        record.faults += [fault.kind for fault in faults]
        answered = await answer_before(faults)
        if answered is not None:
            return answered
        page, infos = self.storage.listing(bucket, lambda keys: list_page(keys, q), ListPage.keys)
        owner = bucket.rsplit("-", 1)[-1]
        body = listing_xml(bucket, q, page, infos.__getitem__, owner)
        return web.Response(body=body, content_type=XML)

    def list_buckets(self) -> web.Response:
        items = []
        for name in self.storage.bucket_names():
            created = time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.storage.bucket(name).created)
            )
            items.append(
                f"\t\t<Bucket>\n\t\t\t<Name>{escape(name)}</Name>\n"
                f"\t\t\t<Location>{escape(self.region)}</Location>\n"
                f"\t\t\t<CreationDate>{created}</CreationDate>\n\t\t</Bucket>\n"
            )
        body = (
            "<?xml version='1.0' encoding='utf-8' ?>\n<ListAllMyBucketsResult>\n"
            "\t<Owner>\n\t\t<ID>qcs::cam::uin/100000000001:uin/100000000001</ID>\n"
            "\t\t<DisplayName>100000000001</DisplayName>\n\t</Owner>\n"
            f"\t<Buckets>\n{''.join(items)}\t</Buckets>\n</ListAllMyBucketsResult>\n"
        )
        return web.Response(body=body.encode(), content_type=XML)
