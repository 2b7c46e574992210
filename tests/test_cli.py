"""The `cosfast` command, driven as a real subprocess (python -m cosfast) against the emulator."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import cosfast
from cosfast.cli.errors import UsageError
from cosfast.cli.target import Connection, parse_cos_url, parse_endpoint_url

REPO_ROOT = str(Path(cosfast.__file__).resolve().parent.parent)
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("COS_")}


def run_cli(*args: str, env: dict | None = None, pythonpath: str = REPO_ROOT, timeout: float = 120,
            cwd: str | None = None) -> subprocess.CompletedProcess:
    child_env = dict(CLEAN_ENV, PYTHONPATH=pythonpath, **(env or {}))
    return subprocess.run([sys.executable, "-m", "cosfast", *args], env=child_env, capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


def assert_one_line_error(result: subprocess.CompletedProcess, code: int, text: str) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cosfast: error: ") and text in lines[0], lines[0]
    assert "Traceback" not in result.stderr


# -- usage -------------------------------------------------------------------------------------

def test_help_lists_every_command():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("get", "ls", "demo", "emulator", "bench"):
        assert command in result.stdout
    assert "Exit codes" in result.stdout


@pytest.mark.parametrize("args, env, text", [
    (["get"], {}, "required: cos://bucket/key"),
    (["frobnicate"], {}, "invalid choice"),
    (["get", "s3://bucket/key"], {}, "is not a COS URL"),
    (["get", "cos:///key"], {}, "names no bucket"),
    (["get", "cos://Bad_Bucket/key"], {}, "is not a COS bucket name"),
    (["get", "cos://b-1250000000/key"], {}, "no region"),
    (["get", "cos://b-1250000000/key", "--endpoint-url", "ftp://127.0.0.1"], {}, "http or https"),
    (["get", "cos://b-1250000000/key", "--endpoint-url", "http://127.0.0.1:99999"], {}, "port"),
    (["get", "cos://b-1250000000/key", "--endpoint-url", "http://127.0.0.1/path"], {}, "only scheme://host"),
    (["get", "cos://b-1250000000/key"], {"COS_REGION": "ap-beijing", "COS_SECRET_ID": "AKIDx"}, "SecretKey"),
    (["get", "cos://b-1250000000/dir/"], {"COS_REGION": "ap-beijing"}, "use `cosfast get -r"),
    (["get", "-r", "cos://b-1250000000/dir/"], {"COS_REGION": "ap-beijing"}, "needs a local folder"),
    (["get", "-j", "0", "cos://b-1250000000/k"], {}, "must be at least 1"),
    (["demo", "--size", "lots"], {}, "is not a size"),
])
def test_usage_errors_exit_2_with_one_line(args, env, text):
    assert_one_line_error(run_cli(*args, env=env), 2, text)


def test_json_mode_also_reports_errors_as_json():
    result = run_cli("ls", "--json", "cos://b-1250000000/")
    assert result.returncode == 2
    doc = json.loads(result.stdout)
    assert doc["type"] == "error" and doc["exit_code"] == 2 and "no region" in doc["message"]


def test_bench_without_the_bench_package_is_a_clear_error(tmp_path):
    # An installed layout: the cosfast package alone, no bench/ beside it.
    site = tmp_path / "site"
    site.mkdir()
    (site / "cosfast").symlink_to(Path(REPO_ROOT) / "cosfast")
    result = run_cli("bench", "--anything", pythonpath=str(site), cwd=str(tmp_path))
    assert_one_line_error(result, 2, "`cosfast bench` is not available")


def test_bench_delegates_its_arguments_and_exit_code(tmp_path):
    fake = tmp_path / "fake" / "bench"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "cli.py").write_text(
        "import json, sys\n"
        "def main(argv):\n"
        "    print(json.dumps(argv))\n"
        "    return 7\n")
    result = run_cli("bench", "--runs", "3", "x y", pythonpath=f"{tmp_path / 'fake'}{os.pathsep}{REPO_ROOT}")
    assert result.returncode == 7, result.stderr
    assert json.loads(result.stdout) == ["--runs", "3", "x y"]


# -- pieces ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, bucket, key", [
    ("cos://b-1250000000/a/b.txt", "b-1250000000", "a/b.txt"),
    ("cos://b-1250000000/q?x=1#frag %20", "b-1250000000", "q?x=1#frag %20"),
    ("cos://b-1250000000", "b-1250000000", ""),
    ("cos://b-1250000000/", "b-1250000000", ""),
    ("cos://b-1250000000//double", "b-1250000000", "/double"),
])
def test_cos_urls_keep_the_key_verbatim(text, bucket, key):
    url = parse_cos_url(text)
    assert (url.bucket, url.key) == (bucket, key)


def test_endpoint_url_maps_onto_ip_port_and_scheme():
    assert parse_endpoint_url("http://127.0.0.1:9000").port == 9000
    v6 = parse_endpoint_url("https://[::1]:8443/")
    assert (v6.scheme, v6.host, v6.port) == ("https", "[::1]", 8443)
    args = argparse.Namespace(endpoint_url="http://127.0.0.1:9000", region=None, secret_id=None,
                              secret_key=None, token=None)
    connection = Connection.from_args(args, {"COS_SECRET_ID": "AKIDid", "COS_SECRET_KEY": "sekrit-key",
                                             "COS_TOKEN": "tok-value"})
    kwargs = connection.config_kwargs()
    assert kwargs["IP"] == "127.0.0.1" and kwargs["Port"] == 9000 and kwargs["Scheme"] == "http"
    assert kwargs["SecretKey"] == "sekrit-key" and kwargs["Token"] == "tok-value"
    assert "sekrit" not in repr(connection) and "tok-value" not in repr(connection)


def test_flags_override_environment_and_no_keys_means_anonymous():
    args = argparse.Namespace(endpoint_url=None, region="ap-shanghai", secret_id=None, secret_key=None, token=None)
    connection = Connection.from_args(args, {"COS_REGION": "ap-beijing"})
    assert connection.config_kwargs() == {"Region": "ap-shanghai", "Scheme": "https", "Anonymous": True}
    with pytest.raises(UsageError, match="SecretId"):
        Connection.from_args(args, {"COS_SECRET_KEY": "k"})
