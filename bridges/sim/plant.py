"""The demo plant's process model: pure, deterministic and seedable (no clock, no I/O).

Time advances in fixed ticks of simulated milliseconds, so the same seed gives the same values
at the same simulated time however the caller slices its ``advance_to`` calls. Machines on a
line are coupled through bounded buffers: a stopped capper fills the buffer in front of it and
then blocks the filler; an empty buffer starves the machine behind it. Utilities (compressor,
boiler, chiller, pump) stand alone: their writable setpoint drives one process value.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import random
from collections.abc import Mapping, Sequence
from types import MappingProxyType

__all__ = [
    "COUNTER_MODULUS",
    "DEMO_LINES",
    "DEMO_UTILITIES",
    "FAULT_CODES",
    "TICK_MS",
    "LineSpec",
    "MachineSnapshot",
    "MachineSpec",
    "MachineState",
    "PlantModel",
    "PlantSnapshot",
    "ProcessVar",
]

TICK_MS = 100
"""One model step in simulated milliseconds."""
COUNTER_MODULUS = 2**32
"""Production counters are 32-bit PLC counters: they roll over to 0 here."""


class MachineState(enum.IntEnum):
    """The numeric state code a machine reports (``State``)."""

    RUNNING = 1
    IDLE = 2
    """Not asked to run (``Command/Run`` off)."""
    STARVED = 3
    """Upstream buffer empty."""
    BLOCKED = 4
    """Downstream buffer full."""
    FAULT = 5
    """Unplanned stop; ``FaultCode`` says why."""
    CHANGEOVER = 6
    PLANNED_STOP = 7


FAULT_CODES: Mapping[int, str] = MappingProxyType(
    {
        0: "no fault",
        101: "infeed jam",
        102: "outfeed jam",
        103: "guard door open",
        104: "drive overload",
        105: "low air pressure",
        106: "sensor fault",
    }
)
"""Fault code -> reason, as the reason catalog of the demo plant."""

_FAULTS = tuple(code for code in FAULT_CODES if code)
_TIMED = (MachineState.FAULT, MachineState.CHANGEOVER, MachineState.PLANNED_STOP)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ProcessVar:
    """An analog value that follows a first-order lag towards a target, with noise."""

    name: str
    """Metric name (``Temperature``, ``Pressure``, ...)."""
    running: float
    """Target while the machine runs."""
    stopped: float
    """Target while it does not."""
    tau_s: float
    """Time constant of the lag."""
    noise: float
    """Standard deviation of the noise per square-root second."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MachineSpec:
    """One machine: nominal rate, reliability and energy figures, process values."""

    id: str
    rate: float
    """Nominal cycles per minute (the ``Speed`` it reports while running)."""
    cycles_per_output: int = 1
    """Cycles per counted unit (a palletizer places 60 cases per pallet)."""
    scrap_rate: float = 0.0
    mtbf_s: float = 900.0
    """Mean running time between faults."""
    mttr_s: tuple[float, float] = (20.0, 120.0)
    changeover_every_s: float = 4 * 3600.0
    changeover_s: tuple[float, float] = (300.0, 600.0)
    planned_every_s: float = 6 * 3600.0
    planned_s: tuple[float, float] = (600.0, 900.0)
    power_run_kw: float = 10.0
    power_idle_kw: float = 3.0
    power_stop_kw: float = 0.5
    process: tuple[ProcessVar, ...] = ()
    setpoint_of: str | None = None
    """The process value a writable setpoint (``Setpoint/<name>``) drives while running; None: none."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LineSpec:
    """Machines in flow order and the buffer capacities between neighbours."""

    id: str
    machines: tuple[MachineSpec, ...]
    buffers: tuple[int, ...]
    """``len(machines) - 1`` capacities, in units of the upstream machine's output."""

    def __post_init__(self) -> None:
        if len(self.buffers) != len(self.machines) - 1:
            raise ValueError(f"line {self.id}: needs {len(self.machines) - 1} buffers, got {len(self.buffers)}")


def _filler(id_: str, rate: float) -> MachineSpec:
    return MachineSpec(
        id=id_, rate=rate, scrap_rate=0.005, mtbf_s=900.0, power_run_kw=18.0, power_idle_kw=5.0,
        process=(
            ProcessVar(name="Temperature", running=6.0, stopped=7.5, tau_s=120.0, noise=0.05),
            ProcessVar(name="Pressure", running=2.5, stopped=2.3, tau_s=5.0, noise=0.02),
            ProcessVar(name="Level", running=50.0, stopped=58.0, tau_s=30.0, noise=0.8),
        ),
    )  # fmt: skip


