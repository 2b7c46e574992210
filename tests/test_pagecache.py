"""KeepPageCache and DirectIO: the machine rules (cosfast.transfer.pagecache) and the facade's checks."""
from __future__ import annotations

import pytest

from cosfast import CosClientError, CosConfig, CosS3Client
from cosfast.transfer.pagecache import direct_for, host_takes_freed_memory, recycling_for


@pytest.mark.parametrize("content, expected", [("186350748\n", True), ("0\n", False), ("", False),
                                               ("not a number", False)])
def test_page_reporting_counter_decides_whether_the_host_takes_freed_memory(tmp_path, content, expected):
    counter = tmp_path / "reported_kib"
    counter.write_text(content)
    assert host_takes_freed_memory(str(counter)) is expected


def test_no_page_reporting_counter_means_freed_memory_stays(tmp_path):
    assert host_takes_freed_memory(str(tmp_path / "missing")) is False


def test_an_explicit_setting_wins_over_the_machine():
    assert recycling_for(True) is False
    assert recycling_for(False) is True


def test_by_default_files_recycle_only_where_the_host_takes_freed_memory():
    assert recycling_for(None) == ("when-slow" if host_takes_freed_memory() else False)


@pytest.mark.parametrize("keep_page_cache", [None, True, False])
def test_an_explicit_direct_io_wins_over_keep_page_cache(keep_page_cache):
    assert direct_for(True, keep_page_cache) is True
    assert direct_for(False, keep_page_cache) is False


def test_by_default_parts_go_direct_while_the_disk_keeps_up_unless_the_pages_are_to_stay():
    assert direct_for(None, None) == "auto"
    assert direct_for(None, False) == "auto"
    assert direct_for(None, True) is False


@pytest.mark.parametrize("keyword", ["KeepPageCache", "DirectIO"])
@pytest.mark.parametrize("method, args", [
    ("download_file", ("bucket-1250000000", "key", "out.bin")),
    ("download_dir", ("bucket-1250000000", "prefix/", "out")),
])
def test_page_cache_flags_must_be_a_bool_or_none(tmp_path, monkeypatch, method, args, keyword):
    monkeypatch.chdir(tmp_path)
    client = CosS3Client(CosConfig(Region="ap-guangzhou", SecretId="AKIDexample", SecretKey="secret",
                                   IP="127.0.0.1", Port=9, Scheme="http"))  # refused before any request
    with pytest.raises(CosClientError, match=f"{keyword} must be True, False or None, got 'yes'"):
        getattr(client, method)(*args, **{keyword: "yes"})
    assert list(tmp_path.iterdir()) == []
