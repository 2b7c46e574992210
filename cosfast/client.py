"""``CosS3Client``: the download half of the SDK's client, on pycurl.

Same method names, parameters, defaults, response dicts and exceptions as
``qcloud_cos.CosS3Client`` for get_object, head_object, object_exists, list_objects,
get_auth, get_presigned_url, get_presigned_download_url and get_object_url. Differences
are where the SDK fails: malformed Range, TrafficLimit, key or argument types are refused
with a CosClientError before any request; a broken body is resumed (see StreamBody).
cosfast only: ``download_dir`` (every object under a prefix, on one shared engine)."""
from __future__ import annotations

import logging
from typing import Any, Callable, Optional
from urllib.parse import parse_qsl, unquote, urlencode, urljoin, urlsplit

from cosfast._comm import (
    check_key,
    format_bucket,
    is_switchable_host,
    path_simplify_check,
    switch_hostname_for_url,
)
from cosfast.auth import SignInput, authorization
from cosfast.cos_exception import CosClientError, CosServiceError
from cosfast.download_dir import download_dir
from cosfast.download_file import download_file
from cosfast.errors import service_error
from cosfast.kwargs import check_download_headers, mapped, split_object_kwargs
from cosfast.request import PreparedRequest, RequestSpec, prepare_request
from cosfast.streambody import StreamBody
from cosfast.transfer.retry import RetryPolicy
from cosfast.transport import ERROR_BODY_LIMIT, Exchange, Transport
from cosfast.xmldict import parse_listing

__all__ = ["CosS3Client"]

logger = logging.getLogger(__name__)

# A listing page is ~1 KB per key at most; anything this large is not a listing.
_LISTING_LIMIT = 64 * 1024 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5


def _never(url: str) -> bool:
    return False


