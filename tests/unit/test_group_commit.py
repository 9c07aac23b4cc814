"""GroupCommit: concurrent callers share one handler call; each gets its own result."""

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
import structlog.testing

from bridge.group_commit import GroupCommit

_WAIT_S = 10.0


class _Recorder:
    """A handler that records each batch and can hold the first one open."""

    def __init__(self, *, hold_first: bool = False, fail_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.threads: list[str] = []
        self.release = threading.Event()
        self.entered = threading.Event()
        self._hold = hold_first
        self._fail_on = fail_on

    def __call__(self, items: Sequence[int]) -> list[str]:
        self.batches.append(list(items))
        self.threads.append(threading.current_thread().name)
        self.entered.set()
        if self._hold and len(self.batches) == 1:
            assert self.release.wait(_WAIT_S)
        if self._fail_on is not None and self._fail_on in items:
            msg = "the batch's transaction failed"
            raise RuntimeError(msg)
        return [f"done-{i}" for i in items]


def _until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + _WAIT_S
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def _submit_behind_a_held_batch(
    group: GroupCommit[int, str], handler: _Recorder, items: Sequence[int]
) -> tuple[Future[str | None], list[Future[str | None]]]:
    """Item 0 leads a batch the handler holds open; `items` queue behind it."""
    pool = ThreadPoolExecutor(max_workers=len(items) + 1)
    first = pool.submit(group.submit, 0, handler)
    assert handler.entered.wait(_WAIT_S)
    rest = [pool.submit(group.submit, i, handler) for i in items]
    _until(lambda: group.waiting() == len(items))
    handler.release.set()
    pool.shutdown(wait=True)
    return first, rest


def test_a_lone_caller_is_a_batch_of_one_handled_in_its_own_thread() -> None:
    group: GroupCommit[int, str] = GroupCommit(max_batch=8)
    handler = _Recorder()
    assert group.submit(7, handler) == "done-7"
    assert handler.batches == [[7]]
    assert handler.threads == [threading.current_thread().name]
    assert group.waiting() == 0


def test_callers_arriving_during_a_batch_share_the_next_one() -> None:
    group: GroupCommit[int, str] = GroupCommit(max_batch=8)
    handler = _Recorder(hold_first=True)
    first, rest = _submit_behind_a_held_batch(group, handler, [1, 2, 3, 4, 5])
    assert handler.batches[0] == [0]
    assert sorted(handler.batches[1]) == [1, 2, 3, 4, 5]
    assert len(handler.batches) == 2
    # Each caller gets the result of its own item, not a neighbour's.
    assert first.result() == "done-0"
    assert [f.result() for f in rest] == [f"done-{i}" for i in [1, 2, 3, 4, 5]]
    assert group.waiting() == 0


def test_max_batch_splits_the_queue_and_every_caller_is_answered() -> None:
    group: GroupCommit[int, str] = GroupCommit(max_batch=2)
    handler = _Recorder(hold_first=True)
    _, rest = _submit_behind_a_held_batch(group, handler, [1, 2, 3, 4, 5])
    assert [len(b) for b in handler.batches] == [1, 2, 2, 1]
    assert sorted(i for b in handler.batches[1:] for i in b) == [1, 2, 3, 4, 5]
    assert [f.result() for f in rest] == [f"done-{i}" for i in [1, 2, 3, 4, 5]]


def test_a_failed_batch_answers_its_callers_none_and_the_next_one_runs() -> None:
    group: GroupCommit[int, str] = GroupCommit(max_batch=3)
    handler = _Recorder(hold_first=True, fail_on=2)
    _, rest = _submit_behind_a_held_batch(group, handler, [1, 2, 3, 4, 5])
    results = dict(zip([1, 2, 3, 4, 5], [f.result() for f in rest], strict=True))
    failed = next(b for b in handler.batches if 2 in b)
    for item, result in results.items():
        assert result == (None if item in failed else f"done-{item}")
    assert group.waiting() == 0
    # The coordinator is usable after a failure: no leader left stranded.
    assert group.submit(9, handler) == "done-9"


def test_a_failed_batch_is_logged_by_the_error_class_only() -> None:
    group: GroupCommit[int, str] = GroupCommit(max_batch=4)

    def fail(items: Sequence[int]) -> list[str]:
        msg = "INSERT ... [parameters: {'password': 'hunter2'}]"
        raise RuntimeError(msg)

    with structlog.testing.capture_logs() as logs:
        assert group.submit(1, fail) is None
    assert logs == [
        {
            "event": "group_commit_batch_failed",
            "size": 1,
            "error": "RuntimeError",
            "log_level": "warning",
        }
    ]
    assert "hunter2" not in repr(logs)


def test_a_handler_answering_the_wrong_number_of_results_is_a_failed_batch() -> None:
    group: GroupCommit[int, str] = GroupCommit(max_batch=4)
    assert group.submit(1, lambda items: []) is None


def test_max_batch_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        GroupCommit(max_batch=0)
