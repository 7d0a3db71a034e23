/*
 * test_status.c: the status page (spawn/supervisor/status.c): which format a
 * request asks for, the listen queue as the kernel reports it, the page
 * rendered from a scoreboard in each format, the FastCGI server's answers to
 * good, half and hostile requests, and the command's client against it.
 */
#include "../../../spawn/supervisor/page.c"
#include "../../../spawn/supervisor/status.c"

#include <arpa/inet.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "harness.h"
#include "scoreboard.h"

static void
test_format(void)
{
    int full = -1;

    is_int(status_format_of("", NULL, &full), STATUS_TEXT, "no query: text");
    is_int(full, 0, "  and not full");
    is_int(status_format_of("json", "*/*", &full), STATUS_JSON, "?json");
    is_int(status_format_of("full", NULL, &full), STATUS_TEXT, "?full: text");
    is_int(full, 1, "  and full");
    is_int(status_format_of("json&full", NULL, &full), STATUS_JSON,
           "?json&full: json");
    is_int(full, 1, "  and full");
    is_int(status_format_of("full=1&json=", NULL, &full), STATUS_JSON,
           "?full=1&json=: json, full");
    is_int(status_format_of("jsonx&full", NULL, &full), STATUS_BAD,
           "?jsonx&full: a word it does not know: 400, no text page");
    is_int(status_format_of("xml", NULL, &full), STATUS_BAD, "?xml: 400");
    is_int(status_format_of("json&html", NULL, &full), STATUS_BAD,
           "?json&html: two formats: 400");
    is_int(status_format_of("json&json", NULL, &full), STATUS_JSON,
           "?json&json: one format, twice");
    is_int(status_format_of("html", NULL, &full), STATUS_HTML, "?html");
    is_int(status_format_of("openmetrics&full", NULL, &full),
           STATUS_OPENMETRICS, "?openmetrics&full");
    is_int(full, 1, "  and full");
    is_int(status_format_of("top", NULL, &full), STATUS_TOP, "?top");
    is_int(status_format_of("ping", NULL, &full), STATUS_PING, "?ping");
    is_int(status_format_of("&&", NULL, &full), STATUS_TEXT,
           "empty words: text");
    is_int(status_format_of("prometheus", NULL, &full), STATUS_PROMETHEUS,
           "?prometheus");
    is_int(
        status_format_of("", "text/plain;version=0.0.4;q=0.3,*/*;q=0.1", &full),
        STATUS_PROMETHEUS, "Prometheus' own Accept");
    is_int(status_format_of("", "application/openmetrics-text; version=1.0.0",
                            &full),
           STATUS_OPENMETRICS, "an OpenMetrics Accept");
    is_int(status_format_of("",
                            "application/openmetrics-text;version=1.0.0,"
                            "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                            &full),
           STATUS_OPENMETRICS, "Prometheus' own Accept: OpenMetrics");
    is_int(status_format_of("json", "text/plain;version=0.0.4", &full),
           STATUS_JSON, "?json wins over a scraper's Accept");
}

/* listener: a listening socket, unix (path) or TCP on loopback. */
static int
listener(const char *path, int backlog)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct sockaddr_in sin = {.sin_family = AF_INET};
    int fd;

    if (path != NULL) {
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
        unlink(path);
        if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
            return -1;
    } else {
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
            return -1;
    }
    return listen(fd, backlog) == 0 ? fd : -1;
}

static int
connect_to(int lfd)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof(sa);
    int fd;

    if (getsockname(lfd, (struct sockaddr *)&sa, &len) == -1)
        return -1;
    fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(fd, (struct sockaddr *)&sa, len) == -1) {
        close(fd);
        return -1;
    }
    return fd;
}

static void
test_queue(void)
{
    char path[64];
    unsigned len = 0, q;
    int kinds, lfd, c[3], i;

    snprintf(path, sizeof(path), "/tmp/test_status.%ld.q", (long)getpid());
    for (kinds = 0; kinds < 2; kinds++) {
        const char *name = kinds == 0 ? "unix" : "tcp";

        if ((lfd = listener(kinds == 0 ? path : NULL, 17)) == -1) {
            ok(0, "%s: a listening socket: %s", name, strerror(errno));
            continue;
        }
        q = listener_queue(lfd, &len);
        ok(q == 0 && len == 17, "%s: empty, its length the backlog (%u, %u)",
           name, q, len);
        for (i = 0; i < 3; i++)
            c[i] = connect_to(lfd);
        q = listener_queue(lfd, &len);
        ok(q == 3 && len == 17, "%s: three connections wait (%u of %u)", name,
           q, len);
        close(accept(lfd, NULL, NULL));
        is_int(listener_queue(lfd, &len), 2, "one accepted: two wait");
        for (i = 0; i < 3; i++)
            close(c[i]);
        close(lfd);
    }
    unlink(path);
}

/*
 * A scoreboard of four slots: a worker idle after two requests (a 200 and
 * a 404), one in the database on /db, one starting, one empty.
 */
static struct scoreboard *
board(void)
{
    struct scoreboard *sb = sb_create(4);
    int64_t now = sb_now_ns();

    if (sb == NULL)
        return NULL;
    sb_slot_reset(sb_slot(sb, 0), SB_IDLE, now);
    sb_set_pid(sb_slot(sb, 0), getpid());
    sb_request_begin(sb_slot(sb, 0), now - 1000000, "/json", 5);
    sb_request_end(sb_slot(sb, 0), 200, 0);
    sb_request_begin(sb_slot(sb, 0), 0, "/nope", 5);
    sb_request_end(sb_slot(sb, 0), 404, 1);
    sb_accepted(sb_slot(sb, 0));
    sb_slot_reset(sb_slot(sb, 1), SB_IDLE, now);
    sb_set_pid(sb_slot(sb, 1), getppid());
    sb_request_begin(sb_slot(sb, 1), 0, "/db", 3);
    sb_phase(sb_slot(sb, 1), SB_DATABASE);
    sb_reconnected(sb_slot(sb, 1));
    sb_slot_reset(sb_slot(sb, 2), SB_STARTING, now);
    sb_set_pid(sb_slot(sb, 2), 1);
    return sb;
}

