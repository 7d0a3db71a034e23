"""test_status.py: the pool's status page, behind nginx and behind lighttpd.

With the stack up (WORKERS=2, the shipped front server configuration):
  * /status answers with php-fpm's fields; ?json, ?full, ?prometheus,
    ?openmetrics and a scraper's Accept give the other formats; the
    Prometheus page passes promtext.check (promtool's parser and lint
    rules, promtext.py), which is itself shown to refuse known-bad pages
    first, and both it and the OpenMetrics page pass Debian's
    prometheus_client parsers (promparse.py), with a request-duration
    histogram per route and per-worker series labelled by slot; ?xml and
    any other word are answered 400 with the list of formats;
  * the counters add up: N requests sent are N more requests, by status
    class, and N more "accepted conn" (php-fpm's meaning: requests, not
    the FastCGI connections, which have a field of their own); the pool's
    totals are the sum of its workers'; each worker's last request's
    phases add up to its total, which is timed apart; each worker says
    its database is up, since when, after how many attempts;
  * ?html in headless Chromium: the DOM once its script ran (it refreshed
    the page at least once) has a row per worker with the pids and
    requests the JSON page gives, the routes, the rates; a screenshot is
    kept (its path printed);
  * with every worker stuck in the database (the World table locked),
    /status still answers at once, and shows each worker in its database
    phase; so does `tfb-spawn status`; the requests then all complete;
  * `tfb-spawn status --watch` repeats the compact view, with the
    requests and errors per second; a killed status process is started
    again by the supervisor;
  * as root: from an address that is not loopback (a network namespace
    joined by a veth pair), /status is refused (403) while /plaintext is
    served.
"""

import concurrent.futures
import json
import os
import re
import shutil
import signal
import subprocess
import time

from ..kit import APP_BIN, BUILD, SPAWN_BIN as SPAWN, STACK, browser, proc, promparse, \
    promtext, stack, web
from ..kit.cmd import run, tail
from ..kit.pg import WorldLock
from ..kit.tap import main

WORKERS = 2
FIELDS = ["pool", "process manager", "start time", "start since", "accepted conn",
          "listen queue", "max listen queue", "listen queue len", "idle processes",
          "active processes", "total processes", "max active processes",
          "max children reached", "slow requests"]
PHASES = ["reading", "database", "rendering", "writing"]


def status(st, query="", accept=None):
    """GET /status?query; the Response's body as text."""
    r = web.try_get(st.url("/status" + ("?" + query if query else "")),
                    accept=accept, timeout=10)
    r.body = r.body.decode(errors="replace")
    return r


def status_json(st, query="json"):
    r = status(st, query)
    try:
        return json.loads(r.body) if r.status == 200 else None
    except ValueError:
        return None


def sock(st):
    return os.path.join(st.var, "run", "status.sock")


