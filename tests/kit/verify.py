"""verify: a replica of TechEmpower's verifier (toolset/test_types).

It follows /work/shared/spec/tfb-rules.md, which was read from TFB's code:
the same requests (Accept headers, one request per connection), the same
checks and the same pass / warn / fail levels.  This project counts a WARN
as a failure.

Differences from TFB, all made to keep the run short, none changing a
verdict:
  * TFB sleeps 3 s after each URL and requests it again to see that Date
    changed.  Here every URL's first Date is recorded, and check_dates()
    sleeps once (until 1.1 s after the last first request) and requests
    every recorded URL again.  A Date rendered once per second must differ.
  * The update check re-requests the 501 case before the "after" snapshot
    right away (TFB's re-request comes from its 3 s sleep).
  * pg_stat_statements is reset before each counting window (TFB only
    takes deltas; here both are done).
  * The DB count check runs even when an earlier check of the same type
    failed, so that one run reports everything.
  * siege gets its own rc file (parser off: our pages link no resources).

Use:
    v = Verifier("http://127.0.0.1:8080", psql=stack.psql, workdir=tmp)
    for name, problems in v.verify_all():
        tap.problems(name, problems)

Each verify_* returns a list of (name, problems); a problem is a tuple
(level, reason, url) with level 'pass', 'warn' or 'fail'.
"""

import difflib
import http.client
import json
import os
import re
import socket
import sys
import tempfile
import time
from datetime import datetime
from html.parser import HTMLParser

from . import REPO, STACK, tap as taplib, web
from .cmd import run

ACCEPT = {
    "json": "application/json,text/html;q=0.9,application/xhtml+xml;q=0.9,"
            "application/xml;q=0.8,*/*;q=0.7",
    "html": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "plaintext": "text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,"
                 "application/xml;q=0.8,*/*;q=0.7",
}

CONTENT_TYPES = {
    "json": r"^application/json(; ?charset=(UTF|utf)-8)?$",
    "html": r"^text/html; ?charset=(UTF|utf)-8$",
    "plaintext": r"^text/plain(; ?charset=(UTF|utf)-8)?$",
}

DATE_FORMAT = "%a, %d %b %Y %H:%M:%S %Z"

# The five cases of query, update and cached_query, with the level of a
# wrong answer.
QUERY_CASES = [("2", "fail"), ("0", "fail"), ("foo", "fail"), ("501", "warn"),
               ("", "fail")]
MIN_QUERIES, MAX_QUERIES = 1, 500

CONCURRENCY = 512   # max(concurrency_levels)
REPETITIONS = 1
ROWS_MARGIN = 1.011  # AbstractDatabase.margin (display only)
SIEGE_TIMEOUT = 30   # TFB: 20 s; a little slack for 2 cores

# Minimum route lengths (each test type's .py).
MIN_URL_LEN = {"json": 5, "db": 3, "query": 9, "fortune": 9, "update": 8,
               "plaintext": 10, "cached_query": 15}

VALID_FORTUNE = """<!doctype html><html>
<head><title>Fortunes</title></head>
<body><table>
<tr><th>id</th><th>message</th></tr>
<tr><td>11</td><td>&lt;script&gt;alert(&quot;This should not be displayed in a browser alert box.&quot;);&lt;/script&gt;</td></tr>
<tr><td>4</td><td>A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1</td></tr>
<tr><td>5</td><td>A computer program does what you tell it to do, not what you want it to do.</td></tr>
<tr><td>2</td><td>A computer scientist is someone who fixes things that aren&apos;t broken.</td></tr>
<tr><td>8</td><td>A list is only as strong as its weakest link. \u2014 Donald Knuth</td></tr>
<tr><td>0</td><td>Additional fortune added at request time.</td></tr>
<tr><td>3</td><td>After enough decimal places, nobody gives a damn.</td></tr>
<tr><td>7</td><td>Any program that runs right is obsolete.</td></tr>
<tr><td>10</td><td>Computers make very fast, very accurate mistakes.</td></tr>
<tr><td>6</td><td>Emacs is a nice operating system, but I prefer UNIX. \u2014 Tom Christaensen</td></tr>
<tr><td>9</td><td>Feature: A bug with seniority.</td></tr>
<tr><td>1</td><td>fortune: No such file or directory</td></tr>
<tr><td>12</td><td>\u30d5\u30ec\u30fc\u30e0\u30ef\u30fc\u30af\u306e\u30d9\u30f3\u30c1\u30de\u30fc\u30af</td></tr>
</table></body></html>"""


