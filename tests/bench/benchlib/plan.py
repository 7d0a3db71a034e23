"""plan: what a sweep runs, in which order, and how long it should take.

A *configuration* is a front server, a FastCGI socket type, a database
connection mode and a worker count: one start of the pool and the front
server.  Every route of the sweep is measured on it, one after the other,
after one warm-up that cycles through them all.  A *repetition* runs the
anchors, then every configuration, in the same order each time, so that
the same configuration is measured at several moments of the run
(interleaved, not in blocks), and slow drift or someone else's load
spreads over all of them instead of landing on one.
"""

import itertools
import os
import re
from dataclasses import dataclass

FRONTS = ("nginx", "lighttpd")
SOCKETS = ("unix", "tcp")
DB_MODES = ("persistent", "per-request")

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

    @property
    def label(self):
        """The line this point belongs to: all but the worker count."""
        return f"{self.front}/{self.socket}/{self.db_mode}"

    def routes(self, routes):
        """Per-request mode changes nothing for a route that does no
        database work (the app connects lazily), so it runs only those
        that do."""
        if self.db_mode == "persistent":
            return list(routes)
        return [r for r in routes if r.kind == "db"]


def parse_int_list(text, what):
    out = []
    for part in re.split(r"[,\s:]+", text.strip()):
        if not part:
            continue
        if not part.isdigit() or int(part) < 1:
            raise ValueError(f"{what}: want positive numbers, got {part!r}")
        out.append(int(part))
    if not out:
        raise ValueError(f"{what}: empty list")
    return out


def parse_configs(text, default_workers):
    """FRONT/SOCKET/DBMODE[@W:W:...], comma-separated -> [Config]."""
    out = []
    for item in [x for x in re.split(r"[,\s]+", text.strip()) if x]:
        spec, _, ws = item.partition("@")
        parts = spec.split("/")
        if len(parts) != 3:
            raise ValueError(f"config {item!r}: want FRONT/SOCKET/DBMODE[@W:W...]")
        front, sock, mode = parts
        if front not in FRONTS or sock not in SOCKETS or mode not in DB_MODES:
            raise ValueError(f"config {item!r}: front {'|'.join(FRONTS)}, "
                             f"socket {'|'.join(SOCKETS)}, "
                             f"db mode {'|'.join(DB_MODES)}")
        workers = parse_int_list(ws, f"config {item!r}") if ws else default_workers
        out += [Config(front, sock, mode, w) for w in workers]
    return dedupe(out)


def product(fronts, sockets, modes, workers):
    return [Config(f, s, m, w) for f, s, m, w in
            itertools.product(fronts, sockets, modes, workers)]


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

    @property
    def key(self):
        return self.name if self.route is None else f"{self.name} {self.route.key}"


SELECT = "SELECT id, randomnumber FROM world WHERE id = :id{i};"


def _selects(n):
    lines = []
    for i in range(1, n + 1):
        lines.append(f"\\set id{i} random(1, 10000)")
    for i in range(1, n + 1):
        lines.append(SELECT.format(i=i))
    return lines