def check_formats(tap, st, label):
    r = status(st)
    missing = [f for f in FIELDS if not re.search(r"^%s: +\S" % re.escape(f), r.body, re.M)]
    tap.check(r.status == 200 and r.headers.get("Content-Type", "").startswith("text/plain")
              and not missing, "%s: GET /status -> 200 text/plain, php-fpm's fields" % label,
              [r.summary(400), "missing: %s" % missing])
    tap.check(all(re.search(r"^%s seconds: +[\d.]+$" % p, r.body, re.M) for p in PHASES),
              "%s: /status: the time spent in each phase" % label, r.summary(400))
    j = status_json(st)
    tap.check(j is not None and all(f in j for f in FIELDS) and
              set(j.get("phase seconds", {})) == set(PHASES),
              "%s: /status?json: the same fields, the phases" % label, str(j)[:400])
    full = status_json(st, "json&full")
    procs = (full or {}).get("processes", [])
    tap.check(len(procs) == WORKERS and all(
        {"pid", "state", "requests", "rss kb", "last request us"} <= set(p) for p in procs),
        "%s: /status?json&full: a record per worker" % label, str(full)[:400])
    r = status(st, "full")
    tap.check(r.status == 200 and len(re.findall(r"^pid: +\d+$", r.body, re.M)) == WORKERS,
              "%s: /status?full: a block per worker" % label, r.summary(400))
    for how, r in (("?prometheus", status(st, "prometheus&full")),
                   ("Accept: text/plain;version=0.0.4",
                    status(st, accept="text/plain;version=0.0.4"))):
        problems = promtext.check(r.body) if r.status == 200 else ["status %s" % r.status]
        tap.check(r.status == 200 and "version=0.0.4" in r.headers.get("Content-Type", "")
                  and not problems and "tfb_pool_requests_total{" in r.body,
                  "%s: %s: Prometheus' text format, clean by promtool's rules"
                  % (label, how), problems[:8] + [r.summary(300)])
    check_parsers(tap, st, label)
    r = web.try_get(st.url("/ping"), timeout=10)
    tap.check(r.status == 200 and r.body.decode().startswith("ok: %d of %d workers can serve"
                                                             % (WORKERS, WORKERS)),
              "%s: GET /ping -> 200, the health line" % label, r.summary(200))
    r = status(st, "xml")
    tap.check(r.status == 400 and "json, html, prometheus, openmetrics" in r.body,
              "%s: /status?xml -> 400, naming the formats it knows (no text page "
              "instead)" % label, r.summary(300))


def check_parsers(tap, st, label):
    """The metrics through a real parser, both formats."""
    send(st, "/db", 8)
    send(st, "/json", 4)
    for how, query, accept, fmt, ctype in (
            ("?prometheus&full", "prometheus&full", None, "prometheus", "version=0.0.4"),
            ("?openmetrics&full", "openmetrics&full", None, "openmetrics",
             "application/openmetrics-text"),
            ("Prometheus' own Accept", "full",
             "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
             "openmetrics", "application/openmetrics-text")):
        r = status(st, query, accept=accept)
        fams, err = promparse.parse(r.body, fmt) if r.status == 200 else (None, r.summary())
        tap.check(r.status == 200 and ctype in r.headers.get("Content-Type", "") and
                  fams is not None and not err,
                  "%s: %s: %s parses with prometheus_client's %s parser" % (
                      label, how, fmt, fmt), [str(err)[:300], r.summary(300)])
        if not fams:
            continue
        hist = fams.get("tfb_request_duration_seconds", {})
        db = promparse.samples(fams, "tfb_request_duration_seconds", route="/db")
        count = [x[2] for x in db if x[0].endswith("_count")]
        inf = [x[2] for x in db if x[1].get("le") == "+Inf"]
        tap.check(hist.get("type") == "histogram" and count and count == inf and
                  count[0] >= 8 and
                  len([x for x in db if x[0].endswith("_bucket")]) == 18 and
                  promparse.samples(fams, "tfb_phase_duration_seconds", phase="database"),
                  "%s: %s: a request-duration histogram per route (/db: %s requests in 18 "
                  "buckets), one per phase" % (label, how, count[0] if count else "no"),
                  str(hist)[:400])
        workers = promparse.samples(fams, "tfb_worker_requests")
        tap.check(len(workers) == WORKERS and all("slot" in x[1] and "pid" not in x[1]
                                                  for x in workers) and
                  len(promparse.samples(fams, "tfb_worker_database_up")) == WORKERS,
                  "%s: %s: per worker, labelled by slot (not pid): requests, database up"
                  % (label, how), str(workers)[:300])


def send(st, path, n):
    """n GETs of path, 8 at a time."""
    return [r for k in range(0, n, 8) for r in web.batch(st.url(path), min(8, n - k))]