# --------------------------------------------------------------------------
# The fortunes normaliser (section 7)

class FortuneHTMLParser(HTMLParser):
    """Rebuilds a normalised document from the page: tags without
    attributes, some tags dropped, whitespace-only text dropped, a few
    character references rewritten and every other numeric one dropped."""

    IGNORED = {"<meta>", "</meta>", "<link>", "</link>", "<script>", "</script>",
               "<thead>", "</thead>", "<tbody>", "</tbody>"}

    # numeric char refs that survive, by their lower-cased name
    CHARREFS = {}
    for _names, _out in ((("34", "034", "x22"), "&quot;"),
                         (("39", "039", "x27"), "&apos;"),
                         (("43", "043", "x2b"), "+"),
                         (("62", "062", "x3e"), "&gt;"),
                         (("60", "060", "x3c"), "&lt;"),
                         (("47", "047", "x2f"), "/"),
                         (("40", "040", "x28"), "("),
                         (("41", "041", "x29"), ")")):
        for _n in _names:
            CHARREFS[_n] = _out

    def __init__(self):
        super().__init__(convert_charrefs=False)
        self.ignore_content = False
        self.body = []

    def append(self, item):
        # Inside <script>...</script> everything is dropped; "<script>"
        # and "</script>" themselves are in IGNORED.
        self.ignore_content = item == "<script>" or (
            self.ignore_content and item != "</script>")
        if not (self.ignore_content or item in self.IGNORED):
            self.body.append(item)

    def handle_decl(self, decl):
        self.append("<!%s>" % decl.lower())

    def handle_charref(self, name):
        out = self.CHARREFS.get(name.lower())
        if out is not None:
            self.append(out)

    def handle_entityref(self, name):
        self.append("\u2014" if name == "mdash" else "&%s;" % name)

    def handle_starttag(self, tag, attrs):
        self.append("<%s>" % tag)
        if tag.lower() in ("table", "html"):
            self.append("\n")

    def handle_data(self, data):
        if data.strip() != "":
            data = data.replace("'", "&apos;").replace('"', "&quot;").replace(">", "&gt;")
            self.append(data)

    def handle_endtag(self, tag):
        self.append("</%s>" % tag)
        if tag.lower() in ("tr", "head"):
            self.append("\n")

    def normalised(self):
        return "".join(self.body)


def fortune_problems(body_text, url):
    """The FortuneHTMLParser verdict on a decoded page: [] when it equals
    VALID_FORTUNE, else a fail plus "`got` should be `expected`" lines
    built from the diff, as fortune.py does."""
    p = FortuneHTMLParser()
    p.feed(body_text)  # TFB never calls close()
    got = p.normalised()
    if got == VALID_FORTUNE:
        return []
    problems = [("fail", "Invalid according to FortuneHTMLParser", url)]
    diff = list(difflib.unified_diff(VALID_FORTUNE.split("\n"), got.split("\n"),
                                     fromfile="Valid", tofile="Response", n=0))
    neg, pos = [], []
    for line in diff[3:]:
        if line[0] == "+":
            neg.append(line[1:])
        elif line[0] == "-":
            pos.append(line[1:])
        elif line[0] == "@":
            problems.append(("fail", "`%s` should be `%s`" % ("".join(neg), "".join(pos)), url))
    if pos:
        problems.append(("fail", "`%s` should be `%s`" % ("".join(neg), "".join(pos)), url))
    return problems


# --------------------------------------------------------------------------
# Body checks (verifications.py), pure functions

def basic_body_verification(body, url, is_json_check=True):
    if body is None:
        return None, [("fail", "No response", url)]
    if len(body) == 0:
        return None, [("fail", "Empty response", url)]
    if is_json_check:
        try:
            return json.loads(body), []
        except ValueError as e:
            return None, [("fail", "Invalid JSON: %s" % e, url)]
    return None, []