static char *
render(struct status_info *info, enum status_format fmt, int full,
       const char **type)
{
    char *out = NULL;
    size_t len = 0;

    if (status_render(info, fmt, full, &out, &len, type) == -1)
        return NULL;
    ok(strlen(out) == len, "the page's length is its size (%zu)", len);
    return out;
}

static int64_t
jget(json_object *o, const char *key)
{
    json_object *v;

    return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v)
                                                 : -1;
}

/*
 * test_size: the pool's size as the supervisor reports it (pm.h): the
 * mode, the target, the workers seen and the last change's reason, in
 * one line of each format; without a report, a static pool.
 */
static void
test_size(void)
{
    struct scoreboard *sb = board();
    struct pm_report report;
    struct pm_view v = {PM_AUTO, 8, 0, 1, 64, 4, 0, "requests wait: \"x\""};
    struct status_info info = {"poolA", -1, 4096, sb, NULL};
    json_object *j, *o;
    const char *type;
    char *page;

    if (sb == NULL) {
        ok(0, "sb_create: %s", strerror(errno));
        return;
    }
    page = render(&info, STATUS_TEXT, 0, &type);
    ok(page != NULL && strstr(page, "process manager:      static\n") &&
           strstr(page, "pool size:            3 workers, wanted 3 (static); "
                        "no change yet\n"),
       "no report: a static pool of the workers seen");
    free(page);
    v.changed_unix = (int64_t)time(NULL) - 5;
    memset(&report, 0, sizeof(report));
    pm_report_write(&report, &v);
    info.size = &report;
    page = render(&info, STATUS_TEXT, 0, &type);
    ok(page != NULL && strstr(page, "process manager:      auto\n") &&
           strstr(page, "pool size:            3 workers, wanted 8 (auto, "
                        "1..64); 4 -> 8 5 s ago: requests wait: \"x\"\n"),
       "text: the mode, and the size in one line: the workers seen, the "
       "target, the last change and why");
    free(page);
    page = render(&info, STATUS_JSON, 0, &type);
    j = page != NULL ? json_tokener_parse(page) : NULL;
    ok(j != NULL && jget(j, "target processes") == 8 &&
           json_object_object_get_ex(j, "pool size", &o) &&
           strstr(json_object_get_string(o), "4 -> 8 5 s ago: requests wait: "
                                             "\"x\"") != NULL &&
           json_object_object_get_ex(j, "process manager", &o) &&
           strcmp(json_object_get_string(o), "auto") == 0,
       "json: process manager, pool size, target processes");
    if (j != NULL)
        json_object_put(j);
    free(page);
    page = render(&info, STATUS_PROMETHEUS, 0, &type);
    ok(page != NULL &&
           strstr(page, "tfb_pool_target_processes{pool=\"poolA\",pm=\"auto\","
                        "current=\"3\",why=\"requests wait: \\\"x\\\"\"} "
                        "8\n"),
       "prometheus: the target, the current count and why, one line");
    free(page);
    sb_free(sb);
}

static void
test_render(void)
{
    struct scoreboard *sb = board();
    struct status_info info = {"poolA", -1, 4096, sb, NULL};
    json_object *j, *ws, *w, *ph;
    const char *type;
    char *page;

    if (sb == NULL) {
        ok(0, "sb_create: %s", strerror(errno));
        return;
    }
    page = render(&info, STATUS_TEXT, 0, &type);
    ok(page != NULL && strstr(type, "text/plain") == type,
       "text: text/plain (%s)", type);
    ok(page != NULL && strstr(page, "pool:                 poolA\n") &&
           strstr(page, "idle processes:       2\n") &&
           strstr(page, "reading seconds:      0.001") &&
           strstr(page, "active processes:     1\n") &&
           strstr(page, "total processes:      3\n") &&
           strstr(page, "requests:             2\n") &&
           strstr(page, "slow requests:        1\n") &&
           strstr(page, "responses 4xx:        1\n") &&
           strstr(page, "db reconnects:        1\n") &&
           strstr(page, "listen queue len:     4096\n") &&
           !strstr(page, "pid:"),
       "text: php-fpm's fields, counted over the slots, no worker blocks");
    free(page);
    page = render(&info, STATUS_TEXT, 1, &type);
    ok(page != NULL && strstr(page, "state:                Database\n") &&
           strstr(page, "route:                /db\n") &&
           strstr(page, "state:                Starting\n"),
       "text, full: a block per worker, with its state and route");
    free(page);

    page = render(&info, STATUS_JSON, 1, &type);
    j = page != NULL ? json_tokener_parse(page) : NULL;
    ok(j != NULL && strcmp(type, "application/json") == 0,
       "json: parses, application/json");
    if (j != NULL) {
        ok(jget(j, "total processes") == 3 &&
               jget(j, "active processes") == 1 && jget(j, "requests") == 2 &&
               jget(j, "accepted conn") == 2 &&
               jget(j, "fastcgi connections") == 1,
           "json: php-fpm's keys and values: accepted conn counts requests, "
           "fastcgi connections the connections");
        ok(json_object_object_get_ex(j, "processes", &ws) &&
               json_object_array_length(ws) == 3,
           "json, full: three processes");
        w = json_object_array_get_idx(ws, 0);
        ok(w != NULL && jget(w, "pid") == getpid() &&
               jget(w, "requests") == 2 && jget(w, "rss kb") > 0,
           "json, full: the first worker's pid, requests and memory");
        ok(w != NULL && json_object_object_get_ex(w, "last request us", &ph) &&
               jget(ph, "reading") >= 0 && jget(ph, "writing") >= 0,
           "json, full: its last request's phases");
        json_object_put(j);
    }
    free(page);

    page = render(&info, STATUS_PROMETHEUS, 1, &type);
    ok(page != NULL && strstr(type, "version=0.0.4") != NULL,
       "prometheus: the 0.0.4 text format (%s)", type);
    ok(page != NULL &&
           strstr(page, "# TYPE tfb_pool_requests_total counter\n"
                        "tfb_pool_requests_total{pool=\"poolA\"} 2\n") &&
           strstr(page, "tfb_pool_processes{pool=\"poolA\",state=\"active\"} "
                        "1\n") &&
           strstr(page, "tfb_pool_responses_total{pool=\"poolA\",class="
                        "\"4xx\"} 1\n"),
       "prometheus: counters and gauges, labelled with the pool");
    ok(page != NULL && page[strlen(page) - 1] == '\n',
       "prometheus: the last line ends");
    free(page);
    sb_free(sb);
}

