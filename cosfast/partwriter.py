"""Positioned writes of downloaded parts into one temp file, with each part's CRC-64/XZ.

The download engine opens one :class:`TempFile` per object (sized, and preallocated so a full
disk fails before any byte is fetched) and hands each ranged GET a :class:`PartSink` as its
pycurl ``WRITEFUNCTION``::

    with TempFile(tmp_path, size) as tf:
        sink = PartSink(tf, offset, length)             # or crc=/written= to resume a part
        curl.setopt(pycurl.WRITEFUNCTION, sink, use_memoryview=True)
        ...                                             # transfer runs
        sink.raise_if_failed()                          # pycurl swallows callback exceptions
        assert sink.done and sink.crc == expected_part_crc

``PartSink(chunk)`` pwrites the chunk at ``offset + written`` and continues ``crc`` over it in
one pass with the GIL released, then returns None. With ``stage_size=N`` chunks are gathered
into a recycled N-byte buffer first and written when it fills, when the part is complete, or on
``flush()``: libcurl hands bodies over in 16 KiB pieces, and one 1 MiB pwrite costs the kernel
far less than 64 small ones. On failure it stores the exception in
``error`` and returns 0, so libcurl aborts with ``CURLE_WRITE_ERROR``; every later call also
returns 0. The stored exception is:

- :class:`PartOverflowError` (a ``ValueError``) when a chunk would pass the end of the part
  (nothing of that chunk is written);
- ``OSError`` with the original errno and ``filename == tempfile.path`` when the write failed
  (ENOSPC, EFBIG, EIO, ...; EBADF once the TempFile is closed). ``written`` and ``crc`` then
  describe exactly the bytes that reached the file, so a retry can continue from them.

``direct=True`` (with a stage; compiled module only, on Linux): full stages at aligned offsets
may go to the file with O_DIRECT through native AIO while the sink keeps taking chunks, the rest
through the page cache. The call that completes the part and ``flush()`` wait for those writes;
with ``finish_later=True`` the completing call does not, ``writing`` says whether some are in
flight and ``poll()`` collects them without waiting (the download engine's sinks). A failed
direct write is stored like a buffered one, and the part must then be fetched from its start.
``direct="auto"`` (the download's default for multi-part objects) does the same only while the
disk keeps up: when fewer than 40% of a window of 128 full stages of the process's auto sinks
could go direct (no free slot: the disk's writes had not ended; or the kernel could not start
one at once), auto sinks write through the page cache for the next 512 stages, then try again
(``auto_direct_paused()``, ``reset_auto_direct()``).

``TempFile(recycle=True)`` keeps the file out of the page cache: writeback is started every 4 MiB
written and pages already written back are dropped, so later writes reuse them; ``"when-slow"``
does so only while timed writes show the page cache to be slow. Closed recycling files wait in a
ring until their last pages are clean; ``release_recycled()`` drops their pages (call it when a
download ends: after waiting for the writeback of files that recycled all along, so none of
their pages stays cached).

A sink holds a reference to its TempFile, so the descriptor stays open while sinks exist;
``TempFile.close()`` during a running write defers the real close to the end of that write.
Whole-object CRC: ``cosfast.crc64.crc64_combine`` over the parts' ``crc`` values, in order.

``backend`` says whether the compiled module or the pure-Python twin is live
(``COSFAST_NO_EXTENSIONS=1`` forces the twin); ``CRC64_KERNEL`` names the CRC kernel used,
always the one :mod:`cosfast.crc64` uses.
"""
from __future__ import annotations

from cosfast._backend import load
from cosfast._partwriter_common import PartOverflowError

_impl, backend = load("_partwriter")

#: An open, sized file that parts are pwritten into; see the module docstring.
TempFile = _impl.TempFile
#: The pycurl write callback for one byte range of a TempFile; see the module docstring.
PartSink = _impl.PartSink
#: Drops the pages of closed recycling TempFiles still in the ring (call when a download ends;
#: see TempFile's ``recycle``).
release_recycled = _impl.release_recycled
#: Sets the write callback of a pycurl handle whose body goes to a PartSink: bind_writer(curl,
#: sink, slow) with ``slow`` the Python callback; the compiled module puts a C callback in front
#: that copies chunks into the sink's stage without the GIL. Returns what must stay referenced
#: while the transfer runs.
bind_writer = _impl.bind_writer
#: Whether sinks with direct="auto" write through the page cache for now, because too few of
#: their recent stages could go direct in this process (the disk did not keep up).
auto_direct_paused = _impl.auto_direct_paused
#: Forgets that record: the auto sinks' next stages are offered to the disk again.
reset_auto_direct = _impl.reset_auto_direct
#: Checks TempFile's ``recycle`` argument (False, True or "when-slow").
recycle_mode = _impl.recycle_mode
#: Name of the CRC-64 kernel the part writer runs.
CRC64_KERNEL: str = _impl.CRC64_KERNEL
#: The stage downloads use: writes of 1 MiB, as the official SDK's get_stream_to_file makes.
DEFAULT_STAGE_SIZE = 1024 * 1024

__all__ = ["CRC64_KERNEL", "DEFAULT_STAGE_SIZE", "PartOverflowError", "PartSink", "TempFile", "auto_direct_paused",
           "backend", "bind_writer", "recycle_mode", "release_recycled", "reset_auto_direct"]
