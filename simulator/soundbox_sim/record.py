"""What a run did: the runner fills a RunRecord as it goes, the report (report.py) reads
only that. Times are time.monotonic() unless the name says otherwise."""

from dataclasses import dataclass, field
from typing import Optional


class Phase:
    """The stages of a run, in order. A run may stop in any of them (Ctrl-C, an error)."""

    STARTING = "starting"  # identities, voice packs, broker, cloud
    CONNECTING = "connecting"  # the workers are up and the fleet ramps (the run's clock starts here)
    AWAITING_CLOUD = "awaiting_cloud"  # all connected, or the ramp timed out: until the cloud sees them online
    RUNNING = "running"  # the scenario's timeline: its `at` times count from here
    SETTLING = "settling"  # the timeline is done: waiting for the last final acks
    STOPPED = "stopped"  # devices, cloud and broker stopped
    ORDER = (STARTING, CONNECTING, AWAITING_CLOUD, RUNNING, SETTLING, STOPPED)


@dataclass
class RunRecord:
    # what ran
    scenario: str
    scenario_file: str
    devices: int
    workers: int
    tls: bool
    connect_rate: float
    runtimes: dict  # device id -> "micropython"; a device not in it runs on CPython
    companion_ids: list = field(default_factory=list)  # a peer fleet run beside ours (bench/peer_fleet.py)
    companion_name: Optional[str] = None
    # where the evidence is: the cloud's database (None: not ours) and the devices' journals
    db_path: Optional[str] = None
    journals: list = field(default_factory=list)
    # phases: when each began; `phase` is the one the run is in
    phase: str = Phase.STARTING
    began: dict = field(default_factory=dict)
    # timings (s)
    provision_s: float = 0.0
    register_s: Optional[float] = None  # POST /devices of the fleet to the run's tenant (None: not ours / failed)
    ramp_s: Optional[float] = None  # None: the ramp timed out (or never ended)
    # payments: [(txn, device, amount)] the cloud accepted, [...] it refused, and how many were scheduled
    scheduled: int = 0
    accepted: list = field(default_factory=list)
    rejected: list = field(default_factory=list)
    # what happened: [(t, text)] since the clock started, and the faults applied (with their devices)
    events: list = field(default_factory=list)
    faults: list = field(default_factory=list)
    # measurements: each worker's last message (its histograms), the fleet's gauges after the
    # ramp and at the end, and the per-runtime ones, the counters' latest per-second sample
    worker_finals: dict = field(default_factory=dict)
    ramp_gauges: Optional[dict] = None
    end_gauges: dict = field(default_factory=dict)
    end_totals: dict = field(default_factory=dict)
    runtime_gauges: dict = field(default_factory=dict)
    latest: dict = field(default_factory=dict)
    snapshots: dict = field(default_factory=dict)  # "start"/"end" of the payments: both fleets' gauges
    ota: Optional[dict] = None  # the rollout's summary

    def enter(self, phase, at):
        self.phase = phase
        self.began[phase] = at

    @property
    def t0(self):
        """The run's clock zero: when the fleet began to connect (before that, when the run began)."""
        return self.began.get(Phase.CONNECTING, self.began.get(Phase.STARTING))

    def phases_s(self):
        """{phase: s after t0 it began}, in order, for the phases the run reached."""
        return {p: round(self.began[p] - self.t0, 3) for p in Phase.ORDER if p in self.began}