def pgbench_anchors(route, per_request):
    """The pgbench runs that mirror route: same statements, one
    transaction per request.  per_request adds the connect-per-transaction
    (-C) variant, unprepared, as the app's per-request mode does."""
    out = []
    if route.name == "db":
        text = "\n".join(_selects(1)) + "\n"
        out.append(Anchor("pgbench", route, text, note="select-only, prepared"))
        if per_request:
            out.append(Anchor("pgbench-C", route, text, mode="extended",
                              connect_each=True,
                              note="new connection per transaction, unprepared"))
    elif route.name in ("queries", "updates"):
        sel = _selects(route.n)
        sets, stmts = sel[:route.n], sel[route.n:]
        tail = []
        if route.name == "updates":
            ids = ", ".join(f":id{i}" for i in range(1, route.n + 1))
            rnd = ", ".join(f":r{i}" for i in range(1, route.n + 1))
            sets += [f"\\set r{i} random(1, 10000)" for i in range(1, route.n + 1)]
            # The app's statement, the arrays spelled out instead of bound.
            tail = [f"UPDATE world SET randomnumber = v.r FROM "
                    f"unnest(ARRAY[{ids}]::int[], ARRAY[{rnd}]::int[]) "
                    f"AS v(id, r) WHERE world.id = v.id;"]
        tries = 10 if route.name == "updates" else 1
        seq = "\n".join(sets + stmts + tail) + "\n"
        pipe = "\n".join(sets + ["\\startpipeline"] + stmts + tail +
                         ["\\endpipeline"]) + "\n"
        out.append(Anchor("pgbench", route, seq, max_tries=tries,
                          note=f"{route.n} selects one after the other, prepared "
                               "(what the app does)"))
        out.append(Anchor("pgbench-pipelined", route, pipe, max_tries=tries,
                          note=f"{route.n} selects in one \\startpipeline, prepared"))
    elif route.name == "fortunes":
        text = "SELECT id, message FROM fortune;\n"
        out.append(Anchor("pgbench", route, text, note="all fortunes, prepared"))
        if per_request:
            out.append(Anchor("pgbench-C", route, text, mode="extended",
                              connect_each=True,
                              note="new connection per transaction, unprepared"))
    return out


@dataclass
class Plan:
    routes: list
    configs: list
    concurrency: list
    duration: int
    warmup: int
    reps: int
    threads: int = 1
    pgbench_clients: int = 0  # 0: as many as wrk's connections
    fronts_alone: tuple = ("nginx-alone", "lighttpd-alone")

    def anchors(self):
        out = [Anchor(name, None) for name in self.fronts_alone]
        per_request = any(c.db_mode == "per-request" for c in self.configs)
        for r in self.routes:
            if r.kind == "db":
                out += pgbench_anchors(r, per_request)
        return out

    def pg_clients(self, conc, anchor=None):
        """pgbench's client count for the anchors of concurrency conc: the
        same as wrk's, unless told otherwise.  The connect-per-transaction
        anchor runs with at most 2 per core: it measures how fast
        PostgreSQL starts backends, which more clients only queue for
        (64 of them would spend seconds in the queue per transaction)."""
        n = self.pgbench_clients or conc
        if anchor is not None and anchor.connect_each:
            n = min(n, 2 * (os.cpu_count() or 1))
        return n

    def pg_warmup(self, clients, anchor):
        """Seconds of pgbench warm-up once its clients are connected: every
        new backend fills its catalog caches on its first transactions
        (64 fresh ones need about 2 s on 2 cores to reach their steady
        rate), so the warm-up grows with the client count."""
        if anchor.connect_each:
            return self.warmup
        return self.warmup + 0.03 * clients

    def points_per_rep(self):
        n = 0
        for c in self.configs:
            n += len(c.routes(self.routes)) * len(self.concurrency)
        return n

    def point_costs(self):
        """Estimated seconds of each point of one repetition, in the order
        they run: the anchors, then the configurations.  A group's fixed
        costs (starting servers, warming up, pgbench connecting its
        clients) go to its first point.  Measured on 2 busy cores."""
        costs = []
        for a in self.anchors():
            for i, conc in enumerate(self.concurrency):
                if a.route is None:
                    costs.append((1.5 + self.warmup if i == 0 else 0) +
                                 self.duration + 0.3)
                else:
                    clients = self.pg_clients(conc, a)
                    costs.append(self.pg_warmup(clients, a) + self.duration + 0.7 +
                                 (0 if a.connect_each else 0.03 * clients))
        prev = None
        for c in self.configs:
            fixed = 1.2  # the pool's restart
            if prev is None or (prev.front, prev.socket) != (c.front, c.socket):
                fixed += 1.2
            if c.db_mode == "persistent":
                fixed += self.warmup + 0.3
            prev = c
            per = self.duration + 0.3
            if c.db_mode == "per-request":
                per += 3.0  # draining what wrk left queued
            n = len(c.routes(self.routes)) * len(self.concurrency)
            costs += [per + (fixed if i == 0 else 0) for i in range(n)]
        return costs

    def estimate_seconds(self):
        return sum(self.point_costs()) * self.reps + 8
