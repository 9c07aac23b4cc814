"""How many `bridge worker` processes run when nobody says."""

import os

from bridge.cli.supervise import default_processes, worker_processes


def test_threads_get_one_process_per_cpu_at_most_four() -> None:
    cpus = len(os.sched_getaffinity(0))
    assert default_processes() == min(cpus, 4)
    assert default_processes(limit=1) == 1
    assert worker_processes(None, "threads") == min(cpus, 4)


def test_prefork_and_solo_run_one_process_unless_asked() -> None:
    assert worker_processes(None, "prefork") == 1
    assert worker_processes(None, "solo") == 1
    assert worker_processes(3, "prefork") == 3
    assert worker_processes(2, "threads") == 2
