"""test_hostile_http.py: hostile HTTP requests, through nginx and then
through lighttpd in front of the same pool, each with the answer it must
get.

Each row of TABLE is a request sent byte for byte over a socket (http.client
would refuse or mend most of them): counts that are huge, negative, hex,
octal, float, padded, percent-encoded, repeated or hold a NUL; a 64 KiB
query string; unknown routes and methods; odd request lines and headers.
A row names the status and who answers it:

  - the front server itself, refusing what HTTP forbids (400, 414, 431,
    501, 505): its own page, text/html, and the application never sees
    the request;
  - the application: 200, with as many rows as TechEmpower's clamping
    gives for a count (app/param.h: missing, empty, not an integer or
    below 1 gives 1, above 500 gives 500), 404 for an unknown path, 405
    (with Allow: GET, HEAD) for a method other than GET or HEAD.

Where nginx 1.22 and lighttpd 1.4.69 differ, the row gives both and says
why.  The stack is one: PostgreSQL, two workers, nginx; then lighttpd in
nginx's place.  At the end, the same worker processes, each back waiting
in epoll, nothing logged as an error, every route answering: no request
crashed, hung or wedged a worker.
"""

import json
import re
import socket
import time

from ..kit import APP_BIN, STACK, fcgi, proc, stack, web
from ..kit.tap import main

WORKERS = 2
TIMEOUT = 10  # seconds for one answer: longer is a hang


def app(status):
    return (status, "app")


def front(status):
    return (status, "front")


# nginx answers a request line without a version (HTTP/0.9) with the
# body alone: no status line, no headers.
HTTP09 = ("HTTP/0.9", "app")


def req(line, headers=(), body=b"", host=b"127.0.0.1"):
    """A request: line, Host (unless None), Connection: close, headers,
    the blank line, body."""
    out = line + b"\r\n"
    if host is not None:
        out += b"Host: " + host + b"\r\n"
    out += b"Connection: close\r\n"
    for h in headers:
        out += h + b"\r\n"
    return out + b"\r\n" + body


def get(target):
    return req(b"GET " + target + b" HTTP/1.1")


def q(value, route=b"/queries", name=b"queries"):
    return get(route + b"?" + name + b"=" + value)


def row(name, raw, want, rows=None, why=""):
    """want: (status, who) for both servers, or {"nginx": ..., "lighttpd": ...}."""
    if not isinstance(want, dict):
        want = {"nginx": want, "lighttpd": want}
    return {"name": name, "raw": raw, "want": want, "rows": rows, "why": why}


LIGHTTPD_URL_CTRLS = "lighttpd refuses control characters in the URL, %00 too"
NGINX_IGNORES = "nginx drops a header line it cannot read (ignore_invalid_headers)"
LIGHTTPD_METHODS = "lighttpd knows a fixed list of methods, and answers 501 for others"
LIGHTTPD_STRICT = "lighttpd's request-line parser is stricter than nginx's"