def verify_helloworld_object(obj, url):
    problems = []
    try:
        obj = {k.lower(): v.lower() for k, v in obj.items()}
    except Exception:
        return [("fail", "Not a valid JSON object", url)]
    if "message" not in obj:
        return [("fail", "Missing required key 'message'", url)]
    if len(obj) > 1:
        extra = ", ".join(k for k in obj if k != "message")
        problems.append(("warn", "Too many JSON key/value pairs, consider removing: %s"
                         % extra, url))
    if obj["message"] != "hello, world!":
        return [("fail", "Expected message of 'hello, world!', got '%s'"
                 % obj["message"], url)]
    return problems


def _int(value):
    """int() as TFB applies it: TypeError is a finding, ValueError an
    exception (which TFB turns into FAIL)."""
    return int(value)


def verify_randomnumber_object(obj, url, max_infraction="fail"):
    if type(obj) is not dict:
        got = str(obj)[:20]
        if len(str(obj)) > 20:
            got = str(obj)[:17] + "..."
        return [(max_infraction, "Expected a JSON object, got '%s' instead" % got, url)]
    obj = {k.lower(): v for k, v in obj.items()}
    required = {"id", "randomnumber"}
    problems = [(max_infraction, "Response object was missing required key: %s" % k, url)
                for k in sorted(required) if k not in obj]
    if len(obj) > len(required):
        problems.append(("warn", "An extra key(s) is being included with the db object: %s"
                         % ", ".join(sorted(set(obj) - required)), url))
    if problems:
        return problems
    try:
        oid = _int(obj["id"])
        if oid > 10000 or oid < 1:
            problems.append(("warn", "Response key id should be between 1 and 10,000: %s"
                             % oid, url))
    except TypeError as e:
        problems.append((max_infraction, "Response key 'id' does not map to an integer - %s"
                         % e, url))
    try:
        rn = _int(obj["randomnumber"])
        if rn > 10000:
            problems.append(("warn", "Response key `randomNumber` is over 10,000.", url))
    except TypeError as e:
        problems.append((max_infraction,
                         "Response key 'randomnumber' does not map to an integer - %s" % e, url))
    return problems


def verify_randomnumber_list(expected_len, body, url, max_infraction="fail"):
    response, problems = basic_body_verification(body, url)
    if problems:
        return problems
    if type(response) is not list:
        problems.append((max_infraction, "Top-level JSON is an object, not an array", url))
        problems += verify_randomnumber_object(response, url, max_infraction)
        return problems
    if any(type(item) is not dict for item in response):
        problems.append((max_infraction, "Not all items in the JSON array were JSON objects",
                         url))
    if len(response) != expected_len:
        problems.append((max_infraction, "JSON array length of %s != expected length of %s"
                         % (len(response), expected_len), url))
    bad = 0
    for obj in response:
        if bad >= 5:
            break
        found = verify_randomnumber_object(obj, url, max_infraction)
        if found:
            problems += found
            bad += 1
    return problems


def verify_updates(old_worlds, new_worlds, updates_expected, url):
    """Count ids whose randomNumber changed, in the first table that has
    any change; thresholds 0 / 0.90 / 0.95 of updates_expected."""
    successful = 0
    n = 0
    while n < len(old_worlds) and successful == 0:
        for i in range(1, 10001):
            k = str(i)
            if n < len(new_worlds) and k in old_worlds[n] and k in new_worlds[n]:
                if old_worlds[n][k] != new_worlds[n][k]:
                    successful += 1
        n += 1
    if successful == 0:
        return [("fail", "No items were updated in the database.", url)]
    if successful <= updates_expected * 0.90:
        return [("fail", "Only %s items were updated in the database out of roughly %s "
                 "expected." % (successful, updates_expected), url)]
    if successful <= updates_expected * 0.95:
        return [("warn", "There may have been an error updating the database. Only %s items "
                 "were updated in the database out of the roughly %s expected."
                 % (successful, updates_expected), url)]
    return [("pass", "%s items updated" % successful, url)]


def display_queries_count_result(result, expected, displayed, caption, url):
    if result > expected * 1.05:
        return ("warn", "%s %s in the database instead of %s expected. This number is "
                "excessively high." % (displayed, caption, expected), url)
    if result < expected:
        return ("fail", "Only %s %s in the database out of roughly %s expected."
                % (displayed, caption, expected), url)
    return ("pass", "%s: %s/%s" % (caption.capitalize(), displayed, expected), url)


