"""netns: hosts in network namespaces behind a switch, and the cable
between two of its bridges delayed in user space (root only).

    net = netns.Net("tfbb", "10.214")      # claims 10.214.N.0/24, forks its keeper
    net.bridge("app"); net.bridge("db")
    net.host("db", "db", 21)               # namespace tfbbN-db, eth0 10.214.N.21 on bridge db
    net.client("app", 1)                   # this namespace on bridge app: tfbbN-h, 10.214.N.1
    net.cable("plain", "app", "db")        # a veth between the bridges, unplugged
    net.cable("d500", "app", "db", delay_us=500)   # netdelay.c, 500 us each way
    net.use("d500")                        # plugged in: one cable at a time
    w = net.wire("d500"); w.window()       # its lateness since the last window()
    net.rtt_us(net.addr("db"))             # one round trip, from this namespace
    net.in_ns("db", argv)                  # ip netns exec tfbbN-db argv...
    net.at_teardown(argv)                  # a command the keeper runs first
    net.close()                            # the keeper removes everything

The layout is the cluster test's: each host a namespace with one
interface, eth0, a veth whose other end is a port of a bridge in the
switch namespace (PREFIX N-sw), one /24 for all, nothing routed.  Two
bridges joined by a cable are one segment; the cable is a plain veth or
netdelay.c's two TAP devices (tests/integration/netdelay.c, built by make
test), whose process delays every frame (netem is not in this kernel).
Several cables may join the same two bridges, but only the one in use
is up: two would make a loop.  Swapping cables keeps every TCP
connection: a frame in flight on the old one may be lost, and TCP sends
it again.

Clean-up is a keeper process forked at the claim (tests/pg.h's way): it
waits on a pipe only this process writes to, and when the pipe closes,
whatever the reason (close(), an exception, a signal, SIGKILL), it runs
the teardown commands registered with at_teardown() (stopping a
PostgreSQL, restoring a sysctl), kills every process left in the
namespaces, deletes them (their interfaces go with them) and this
namespace's end of the client cable.

Every process is found through its namespace, never by name.
"""

import json
import os
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from . import NETDELAY, proc
from .cmd import run, tail
from .stack import StackError


def sh(argv, timeout=60):
    """A command; its output.  Raises StackError when it fails."""
    r = run(argv, timeout)
    if r.returncode != 0:
        raise StackError("%s exited %s: %s" % (" ".join(map(str, argv[:6])), r.returncode,
                                               " | ".join(tail(r.stdout, 6))))
    return r.stdout


def ns_pids(ns):
    """The processes running in namespace ns."""
    r = run(["ip", "netns", "pids", ns], 10)
    return [int(x) for x in (r.stdout or "").split() if x.isdigit()] if r.returncode == 0 else []


