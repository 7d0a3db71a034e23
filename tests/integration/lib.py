"""lib.py: what every integration test needs, and nothing else.

    tap = lib.TAP()                      # "ok N - ..." / "not ok N - ..." lines
    with lib.Stack(server="nginx", workers=4, tap=tap) as st:
        r = lib.get(st.url("/json"))     # Response(status, headers, body)
        st.psql("SELECT 1")              # deploy/stack psql -At -c ...

A test file wraps its body in lib.main(body), which turns exceptions,
Ctrl-C, SIGTERM and its own deadline into a "not ok" line, always leaves
through the Stack's stop, and exits non-zero when any check failed.  Every
line a test prints is either a TAP line or a "# " comment: tests/run counts
the "ok" / "not ok" lines of all files.

Python standard library only.
"""

import gzip
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# TFB_STACK: another script with the same contract (to test the tests).
STACK = Path(os.environ.get("TFB_STACK") or REPO / "deploy" / "stack")
APP_BIN = REPO / "build" / "tfb-fcgi"
APP_NAME = "tfb-fcgi"  # application_name of the app's libpq connections

# Ports the tests may listen on, "LO-HI"; the brief of this project reserves
# 28080-28099 for them.  TFB_TEST_PORTS overrides.
PORT_RANGE = os.environ.get("TFB_TEST_PORTS", "28080-28099")


# --------------------------------------------------------------------------
# The reporter

class TAP:
    """Numbered check lines.  A check passes or fails; details go on "# "
    lines right after the check so that a reader sees why."""

    MAX_DETAIL_LINES = 40
    MAX_LINE = 400

    def __init__(self):
        self.n = 0
        self.failed = 0
        self._lock = threading.Lock()

    @staticmethod
    def _one_line(text):
        return " ".join(str(text).split())

    def note(self, *lines):
        """Print "# " comment lines (each argument may hold several)."""
        for text in lines:
            for line in str(text).splitlines() or [""]:
                if len(line) > self.MAX_LINE:
                    line = line[: self.MAX_LINE] + "..."
                print("# " + line if line else "#", flush=True)

    def check(self, cond, desc, details=()):
        """One check: ok when cond is true.  details (a string or a list
        of strings) are printed under a failing check only."""
        with self._lock:
            self.n += 1
            desc = self._one_line(desc)
            if cond:
                print("ok %d - %s" % (self.n, desc), flush=True)
                return True
            self.failed += 1
            print("not ok %d - %s" % (self.n, desc), flush=True)
            if isinstance(details, str):
                details = [details]
            lines = []
            for d in details:
                lines.extend(str(d).splitlines())
            if len(lines) > self.MAX_DETAIL_LINES:
                cut = len(lines) - self.MAX_DETAIL_LINES
                lines = lines[: self.MAX_DETAIL_LINES] + ["(%d more lines)" % cut]
            self.note(*lines)
            return False

    def ok(self, desc):
        return self.check(True, desc)

    def fail(self, desc, details=()):
        return self.check(False, desc, details)

    def skip(self, desc, reason):
        """A check that cannot run here for a reason that is no gap in
        the machine (an external PostgreSQL the test must not restart).
        tests/run counts it apart, neither passed nor failed."""
        with self._lock:
            self.n += 1
            print("ok %d - %s # SKIP %s" % (self.n, self._one_line(desc),
                                             self._one_line(reason)), flush=True)

    def tool(self, name, desc):
        """The path of a program deploy/deps test installs; None, and a
        failed check desc, when it is missing: that is a gap in the
        machine the tests must not hide by skipping."""
        path = shutil.which(name)
        if path is None:
            self.fail(desc, "%s not found; deploy/deps test installs it" % name)
        return path

    def root(self, desc):
        """True when we are root.  Otherwise a check that needs root
        cannot run: skipped on a developer's machine, failed under CI
        (CI set, as CI runs as root), where it must never go missing."""
        if os.geteuid() == 0:
            return True
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            self.fail(desc, "needs root, and CI runs as root")
        else:
            self.skip(desc, "not root")
        return False

    def problems(self, desc, problems):
        """A check from a list of TFB verifier problems (level, reason,
        url): it passes only when none is a fail or a warn, because a
        WARN counts as a failure for this project."""
        bad = [p for p in problems if p[0] in ("fail", "warn")]
        details = ["%s: %s (%s)" % (p[0].upper(), p[1], p[2]) for p in bad]
        return self.check(not bad, desc, details)

    def exit_code(self):
        return 1 if self.failed else 0