def date_problem(date, url):
    if date is None:
        return []
    try:
        datetime.strptime(date, DATE_FORMAT)
    except ValueError:
        return [("warn", 'Invalid Date header, found "%s", did not match "%s".'
                 % (date, DATE_FORMAT), url)]
    return []


def static_header_problems(headers, url, should_be="json"):
    """verify_headers without the second request."""
    problems = []
    for name in ("Server", "Date", "Content-Type"):
        if name not in headers:
            problems.append(("fail", "Required response header missing: %s" % name, url))
    if "Content-Length" not in headers and "Transfer-Encoding" not in headers:
        problems.append(("fail", 'Required response size header missing, please include '
                         'either "Content-Length" or "Transfer-Encoding"', url))
    problems += date_problem(headers.get("Date"), url)
    ctype = headers.get("Content-Type")
    if ctype is not None and not re.match(CONTENT_TYPES[should_be], ctype):
        problems.append(("fail", 'Invalid Content-Type header, found "%s", did not match "%s".'
                         % (ctype, CONTENT_TYPES[should_be]), url))
    return problems


# --------------------------------------------------------------------------
# siege and pg_stat_statements

SIEGERC = """\
# written by tests/integration/tfb_verify.py; TFB's toolset/databases/.siegerc
# values, except parser (off) and colour (off)
verbose = false
color = off
quiet = false
show-logfile = false
logging = false
gmethod = HEAD
parser = false
limit = 1024
protocol = HTTP/1.1
chunked = true
cache = false
connection = keep-alive
concurrent = 25
delay = 0.0
internet = false
benchmark = false
accept-encoding = gzip, deflate
url-escaping = true
"""


def run_siege(url, workdir, concurrency=CONCURRENCY, reps=REPETITIONS,
              timeout=SIEGE_TIMEOUT):
    """siege -c C -r R URL -R <own rc>.  Returns (failed transactions,
    output); a missing "Failed transactions" line counts every request
    as failed, as TFB does."""
    os.makedirs(workdir, exist_ok=True)
    rc = os.path.join(workdir, "siegerc")
    with open(rc, "w") as f:
        f.write(SIEGERC)
    env = dict(os.environ, HOME=workdir, SIEGERC=rc)
    r = run(["siege", "-c", str(concurrency), "-r", str(reps), url, "-R", rc],
                timeout, env=env, cwd=workdir)
    out = r.stdout or ""
    m = re.search(r"Failed transactions:.*?(\d+)\n", out, re.MULTILINE)
    failures = int(m.group(1)) if m else concurrency * reps
    return failures, out