/* The records of a request, built by hand. */
static size_t
request(unsigned char *out, const char *query, int keep)
{
    unsigned char pairs[256];
    size_t n = 0, p;

    p = wire_put_pair(pairs, "REQUEST_METHOD", "GET");
    p += wire_put_pair(pairs + p, "QUERY_STRING", query);
    memcpy(out, "\1\1\0\1\0\10\0\0\0\1\0\0\0\0\0\0", 16);
    out[10] = (unsigned char)keep;
    n = 16;
    memcpy(out + n, "\1\4\0\1\0\0\0\0", 8);
    out[n + 4] = (unsigned char)(p >> 8);
    out[n + 5] = (unsigned char)p;
    memcpy(out + n + 8, pairs, p);
    n += 8 + p;
    memcpy(out + n, "\1\4\0\1\0\0\0\0\1\5\0\1\0\0\0\0", 16);
    return n + 16;
}

static void
send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    ssize_t w;

    while (n > 0 && (w = send(fd, c, n, MSG_NOSIGNAL)) > 0) {
        c += w;
        n -= (size_t)w;
    }
}

/* answer: what the server sent before it closed or went quiet (0.2 s). */
static size_t
answer(int fd, unsigned char *buf, size_t cap)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    size_t n = 0;
    ssize_t r;

    while (n < cap && poll(&p, 1, 200) == 1 &&
           (r = read(fd, buf + n, cap - n)) > 0)
        n += (size_t)r;
    return n;
}

/* closed: the peer has closed its end (within ms): end of file, or a
 * reset when it closed with our bytes unread. */
static int
closed(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char c;

    return poll(&p, 1, ms) == 1 && read(fd, &c, 1) <= 0;
}

static int64_t
ms_since(int64_t t0)
{
    return (sb_now_ns() - t0) / 1000000;
}

/*
 * read_end: records up to FCGI_END_REQUEST, within ms.  Results: the
 * bytes read, or -1 when it did not come (closed, or late).
 */
static long
read_end(int fd, unsigned char *buf, size_t cap, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int64_t t0 = sb_now_ns();
    size_t n = 0, off = 0, rl;
    ssize_t r;

    for (;;) {
        while (n - off >= 8 &&
               n - off >= (rl = 8 + ((size_t)buf[off + 4] << 8 | buf[off + 5]) +
                                buf[off + 6])) {
            if (buf[off + 1] == WIRE_END_REQUEST)
                return (long)(off + rl);
            off += rl;
        }
        if (n == cap || ms_since(t0) >= ms ||
            poll(&p, 1, (int)(ms - ms_since(t0))) != 1 ||
            (r = read(fd, buf + n, cap - n)) <= 0)
            return -1;
        n += (size_t)r;
    }
}

