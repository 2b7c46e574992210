"""Security pass: secrets never leave the process in logs, reprs or exception texts; TLS is
verified by default, on the facade's requests and on download_file's parts alike; redirects
never carry credentials to another host; the emulator's admin endpoint exists only when
enabled."""
from __future__ import annotations

import dataclasses
import logging
import random
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import trustme

from cosfast import CosClientError, CosConfig, CosS3Client, CosServiceError
from cosfast import download_file as bridge
from cosfast.emulator import Emulator, Fault
from cosfast.transfer.engine import TransferEngine
from cosfast.transfer.retry import RetryPolicy

pytestmark = pytest.mark.timeout(90)

MIB = 1024 * 1024


def leftovers(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir() if ".cosfast" in p.name)


def short_retries(client: CosS3Client, max_thread: int) -> TransferEngine:
    """An engine with the client's settings and two attempts per part (keeps failures fast)."""
    options = bridge.engine_options(client, max_thread)
    return TransferEngine(dataclasses.replace(options, retry=RetryPolicy(max_attempts=2, base_delay=0.01)))


# -- secrets ---------------------------------------------------------------------------------


def test_secrets_stay_out_of_logs_reprs_errors_and_records(emulator, tmp_path, caplog, capfd):
    creds = emulator.create_temporary_credentials(expires_in=600)
    config = CosConfig(**emulator.sdk_config(SecretId=creds.secret_id, SecretKey=creds.secret_key,
                                             Token=creds.token, Timeout=1))
    client = CosS3Client(config)
    rng = random.Random(3)
    data = rng.randbytes(3 * MIB)
    emulator.put("big", data)
    emulator.put("small", b"small")
    emulator.put("old", rng.randbytes(2 * MIB), with_crc=False)
    texts = [repr(config), str(config), repr(client)]
    failures = []
    with caplog.at_level(logging.DEBUG):
        # A session with retries (503, drops, a stall), each kind of failure and a kept record.
        emulator.add_fault(Fault(kind="status", key="big", method="GET", status=503, retry_after=0, times=2))
        emulator.add_fault(Fault(kind="drop", key="big", range_start=MIB, after_bytes=1000))
        emulator.add_fault(Fault(kind="stall", key="big", range_start=2 * MIB, seconds=3))
        emulator.add_fault(Fault(kind="status", key="big", method="HEAD", status=503, retry_after=0))
        (tmp_path / ".big.cosfast.resume").write_bytes(b"cosfast-resume 1 0\n{torn")
        client.download_file(emulator.bucket, "big", str(tmp_path / "big"), PartSize=1, EnableCRC=True)
        with pytest.warns(UserWarning):
            client.download_file(emulator.bucket, "old", str(tmp_path / "old"), PartSize=1, EnableCRC=True)
        emulator.add_fault(Fault(kind="status", key="big", method="GET", status=403, code="AccessDenied"))
        emulator.add_fault(Fault(kind="flip", key="small", offset=2))
        emulator.add_fault(Fault(kind="drop", key="big", range_start=2 * MIB, times=None))
        calls = [
            lambda: client.download_file(emulator.bucket, "big", str(tmp_path / "b2"), PartSize=1, MAXThread=1),
            lambda: client.download_file(emulator.bucket, "small", str(tmp_path / "s")),
            lambda: bridge.download_file(client, emulator.bucket, "big", str(tmp_path / "b3"), PartSize=1,
                                         engine=short_retries(client, 2)),
            lambda: client.download_file(emulator.bucket, "missing", str(tmp_path / "m")),
            lambda: client.get_object(Bucket=emulator.bucket, Key="missing"),
            lambda: CosS3Client(CosConfig(**emulator.sdk_config(SecretKey="wrong" + creds.secret_key,
                                                                SecretId=creds.secret_id, Token=creds.token))
                                ).download_file(emulator.bucket, "small", str(tmp_path / "w")),
            lambda: CosS3Client(CosConfig(**emulator.sdk_config(Port=1, SecretKey=creds.secret_key,
                                                                SecretId=creds.secret_id, Token=creds.token)),
                                retry=0).download_file(emulator.bucket, "small", str(tmp_path / "p")),
        ]
        for call in calls:
            with pytest.raises((CosClientError, CosServiceError)) as info:
                call()
            failures.append(info.value)
        response = client.get_object(Bucket=emulator.bucket, Key="small")
        texts.append(repr(response))
        response["Body"].read()
        client.head_object(Bucket=emulator.bucket, Key="small")
        texts.append(repr(client.list_objects(Bucket=emulator.bucket)))
    for error in failures:
        texts += [str(error), repr(error), repr(error.__cause__), str(error.__context__)]
        if isinstance(error, CosServiceError):
            texts += [str(error.get_origin_msg()), str(error.get_digest_msg())]
    texts += [f"{r.levelname} {r.name} {r.getMessage()}" for r in caplog.records]
    out, err = capfd.readouterr()
    texts += [out, err]
    # The kept resume record (network failure of b3) and every other cosfast file.
    texts += [p.read_bytes().decode("latin-1") for p in tmp_path.iterdir() if ".cosfast" in p.name]
    assert any(".cosfast.resume" in p.name for p in tmp_path.iterdir())
    joined = "\n".join(texts)
    messages = [r.getMessage() for r in caplog.records]
    assert any("retrying HEAD" in m for m in messages) and any("discarding resume record" in m for m in messages)
    for secret in (creds.secret_key, creds.token, "q-signature", "q-key-time"):
        assert secret not in joined, secret
    assert (tmp_path / "big").read_bytes() == data


