"""test_verify_selftest.py: the verifier itself, against a fixture server.

A tiny http.server answers the TFB routes correctly, then with one fault
at a time; tfb_verify must pass the first and catch each fault at the
level TFB would.  The fortunes normaliser and the query-count arithmetic
are checked on their own.  Needs no PostgreSQL, no app: runs in seconds.
"""

import html
import json
import random
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ..kit import verify as tv, web
from ..kit.tap import main

FORTUNES = [
    (1, "fortune: No such file or directory"),
    (2, "A computer scientist is someone who fixes things that aren't broken."),
    (3, "After enough decimal places, nobody gives a damn."),
    (4, "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1"),
    (5, "A computer program does what you tell it to do, not what you want it to do."),
    (6, "Emacs is a nice operating system, but I prefer UNIX. \u2014 Tom Christaensen"),
    (7, "Any program that runs right is obsolete."),
    (8, "A list is only as strong as its weakest link. \u2014 Donald Knuth"),
    (9, "Feature: A bug with seniority."),
    (10, "Computers make very fast, very accurate mistakes."),
    (11, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
    (12, "\u30d5\u30ec\u30fc\u30e0\u30ef\u30fc\u30af\u306e\u30d9\u30f3\u30c1\u30de\u30fc\u30af"),
]


def fortune_page(escape=lambda s: html.escape(s, quote=True), head="",
                 row="<tr><td>%s</td><td>%s</td></tr>", doctype="<!DOCTYPE html>",
                 html_tag="<html>", table_open="<table>", sep=""):
    rows = sorted(FORTUNES + [(0, "Additional fortune added at request time.")],
                  key=lambda r: r[1])
    body = sep.join(row % (i, escape(m)) for i, m in rows)
    return ("%s%s<head>%s<title>Fortunes</title></head><body>%s"
            "<tr><th>id</th><th>message</th></tr>%s%s</table></body></html>"
            % (doctype, html_tag, head, table_open, sep, body))


FAULTS = set()
FIXED_DATE = "Wed, 17 Apr 2013 12:00:00 GMT"


class Fixture(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *a):
        pass

    def date_time_string(self, timestamp=None):
        if "fixed-date" in FAULTS:
            return FIXED_DATE
        if "bad-date" in FAULTS:
            return "2013-04-17T12:00:00Z"
        return super().date_time_string(timestamp)

    def send_response(self, code, message=None):
        if "no-server" in FAULTS:
            self.send_response_only(code, message)
            self.send_header("Date", self.date_time_string())
        else:
            super().send_response(code, message)

    def reply(self, body, ctype, status=200):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if "no-length" not in FAULTS:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def rows(self, param):
        q = urllib.parse.urlsplit(self.path).query
        vals = urllib.parse.parse_qs(q, keep_blank_values=True).get(param, [""])
        try:
            n = int(vals[0])
        except ValueError:
            n = 1
        n = max(1, n) if "no-clamp-501" in FAULTS else min(max(1, n), 500)
        rows = [{"id": random.randint(1, 10000), "randomNumber": random.randint(1, 10000)}
                for _ in range(n)]
        if "queries-object" in FAULTS and n == 1:
            return json.dumps(rows[0])
        return json.dumps(rows, separators=(",", ":"))

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        jtype = "application/json; charset=Utf-8" if "bad-json-type" in FAULTS \
            else "application/json"
        if path == "/json":
            obj = {"message": "Hello, World!"}
            if "json-extra-key" in FAULTS:
                obj["x"] = "y"
            self.reply(json.dumps(obj), jtype)
        elif path == "/plaintext":
            body = "Hello, World!\n" if "plaintext-newline" in FAULTS else "Hello, World!"
            self.reply(body, "text/plain")
        elif path == "/db":
            obj = {"id": random.randint(1, 10000), "randomNumber": random.randint(1, 10000)}
            if "db-array" in FAULTS:
                obj = [obj]
            if "db-string-id" in FAULTS:
                obj["id"] = "abc"
            self.reply(json.dumps(obj), jtype)
        elif path in ("/queries", "/updates"):
            self.reply(self.rows("queries"), jtype)
        elif path == "/cached-queries":
            self.reply(self.rows("count"), jtype)
        elif path == "/fortunes":
            ctype = "text/html" if "html-no-charset" in FAULTS else "text/html; charset=utf-8"
            if "fortune-numeric-mdash" in FAULTS:
                page = fortune_page(escape=lambda s: html.escape(s).replace("\u2014", "&#8212;"))
            else:
                page = fortune_page()
            self.reply(page, ctype)
        else:
            self.reply("not found", "text/plain", 404)


def start_fixture():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Fixture)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    return srv


