"""CosConfig URL/Host building and validation errors, against the SDK's CosConfig."""
from __future__ import annotations

import pytest
import qcloud_cos

import cosfast
from cosfast import CosConfig

CREDS = {"SecretId": "AKIDexample", "SecretKey": "secretkeyexample"}

CONFIGS = [
    {"Region": "ap-beijing"},
    {"Region": "ap-guangzhou", "Scheme": "http"},
    {"Region": "cos.ap-beijing-1"},
    {"Region": "cn-north"},
    {"Region": "cossh"},
    {"Region": "costj", "EnableOldDomain": False},
    {"Region": "ap-shanghai", "EnableOldDomain": False},
    {"Region": "ap-shanghai", "EnableOldDomain": False, "EnableInternalDomain": False},
    {"Endpoint": "cos.accelerate.myqcloud.com"},
    {"Region": "ap-beijing", "Endpoint": "custom.example.com"},
    {"Region": "ap-beijing", "Domain": "cdn.example.com"},
    {"Domain": "cdn.example.com", "Region": "ap-chengdu"},
    {"Region": "ap-beijing", "IP": "127.0.0.1"},
    {"Region": "ap-beijing", "IP": "127.0.0.1", "Port": 8080},
    {"Region": "ap-beijing", "IP": "10.0.0.1", "Port": 80, "Domain": "d.example.com"},
    {"Region": "ap-beijing", "Appid": "1250000000"},
    {"Region": "ap-beijing", "Appid": b"1250000000"},
]

PATHS = [None, "a.txt", "/lead", "dir/sub/file.bin", "中文/文件 名.txt", "a+b c", "x/./y",
         "a/../b", "..", "./", "~t-_.~", "q?x=1#frag", "%41", b"bytes-key"]


@pytest.mark.parametrize("conf_kwargs", CONFIGS, ids=repr)
def test_uri_and_host_match_sdk(conf_kwargs):
    ours = CosConfig(**CREDS, **conf_kwargs)
    theirs = qcloud_cos.CosConfig(**CREDS, **conf_kwargs)
    assert ours._endpoint == theirs._endpoint
    assert ours._endpoint_ci == theirs._endpoint_ci
    assert ours._endpoint_pic == theirs._endpoint_pic
    assert ours._scheme == theirs._scheme
    for bucket in ("examplebucket-1250000000", "short", "a"):
        for path in PATHS:
            assert ours.uri(bucket=bucket, path=path) == theirs.uri(bucket=bucket, path=path)
        assert ours.get_host(Bucket=bucket) == theirs.get_host(Bucket=bucket)
    assert ours.uri() == theirs.uri()
    assert ours.uri(useAppid=True) == theirs.uri(useAppid=True)
    assert ours.get_host(Appid="125") == theirs.get_host(Appid="125")


def _error_of(factory):
    try:
        factory()
    except Exception as exc:  # noqa: BLE001 - comparing whatever each raises
        return type(exc).__name__, str(exc)
    return None


BAD_CONFIGS = [
    {"Region": "ap-beijing", "Scheme": "ftp", **CREDS},
    {**CREDS},
    {"Region": "", **CREDS},
    {"Region": "ap_beijing!", **CREDS},
    {"Region": "-bad", **CREDS},
    {"Region": 5, **CREDS},
    {"Region": "ap-beijing"},
    {"Region": "ap-beijing", "SecretId": "AKID"},
    {"Region": "ap-beijing", "SecretId": " AKID", "SecretKey": "k"},
    {"Region": "ap-beijing", "SecretId": "AKID", "SecretKey": "k "},
    {"Region": "ap-beijing", "SecretId": b"\xff", "SecretKey": "k"},
]


@pytest.mark.parametrize("conf_kwargs", BAD_CONFIGS, ids=repr)
def test_validation_errors_match_sdk(conf_kwargs):
    ours = _error_of(lambda: CosConfig(**conf_kwargs))
    theirs = _error_of(lambda: qcloud_cos.CosConfig(**conf_kwargs))
    assert ours is not None
    assert ours == theirs


@pytest.mark.parametrize("bucket", ["", "bad_name", "-lead", "trail-", "a.b", 7, None])
def test_bad_bucket_names_match_sdk(bucket):
    ours = CosConfig(Region="ap-beijing", **CREDS)
    theirs = qcloud_cos.CosConfig(Region="ap-beijing", **CREDS)
    if bucket is None:  # None means "no bucket": the service URL
        assert ours.uri(bucket=bucket) == theirs.uri(bucket=bucket)
        return
    assert _error_of(lambda: ours.uri(bucket=bucket, path="k")) == \
        _error_of(lambda: theirs.uri(bucket=bucket, path="k"))
    with pytest.raises(cosfast.CosClientError):
        ours.uri(bucket=bucket, path="k")


def test_empty_key_is_refused_like_sdk():
    ours = CosConfig(Region="ap-beijing", **CREDS)
    theirs = qcloud_cos.CosConfig(Region="ap-beijing", **CREDS)
    assert _error_of(lambda: ours.uri(bucket="b-1", path="")) == \
        _error_of(lambda: theirs.uri(bucket="b-1", path=""))


def test_every_sdk_parameter_is_accepted_with_the_same_default():
    import inspect

    sdk = inspect.signature(qcloud_cos.CosConfig.__init__).parameters
    ours = inspect.signature(CosConfig.__init__).parameters
    assert list(sdk) == list(ours)
    for name, param in sdk.items():
        assert ours[name].default == param.default, name


def test_repr_hides_secrets():
    conf = CosConfig(Region="ap-beijing", SecretId="AKIDsecretidvalue",
                     SecretKey="THE-SECRET-KEY", Token="THE-SESSION-TOKEN")
    text = repr(conf) + str(conf) + repr(cosfast.CosS3Client(conf))
    assert "THE-SECRET-KEY" not in text
    assert "THE-SESSION-TOKEN" not in text
    assert "ap-beijing" in text


def test_set_credential_and_ip_port():
    conf = CosConfig(Region="ap-beijing", **CREDS)
    conf.set_credential("AKIDnew", "newkey")  # Token defaults to None (the SDK crashes here)
    assert conf.credentials() == ("AKIDnew", "newkey", None)
    conf.set_ip_port("127.0.0.1", 9000)
    assert conf.uri(bucket="b-1", path="k") == "https://127.0.0.1:9000/k"


def test_credential_instance_is_asked_each_time():
    class Rotating:
        def __init__(self):
            self.n = 0

        @property
        def secret_id(self):
            self.n += 1
            return f"AKID{self.n}"

        secret_key = "k"
        token = "tok"

    conf = CosConfig(Region="ap-beijing", CredentialInstance=Rotating())
    assert conf.credentials()[0] != conf.credentials()[0]
    assert conf.credentials()[2] == "tok"