def kill_all(pids, timeout=5):
    """SIGKILL each pid; True once every one is gone."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    end = time.monotonic() + timeout
    while any(proc.alive(p) for p in pids) and time.monotonic() < end:
        time.sleep(0.02)
    return not any(proc.alive(p) for p in pids)


def _teardown(prefix, n, tmp):
    """Everything of net N: the registered commands (newest first), then
    every process in its namespaces, the namespaces, the client cable,
    the directory (kept with TFB_TEST_KEEP, to look at)."""
    try:
        with open(os.path.join(tmp, "teardown")) as f:
            cmds = [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError):
        cmds = []
    for argv in reversed(cmds):
        run(argv, 30)
    listed = run(["ip", "netns", "list"], 10).stdout or ""
    names = [l.split()[0] for l in listed.splitlines()
             if l.startswith("%s%d-" % (prefix, n))]
    kill_all([p for ns in names for p in ns_pids(ns)])
    # The switch last: it is the claim.
    for ns in sorted(names, key=lambda x: x.endswith("-sw")):
        run(["ip", "netns", "del", ns], 10)
    run(["ip", "link", "del", "%s%d-h" % (prefix, n)], 10)
    if not os.environ.get("TFB_TEST_KEEP"):
        shutil.rmtree(tmp, ignore_errors=True)


def keeper(rfd, prefix, n, tmp):
    """The keeper's life: out of our process group and deaf to the
    signals that stop a test, wait for the pipe to close, clean up."""
    os.setsid()
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
        signal.signal(s, signal.SIG_IGN)
    try:
        while os.read(rfd, 1):
            pass
    except OSError:
        pass
    try:
        _teardown(prefix, n, tmp)
    finally:
        os._exit(0)


def _read_line(fd, deadline):
    """One line from fd (a pipe in non-blocking mode), waiting at most
    until deadline (time.monotonic()); None when none came."""
    buf = b""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        try:
            chunk = os.read(fd, 1)
        except BlockingIOError:
            continue
        if not chunk:
            return None
        buf += chunk
    return buf.decode(errors="replace").strip()


class Wire:
    """netdelay.c running as argv (inside the switch namespace): started
    at once, ready when it said so.  Raises StackError when it does not
    start within 5 s."""

    LATENESS = re.compile(r"frames (\d+).*?median (\d+) us, p99 (\d+) us, dropped (\d+)")

    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.fd = self.proc.stdout.fileno()
        os.set_blocking(self.fd, False)
        line = _read_line(self.fd, time.monotonic() + 5)
        if line != "ready":
            self.kill()
            raise StackError("netdelay did not start: %r" % line)

    @property
    def pid(self):
        return self.proc.pid

    def window(self, timeout=5):
        """The lateness since the previous window (or the start): a dict
        frames, late_p50_us, late_p99_us, dropped; None when netdelay did
        not answer within timeout seconds."""
        if self.proc.poll() is not None:
            return None
        self.proc.send_signal(signal.SIGUSR1)
        line = _read_line(self.fd, time.monotonic() + timeout)
        m = self.LATENESS.search(line or "")
        if not m or not line.startswith("window"):
            return None
        return dict(zip(("frames", "late_p50_us", "late_p99_us", "dropped"),
                        map(int, m.groups())))

    def stop(self):
        """SIGTERM; its last line (the whole life's lateness), "" when it
        did not say it within 10 s (then it is killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        lines, end = [], time.monotonic() + 10
        while True:
            line = _read_line(self.fd, end)
            if line is None:
                break
            lines.append(line)
        if self.proc.poll() is None:
            self.kill()
            return ""
        self.proc.stdout.close()
        return lines[-1] if lines else ""

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass


class Net:
    """Namespaces PREFIX N-*, one subnet NET.N.0/24, and the keeper that
    removes them.  Raises PermissionError when namespaces are not allowed
    here (not root), StackError when no N is free."""

    def __init__(self, prefix, net):
        self.prefix, self.net = prefix, net
        self.tmp = tempfile.mkdtemp(prefix="tfb-netns-", dir="/tmp")
        self.n = None
        self.hosts = {}     # name -> last byte of its address
        self.cables = {}    # name -> (bridge a, bridge b, its two sw-side links, Wire)
        self.in_use = None
        self.made = 0       # cables made so far: names their links
        self.keeper_pid = self.keeper_fd = None
        self._claim()

    # -- names

    def ns(self, host):
        return "%s%d-%s" % (self.prefix, self.n, host)

    def addr(self, host):
        return "%s.%d.%d" % (self.net, self.n, self.hosts[host])

    def subnet(self):
        return "%s.%d.0/24" % (self.net, self.n)

    def in_ns(self, host, argv):
        return ["ip", "netns", "exec", self.ns(host)] + [str(a) for a in argv]

    def _claim(self):
        """N such that PREFIX N-sw did not exist: making it is the lock.
        Then the keeper, before anything else is made."""
        start = os.getpid() % 250
        for i in range(250):
            n = (start + i) % 250 + 1
            r = run(["ip", "netns", "add", "%s%d-sw" % (self.prefix, n)], 10)
            if r.returncode == 0:
                break
            if r.returncode is None or re.search(r"permission|not permitted|command not found",
                                                 r.stdout or "", re.I):
                shutil.rmtree(self.tmp, ignore_errors=True)
                raise PermissionError((r.stdout or "ip netns add timed out").strip())
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise StackError("no free %s<N>-sw namespace" % self.prefix)
        self.n = n
        rfd, wfd = os.pipe()
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            os.close(wfd)
            keeper(rfd, self.prefix, n, self.tmp)
        os.close(rfd)
        self.keeper_pid, self.keeper_fd = pid, wfd
        sh(["ip", "-n", self.ns("sw"), "link", "set", "lo", "up"])

    def at_teardown(self, argv):
        """A command the keeper runs before it kills and deletes (the
        newest first): what a SIGKILL of ours must not leave behind."""
        with open(os.path.join(self.tmp, "teardown"), "a") as f:
            f.write(json.dumps([str(a) for a in argv]) + "\n")

    # -- the network

    def _ip(self, *args):
        return sh(["ip"] + [str(a) for a in args])

    def bridge(self, name):
        self._ip("-n", self.ns("sw"), "link", "add", name, "type", "bridge")
        self._ip("-n", self.ns("sw"), "link", "set", name, "up")

    def host(self, name, bridge, last):
        """A namespace with eth0 at NET.N.last on bridge."""
        self.hosts[name] = last
        ns, sw = self.ns(name), self.ns("sw")
        self._ip("netns", "add", ns)
        self._ip("-n", ns, "link", "set", "lo", "up")
        self._ip("link", "add", "p-" + name, "netns", sw, "type", "veth",
                 "peer", "name", "eth0", "netns", ns)
        self._ip("-n", sw, "link", "set", "p-" + name, "master", bridge, "up")
        self._ip("-n", ns, "addr", "add", self.addr(name) + "/24", "dev", "eth0")
        self._ip("-n", ns, "link", "set", "eth0", "up")

    def client(self, bridge, last, name="client"):
        """This namespace on bridge, at NET.N.last, through the veth
        PREFIX N-h."""
        self.hosts[name] = last
        h, sw = "%s%d-h" % (self.prefix, self.n), self.ns("sw")
        self._ip("link", "add", h, "type", "veth", "peer", "name", "p-" + name, "netns", sw)
        self._ip("-n", sw, "link", "set", "p-" + name, "master", bridge, "up")
        self._ip("addr", "add", self.addr(name) + "/24", "dev", h)
        self._ip("link", "set", h, "up")

    def cable(self, name, a, b, delay_us=None):
        """A cable between bridges a and b: a veth pair, or with delay_us
        netdelay.c delaying every frame that much each way.  Made
        unplugged: use() plugs it in."""
        sw = self.ns("sw")
        self.made += 1
        ends = ("c%d-a" % self.made, "c%d-b" % self.made)
        wire = None
        if delay_us is None:
            self._ip("link", "add", ends[0], "netns", sw, "type", "veth",
                     "peer", "name", ends[1], "netns", sw)
        else:
            if not NETDELAY.exists():
                raise StackError("%s not found: make test builds it" % NETDELAY)
            wire = Wire(self.in_ns("sw", [NETDELAY, delay_us, ends[0], ends[1]]))
        self._ip("-n", sw, "link", "set", ends[0], "master", a)
        self._ip("-n", sw, "link", "set", ends[1], "master", b)
        self.cables[name] = (a, b, ends, wire)

    def use(self, name):
        """Plug cable name in, after unplugging the one in use (never two
        at once: the bridges would make a loop)."""
        if name == self.in_use:
            return
        self.unplug()
        for end in self.cables[name][2]:
            self._ip("-n", self.ns("sw"), "link", "set", end, "up")
        self.in_use = name

    def unplug(self):
        """The cable in use unplugged: the bridges apart."""
        if self.in_use is not None:
            for end in self.cables[self.in_use][2]:
                self._ip("-n", self.ns("sw"), "link", "set", end, "down")
            self.in_use = None

    def remove(self, name):
        """Cable name gone (a delayed one's netdelay stopped: its TAP
        devices go with it), unplugged first if it was in use."""
        if name == self.in_use:
            self.unplug()
        _, _, ends, wire = self.cables.pop(name)
        if wire is not None:
            wire.stop()
        else:
            self._ip("-n", self.ns("sw"), "link", "del", ends[0])

    def wire(self, name):
        """The Wire of a delayed cable, None for a plain one."""
        return self.cables[name][3]

    def rtt_us(self, addr, port=9, count=21, timeout=2.0):
        """The median of count round trips from this namespace to addr, in
        microseconds: a TCP connect to a port nothing listens on is
        refused one round trip after it is sent, and costs the other host
        no process.  None when no answer came (a connect timed out)."""
        times = []
        for _ in range(count):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.settimeout(timeout)
                t = time.perf_counter()
                try:
                    s.connect((addr, port))
                except ConnectionRefusedError:
                    pass
                except OSError:
                    return None
                times.append(time.perf_counter() - t)
        return statistics.median(times) * 1e6

    # -- the end

    def close(self):
        """Stop the wires, let the keeper clean up, and wait for it.  True
        when it did within 90 s."""
        if self.keeper_fd is None:
            return True
        for _, _, _, wire in self.cables.values():
            if wire is not None:
                wire.kill()
        fd, self.keeper_fd = self.keeper_fd, None
        return release_keeper(fd, self.keeper_pid)

    def leftovers(self):
        """What of this net is still there (after close)."""
        return leftovers(self.prefix, self.n, self.tmp)


def release_keeper(fd, pid, timeout=90):
    """Close the keeper's pipe (fd), which tells it to remove its
    namespaces and interfaces, and reap it (pid).  True when it was done
    within timeout seconds."""
    os.close(fd)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.waitpid(pid, os.WNOHANG)[0]:
            return True
        time.sleep(0.05)
    return False


def leftovers(prefix, n, tmp):
    """What is still there of the namespaces named prefix<n>-*, their
    host interface prefix<n>-h, and tmp."""
    out = []
    listed = run(["ip", "netns", "list"], 10).stdout or ""
    out += [l.split()[0] for l in listed.splitlines() if l.startswith("%s%d-" % (prefix, n))]
    if run(["ip", "link", "show", "%s%d-h" % (prefix, n)], 10).returncode == 0:
        out.append("interface %s%d-h" % (prefix, n))
    if os.path.exists(tmp):
        out.append(tmp)
    return out