def parser_cases(tap):
    """Section 7's verified PASS / FAIL variants."""
    def ok(page):
        return tv.fortune_problems(page, "x") == []

    std = lambda s: html.escape(s, quote=True)  # noqa: E731
    passing = {
        "minimal one-line page (&#x27; for ')": fortune_page(),
        "&#39; for '": fortune_page(escape=lambda s: std(s).replace("&#x27;", "&#39;")),
        "&apos; for '": fortune_page(escape=lambda s: std(s).replace("&#x27;", "&apos;")),
        "raw ' \" >": fortune_page(escape=lambda s: s.replace("&", "&amp;").replace("<", "&lt;")),
        "&#34; for \"": fortune_page(escape=lambda s: std(s).replace("&quot;", "&#34;")),
        "&mdash;": fortune_page(escape=lambda s: std(s).replace("\u2014", "&mdash;")),
        "<meta charset>, <html lang>": fortune_page(head='<meta charset="utf-8">',
                                                    html_tag='<html lang="en">'),
        "thead/tbody, upper-case tags, newlines": fortune_page(
            row="<TR><TD>%s</TD><TD>%s</TD></TR>", sep="\n",
            table_open="<table><thead></thead><tbody></tbody>"),
        "lower-case doctype": fortune_page(doctype="<!doctype html>"),
    }
    failing = {
        "&#8212; for the em dash": fortune_page(escape=lambda s: std(s).replace("\u2014", "&#8212;")),
        "space inside <td>": fortune_page(row="<tr><td> %s</td><td>%s</td></tr>"),
        "missing doctype": fortune_page(doctype=""),
        "missing </tr>": fortune_page(row="<tr><td>%s</td><td>%s</td>"),
        "no escaping": fortune_page(escape=lambda s: s),
        "unsorted": fortune_page().replace("<tr><td>4</td>", "<tr><td>44</td>"),
    }
    for name, page in passing.items():
        tap.check(ok(page), "fortune parser passes: %s" % name,
                  tv.fortune_problems(page, "x")[:5])
    for name, page in failing.items():
        tap.check(not ok(page), "fortune parser fails: %s" % name)


def count_cases(tap):
    """verify_queries_count's arithmetic with canned counters."""
    def window(tbl, expected_q, expected_rows, deltas, check_updates=False, failures=0):
        v = tv.Verifier("http://127.0.0.1:1", psql=lambda sql: "", log=lambda *a: None)
        seq = iter([(0, 0, 0), deltas])
        v.counters = lambda t: next(seq)
        saved = tv.run_siege
        tv.run_siege = lambda *a, **k: (failures, "Failed transactions: %d\n" % failures)
        try:
            probs = v.verify_queries_count(tbl, "u", expected_q, expected_rows, check_updates)
        finally:
            tv.run_siege = saved
        return "fail" if any(p[0] == "fail" for p in probs) else (
            "warn" if any(p[0] == "warn" for p in probs) else "pass")

    cases = [
        ("db 512/512", ("World", 512, 512, (512, 512, 0)), "pass"),
        ("db 511 queries", ("World", 512, 512, (511, 511, 0)), "fail"),
        ("query 10240", ("world", 10240, 10240, (10240, 10240, 0)), "pass"),
        ("query IN-list 512", ("world", 10240, 10240, (512, 10240, 0)), "fail"),
        ("query 10753 (> 1.05x)", ("world", 10240, 10240, (10753, 10240, 0)), "warn"),
        ("fortune 512/6144", ("fortune", 512, 6144, (512, 6144, 0)), "pass"),
        ("update bulk 10752", ("world", 10752, 10240, (10752, 10240, 10240), True), "pass"),
        ("update bulk, dup ids 9800 rows", ("world", 10752, 10240, (10752, 10240, 9800), True),
         "pass"),
        ("update per-row 20480", ("world", 10752, 10240, (20480, 10240, 10240), True), "pass"),
        ("update 20 SELECT + 2 UPDATE (11264)", ("world", 10752, 10240,
                                                 (11264, 10240, 10240), True), "fail"),
        ("siege failures", ("World", 512, 512, (512, 512, 0), False, 3), "fail"),
    ]
    for name, args, want in cases:
        got = window(*args)
        tap.check(got == want, "count window: %s -> %s" % (name, want), "got %s" % got)


def server_cases(tap, base):
    v = tv.Verifier(base, psql=None, log=tap.note)
    for name, probs in v.verify_all():
        tap.problems("fixture, all correct: %s" % name, probs)

    # (fault the fixture injects, the Verifier steps that must catch it,
    # the level TFB gives it).  Only the Date re-request catches a Date
    # that never changes.
    faults = [
        ("plaintext-newline", ["verify_plaintext"], "warn"),
        ("no-server", ["verify_json"], "fail"),
        ("no-length", ["verify_json"], "fail"),
        ("bad-date", ["verify_json"], "warn"),
        ("bad-json-type", ["verify_json"], "fail"),
        ("json-extra-key", ["verify_json"], "warn"),
        ("db-array", ["verify_db"], "warn"),
        ("db-string-id", ["verify_db"], "fail"),
        ("no-clamp-501", ["verify_query"], "warn"),
        ("queries-object", ["verify_query"], "fail"),
        ("html-no-charset", ["verify_fortune"], "fail"),
        ("fortune-numeric-mdash", ["verify_fortune"], "fail"),
        ("fixed-date", ["verify_json", "check_dates"], "fail"),
    ]
    for fault, steps, level in faults:
        FAULTS.clear()
        FAULTS.add(fault)
        try:
            v = tv.Verifier(base, psql=None)
            probs = [p for step in steps for _, ps in getattr(v, step)() for p in ps]
            v.dates = []
        finally:
            FAULTS.clear()
        worst = "fail" if any(p[0] == "fail" for p in probs) else (
            "warn" if any(p[0] == "warn" for p in probs) else "pass")
        tap.check(worst == level, "fixture fault %s is a %s" % (fault, level),
                  ["got %s" % worst] + ["%s: %s" % p[:2] for p in probs][:5])

    # Nothing listening: "Server did not respond".
    port = web.free_port()
    probs = [p for _, ps in tv.Verifier("http://127.0.0.1:%d" % port).verify_json()
             for p in ps]
    tap.check(any("did not respond" in p[1] for p in probs),
              "no server: 'Server did not respond to request'", [str(p) for p in probs])


def body(tap):
    parser_cases(tap)
    count_cases(tap)
    srv = start_fixture()
    try:
        server_cases(tap, "http://127.0.0.1:%d" % srv.server_address[1])
    finally:
        srv.shutdown()
        srv.server_close()


if __name__ == "__main__":
    main(body, deadline=120)