def check_counters(tap, st, label):
    before = status_json(st)
    rs = send(st, "/db", 30) + send(st, "/plaintext", 20) + send(st, "/no-such-route", 10)
    after = status_json(st, "json&full")
    codes = sorted({r.status for r in rs}, key=str)
    if not (before and after):
        tap.fail("%s: /status?json before and after 60 requests" % label)
        return
    d = {k: after[k] - before[k] for k in ("requests", "accepted conn")}
    d2 = {k: after["responses"][k] - before["responses"][k] for k in after["responses"]}
    tap.check(codes == [200, 404] and d["requests"] == 60 and d2["2xx"] == 50 and
              d2["4xx"] == 10 and d2["5xx"] == 0,
              "%s: 60 requests (50 answered 200, 10 404) are counted as such" % label,
              "statuses %s; requests +%d; responses %s" % (codes, d["requests"], d2))
    tap.check(d["accepted conn"] == 60 and "fastcgi connections" in after and
              after["fastcgi connections"] <= after["accepted conn"],
              "%s: accepted conn: +60, the requests (php-fpm's meaning); the FastCGI "
              "connections apart (%s)" % (label, after.get("fastcgi connections")),
              "accepted conn +%s" % d["accepted conn"])
    since = [p.get("db since") for p in after.get("processes", [])]
    tap.check(all(p.get("db state") == "up" and p.get("db attempts", 0) >= 1 and
                  isinstance(p.get("db since"), int) and p.get("db last error") == ""
                  for p in after.get("processes", [])) and
              after.get("database") == {"up": WORKERS, "down": 0, "none": 0},
              "%s: each worker's database: up, since %s, after its attempts" % (label, since),
              str(after.get("processes"))[:500])
    dbt = after["phase seconds"]["database"] - before["phase seconds"]["database"]
    tap.check(dbt > 0, "%s: the database phase grew (%.6f s)" % (label, dbt))
    procs = after.get("processes", [])
    tap.check(sum(p["requests"] for p in procs) == after["requests"] and
              sum(p["db reconnects"] for p in procs) == after["db reconnects"] and
              all(sum(p["responses"][c] for p in procs) == after["responses"][c]
                  for c in after["responses"]) and
              after["idle processes"] + after["active processes"] == after["total processes"]
              == WORKERS,
              "%s: the pool's counts are the sum of its workers'" % label, str(after)[:600])
    bad = []
    served = [p for p in procs if p["requests"] > 0]
    for p in served:
        ph = sum(p["last request us"].values())
        total = p["request duration"]
        if p["state"] != "Idle" or not (total - len(PHASES) <= ph <= total) or total <= 0:
            bad.append("pid %s %s: phases %s sum %d, total %d"
                       % (p["pid"], p["state"], p["last request us"], ph, total))
    tap.check(served and not bad, "%s: each worker's last request (%d of %d served): its "
              "phases add up to its total, timed apart (to a microsecond per phase)"
              % (label, len(served), len(procs)), bad)


def check_busy(tap, st, label):
    """Every worker in the database, held there by a lock: /status must
    not need one of them."""
    with WorldLock([STACK, "psql"], st.env(), st.psql, 4) as lock:
        ex = concurrent.futures.ThreadPoolExecutor(3 * WORKERS)
        futs = [ex.submit(web.try_get, st.url("/db"), timeout=20) for _ in range(3 * WORKERS)]
        j, t0 = None, time.monotonic()
        while time.monotonic() - t0 < 3:
            j = status_json(st, "json&full")
            if j and j["active processes"] == WORKERS:
                break
            time.sleep(0.1)
        t1 = time.monotonic()
        r = status(st, "full")
        took = time.monotonic() - t1
        states = re.findall(r"^state: +(\w+)$", r.body, re.M)
        tap.check(lock.held and r.status == 200 and took < 1.0 and
                  states == ["Database"] * WORKERS and
                  re.search(r"^active processes: +%d$" % WORKERS, r.body, re.M),
                  "%s: every worker stuck in the database: /status answers in %.3f s, "
                  "each worker in its database phase" % (label, took),
                  ["lock held: %s" % lock.held, r.summary(600)])
        c = run([str(SPAWN), "status", sock(st)], 5)
        tap.check(c.returncode == 0 and re.search(r"^active processes: +%d$" % WORKERS,
                                                  c.stdout, re.M),
                  "%s: and tfb-spawn status says so too" % label, tail(c.stdout, 8))
        rs = [f.result() for f in futs]
        ex.shutdown()
        tap.check(all(x.status == 200 for x in rs),
                  "%s: once the lock is gone, the %d requests held are answered 200"
                  % (label, len(rs)), [x.summary(120) for x in rs if x.status != 200][:4])


