/*
 * test_status.c: the status page (spawn/supervisor/status.c): which format a
 * request asks for, the listen queue as the kernel reports it, the page
 * rendered from a scoreboard in each format, the FastCGI server's answers to
 * good, half and hostile requests, and the command's client against it.
 */
#include "../../../spawn/supervisor/status.c"

#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
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
    is_int(status_format_of("jsonx&fullness", NULL, &full), STATUS_TEXT,
           "?jsonx&fullness: neither");
    is_int(full, 0, "  and not full");
    is_int(status_format_of("prometheus", NULL, &full), STATUS_PROMETHEUS,
           "?prometheus");
    is_int(
        status_format_of("", "text/plain;version=0.0.4;q=0.3,*/*;q=0.1", &full),
        STATUS_PROMETHEUS, "Prometheus' own Accept");
    is_int(status_format_of("", "application/openmetrics-text; version=1.0.0",
                            &full),
           STATUS_PROMETHEUS, "an OpenMetrics Accept");
    is_int(status_format_of("json", "text/plain;version=0.0.4", &full),
           STATUS_PROMETHEUS, "a scraper's Accept wins over ?json");
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
        q = listen_queue(lfd, &len);
        ok(q == 0 && len == 17, "%s: empty, its length the backlog (%u, %u)",
           name, q, len);
        for (i = 0; i < 3; i++)
            c[i] = connect_to(lfd);
        q = listen_queue(lfd, &len);
        ok(q == 3 && len == 17, "%s: three connections wait (%u of %u)", name,
           q, len);
        close(accept(lfd, NULL, NULL));
        is_int(listen_queue(lfd, &len), 2, "one accepted: two wait");
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

static void
test_render(void)
{
    struct scoreboard *sb = board();
    struct status_info info = {"poolA", -1, 4096, sb};
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
               jget(j, "accepted conn") == 1,
           "json: php-fpm's keys and values");
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

/* answer: what the server sent before it closed or went quiet (0.2 s:
 * well within its 2 s deadline between requests). */
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

/* serving: a child serving one connection; our end in sv[0]. */
static pid_t
serving(const struct status_info *info, unsigned char *buf, int sv[2])
{
    pid_t pid;

    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    if ((pid = fork()) == 0) {
        close(sv[0]);
        one(sv[1], info, buf);
        _exit(0);
    }
    close(sv[1]);
    return pid;
}

static void
test_serve(void)
{
    struct scoreboard *sb = board();
    struct status_info info = {"p", -1, 0, sb};
    static unsigned char buf[REQUEST_MAX + 1];
    unsigned char req[512], got[65536];
    int sv[2], status;
    size_t n, m;
    int64_t t0;
    pid_t pid;

    if (sb == NULL) {
        ok(0, "sb_create: %s", strerror(errno));
        return;
    }
    /* A whole request, kept: the page, then the next one on the same
     * connection; GET_VALUES between them is answered. */
    pid = serving(&info, buf, sv);
    n = request(req, "json", 1);
    write_all(sv[0], req, n);
    m = answer(sv[0], got, sizeof(got));
    ok(m > 16 && memmem(got, m, "application/json", 16) &&
           memmem(got, m, "\"pool\":\"p\"", 10) &&
           memcmp(got + m - 16, "\1\3\0\1\0\10\0\0", 8) == 0,
       "a kept request: the JSON page, then FCGI_END_REQUEST (%zu bytes)", m);
    write_all(sv[0], "\1\11\0\0\0\0\0\0", 8);
    m = answer(sv[0], got, sizeof(got));
    ok(m >= 8 && got[1] == 10, "FCGI_GET_VALUES: a GET_VALUES_RESULT");
    n = request(req, "", 0);
    write_all(sv[0], req, n);
    m = answer(sv[0], got, sizeof(got));
    ok(m > 16 && memmem(got, m, "pool:", 5) != NULL,
       "the next request on the connection: the text page");
    ok(closed(sv[0], 500), "not kept: closed after it");
    close(sv[0]);
    waitpid(pid, &status, 0);

    /* Half a request: the connection is dropped at the read deadline. */
    pid = serving(&info, buf, sv);
    n = request(req, "json", 0);
    write_all(sv[0], req, n - 20);
    t0 = sb_now_ns();
    ok(closed(sv[0], READ_DEADLINE_MS + 1000),
       "half a request: closed, without an answer");
    m = (size_t)((sb_now_ns() - t0) / 1000000);
    ok(m + 200 >= READ_DEADLINE_MS && m <= READ_DEADLINE_MS + 500,
       "  at the read deadline (%zu ms)", m);
    close(sv[0]);
    waitpid(pid, &status, 0);

    /* Hostile bytes: closed at once. */
    pid = serving(&info, buf, sv);
    write_all(sv[0], "GET /status HTTP/1.1\r\n\r\n", 24);
    ok(closed(sv[0], 500), "HTTP instead of FastCGI: closed at once");
    close(sv[0]);
    waitpid(pid, &status, 0);
    sb_free(sb);
}

/* test_fetch: the command's client against a status process. */
static void
test_fetch(void)
{
    struct scoreboard *sb = board();
    struct status_info info = {"fetched", -1, 0, sb};
    char path[64], out[64], err[256], page[8192];
    int lfd, fd, saved, rc;
    ssize_t n = 0;
    pid_t pid;
    FILE *f;

    snprintf(path, sizeof(path), "/tmp/test_status.%ld.s", (long)getpid());
    snprintf(out, sizeof(out), "/tmp/test_status.%ld.out", (long)getpid());
    if (sb == NULL || (lfd = listener(path, 8)) == -1) {
        ok(0, "a scoreboard and a socket: %s", strerror(errno));
        return;
    }
    if ((pid = fork()) == 0)
        status_serve(lfd, &info);
    close(lfd);
    fflush(stdout);
    saved = dup(STDOUT_FILENO);
    fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, STDOUT_FILENO);
    close(fd);
    rc = status_fetch(path, "prometheus", err, sizeof(err));
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
           strstr(page, "pool=\"fetched\"") != NULL &&
           strstr(page, "\r\n") == NULL,
       "  in the format asked for, without the CGI headers");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    ok(status_fetch(path, "", err, sizeof(err)) == -1 &&
           strstr(err, path) != NULL,
       "no status process: an error naming the socket (%s)", err);
    unlink(path);
    unlink(out);
    sb_free(sb);
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    test_format();
    test_queue();
    test_render();
    test_serve();
    test_fetch();
    return done_testing();
}