# Both derive from BaseException, like KeyboardInterrupt, so that no
# "except Exception" on the way swallows them.
class TestTimeout(BaseException):
    """Raised by the deadline alarm of lib.main."""


class Terminated(BaseException):
    """Raised by SIGTERM / SIGHUP so that finally blocks still run."""


def _on_alarm(signum, frame):
    raise TestTimeout("test file exceeded its deadline")


def _on_term(signum, frame):
    raise Terminated("signal %d" % signum)


def main(body, deadline=600):
    """Run body(tap) with a deadline (seconds), report anything that
    escapes it as a failed check, and exit with the TAP verdict."""
    tap = TAP()
    # Ctrl-C must raise KeyboardInterrupt even when our parent started us
    # with SIGINT ignored (a background job of a script).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGHUP, _on_term)
    signal.alarm(deadline)
    try:
        body(tap)
    except KeyboardInterrupt:
        tap.fail("interrupted (Ctrl-C)")
    except (TestTimeout, Terminated) as e:
        tap.fail("test aborted: %s" % e)
    except Exception as e:
        tap.fail("test raised %s: %s" % (type(e).__name__, e),
                 traceback.format_exc())
    finally:
        signal.alarm(0)
    sys.exit(tap.exit_code())


def preflight(tap, paths=None):
    """One check that the programs a test needs exist (by default the app
    binary and the stack script); False (and a failed check) when they do
    not, so the caller can stop."""
    paths = paths or (APP_BIN, STACK)
    missing = [str(p) for p in paths if not p.exists()]
    return tap.check(not missing, "%s exist" % " and ".join(p.name for p in paths),
                     ["missing: " + ", ".join(missing),
                      "run `make` first; deploy/stack is the stack script"])


# --------------------------------------------------------------------------
# Ports

_taken_ports = set()


