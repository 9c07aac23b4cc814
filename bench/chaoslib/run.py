"""One chaos run end to end: bring everything up, post the workload under chaos,
wait for quiescence, stop the bridge, and judge what the panels and DB hold."""

import time
from typing import Any

from sqlalchemy import Engine

from bench.chaoslib import procs, report, setup, snapshot
from bench.chaoslib.billing import Billing
from bench.chaoslib.config import INTAKE_SECRET, ChaosConfig
from bench.chaoslib.events import Chaos
from bench.chaoslib.panels import SimPanel
from bench.chaoslib.workload import Workload, generate
from bridge.db.session import make_engine

POST_GIVE_UP_S = 120.0


class Run:
    """The processes and results of one run; :meth:`close` stops what it started."""

    def __init__(self, cfg: ChaosConfig) -> None:
        self.cfg = cfg
        self.sim_port, self.api_port = procs.free_port(), procs.free_port()
        self.sim = procs.simulator(cfg, self.sim_port)
        self.api = procs.api(cfg, self.api_port)
        self.beat = procs.beat(cfg)
        self.workers = [procs.worker(cfg, i) for i in range(cfg.workers)]
        self.panels: dict[str, SimPanel] = {}
        self.engine: Engine | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def close(self) -> None:
        for proc in [*self.workers, self.beat, self.api, self.sim]:
            proc.stop(timeout=10)
        for panel in self.panels.values():
            panel.close()
        if self.engine is not None:
            self.engine.dispose()

    def execute(self) -> dict[str, Any]:
        """Run everything; return the JSON report."""
        cfg = self.cfg
        self._bring_up()
        work = generate(cfg.orders, cfg.seed)
        billing = Billing(self.api_url, INTAKE_SECRET, POST_GIVE_UP_S)
        chaos = Chaos(
            cfg,
            self.workers,
            self.panels,
            restart_api=self._restart_api,
            progress=lambda: len(billing.log.accepted) / max(len(work.orders), 1),
            leased_by=lambda pid: snapshot.leased_by(self._engine(), pid),
        )
        started = time.monotonic()
        chaos.start()
        try:
            self._post(billing, work)
        finally:
            chaos.posting_done.set()
            billing.close()
        posted_s = time.monotonic() - started
        chaos.finished.wait(timeout=cfg.drain_timeout)
        chaos.stop()
        chaos.join(timeout=30)
        if chaos.error is not None:
            raise chaos.error
        drain_started = time.monotonic()
        for proc in self.workers:
            if not proc.alive:
                proc.start()
        drained = self._drain()
        drain_s = time.monotonic() - drain_started
        report = self._judge(work, billing, chaos)
        report["timing"] = {
            "posting_seconds": round(posted_s, 1),
            "chaos_seconds": round(drain_started - started, 1),
            "time_to_drain_seconds": round(drain_s, 1) if drained else None,
            "drain_timed_out": not drained,
            "total_seconds": round(time.monotonic() - started, 1),
        }
        return report

    def _bring_up(self) -> None:
        cfg = self.cfg
        cfg.workdir.mkdir(parents=True, exist_ok=True)
        setup.fresh_database(cfg.database_url)
        setup.fresh_redis(cfg.redis_url)
        procs.bridge_cli(cfg, "db", "upgrade")
        self.engine = make_engine(cfg.database_url)
        self.sim.start()
        root = f"http://127.0.0.1:{self.sim_port}"
        procs.wait_http(root + "/_sim/panels", self.sim)
        self.panels = setup.configure_panels(cfg, root)
        setup.register_servers(cfg, self.panels)
        self.beat.start()
        for proc in self.workers:
            proc.start()
        self.api.start()
        procs.wait_http(self.api_url + "/healthz", self.api)
        setup.turn_faults_on(cfg, self.panels)

    def _restart_api(self) -> None:
        self.api.kill()
        self.api.start()
        procs.wait_http(self.api_url + "/healthz", self.api)

    def _post(self, billing: Billing, work: Workload) -> None:
        pace = 1.0 / self.cfg.post_rate
        start = time.monotonic()
        for index, body in enumerate(work.orders):
            delay = start + index * pace - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            billing.post(body)

    def _engine(self) -> Engine:
        assert self.engine is not None  # noqa: S101 - set in _bring_up
        return self.engine

    def _drain(self) -> bool:
        """Wait until no order is live; False when time ran out or progress stopped."""
        engine = self._engine()
        deadline = time.monotonic() + self.cfg.drain_timeout
        last_live, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            live = snapshot.live_orders(engine)
            if live == 0:
                return True
            if live != last_live:
                last_live, last_change = live, time.monotonic()
            elif time.monotonic() - last_change > self.cfg.drain_idle:
                return False  # the rest is stuck: waiting longer shows nothing new
            time.sleep(1.0)
        return False

    def _judge(self, work: Workload, billing: Billing, chaos: Chaos) -> dict[str, Any]:
        """Stop the bridge, read panels and database, and build the report."""
        for proc in [*self.workers, self.beat, self.api]:
            proc.stop(timeout=10)
        for panel in self.panels.values():
            panel.clear_faults()
            panel.configure(login_limit_per_min=1_000_000)  # for the password check
        evidence = report.Evidence(
            snap=snapshot.take(self._engine()),
            ledgers={n: p.ledger() for n, p in self.panels.items()},
            requests={n: p.requests() for n, p in self.panels.items()},
            states={n: p.state() for n, p in self.panels.items()},
            panel_settings=setup.panel_settings(self.panels),
        )

        def login(panel: str, username: str, password: str) -> int:
            return self.panels[panel].login_status(username, password)

        return report.build(
            self.cfg,
            evidence,
            work=work,
            posts=billing.log,
            events=chaos.log,
            login=login,
        )