class Verifier:
    """Talks to one server.  psql(sql) -> text runs SQL against the
    benchmark database (None: the DB checks are skipped); workdir holds
    siege's files."""

    def __init__(self, base_url, psql=None, workdir="/tmp", concurrency=CONCURRENCY,
                 log=None):
        self.base_url = base_url.rstrip("/")
        self.psql = psql
        self.workdir = workdir
        self.concurrency = concurrency
        self.log = log or (lambda *a: None)
        self.dates = []  # (url, kind, first Date, monotonic time)
        self.last_siege = ""

    # -- requests

    def fetch(self, url, kind):
        """GET as requests.get(url, timeout=15, headers={'Accept': ...}).
        Returns (headers, body, status) or raises _RequestFailed."""
        try:
            r = web.get(url, ACCEPT[kind], timeout=15)
        except (socket.timeout, TimeoutError):
            raise _RequestFailed("Connection to server timed out", url)
        except (ConnectionError, http.client.HTTPException, OSError) as e:
            raise _RequestFailed("Server did not respond to request (%s: %s)"
                                 % (type(e).__name__, e), url)
        return r.headers, r.body, r.status

    def verify_headers(self, headers, url, should_be="json"):
        """The static header checks now; the "Date must change" check is
        registered for check_dates()."""
        self.dates.append((url, should_be, headers.get("Date"), time.monotonic()))
        return static_header_problems(headers, url, should_be)

    def verify_status(self, status, url):
        if status != 200:
            return [("fail", "Received status %s instead of 200" % status, url)]
        return []

    def check_dates(self, min_gap=1.1):
        """Sleep once, then request every recorded URL again: a Date equal
        to the first one is "Invalid Cached Date" (fail)."""
        if not self.dates:
            return []
        wait = self.dates[-1][3] + min_gap - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        results = []
        seen = set()
        for url, kind, first, _ in self.dates:
            if url in seen:  # the '' case and the bare URL are one URL
                continue
            seen.add(url)
            try:
                headers, _, _ = self.fetch(url, kind)
                second = headers.get("Date")
                problems = []
                if first == second:
                    problems.append(("fail", 'Invalid Cached Date. Found "%s" and "%s" on '
                                     'separate requests.' % (first, second), url))
            except _RequestFailed as e:
                problems = [e.problem()]
            results.append(("Date changes between requests: %s" % url[len(self.base_url):],
                            problems))
        self.dates = []
        return results

    # -- database counters

    def counters(self, tbl):
        """(queries, rows read, rows updated) from pg_stat_statements for
        statements naming tbl as a word, case-insensitively."""
        w = "[[:<:]]%s[[:>:]]" % tbl
        out = self.psql(
            "SELECT COALESCE(SUM(calls),0), "
            "COALESCE(SUM(rows) FILTER (WHERE query ~* 'select'),0), "
            "COALESCE(SUM(rows) FILTER (WHERE query ~* 'update'),0) "
            "FROM pg_stat_statements WHERE query ~* '%s'" % w)
        q, r, u = (int(x) for x in out.split("|"))
        return q, r, u

    def world_tables(self):
        """get_current_world_table: [{id: randomnumber} of "World",
        of "world"]; an error leaves the list short (as TFB's one try)."""
        tables = []
        try:
            for t in ('"World"', '"world"'):
                out = self.psql("SELECT * FROM %s" % t)
                rows = {}
                for line in out.splitlines():
                    i, n = line.split("|")[:2]
                    rows[str(int(i))] = int(n)
                tables.append(rows)
        except Exception as e:
            self.log("Unable to load current Postgres World table: %s" % e)
        return tables

    def verify_queries_count(self, tbl, url, expected_queries, expected_rows,
                             check_updates=False):
        """Section 9: reset pg_stat_statements, siege -c 512 -r 1, compare
        the deltas with the table of expected figures."""
        problems = []
        try:
            self.psql("SELECT pg_stat_statements_reset()")
        except Exception as e:
            self.log("pg_stat_statements_reset() failed (deltas are still used): %s" % e)
        try:
            q0, r0, u0 = self.counters(tbl)
        except Exception as e:
            return [("fail", "Cannot read pg_stat_statements: %s" % e, url)]
        t0 = time.monotonic()
        failures, out = run_siege(url, self.workdir, self.concurrency, REPETITIONS)
        self.last_siege = out
        time.sleep(0.2)  # let the last statements reach pg_stat_statements
        q1, r1, u1 = self.counters(tbl)
        queries, rows, updated = q1 - q0, r1 - r0, u1 - u0
        self.log("siege %s: %.1f s, %s failed; queries %d rows %d updated %d"
                 % (url, time.monotonic() - t0, failures, queries, rows, updated))
        is_bulk = (check_updates and 0.999 * expected_queries < queries
                   < 1.001 * expected_queries)
        if check_updates and not is_bulk:
            expected_queries = (expected_queries - REPETITIONS * self.concurrency) * 2
        if failures > 0:
            problems.append(("fail", "%s failed transactions." % failures, url))
            for line in out.splitlines():
                if re.search(r"Transactions|Availability|Failed|Successful|error|alert",
                             line, re.I):
                    self.log("siege: " + line.strip())
        problems.append(display_queries_count_result(queries, expected_queries, queries,
                                                     "executed queries", url))
        problems.append(display_queries_count_result(rows, expected_rows,
                                                     int(rows / ROWS_MARGIN), "rows read", url))
        if check_updates:
            bulk_margin = 1.05 if is_bulk else 1
            problems.append(display_queries_count_result(
                updated * bulk_margin, expected_rows, int(updated / ROWS_MARGIN),
                "rows updated", url))
        return problems

    # -- the test types, in TFB's order

    def _url_len(self, kind, path, url):
        if len(path) < MIN_URL_LEN[kind]:
            return [("fail", "Route for %s must be at least %d characters, found '%s' instead"
                     % (kind, MIN_URL_LEN[kind], path), url)]
        return []

    def _single(self, test, kind, path, check):
        """One request of a single-URL test type, the way each of TFB's
        does it: GET with kind's Accept header, the body checks every type
        makes (a JSON one for kind json), the route's minimum length; then,
        only when those found nothing, check(headers, body, status,
        parsed JSON, url) -> problems.  An exception anywhere is a fail.
        Returns (url, problems)."""
        url = self.base_url + path
        try:
            headers, body, status = self.fetch(url, kind)
            response, problems = basic_body_verification(body, url,
                                                         is_json_check=kind == "json")
            problems += self._url_len(test, path, url)
            if not problems:
                problems += check(headers, body, status, response, url)
        except _RequestFailed as e:
            problems = [e.problem()]
        except Exception as e:
            problems = [_exception(e, url)]
        return url, problems

    def verify_json(self, path="/json"):
        def check(headers, body, status, response, url):
            return (verify_helloworld_object(response, url)
                    + self.verify_status(status, url)
                    + self.verify_headers(headers, url, "json"))

        _, problems = self._single("json", "json", path, check)
        return [("json %s" % path, problems)]

    def verify_plaintext(self, path="/plaintext"):
        def check(headers, body, status, response, url):
            low = body.lower()
            if b"hello, world!" not in low:
                return [("fail", "Could not find 'Hello, World!' in response.", url)]
            problems = []
            extra = len(low) - len(b"hello, world!")
            if extra > 0:
                problems.append(("warn", "Server is returning %s more bytes than are "
                                 "required. This may negatively affect benchmark "
                                 "performance." % extra, url))
            return (problems + self.verify_status(status, url)
                    + self.verify_headers(headers, url, "plaintext"))

        _, problems = self._single("plaintext", "plaintext", path, check)
        return [("plaintext %s" % path, problems)]

    def verify_db(self, path="/db"):
        def check(headers, body, status, response, url):
            problems = []
            if type(response) == list:
                problems.append(("warn", "Response is a JSON array. Expected JSON object "
                                 "(e.g. [] vs {})", url))
                response = response[0] if response else None
            if response is not None and type(response) != dict:
                problems.append(("fail", "Response is not a JSON object or an array of "
                                 "JSON objects", url))
                return problems
            return (problems + verify_randomnumber_object(response, url)
                    + self.verify_status(status, url)
                    + self.verify_headers(headers, url, "json"))

        url, problems = self._single("db", "json", path, check)
        out = [("db %s" % path, problems)]
        if self.psql:
            n = REPETITIONS * self.concurrency
            out.append(("db %s: query count (siege -c %d)" % (path, self.concurrency),
                        self._count("World", url, n, n)))
        return out

    def _count(self, *args, **kw):
        try:
            return self.verify_queries_count(*args, **kw)
        except Exception as e:
            return [_exception(e, args[1])]

    def verify_query_cases(self, kind, path, check_updates=False, with_db=True):
        """verify_query_cases: the five cases, each a (name, problems);
        then (update) the changed-rows check, the bare URL's status and
        (with a database) the count window on path + "20"."""
        base = self.base_url + path
        out = []
        before = self.world_tables() if (check_updates and self.psql) else []
        for q, level in QUERY_CASES:
            case_url = base + q
            try:
                headers, body, status = self.fetch(case_url, "json")
                try:
                    n = int(q)
                    expected = min(max(n, MIN_QUERIES), MAX_QUERIES)
                except ValueError:
                    n = None
                    expected = 1
                if n is None and not body:
                    problems = [(level, "%s given for stringy `queries` parameter %s"
                                 % ("Empty response" if body is not None else "No response", q),
                                 case_url)]
                else:
                    problems = verify_randomnumber_list(expected, body, case_url, level)
                    problems += self.verify_headers(headers, case_url, "json")
                if check_updates and n is not None and n >= MAX_QUERIES and self.psql:
                    # TFB's verify_headers requests the URL again before the
                    # snapshot: ~2x500 rows updated.
                    self.fetch(case_url, "json")
                    after = self.world_tables()
                    out.append(("%s %s: case %r" % (kind, path, q), problems))
                    out.append(("%s %s: rows changed in the database after the 501 case"
                                % (kind, path),
                                verify_updates(before, after, MAX_QUERIES, case_url)))
                    continue
            except _RequestFailed as e:
                problems = [e.problem()]
            except Exception as e:
                problems = [_exception(e, case_url)]
            out.append(("%s %s: case %r" % (kind, path, q), problems))
        try:
            headers, body, status = self.fetch(base, "json")
            problems = self._url_len(kind, path, base)
            problems += self.verify_status(status, base)
            problems += self.verify_headers(headers, base, "json")
        except _RequestFailed as e:
            problems = [e.problem()]
        out.append(("%s %s: bare URL status and headers" % (kind, path), problems))
        if with_db and self.psql:
            n = 20 * REPETITIONS * self.concurrency
            expected_queries = n + (self.concurrency * REPETITIONS if check_updates else 0)
            out.append(("%s %s20: query count (siege -c %d)" % (kind, path, self.concurrency),
                        self._count("world", base + "20", expected_queries, n,
                                    check_updates=check_updates)))
        return out

    def verify_query(self, path="/queries?queries="):
        return self.verify_query_cases("query", path)

    def verify_update(self, path="/updates?queries="):
        return self.verify_query_cases("update", path, check_updates=True)

    def verify_cached_query(self, path="/cached-queries?count="):
        return self.verify_query_cases("cached_query", path, with_db=False)

    def verify_fortune(self, path="/fortunes"):
        def check(headers, body, status, response, url):
            try:
                text = body.decode()
            except UnicodeDecodeError as e:
                return [_exception(e, url)]
            problems = fortune_problems(text, url)
            if not problems:
                problems += self.verify_headers(headers, url, "html")
            return problems

        url, problems = self._single("fortune", "html", path, check)
        out = [("fortune %s" % path, problems)]
        if self.psql:
            n = REPETITIONS * self.concurrency
            out.append(("fortune %s: query count (siege -c %d)" % (path, self.concurrency),
                        self._count("fortune", url, n, 12 * n)))
        return out

    def verify_all(self, routes=None):
        """Every test type in TFB's order (db, json, query, update,
        fortune, plaintext, cached-query), then the Date re-requests."""
        routes = routes or {}
        out = []
        out += self.verify_db(routes.get("db", "/db"))
        out += self.verify_json(routes.get("json", "/json"))
        out += self.verify_query(routes.get("query", "/queries?queries="))
        out += self.verify_update(routes.get("update", "/updates?queries="))
        out += self.verify_fortune(routes.get("fortune", "/fortunes"))
        out += self.verify_plaintext(routes.get("plaintext", "/plaintext"))
        out += self.verify_cached_query(routes.get("cached_query", "/cached-queries?count="))
        out += self.check_dates()
        return out


