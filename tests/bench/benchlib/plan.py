"""plan: what a sweep runs, in which order, and how long it should take.

A *configuration* is a front server, a FastCGI socket type, a database
connection mode, nginx's upstream keepalive (how many FastCGI connections
each nginx worker keeps), the workers' CPU placement and a worker count:
one start of the pool and the front server.  Every route of the sweep is measured on it, one after the other,
after one warm-up that cycles through them all.  A *repetition* runs the
anchors, then every configuration, in the same order each time, so that
the same configuration is measured at several moments of the run
(interleaved, not in blocks), and slow drift or someone else's load
spreads over all of them instead of landing on one.  After the
repetitions come the rounds of what the timing costs: /db on one
configuration with the responder's --timing off and on, in turn
(timing_config, timing_order).
"""

import itertools
import os
import re
from dataclasses import dataclass

FRONTS = ("nginx", "lighttpd")
SOCKETS = ("unix", "tcp")
DB_MODES = ("persistent", "per-request")
# tfb-spawn's --cpu-affinity: none leaves the scheduler free, slot pins the
# worker in slot i to online CPU i mod n.
AFFINITIES = ("none", "slot")
# What deploy/stack ships: the line every other keepalive is compared with.
DEFAULT_KEEPALIVE = 32

# name -> (path template, kind).  kind "front": no database work per
# request, so the front server alone is the ceiling; "db": PostgreSQL does
# work per request, so pgbench with the same statements is.
ROUTES = {
    "plaintext": ("/plaintext", "front"),
    "json": ("/json", "front"),
    "db": ("/db", "db"),
    "queries": ("/queries?queries={n}", "db"),
    "fortunes": ("/fortunes", "db"),
    "updates": ("/updates?queries={n}", "db"),
    "cached": ("/cached-queries?count={n}", "front"),
}
PATH_NAMES = {"/plaintext": "plaintext", "/json": "json", "/db": "db",
              "/queries": "queries", "/fortunes": "fortunes",
              "/updates": "updates", "/cached-queries": "cached"}
DEFAULT_N = 20


@dataclass(frozen=True)
class Route:
    name: str      # plaintext, queries...
    n: int         # rows for queries/updates/cached, else 0
    path: str
    kind: str      # front | db

    @property
    def key(self):
        """plaintext, db, queries20: names files and table rows."""
        return f"{self.name}{self.n}" if self.n else self.name


def parse_route(spec):
    """plaintext | queries | queries:5 | /queries?queries=5 -> Route."""
    spec = spec.strip()
    n = None
    if spec.startswith("/"):
        base, _, query = spec.partition("?")
        if base not in PATH_NAMES:
            raise ValueError(f"unknown route path {spec!r}")
        name = PATH_NAMES[base]
        m = re.search(r"(?:queries|count)=(\d+)", query)
        n = int(m.group(1)) if m else None
    else:
        m = re.fullmatch(r"([a-z-]+?)(?:[:=]?(\d+))?", spec)
        if not m:
            raise ValueError(f"bad route {spec!r}")
        name, num = m.group(1), m.group(2)
        name = {"cached-queries": "cached"}.get(name, name)
        n = int(num) if num else None
    if name not in ROUTES:
        raise ValueError(f"unknown route {spec!r}; routes: {', '.join(ROUTES)}")
    template, kind = ROUTES[name]
    if "{n}" in template:
        n = DEFAULT_N if n is None else n
        if not 1 <= n <= 500:
            raise ValueError(f"{spec!r}: want 1..500 rows")
    else:
        n = 0
    return Route(name, n, template.format(n=n), kind)