class CosS3Client:
    """A COS client; ``retry`` is the number of retries after the first attempt.

    ``session`` (a requests.Session in the SDK) is accepted and unused: cosfast does not
    use requests. ``retry_policy`` (cosfast only) replaces the backoff schedule."""

    def __init__(self, conf: Any, retry: int = 3, session: Any = None, *,
                 retry_policy: Optional[RetryPolicy] = None) -> None:
        self._conf = conf
        self._retry = retry
        self._session = session
        self._retry_policy = retry_policy or RetryPolicy(max_attempts=retry + 1)
        self._transport = Transport(conf, self._retry_policy)

    def __repr__(self) -> str:
        return f"CosS3Client({self._conf!r})"

    def get_conf(self) -> Any:
        return self._conf

    # -- signing ------------------------------------------------------------------------

    def get_auth(self, Method, Bucket, Key, Expired=300, Headers=None, Params=None,
                 SignHost=None, UseCiEndPoint=False) -> str:
        """The Authorization value the SDK's get_auth returns for these arguments."""
        headers = Headers or {}
        params = Params or {}
        endpoint = self._conf._endpoint_ci if UseCiEndPoint else None
        url = self._conf.uri(bucket=Bucket, path=Key, endpoint=endpoint)
        if self._conf._anonymous:
            return ""
        secret_id, secret_key, _token = self._conf.credentials()
        sign_host = self._conf._sign_host if SignHost is None else bool(SignHost)
        return authorization(
            SignInput(method=Method, key=Key, headers=headers, params=params,
                      url_host=urlsplit(url).hostname, expire=Expired, sign_host=sign_host,
                      sign_params=self._conf._sign_params),
            secret_id, secret_key,
        )

    def get_presigned_url(self, Bucket, Key, Method, Expired=300, Params=None, Headers=None,
                          UseCiEndPoint=False, SignHost=None) -> str:
        params = Params or {}
        endpoint = self._conf._endpoint_ci if UseCiEndPoint else None
        url = self._conf.uri(bucket=Bucket, path=Key, endpoint=endpoint)
        sign = self.get_auth(Method=Method, Bucket=Bucket, Key=Key, Expired=Expired,
                             Headers=Headers, Params=params, SignHost=SignHost,
                             UseCiEndPoint=UseCiEndPoint)
        query = [urlencode(dict(item.split("=", 1) for item in sign.split("&")))] if sign else []
        if params:
            query.append(urlencode(params))
        return url + "?" + "&".join(query) if query else url

    def get_presigned_download_url(self, Bucket, Key, Expired=300, Params=None, Headers=None,
                                   UseCiEndPoint=False, SignHost=None) -> str:
        return self.get_presigned_url(Bucket, Key, "GET", Expired, Params, Headers,
                                      UseCiEndPoint, SignHost)

    def get_object_url(self, Bucket, Key) -> str:
        return self._conf.uri(bucket=Bucket, path=Key)

    # -- requests -----------------------------------------------------------------------

    def _spec(self, method: str, bucket: str, key: Optional[str], headers: dict,
              params: dict, url: str) -> RequestSpec:
        return RequestSpec(method=method, url=url, key=key, headers=headers, params=params,
                           host=self._conf.get_host(Bucket=bucket) if self._conf._ip else None)

    def _open(self, method: str, bucket: str, key: Optional[str], headers: dict,
              params: dict) -> Exchange:
        """Send a request (with retries and redirects as configured); return the exchange
        of a successful (< 400) response, or raise the SDK's CosServiceError."""
        format_bucket(bucket, self._conf._appid)  # None would silently mean "no bucket"
        url = self._conf.uri(bucket=bucket, path=key)
        switchable = is_switchable_host if self._conf._auto_switch_domain_on_retry else _never
        for _hop in range(_MAX_REDIRECTS + 1):
            spec = self._spec(method, bucket, key, headers, params, url)

            def build(switch_host: bool, spec: RequestSpec = spec) -> PreparedRequest:
                if switch_host:
                    spec = RequestSpec(**{**spec.__dict__,
                                          "url": switch_hostname_for_url(spec.url)})
                return prepare_request(self._conf, spec)

            exchange = self._transport.open(build, head=method == "HEAD", switchable=switchable)
            target = self._redirect_target(exchange, url)
            if target is None:
                self._raise_for_status(exchange, method, url)
                return exchange
            exchange.drain()
            url, key, params = target
        raise CosClientError(f"{method} {url}: more than {_MAX_REDIRECTS} redirects")

    def _redirect_target(self, exchange: Exchange, url: str) -> Optional[tuple]:
        """(url, key, params) to follow when AllowRedirects is on and the response is a
        redirect to the same scheme, host and port; refuses other hosts."""
        if not self._conf._allow_redirects or exchange.status not in _REDIRECTS:
            return None
        location = exchange.header("Location")
        if not location:
            return None
        target = urlsplit(urljoin(url, location))
        here = urlsplit(url)
        if (target.scheme, target.hostname, target.port) != (here.scheme, here.hostname,
                                                              here.port):
            exchange.close()
            raise CosClientError(
                f"redirect from {here.scheme}://{here.netloc} to {target.scheme}://"
                f"{target.netloc} not followed: it would send credentials to another host"
            )
        new_url = f"{target.scheme}://{target.netloc}{target.path}"
        key = unquote(target.path) if target.path not in ("", "/") else None
        return new_url, key, dict(parse_qsl(target.query, keep_blank_values=True))

    @staticmethod
    def _raise_for_status(exchange: Exchange, method: str, url: str) -> None:
        if exchange.status < 400:
            return
        body = b"" if method == "HEAD" else exchange.read_all(ERROR_BODY_LIMIT)
        exchange.drain()
        raise service_error(method, url, exchange.status, exchange.headers, body)

    # -- objects ------------------------------------------------------------------------

    def get_object(self, Bucket, Key, KeySimplifyCheck=True, **kwargs) -> dict:
        """Download an object: its response headers as sent, plus 'Body' (a StreamBody)."""
        headers, params = split_object_kwargs(kwargs)
        check_download_headers(headers)
        key = check_key(Key)
        if KeySimplifyCheck:
            path_simplify_check(key)
        exchange = self._open("GET", Bucket, key, headers, params)
        response = dict(exchange.headers)
        response["Body"] = StreamBody(exchange, self._resumer(Bucket, key, headers, params),
                                      policy=self._retry_policy)
        return response

    def _resumer(self, bucket: str, key: str, headers: dict,
                 params: dict) -> Callable[[int, Optional[int], str], Exchange]:
        """How a StreamBody re-requests the rest of a broken body: the same request with
        ``Range: bytes=first-last`` and ``If-Match`` pinned to the ETag already received
        (the caller's own conditions and range were met by the first response)."""
        kept = {name: value for name, value in headers.items()
                if name.lower() not in ("range", "if-match", "if-none-match",
                                        "if-modified-since", "if-unmodified-since")}

        def reopen(first: int, last: Optional[int], etag: str) -> Exchange:
            wanted = dict(kept)
            wanted["Range"] = f"bytes={first}-{'' if last is None else last}"
            wanted["If-Match"] = etag
            return self._open("GET", bucket, key, wanted, params)

        return reopen

    def download_file(self, Bucket, Key, DestFilePath, PartSize=20, MAXThread=5, EnableCRC=False,
                      progress_callback=None, DumpRecordDir=None, KeySimplifyCheck=True,
                      DisableTempDestFilePath=False, MaxPartCount=10000, *, Fsync=False,
                      DirectIO=None, KeepPageCache=None, **Kwargs) -> None:
        """Download an object to a file: parts of PartSize MiB over MAXThread connections, each
        pinned to the ETag seen by HEAD, CRC-64 verified before the file is renamed into place,
        resumable after a crash. ``Fsync=True`` (cosfast only) makes the file and its resume
        records durable before they are published; ``DirectIO`` (cosfast only): whether parts
        are written with O_DIRECT (None: while the disk keeps up); ``KeepPageCache`` (cosfast
        only): whether the file's pages stay in the page cache (None: decided by the machine).
        See cosfast/download_file.py."""
        download_file(self, Bucket, Key, DestFilePath, PartSize, MAXThread, EnableCRC,
                      progress_callback, DumpRecordDir, KeySimplifyCheck,
                      DisableTempDestFilePath, MaxPartCount, Fsync=Fsync, DirectIO=DirectIO,
                      KeepPageCache=KeepPageCache, **Kwargs)

    def head_object(self, Bucket, Key, **kwargs) -> dict:
        """An object's metadata: the HEAD response headers as sent."""
        headers, params = split_object_kwargs(kwargs)
        key = check_key(Key)
        exchange = self._open("HEAD", Bucket, key, headers, params)
        exchange.drain()
        return dict(exchange.headers)

    def object_exists(self, Bucket, Key) -> bool:
        try:
            self.head_object(Bucket, Key)
            return True
        except CosServiceError as e:
            if e.get_status_code() == 404:
                return False
            raise

    def list_objects(self, Bucket, Prefix="", Delimiter="", Marker="", MaxKeys=1000,
                     EncodingType="", **kwargs) -> dict:
        """One page of a bucket listing, shaped as the SDK's (Contents and CommonPrefixes
        always lists; keys and prefixes URL-decoded unless EncodingType='url')."""
        headers = mapped(kwargs)
        for name, value in (("Prefix", Prefix), ("Delimiter", Delimiter), ("Marker", Marker)):
            if not isinstance(value, str):
                raise CosClientError(f"{name} must be a string, got {type(value).__name__}")
        if isinstance(MaxKeys, bool) or not isinstance(MaxKeys, (int, str)) or \
                not str(MaxKeys).isdigit():
            raise CosClientError(f"MaxKeys must be a non-negative integer, got {MaxKeys!r}")
        params = {"prefix": Prefix, "delimiter": Delimiter, "marker": Marker,
                  "max-keys": str(MaxKeys)}
        decode = True
        if EncodingType:
            if EncodingType != "url":
                raise CosClientError("EncodingType must be url")
            decode = False
        params["encoding-type"] = "url"
        exchange = self._open("GET", Bucket, None, headers, params)
        body = exchange.read_all(_LISTING_LIMIT + 1)
        exchange.close()
        if len(body) > _LISTING_LIMIT:
            raise CosClientError("list_objects: the response is larger than any listing page")
        return parse_listing(body, decode=decode)

    def download_dir(self, Bucket, Prefix, LocalDir, *, Include=(), Exclude=(), SkipUnchanged=True,
                     PartSize=20, MAXThread=16, EnableCRC=False, MaxKeys=1000, DumpRecordDir=None,
                     progress_callback=None, object_callback=None, **Kwargs):
        """Downloads every object under ``Prefix`` into the folder ``LocalDir`` (cosfast only):
        listing in the background, all objects on one set of MAXThread kept-alive connections,
        each file verified and renamed into place, unchanged files skipped, unsafe keys refused.
        Returns a BatchSummary. See cosfast/download_dir.py for every option."""
        return download_dir(self, Bucket, Prefix, LocalDir, Include=Include, Exclude=Exclude,
                            SkipUnchanged=SkipUnchanged, PartSize=PartSize, MAXThread=MAXThread,
                            EnableCRC=EnableCRC, MaxKeys=MaxKeys, DumpRecordDir=DumpRecordDir,
                            progress_callback=progress_callback, object_callback=object_callback,
                            **Kwargs)
