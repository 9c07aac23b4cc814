"""HeapTrimmer: freed heap goes back to the OS on its timer, and only then.

Run in a child process, so the measured resident size is not the test runner's.
The child fills ~120 MB of heap in 2 KB blocks (below glibc's mmap threshold, so
they come from the heap), frees all but the last (which pins the top of the heap,
so glibc's own top trimming cannot hand anything back), then reports its RSS
before and after the trimmer has had a chance to run.
"""

import json
import subprocess
import sys

from bridge.memory import HeapTrimmer

CHILD = """
import json, time
from bridge.memory import HeapTrimmer

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

blocks = [bytearray(2048) for _ in range(60_000)]
pin = blocks[-1]
del blocks
freed = rss_mb()
time.sleep(0.3)
untrimmed = rss_mb()
trimmer = HeapTrimmer(0.05)
started = trimmer.start()
deadline = time.monotonic() + 10
while rss_mb() > freed - 60 and time.monotonic() < deadline:
    time.sleep(0.05)
trimmed = rss_mb()
trimmer.stop()
print(json.dumps({"freed": freed, "untrimmed": untrimmed, "trimmed": trimmed,
                  "started": started}))
"""


def test_freed_heap_returns_to_the_os_when_the_trimmer_runs() -> None:
    assert HeapTrimmer(1).supported, "Debian's glibc has malloc_trim"
    out = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    mb = json.loads(out.stdout)
    assert mb["started"] is True
    # Freed but kept: nothing comes back by itself.
    assert mb["untrimmed"] > mb["freed"] - 10
    # The trimmer hands most of the ~120 MB back.
    assert mb["trimmed"] < mb["untrimmed"] - 60


def test_interval_zero_means_off() -> None:
    trimmer = HeapTrimmer(0)
    assert not trimmer.supported
    assert trimmer.start() is False
    trimmer.stop()  # harmless when never started