class _RequestFailed(Exception):
    def __init__(self, reason, url):
        super().__init__(reason)
        self.reason, self.url = reason, url

    def problem(self):
        return ("fail", self.reason, self.url)


def _exception(e, url):
    return ("fail", "Caused Exception in TFB (%s: %s)" % (type(e).__name__, e), url)


def passed(problems):
    return not any(p[0] in ("fail", "warn") for p in problems)


def main():
    """Verify a running server: python3 -m tests.kit.verify
    [http://127.0.0.1:8080] [--no-db] (the DB checks use deploy/stack psql
    with the caller's environment)."""
    base = ([a for a in sys.argv[1:] if not a.startswith("--")] or
            ["http://127.0.0.1:8080"])[0]
    psql = None
    if "--no-db" not in sys.argv:
        def psql(sql):
            r = run([STACK, "psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql], 60,
                    cwd=str(REPO))
            if r.returncode != 0:
                raise RuntimeError(r.stdout.strip())
            return r.stdout.strip()

    def body(tap):
        with tempfile.TemporaryDirectory(prefix="tfb-verify-") as tmp:
            v = Verifier(base, psql=psql, workdir=tmp, log=tap.note)
            for name, problems in v.verify_all():
                tap.problems(name, problems)
    taplib.main(body, deadline=600)


if __name__ == "__main__":
    main()
