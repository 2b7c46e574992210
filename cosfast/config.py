"""``CosConfig``: the SDK's configuration object, same names, defaults, URLs and errors.

Every parameter of ``qcloud_cos.CosConfig`` is accepted. How each one is used here:

- Region, Endpoint, Domain, IP, Port, Scheme, EnableOldDomain, EnableInternalDomain, Appid:
  URL and Host building exactly as the SDK (``uri``, ``get_host``).
- SecretId/SecretKey (and the old spellings Secret_id/Secret_key, Access_id/Access_key),
  Token, CredentialInstance, Anonymous, SignHost, SignParams: signing as the SDK. A
  CredentialInstance's ``token`` is sent as ``x-cos-security-token`` when no Token is given
  (the SDK forgets it, so its temporary-credential requests fail).
- Timeout: connect timeout, and the time a transfer may move no bytes before it is aborted
  (libcurl's low-speed limit), the two things ``requests`` bounds with one number. Default 30.
- UA, Proxies (``{"http": url, "https": url}``, picked by Scheme), KeepAlive, VerifySSL
  (True/False or a CA bundle path; default: verify against certifi's bundle), SSLCert
  (client certificate path or ``(cert, key)``): transport options.
- PoolConnections, PoolMaxSize: accepted, not needed. cosfast keeps one pool of connections
  per client that grows to the number of requests the client runs at once (the SDK shares
  one process-wide pool capped at 10).
- AllowRedirects: redirects are followed only to the same scheme, host and port, and
  re-signed for the new path; a redirect elsewhere raises ``CosClientError`` rather than
  hand credentials to another host.
- AutoSwitchDomainOnRetry: as the SDK, a retried request to ``*.myqcloud.com`` that got no
  ``x-cos-request-id`` moves to ``*.tencentcos.cn``.
- EndpointCi, EndpointPic, ServiceDomain: formatted and kept as the SDK does; no download
  call uses them.
"""
from __future__ import annotations

from typing import Any, Optional

from cosfast._comm import (
    format_bucket,
    format_endpoint,
    quote_key_path,
    to_unicode,
)
from cosfast.cos_exception import CosClientError

__all__ = ["CosConfig"]

#: The SDK's default when CosConfig(Timeout=None): ``send_request(timeout=30)``.
DEFAULT_TIMEOUT = 30
#: Largest object the SDK sends in one PUT; kept for ``set_copy_part_threshold_size``.
SINGLE_UPLOAD_LENGTH = 5 * 1024 * 1024 * 1024