@dataclass(frozen=True)
class Config:
    front: str
    socket: str
    db_mode: str
    workers: int
    # nginx: FastCGI connections kept per nginx worker, 0 for a new one per
    # request.  lighttpd's mod_fastcgi keeps none, whatever it is told, so
    # its configurations carry None and the keepalive axis skips them.
    keepalive: object = DEFAULT_KEEPALIVE
    affinity: str = "none"
    # The responder's --timing: on (the default) times each request's
    # phases for the status page; off counts requests only.  Off only in
    # the measure of what the timing costs.
    timing: str = "on"

    def __post_init__(self):
        if self.front != "nginx" and self.keepalive is not None:
            object.__setattr__(self, "keepalive", None)
        elif self.front == "nginx" and self.keepalive is None:
            object.__setattr__(self, "keepalive", DEFAULT_KEEPALIVE)

    @property
    def label(self):
        """The line this point belongs to: all but the worker count, e.g.
        nginx/unix/persistent/keep32, lighttpd/unix/persistent,
        nginx/unix/persistent/keep32/pinned."""
        s = f"{self.front}/{self.socket}/{self.db_mode}"
        if self.keepalive is not None:
            s += f"/keep{self.keepalive}"
        if self.affinity == "slot":
            s += "/pinned"
        if self.timing == "off":
            s += "/timing-off"
        return s

    @property
    def app_args(self):
        """The responder's arguments, deploy/stack's APP_ARGS: only what
        differs from its defaults."""
        args = []
        if self.db_mode != "persistent":
            args.append(f"--db-mode {self.db_mode}")
        if self.timing != "on":
            args.append(f"--timing {self.timing}")
        return " ".join(args)

    def routes(self, routes):
        """Per-request mode changes nothing for a route that does no
        database work (the app connects lazily), so it runs only those
        that do."""
        if self.db_mode == "persistent":
            return list(routes)
        return [r for r in routes if r.kind == "db"]


def parse_int_list(text, what, auto=None):
    """Positive numbers, comma-separated; with auto (a number), the word
    "auto" too, stored as that number."""
    out = []
    for part in re.split(r"[,\s:]+", text.strip()):
        if not part:
            continue
        if auto is not None and part == "auto":
            out.append(auto)
            continue
        if not part.isdigit() or int(part) < 1:
            raise ValueError(f"{what}: want positive numbers"
                             + (" or auto" if auto is not None else "") + f", got {part!r}")
        out.append(int(part))
    if not out:
        raise ValueError(f"{what}: empty list")
    return out


def parse_configs(text, default_workers, keepalives=(DEFAULT_KEEPALIVE,),
                  affinities=("none",)):
    """FRONT/SOCKET/DBMODE[/keepN][/pinned][@W:W:...], comma-separated ->
    [Config].  What an item leaves out runs at every value of its axis:
    every worker count without @, every keepalive without /keepN (nginx
    only), every placement without /pinned."""
    out = []
    for item in [x for x in re.split(r"[,\s]+", text.strip()) if x]:
        spec, _, ws = item.partition("@")
        parts = spec.split("/")
        if len(parts) < 3:
            raise ValueError(f"config {item!r}: want "
                             "FRONT/SOCKET/DBMODE[/keepN][/pinned][@W:W...]")
        front, sock, mode = parts[:3]
        if front not in FRONTS or sock not in SOCKETS or mode not in DB_MODES:
            raise ValueError(f"config {item!r}: front {'|'.join(FRONTS)}, "
                             f"socket {'|'.join(SOCKETS)}, "
                             f"db mode {'|'.join(DB_MODES)}")
        keeps, affs = list(keepalives), list(affinities)
        for extra in parts[3:]:
            m = re.fullmatch(r"keep(\d+)", extra)
            if m and front == "nginx":
                keeps = [int(m.group(1))]
            elif m:
                raise ValueError(f"config {item!r}: {front} keeps no FastCGI "
                                 "connections, /keepN is for nginx")
            elif extra == "pinned":
                affs = ["slot"]
            else:
                raise ValueError(f"config {item!r}: {extra!r} is neither "
                                 "keepN nor pinned")
        workers = parse_int_list(ws, f"config {item!r}") if ws else default_workers
        out += product([front], [sock], [mode], workers, keeps, affs)
    return dedupe(out)


def parse_keepalives(text):
    """0,1,8,32,64 -> [0, 1, 8, 32, 64]: 0 is allowed (no keep-conn)."""
    out = []
    for part in [x for x in re.split(r"[,\s:]+", text.strip()) if x]:
        if not part.isdigit():
            raise ValueError(f"--keepalives: want numbers >= 0, got {part!r}")
        out.append(int(part))
    if not out:
        raise ValueError("--keepalives: empty list")
    return list(dict.fromkeys(out))


def main_keepalive(keepalives):
    """The keepalive of the sweep's main line: deploy/stack's own when the
    list has it, else the list's last."""
    return DEFAULT_KEEPALIVE if DEFAULT_KEEPALIVE in keepalives else keepalives[-1]


def product(fronts, sockets, modes, workers, keepalives=(DEFAULT_KEEPALIVE,),
            affinities=("none",)):
    """Every combination, workers varying fastest; lighttpd's
    configurations collapse over the keepalives (dedupe)."""
    return dedupe([Config(f, s, m, w, k, a) for f, s, m, k, a, w in
                   itertools.product(fronts, sockets, modes, keepalives,
                                     affinities, workers)])


