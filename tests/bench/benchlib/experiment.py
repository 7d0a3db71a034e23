"""experiment: what the article's experiment measures, in which order,
and how long it takes.

A *cell* is one point of the plan: a subject (subjects.py) with a number
of processes, the database at a distance, a route, a load (closed loop
at C connections, or open loop at a share of the subject's best rate),
the scheduler's setting and the tiers' CPU placement.  Each repetition
measures every cell once.

A *block* is one life of a subject's pool: the cells of one subject,
process count, scheduler setting and placement, and one way to the
database (its unix socket, or the network).  Within a block the network
distances follow one another by swapping the cable in front of the
database (dbhost.py), which keeps every connection, so a pool is
started once per block; the routes and loads follow at each distance.
A repetition runs every block in the plan's order, so each cell is
measured at several moments of the run (interleaved), and the distances
inside a block start one further each repetition, so that none is
always the first after a start.

The plan's parts, each a product of the axes it names (README's "The
sweeps" lists them):

  main         every persistent subject, every process count (the
               article's subjects: theirs), every network distance, the
               first route, the main load
  local        this pool at local (the reference line), at its counts
  routes       the other routes, at the few process counts SUB_WORKERS,
               at the distances routes_at (every one unless given)
  loads        the other closed-loop loads, at the same few counts, at
               the distances of LOADS_AT
  per-request  the per-request subjects, at the few counts, at 0 ms and
               the distances of LOADS_AT
  sched        this pool under the other scheduler settings, at the few
               counts, at 0 ms (where the CPUs are the limit) and LOADS_AT
  placement    this pool with the other CPU placements, same
  auto         not a part: "auto" among the process counts (--workers,
               --few, --local-workers) is this pool sizing itself
               (tfb-spawn -w auto, AUTO here), on the lines of main,
               local and routes; the article's subjects have no such
               count.  Before each of its cells the sweep loads the pool
               until its size holds (sweep.py, settle), and after its
               block's last cell it lets it idle down to its minimum
  open         after the repetitions of the rest: each persistent
               subject at its best process count at LOADS_AT, open loop,
               at each share of its best closed-loop rate (the counts
               and rates are read from the run itself, so this part is
               planned when the rest is measured)
"""

import re
from dataclasses import dataclass, field

from . import plan as scaling
from .subjects import ORDER, SUBJECTS

parse_route = scaling.parse_route
Route = scaling.Route

# The few process counts of the secondary parts: these, where the sweep
# has them (else its first and last).
SUB_WORKERS = (4, 32)
# The distances the loads, the per-request mode, the scheduler and the
# placement are compared at: the article's (a round trip of about 1 ms).
LOADS_AT = ("1ms",)
MAIN_CONNECTIONS = 64
# The process count "auto": the pool finds its own size (tfb-spawn -w
# auto).  0, so that counts stay numbers; wlabel() prints it.
AUTO = 0
# What an auto cell costs beyond a fixed one, in seconds: its settle
# (the pool loaded until its size holds), and its block's idle probe.
COST_AUTO_SETTLE = 25.0
COST_AUTO_IDLE = 20.0


def wlabel(workers):
    """A process count as printed: "auto" for AUTO."""
    return "auto" if workers == AUTO else str(workers)


def wkey(workers):
    """A sort key that puts auto after every count."""
    return (workers == AUTO, workers)
SCHEDS = ("autogroup", "flat", "tiers")
PLACEMENTS = ("shared", "split")


@dataclass(frozen=True)
class Distance:
    key: str            # local, 0ms, 0.2ms, 1ms...
    rtt_us: object      # None for local; the round trip asked for, µs

    @property
    def label(self):
        return "local (unix socket)" if self.rtt_us is None else \
            "%g ms" % (self.rtt_us / 1000.0)

    @property
    def short(self):
        return "local" if self.rtt_us is None else "%g ms" % (self.rtt_us / 1000.0)


def parse_distance(text):
    """local | 0 | 200us | 0.2ms | 1ms | 1.5 -> Distance (a bare number is
    in ms)."""
    t = text.strip().lower()
    if t == "local":
        return Distance("local", None)
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(us|µs|ms|s)?", t)
    if not m:
        raise ValueError("distance %r: want local, or a round trip such as 0, "
                         "200us, 0.2ms, 1ms" % text)
    us = float(m.group(1)) * {"us": 1, "µs": 1, "ms": 1000, "s": 1e6, None: 1000}[m.group(2)]
    if us > 100000:
        raise ValueError("distance %r: at most 100 ms" % text)
    us = int(round(us))
    return Distance("%gms" % (us / 1000.0), us)


def parse_distances(text):
    out = [parse_distance(x) for x in re.split(r"[,\s]+", text.strip()) if x]
    if not out:
        raise ValueError("--db-rtt: empty list")
    out = list(dict.fromkeys(out))
    return sorted(out, key=lambda d: -1 if d.rtt_us is None else d.rtt_us)


