"""SimpleThreadPool: the SDK's interface and result shape, checked side by side with the SDK's own."""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from cosfast.cos_exception import CosClientError
from cosfast.cos_threadpool import PoolNotFinishedError, SimpleThreadPool

sdk_threadpool = pytest.importorskip("qcloud_cos.cos_threadpool")

POOLS = {"cosfast": SimpleThreadPool, "qcloud_cos": sdk_threadpool.SimpleThreadPool}
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__import__("cosfast").__file__)))


class WithMessage(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.message = message


def square(x):
    return x * x


def fail_with(exc):
    raise exc


def run_mixed(pool_class):
    pool = pool_class(3)
    for i in range(20):
        pool.add_task(square, i)
    pool.add_task(fail_with, CosClientError("client says no"))
    pool.add_task(fail_with, WithMessage("has a message"))
    pool.add_task(fail_with, ValueError("plain"))
    pool.wait_completion()
    return pool.get_result()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", POOLS)
def test_result_shape_and_failure_messages(name):
    result = run_mixed(POOLS[name])
    assert set(result) == {"success_all", "detail"}
    assert result["success_all"] is False
    assert len(result["detail"]) == 3
    succeeded = sum(d[0] for d in result["detail"])
    failed = sum(d[1] for d in result["detail"])
    values = sorted((v for d in result["detail"] for v in d[2]), key=repr)
    assert (succeeded, failed) == (20, 3)
    expected = sorted([i * i for i in range(20)] + ["client says no", "has a message", "meet some exception"],
                      key=repr)
    assert values == expected
    for ok, bad, results in result["detail"]:
        assert len(results) == ok + bad


@pytest.mark.timeout(30)
def test_same_totals_as_the_sdk():
    ours, theirs = run_mixed(SimpleThreadPool), run_mixed(POOLS["qcloud_cos"])

    def totals(result):
        return (result["success_all"], sum(d[0] for d in result["detail"]), sum(d[1] for d in result["detail"]),
                sorted(map(repr, (v for d in result["detail"] for v in d[2]))))

    assert totals(ours) == totals(theirs)


@pytest.mark.timeout(30)
def test_all_succeed_and_tasks_run_concurrently():
    pool = SimpleThreadPool(4)
    barrier = threading.Barrier(4, timeout=10)  # only passes if 4 tasks run at the same time
    for _ in range(4):
        pool.add_task(barrier.wait)
    pool.wait_completion()
    result = pool.get_result()
    assert result["success_all"] is True
    assert sorted(v for d in result["detail"] for v in d[2]) == [0, 1, 2, 3]


@pytest.mark.timeout(30)
def test_get_result_before_wait_completion_is_a_clear_error():
    pool = SimpleThreadPool(1)
    pool.add_task(square, 2)
    with pytest.raises(PoolNotFinishedError, match="wait_completion"):
        pool.get_result()
    pool.wait_completion()
    assert pool.get_result()["detail"] == [(1, 0, [4])]


@pytest.mark.timeout(30)
def test_pool_can_be_reused_after_wait_completion():
    pool = SimpleThreadPool(2)
    pool.add_task(square, 3)
    pool.wait_completion()
    pool.add_task(square, 5)
    pool.wait_completion()
    result = pool.get_result()
    assert [v for d in result["detail"] for v in d[2]] == [25]  # a new round, new workers
    assert all(not w.is_alive() for w in pool._workers)


def test_bounded_queue_and_bad_size():
    with pytest.raises(ValueError, match="num_threads"):
        SimpleThreadPool(0)
    pool = SimpleThreadPool(1, num_queue=2)
    gate = threading.Event()
    pool.add_task(gate.wait, 10)
    added = []
    adder = threading.Thread(target=lambda: [pool.add_task(added.append, i) for i in range(5)])
    adder.start()
    adder.join(0.3)
    assert adder.is_alive()  # blocked: one task running, two queued, the queue is full
    gate.set()
    adder.join(10)
    pool.wait_completion()
    assert added == [0, 1, 2, 3, 4]


@pytest.mark.timeout(60)
def test_script_that_forgets_wait_completion_still_runs_its_tasks_and_exits(tmp_path):
    out = tmp_path / "out"
    script = (
        "import time\n"
        "from cosfast.cos_threadpool import SimpleThreadPool\n"
        "pool = SimpleThreadPool(2)\n"
        f"pool.add_task(lambda: (time.sleep(0.3), open({str(out)!r}, 'w').write('done')))\n"
    )
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=30)
    assert out.read_text() == "done"
