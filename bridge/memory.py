"""Give a long-running process's freed heap back to the OS on a timer (glibc).

Why: a worker's Python heap stays flat over thousands of orders (tracemalloc), yet
its resident memory crept up 2-3 MB from 2,000 to 10,000 orders: memory freed by 16
threads stays in glibc's heap, and the resident size follows the busiest moment
so far. `malloc_trim(0)` hands free pages back (including holes in the middle of
the heap); every `BRIDGE_MALLOC_TRIM_SECONDS` it halved that growth and let the
curve come back down (bench/soak.py, docs/benchmarks.md). It costs a few ms of one
thread per run and holds no lock of ours.

Only where the C library has `malloc_trim` (glibc); elsewhere it does nothing.
"""

import ctypes
import threading
from typing import Any

import structlog

log = structlog.get_logger(__name__)


def _malloc_trim() -> Any | None:
    # CDLL(None): the symbols already loaded into this process, libc's included.
    try:
        return getattr(ctypes.CDLL(None), "malloc_trim", None)
    except OSError:
        return None


class HeapTrimmer:
    """A daemon thread that calls `malloc_trim(0)` every `interval` seconds."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._trim = _malloc_trim() if interval > 0 else None

    @property
    def supported(self) -> bool:
        return self._trim is not None

    def start(self) -> bool:
        """Start trimming; False when off (interval 0) or not glibc."""
        if self._trim is None or self._thread is not None:
            return False
        self._thread = threading.Thread(
            target=self._run, args=(self._trim,), name="heap-trimmer", daemon=True
        )
        self._thread.start()
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self, trim: Any) -> None:
        # A housekeeping thread waiting on its timer, not a task waiting on budget.
        while not self._stop.wait(self.interval):
            try:
                trim(0)
            except Exception as exc:  # noqa: BLE001 - never take the process down
                log.warning("malloc_trim_failed", error=type(exc).__name__)
                return