@dataclass(frozen=True)
class Load:
    kind: str            # closed | open
    connections: int
    share: float = 0.0   # open: the offered rate's share of the best closed rate

    @property
    def key(self):
        return "c%d" % self.connections if self.kind == "closed" else \
            "open%g" % self.share

    @property
    def label(self):
        return "closed, %d connections" % self.connections if self.kind == "closed" \
            else "open, %d%% of the best rate" % round(100 * self.share)


@dataclass(frozen=True)
class Cell:
    part: str
    subject: str
    workers: int
    distance: Distance
    route: Route
    load: Load
    sched: str = "autogroup"
    placement: str = "shared"
    rate: float = 0.0    # open loop: the offered rate, req/s

    @property
    def block_key(self):
        return (self.subject, self.workers, self.sched, self.placement,
                self.distance.rtt_us is None)

    @property
    def key(self):
        """What names the cell's line in results: every axis."""
        return (self.subject, self.workers, self.distance.key, self.route.key,
                self.load.key, self.sched, self.placement)


@dataclass
class Block:
    subject: str
    workers: int
    sched: str
    placement: str
    local: bool
    cells: list = field(default_factory=list)

    def distances(self):
        return list(dict.fromkeys(c.distance for c in self.cells))

    def ordered(self, rep):
        """The cells of repetition rep: distance by distance, starting one
        further each repetition, routes and loads in the plan's order."""
        ds = self.distances()
        k = (rep - 1) % len(ds)
        ds = ds[k:] + ds[:k]
        return [c for d in ds for c in self.cells if c.distance == d]


def sub_workers(workers):
    got = [w for w in workers if w in SUB_WORKERS]
    return got or sorted({workers[0], workers[-1]})


