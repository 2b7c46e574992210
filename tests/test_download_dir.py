"""CosS3Client.download_dir against the emulator: many objects, odd keys, unsafe keys, filters,
skip-unchanged, failures and faults; plus the SDK's batch sample run with cosfast's imports."""
from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import cosfast
from cosfast import CosConfig, CosS3Client
from cosfast.emulator import Fault
from cosfast.download_dir import FIRST_PAGE_KEYS
from cosfast.transfer.batch import DOWNLOADED, FAILED, FOLDER, SKIPPED, listing_time
from cosfast.transfer.retry import RetryPolicy

REPO_ROOT = str(Path(cosfast.__file__).resolve().parent.parent)
SAMPLE = Path(__file__).parent / "samples" / "sdk_batch_download.py"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True, params=[None, 2], ids=["in-process", "2-workers"])
def batch_processes(request, monkeypatch):
    """Every test runs twice: downloading in the test's process (pytest runs threads, so the
    automatic choice stays in-process) and in two forked worker processes."""
    if request.param is not None:
        real = CosS3Client.download_dir

        def download_dir(self, *args, **kwargs):
            kwargs.setdefault("Processes", request.param)
            return real(self, *args, **kwargs)

        monkeypatch.setattr(CosS3Client, "download_dir", download_dir)
    return request.param


def client_for(emulator) -> CosS3Client:
    return CosS3Client(CosConfig(**emulator.sdk_config()))