/* dial: a connection to the status socket at path. */
static int
dial(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    if (fd != -1 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * page_us: a new client's wait for the whole page at path, from its
 * connect to FCGI_END_REQUEST, in microseconds; -1 when it does not come
 * within 1 s.
 */
static long
page_us(const char *path, const char *query)
{
    static unsigned char got[1 << 16];
    unsigned char req[512];
    int64_t t0 = sb_now_ns();
    int fd = dial(path);
    long n;

    if (fd == -1)
        return -1;
    send_all(fd, req, request(req, query, 0));
    n = read_end(fd, got, sizeof(got), 1000);
    close(fd);
    return n > 0 ? (long)((sb_now_ns() - t0) / 1000) : -1;
}

/* Where each test's status process listens. */
static char sock[64];

/* start: a status process on sock for info, with the budget as the test
 * set it. */
static pid_t
start(const struct status_info *info)
{
    int lfd;
    pid_t pid;

    snprintf(sock, sizeof(sock), "/tmp/test_status.%ld.s", (long)getpid());
    if ((lfd = listener(sock, 64)) == -1)
        return -1;
    fflush(stdout);
    if ((pid = fork()) == 0) {
        /* Gone with the test, even when it dies half way. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        status_serve(lfd, info);
    }
    close(lfd);
    return pid;
}

static void
stop(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    unlink(sock);
}

static const struct status_budget defaults = {CLIENTS_MAX, 2000, 2000, 2000,
                                              10000};

/* test_serve: one client's requests: good, half and hostile. */
static void
test_serve(struct status_info *info)
{
    unsigned char req[512], got[65536];
    int fd;
    size_t n, m;
    int64_t t0;
    pid_t pid;

    budget = defaults;
    budget.read_ms = 500;
    if ((pid = start(info)) == -1 || (fd = dial(sock)) == -1) {
        ok(0, "a status process: %s", strerror(errno));
        stop(pid);
        return;
    }
    /* A whole request, kept: the page, then the next one on the same
     * connection; GET_VALUES between them is answered. */
    n = request(req, "json", 1);
    send_all(fd, req, n);
    m = answer(fd, got, sizeof(got));
    ok(m > 16 && memmem(got, m, "application/json", 16) &&
           memmem(got, m, "\"pool\":\"p\"", 10) &&
           memcmp(got + m - 16, "\1\3\0\1\0\10\0\0", 8) == 0,
       "a kept request: the JSON page, then FCGI_END_REQUEST (%zu bytes)", m);
    send_all(fd, "\1\11\0\0\0\0\0\0", 8);
    m = answer(fd, got, sizeof(got));
    ok(m >= 8 && got[1] == 10, "FCGI_GET_VALUES: a GET_VALUES_RESULT");
    n = request(req, "", 0);
    send_all(fd, req, n);
    m = answer(fd, got, sizeof(got));
    ok(m > 16 && memmem(got, m, "pool:", 5) != NULL,
       "the next request on the connection: the text page");
    ok(closed(fd, 500), "not kept: closed after it");
    close(fd);

    /* Half a request: the connection is dropped at the read deadline. */
    fd = dial(sock);
    n = request(req, "json", 0);
    send_all(fd, req, n - 20);
    t0 = sb_now_ns();
    ok(closed(fd, budget.read_ms + 1000),
       "half a request: closed, without an answer");
    m = (size_t)ms_since(t0);
    ok(m + 100 >= (size_t)budget.read_ms && m <= (size_t)budget.read_ms + 300,
       "  at the read deadline (%zu ms of %d)", m, budget.read_ms);
    close(fd);

    /* Hostile bytes: closed at once. */
    fd = dial(sock);
    send_all(fd, "GET /status HTTP/1.1\r\n\r\n", 24);
    ok(closed(fd, 500), "HTTP instead of FastCGI: closed at once");
    close(fd);
    stop(pid);
}

/*
 * test_others: while one client holds a connection open, sends half a
 * request, asks in a loop on a kept connection, or never reads what it
 * asked for, another is answered in under 100 ms.
 */
static void
test_others(struct status_info *info)
{
    static unsigned char req[500 * 128], got[1 << 16];
    long worst = 0, t;
    size_t n, one;
    int a, i;
    pid_t pid;

    budget = defaults;
    if ((pid = start(info)) == -1) {
        ok(0, "a status process: %s", strerror(errno));
        return;
    }
    a = dial(sock);
    t = page_us(sock, "json");
    ok(t >= 0 && t < 100000,
       "a client that holds a connection and says nothing: another is "
       "answered in %.1f ms",
       t / 1e3);
    close(a);

    a = dial(sock);
    send_all(a, req, request(req, "json", 0) - 20);
    t = page_us(sock, "");
    ok(t >= 0 && t < 100000,
       "a client half way through a request: another is answered in %.1f ms",
       t / 1e3);
    close(a);

    /* Kept, asking again the moment each answer comes. */
    a = dial(sock);
    one = request(req, "full", 1);
    for (i = 0; i < 10; i++) {
        send_all(a, req, one);
        if (read_end(a, got, sizeof(got), 1000) <= 0)
            break;
        t = page_us(sock, "json");
        worst = t < 0 || worst < 0 ? -1 : t > worst ? t : worst;
    }
    ok(i == 10 && worst >= 0 && worst < 100000,
       "a client asking in a loop on a kept connection (%d answers): "
       "another is answered in %.1f ms at worst",
       i, worst / 1e3);
    close(a);

    /* 500 kept requests at once, the answers never read. */
    a = dial(sock);
    for (n = 0, i = 0; i < 500; i++) {
        assert(n + 128 <= sizeof(req));
        n += request(req + n, "json&full", 1);
    }
    send_all(a, req, n);
    usleep(100000);
    t = page_us(sock, "json");
    ok(t >= 0 && t < 100000,
       "a client that never reads its answers: another is answered in "
       "%.1f ms",
       t / 1e3);
    close(a);
    stop(pid);
}

/* quiet: nothing comes on fd, not even its end, for ms. */
static int
quiet(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};

    return poll(&p, 1, ms) == 0;
}

/* drained: read fd to its end within ms.  Results: the bytes read, or
 * -1 when it did not end. */
static long
drained(int fd, int ms)
{
    static unsigned char buf[1 << 16];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int64_t t0 = sb_now_ns();
    long n = 0;
    ssize_t r;

    while (ms_since(t0) < ms && poll(&p, 1, (int)(ms - ms_since(t0))) == 1) {
        if ((r = read(fd, buf, sizeof(buf))) <= 0)
            return n;
        n += r;
    }
    return -1;
}

/* test_budget: each deadline of a client. */
static void
test_budget(struct status_info *info)
{
    static unsigned char req[500 * 128], got[1 << 16];
    int a[3], i, answers;
    size_t n, one;
    long t, all;
    int64_t t0;
    pid_t pid;

    budget = defaults;
    budget.clients = 3;
    budget.idle_ms = 300;
    budget.read_ms = 600;
    budget.write_ms = 500;
    budget.lifetime_ms = 500;
    if ((pid = start(info)) == -1) {
        ok(0, "a status process: %s", strerror(errno));
        return;
    }
    t0 = sb_now_ns();
    a[0] = dial(sock);
    i = closed(a[0], 1000);
    t = (long)ms_since(t0);
    ok(i && t >= 250 && t < 700,
       "a connection that says nothing: closed at the idle deadline (%ld ms "
       "of %d)",
       t, budget.idle_ms);
    close(a[0]);

    /* A byte every 100 ms: the read deadline runs from the first. */
    a[0] = dial(sock);
    n = request(req, "json", 0);
    send_all(a[0], req, 1);
    t0 = sb_now_ns();
    for (i = 1; i < (int)n && quiet(a[0], 100); i++)
        send_all(a[0], req + i, 1);
    t = (long)ms_since(t0);
    ok(i < (int)n && t >= 550 && t < 900,
       "a request a byte every 100 ms: closed at the read deadline from its "
       "first byte (%ld ms of %d, %d bytes)",
       t, budget.read_ms, i);
    close(a[0]);

    /* Kept, asking every 100 ms: no request begins past its lifetime. */
    a[0] = dial(sock);
    one = request(req, "", 1);
    t0 = sb_now_ns();
    for (answers = 0; answers < 20; answers++) {
        send_all(a[0], req, one);
        if (read_end(a[0], got, sizeof(got), 500) <= 0)
            break;
        if (!quiet(a[0], 100)) {
            answers++;
            break;
        }
    }
    t = (long)ms_since(t0);
    ok(answers >= 5 && answers < 20 && closed(a[0], 100) && t >= 500 && t < 900,
       "a kept connection asking every 100 ms: closed once %d ms old "
       "(%d answers, %ld ms)",
       budget.lifetime_ms, answers, t);
    close(a[0]);

    /* 500 requests whose answers are never read: closed at the write
     * deadline, long before they are all written. */
    a[0] = dial(sock);
    for (n = 0, i = 0; i < 500; i++) {
        assert(n + 128 <= sizeof(req));
        n += request(req + n, "json&full", 1);
    }
    send_all(a[0], req, n);
    usleep((useconds_t)(budget.write_ms + 300) * 1000);
    all = drained(a[0], 500);
    ok(all >= 0 && all < 500 * 1000,
       "a client that never reads: closed at the write deadline (%ld bytes "
       "of its answers sent)",
       all);
    close(a[0]);
    stop(pid);
}

/*
 * test_places: three places, taken by two half requests and one idle
 * connection: a fourth takes the idle one's place, at once.
 */
static void
test_places(struct status_info *info)
{
    unsigned char req[512];
    int a[3], i;
    size_t n;
    long t;
    pid_t pid;

    budget = defaults;
    budget.clients = 3;
    if ((pid = start(info)) == -1) {
        ok(0, "a status process: %s", strerror(errno));
        return;
    }
    n = request(req, "json", 0);
    for (i = 0; i < 3; i++) {
        a[i] = dial(sock);
        if (i < 2)
            send_all(a[i], req, n - 20);
        usleep(30000);
    }
    t = page_us(sock, "json");
    ok(t >= 0 && t < 100000,
       "all places taken: a new client is answered in %.1f ms", t / 1e3);
    ok(closed(a[2], 100) && quiet(a[0], 50) && quiet(a[1], 50),
       "  in the place of the idle connection, not of those reading");
    for (i = 0; i < 3; i++)
        close(a[i]);
    stop(pid);
}

/*
 * test_escape: what a worker wrote (a route from a client) cannot plant a
 * line or break a string in any format.
 */
static void
test_escape(void)
{
    static const char route[] = "/a\nidle processes: 999 \\ \"q\" \1\xc2\x85";
    struct scoreboard *sb = sb_create(1);
    struct status_info info = {"p\"o\\o\nl", -1, 0, sb, NULL};
    json_object *j, *ws, *r;
    const char *type;
    char *page;

    if (sb == NULL) {
        ok(0, "sb_create: %s", strerror(errno));
        return;
    }
    sb_slot_reset(sb_slot(sb, 0), SB_IDLE, sb_now_ns());
    sb_set_pid(sb_slot(sb, 0), getpid());
    sb_request_begin(sb_slot(sb, 0), 0, route, strlen(route));
    sb_request_end(sb_slot(sb, 0), 200, 0);

    page = render(&info, STATUS_TEXT, 1, &type);
    ok(page != NULL && strstr(page, "\nidle processes: 999") == NULL &&
           strstr(page, "\nl\n") == NULL,
       "text: a newline in a route or the pool's name starts no line");
    ok(page != NULL &&
           strstr(page, "route:                /a\\nidle processes: 999 \\\\ "
                        "\"q\" \\x01\\xc2\\x85\n") != NULL &&
           strstr(page, "pool:                 p\"o\\\\o\\nl\n") != NULL,
       "text: \\n, \\\\, control and non-ASCII bytes escaped");
    free(page);

    page = render(&info, STATUS_JSON, 1, &type);
    j = page != NULL ? json_tokener_parse(page) : NULL;
    ok(j != NULL && json_object_object_get_ex(j, "processes", &ws) &&
           json_object_object_get_ex(json_object_array_get_idx(ws, 0), "route",
                                     &r) &&
           strncmp(json_object_get_string(r), route, 27) == 0,
       "json: parses, the route intact in its string");
    if (j != NULL)
        json_object_put(j);
    free(page);

    page = render(&info, STATUS_PROMETHEUS, 1, &type);
    ok(page != NULL &&
           strstr(page, "tfb_pool_requests_total{pool=\"p\\\"o\\\\o\\nl\"} "
                        "1\n") != NULL &&
           strstr(page, "\nl\"") == NULL,
       "prometheus: the label value escaped (backslash, quote, newline)");
    free(page);

    sb_request_begin(sb_slot(sb, 0), 0, "/<script>x</script>&'", 21);
    sb_request_end(sb_slot(sb, 0), 200, 0);
    sb_db_down(sb_slot(sb, 0), "<img src=x onerror=alert(1)>", 28);
    page = render(&info, STATUS_HTML, 0, &type);
    ok(page != NULL && !strstr(page, "<script>x") && !strstr(page, "<img") &&
           strstr(page, "/&lt;script&gt;x&lt;/script&gt;&amp;&#39;") &&
           strstr(page, "&lt;img src=x onerror=alert(1)&gt;") &&
           strstr(page, "p&quot;o\\o&#xfffd;l"),
       "html: what a worker wrote and the pool's name as text, never markup");
    free(page);
    sb_free(sb);
}

/* render_code: status_render's page (NULL on failure) and status. */
static char *
render_code(struct status_info *info, enum status_format fmt, int full,
            int *code)
{
    const char *type;
    char *out = NULL;
    size_t len = 0;

    *code = status_render(info, fmt, full, &out, &len, &type);
    return *code == -1 ? NULL : out;
}

/* count_of: how many times needle is in hay. */
static int
count_of(const char *hay, const char *needle)
{
    int n = 0;

    while (hay != NULL && (hay = strstr(hay, needle)) != NULL) {
        n++;
        hay += strlen(needle);
    }
    return n;
}

/*
 * labelled_once: a board whose worker in slot 0 served 4 requests on /db
 * (0.6, 2, 30 and 400 ms, each well inside its bucket) and one on /json; its
 * database up.
 */
static struct scoreboard *
labelled_once(int64_t *worst_ns)
{
    static const int us[] = {600, 2000, 30000, 400000};
    struct scoreboard *sb = sb_create(2);
    struct sb_slot *s;
    int64_t t;
    size_t i;

    if (sb == NULL)
        return NULL;
    s = sb_slot(sb, 0);
    sb_slot_reset(s, SB_IDLE, sb_now_ns());
    sb_set_pid(s, getpid());
    *worst_ns = 0;
    for (i = 0; i < sizeof(us) / sizeof(us[0]); i++) {
        t = sb_now_ns();
        sb_request_begin(s, t - us[i] * 1000LL, "/db", 3);
        sb_request_label(s, "/db", 3);
        sb_request_end(s, 200, 0);
        if (sb_now_ns() - t > *worst_ns)
            *worst_ns = sb_now_ns() - t;
    }
    sb_request_begin(s, 0, "/json", 5);
    sb_request_label(s, "/json", 5);
    sb_request_end(s, 200, 0);
    sb_db_attempt(s);
    sb_db_up(s);
    sb_set_state(s, SB_IDLE);
    return sb;
}

/*
 * labelled: the same, made again while a request's own calls took long
 * enough to move it into the next bucket (a loaded machine preempts the
 * test between begin and end).
 */
static struct scoreboard *
labelled(void)
{
    struct scoreboard *sb;
    int64_t worst;
    int tries;

    for (tries = 0;; tries++) {
        if ((sb = labelled_once(&worst)) == NULL || worst < 300000 ||
            tries == 200)
            return sb;
        sb_free(sb);
    }
}

static void
test_metrics(void)
{
    struct scoreboard *sb = labelled();
    struct status_info info = {"m", -1, 0, sb, NULL};
    const char *type;
    char *page;
    int code;

    if (sb == NULL) {
        ok(0, "sb_create: %s", strerror(errno));
        return;
    }
    page = render(&info, STATUS_PROMETHEUS, 1, &type);
    ok(page != NULL &&
           strstr(page, "# TYPE tfb_request_duration_seconds histogram\n") &&
           strstr(page, "tfb_request_duration_seconds_bucket{pool=\"m\","
                        "route=\"/db\",le=\"0.001\"} 1\n") &&
           strstr(page, "tfb_request_duration_seconds_bucket{pool=\"m\","
                        "route=\"/db\",le=\"0.05\"} 3\n") &&
           strstr(page, "tfb_request_duration_seconds_bucket{pool=\"m\","
                        "route=\"/db\",le=\"+Inf\"} 4\n") &&
           strstr(page, "tfb_request_duration_seconds_count{pool=\"m\","
                        "route=\"/db\"} 4\n") &&
           strstr(page, "route=\"/json\",le=\"+Inf\"} 1\n"),
       "prometheus: a request-duration histogram per route, cumulative "
       "buckets, +Inf = count");
    ok(page != NULL &&
           count_of(page, "tfb_phase_duration_seconds_count{") == SB_PHASES &&
           strstr(page, "tfb_phase_duration_seconds_count{pool=\"m\",phase="
                        "\"reading\"} 5\n"),
       "prometheus: a histogram per phase");
    ok(page != NULL &&
           strstr(page,
                  "tfb_worker_requests_total{pool=\"m\",slot=\"0\"} 5\n") &&
           strstr(page, "tfb_worker_database_up{pool=\"m\",slot=\"0\"} 1\n") &&
           strstr(page, "tfb_worker_database_attempts_total{pool=\"m\",slot="
                        "\"0\"} 1\n") &&
           !strstr(page, "pid=\"") &&
           strstr(page, "tfb_pool_database_workers{pool=\"m\",state=\"up\"} "
                        "1\n") &&
           strstr(page, "tfb_pool_healthy{pool=\"m\"} 1\n"),
       "prometheus, full: per worker by slot, not pid; the database's state");
    ok(page != NULL && !strstr(page, "# EOF"), "prometheus: no # EOF");
    free(page);
    page = render(&info, STATUS_OPENMETRICS, 1, &type);
    ok(page != NULL && strstr(type, "application/openmetrics-text") == type,
       "openmetrics: its content type (%s)", type);
    ok(page != NULL &&
           strstr(page, "# TYPE tfb_pool_requests counter\n"
                        "tfb_pool_requests_total{pool=\"m\"} 5\n") &&
           strstr(page, "# HELP tfb_worker_database_attempts ") &&
           strstr(page, "# TYPE tfb_request_duration_seconds histogram\n"),
       "openmetrics: a counter's family named without _total, its sample "
       "with");
    ok(page != NULL && strlen(page) > 6 &&
           strcmp(page + strlen(page) - 6, "# EOF\n") == 0,
       "openmetrics: ends with # EOF");
    free(page);

    page = render_code(&info, STATUS_BAD, 0, &code);
    ok(code == 400 && page != NULL &&
           strstr(page, "json, html, prometheus, "
                        "openmetrics, top, ping"),
       "an unknown format: 400, listing the known ones");
    free(page);
    page = render_code(&info, STATUS_PING, 0, &code);
    is_int(code, 200, "ping: 200 with a worker idle and its database up");
    is_str(page,
           "ok: 1 of 1 workers can serve; database up (1 of 1 "
           "connected)\n",
           "  its one line");
    free(page);
    sb_db_down(sb_slot(sb, 0), "FATAL:\tdatabase \"x\" does not exist\n", 36);
    page = render_code(&info, STATUS_PING, 0, &code);
    is_int(code, 503, "ping: 503 with the database down");
    is_str(page,
           "fail: 1 of 1 workers can serve; database down: FATAL: "
           "database \"x\" does not exist\n",
           "  saying the database's own words");
    free(page);
    sb_db_up(sb_slot(sb, 0));
    sb_set_request_limit(sb, 40);
    sb_request_begin(sb_slot(sb, 0), 0, "/db", 3);
    sb_phase(sb_slot(sb, 0), SB_DATABASE);
    page = render_code(&info, STATUS_PING, 0, &code);
    is_int(code, 200, "ping: 200 with the worker serving a request");
    free(page);
    sleep_ms(25);
    page = render_code(&info, STATUS_PING, 0, &code);
    ok(code == 503 && page != NULL &&
           strncmp(page, "fail: 0 of 1 workers can serve (1 stuck)", 40) == 0,
       "ping: 503 with every worker stuck on a request for half the request "
       "time limit");
    free(page);
    sb_request_end(sb_slot(sb, 0), 200, 0);
    sb_set_request_limit(sb, 0);
    sb_slot_reset(sb_slot(sb, 0), SB_EMPTY, 0);
    page = render_code(&info, STATUS_PING, 0, &code);
    ok(code == 503 && page != NULL && strncmp(page, "fail: 0 of 0", 12) == 0,
       "ping: 503 with no worker");
    free(page);
    page = render(&info, STATUS_JSON, 0, &type);
    ok(page != NULL && strstr(page, "\"requests\":6,"),
       "the worker gone: the pool's counters keep its requests");
    free(page);
    sb_free(sb);
}

/* test_newest: the database's state is the workers' newest word on it. */
static void
test_newest(void)
{
    struct scoreboard *sb = sb_create(2);
    struct status_info info = {"n", -1, 0, sb, NULL};
    char *page;
    int i, code;

    if (sb == NULL) {
        ok(0, "sb_create: %s", strerror(errno));
        return;
    }
    for (i = 0; i < 2; i++) {
        sb_slot_reset(sb_slot(sb, i), SB_IDLE, sb_now_ns());
        sb_set_pid(sb_slot(sb, i), getpid());
        sb_db_up(sb_slot(sb, i));
    }
    sleep_ms(3);
    sb_db_down(sb_slot(sb, 1), "server closed the connection", 28);
    page = render_code(&info, STATUS_PING, 0, &code);
    ok(code == 503 && page != NULL &&
           strstr(page, "database down: server closed the connection\n"),
       "one worker up since its start, the other down since later: 503, "
       "the newer word wins (the first has not queried since)");
    free(page);
    sleep_ms(3);
    sb_db_up(sb_slot(sb, 1));
    page = render_code(&info, STATUS_PING, 0, &code);
    ok(code == 200 && page != NULL && strstr(page, "database up (2 of 2"),
       "that worker connected again: 200");
    free(page);
    sb_free(sb);
}

static void
test_rates(void)
{
    struct scoreboard *sb = labelled();
    struct status_info info = {"r", -1, 0, sb, NULL};
    struct sb_hist h = {{0}, 0};
    const char *type;
    char *page;
    int i;

    if (sb == NULL) {
        ok(0, "sb_create: %s", strerror(errno));
        return;
    }
    h.bucket[4] = 100; /* (500 us, 1 ms] */
    ok(quantile(&h, 0.5) == 750 && quantile(&h, 0.99) == 995,
       "quantile: linear within the bucket, as histogram_quantile");
    h.bucket[SB_BUCKETS - 1] = 1000;
    ok(quantile(&h, 0.99) == 10000000, "  the +Inf bucket: its lower bound");
    memset(&h, 0, sizeof(h));
    ok(quantile(&h, 0.5) == -1, "  none: unknown");

    history_len = history_next = 0;
    next_history_ns = 0;
    page = render(&info, STATUS_TEXT, 0, &type);
    ok(page != NULL && strstr(page, "requests per second:  -\n"),
       "no history yet: the rate is unknown");
    free(page);
    page_sample(&info, sb_now_ns() - 2000000000LL);
    for (i = 0; i < 10; i++) {
        sb_request_begin(sb_slot(sb, 0), 0, "/json", 5);
        sb_request_label(sb_slot(sb, 0), "/json", 5);
        sb_request_end(sb_slot(sb, 0), i < 4 ? 500 : 200, 0);
    }
    page = render(&info, STATUS_TEXT, 0, &type);
    ok(page != NULL && strstr(page, "requests per second:  5.0\n") &&
           strstr(page, "errors per second:    2.0\n"),
       "10 requests (4 of them 500s) since a sample 2 s ago: 5.0 requests/s, "
       "2.0 errors/s");
    free(page);
    page = render(&info, STATUS_JSON, 0, &type);
    ok(page != NULL && strstr(page, "\"requests per second\":5.0"),
       "  in JSON too");
    free(page);
    sb_free(sb);
}

/* lines_fit: every line of page within cols, and at most rows of them. */
static int
lines_fit(const char *page, int cols, int rows, int *nrows, int *widest)
{
    const char *p = page, *nl;

    *nrows = *widest = 0;
    while ((nl = strchr(p, '\n')) != NULL) {
        if (nl - p > *widest)
            *widest = (int)(nl - p);
        (*nrows)++;
        p = nl + 1;
    }
    return *nrows <= rows && *widest <= cols;
}

static void
test_views(void)
{
    struct scoreboard *sb = sb_create(40);
    struct status_info info = {"a-pool-with-a-long-name", -1, 0, sb, NULL};
    const char *type;
    char *page;
    int i, rows = 0, widest = 0;

    if (sb == NULL) {
        ok(0, "sb_create: %s", strerror(errno));
        return;
    }
    for (i = 0; i < 32; i++) {
        struct sb_slot *s = sb_slot(sb, i);

        sb_slot_reset(s, SB_IDLE, sb_now_ns());
        sb_set_pid(s, 4000000 + i);
        sb_request_begin(s, 0, "/queries?queries=20&more", 24);
        sb_request_label(s, "/queries", 8);
        if (i % 3 == 0)
            sb_phase(s, SB_DATABASE);
        else
            sb_request_end(s, 200, 0);
        sb_db_attempt(s);
        sb_db_down(s,
                   "connection to server failed: FATAL: a long message "
                   "that goes on and on past the end of any line",
                   95);
    }
    page = render(&info, STATUS_TOP, 0, &type);
    i = page != NULL && lines_fit(page, 80, 24, &rows, &widest);
    ok(i, "top, 32 workers: %d lines of %d columns at most fit 80x24", rows,
       widest);
    ok(page != NULL && count_of(page, " 40000") == 32 &&
           strstr(page, "req/s ") && strstr(page, "err/s "),
       "  every worker, and the rates");
    if (page != NULL && (rows > 24 || getenv("SHOW_TOP") != NULL))
        printf("%s", page);
    free(page);
    page = render(&info, STATUS_HTML, 0, &type);
    ok(page != NULL && strcmp(type, "text/html; charset=utf-8") == 0 &&
           count_of(page, "<tr class=\"worker\"") == 32 &&
           strstr(page, "<td class=\"l\">/queries</td>") &&
           strstr(page, "<script src=\"?js\"></script>") &&
           strstr(page, "<noscript><meta http-equiv=\"refresh\""),
       "html: a row per worker, the routes, its script and its fallback");
    free(page);
    page = render(&info, STATUS_JS, 0, &type);
    ok(page != NULL && strstr(type, "text/javascript") == type &&
           strstr(page, "getElementById('page')"),
       "js: the page's script");
    free(page);
    sb_free(sb);
}

/* test_fetch: the command's client against a status process. */
static void
test_fetch(struct status_info *info)
{
    char out[64], err[256], page[8192];
    int fd, saved, lfd, i, rc;
    int64_t t0;
    long t;
    ssize_t n = 0;
    pid_t pid;
    FILE *f;

    budget = defaults;
    snprintf(out, sizeof(out), "/tmp/test_status.%ld.out", (long)getpid());
    if ((pid = start(info)) == -1) {
        ok(0, "a status process: %s", strerror(errno));
        return;
    }
    fflush(stdout);
    saved = dup(STDOUT_FILENO);
    fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, STDOUT_FILENO);
    close(fd);
    rc = status_fetch(sock, "prometheus", err, sizeof(err));
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    /* Checked once stdout is ours again, so that its line is seen. */
    is_int(rc, 0, "status_fetch: the page");
    if ((f = fopen(out, "r")) != NULL) {
        n = (ssize_t)fread(page, 1, sizeof(page) - 1, f);
        fclose(f);
    }
    page[n > 0 ? n : 0] = '\0';
    ok(strstr(page, "# TYPE tfb_pool_requests_total counter") != NULL &&
           strstr(page, "pool=\"p\"") != NULL && strstr(page, "\r\n") == NULL,
       "  in the format asked for, without the CGI headers");
    stop(pid);
    ok(status_fetch(sock, "", err, sizeof(err)) == -1 &&
           strstr(err, sock) != NULL,
       "no status process: an error naming the socket (%s)", err);

    /* A socket nobody answers on: the command gives up at its deadline. */
    fetch_ms = 300;
    lfd = listener(sock, 8);
    t0 = sb_now_ns();
    i = status_fetch(sock, "", err, sizeof(err));
    t = (long)ms_since(t0);
    ok(i == -1 && strstr(err, "no answer within 300 ms") != NULL && t >= 300 &&
           t < 800,
       "a status socket that never answers: given up in %ld ms (%s)", t, err);
    fetch_ms = 5000;
    close(lfd);
    unlink(sock);
    unlink(out);
}

int
main(void)
{
    struct scoreboard *sb;
    struct status_info info = {"p", -1, 0, NULL, NULL};

    signal(SIGPIPE, SIG_IGN);
    test_format();
    test_queue();
    test_render();
    test_size();
    test_escape();
    test_metrics();
    test_newest();
    test_rates();
    test_views();
    if ((sb = board()) == NULL) {
        ok(0, "sb_create: %s", strerror(errno));
        return done_testing();
    }
    info.sb = sb;
    test_serve(&info);
    test_others(&info);
    test_budget(&info);
    test_places(&info);
    test_fetch(&info);
    sb_free(sb);
    return done_testing();
}