TABLE = [
    # --- the count parameter: huge, negative, hex, octal, float, padded,
    # percent-encoded, repeated, with NULs
    row("a 32-digit count", q(b"9" * 32), app(200), 500),
    row("2^32 + 1, which wraps to 1 in 32 bits", q(b"4294967297"), app(200), 500),
    row("2^64 + 1, which wraps to 1 in 64 bits", q(b"18446744073709551617"), app(200), 500),
    row("4000 nines", q(b"9" * 4000), app(200), 500),
    row("negative", q(b"-1"), app(200), 1),
    row("huge negative", q(b"-99999999999999999999999"), app(200), 1),
    row("-4294967291, which wraps to 5 in 32 bits", q(b"-4294967291"), app(200), 1),
    row("hex", q(b"0x1F"), app(200), 1),
    row("octal-looking: decimal", q(b"010"), app(200), 10),
    row("float", q(b"2.9"), app(200), 1),
    row("exponent", q(b"1e2"), app(200), 1),
    row("padded by %20", q(b"%20%205"), app(200), 1),
    row("'+', a space in a query", q(b"+5"), app(200), 1),
    row("a %20 after the digits", q(b"5%20"), app(200), 1),
    row("31 digits of leading zeros", q(b"0" * 30 + b"7"), app(200), 7),
    row("a digit percent-encoded", q(b"%35"), app(200), 5),
    row("a minus percent-encoded", q(b"%2D5"), app(200), 1),
    row("a plus percent-encoded: a sign", q(b"%2B5"), app(200), 5),
    row("a broken escape", q(b"%ZZ5"), app(200), 1),
    row("a dangling %", q(b"5%"), app(200), 1),
    row("repeated: the first counts", q(b"5&queries=7"), app(200), 5),
    row("among empty pairs", get(b"/queries?&&&queries=4&&"), app(200), 4),
    row("after 1000 other pairs", get(b"/queries?" + b"a=1&" * 1000 + b"queries=6"),
        app(200), 6),
    row("a semicolon after it", q(b"5;x=1"), app(200), 1),
    row("an Arabic-Indic digit five", q(b"\xd9\xa5"), app(200), 1),
    row("the name in capitals", get(b"/queries?QUERIES=5"), app(200), 1),
    row("an empty query string", get(b"/queries?"), app(200), 1),
    row("%00 after the digit", q(b"5%00"),
        {"nginx": app(200), "lighttpd": front(400)}, 1, LIGHTTPD_URL_CTRLS),
    row("%00 before the digit", q(b"%005"),
        {"nginx": app(200), "lighttpd": front(400)}, 1, LIGHTTPD_URL_CTRLS),
    row("a raw NUL after the digit", q(b"5\x00"), front(400)),
    row("a raw space before the digit", q(b" 5"),
        {"nginx": front(400), "lighttpd": app(200)}, 1,
        "nginx refuses a request line of four words; lighttpd takes the "
        "URI up to the last space, space included"),
    row("/cached-queries, 501", q(b"501", b"/cached-queries", b"count"), app(200), 500),
    row("/cached-queries, -0", q(b"-0", b"/cached-queries", b"count"), app(200), 1),
    row("/cached-queries, %31%30", q(b"%31%30", b"/cached-queries", b"count"),
        app(200), 10),
    row("/updates, hex", q(b"0x02", b"/updates"), app(200), 1),
    row("/updates, %32%30", q(b"%32%30", b"/updates"), app(200), 20),
    row("HEAD with a count that is no number", req(b"HEAD /queries?queries=abc HTTP/1.1"),
        app(200)),
    row("absolute-form target with a count",
        get(b"http://127.0.0.1/queries?queries=3"), app(200), 3),
    row("a 7000-byte query string", q(b"3&pad=" + b"x" * 7000), app(200), 3),
    row("a 64 KiB query string", q(b"3&pad=" + b"x" * 65536),
        {"nginx": front(414), "lighttpd": front(431)}, None,
        "nginx's request line must fit one large_client_header_buffers "
        "buffer (8 KB): 414; lighttpd counts it in its 8 KB of headers: 431"),

    # --- paths
    row("unknown route", get(b"/nope"), app(404)),
    row("a route in capitals", get(b"/PLAINTEXT"), app(404)),
    row("a route percent-encoded: routed undecoded", get(b"/plain%74ext"), app(404)),
    row("/./plaintext", get(b"/./plaintext"), app(404)),
    row("/../plaintext", get(b"/../plaintext"),
        {"nginx": front(400), "lighttpd": app(404)}, None,
        "nginx refuses a path above the root; lighttpd passes REQUEST_URI "
        "as sent"),
    row("//plaintext", get(b"//plaintext"), app(404)),
    row("a fragment", get(b"/plaintext#frag"), app(404)),
    row("an escaped '?'", get(b"/plaintext%3Fx=1"), app(404)),
    row("UTF-8 after the route", get(b"/plaintext\xc3\xa9"), app(404)),
    row("%00 in the path", get(b"/plaintext%00"), front(400)),
    row("a control character in the path", get(b"/plaintext\x01"), front(400)),
    row("a path without its '/'", get(b"plaintext"), front(400)),
    row("GET *", get(b"*"), front(400)),
    row("absolute-form target", get(b"http://127.0.0.1/plaintext"), app(200)),

    # --- methods
    row("an unknown method", req(b"FOO /plaintext HTTP/1.1"),
        {"nginx": app(405), "lighttpd": front(501)}, None, LIGHTTPD_METHODS),
    row("a method of 200 letters", req(b"A" * 200 + b" /plaintext HTTP/1.1"),
        {"nginx": app(405), "lighttpd": front(501)}, None, LIGHTTPD_METHODS),
    row("a method in lower case", req(b"get /plaintext HTTP/1.1"),
        {"nginx": front(400), "lighttpd": front(501)}, None,
        "nginx takes upper-case letters only; " + LIGHTTPD_METHODS),
    row("POST with a body", req(b"POST /json HTTP/1.1", [b"Content-Length: 3"], b"a=1"),
        app(405)),
    row("POST with Expect: 100-continue",
        req(b"POST /json HTTP/1.1", [b"Content-Length: 3", b"Expect: 100-continue"],
            b"a=1"), app(405), None, "nginx sends 100 Continue first"),
    row("DELETE", req(b"DELETE /db HTTP/1.1"), app(405)),
    row("PATCH with a count", req(b"PATCH /queries?queries=5 HTTP/1.1"), app(405)),
    row("TRACE", req(b"TRACE /plaintext HTTP/1.1"),
        {"nginx": front(405), "lighttpd": app(405)}, None,
        "nginx refuses TRACE itself; lighttpd passes it on"),
    row("OPTIONS *", req(b"OPTIONS * HTTP/1.1"),
        {"nginx": front(400), "lighttpd": front(200)}, None,
        "lighttpd answers OPTIONS * itself; nginx takes no '*' target"),
    row("CONNECT", req(b"CONNECT 127.0.0.1:80 HTTP/1.1"),
        {"nginx": front(400), "lighttpd": front(405)}, None,
        "neither proxies; nginx refuses the authority-form target, "
        "lighttpd the method"),
    row("HEAD", req(b"HEAD /plaintext HTTP/1.1"), app(200)),

    # --- versions and framing
    row("HTTP/1.1 without Host", req(b"GET /plaintext HTTP/1.1", host=None), front(400)),
    row("HTTP/1.0 without Host", req(b"GET /plaintext HTTP/1.0", host=None), app(200)),
    row("HTTP/2.0 in a request line", req(b"GET /plaintext HTTP/2.0"), front(505)),
    row("HTTP/9.9", req(b"GET /plaintext HTTP/9.9"), front(505)),
    row("HTTP/0.9: no version", b"GET /plaintext\r\n\r\n",
        {"nginx": HTTP09, "lighttpd": front(400)}, None,
        "nginx still speaks HTTP/0.9: the body alone; lighttpd does not"),
    row("bare LF line ends", b"GET /plaintext HTTP/1.1\nHost: 127.0.0.1\n"
        b"Connection: close\n\n",
        {"nginx": app(200), "lighttpd": front(400)}, None, LIGHTTPD_STRICT),
    row("two spaces between the words", req(b"GET  /plaintext  HTTP/1.1"),
        {"nginx": app(200), "lighttpd": front(400)}, None, LIGHTTPD_STRICT),
    row("an empty line before the request line", b"\r\n" + get(b"/plaintext"),
        {"nginx": app(200), "lighttpd": front(400)}, None, LIGHTTPD_STRICT),
    row("a TLS ClientHello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,
        front(400)),

    # --- headers
    row("two Host headers", req(b"GET /plaintext HTTP/1.1", [b"Host: other"]), front(400)),
    row("an empty Host", req(b"GET /plaintext HTTP/1.1", host=b""), front(400)),
    row("a Host with port 99999", req(b"GET /plaintext HTTP/1.1", host=b"127.0.0.1:99999"),
        {"nginx": app(200), "lighttpd": front(400)}, None,
        "lighttpd checks the port; nginx only the host's characters"),
    row("a Host with a space", req(b"GET /plaintext HTTP/1.1", host=b"a b"), front(400)),
    row("a header line without a colon", req(b"GET /plaintext HTTP/1.1", [b"NoColonHere"]),
        {"nginx": app(200), "lighttpd": front(400)}, None, NGINX_IGNORES),
    row("a space before the colon", req(b"GET /plaintext HTTP/1.1", [b"X-A : b"]),
        front(400)),
    row("a '(' in a header name", req(b"GET /plaintext HTTP/1.1", [b"X(A): b"]),
        {"nginx": app(200), "lighttpd": front(400)}, None, NGINX_IGNORES),
    row("a NUL in a header value", req(b"GET /plaintext HTTP/1.1", [b"X-A: a\x00b"]),
        front(400)),
    row("a folded header line", req(b"GET /plaintext HTTP/1.1", [b"X-A: a", b" folded"]),
        {"nginx": front(400), "lighttpd": app(200)}, None,
        "nginx refuses obsolete line folding; lighttpd unfolds it"),
    row("a 64 KiB Cookie", req(b"GET /plaintext HTTP/1.1", [b"Cookie: " + b"c" * 65536]),
        {"nginx": front(400), "lighttpd": front(431)}, None,
        "nginx answers 400 'Request Header Or Cookie Too Large'; lighttpd 431"),
    row("a 7000-byte header", req(b"GET /plaintext HTTP/1.1", [b"X-Big: " + b"c" * 7000]),
        app(200)),
    row("100 headers", req(b"GET /plaintext HTTP/1.1",
                           [b"X-H%d: v" % i for i in range(100)]), app(200)),
    row("a header value that is no UTF-8", req(b"GET /json HTTP/1.1", [b"X-A: \xc3\xa9\xff"]),
        app(200)),
    row("Upgrade: websocket", req(b"GET /plaintext HTTP/1.1",
                                  [b"Upgrade: websocket", b"Connection: Upgrade"]), app(200)),
    row("Content-Length and Transfer-Encoding",
        req(b"POST /json HTTP/1.1", [b"Content-Length: 3", b"Transfer-Encoding: chunked"],
            b"0\r\n\r\n"), front(400)),
    row("Content-Length -1", req(b"GET /plaintext HTTP/1.1", [b"Content-Length: -1"]),
        front(400)),
    row("a Content-Length of 23 digits",
        req(b"GET /plaintext HTTP/1.1", [b"Content-Length: " + b"9" * 23]), front(400)),
    row("two Content-Length",
        req(b"GET /plaintext HTTP/1.1", [b"Content-Length: 1", b"Content-Length: 2"], b"ab"),
        front(400)),
    row("Transfer-Encoding: gzip", req(b"POST /json HTTP/1.1", [b"Transfer-Encoding: gzip"]),
        front(501)),
    row("a chunk size that is no number",
        req(b"POST /json HTTP/1.1", [b"Transfer-Encoding: chunked"], b"zz\r\n"), front(400)),
    row("GET with a body", req(b"GET /plaintext HTTP/1.1", [b"Content-Length: 5"], b"hello"),
        {"nginx": app(200), "lighttpd": front(400)}, None,
        "lighttpd refuses a body on GET and HEAD"),
    row("GET with a chunked body", req(b"GET /json HTTP/1.1", [b"Transfer-Encoding: chunked"],
                                       b"5\r\nhello\r\n0\r\n\r\n"),
        {"nginx": app(200), "lighttpd": front(400)}, None,
        "lighttpd refuses a body on GET and HEAD"),
    row("GET with Content-Length: 0", req(b"GET /plaintext HTTP/1.1", [b"Content-Length: 0"]),
        app(200)),
]