def tree(root: Path) -> dict[str, bytes]:
    """relative path -> bytes of every file under root (folders implied)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def folders(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir()}


def gets(emulator, key_prefix: str = "") -> list:
    return [r for r in emulator.request_log if r.method == "GET" and r.key and r.key.startswith(key_prefix)]


def listings(emulator) -> list:
    return [r for r in emulator.request_log if r.method == "GET" and r.key is None]


def leftovers(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*") if ".cosfast" in p.name]


def payload(i: int, size: int) -> bytes:
    return (f"{i:08d}".encode() * (size // 8 + 1))[:size]


# -- many objects --------------------------------------------------------------------------------

def test_thousands_of_small_objects_across_listing_pages(emulator, tmp_path):
    expected = {}
    for i in range(2000):
        key = f"data/d{i % 7}/s{i % 3}/f{i:05d}.bin"
        emulator.put(key, payload(i, 1024))
        expected[key[len("data/"):]] = payload(i, 1024)
    emulator.put("other/not-me.bin", b"outside the prefix")
    emulator.clear_log()
    results = []
    summary = client_for(emulator).download_dir(emulator.bucket, "data/", str(tmp_path / "out"),
                                                MaxKeys=800, object_callback=results.append)
    assert (summary.downloaded, summary.skipped, summary.failed) == (2000, 0, [])
    assert summary.bytes == 2000 * 1024 and summary.seconds > 0
    assert tree(tmp_path / "out") == expected
    assert len(results) == 2000 and {r.status for r in results} == {DOWNLOADED}
    pages = listings(emulator)
    # A short first page (downloads start sooner), then MaxKeys a page, paged with markers.
    assert [r.query.get("max-keys") for r in pages] == [str(FIRST_PAGE_KEYS), "800", "800", "800"]
    last_of_first_page = sorted("data/" + name for name in expected)[FIRST_PAGE_KEYS - 1]
    assert [r.query.get("marker", "") for r in pages][:2] == ["", last_of_first_page]
    object_gets = gets(emulator)
    assert len(object_gets) == 2000  # one whole-object GET each: no HEAD, no ranges
    assert all(r.range is None and r.headers.get("if-match") for r in object_gets)
    assert not any(r.method == "HEAD" for r in emulator.request_log)


def test_downloads_start_while_the_listing_is_still_paging(emulator, tmp_path):
    """The second page is only served once an object of the first page has landed: a
    download_dir that listed everything before downloading would never get there."""
    for i in range(30):
        emulator.put(f"p/{i:03d}", payload(i, 100))
    client = client_for(emulator)
    first_landed = threading.Event()
    real_list = client.list_objects

    def list_objects(*args, **kwargs):
        if kwargs.get("Marker") or (len(args) > 3 and args[3]):
            assert first_landed.wait(30), "no object landed while the listing was paused"
        return real_list(*args, **kwargs)

    client.list_objects = list_objects
    summary = client.download_dir(emulator.bucket, "p/", str(tmp_path), MaxKeys=10,
                                  object_callback=lambda result: first_landed.set())
    assert summary.downloaded == 30


def test_large_and_small_objects_share_one_capped_engine(emulator, tmp_path):
    big = os.urandom(3 * 1024 * 1024 + 123)
    emulator.put("mix/big.bin", big)
    for i in range(40):
        emulator.put(f"mix/small/{i}", payload(i, 2000))
    emulator.clear_log()
    summary = client_for(emulator).download_dir(emulator.bucket, "mix/", str(tmp_path), PartSize=1, MAXThread=3)
    assert summary.downloaded == 41 and not summary.failed
    assert (tmp_path / "big.bin").read_bytes() == big
    big_gets = gets(emulator, "mix/big.bin")
    assert sorted(r.range for r in big_gets) == sorted(
        f"bytes={o}-{min(o + 2**20, len(big)) - 1}" for o in range(0, len(big), 2**20))
    assert all(r.headers.get("if-match") for r in big_gets)
    object_conns = {r.conn_id for r in gets(emulator)}
    assert len(object_conns) <= 3  # MAXThread caps the connections of the whole batch


# -- keys and paths ------------------------------------------------------------------------------

ODD_KEYS = {
    "odd/文件/数据.bin": "文件/数据.bin",
    "odd/a b/c d.txt": "a b/c d.txt",
    "odd/q?x=1&y#z": "q?x=1&y#z",
    "odd/%2e%2e/lit": "%2e%2e/lit",
    "odd/emoji\U0001f600": "emoji\U0001f600",
    "odd/...": "...",
    "odd/.hidden": ".hidden",
    "odd/zero": "zero",
    "odd/deep/er/and/deeper/x": "deep/er/and/deeper/x",
}


def test_nested_odd_and_unicode_keys_and_folder_markers(emulator, tmp_path):
    for i, key in enumerate(ODD_KEYS):
        emulator.put(key, b"" if key.endswith("zero") else payload(i, 300 + i))
    emulator.put("odd/marker/", b"")
    emulator.put("odd/", b"")
    results = []
    summary = client_for(emulator).download_dir(emulator.bucket, "odd/", str(tmp_path), object_callback=results.append)
    assert not summary.failed and summary.downloaded == len(ODD_KEYS) and summary.folders == 2
    assert tree(tmp_path) == {local: (b"" if key.endswith("zero") else payload(i, 300 + i))
                              for i, (key, local) in enumerate(ODD_KEYS.items())}
    assert "marker" in folders(tmp_path) and not any((tmp_path / "marker").iterdir())
    assert {r.key for r in results if r.status == FOLDER} == {"odd/marker/", "odd/"}


UNSAFE = {
    "u/../escape": "'..' path component",
    "u/a/../../x": "'..' path component",
    "u//rooted": "empty path component",
    "u/back\\slash": "backslash",
    "u/ctl\x01char": "control character",
    "u/" + "n" * 300: "NAME_MAX",
}


def test_unsafe_keys_are_refused_and_never_written(emulator, tmp_path):
    for key in UNSAFE:
        emulator.put(key, b"should not land")
    emulator.put("u/fine", b"fine")
    emulator.clear_log()
    out = tmp_path / "inner" / "out"
    summary = client_for(emulator).download_dir(emulator.bucket, "u/", str(out))
    assert summary.downloaded == 1 and tree(out) == {"fine": b"fine"}
    reasons = dict(summary.failed)
    assert set(reasons) == set(UNSAFE)
    for key, reason in UNSAFE.items():
        assert reason in reasons[key]
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["fine", "inner", "out"]
    assert [r.key for r in gets(emulator)] == ["u/fine"]  # refused keys are never fetched


def test_file_and_folder_conflict_the_file_wins_and_the_key_under_it_is_reported(emulator, tmp_path):
    emulator.put("c/a", b"file a")
    emulator.put("c/a/b", b"under a")
    emulator.put("c/a-x", b"sibling")
    summary = client_for(emulator).download_dir(emulator.bucket, "c/", str(tmp_path))
    assert tree(tmp_path) == {"a": b"file a", "a-x": b"sibling"}
    assert summary.failed == [("c/a/b", "'a' is a file (key 'c/a'), it cannot also be a folder")]


def test_include_and_exclude_globs(emulator, tmp_path):
    for key in ["f/a.txt", "f/b.bin", "f/sub/c.txt", "f/sub/skip-me.txt", "f/logs/1.log", "f/logs/2.gz"]:
        emulator.put(key, key.encode())
    summary = client_for(emulator).download_dir(emulator.bucket, "f/", str(tmp_path),
                                                Include=("*.txt", "logs/*"), Exclude=("*skip*", "*.gz"))
    assert set(tree(tmp_path)) == {"a.txt", "sub/c.txt", "logs/1.log"}
    assert summary.downloaded == 3


# -- reruns ----------------------------------------------------------------------------------------

def test_second_run_skips_unchanged_files_without_a_single_get(emulator, tmp_path):
    for i in range(20):
        emulator.put(f"s/{i}", payload(i, 500 + i))
    client = client_for(emulator)
    first = client.download_dir(emulator.bucket, "s/", str(tmp_path))
    assert first.downloaded == 20
    info = emulator.head_object(emulator.bucket, "s/3")
    assert int(os.stat(tmp_path / "3").st_mtime) == int(listing_time(info.last_modified))

    emulator.clear_log()
    results = []
    second = client.download_dir(emulator.bucket, "s/", str(tmp_path), object_callback=results.append)
    assert (second.downloaded, second.skipped) == (0, 20)
    assert {r.status for r in results} == {SKIPPED}
    assert gets(emulator) == [] and listings(emulator)  # listed, nothing fetched

    emulator.put("s/5", b"a new, longer version of object five")
    os.utime(tmp_path / "7", (0, 0))  # a local copy that no longer matches
    emulator.clear_log()
    third = client.download_dir(emulator.bucket, "s/", str(tmp_path))
    assert (third.downloaded, third.skipped) == (2, 18)
    assert sorted(r.key for r in gets(emulator)) == ["s/5", "s/7"]
    assert (tmp_path / "5").read_bytes() == b"a new, longer version of object five"

    fourth = client.download_dir(emulator.bucket, "s/", str(tmp_path), SkipUnchanged=False)
    assert fourth.downloaded == 20


# -- failures and faults ------------------------------------------------------------------------

def test_a_local_folder_in_an_objects_place_is_reported_and_the_others_land(emulator, tmp_path):
    for i in range(6):
        emulator.put(f"f/{i}", payload(i, 300))
    (tmp_path / "2").mkdir()
    (tmp_path / "2" / "mine").write_bytes(b"keep")
    summary = client_for(emulator).download_dir(emulator.bucket, "f/", str(tmp_path))
    assert summary.downloaded == 5
    assert summary.failed == [("f/2", f"destination {str(tmp_path / '2')!r} is a folder")]
    assert (tmp_path / "2" / "mine").read_bytes() == b"keep" and leftovers(tmp_path) == []
    assert not any(r.key == "f/2" for r in gets(emulator))  # refused before any byte was fetched


def test_local_dir_created_with_its_parents_and_a_file_in_its_place_refused(emulator, tmp_path):
    for i in range(3):
        emulator.put(f"n/{i}", payload(i, 100))
    client = client_for(emulator)
    target = tmp_path / "new" / "deeper"
    assert client.download_dir(emulator.bucket, "n/", str(target)).downloaded == 3
    assert tree(target) == {str(i): payload(i, 100) for i in range(3)}
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(cosfast.CosClientError, match="LocalDir .*file' is not a folder"):
        client.download_dir(emulator.bucket, "n/", str(tmp_path / "file"))
    assert (tmp_path / "file").read_bytes() == b"x"


def test_one_object_failing_permanently_does_not_stop_the_others(emulator, tmp_path):
    for i in range(30):
        emulator.put(f"x/{i:02d}", payload(i, 700))
    emulator.add_fault(Fault("status", bucket=emulator.bucket, key="x/13", status=403, code="AccessDenied",
                             times=None))
    summary = client_for(emulator).download_dir(emulator.bucket, "x/", str(tmp_path))
    assert summary.downloaded == 29
    assert [key for key, _ in summary.failed] == ["x/13"]
    assert "AccessDenied" in summary.failed[0][1] and "403" in summary.failed[0][1]
    assert not (tmp_path / "13").exists() and leftovers(tmp_path) == []
    assert len(tree(tmp_path)) == 29


def test_faults_mid_batch_are_retried_or_reported(emulator, tmp_path):
    for i in range(40):
        emulator.put(f"y/{i:02d}", payload(i, 4096))
    bucket = emulator.bucket
    emulator.add_fault(Fault("drop", bucket=bucket, key="y/05", after_bytes=1000))  # retried from byte 1000
    emulator.add_fault(Fault("status", bucket=bucket, key="y/10", status=503, times=2))  # a 503 burst
    emulator.add_fault(Fault("stall", bucket=bucket, key="y/15", after_bytes=10, seconds=0.5))
    emulator.add_fault(Fault("flip", bucket=bucket, key="y/20", offset=100, times=None))  # CRC catches it
    emulator.add_fault(Fault("replace", bucket=bucket, key="y/25"))  # changed after it was listed
    results = {}
    summary = client_for(emulator).download_dir(bucket, "y/", str(tmp_path),
                                                object_callback=lambda r: results.__setitem__(r.key, r))
    assert summary.downloaded == 38
    reasons = dict(summary.failed)
    assert set(reasons) == {"y/20", "y/25"}
    assert "CRC-64" in reasons["y/20"]
    assert "changed" in reasons["y/25"] or "412" in reasons["y/25"]
    assert results["y/20"].status == FAILED
    for i in (5, 10, 15):
        assert (tmp_path / f"{i:02d}").read_bytes() == payload(i, 4096)
    assert not (tmp_path / "20").exists() and not (tmp_path / "25").exists()
    assert leftovers(tmp_path) == []


def test_a_listing_refused_raises_the_service_error(emulator, tmp_path):
    emulator.put("z/1", b"1")
    client = CosS3Client(CosConfig(**emulator.sdk_config(SecretKey="not-the-key")))
    with pytest.raises(cosfast.CosServiceError) as info:
        client.download_dir(emulator.bucket, "z/", str(tmp_path))
    assert info.value.get_status_code() == 403
    assert list(tmp_path.iterdir()) == []


def put_pages(emulator, count: int) -> dict[str, bytes]:
    """``count`` objects under l/, and the tree they make under LocalDir."""
    for i in range(count):
        emulator.put(f"l/{i:02d}", payload(i, 500))
    return {f"{i:02d}": payload(i, 500) for i in range(count)}


def test_a_listing_page_refused_for_a_while_is_retried_and_every_object_lands(emulator, tmp_path):
    expected = put_pages(emulator, 30)
    # MaxKeys=10: pages after "", "l/09" and "l/19". The second is refused twice, then served.
    emulator.add_fault(Fault("status", scope="listing", bucket=emulator.bucket, marker="l/09", status=503,
                             times=2))
    summary = client_for(emulator).download_dir(emulator.bucket, "l/", str(tmp_path), MaxKeys=10)
    assert (summary.downloaded, summary.failed) == (30, [])
    assert tree(tmp_path) == expected
    assert [(r.query.get("marker"), r.status, r.faults) for r in listings(emulator)] == [
        ("", 200, []), ("l/09", 503, ["status"]), ("l/09", 503, ["status"]), ("l/09", 200, []), ("l/19", 200, [])]


def test_a_listing_page_refused_for_good_raises_once_the_listed_objects_land(emulator, tmp_path):
    expected = put_pages(emulator, 30)
    emulator.add_fault(Fault("status", scope="listing", bucket=emulator.bucket, marker="l/09", status=503,
                             times=None))
    client = CosS3Client(CosConfig(**emulator.sdk_config()), retry_policy=RetryPolicy(max_attempts=3, base_delay=0.01))
    results = []
    with pytest.raises(cosfast.CosServiceError) as info:
        client.download_dir(emulator.bucket, "l/", str(tmp_path), MaxKeys=10, object_callback=results.append)
    assert (info.value.get_status_code(), info.value.get_error_code()) == (503, "SlowDown")
    # The first page was downloaded whole before the error was raised; nothing is half-written.
    assert sorted((r.key, r.status) for r in results) == [(f"l/{i:02d}", DOWNLOADED) for i in range(10)]
    assert tree(tmp_path) == {name: data for name, data in expected.items() if int(name) < 10}
    assert leftovers(tmp_path) == []
    assert [(r.query.get("marker"), r.status) for r in listings(emulator)] == [("", 200)] + [("l/09", 503)] * 3


# -- the SDK's own recipe, with cosfast's imports -------------------------------------------------

def run_sample(emulator, workdir: Path, *, use_cosfast: bool) -> None:
    code = SAMPLE.read_text(encoding="utf-8")
    code = code.replace("scheme = 'https'", "scheme = 'http'")
    code = code.replace("region = 'ap-beijing'", f"region = {emulator.region!r}")
    code = code.replace("Token=token, Scheme=scheme)",
                        f"Token=token, Scheme=scheme, IP={emulator.host!r}, Port={emulator.port})")
    code = code.replace("test_bucket = 'examplebucket-1250000000'", f"test_bucket = {emulator.bucket!r}")
    # The one change beyond connection settings: small listing pages, so that the sample's
    # NextMarker loop runs over several pages without seeding a thousand objects.
    code = code.replace("client.list_objects(test_bucket, prefix, delimiter, marker)",
                        "client.list_objects(test_bucket, prefix, delimiter, marker, MaxKeys=20)")
    if use_cosfast:
        code = code.replace("from qcloud_cos", "from cosfast")
    assert code.count("IP=") == 1 and code.count("MaxKeys=20") == 1 and emulator.bucket in code
    script = workdir / "sample.py"
    script.write_text(code, encoding="utf-8")
    env = dict(os.environ, COS_SECRET_ID=emulator.secret_id, COS_SECRET_KEY=emulator.secret_key,
               PYTHONPATH=REPO_ROOT)
    subprocess.run([sys.executable, str(script)], cwd=workdir, env=env, check=True, capture_output=True,
                   timeout=120)


def test_sdk_batch_sample_with_cosfast_imports_makes_the_same_tree(emulator, tmp_path):
    pytest.importorskip("qcloud_cos")
    keys = ["data/a.txt", "data/sub/b.bin", "data/sub/deeper/c", "data/文件.txt", "data/empty/", "data/z y"]
    keys += [f"data/many/{i:04d}" for i in range(60)]  # several listing pages of 20
    for i, key in enumerate(keys):
        emulator.put(key, b"" if key.endswith("/") else payload(i, 100 + i))
    sdk_dir, ours_dir = tmp_path / "sdk", tmp_path / "cosfast"
    sdk_dir.mkdir()
    ours_dir.mkdir()
    run_sample(emulator, sdk_dir, use_cosfast=False)
    run_sample(emulator, ours_dir, use_cosfast=True)
    sdk_tree = tree(sdk_dir / "download")
    assert len(sdk_tree) == len(keys) - 1
    assert tree(ours_dir / "download") == sdk_tree
    assert folders(ours_dir / "download") == folders(sdk_dir / "download")


def test_a_large_object_cut_off_mid_batch_resumes_on_the_next_run(emulator, tmp_path):
    from cosfast.transfer.record import ResumeRecord

    mib = 1024 * 1024
    big = os.urandom(4 * mib)
    emulator.put("big/obj", big)
    emulator.put("big/small", b"small")
    fault = emulator.add_fault(Fault("status", bucket=emulator.bucket, key="big/obj", range_start=mib,
                                     status=503, times=None))
    # Quick retries: the fault makes every attempt at part 1 fail until the attempts run out.
    client = CosS3Client(CosConfig(**emulator.sdk_config()), retry_policy=RetryPolicy(base_delay=0.01))
    first = client.download_dir(emulator.bucket, "big/", str(tmp_path), PartSize=1, MAXThread=4)
    assert first.downloaded == 1 and [key for key, _ in first.failed] == ["big/obj"]
    assert "503" in first.failed[0][1]
    records = list(tmp_path.glob(".obj.cosfast.resume"))
    assert len(records) == 1 and not (tmp_path / "obj").exists()
    done = set(ResumeRecord.load(str(records[0])).parts)
    assert 1 not in done and done  # the parts that landed are on record

    emulator.remove_fault(fault)
    emulator.clear_log()
    second = client.download_dir(emulator.bucket, "big/", str(tmp_path), PartSize=1, MAXThread=4)
    assert (second.downloaded, second.skipped, second.failed) == (1, 1, [])
    assert (tmp_path / "obj").read_bytes() == big
    fetched = sorted(r.range for r in gets(emulator, "big/obj"))
    assert fetched == sorted(f"bytes={i * mib}-{(i + 1) * mib - 1}" for i in range(4) if i not in done)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("direct_io", [True, False])
def test_large_objects_of_a_batch_land_exactly_with_and_without_direct_io(emulator, tmp_path, direct_io):
    # With DirectIO=True the parts of objects above PartSize (4 stages each) are written with
    # O_DIRECT as far as the disk takes them; small objects always go through the page cache.
    # Either way: the exact bytes and nothing else in the folder.
    rnd = random.Random(7)
    objects = {f"d/f{i:03d}": rnd.randbytes(rnd.choice([4096, 262144, 262144 + 1, 12 * 1024 * 1024 + 3]))
               for i in range(16)}
    for key, data in objects.items():
        emulator.put(key, data)
    summary = client_for(emulator).download_dir(emulator.bucket, "d/", str(tmp_path / "out"), PartSize=4,
                                                DirectIO=direct_io)
    assert summary.ok and summary.downloaded == len(objects)
    assert tree(tmp_path / "out") == {key[2:]: data for key, data in objects.items()}