def _capper(id_: str, rate: float, torque: float) -> MachineSpec:
    return MachineSpec(
        id=id_, rate=rate, scrap_rate=0.003, mtbf_s=600.0, power_run_kw=7.5, power_idle_kw=2.0,
        process=(ProcessVar(name="Torque", running=torque, stopped=0.0, tau_s=0.5, noise=0.05),),
    )  # fmt: skip


DEMO_LINES: tuple[LineSpec, ...] = (
    LineSpec(
        id="line1",
        machines=(
            _filler("filler", 400.0),
            _capper("capper", 420.0, 1.8),
            MachineSpec(
                id="labeler", rate=440.0, mtbf_s=1200.0, power_run_kw=6.0, power_idle_kw=3.5,
                process=(ProcessVar(name="Temperature", running=160.0, stopped=160.0, tau_s=300.0, noise=0.04),),
            ),
        ),
        buffers=(60, 60),
    ),
    LineSpec(
        id="line2",
        machines=(
            MachineSpec(
                id="rinser", rate=300.0, mtbf_s=1800.0, power_run_kw=25.0, power_idle_kw=12.0,
                process=(
                    ProcessVar(name="Temperature", running=60.0, stopped=52.0, tau_s=180.0, noise=0.05),
                    ProcessVar(name="Pressure", running=3.0, stopped=0.3, tau_s=3.0, noise=0.03),
                    ProcessVar(name="Flow", running=120.0, stopped=0.0, tau_s=2.0, noise=1.5),
                ),
            ),
            _filler("filler2", 310.0),
            _capper("capper2", 320.0, 2.2),
        ),
        buffers=(50, 50),
    ),
    LineSpec(
        id="line3",
        machines=(
            MachineSpec(id="case-packer", rate=14.0, scrap_rate=0.002, mtbf_s=1200.0, power_run_kw=9.0),
            MachineSpec(id="palletizer", rate=16.0, cycles_per_output=60, mtbf_s=1800.0, power_run_kw=12.0),
            MachineSpec(id="wrapper", rate=0.35, mtbf_s=2400.0, power_run_kw=5.0, power_idle_kw=1.0),
        ),
        buffers=(30, 2),
    ),
)  # fmt: skip
"""The simulated machines of ``model/demo/plant.yaml``, by line."""

_NEVER_S = 1e12
"""An interval no simulation reaches: utilities have no changeovers."""


def _utility(id_: str, *, run_kw: float, idle_kw: float, mtbf_s: float, setpoint_of: str,
             process: tuple[ProcessVar, ...]) -> MachineSpec:  # fmt: skip
    # rate: motor cycles per minute, only for the model's bookkeeping (utilities publish no Speed or counts)
    return MachineSpec(
        id=id_, rate=60.0, mtbf_s=mtbf_s, mttr_s=(30.0, 300.0), changeover_every_s=_NEVER_S,
        planned_every_s=8 * 3600.0, planned_s=(900.0, 1800.0), power_run_kw=run_kw, power_idle_kw=idle_kw,
        power_stop_kw=0.2, process=process, setpoint_of=setpoint_of,
    )  # fmt: skip