# -- TLS -------------------------------------------------------------------------------------


@pytest.fixture
def tls_server(make_emulator, tls_files) -> Emulator:
    server = make_emulator(tls=(tls_files.certfile, tls_files.keyfile))
    server.create_bucket("tls-1250000000")
    server.put_object("tls-1250000000", "k", random.Random(4).randbytes(2 * MIB + 5))
    return server


def _https_client(server: Emulator, **overrides) -> CosS3Client:
    return CosS3Client(CosConfig(**server.sdk_config(**overrides)), retry=0)


def test_an_untrusted_certificate_is_refused_by_default(tls_server, tmp_path):
    client = _https_client(tls_server)  # VerifySSL not given: certifi's CAs, which never signed it
    with pytest.raises(CosClientError, match="(?i)certificate|SSL"):
        client.get_object(Bucket="tls-1250000000", Key="k")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(CosClientError, match="(?i)certificate|SSL"):
        client.download_file("tls-1250000000", "k", str(out / "o"), PartSize=1)
    assert list(out.iterdir()) == []


def test_a_certificate_for_another_name_is_refused_even_from_a_trusted_ca(make_emulator, tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("files.example.org")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    server = make_emulator(tls=(tmp_path / "server.pem", tmp_path / "server.pem"))
    server.create_bucket("tls-1250000000")
    server.put_object("tls-1250000000", "k", b"data")
    out = tmp_path / "out"
    out.mkdir()
    client = _https_client(server, VerifySSL=str(tmp_path / "ca.pem"))
    with pytest.raises(CosClientError, match="(?i)certificate|SSL|name"):
        client.download_file("tls-1250000000", "k", str(out / "o"))
    assert list(out.iterdir()) == []


def test_download_file_parts_use_the_configured_ca(tls_server, tls_files, tmp_path):
    # The parts go through the engine's own handles: if they did not get the config's CA bundle
    # (libcurl's default bundle does not hold the test CA), the download would fail.
    client = _https_client(tls_server, VerifySSL=str(tls_files.ca_file))
    client.download_file("tls-1250000000", "k", str(tmp_path / "o"), PartSize=1, MAXThread=2)
    assert (tmp_path / "o").stat().st_size == 2 * MIB + 5
    assert len([r for r in tls_server.request_log if r.method == "GET"]) == 3


def test_download_file_parts_refuse_what_the_engines_config_does_not_trust(tls_server, tls_files, tmp_path):
    trusting = _https_client(tls_server, VerifySSL=str(tls_files.ca_file))
    untrusting = _https_client(tls_server)
    dest = tmp_path / "o"
    dest.write_bytes(b"sentinel")
    # HEAD by the trusting client, parts by an engine configured from the default config.
    with pytest.raises(CosClientError, match="(?i)certificate|SSL"):
        bridge.download_file(trusting, "tls-1250000000", "k", str(dest), PartSize=1,
                             engine=short_retries(untrusting, 2))
    assert dest.read_bytes() == b"sentinel"
    assert [r.method for r in tls_server.request_log] == ["HEAD"]  # no part got through
    assert leftovers(tmp_path) == []


def test_verifyssl_false_turns_verification_off_for_the_parts_too(tls_server, tmp_path):
    client = _https_client(tls_server, VerifySSL=False)
    client.download_file("tls-1250000000", "k", str(tmp_path / "o"), PartSize=1)
    assert (tmp_path / "o").stat().st_size == 2 * MIB + 5


# -- redirects -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["HEAD", "GET"])
@pytest.mark.parametrize("allow", [False, True])
def test_redirects_never_take_credentials_to_another_host(emulator, make_emulator, tmp_path, method, allow):
    other = make_emulator()
    other.create_bucket(emulator.bucket)
    emulator.put("k", random.Random(7).randbytes(3 * MIB))
    emulator.add_fault(Fault(kind="redirect", key="k", method=method, times=None,
                             location=f"http://127.0.0.1:{other.port}/k"))
    client = CosS3Client(CosConfig(**emulator.sdk_config(AllowRedirects=allow)), retry=0)
    dest = tmp_path / "o"
    dest.write_bytes(b"sentinel")
    with pytest.raises((CosClientError, CosServiceError)) as info:
        client.download_file(emulator.bucket, "k", str(dest), PartSize=1)
    error = info.value
    assert (isinstance(error, CosServiceError) and error.get_status_code() == 302) or "not followed" in str(error)
    for call in (lambda: client.get_object(Bucket=emulator.bucket, Key="k")["Body"].read(),
                 lambda: client.head_object(Bucket=emulator.bucket, Key="k")):
        try:
            call()  # not followed (returned as is, as the SDK) or refused: either way, not sent
        except (CosClientError, CosServiceError):
            pass
    assert other.request_log == []
    assert dest.read_bytes() == b"sentinel" and leftovers(tmp_path) == []


# -- the emulator's admin endpoint ------------------------------------------------------------


@pytest.mark.parametrize("auth", [True, False])
def test_admin_routes_do_nothing_unless_enabled(make_emulator, auth):
    server = make_emulator(auth=auth)
    server.create_bucket("adm-1250000000")
    server.put_object("adm-1250000000", "k", b"data")
    base = f"{server.endpoint}/-/emulator"
    for method, route, body in [("POST", "faults", b'{"kind": "status", "status": 500, "times": null}'),
                                ("GET", "faults", None), ("GET", "log", None), ("DELETE", "log", None),
                                ("DELETE", "faults", None), ("POST", "buckets", b'{"name": "evil-1250000000"}')]:
        request = urllib.request.Request(f"{base}/{route}", data=body, method=method)
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=10)
        assert info.value.code in (403, 404, 405, 501), (method, route, info.value.code)
    assert len(server.request_log) == 6  # nothing cleared the log
    client = CosS3Client(CosConfig(**server.sdk_config()), retry=0)
    assert client.get_object(Bucket="adm-1250000000", Key="k")["Body"].read() == b"data"  # no fault
    with pytest.raises(Exception, match="NoSuchBucket"):
        server.head_object("evil-1250000000", "x")
