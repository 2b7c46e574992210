"""partwriter.bind_writer: a pycurl transfer into a PartSink, with the compiled module's C write
callback in front of the Python one (and the pure-Python twin, which sets the Python one).

Real transfers from a local HTTP server on 127.0.0.1, real files, real threads."""
from __future__ import annotations

import gc
import sys
import threading

import pycurl
import pytest

from cosfast.crc64 import crc64
from local_http import serving_bodies
from test_partwriter import pw, random_bytes  # noqa: F401 (pw: the part-writer fixture, every backend)

MiB = 1 << 20
BODY = random_bytes(5 * MiB + 12345, seed=61)


@pytest.fixture(scope="module")
def base_url():
    # GET /from/<n>: the body from byte n on.
    with serving_bodies(lambda path: BODY[int(path.rsplit("/", 1)[1]):]) as base:
        yield f"{base}/from/"


def compiled(pw) -> bool:
    return pw.__name__ == "cosfast._partwriter"


class Recorder:
    """A Python write callback that passes chunks on to ``sink`` (or keeps them) and counts
    what it was given."""

    def __init__(self, sink=None, fail_at: int = -1) -> None:
        self.sink, self.fail_at = sink, fail_at
        self.calls = 0
        self.kept = bytearray()

    def __call__(self, chunk):
        assert type(chunk) is memoryview
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("the write callback failed")
        if self.sink is None:
            self.kept += chunk
            return None
        return self.sink(chunk)


def fetch(url: str, curl: pycurl.Curl) -> pycurl.error | None:
    curl.setopt(pycurl.URL, url)
    curl.setopt(pycurl.BUFFERSIZE, 1 * MiB)
    try:
        curl.perform()
        return None
    except pycurl.error as exc:
        return exc


def bound_transfer(pw, url, sink, slow):
    curl = pycurl.Curl()
    try:
        writer = pw.bind_writer(curl, sink, slow)
        return writer, fetch(url, curl)
    finally:
        curl.close()


@pytest.mark.timeout(60)
def test_the_c_callback_stages_the_chunks_and_python_sees_only_the_writing_ones(pw, tmp_path, base_url):
    path = tmp_path / "f"
    with pw.TempFile(path, len(BODY)) as temp:
        sink = pw.PartSink(temp, 0, len(BODY), stage_size=MiB)
        slow = Recorder(sink)
        writer, error = bound_transfer(pw, base_url + "0", sink, slow)
    assert error is None and sink.error is None and sink.done
    assert path.read_bytes() == BODY
    assert sink.crc == crc64(BODY)
    stages = -(-len(BODY) // MiB)
    if compiled(pw):
        assert writer is not None  # this process found pycurl's libcurl and its handle
        # The first chunk (is the body the sink's?), one that fills each stage, the last one.
        assert slow.calls <= stages + 2
    else:
        assert writer is None
        assert slow.calls > 5 * stages  # every chunk (libcurl hands over at most 16 KiB)


@pytest.mark.timeout(60)
def test_a_body_the_python_callback_keeps_never_reaches_the_sink(pw, tmp_path, base_url):
    # As an error response's body: the Python callback keeps it, so every chunk must reach it.
    with pw.TempFile(tmp_path / "f", len(BODY)) as temp:
        sink = pw.PartSink(temp, 0, len(BODY), stage_size=MiB)
        slow = Recorder()
        _, error = bound_transfer(pw, base_url + "0", sink, slow)
    assert error is None
    assert bytes(slow.kept) == BODY
    assert sink.written == 0


@pytest.mark.timeout(60)
def test_a_resumed_sink_continues_after_its_written_bytes(pw, tmp_path, base_url):
    path = tmp_path / "f"
    done = 3 * MiB + 77  # mid-stage, as a retried part continues
    path.write_bytes(BODY[:done] + bytes(len(BODY) - done))
    with pw.TempFile(path, len(BODY), create=False) as temp:
        sink = pw.PartSink(temp, 0, len(BODY), written=done, crc=crc64(BODY[:done]), stage_size=MiB)
        _, error = bound_transfer(pw, base_url + str(done), sink, Recorder(sink))
    assert error is None and sink.done
    assert path.read_bytes() == BODY
    assert sink.crc == crc64(BODY)


@pytest.mark.timeout(60)
def test_a_python_callback_that_raises_aborts_the_transfer(pw, tmp_path, base_url):
    # As pycurl does: the exception is reported (not raised through libcurl) and the transfer
    # ends with a write error.
    unraisable = []
    hook, sys.unraisablehook = sys.unraisablehook, unraisable.append
    try:
        with pw.TempFile(tmp_path / "f", len(BODY)) as temp:
            sink = pw.PartSink(temp, 0, len(BODY), stage_size=MiB)
            _, error = bound_transfer(pw, base_url + "0", sink, Recorder(sink, fail_at=2))
    finally:
        sys.unraisablehook = hook
    assert error is not None and error.args[0] == pycurl.E_WRITE_ERROR
    assert sink.written < len(BODY)
    if compiled(pw):
        assert [type(u.exc_value) for u in unraisable] == [RuntimeError]


@pytest.mark.timeout(60)
def test_a_sink_without_a_stage_gets_every_chunk_through_python(pw, tmp_path, base_url):
    path = tmp_path / "f"
    with pw.TempFile(path, len(BODY)) as temp:
        sink = pw.PartSink(temp, 0, len(BODY))
        slow = Recorder(sink)
        writer, error = bound_transfer(pw, base_url + "0", sink, slow)
    assert writer is None  # nothing to gather: every chunk is a write
    assert error is None and path.read_bytes() == BODY and slow.calls > 5


@pytest.mark.timeout(60)
def test_the_handle_takes_a_python_callback_again(pw, tmp_path, base_url):
    # The engine reuses handles: once the C callback's transfer ended and its writer is gone,
    # pycurl's own WRITEFUNCTION is back in place.
    curl = pycurl.Curl()
    try:
        with pw.TempFile(tmp_path / "f", len(BODY)) as temp:
            sink = pw.PartSink(temp, 0, len(BODY), stage_size=MiB)
            writer = pw.bind_writer(curl, sink, Recorder(sink))
            assert fetch(base_url + "0", curl) is None and sink.done
        curl.setopt(pycurl.WRITEFUNCTION, lambda chunk: None)
        del writer, sink, temp
        gc.collect()
        kept = Recorder()
        curl.setopt(pycurl.WRITEFUNCTION, kept, use_memoryview=True)
        assert fetch(base_url + "0", curl) is None
        assert bytes(kept.kept) == BODY
    finally:
        curl.close()


@pytest.mark.timeout(60)
def test_transfers_in_two_threads_at_once_land_exactly(pw, tmp_path, base_url):
    # The engine's lanes: each thread drives its own transfers, the C callbacks without the GIL.
    results: dict[int, tuple] = {}

    def run(i: int) -> None:
        path = tmp_path / f"f{i}"
        with pw.TempFile(path, len(BODY)) as temp:
            sink = pw.PartSink(temp, 0, len(BODY), stage_size=MiB)
            _, error = bound_transfer(pw, base_url + "0", sink, Recorder(sink))
        results[i] = (error, sink.crc, path.read_bytes() == BODY)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {i: (None, crc64(BODY), True) for i in range(4)}
