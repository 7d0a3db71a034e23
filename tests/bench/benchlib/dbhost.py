"""dbhost: the bench's PostgreSQL, and the distances it is put at.

One server for the whole sweep, made fresh in a directory of its own
(tests/kit/pg.py's Cluster: initdb, the settings on pg_ctl's command
line), loaded by `deploy/stack pg load` as any external server is
(roles.sql as its superuser, then create.sql), with deploy/stack's own
settings for its embedded cluster (read from deploy/lib/pg.sh, where they
are written once).

As root it runs in a network namespace of its own, a database host
(tests/kit/netns.py): eth0 at NET.N.21, on bridge "db" of a switch; this
namespace (nginx, the workers, the load generator) on bridge "app"; the
two bridges joined by one cable per distance: a plain veth for 0 ms, the
delay line (netdelay.c) for each other round trip.  Changing the distance
swaps the cable and keeps every connection.  Distance "local" is the
same server through its unix socket, the reference line of the earlier
bench.  Not root: no namespace, and "local" is the only distance.

A round trip asked for is a round trip seen from this namespace: the
delay line's own lateness (its wake-ups, tens of microseconds a frame)
and the bridges' add to the delay it is given, so each delay line is
calibrated at the start: given half the round trip each way, measured,
and made again with the excess taken off (twice at most).
"""

import os
import re
import shutil
import tempfile
import time

from ...kit import REPO, STACK, netns, proc
from ...kit.cmd import run, tail
from ...kit.pg import APP_DB, APP_USER, Cluster
from ...kit.stack import StackError

PREFIX, NET, DB_HOST, APP_HOST = "tfbb", "10.214", 21, 1
PG_PORT = 5432
PG_SH = REPO / "deploy" / "lib" / "pg.sh"
# A calibrated round trip within this share of the one asked is kept.
CALIBRATION_TOLERANCE = 0.03


def stack_settings():
    """deploy/stack's settings of its embedded cluster, as {name: value}:
    the lines "name = value" of the configuration pg_write_conf writes,
    but those that place the server (address, port, socket), which are
    each server's own."""
    text = PG_SH.read_text()
    m = re.search(r'cat >"\$conf" <<EOF\n(.*?)\nEOF', text, re.S)
    if not m:
        raise StackError("%s: pg_write_conf's settings not found" % PG_SH)
    out = {}
    for line in m.group(1).splitlines():
        kv = re.fullmatch(r"\s*([a-z_.]+)\s*=\s*(.*?)\s*", line)
        if kv and kv.group(1) not in ("listen_addresses", "port", "unix_socket_directories"):
            out[kv.group(1)] = kv.group(2).strip("'")
    if "max_connections" not in out:
        raise StackError("%s: no max_connections among pg_write_conf's settings" % PG_SH)
    return out