def check_command(tap, st, label):
    p = subprocess.Popen([str(SPAWN), "status", "--watch=0.2", sock(st)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(1.1)
    p.send_signal(signal.SIGTERM)
    out = p.communicate(timeout=5)[0]
    n = len(re.findall(r"^pool ", out, re.M))
    tap.check(4 <= n <= 7, "%s: tfb-spawn status --watch=0.2: the compact view every "
              "0.2 s (%d in 1.1 s)" % (label, n), tail(out, 5))
    rates = re.findall(r"^req/s ([\d.]+) +err/s ([\d.]+) ", out, re.M)
    tap.check(rates and all(len(ln) <= 80 for ln in out.splitlines()) and
              len(re.findall(r"^ +\d+ +\d+ (idle|read|busy|db|app|write) ", out, re.M)) >= n,
              "%s: --watch shows requests/s and errors/s (%s), a worker a line (two "
              "to a line past one), 80 columns" % (label, rates[-1] if rates else None),
              tail(out, 12))
    c = run([str(SPAWN), "status", sock(st), "prometheus"], 5)
    tap.check(c.returncode == 0 and not promtext.check(c.stdout),
              "%s: tfb-spawn status SOCKET prometheus: the same page" % label,
              tail(c.stdout, 5))
    pid = [q for q in proc.descendants(st.pool_pids()[0])
           if proc.alive(q) and not stack.is_app(q)] if st.pool_pids() else []
    if len(pid) != 1:
        tap.fail("%s: the status process, a child of tfb-spawn" % label, str(pid))
        return
    os.kill(pid[0], signal.SIGKILL)
    t0 = time.monotonic()
    r = None
    while time.monotonic() - t0 < 5:
        r = status(st)
        if r.status == 200:
            break
        time.sleep(0.2)
    tap.check(r is not None and r.status == 200,
              "%s: the status process killed: started again, /status answers within "
              "%.1f s" % (label, time.monotonic() - t0))


def check_html(tap, st, label):
    """?html in a real browser: the DOM once its script ran."""
    chromium = tap.tool("chromium", "%s: chromium, for the HTML page" % label)
    if chromium is None:
        return
    send(st, "/db", 5)
    send(st, "/plaintext", 5)
    before = status_json(st, "json&full")
    dom = browser.dump_dom(st.url("/status?html"), st.var, budget_ms=3000)
    after = status_json(st, "json&full")
    if not tap.check(dom is not None and before and after,
                     "%s: /status?html loaded in headless Chromium" % label,
                     "see %s/chromium.log" % st.var):
        return
    live = re.search(r'id="live">([^<]*)<', dom)
    tap.check(live and re.match(r"live: updated \d+ times", live.group(1)),
              "%s: its script ran and refreshed the page (%s)"
              % (label, live.group(1) if live else "no #live"), dom[-400:])
    rows = re.findall(r'<tr class="worker" data-slot="(\d+)" data-pid="(\d+)">.*?'
                      r'<td class="state l">(\w+)</td>.*?<td class="requests">(\d+)</td>'
                      r'<td class="db l (\w+)">', dom)
    pids = sorted(int(r[1]) for r in rows)
    want = sorted(p["pid"] for p in after["processes"])
    reqs = sum(int(r[3]) for r in rows)
    tap.check(len(rows) == WORKERS and pids == want and
              all(r[2] in ("Idle", "Reading") and r[4] == "up" for r in rows) and
              sum(p["requests"] for p in before["processes"]) <= reqs <=
              sum(p["requests"] for p in after["processes"]),
              "%s: a row per worker: the pids, states, database and requests the JSON "
              "page gives (%d requests)" % (label, reqs), [str(rows), str(want)])
    total = re.search(r'<td id="requests">(\d+)</td>', dom)
    routes = re.findall(r'<tr class="route"><td class="l">([^<]+)</td><td>(\d+)</td>', dom)
    tap.check(total and before["requests"] <= int(total.group(1)) <= after["requests"] and
              dict(routes).get("/db") and dict(routes).get("/plaintext"),
              "%s: the pool's requests (%s), the routes with their counts (%s)"
              % (label, total.group(1) if total else None, routes), dom[:600])
    png = os.path.join(str(BUILD), "test-output", "status-html-%s.png" % label)
    os.makedirs(os.path.dirname(png), exist_ok=True)
    ok = browser.screenshot(st.url("/status?html"), png, st.var)
    tap.check(ok, "%s: a screenshot of the page: %s" % (label, png))


def netns_client(tap, st, label):
    """From a network namespace joined by a veth pair: GET /plaintext
    and /status through the host side's address."""
    ip = shutil.which("ip")
    if ip is None:
        tap.tool("ip", "%s: ip (iproute2), for a client off loopback" % label)
        return
    tag = "%x" % (os.getpid() & 0xffff)
    host, peer = "tfbh" + tag, "tfbp" + tag
    net = "10.%d.%d." % (200 + os.getpid() % 50, os.getpid() // 50 % 250)
    ns = subprocess.Popen(["unshare", "--net", "sleep", "60"])
    try:
        time.sleep(0.2)
        steps = [[ip, "link", "add", host, "type", "veth", "peer", "name", peer,
                  "netns", str(ns.pid)],
                 [ip, "addr", "add", net + "1/30", "dev", host],
                 [ip, "link", "set", host, "up"],
                 ["nsenter", "-t", str(ns.pid), "-n", ip, "addr", "add", net + "2/30",
                  "dev", peer],
                 ["nsenter", "-t", str(ns.pid), "-n", ip, "link", "set", peer, "up"]]
        for s in steps:
            c = run(s, 10)
            if c.returncode != 0:
                tap.fail("%s: a veth pair into a network namespace" % label,
                         [" ".join(s)] + tail(c.stdout, 3))
                return

        def fetch(path):
            c = run(["nsenter", "-t", str(ns.pid), "-n", "curl", "-s", "-o",
                         "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                         "http://%s1:%d%s" % (net, st.port, path)], 10)
            return c.stdout.strip()

        plain, stat = fetch("/plaintext"), fetch("/status")
        tap.check(plain == "200" and stat == "403",
                  "%s: from %s2, not loopback: /plaintext -> 200, /status -> 403 "
                  "(%s, %s)" % (label, net, plain, stat))
    finally:
        run([ip or "ip", "link", "del", host], 10)
        ns.kill()
        ns.wait()


def one_server(tap, server):
    label = server
    # As root the front server listens on every address, for the client
    # in the namespace: for the seconds this stack lives, on a test port.
    env = {"LISTEN_ADDR": "0.0.0.0"} if os.geteuid() == 0 else {}
    with stack.started(tap, server=server, workers=WORKERS, name="status-" + server,
                       env=env) as st:
        if not st:
            return
        check_formats(tap, st, label)
        check_counters(tap, st, label)
        check_html(tap, st, label)
        check_busy(tap, st, label)
        check_command(tap, st, label)
        if tap.root("%s: /status refused from off loopback" % label):
            netns_client(tap, st, label)


def body(tap):
    tap.need([APP_BIN, SPAWN, STACK])
    tap.check(promparse.available(), "/usr/bin/python3 has prometheus_client's parsers",
              "deploy/deps test installs python3-prometheus-client")
    ok, details = promtext.selftest()
    tap.check(ok, "promtext: refuses each known-bad page, accepts a good one", details)
    for server in ("nginx", "lighttpd"):
        one_server(tap, server)


if __name__ == "__main__":
    main(body, deadline=300)