DEMO_UTILITIES: tuple[MachineSpec, ...] = (
    # screw air compressor on an S7-1500: the setpoint is the header pressure
    _utility("compressor", run_kw=75.0, idle_kw=22.0, mtbf_s=3600.0, setpoint_of="Pressure", process=(
        ProcessVar(name="Pressure", running=7.0, stopped=4.5, tau_s=20.0, noise=0.02),
        ProcessVar(name="Temperature", running=85.0, stopped=35.0, tau_s=180.0, noise=0.2),
        ProcessVar(name="Flow", running=12.0, stopped=0.0, tau_s=3.0, noise=0.1),
    )),
    # steam boiler on a ControlLogix (power: burner fan and feed pump): the setpoint is the steam temperature
    _utility("boiler", run_kw=40.0, idle_kw=8.0, mtbf_s=7200.0, setpoint_of="Temperature", process=(
        ProcessVar(name="Temperature", running=180.0, stopped=70.0, tau_s=600.0, noise=0.3),
        ProcessVar(name="Pressure", running=10.0, stopped=1.0, tau_s=300.0, noise=0.05),
        ProcessVar(name="Flow", running=2000.0, stopped=0.0, tau_s=30.0, noise=15.0),
    )),
    # water chiller on an iQ-R: the setpoint is the chilled water supply temperature
    _utility("chiller", run_kw=120.0, idle_kw=10.0, mtbf_s=5400.0, setpoint_of="Temperature", process=(
        ProcessVar(name="Temperature", running=7.0, stopped=14.0, tau_s=240.0, noise=0.05),
        ProcessVar(name="Pressure", running=12.0, stopped=6.0, tau_s=60.0, noise=0.05),
        ProcessVar(name="Flow", running=80.0, stopped=0.0, tau_s=10.0, noise=0.5),
    )),
    # wastewater lift pump on an NJ: the setpoint is the flow
    _utility("pump", run_kw=15.0, idle_kw=1.0, mtbf_s=2400.0, setpoint_of="Flow", process=(
        ProcessVar(name="Flow", running=45.0, stopped=0.0, tau_s=2.0, noise=0.4),
        ProcessVar(name="Pressure", running=2.2, stopped=0.1, tau_s=2.0, noise=0.02),
        ProcessVar(name="Temperature", running=55.0, stopped=25.0, tau_s=600.0, noise=0.1),
    )),
)  # fmt: skip
"""The utilities area's machines (``acme/dallas/utilities``): one per PLC driver, no buffers between them."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MachineSnapshot:
    """What a machine's PLC shows at one instant."""

    state: MachineState
    fault_code: int
    """0 unless ``state`` is FAULT."""
    good_count: int
    """Good units, a 32-bit counter (rolls over at ``COUNTER_MODULUS``)."""
    scrap_count: int
    speed: float
    """Cycles per minute now; 0 when not running."""
    cycle_time_s: float
    """Duration of the last cycle at the current rate."""
    part_done: bool
    """Toggles on every cycle."""
    energy_kwh: float
    process: Mapping[str, float]
    speed_setpoint: float
    run_enabled: bool
    state_ms: Mapping[MachineState, int]
    """Simulated milliseconds spent in each state so far."""
    power_kw: float = 0.0
    """Electric (or, for the boiler, firing) power now."""
    starts: int = 0
    """Times the machine went into RUNNING from another state (a PLC counter, seeded like the others)."""
    run_hours: float = 0.0
    """Hours spent RUNNING (an hour meter)."""
    setpoints: Mapping[str, float] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    """Process value name -> its setpoint (``MachineSpec.setpoint_of``)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PlantSnapshot:
    """Every machine at one simulated time."""

    time_ms: int
    machines: Mapping[str, MachineSnapshot]


class _Buffer:
    __slots__ = ("capacity", "level")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.level = capacity // 2


class _Machine:
    """Mutable state of one machine; only ``PlantModel`` touches it."""

    def __init__(self, spec: MachineSpec, rng: random.Random, meters: random.Random, counter_start: int | None) -> None:
        self.spec = spec
        self.rng = rng
        start = rng.randrange(1_000_000) if counter_start is None else counter_start
        self.good = start
        self.scrap = start // 200 if counter_start is None else counter_start
        self.energy = rng.uniform(1_000.0, 50_000.0)
        self.state = MachineState.RUNNING
        self.fault_code = 0
        self.timer_ms = 0
        self.progress = 0.0  # a fresh cycle: the first unit takes a whole cycle time, as after a start of production
        self.pending = 0
        self.speed = 0.0
        self.cycle_time = 60.0 / spec.rate
        self.part_done = False
        self.setpoint = spec.rate
        self.run_enabled = True
        self.process = {pv.name: pv.running for pv in spec.process}
        self.state_ms = dict.fromkeys(MachineState, 0)
        self.power = 0.0
        # hour meter and start counter come from ``meters``, so ``rng``'s sequence stays as it was before them
        self.starts = meters.randrange(100, 5000)
        self.run_ms = round(meters.uniform(1_000.0, 40_000.0) * 3_600_000)
        self.setpoints = {pv.name: pv.running for pv in spec.process if pv.name == spec.setpoint_of}
        self.inbuf: _Buffer | None = None
        self.outbuf: _Buffer | None = None

    def step(self, dt_s: float) -> None:
        was = self.state
        self._decide(dt_s)
        if self.state == MachineState.RUNNING:
            self.starts += was != MachineState.RUNNING
            self.run_ms += round(dt_s * 1000)
            self._produce(dt_s)
        else:
            self.speed = 0.0
        self._energy(dt_s)
        self._process(dt_s)
        self.state_ms[self.state] += round(dt_s * 1000)

    def _decide(self, dt_s: float) -> None:
        spec, rng = self.spec, self.rng
        if self.state in _TIMED:
            self.timer_ms -= round(dt_s * 1000)
            if self.timer_ms > 0:
                return
            self.fault_code = 0
        if not self.run_enabled:
            self.state = MachineState.IDLE
        elif rng.random() < dt_s / spec.mtbf_s:
            self._enter(MachineState.FAULT, spec.mttr_s)
            self.fault_code = rng.choice(_FAULTS)
        elif rng.random() < dt_s / spec.changeover_every_s:
            self._enter(MachineState.CHANGEOVER, spec.changeover_s)
        elif rng.random() < dt_s / spec.planned_every_s:
            self._enter(MachineState.PLANNED_STOP, spec.planned_s)
        elif self.inbuf is not None and self.inbuf.level < 1:
            self.state = MachineState.STARVED
        elif self.outbuf is not None and self.outbuf.level >= self.outbuf.capacity:
            self.state = MachineState.BLOCKED
        else:
            self.state = MachineState.RUNNING

    def _enter(self, state: MachineState, span_s: tuple[float, float]) -> None:
        self.state = state
        self.timer_ms = round(self.rng.uniform(*span_s) * 1000)

    def _produce(self, dt_s: float) -> None:
        spec, rng = self.spec, self.rng
        rate = max(0.0, self.setpoint * (1.0 + 0.01 * rng.gauss(0.0, 1.0)))
        self.speed = rate
        if rate > 0:
            self.cycle_time = 60.0 / rate
        # at most one cycle's worth may wait, so a blocked machine does not burst when freed
        self.progress = min(self.progress + rate * dt_s / 60.0, 2.0)
        while self.progress >= 1.0:
            if self.inbuf is not None and self.inbuf.level < 1:
                break
            if self.outbuf is not None and self.outbuf.level >= self.outbuf.capacity:
                break
            self.progress -= 1.0
            if self.inbuf is not None:
                self.inbuf.level -= 1
            self.part_done = not self.part_done
            self.pending += 1
            if self.pending < spec.cycles_per_output:
                continue
            self.pending = 0
            if rng.random() < spec.scrap_rate:
                self.scrap += 1
            else:
                self.good += 1
                if self.outbuf is not None:
                    self.outbuf.level += 1

    def _energy(self, dt_s: float) -> None:
        spec = self.spec
        if self.state == MachineState.RUNNING:
            power = spec.power_run_kw * self.speed / spec.rate
        elif self.state == MachineState.PLANNED_STOP:
            power = spec.power_stop_kw
        else:
            power = spec.power_idle_kw
        self.power = max(power, 0.0)
        self.energy += self.power * dt_s / 3600.0

    def _process(self, dt_s: float) -> None:
        running = self.state == MachineState.RUNNING
        for pv in self.spec.process:
            target = self.setpoints.get(pv.name, pv.running) if running else pv.stopped
            value = self.process[pv.name]
            value += (target - value) * min(dt_s / pv.tau_s, 1.0) + pv.noise * math.sqrt(dt_s) * self.rng.gauss(0, 1)
            self.process[pv.name] = max(value, 0.0)

    def snapshot(self) -> MachineSnapshot:
        return MachineSnapshot(
            state=self.state,
            fault_code=self.fault_code,
            good_count=self.good % COUNTER_MODULUS,
            scrap_count=self.scrap % COUNTER_MODULUS,
            speed=self.speed,
            cycle_time_s=self.cycle_time,
            part_done=self.part_done,
            energy_kwh=self.energy,
            process=MappingProxyType(dict(self.process)),
            speed_setpoint=self.setpoint,
            run_enabled=self.run_enabled,
            state_ms=MappingProxyType(dict(self.state_ms)),
            power_kw=self.power,
            starts=self.starts % COUNTER_MODULUS,
            run_hours=self.run_ms / 3_600_000,
            setpoints=MappingProxyType(dict(self.setpoints)),
        )


class PlantModel:
    """The whole plant: machines coupled per line, advanced in fixed ticks.

    Args:
        seed: The same seed gives the same history.
        lines: The plant's lines; the demo plant by default.
        utilities: Machines on no line (no buffers); the demo's utilities area by default.
        counter_start: Start every production counter here (tests of the 32-bit rollover);
            ``None`` starts each at a seeded random value, as a PLC that has run for a while.
    """

    def __init__(
        self,
        *,
        seed: int,
        lines: Sequence[LineSpec] = DEMO_LINES,
        utilities: Sequence[MachineSpec] = DEMO_UTILITIES,
        counter_start: int | None = None,
    ) -> None:
        self._time_ms = 0
        self._machines: dict[str, _Machine] = {}

        def add(spec: MachineSpec) -> _Machine:
            if spec.id in self._machines:
                raise ValueError(f"machine {spec.id} appears twice")
            # one generator per machine, seeded by name: adding a machine does not reshuffle the others
            rng, meters = random.Random(f"{seed}:{spec.id}"), random.Random(f"{seed}:{spec.id}:meters")  # noqa: S311
            machine = self._machines[spec.id] = _Machine(spec, rng, meters, counter_start)
            return machine

        for line in lines:
            chain = [add(spec) for spec in line.machines]
            for upstream, downstream, capacity in zip(chain[:-1], chain[1:], line.buffers, strict=True):
                upstream.outbuf = downstream.inbuf = _Buffer(capacity)
        standalone = [add(spec) for spec in utilities]
        # downstream first: a machine takes from its buffer before the upstream one refills it
        self._order = [m for line in lines for m in reversed([self._machines[s.id] for s in line.machines])]
        self._order += standalone

    @property
    def time_ms(self) -> int:
        """Simulated milliseconds since the start (a multiple of ``TICK_MS``)."""
        return self._time_ms

    @property
    def machine_ids(self) -> tuple[str, ...]:
        """Every machine, in line and flow order."""
        return tuple(self._machines)

    def advance_to(self, time_ms: int) -> int:
        """Step until simulated time reaches ``time_ms`` (whole ticks); returns the steps taken."""
        steps = max(0, (time_ms - self._time_ms) // TICK_MS)
        dt_s = TICK_MS / 1000.0
        for _ in range(steps):
            for machine in self._order:
                machine.step(dt_s)
            self._time_ms += TICK_MS
        return steps

    def advance(self, ms: int) -> int:
        """Step ``ms`` simulated milliseconds forward; returns the steps taken."""
        return self.advance_to(self._time_ms + ms)

    def set_speed_setpoint(self, machine: str, cycles_per_min: float) -> None:
        """An operator's speed setpoint (``Setpoint/Speed``); clamped to 0..150 % of nominal."""
        target = self._machine(machine)
        if not math.isfinite(cycles_per_min):
            raise ValueError(f"machine {machine}: speed setpoint must be finite (got {cycles_per_min})")
        target.setpoint = min(max(cycles_per_min, 0.0), 1.5 * target.spec.rate)

    def set_setpoint(self, machine: str, name: str, value: float) -> None:
        """An operator's process setpoint (``Setpoint/<name>``, e.g. the compressor's ``Pressure``).

        Raises:
            ValueError: no such machine, a machine whose setpoint drives another value, or a value
                that is not finite; clamped to 0..150 % of the design value.
        """
        target = self._machine(machine)
        if name not in target.setpoints:
            known = ", ".join(f"Setpoint/{n}" for n in target.setpoints) or "only Setpoint/Speed"
            raise ValueError(f"machine {machine}: no setpoint {name!r} (it has {known})")
        if not math.isfinite(value):
            raise ValueError(f"machine {machine}: setpoint {name} must be finite (got {value})")
        design = next(pv.running for pv in target.spec.process if pv.name == name)
        target.setpoints[name] = min(max(value, 0.0), 1.5 * design)

    def set_run_enabled(self, machine: str, enabled: bool) -> None:
        """An operator's run command (``Command/Run``): off idles the machine after its current stop."""
        self._machine(machine).run_enabled = enabled

    def machine_snapshot(self, machine: str) -> MachineSnapshot:
        """One machine now (``snapshot().machines[machine]`` without the other twelve)."""
        return self._machine(machine).snapshot()

    def snapshot(self) -> PlantSnapshot:
        """Every machine now."""
        return PlantSnapshot(
            time_ms=self._time_ms,
            machines=MappingProxyType({name: machine.snapshot() for name, machine in self._machines.items()}),
        )

    def _machine(self, machine: str) -> _Machine:
        try:
            return self._machines[machine]
        except KeyError:
            raise ValueError(f"no machine {machine!r}; known: {', '.join(self._machines)}") from None