class DbHost:
    """distances: the plan's (experiment.Distance), "local" among them or
    not; say: a progress printer.  start() makes it all; stop() removes it
    all, whatever happened (and the namespace keeper does, if we die).
    Every method raises StackError when a part cannot be made."""

    def __init__(self, distances, say):
        self.distances = list(distances)
        self.say = say
        self.root = os.geteuid() == 0
        self.net = None
        self.pg = None
        self.base = None
        self.current = None
        self.calibration = {}   # distance key -> {one_way_us, rtt_us, tries}
        self.networked = any(d.rtt_us is not None for d in self.distances)

    # -- start and stop

    def start(self, stack_var):
        """The server, loaded; with a network distance, the namespaces and
        a cable per distance, calibrated.  stack_var: deploy/stack's VAR
        for the load."""
        self.base = tempfile.mkdtemp(prefix="tfb-bench-db-", dir="/var/tmp")
        os.chmod(self.base, 0o755)
        pgdir = os.path.join(self.base, "pg")
        listen, wrap = "''", (lambda argv: argv)
        hba = "local all all trust\n"
        if self.networked:
            self.net = netns.Net(PREFIX, NET)
            self.net.bridge("app")
            self.net.bridge("db")
            self.net.host("db", "db", DB_HOST)
            self.net.client("app", APP_HOST)
            listen, wrap = self.net.addr("db"), (lambda argv: self.net.in_ns("db", argv))
            hba += "host all all %s trust\n" % self.net.subnet()
            self.say("bench: the database host is namespace %s, at %s; this side %s"
                     % (self.net.ns("db"), self.net.addr("db"), self.net.addr("client")))
        self.pg = Cluster(pgdir, PG_PORT, listen=listen, hba=hba,
                          settings=stack_settings(), wrap=wrap)
        self.pg.initdb()
        if self.net is not None:
            # Should we be killed, the keeper stops the server first.
            self.net.at_teardown(self.pg_stop_argv())
        self.pg.start()
        self.load(stack_var)
        if self.net is not None:
            self.make_cables()

    def pg_stop_argv(self):
        argv = [str(self.pg.bindir / "pg_ctl"), "stop", "-D", self.pg.data,
                "-m", "immediate", "-w", "-t", "10", "-s"]
        return (["runuser", "-u", "postgres", "--"] if self.root else []) + argv

    def load(self, stack_var):
        """deploy/stack pg load against it, as against any server: roles.sql
        as its superuser, then create.sql as benchmarkdbuser."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(self.env_for(None), VAR=str(stack_var), PG_SUPERUSER="postgres")
        r = run([str(STACK), "pg", "load"], 180, env=env, cwd=str(REPO))
        if r.returncode != 0:
            raise StackError("deploy/stack pg load exited %s: %s"
                             % (r.returncode, " | ".join(tail(r.stdout, 6))))

    def make_cables(self):
        """A cable per network distance, calibrated; the nearest plugged in."""
        for d in self.distances:
            if d.rtt_us == 0:
                self.net.cable(d.key, "app", "db")
                self.calibration[d.key] = {"one_way_us": 0, "tries": 1,
                                           "rtt_us": self.measure_cable(d.key)}
        for d in self.distances:
            if d.rtt_us:
                self.calibrate(d)
        self.use(self.network()[0])

    def network(self):
        return [d for d in self.distances if d.rtt_us is not None]

    def calibrate(self, d):
        """A delay line for d whose idle round trip, seen from here, is
        d.rtt_us within CALIBRATION_TOLERANCE, or the closest of three."""
        one_way, tries, best = d.rtt_us / 2.0, 0, None
        while True:
            tries += 1
            # Never less than 80% of the asked delay: a line late by more
            # than a fifth of the round trip at rest is a machine too busy
            # to calibrate on, not a line to correct that much.
            one_way = max(one_way, 0.4 * d.rtt_us)
            name = "%s/%d" % (d.key, tries)
            self.net.cable(name, "app", "db", delay_us=int(round(one_way)))
            rtt = self.measure_cable(name)
            if rtt is None:
                raise StackError("no round trip through the delay line of %s" % d.label)
            off = rtt - d.rtt_us
            if best is None or abs(off) < abs(best[2]):
                if best is not None:
                    self.net.remove(best[0])
                best = (name, int(round(one_way)), off, rtt)
            else:
                self.net.remove(name)
            if abs(off) <= CALIBRATION_TOLERANCE * d.rtt_us or tries == 3:
                break
            one_way = max(0.0, one_way - off / 2.0)
        name, one_way, _, rtt = best
        self.net.unplug()
        self.net.cables[d.key] = self.net.cables.pop(name)
        self.calibration[d.key] = {"one_way_us": one_way, "rtt_us": rtt, "tries": tries}
        self.say("bench: %s: the delay line delays %d us each way; round trip "
                 "from the workers' side %.0f us at rest" % (d.label, one_way, rtt))

    def measure_cable(self, name):
        """The round trip through cable name, plugged in (idle: nothing is
        on it yet)."""
        self.net.use(name)
        return self.at_rest(5)

    def at_rest(self, moments=3):
        """The round trip through the cable in use at rest: the least of
        the medians of 11 connects at a few moments a tenth of a second
        apart.  The machine is shared (with the other tiers, with other
        people's work): a busy moment delays the delay line's wake-ups,
        and the quietest moment gives the line's own round trip."""
        meds = []
        for i in range(moments):
            if i:
                time.sleep(0.1)
            m = self.net.rtt_us(self.net.addr("db"), count=11)
            if m is not None:
                meds.append(m)
        return min(meds) if meds else None

    def stop(self):
        """The server stopped, the namespaces and the directory removed.
        Returns what is left (a list of strings; empty when all went)."""
        left = []
        if self.pg is not None and self.pg.started:
            try:
                self.pg.stop("fast")
            except StackError as e:
                left.append(str(e))
            self.pg.started = False
        if self.net is not None:
            if not self.net.close():
                left.append("the namespace keeper did not finish")
            left += self.net.leftovers()
            self.net = None
        if self.base:
            shutil.rmtree(self.base, ignore_errors=True)
        return left

    # -- in use

    def env_for(self, distance):
        """The PG* variables that reach the server at distance (None or
        local: its unix socket)."""
        local = distance is None or distance.rtt_us is None
        return {"PGHOST": self.pg.base if local else self.net.addr("db"),
                "PGPORT": str(PG_PORT), "PGUSER": APP_USER, "PGDATABASE": APP_DB}

    def use(self, distance):
        """Put the server at distance: its cable plugged in (nothing for
        local, which is reached another way)."""
        self.current = distance
        if distance.rtt_us is not None:
            self.net.use(distance.key)

    def measure(self, distance=None):
        """The round trip to the server now, from this namespace, in µs;
        None for local."""
        d = distance or self.current
        if d is None or d.rtt_us is None or self.net is None:
            return None
        return self.at_rest()

    def wire(self):
        """The delay line in use, or None."""
        d = self.current
        if d is None or not d.rtt_us:
            return None
        return self.net.wire(d.key)

    def postmaster_pid(self):
        return self.pg.postmaster_pid() if self.pg else None

    def pids(self):
        """The postmaster and its backends."""
        pm = self.postmaster_pid()
        return [pm] + proc.descendants(pm) if pm else []

    def delay_pids(self):
        """Every delay line (the ones not in use sleep)."""
        if self.net is None:
            return []
        return [w.pid for _, _, _, w in self.net.cables.values() if w is not None]
