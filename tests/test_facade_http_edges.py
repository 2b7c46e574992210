"""HTTP edges the emulator does not play: redirects (not followed by default, as the SDK; with
AllowRedirects only to the same scheme, host and port, signed again; never to another host)
and proxies (a recording server stands in for the proxy)."""
from __future__ import annotations

import http.server
import threading
from typing import Iterator

import pytest
import qcloud_cos

import cosfast
from cosfast import CosClientError

pytestmark = pytest.mark.timeout(30)


class _Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.server.seen.append((self.path, self.headers.get("Authorization")))
        if self.path.startswith("http://"):  # a proxy's request line: the absolute URL
            self._answer(200, b"via proxy", {})
        elif self.path == "/moved":
            self._answer(302, b"", {"Location": "/target%20file?versionId=v1"})
        elif self.path == "/away":
            self._answer(302, b"", {"Location": self.server.elsewhere})
        else:
            self._answer(200, b"at " + self.path.encode(), {})

    def _answer(self, status: int, body: bytes, headers: dict) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def servers() -> Iterator[tuple]:
    started = []
    for _ in range(2):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
        server.seen = []
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        started.append(server)
    home, other = started
    home.elsewhere = f"http://localhost:{other.server_address[1]}/stolen"
    yield home, other
    for server in started:
        server.shutdown()
        server.server_close()


def _config(module, server, **extra):
    return module.CosConfig(Region="ap-x", SecretId="AKIDid", SecretKey="key", Scheme="http",
                            IP="127.0.0.1", Port=server.server_address[1], **extra)


def test_not_followed_by_default_like_the_sdk(servers):
    home, _other = servers
    theirs = qcloud_cos.CosS3Client(_config(qcloud_cos, home), retry=0).get_object("b-1", "moved")
    ours = cosfast.CosS3Client(_config(cosfast, home), retry=0).get_object("b-1", "moved")
    assert ours["Location"] == theirs["Location"] == "/target%20file?versionId=v1"
    assert set(ours) == set(theirs)
    assert ours["Body"].read() == b""
    assert not theirs["Body"].read()  # the SDK returns "" here, cosfast b""


def test_same_host_redirect_is_followed_and_signed_again(servers):
    home, _other = servers
    client = cosfast.CosS3Client(_config(cosfast, home, AllowRedirects=True), retry=0)
    got = client.get_object("b-1", "moved")
    assert got["Body"].read(100) == b"at /target%20file?versionId=v1"
    (first_path, first_auth), (second_path, second_auth) = home.seen
    assert (first_path, second_path) == ("/moved", "/target%20file?versionId=v1")
    assert second_auth and second_auth != first_auth
    assert "q-url-param-list=versionid" in second_auth


def test_redirect_to_another_host_is_refused(servers):
    home, other = servers
    client = cosfast.CosS3Client(_config(cosfast, home, AllowRedirects=True, Token="secret-token"),
                                 retry=0)
    with pytest.raises(CosClientError, match="not followed") as info:
        client.get_object("b-1", "away")
    assert "secret-token" not in str(info.value)
    assert other.seen == []


@pytest.mark.parametrize("module", [qcloud_cos, cosfast], ids=["qcloud_cos", "cosfast"])
def test_proxies_are_used(servers, module):
    home, proxy = servers
    config = module.CosConfig(Region="ap-x", SecretId="AKIDid", SecretKey="key", Scheme="http",
                              Proxies={"http": f"http://127.0.0.1:{proxy.server_address[1]}"})
    got = module.CosS3Client(config, retry=0).get_object("b-1250000000", "k")
    assert got["Body"].read(100) == b"via proxy"
    assert proxy.seen[0][0] == "http://b-1250000000.cos.ap-x.myqcloud.com/k"
    assert home.seen == []