class CosConfig:
    """User settings; see the module docstring for what each parameter does here."""

    def __init__(self, Appid=None, Region=None, SecretId=None, SecretKey=None, Token=None,
                 CredentialInstance=None, Scheme=None, Timeout=None, Access_id=None,
                 Access_key=None, Secret_id=None, Secret_key=None, Endpoint=None, IP=None,
                 Port=None, Anonymous=None, UA=None, Proxies=None, Domain=None,
                 ServiceDomain=None, KeepAlive=True, PoolConnections=10, PoolMaxSize=10,
                 AllowRedirects=False, SignHost=True, EndpointCi=None, EndpointPic=None,
                 EnableOldDomain=True, EnableInternalDomain=True, SignParams=True,
                 AutoSwitchDomainOnRetry=False, VerifySSL=None, SSLCert=None):
        # Attribute names are the SDK's: scripts reach into client.get_conf()._scheme etc.
        self._appid = to_unicode(Appid)
        self._token = to_unicode(Token)
        self._timeout = Timeout
        self._region = Region
        self._endpoint = Endpoint
        self._endpoint_ci = EndpointCi
        self._endpoint_pic = EndpointPic
        self._ip = to_unicode(IP)
        self._port = Port
        self._anonymous = Anonymous
        self._ua = UA
        self._proxies = Proxies
        self._domain = Domain
        self._service_domain = ServiceDomain
        self._keep_alive = KeepAlive
        self._pool_connections = PoolConnections
        self._pool_maxsize = PoolMaxSize
        self._allow_redirects = AllowRedirects
        self._sign_host = SignHost
        self._copy_part_threshold_size = SINGLE_UPLOAD_LENGTH
        self._enable_old_domain = EnableOldDomain
        self._enable_internal_domain = EnableInternalDomain
        self._sign_params = SignParams
        self._auto_switch_domain_on_retry = AutoSwitchDomainOnRetry
        self._verify_ssl = VerifySSL
        self._ssl_cert = SSLCert
        self._credential_inst = None

        if self._domain is None:
            self._endpoint = format_endpoint(Endpoint, Region, "cos.", EnableOldDomain,
                                             EnableInternalDomain)
        if Scheme is None:
            Scheme = "https"
        Scheme = to_unicode(Scheme)
        if Scheme != "http" and Scheme != "https":
            raise CosClientError("Scheme can be only set to http/https")
        self._scheme = Scheme

        # As the SDK: CI endpoints never use the new domain; EndpointPic is derived from
        # EndpointCi (sic), so both are formatted the same way.
        self._endpoint_ci = format_endpoint(EndpointCi, Region, "ci.", True, False)
        self._endpoint_pic = format_endpoint(EndpointCi, Region, "pic.", True, False)

        if SecretId and SecretKey:
            self._secret_id = self.convert_secret_value(SecretId)
            self._secret_key = self.convert_secret_value(SecretKey)
        elif Secret_id and Secret_key:
            self._secret_id = self.convert_secret_value(Secret_id)
            self._secret_key = self.convert_secret_value(Secret_key)
        elif Access_id and Access_key:
            self._secret_id = self.convert_secret_value(Access_id)
            self._secret_key = self.convert_secret_value(Access_key)
        elif CredentialInstance is not None and all(
            hasattr(CredentialInstance, name) for name in ("secret_id", "secret_key", "token")
        ):
            self._secret_id = None
            self._secret_key = None
            self._credential_inst = CredentialInstance
        elif self._anonymous:
            self._secret_id = None
            self._secret_key = None
        else:
            raise CosClientError("SecretId and SecretKey is Required!")

    def __repr__(self) -> str:
        # Never the SecretKey or Token; the SecretId is an identifier, shown shortened.
        secret_id = self._secret_id
        shown_id = None if secret_id is None else secret_id[:6] + "..."
        return (
            f"CosConfig(Region={self._region!r}, Scheme={self._scheme!r}, "
            f"Endpoint={self._endpoint!r}, Domain={self._domain!r}, IP={self._ip!r}, "
            f"Port={self._port!r}, SecretId={shown_id!r}, Anonymous={self._anonymous!r})"
        )

    def uri(self, bucket=None, path=None, endpoint=None, domain=None, useAppid=False) -> str:
        """The request URL: IP[:Port] beats Domain beats bucket.endpoint."""
        if domain is None:
            domain = self._domain
        if domain is not None:
            url = domain
        else:
            if endpoint is None:
                endpoint = self._endpoint
            if bucket is not None:
                url = f"{format_bucket(bucket, self._appid)}.{endpoint}"
            elif useAppid:
                url = f"{self._appid}.{endpoint}"
            else:
                url = f"{endpoint}"
        if self._ip is not None:
            url = self._ip
            if self._port is not None:
                url = f"{self._ip}:{self._port}"
        if path is None:
            return f"{self._scheme}://{to_unicode(url)}/"
        if not path:
            raise CosClientError("Key is required not empty")
        return f"{self._scheme}://{to_unicode(url)}/{quote_key_path(to_unicode(path))}"

    def get_host(self, Bucket=None, Appid=None) -> Optional[str]:
        """The Host of a bucket (sent explicitly when IP is set)."""
        if Bucket is not None:
            return f"{format_bucket(Bucket, self._appid)}.{self._endpoint}"
        if Appid is not None:
            return f"{Appid}.{self._endpoint}"
        return None

    def set_ip_port(self, IP, Port=None) -> None:
        self._ip = to_unicode(IP)
        self._port = Port

    def set_credential(self, SecretId, SecretKey, Token=None) -> None:
        self._secret_id = self.convert_secret_value(SecretId)
        self._secret_key = self.convert_secret_value(SecretKey)
        self._token = self.convert_secret_value(Token)

    def set_copy_part_threshold_size(self, size) -> None:
        if size > 0:
            self._copy_part_threshold_size = size

    def convert_secret_value(self, value: Any) -> Any:
        value = to_unicode(value)
        if value is None:
            return None
        if value.endswith(" ") or value.startswith(" "):
            raise CosClientError(
                "secret_id and secret_key cannot contain spaces at the beginning and end"
            )
        return value

    # What the transport and the signer read, in one place.

    def credentials(self) -> tuple:
        """(secret_id, secret_key, token) now; a CredentialInstance is asked on every call
        because its keys may rotate."""
        if self._secret_id:
            return self._secret_id, self._secret_key, self._token
        inst = self._credential_inst
        if inst is not None:
            token = self._token if self._token is not None else inst.token
            return inst.secret_id, inst.secret_key, token
        return None, None, self._token

    def timeout(self) -> float:
        return DEFAULT_TIMEOUT if self._timeout is None else self._timeout