def exchange(port, raw):
    """Send raw, read one answer (after any 100 Continue).  Returns
    (status, headers, body): status "HTTP/0.9" for an answer without a
    status line, None when the server closed without answering, "timeout"
    when it did not answer within TIMEOUT."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        try:
            s.sendall(raw)
        except OSError:
            pass  # refused half way (a 64 KiB request): the answer may be there
        fp = s.makefile("rb")
        try:
            first = fp.peek(5)[:5]
            if first and not first.startswith(b"HTTP/"):
                return "HTTP/0.9", web.Headers(), fp.read()
            r = web.read_response(fp, raw.split(b" ", 1)[0].decode("latin-1"))
            while r.status == 100:
                r = web.read_response(fp)
            return r.status, r.headers, r.body
        except socket.timeout:
            return "timeout", web.Headers(), b""
        except (EOFError, ValueError, ConnectionError):
            return None, web.Headers(), b""


def target_of(raw):
    """The request's first line, escaped, for messages; its line end shown
    when it is not CRLF."""
    line, lf, _ = raw.partition(b"\n")
    if line.endswith(b"\r"):
        line = line[:-1]
    elif lf:
        line += lf
    if not line.strip():
        line = raw[:30]
    if len(line) > 70:
        line = line[:60] + b"...(%d bytes)" % len(line)
    return line.decode("latin-1").encode("unicode_escape").decode()


def judge(r, server, status, headers, body):
    """What is wrong with an answer to row r from server (a list)."""
    want, who = r["want"][server]
    ctype = headers.get("Content-Type") or ""
    problems = []
    if status != want:
        problems.append("status %s, want %s" % (status, want))
        return problems
    if want == "HTTP/0.9":
        if body != b"Hello, World!":
            problems.append("HTTP/0.9 body %r" % body[:80])
        return problems
    if who == "front":
        # The front server's own page: HTML, or nothing at all.
        if ctype and not ctype.startswith("text/html"):
            problems.append("Content-Type %r: not the front server's page" % ctype)
        return problems
    if status == 404 and (body != b"Not Found\n" or ctype != "text/plain"):
        problems.append("not the application's 404: %r %r" % (ctype, body[:80]))
    if status == 405 and (body != b"Method Not Allowed\n" or
                          headers.get("Allow") != "GET, HEAD"):
        problems.append("not the application's 405: Allow %r, %r"
                        % (headers.get("Allow"), body[:80]))
    if status == 200 and r["rows"] is not None:
        try:
            rows = json.loads(body)
        except ValueError:
            rows = None
        if not isinstance(rows, list) or len(rows) != r["rows"] or not all(
                isinstance(x, dict) and set(x) == {"id", "randomNumber"} for x in rows):
            problems.append("want %d rows, got %s" % (
                r["rows"], len(rows) if isinstance(rows, list) else repr(body[:80])))
    elif status == 200 and not ctype.startswith(("text/plain", "application/json")):
        problems.append("Content-Type %r: not the application's" % ctype)
    return problems


def run_table(tap, st, server):
    t0 = time.monotonic()
    differ = 0
    for r in TABLE:
        want, who = r["want"][server]
        others = {r["want"][s] for s in r["want"]}
        differ += len(others) > 1
        desc = "%s: %s (%s): %s from %s%s" % (
            server, r["name"], target_of(r["raw"]), want,
            "the application" if who == "app" else server,
            ", %d row%s" % (r["rows"], "s" if r["rows"] > 1 else "")
            if r["rows"] is not None and want == 200 else "")
        if len(others) > 1:
            desc += " [differs: %s]" % r["why"]
        try:
            status, headers, body = exchange(st.port, r["raw"])
        except OSError as e:
            tap.fail(desc, "%s: %s" % (type(e).__name__, e))
            continue
        problems = judge(r, server, status, headers, body)
        tap.check(not problems, desc, problems)
    tap.note("%s: %d requests in %.1f s, %d where the two front servers differ"
             % (server, len(TABLE), time.monotonic() - t0, differ))


def check_long_query_fcgi(tap, st):
    """Neither front server passes a 64 KiB query string (414, 431).  Sent
    straight to the pool's socket, as a front server allowed longer URIs
    would send it: 60 KiB is answered and counted, 64 KiB is more than
    --request-max (64 KiB of records by default): answered 413, then its
    connection closed."""
    sock = st.run_path("fcgi.sock")
    for size, answered in ((60 * 1024, True), (64 * 1024, False)):
        query = "queries=3&pad=" + "x" * (size - len("queries=3&pad="))
        env = fcgi.get_params("/queries")
        env["QUERY_STRING"] = query
        desc = "FastCGI to the pool: a %d KiB QUERY_STRING %s" % (
            size // 1024, "answered, 3 rows" if answered
            else "over --request-max: answered 413")
        try:
            with fcgi.connect(sock, timeout=TIMEOUT) as c:
                r = c.request(env)
                closed = answered or c.eof(TIMEOUT)
        except (OSError, TypeError) as e:
            tap.fail(desc, "%s: %s (socket %s)" % (type(e).__name__, e, sock))
            continue
        if answered:
            try:
                rows = len(json.loads(r.body))
            except (ValueError, TypeError):
                rows = None
            tap.check(r.status == 200 and rows == 3, desc, [repr(r), r.body[:100]])
        else:
            tap.check(r.status == 413 and r.protocol_status == fcgi.REQUEST_COMPLETE and
                      closed, desc, repr(r))


def check_workers(tap, st, pids_before):
    pids = stack.check_workers(tap, st, WORKERS, pids_before, "at the end")
    deadline = time.monotonic() + 3
    while True:
        # Back asleep in epoll_wait / epoll_pwait.
        busy = [p for p in pids if proc.wchan(p) != "do_epoll_wait"]
        if not busy or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    tap.check(pids and not busy, "every worker is back waiting in epoll: none hangs "
              "on a request", "not waiting: %s" % busy)
    errors = [line for line in st.app_log().splitlines()
              if re.search(r"\b(error|fatal):", line)]
    tap.check(not errors, "the workers logged no error", errors[-10:])
    for path in ("/plaintext", "/json", "/db", "/queries?queries=2", "/fortunes",
                 "/updates?queries=2", "/cached-queries?count=2"):
        r = web.try_get(st.url(path))
        tap.check(r.status == 200, "after it all, GET %s: 200" % path, r.summary())


def body(tap):
    tap.need([APP_BIN, STACK])
    with stack.started(tap, server="nginx", workers=WORKERS, name="hostile") as st:
        if not st:
            return
        pids = st.worker_pids()
        tap.check(len(pids) == WORKERS, "deploy/stack start: %d workers behind nginx "
                  "on port %d" % (WORKERS, st.port), "pids %s" % pids)
        run_table(tap, st, "nginx")
        check_long_query_fcgi(tap, st)
        # lighttpd in nginx's place, in front of the same pool.
        st.call("front", "stop")
        st.server = "lighttpd"
        st.call("front", "start")
        run_table(tap, st, "lighttpd")
        check_workers(tap, st, pids)


if __name__ == "__main__":
    main(body, deadline=300)