@dataclass
class Plan:
    subjects: list
    workers: list
    distances: list
    routes: list
    concurrency: list
    reps: int
    duration: int
    warmup: int
    open_shares: list
    scheds: list
    placements: list
    # The few process counts of the secondary parts; the counts of the
    # article's subjects (None: every count) and of the local line.
    few: list = None
    subject_workers: list = None
    local_workers: list = None
    # The distances of the other routes (None: every one).
    routes_at: list = None
    open_connections: int = 256
    cores: int = 1
    cells: list = field(default_factory=list)

    def __post_init__(self):
        if not self.cells:
            self.cells = self.make_cells()

    @property
    def main_load(self):
        c = MAIN_CONNECTIONS if MAIN_CONNECTIONS in self.concurrency else self.concurrency[0]
        return Load("closed", c)

    @property
    def network(self):
        return [d for d in self.distances if d.rtt_us is not None]

    def loads_at(self):
        """The distances of the secondary parts: LOADS_AT where the sweep
        has them, else its farthest."""
        got = [d for d in self.distances if d.key in LOADS_AT]
        return got or self.distances[-1:]

    def make_cells(self):
        persistent = [s for s in self.subjects if SUBJECTS[s].db_mode == "persistent"]
        per_request = [s for s in self.subjects if SUBJECTS[s].db_mode == "per-request"]
        main_route, main_load = self.routes[0], self.main_load
        few = [w for w in (self.few or SUB_WORKERS) if w in self.workers] or \
            sub_workers(self.workers)
        theirs = [w for w in (self.subject_workers or self.workers)
                  if w in self.workers and w != AUTO]
        local = [d for d in self.distances if d.rtt_us is None]
        at = self.loads_at()
        zero = [d for d in self.distances if d.rtt_us == 0]
        sched0, place0 = self.scheds[0], self.placements[0]
        out = []

        def add(part, subjects, workers, distances, routes, loads, sched=sched0,
                place=place0):
            for s in subjects:
                for w in workers:
                    # auto is this pool's, on the lines of main, local and
                    # routes only.
                    if w == AUTO and (not SUBJECTS[s].ours or
                                      part not in ("main", "local", "routes")):
                        continue
                    for d in distances:
                        # Only this pool runs at local: the reference line
                        # of the earlier bench; the article's subjects run
                        # where the article put them, a hop away (unless
                        # there is no network: then local is all there is).
                        if d.rtt_us is None and self.network and not SUBJECTS[s].ours:
                            continue
                        for r in routes:
                            for ld in loads:
                                out.append(Cell(part, s, w, d, r, ld, sched, place))

        for s in persistent:
            ws = self.workers if SUBJECTS[s].ours else theirs
            add("main", [s], ws, self.network or local, [main_route], [main_load])
        if self.network and local:
            lw = [w for w in (self.local_workers or self.workers) if w in self.workers]
            add("local", [s for s in persistent if SUBJECTS[s].ours], lw, local,
                [main_route], [main_load])
        rd = [d for d in self.distances if self.routes_at is None or d in self.routes_at]
        add("routes", persistent, few, rd or self.distances, self.routes[1:], [main_load])
        add("loads", persistent, few, at,
            [main_route], [Load("closed", c) for c in self.concurrency if c != main_load.connections])
        add("per-request", per_request, few, list(dict.fromkeys(zero + at)) or at,
            [main_route], [main_load])
        ours = [s for s in persistent if SUBJECTS[s].ours]
        for sc in self.scheds[1:]:
            add("sched", ours, few, list(dict.fromkeys(zero + at)) or at, [main_route],
                [main_load], sched=sc)
        for pl in self.placements[1:]:
            add("placement", ours, few, list(dict.fromkeys(zero + at)) or at,
                [main_route], [main_load], place=pl)
        seen, cells = set(), []
        for c in out:
            if c.key not in seen:
                seen.add(c.key)
                cells.append(c)
        return cells

    def blocks(self, cells=None):
        """The blocks of cells, in the plan's order: by scheduler setting,
        placement, subject, the network before local, then process count."""
        by = {}
        for c in cells if cells is not None else self.cells:
            b = by.get(c.block_key)
            if b is None:
                b = by[c.block_key] = Block(c.subject, c.workers, c.sched, c.placement,
                                            c.distance.rtt_us is None)
            b.cells.append(c)
        return sorted(by.values(), key=lambda b: (
            self.scheds.index(b.sched), self.placements.index(b.placement),
            ORDER.index(b.subject), b.local, wkey(b.workers)))

    # -- the open loop, planned from the closed loop's results

    def open_plan(self):
        """(subject, distance) pairs of the open-loop part."""
        if not self.open_shares:
            return []
        persistent = [s for s in self.subjects if SUBJECTS[s].db_mode == "persistent"]
        return [(s, d) for s in persistent for d in self.loads_at()
                if not (d.rtt_us is None and self.network and not SUBJECTS[s].ours)]

    def open_cells(self, best):
        """best: {(subject, distance key): (workers, rps)} from the closed
        loop.  One cell per share of each pair's best rate."""
        out = []
        for s, d in self.open_plan():
            if (s, d.key) not in best:
                continue
            w, rps = best[(s, d.key)]
            for share in self.open_shares:
                out.append(Cell("open", s, w, d, self.routes[0],
                                Load("open", self.open_connections, share),
                                self.scheds[0], self.placements[0], rate=share * rps))
        return out

    # -- time

    # Seconds, measured on this kind of machine (2 cores): starting a
    # pool of ours, starting gunicorn (a Flask pool; FastAPI imports
    # more), the front server when the subject's kind changes, a cell's
    # own overhead (the settling after a cable swap, the CPU samples, the
    # drain), the drain of a per-request point, the setup (the database
    # host, calibrating each delay line) and the report.
    COST_POOL = {"pool": 0.6, "sync": 0.3, "asgi": 0.5}
    COST_PER_WORKER = {"pool": 0.01, "sync": 0.055, "asgi": 0.06}
    COST_FRONT = 0.5
    COST_CELL = 0.8
    COST_PER_REQUEST_DRAIN = 1.0
    COST_SETUP = 6.0
    COST_CALIBRATION = 1.5
    COST_REPORT = 10.0

    def block_cost(self, b):
        kind = SUBJECTS[b.subject].kind
        fixed = self.COST_POOL[kind] + self.COST_PER_WORKER[kind] * b.workers
        if SUBJECTS[b.subject].db_mode == "persistent":
            fixed += self.warmup
        per = self.duration + self.COST_CELL
        if SUBJECTS[b.subject].db_mode == "per-request":
            per += self.COST_PER_REQUEST_DRAIN
        if b.workers == AUTO:
            # The idle probe runs in the first repetition only.
            per += COST_AUTO_SETTLE
            fixed += COST_AUTO_IDLE / self.reps
        return fixed, [per] * len(b.cells)

    def costs(self):
        """Estimated seconds of every cell of the run, in order, each
        block's fixed costs on its first cell; the open loop's last."""
        out = []
        for rep in range(1, self.reps + 1):
            out += self.rep_costs(self.blocks())
        opened = [Cell("open", s, max(max(self.workers), 1), d, self.routes[0],
                       Load("open", self.open_connections, sh))
                  for s, d in self.open_plan() for sh in self.open_shares]
        for rep in range(1, self.reps + 1):
            out += self.rep_costs(self.blocks(opened))
        return out

    def rep_costs(self, blocks):
        out, prev = [], None
        for b in blocks:
            fixed, per = self.block_cost(b)
            if prev is None or SUBJECTS[prev.subject].ours != SUBJECTS[b.subject].ours:
                fixed += self.COST_FRONT
            prev = b
            if per:
                per[0] += fixed
            out += per
        return out

    def setup_seconds(self):
        return self.COST_SETUP + self.COST_CALIBRATION * len([d for d in self.network
                                                               if d.rtt_us])

    def estimate_seconds(self):
        return self.setup_seconds() + sum(self.costs()) + self.COST_REPORT

    def points(self):
        return self.reps * (len(self.cells) + sum(len(self.open_shares)
                                                  for _ in self.open_plan()))