def dedupe(configs):
    seen, out = set(), []
    for c in configs:
        if c not in seen:
            seen.add(c)
            out.append(c)
    return out


@dataclass
class Anchor:
    name: str          # nginx-alone, lighttpd-alone, pgbench, ...
    route: object      # Route for pgbench anchors, None for the fronts
    script: str = ""   # pgbench script text
    mode: str = "prepared"
    connect_each: bool = False
    max_tries: int = 1
    note: str = ""
    # The anchor a route's rows are compared with like for like (the same
    # statements sent the way the app sends them, as many clients as the
    # row has workers): pgbench-pipelined for /queries and /updates,
    # pgbench for /db and /fortunes, pgbench-C for the per-request mode.
    like: bool = False

    @property
    def key(self):
        return self.name if self.route is None else f"{self.name} {self.route.key}"


SELECT = "SELECT id, randomnumber FROM world WHERE id = :id{i};"
WORLD_ROWS = 10000


def _ids(n, banded=False):
    """\\set lines for ids id1..idn.  banded: id i drawn from the i-th of n
    equal bands of the table, so that the ids come in ascending order:
    the app sorts the ids it updates so that concurrent updates lock rows
    in the same order and do not deadlock, and pgbench cannot sort."""
    if not banded:
        return [f"\\set id{i} random(1, {WORLD_ROWS})" for i in range(1, n + 1)]
    band = WORLD_ROWS // n
    return [f"\\set id{i} random({(i - 1) * band + 1}, "
            f"{WORLD_ROWS if i == n else i * band})" for i in range(1, n + 1)]


def pgbench_anchors(route, per_request, sequential=True):
    """The pgbench runs that mirror route: same statements, one
    transaction per request.  per_request adds the connect-per-transaction
    (-C) variant, unprepared, as the app's per-request mode does;
    sequential, for /queries and /updates, the selects one after the
    other besides the pipelined ones (what pipelining gains)."""
    out = []
    if route.name == "db":
        text = "\n".join(_ids(1) + [SELECT.format(i=1)]) + "\n"
        out.append(Anchor("pgbench", route, text, note="select-only, prepared",
                          like=True))
        if per_request:
            out.append(Anchor("pgbench-C", route, text, mode="extended",
                              connect_each=True, like=True,
                              note="new connection per transaction, unprepared"))
    elif route.name in ("queries", "updates"):
        n = route.n
        sets = _ids(n, banded=route.name == "updates")
        stmts = [SELECT.format(i=i) for i in range(1, n + 1)]
        tail, then = [], ""
        if route.name == "updates":
            ids = ", ".join(f":id{i}" for i in range(1, n + 1))
            rnd = ", ".join(f":r{i}" for i in range(1, n + 1))
            sets += [f"\\set r{i} random(1, {WORLD_ROWS})" for i in range(1, n + 1)]
            # The app's statement; its two arrays are built here from the
            # \set values (2n bound integers) where the app binds two
            # array literals.
            tail = [f"UPDATE world SET randomnumber = v.r FROM "
                    f"unnest(ARRAY[{ids}]::int[], ARRAY[{rnd}]::int[]) "
                    f"AS v(id, r) WHERE world.id = v.id;"]
            then = ", then the bulk UPDATE"
        # Concurrent updates may still deadlock or fail to serialize
        # now and then: pgbench retries them rather than stopping.
        tries = 10 if route.name == "updates" else 1
        seq = "\n".join(sets + stmts + tail) + "\n"
        # The UPDATE after the pipeline, as the app sends it: it reads the
        # rows first, then writes them.
        pipe = "\n".join(sets + ["\\startpipeline"] + stmts +
                         ["\\endpipeline"] + tail) + "\n"
        if sequential:
            out.append(Anchor("pgbench", route, seq, max_tries=tries,
                              note=f"{n} selects one after the other{then}, "
                                   "prepared"))
        out.append(Anchor("pgbench-pipelined", route, pipe, max_tries=tries,
                          like=True,
                          note=f"{n} selects in one \\startpipeline (one Sync "
                               f"at its end){then}, prepared"))
    elif route.name == "fortunes":
        text = "SELECT id, message FROM fortune;\n"
        out.append(Anchor("pgbench", route, text, note="all fortunes, prepared",
                          like=True))
        if per_request:
            out.append(Anchor("pgbench-C", route, text, mode="extended",
                              connect_each=True, like=True,
                              note="new connection per transaction, unprepared"))
    return out


