"""The chaos itself, on a background thread: random worker SIGKILLs, periodic 429
storms, and the one-off events (flush Redis, revoke the login panel's JWTs,
restart the API) at fixed points of the posting progress."""

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from bench.chaoslib.config import LOGIN_PANEL, ChaosConfig
from bench.chaoslib.panels import SimPanel
from bench.chaoslib.procs import Proc

TICK_S = 0.1
# Share of the orders posted when each one-off event fires.
ONE_OFFS = (("flush_redis", 0.35), ("revoke_jwt", 0.5), ("restart_api", 0.65))


@dataclass
class EventLog:
    """What the chaos did, with times relative to the start of posting."""

    kills: list[dict[str, Any]] = field(default_factory=list)
    storms: list[dict[str, Any]] = field(default_factory=list)
    one_offs: list[dict[str, Any]] = field(default_factory=list)


class Chaos(threading.Thread):
    """Injects process-level faults until posting is done and enough kills happened."""

    def __init__(
        self,
        cfg: ChaosConfig,
        workers: list[Proc],
        panels: dict[str, SimPanel],
        *,
        restart_api: Callable[[], None],
        progress: Callable[[], float],
        leased_by: Callable[[int], int],
    ) -> None:
        super().__init__(name="chaos", daemon=True)
        self.cfg = cfg
        self.workers = workers
        self.panels = panels
        self.restart_api = restart_api
        self.progress = progress
        self.leased_by = leased_by
        self.log = EventLog()
        self.posting_done = threading.Event()
        self.finished = threading.Event()
        self._halt = threading.Event()
        self._rng = random.Random(cfg.seed)
        self._t0 = time.monotonic()
        self._restarts: list[tuple[float, Proc]] = []
        self.error: BaseException | None = None

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # noqa: BLE001 - re-raised by the main thread
            self.error = exc
        finally:
            for _, proc in self._restarts:
                proc.start()
            self._restarts.clear()
            self.finished.set()

    def _now(self) -> float:
        return round(time.monotonic() - self._t0, 2)

    def _loop(self) -> None:
        cfg = self.cfg
        next_kill = self._jitter(cfg.kill_every)
        next_storm = self._jitter(cfg.storm_every)
        done: set[str] = set()
        while not self._halt.is_set():
            now = self._now()
            self._restart_due(now)
            if self.posting_done.is_set() and len(self.log.kills) >= cfg.min_kills:
                if len(done) == len(ONE_OFFS) and not self._restarts:
                    return
            else:
                if now >= next_kill:
                    self._kill(now)
                    next_kill = now + self._jitter(cfg.kill_every)
                if now >= next_storm:
                    self._storm(now)
                    next_storm = now + self._jitter(cfg.storm_every)
            for name, share in ONE_OFFS:
                if name not in done and self.progress() >= share:
                    done.add(name)
                    self._one_off(name)
            time.sleep(TICK_S)

    def _jitter(self, every: float) -> float:
        return every * self._rng.uniform(0.5, 1.5)

    def _restart_due(self, now: float) -> None:
        for item in [r for r in self._restarts if r[0] <= now]:
            self._restarts.remove(item)
            item[1].start()

    def _kill(self, now: float) -> None:
        alive = [w for w in self.workers if w.alive]
        if not alive:
            return
        victim = self._rng.choice(alive)
        pid = victim.pid
        victim.kill()
        self.log.kills.append(
            {
                "at": now,
                "wall": time.time(),
                "worker": victim.name,
                # Orders it held a lease on when it died: work cut off mid-run.
                "orders_leased": self.leased_by(pid) if pid else 0,
            }
        )
        self._restarts.append((now + self.cfg.restart_delay, victim))

    def _storm(self, now: float) -> None:
        panel = self._rng.choice(sorted(self.panels))
        self.panels[panel].faults(storm_seconds=self.cfg.storm_seconds)
        self.log.storms.append({"at": now, "panel": panel})

    def _one_off(self, name: str) -> None:
        started = self._now()
        detail: dict[str, Any] = {}
        if name == "flush_redis":
            client = redis.Redis.from_url(self.cfg.redis_url)
            client.flushdb()
            client.close()
        elif name == "revoke_jwt":
            panel = self.panels[LOGIN_PANEL]
            username = str(panel.credentials()["username"])
            detail = {"panel": LOGIN_PANEL, **panel.revoke(username)}
        else:
            self.restart_api()
        entry = {"event": name, "at": started, "took": self._now() - started}
        self.log.one_offs.append(entry | detail)
