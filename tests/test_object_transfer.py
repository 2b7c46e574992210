"""The transfers' local side without a network: locking, cleanup (what a batch relies on)."""
from __future__ import annotations

import pytest

from cosfast.transfer.destination import DownloadLockedError
from cosfast.transfer.download import AnyTransfer, DownloadOptions, new_transfer
from cosfast.transfer.record import ObjectIdentity


def identity(size: int) -> ObjectIdentity:
    return ObjectIdentity(bucket="b-1250000000", key="k", version_id=None, etag='"e"', size=size,
                          last_modified=None, crc64=None)


def never_called(extra: dict) -> tuple:
    raise AssertionError("no request is made in these tests")


def transfer(dest, size: int = 10) -> AnyTransfer:
    return new_transfer(identity(size), str(dest), build_request=never_called, options=DownloadOptions())


def test_second_single_get_download_to_the_same_file_is_refused_without_a_lock_file(tmp_path):
    first = transfer(tmp_path / "f")
    jobs = first.begin()
    assert len(jobs) == 1 and jobs[0].whole_object
    assert sorted(p.name for p in tmp_path.iterdir()) == [".f.cosfast.tmp"]  # no .lock file
    with pytest.raises(DownloadLockedError, match="another download"):
        transfer(tmp_path / "f").begin()
    assert (tmp_path / ".f.cosfast.tmp").exists()  # the refused one left the other's temp alone
    first.abandon(RuntimeError("stop"))
    assert first.settled and list(tmp_path.iterdir()) == []
    third = transfer(tmp_path / "f")
    assert len(third.begin()) == 1
    third.abandon(RuntimeError("stop"))


def test_missing_folder_and_folder_in_the_way_are_clear_errors(tmp_path):
    with pytest.raises(Exception, match="does not exist"):
        transfer(tmp_path / "no" / "f").begin()
    (tmp_path / "d").mkdir()
    with pytest.raises(Exception, match="is a folder"):
        transfer(tmp_path / "d").begin()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_zero_byte_object_still_makes_one_request(tmp_path):
    empty = transfer(tmp_path / "z", size=0)
    jobs = empty.begin()
    assert [job.part.length for job in jobs] == [0]
    empty.abandon(RuntimeError("stop"))
    assert list(tmp_path.iterdir()) == []


def test_a_transfer_stopped_before_it_got_the_lock_leaves_the_holders_files_alone(tmp_path):
    holder = transfer(tmp_path / "f")
    holder.begin()
    waiting = transfer(tmp_path / "f")  # e.g. a batch interrupted before a lane opened it
    waiting.abandon(KeyboardInterrupt())
    assert waiting.settled
    assert (tmp_path / ".f.cosfast.tmp").exists()
    holder.abandon(RuntimeError("stop"))
    assert list(tmp_path.iterdir()) == []
