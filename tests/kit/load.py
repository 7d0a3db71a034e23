"""load: wrk, the one load generator of the tests and the bench.

    w = load.Wrk(url, seconds=5, connections=16)          # in the background
    r = w.result()                                         # waits, then reads
    r["requests"], r["rps"], r["failures"], r["p50_us"], r["summary"]

    r = load.Wrk(url, 3, paths=["/db", "/json"]).result()  # rotating, every answer seen
    r["answers"]  # {(200, "application/json"): [count, longest body]}

wrk runs one of the two scripts in tests/kit/wrk/: stats.lua by default
(one request made once, sent as fast as wrk can; the exact latency
histogram), answers.lua when paths are given (the requests rotate over
them and every answer's status, type and length is counted, at some cost
in wrk's own speed).  Both end with the WRK_JSON line read here.  wrk
runs in a session of its own, reaped with its CPU time (cpu_ticks), and
is killed if it outlives its run by 30 s.
"""

import json
import re
from pathlib import Path

from .cmd import Job, tail

SCRIPTS = Path(__file__).resolve().parent / "wrk"
ERRORS = ("connect", "read", "write", "timeout")


class Wrk:
    """wrk -t threads -c connections -d seconds on url, started at once.
    timeout: seconds after which wrk counts a request as timed out (a
    hang); headers: extra request headers; close: one request per
    connection (what a client without keep-alive does)."""

    def __init__(self, url, seconds, connections=16, threads=1, timeout=5, paths=None,
                 headers=(), close=False):
        self.seconds, self.timeout, self.connections = seconds, timeout, connections
        argv = ["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % seconds,
                "--timeout", "%ds" % timeout,
                "-s", SCRIPTS / ("answers.lua" if paths else "stats.lua")]
        for h in list(headers) + (["Connection: close"] if close else []):
            argv += ["-H", h]
        argv.append(url)
        if paths:
            argv += ["--"] + list(paths)
        self.job = Job(argv)
        self.pid = self.job.pid
        self._result = None

    def result(self):
        """What wrk measured (parse()), once it has ended."""
        if self._result is None:
            rc, out, ticks = self.job.wait(self.seconds + self.timeout + 30)
            self._result = parse(out, rc)
            self._result["cpu_ticks"] = ticks
        return self._result

    def kill(self):
        self.job.kill()


def parse(out, rc):
    """wrk's output as a dict: out, rc, parsed (the WRK_JSON line was
    there), WRK_JSON's fields (requests, duration_us, err_connect, err_read,
    err_write, err_timeout, err_status: the answers >= 400, p50_us, p90_us,
    p99_us, max_us, mean_us), and from them rps, socket_errors, drops
    (clean connection errors: connect, read, write), non2xx, failures
    (non2xx + socket errors); answers from answers.lua; summary."""
    r = {"out": out, "rc": rc, "parsed": False, "answers": {}, "requests": 0,
         "duration_us": 0}
    r.update(("err_" + e, 0) for e in ERRORS + ("status",))
    for m in re.finditer(r"^answer (\d+) (\S+) (\d+) (\d+)$", out, re.M):
        r["answers"][(int(m.group(1)), m.group(2))] = [int(m.group(3)), int(m.group(4))]
    m = re.search(r"^WRK_JSON (\{.*\})$", out, re.M)
    if m:
        r.update(json.loads(m.group(1)))
        r["parsed"] = True
    secs = r["duration_us"] / 1e6
    r["rps"] = r["requests"] / secs if secs > 0 else 0.0
    r["socket_errors"] = sum(r["err_" + e] for e in ERRORS)
    r["drops"] = r["socket_errors"] - r["err_timeout"]
    r["non2xx"] = r["err_status"]
    r["failures"] = r["non2xx"] + r["socket_errors"]
    r["summary"] = "%d requests, %d non-2xx, %d socket errors%s" % (
        r["requests"], r["non2xx"], r["socket_errors"],
        "" if r["parsed"] and rc == 0 else " (wrk exited %s: %s)" % (
            rc, " | ".join(tail(out, 3))))
    return r


def count(res, status):
    """How many answers had status (answers.lua's counts)."""
    return sum(n for (s, _), (n, _) in res["answers"].items() if s == status)


def answers_summary(res):
    """"200 text/plain: 1234, 503 text/plain: 56 (<= 21 B); drops 0 ...":
    what answers.lua counted, in one line."""
    parts = ["%d %s: %d" % (s, t, n) + ("" if s == 200 else " (<= %d B)" % longest)
             for (s, t), (n, longest) in sorted(res["answers"].items())]
    lat = "max %.0f ms" % (res["max_us"] / 1000.0) if res.get("max_us") is not None \
        else "no latency"
    return "%s; drops %d (connect %d, read %d, write %d); timeouts %d; %s" % (
        ", ".join(parts) or "no answer", res["drops"], res["err_connect"], res["err_read"],
        res["err_write"], res["err_timeout"], lat)