def port_is_free(port):
    """True when nothing listens on 127.0.0.1:port and we may bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) != 0


def free_port():
    """A port in PORT_RANGE that nothing uses and that this process has
    not handed out yet; an ephemeral port when the range is exhausted."""
    m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", PORT_RANGE)
    if m:
        lo, hi = int(m.group(1)), int(m.group(2))
        ports = list(range(lo, hi + 1))
        # Start at a place of our own, so that test files run side by side
        # seldom race for the same port.
        k = os.getpid() % len(ports) if ports else 0
        for port in ports[k:] + ports[:k]:
            if port not in _taken_ports and port_is_free(port):
                _taken_ports.add(port)
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _taken_ports.add(port)
    return port


# --------------------------------------------------------------------------
# HTTP

class Headers:
    """Case-insensitive response headers.  A repeated header is joined
    with ", " (what requests does); .items() keeps the original order."""

    def __init__(self, pairs=()):
        self._items = list(pairs)
        self._map = {}
        for k, v in self._items:
            key = k.lower()
            self._map[key] = v if key not in self._map else self._map[key] + ", " + v

    def get(self, name, default=None):
        return self._map.get(name.lower(), default)

    def __contains__(self, name):
        return name.lower() in self._map

    def __getitem__(self, name):
        return self._map[name.lower()]

    def items(self):
        return list(self._items)

    def __repr__(self):
        return "Headers(%r)" % self._items


class Response:
    __slots__ = ("status", "headers", "body", "elapsed")

    def __init__(self, status, headers, body, elapsed=0.0):
        self.status = status
        self.headers = headers
        self.body = body
        self.elapsed = elapsed

    def __iter__(self):  # status, headers, body = get(...)
        return iter((self.status, self.headers, self.body))

    def summary(self, limit=300):
        """One line for diagnostics: status, content type, body start."""
        body = self.body[:limit]
        more = "..." if len(self.body) > limit else ""
        return "HTTP %s, Content-Type %r, %d body bytes: %r%s" % (
            self.status, self.headers.get("Content-Type"), len(self.body),
            body, more)


# What requests 2.x sends, so that the server sees the verifier's request.
DEFAULT_HEADERS = {
    "User-Agent": "python-requests/2.31.0",
    "Accept-Encoding": "gzip, deflate",
    "Accept": "*/*",
    "Connection": "keep-alive",
}


def _decode(body, encoding):
    encoding = (encoding or "").lower().strip()
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        try:
            return zlib.decompress(body)
        except zlib.error:
            return zlib.decompress(body, -zlib.MAX_WBITS)
    return body


def request(method, url, headers=None, body=None, timeout=15):
    """One request on a fresh connection.  Returns a Response whose body
    is decoded from gzip/deflate like requests would.  Raises OSError /
    http.client.HTTPException (socket.timeout on a timeout)."""
    parts = urllib.parse.urlsplit(url)
    target = parts.path or "/"
    if parts.query or url.endswith("?"):
        target += "?" + parts.query
    hdrs = dict(DEFAULT_HEADERS)
    hdrs.update(headers or {})
    t0 = time.monotonic()
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80,
                                      timeout=timeout)
    try:
        conn.request(method, target, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        h = Headers(resp.getheaders())
        return Response(resp.status, h, _decode(data, h.get("Content-Encoding")),
                        time.monotonic() - t0)
    finally:
        conn.close()


def get(url, accept=None, timeout=15):
    return request("GET", url, {"Accept": accept} if accept else None,
                   timeout=timeout)


def try_get(url, accept=None, timeout=15):
    """get(), but a connection error or timeout comes back as a Response
    with status None and the error text as its body."""
    try:
        return get(url, accept, timeout)
    except (OSError, http.client.HTTPException) as e:
        return Response(None, Headers(), ("%s: %s" % (type(e).__name__, e)).encode())


def read_response(fp, method="GET"):
    """Read one HTTP/1.x response from a binary file object (so that
    pipelined responses can be read one after the other).  Returns a
    Response; raises ValueError on a malformed one, EOFError on EOF."""
    line = fp.readline(65537)
    if not line:
        raise EOFError("connection closed before a status line")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", line)
    if not m:
        raise ValueError("bad status line %r" % line)
    status = int(m.group(1))
    pairs = []
    while True:
        line = fp.readline(65537)
        if not line:
            raise EOFError("connection closed inside the headers")
        if line in (b"\r\n", b"\n"):
            break
        k, _, v = line.decode("latin-1").partition(":")
        pairs.append((k.strip(), v.strip()))
    h = Headers(pairs)
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return Response(status, h, b"")
    if "chunked" in (h.get("Transfer-Encoding") or "").lower():
        body = b""
        while True:
            size = int(fp.readline(1024).split(b";")[0].strip(), 16)
            if size == 0:
                while fp.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                break
            body += fp.read(size)
            fp.readline(3)
        return Response(status, h, body)
    if h.get("Content-Length") is not None:
        return Response(status, h, fp.read(int(h.get("Content-Length"))))
    return Response(status, h, fp.read())


def raw_exchange(port, data, timeout=10, host="127.0.0.1"):
    """Send raw bytes, read until the server closes (or timeout); return
    all bytes received.  For what http.client hides: HEAD bodies."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def pipelined(port, paths, timeout=10, host="127.0.0.1"):
    """Send GETs for all paths at once on one connection, then read the
    responses in order.  Returns a list of Responses (may be shorter
    than paths when the server closes early)."""
    req = b"".join(
        ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: */*\r\n\r\n" % (p, host, port)).encode()
        for p in paths)
    out = []
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(req)
        fp = s.makefile("rb")
        for _ in paths:
            try:
                out.append(read_response(fp))
            except (EOFError, ValueError, OSError):
                break
    return out


# --------------------------------------------------------------------------
# Processes

def run(argv, timeout, env=None, cwd=None):
    """subprocess.run with a timeout, stdout and stderr merged into
    .stdout (text).  A timeout returns returncode None, never raises."""
    try:
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                              timeout=timeout, text=True, errors="replace")
    except subprocess.TimeoutExpired as e:
        out = e.stdout or ""
        if isinstance(out, bytes):
            out = out.decode(errors="replace")
        return subprocess.CompletedProcess(argv, None, out + "\n(timed out after %ss)" % timeout)


def tail(text, n=30):
    lines = (text or "").rstrip().splitlines()
    return lines[-n:]


def proc_exe(pid):
    try:
        return os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return ""


def alive(pid):
    """True while pid runs; a zombie counts as gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def proc_ppid(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def proc_environ(pid):
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def descendants(root):
    children = {}
    for pid in all_pids():
        children.setdefault(proc_ppid(pid), []).append(pid)
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def is_app(pid):
    return os.path.basename(proc_exe(pid).replace(" (deleted)", "")) == "tfb-fcgi"


class StackError(Exception):
    pass


class Stack:
    """deploy/stack with its own VAR, PORT, SERVER and WORKERS.

    As a context manager it starts everything on entry and always stops
    it on exit, printing the ends of its logs when a check failed, and
    removes VAR unless TFB_TEST_KEEP is set.  Every call has a timeout."""

    START_TIMEOUT = 240
    STOP_TIMEOUT = 90

    def __init__(self, server="nginx", workers=4, port=None, fcgi=None,
                 tap=None, name="t", extra_env=None):
        self.server = server
        self.workers = int(workers)
        self.port = port or free_port()
        self.fcgi = fcgi
        self.fcgi_port = None
        self.tap = tap
        self.var = tempfile.mkdtemp(prefix="tfb-test-%s-" % name, dir="/tmp")
        self.extra_env = dict(extra_env or {})
        self.started = False

    # -- environment and raw commands

    def env(self):
        e = dict(os.environ)
        e.update(VAR=self.var, PORT=str(self.port), SERVER=self.server,
                 WORKERS=str(self.workers))
        if self.fcgi:
            e["FCGI"] = self.fcgi
            if self.fcgi == "tcp":
                if self.fcgi_port is None:
                    self.fcgi_port = free_port()
                e["FCGI_PORT"] = str(self.fcgi_port)
        e.update(self.extra_env)
        return e

    def run(self, *args, timeout=60):
        """deploy/stack ARGS...; a CompletedProcess (returncode None on a
        timeout), output merged."""
        return run([str(STACK)] + list(args), timeout, env=self.env(), cwd=str(REPO))

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    # -- lifecycle

    def start(self):
        r = self.run("start", timeout=self.START_TIMEOUT)
        self.started = True  # even half-started: stop must run
        if r.returncode != 0:
            raise StackError("deploy/stack start (SERVER=%s WORKERS=%d PORT=%d) "
                             "exited %s:\n%s" % (self.server, self.workers, self.port,
                                                 r.returncode, "\n".join(tail(r.stdout))))
        return r

    def stop(self):
        r = self.run("stop", timeout=self.STOP_TIMEOUT)
        if r.returncode != 0 and self.tap:
            self.tap.note("deploy/stack stop exited %s:" % r.returncode, *tail(r.stdout, 15))
        self.started = False
        return r

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self._cleanup()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        failed = exc_type is not None or (self.tap is not None and self.tap.failed)
        if failed and self.tap:
            self.dump_logs()
        self._cleanup()
        return False

    def _cleanup(self):
        # A second Ctrl-C must not skip the stop: ignore SIGINT meanwhile.
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self.stop()
        finally:
            signal.signal(signal.SIGINT, old)
        if os.environ.get("TFB_TEST_KEEP"):
            if self.tap:
                self.tap.note("kept VAR=%s for inspection" % self.var)
            return
        # As root the stack may have replaced our VAR by a symlink to a
        # directory of its own (/var/tmp/tfb-fcgi-<hash>): remove both.
        if os.path.islink(self.var):
            real = os.path.realpath(self.var)
            if real.startswith("/var/tmp/tfb-fcgi-"):
                shutil.rmtree(real, ignore_errors=True)
            os.unlink(self.var)
        else:
            shutil.rmtree(self.var, ignore_errors=True)

    def dump_logs(self, lines=15):
        """Print the ends of the stack's log files as comments."""
        if not self.tap:
            return
        for root in self.var_dirs():
            for p in sorted(Path(root).rglob("*.log"))[:12]:
                try:
                    text = p.read_text(errors="replace")
                except OSError:
                    continue
                if text.strip():
                    self.tap.note("--- %s (last %d lines)" % (p, lines), *tail(text, lines))

    def var_dirs(self):
        """VAR and, when the stack relocated it, where it went (a symlink
        VAR, or the directory of PGHOST from `deploy/stack env`)."""
        dirs = [self.var]
        real = os.path.realpath(self.var)
        if real != self.var:
            dirs.append(real)
        for p in Path(self.var).iterdir() if os.path.isdir(self.var) else []:
            if p.is_symlink() and p.is_dir():
                dirs.append(os.path.realpath(p))
        return dirs

    # -- PostgreSQL

    def pg_env(self):
        """The PG* variables `deploy/stack env` prints, as a dict."""
        r = self.run("env", timeout=30)
        out = {}
        for m in re.finditer(r"(PG[A-Z]+)=('([^']*)'|\"([^\"]*)\"|(\S+))", r.stdout or ""):
            out[m.group(1)] = next(g for g in m.groups()[2:] if g is not None)
        return out

    def psql(self, sql, timeout=60):
        """Run one SQL command; return its unaligned, tuples-only output
        (fields separated by "|").  Raises StackError on failure."""
        r = self.run("psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql,
                     timeout=timeout)
        if r.returncode != 0:
            raise StackError("psql %r exited %s: %s" % (sql[:80], r.returncode,
                                                       " | ".join(tail(r.stdout, 5))))
        return r.stdout.strip()

    def app_connections(self):
        return int(self.psql("SELECT count(*) FROM pg_stat_activity "
                             "WHERE application_name = '%s'" % APP_NAME))

    # -- the pool

    def pool_pid_files(self):
        out = []
        for d in self.var_dirs():
            for name in ("spawn.pid", "pool.pid"):
                p = Path(d) / "run" / name
                if p.exists():
                    out.append(p)
        return out

    def worker_pids(self):
        """The pids of this stack's tfb-fcgi processes: the tfb-fcgi
        descendants of the pool's pid file when there is one, else every
        tfb-fcgi process whose environment names our VAR or PORT."""
        for pf in self.pool_pid_files():
            # One supervisor pid, or one worker pid per line: take every
            # tfb-fcgi process among them and their descendants.
            try:
                roots = [int(w) for w in pf.read_text().split() if w.isdigit()]
            except OSError:
                continue
            pids = set()
            for root in roots:
                pids.update(p for p in [root] + descendants(root) if is_app(p))
            if pids:
                return sorted(pids)
        marks = {("VAR=" + d).encode() for d in self.var_dirs()}
        marks.add(("PORT=%d" % self.port).encode())
        pids = [p for p in all_pids() if is_app(p) and marks & set(proc_environ(p))]
        return sorted(pids)
