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
from cosfast import partwriter
from cosfast.cli import main
from cosfast.cli.errors import UsageError
from cosfast.cli.target import Connection, parse_cos_url, parse_endpoint_url
from pagecache import resident_fraction

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


@pytest.mark.parametrize("args, text", [
    (["get"], "required: cos://bucket/key"),
    (["get", "s3://bucket/key"], "is not a COS URL"),
])
def test_usage_errors_from_the_real_script(args, text):
    assert_one_line_error(run_cli(*args), 2, text)


@pytest.mark.parametrize("args, env, text", [
    (["frobnicate"], {}, "invalid choice"),
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
def test_usage_errors_exit_2_with_one_line(args, env, text, monkeypatch, capsys):
    """In-process (cosfast.cli.main), to keep the suite fast; the script itself is covered above."""
    for name in [n for n in os.environ if n.startswith("COS_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(args)
    captured = capsys.readouterr()
    assert_one_line_error(subprocess.CompletedProcess(args, code, captured.out, captured.err), 2, text)


def test_json_mode_also_reports_errors_as_json():
    result = run_cli("ls", "--json", "cos://b-1250000000/")
    assert result.returncode == 2
    doc = json.loads(result.stdout)
    assert doc["type"] == "error" and doc["exit_code"] == 2 and "no region" in doc["message"]


def test_bench_delegates_its_arguments_and_exit_code(tmp_path):
    fake = tmp_path / "fake" / "bench"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "cli.py").write_text(
        "import json, sys\n"
        "def main(argv):\n"
        "    print(json.dumps(argv))\n"
        "    return 7\n")
    result = run_cli("bench", "--runs", "3", "x y", pythonpath=f"{tmp_path / 'fake'}{os.pathsep}{REPO_ROOT}",
                     cwd=str(tmp_path))
    assert result.returncode == 7, result.stderr
    assert json.loads(result.stdout) == ["--runs", "3", "x y"]


def test_bench_delegates_to_the_bench_harness():
    listed = run_cli("bench", "--list", cwd=REPO_ROOT)
    assert listed.returncode == 0, listed.stderr
    names = [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]
    assert "cosfast" in names and "sdk" in names
    bad = run_cli("bench", "--suite", "nonsense", cwd=REPO_ROOT)
    assert bad.returncode == 2 and "--suite" in bad.stderr


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


# -- against the emulator ------------------------------------------------------------------------

def emulator_env(emulator, **extra: str) -> dict:
    env = {"COS_SECRET_ID": emulator.secret_id, "COS_SECRET_KEY": emulator.secret_key,
           "COS_ENDPOINT_URL": emulator.endpoint}
    env.update(extra)
    return env


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_ls_folder_by_folder_and_recursive(emulator):
    for key in ["top.txt", "d/a.txt", "d/sub/b.txt", "d/sub/c.txt", "e/f"]:
        emulator.put(key, key.encode())
    env = emulator_env(emulator)
    shallow = run_cli("ls", f"cos://{emulator.bucket}/", env=env)
    assert shallow.returncode == 0, shallow.stderr
    lines = shallow.stdout.splitlines()
    assert [line.split()[-1] for line in lines] == ["d/", "e/", "top.txt"]
    deep = run_cli("ls", "-r", "--json", f"cos://{emulator.bucket}/d/", env=env)
    docs = json_lines(deep.stdout)
    assert [(d["type"], d["key"], d["size"]) for d in docs] == [
        ("object", "d/a.txt", 7), ("object", "d/sub/b.txt", 11), ("object", "d/sub/c.txt", 11)]


@pytest.mark.parametrize("processes", [[], ["--processes", "2"]], ids=["in-process", "2-workers"])
def test_get_recursive_json_lines_and_exit_status(emulator, tmp_path, processes):
    for i in range(12):
        emulator.put(f"r/{i % 3}/{i}.bin", bytes([i]) * (100 + i))
    emulator.put("r/../escape", b"never")
    env = emulator_env(emulator)
    result = run_cli("get", "-r", "--json", *processes, f"cos://{emulator.bucket}/r/", str(tmp_path / "out"),
                     env=env)
    assert result.returncode == 1, result.stderr  # one key was refused
    docs = json_lines(result.stdout)
    objects = [d for d in docs if d["type"] == "object"]
    summary = docs[-1]
    assert summary["type"] == "summary" and summary["downloaded"] == 12
    assert summary["failed"] == [{"key": "r/../escape", "reason": "it has a '..' path component"}]
    assert sorted(d["status"] for d in objects) == ["downloaded"] * 12 + ["failed"]
    for i in range(12):
        assert (tmp_path / "out" / str(i % 3) / f"{i}.bin").read_bytes() == bytes([i]) * (100 + i)
    assert not (tmp_path / "escape").exists()

    emulator.delete_object(emulator.bucket, "r/../escape")
    again = run_cli("get", "-r", f"cos://{emulator.bucket}/r/", str(tmp_path / "out"), env=env)
    assert again.returncode == 0, again.stderr
    assert "0 downloaded" in again.stdout and "12 unchanged" in again.stdout
    assert again.stderr == ""  # no TTY: no progress bar


def test_include_exclude_and_force_flags(emulator, tmp_path):
    for key in ["g/a.txt", "g/b.log", "g/c.txt"]:
        emulator.put(key, key.encode())
    env = emulator_env(emulator)
    out = tmp_path / "out"
    result = run_cli("get", "-r", "-q", "--include", "*.txt", "--exclude", "c*", f"cos://{emulator.bucket}/g/",
                     str(out), env=env)
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"]
    forced = run_cli("get", "-r", "--json", "--force", f"cos://{emulator.bucket}/g/", str(out), env=env)
    assert json_lines(forced.stdout)[-1]["downloaded"] == 3


def test_auth_and_not_found_exit_codes_and_no_secret_in_output(emulator, tmp_path):
    emulator.put("k", b"v")
    wrong = "WrongSecretValue-0123456789"
    result = run_cli("ls", f"cos://{emulator.bucket}/", "--debug",
                     env=emulator_env(emulator, COS_SECRET_KEY=wrong, COS_TOKEN="TokenValue-987654321"))
    assert result.returncode == 3
    assert "SignatureDoesNotMatch" in result.stderr or "AccessDenied" in result.stderr
    for secret in (wrong, "TokenValue-987654321", emulator.secret_key):
        assert secret not in result.stdout + result.stderr
    missing = run_cli("ls", "cos://no-such-bucket-1250000000/", env=emulator_env(emulator))
    assert_one_line_error(missing, 4, "NoSuchBucket")
    nothing = run_cli("get", "-r", f"cos://{emulator.bucket}/empty/", str(tmp_path), env=emulator_env(emulator))
    assert nothing.returncode == 4 and "nothing found" in nothing.stderr


def test_unreachable_endpoint_is_one_line_exit_1(tmp_path):
    env = {"COS_ENDPOINT_URL": "http://127.0.0.1:9", "COS_SECRET_ID": "AKIDx", "COS_SECRET_KEY": "SecretNotShown"}
    result = run_cli("ls", "cos://b-1250000000/", env=env)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert "SecretNotShown" not in result.stderr


def test_progress_bar_is_drawn_on_a_terminal(emulator, tmp_path):
    import pty

    for i in range(30):
        emulator.put(f"p/{i}", b"x" * 5000)
    primary, secondary = pty.openpty()
    try:
        child_env = dict(CLEAN_ENV, PYTHONPATH=REPO_ROOT, **emulator_env(emulator))
        proc = subprocess.run([sys.executable, "-m", "cosfast", "get", "-r", f"cos://{emulator.bucket}/p/",
                               str(tmp_path)], env=child_env, stdout=subprocess.PIPE, stderr=secondary,
                              timeout=120)
        os.close(secondary)
        drawn = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(primary)
    assert proc.returncode == 0
    text = drawn.decode()
    assert "\r" in text and "files 30" in text and "/s" in text
    assert "30 downloaded" in proc.stdout.decode()


@pytest.mark.timeout(60)
def test_emulator_command_delegates_to_the_emulator():
    result = run_cli("emulator", "--help")
    assert result.returncode == 0
    assert "--root" in result.stdout and "cosfast emulator" in result.stdout


def test_get_one_object_to_a_file_a_folder_and_the_current_folder(emulator, tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 7)
    emulator.put("dir/obj.bin", data)
    env = emulator_env(emulator)
    url = f"cos://{emulator.bucket}/dir/obj.bin"
    as_file = run_cli("get", "--json", "--part-size", "1", "-j", "3", url, str(tmp_path / "named.bin"), env=env)
    assert as_file.returncode == 0, as_file.stderr
    doc = json.loads(as_file.stdout)
    assert doc["type"] == "result" and doc["bytes"] == len(data) and doc["dest"] == str(tmp_path / "named.bin")
    assert (tmp_path / "named.bin").read_bytes() == data
    (tmp_path / "into").mkdir()
    into = run_cli("get", "-q", url, str(tmp_path / "into"), env=env)
    assert into.returncode == 0 and into.stdout == "" and (tmp_path / "into" / "obj.bin").read_bytes() == data
    here = run_cli("get", url, env=env, cwd=str(tmp_path / "into"))
    assert here.returncode == 0 and "obj.bin" in here.stdout
    missing = run_cli("get", f"cos://{emulator.bucket}/dir/nope", str(tmp_path / "nope"), env=env)
    assert missing.returncode == 4 and not (tmp_path / "nope").exists()
    assert len(missing.stderr.strip().splitlines()) == 1


def test_get_creates_missing_folders_and_a_file_in_the_way_is_a_local_error(emulator, tmp_path):
    emulator.put("k", b"value")
    env = emulator_env(emulator)
    made = run_cli("get", "-q", f"cos://{emulator.bucket}/k", str(tmp_path / "new" / "dirs" / "k"), env=env)
    assert made.returncode == 0 and (tmp_path / "new" / "dirs" / "k").read_bytes() == b"value"
    (tmp_path / "file").write_text("in the way")
    blocked = run_cli("get", f"cos://{emulator.bucket}/k", str(tmp_path / "file" / "k"), env=env)
    assert_one_line_error(blocked, 5, "local file error")


@pytest.mark.timeout(180)
def test_demo_runs_verifies_and_cleans_up(tmp_path):
    result = run_cli("demo", "--json", "--size", "3MiB", "--files", "30", "--file-size", "2KiB", "--rounds", "1",
                     env={"TMPDIR": str(tmp_path)}, timeout=170)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["verified"] is True and doc["files"] == 30
    assert set(doc["sides"]) == {"cosfast", "qcloud_cos"}
    for side in doc["sides"].values():
        assert side["object_bytes_per_second"] > 0 and side["folder_files_per_second"] > 0
    assert list(tmp_path.iterdir()) == []  # the emulator's root and every download are gone


@pytest.mark.parametrize("processes", [[], ["--processes", "2"]], ids=["in-process", "2-workers"])
def test_ctrl_c_stops_cleanly_with_exit_130_and_no_half_files(emulator, tmp_path, processes):
    import signal
    import time

    from cosfast.emulator import Fault

    for i in range(6):
        emulator.put(f"slow/{i}", bytes([i]) * 200_000)
    emulator.add_fault(Fault("slow", bucket=emulator.bucket, rate=50_000, times=None))
    emulator.clear_log()
    child_env = dict(CLEAN_ENV, PYTHONPATH=REPO_ROOT, **emulator_env(emulator))
    # A test run started in the background (``cmd &``, nohup) has SIGINT ignored, and a child
    # inherits that: the CLI would rightly keep ignoring Ctrl-C, as a background job should.
    proc = subprocess.Popen([sys.executable, "-m", "cosfast", "get", "-r", *processes, f"cos://{emulator.bucket}/slow/",
                             str(tmp_path / "out")], env=child_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while not any(r.method == "GET" and r.key and r.bytes_sent > 0 for r in emulator.request_log):
            assert time.monotonic() < deadline, "no object transfer started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "cosfast: error: interrupted"
    landed = list((tmp_path / "out").iterdir())
    assert landed == []  # nothing finished at 50 KB/s, and no temp or lock file stays behind


def test_get_direct_io_leaves_the_stages_it_wrote_direct_out_of_the_page_cache(emulator, tmp_path):
    # --direct-io: 4 MiB parts of 1 MiB stages go to the disk with O_DIRECT as far as it keeps up,
    # and those bytes are not in the page cache afterwards; with --keep-page-cache (and without
    # --direct-io) every page of the file is.
    data = os.urandom(16 * 1024 * 1024)
    emulator.put("big.bin", data)
    env = emulator_env(emulator)
    url = f"cos://{emulator.bucket}/big.bin"
    for flags, name in ((["--direct-io", "--keep-page-cache"], "direct.bin"), (["--keep-page-cache"], "cached.bin")):
        result = run_cli("get", "-q", "--part-size", "4", *flags, url, str(tmp_path / name), env=env)
        assert result.returncode == 0, result.stderr
    assert resident_fraction(tmp_path / "cached.bin") == 1.0
    if partwriter.backend == "compiled":
        assert resident_fraction(tmp_path / "direct.bin") <= 0.75
    else:  # the pure-Python twin writes everything through the page cache
        assert resident_fraction(tmp_path / "direct.bin") == 1.0
    assert (tmp_path / "direct.bin").read_bytes() == data
    assert (tmp_path / "cached.bin").read_bytes() == data


def test_get_and_get_r_drop_page_cache_write_back_and_drop_the_files_pages(emulator, tmp_path):
    # Written back and dropped as the download goes (TempFile(recycle=True)); at the end the
    # command waits for the writeback of the last files and drops their pages too: nothing of the
    # files stays cached.
    big = os.urandom(24 * 1024 * 1024)
    emulator.put("big.bin", big)
    small = {f"dir/{i:03d}.bin": os.urandom(256 * 1024) for i in range(80)}
    for key, body in small.items():
        emulator.put(key, body)
    env = emulator_env(emulator)

    def download_both(suffix: str) -> None:
        for args in (["--part-size", "4", f"cos://{emulator.bucket}/big.bin", str(tmp_path / f"big{suffix}.bin")],
                     ["-r", f"cos://{emulator.bucket}/dir/", str(tmp_path / f"dir{suffix}")]):
            result = run_cli("get", "-q", "--drop-page-cache", *args, env=env)
            assert result.returncode == 0, result.stderr

    download_both("")
    os.sync()  # the writeback the downloads started has ended; their clean pages are left
    assert (tmp_path / "big.bin").read_bytes() == big  # (reading brings the pages back in)
    for key, body in small.items():
        assert (tmp_path / key).read_bytes() == body
    download_both("2")  # read back above, so a second download of each into fresh names is measured
    assert resident_fraction(tmp_path / "big2.bin") == 0.0
    assert [resident_fraction(tmp_path / "dir2" / key[len("dir/"):]) for key in small] == [0.0] * len(small)


@pytest.mark.parametrize("flags", [("--keep-page-cache", "--drop-page-cache"), ("--direct-io", "--no-direct-io")])
def test_opposite_page_cache_flags_exclude_each_other(emulator, tmp_path, flags):
    result = run_cli("get", *flags, f"cos://{emulator.bucket}/x", str(tmp_path / "x"), env=emulator_env(emulator))
    assert result.returncode == 2
    assert f"argument {flags[1]}: not allowed with argument {flags[0]}" in result.stderr
    assert list(tmp_path.iterdir()) == []