# --pgbench-clients: which client counts each pgbench anchor runs at.
# "wrk": as many as wrk's connections; "workers": as many as the worker
# count of each configuration the anchor is compared with, so that the
# ratio compares like with like; "cores": as many as the machine's cores;
# a number: that many.  "cores" applies to the anchors of routes measured
# at workers = cores only: elsewhere it would compare with nothing.
CLIENT_WORDS = ("wrk", "workers", "cores")


def parse_pgbench_clients(text):
    out = []
    for part in [x for x in re.split(r"[,\s:]+", text.strip()) if x]:
        if part == "0":  # the option's old spelling of "wrk"
            part = "wrk"
        if part not in CLIENT_WORDS and not (part.isdigit() and int(part) > 0):
            raise ValueError(f"--pgbench-clients: want numbers or "
                             f"{', '.join(CLIENT_WORDS)}, got {part!r}")
        out.append(part if part in CLIENT_WORDS else int(part))
    if not out:
        raise ValueError("--pgbench-clients: empty list")
    return list(dict.fromkeys(out))


@dataclass
class Plan:
    routes: list
    configs: list
    concurrency: list
    duration: int
    warmup: int
    reps: int
    threads: int = 1
    pgbench_clients: tuple = ("wrk", "cores")
    sequential: bool = True   # the sequential pgbench for /queries, /updates
    # wrk connections of the light-load probe (0: none): /plaintext on a
    # fresh pool with fewer connections than workers, where the order in
    # which idle workers are woken decides who serves.
    probe: int = 0
    # What the timing costs: rounds of /db with --timing off and on (0:
    # none), each point timing_duration seconds.
    timing_rounds: int = 0
    timing_duration: int = 3
    # What slow FastCGI peers cost: rounds of /plaintext without and with
    # slow_peers connections that send one byte and stop (0: none), each
    # point timing_duration seconds.
    slow_rounds: int = 0
    slow_peers: int = 100
    fronts_alone: tuple = ("nginx-alone", "lighttpd-alone")
    cores: int = os.cpu_count() or 1

    def anchors(self):
        out = [Anchor(name, None) for name in self.fronts_alone]
        per_request = any(c.db_mode == "per-request" for c in self.configs)
        for r in self.routes:
            if r.kind == "db":
                out += pgbench_anchors(r, per_request, self.sequential)
        return out

    def pg_cap(self, n, anchor):
        """The connect-per-transaction anchor runs with at most 2 clients
        per core: it measures how fast PostgreSQL starts backends, which
        more clients only queue for (64 of them would spend seconds in the
        queue per transaction)."""
        if anchor is not None and anchor.connect_each:
            return min(n, 2 * self.cores)
        return n

    def pg_clients(self, conc, anchor=None):
        """pgbench's client count for the anchors of wrk concurrency conc."""
        return self.pg_cap(conc, anchor)

    def anchored_workers(self, anchor):
        """The worker counts of the configurations anchor is compared
        with: those that run its route, in the db mode it stands for."""
        mode = "per-request" if anchor.connect_each else "persistent"
        return sorted({c.workers for c in self.configs if c.db_mode == mode
                       and anchor.route in c.routes(self.routes)})

    def anchor_clients(self, anchor):
        """Every client count a pgbench anchor runs at, ascending."""
        out = set()
        for spec in self.pgbench_clients:
            if spec == "wrk":
                out.update(self.pg_cap(c, anchor) for c in self.concurrency)
            elif spec == "workers":
                out.update(self.pg_cap(w, anchor)
                           for w in self.anchored_workers(anchor))
            elif spec == "cores":
                if self.cores in self.anchored_workers(anchor):
                    out.add(self.pg_cap(self.cores, anchor))
            else:
                out.add(self.pg_cap(spec, anchor))
        return sorted(out)

    def pg_warmup(self, clients, anchor):
        """Seconds of pgbench warm-up once its clients are connected: every
        new backend fills its catalog caches on its first transactions
        (64 fresh ones need about 2 s on 2 cores to reach their steady
        rate), so the warm-up grows with the client count."""
        if anchor.connect_each:
            return self.warmup
        return self.warmup + 0.03 * clients

    def probes(self, c):
        """Whether configuration c gets the light-load probe: a new FastCGI
        connection per request (nginx keep0, lighttpd), so that every
        request wakes a worker (on a kept connection the request goes to
        the worker that holds it, whatever the order); persistent mode
        (per-request workers are all busy waiting for PostgreSQL); and
        more workers than the probe's connections, so that some are idle."""
        return (bool(self.probe) and not c.keepalive and c.db_mode == "persistent"
                and c.workers > self.probe)

    def timing_config(self, timing):
        """The configuration the timing's cost is measured on: what
        deploy/stack ships (nginx, unix socket, keepalive 32), a worker
        per core, with --timing on or off."""
        return Config("nginx", "unix", "persistent", self.cores,
                      DEFAULT_KEEPALIVE, "none", timing)

    @staticmethod
    def timing_order(rnd):
        """The order of a round's two points: off first in odd rounds,
        on first in even ones, so that a drift over the run (someone
        else's load coming or going) favours neither."""
        return ("off", "on") if rnd % 2 else ("on", "off")

    def timing_points(self):
        return 2 * self.timing_rounds

    @staticmethod
    def slow_order(rnd):
        """A round of the slow peers' cost: without first in odd rounds."""
        return ("without", "with") if rnd % 2 else ("with", "without")

    def slow_points(self):
        return 2 * self.slow_rounds if self.slow_peers else 0

    def points_per_rep(self):
        n = 0
        for c in self.configs:
            n += len(c.routes(self.routes)) * len(self.concurrency) + self.probes(c)
        return n

    def anchor_points(self):
        """Anchor measurements per repetition: the front servers at each
        wrk concurrency, pgbench at each of its client counts."""
        return sum(len(self.concurrency) if a.route is None
                   else len(self.anchor_clients(a)) for a in self.anchors())

    @staticmethod
    def front_kind(c):
        """What the running front server is configured for: a change
        restarts it (nginx's keepalive is in its configuration)."""
        return (c.front, c.socket, c.keepalive)

    # Seconds, measured in a quick sweep on this kind of machine (2 cores,
    # shared with other work): starting an anchor server, restarting the
    # pool, restarting the front server, pgbench's start and end, pgbench
    # connecting one client, a point's own overhead (CPU samples, the
    # drain), and the per-request mode's drain of what wrk left queued.
    COST_ANCHOR_START = 0.8
    COST_POOL = 0.6
    COST_FRONT = 0.6
    COST_PGBENCH = 0.5
    COST_PG_CLIENT = 0.015
    COST_POINT = 0.3
    COST_PER_REQUEST_DRAIN = 1.5

    def point_costs(self):
        """Estimated seconds of each point of one repetition, in the order
        they run: the anchors, then the configurations.  A group's fixed
        costs (starting servers, warming up, pgbench connecting its
        clients) go to its first point."""
        costs = []
        for a in self.anchors():
            if a.route is None:
                for i, conc in enumerate(self.concurrency):
                    costs.append((self.COST_ANCHOR_START + self.warmup if i == 0
                                  else 0) + self.duration + self.COST_POINT)
                continue
            for clients in self.anchor_clients(a):
                costs.append(self.pg_warmup(clients, a) + self.duration +
                             self.COST_PGBENCH +
                             (0 if a.connect_each else self.COST_PG_CLIENT * clients))
        prev = None
        warm = self.warmup + self.COST_POINT
        for c in self.configs:
            fixed = self.COST_POOL
            if prev is None or self.front_kind(prev) != self.front_kind(c):
                fixed += self.COST_FRONT
            prev = c
            per = self.duration + self.COST_POINT
            if c.db_mode == "per-request":
                per += self.COST_PER_REQUEST_DRAIN
            if self.probes(c):
                # Its own pool life, then the pool's restart.
                costs.append(fixed + per)
                fixed = self.COST_POOL
            if c.db_mode == "persistent":
                fixed += warm
            n = len(c.routes(self.routes)) * len(self.concurrency)
            costs += [per + (fixed if i == 0 else 0) for i in range(n)]
        return costs

    def timing_costs(self):
        """Estimated seconds of each point of the timing's and the slow
        peers' cost, after the repetitions: a pool start and a warm-up
        each, the front server's start on the first."""
        per = self.COST_POOL + self.warmup + self.timing_duration + self.COST_POINT
        costs = [per] * (self.timing_points() + self.slow_points())
        if costs:
            costs[0] += self.COST_FRONT
        return costs

    def all_costs(self):
        """Estimated seconds of every point of the run, in order."""
        return self.point_costs() * self.reps + self.timing_costs()

    def estimate_seconds(self):
        return sum(self.all_costs()) + 8
