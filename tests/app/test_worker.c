/*
 * test_worker.c: the responder's connection loop (app/worker.c).
 *
 * cgi_find() and request_target() on their own, then worker_run() for
 * real: in a forked child, on a listening socket made here (unix, or TCP
 * on 127.0.0.1 where a reset must be told from a close), answering a
 * FastCGI client written below (the records a front server sends, read
 * back up to FCGI_END_REQUEST).  /plaintext needs no database, so the
 * worker's handle points at a socket directory that does not exist and
 * never connects.  The worker reports to a scoreboard made here, which is
 * how the test knows when it waits, serves and leaves.
 *
 * Then the peers that once held a worker (issue 17), each with a bounded
 * time, each while a second client must be served in under 100 ms: a
 * peer that never reads its answers, a stream of records of a request
 * answered FCGI_UNKNOWN_ROLE without end, a request over --request-max
 * (413, then a clean close), 256 idle kept connections at --max-conns
 * 256, and management records answered faster than the peer reads.
 *
 * Last, a worker on a real database (pg.h's throwaway cluster) whose
 * server is stopped whole (SIGSTOP): the connection it makes again, for
 * its reads and for its writes, is made by its loop, step by step, and
 * a /plaintext is served in under 100 ms while it waits.
 */
#include "../../app/worker.c"

#include <fastcgi.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "harness.h"
#include "pg.h"

static char dir[] = "/tmp/test_worker.XXXXXX";
static char sock_path[96];
static int listen_fd = -1, tcp_fd = -1, tcp_port;
static struct scoreboard *sb;

static const char plaintext[] = "Status: 200 OK\r\n"
                                "Content-Type: text/plain\r\n"
                                "Content-Length: 13\r\n"
                                "\r\n"
                                "Hello, World!";

/* --- cgi_find, request_target ---------------------------------------- */

/* target_is: env ("NAME=value" strings) as FastCGI pairs, looked up. */
static void
target_is(const char *const *env, const char *path, const char *query,
          const char *name)
{
    unsigned char pairs[1024];
    char vals[1024 + 5], k[64];
    const char *p, *q, *eq;
    struct cgi cgi;
    size_t len, n = 0, i;

    for (i = 0; env[i] != NULL; i++) {
        eq = strchr(env[i], '=');
        snprintf(k, sizeof(k), "%.*s", (int)(eq - env[i]), env[i]);
        n += wire_put_pair(pairs + n, k, eq + 1);
    }
    cgi_find(pairs, n, vals, &cgi);
    request_target(&cgi, &p, &len, &q);
    ok(len == strlen(path) && strncmp(p, path, len) == 0 &&
           (query == NULL ? q == NULL : q != NULL && strcmp(q, query) == 0),
       "%s: path '%s', query %s%s%s", name, path, query ? "'" : "",
       query ? query : "none", query ? "'" : "");
}

static void
test_request_target(void)
{
    target_is((const char *const[]){"REQUEST_URI=/db", NULL}, "/db", NULL,
              "REQUEST_URI alone");
    target_is((const char *const[]){"REQUEST_URI=/queries?queries=7", NULL},
              "/queries", "queries=7", "the query from REQUEST_URI");
    target_is((const char *const[]){"REQUEST_URI=/queries?queries=7",
                                    "QUERY_STRING=queries=3", NULL},
              "/queries", "queries=3", "QUERY_STRING wins over the URI's");
    target_is((const char *const[]){"REQUEST_URI=/queries?queries=7",
                                    "QUERY_STRING=", NULL},
              "/queries", "", "an empty QUERY_STRING still wins");
    target_is((const char *const[]){"REQUEST_URI=/db?", NULL}, "/db", "",
              "a bare '?': an empty query");
    target_is((const char *const[]){"REQUEST_URI=/a?b?c", NULL}, "/a", "b?c",
              "the first '?' splits");
    target_is((const char *const[]){"DOCUMENT_URI=/json",
                                    "SCRIPT_NAME=/fortunes", NULL},
              "/json", NULL, "no REQUEST_URI: DOCUMENT_URI");
    target_is((const char *const[]){"REQUEST_URI=/plaintext",
                                    "DOCUMENT_URI=/json", NULL},
              "/plaintext", NULL, "REQUEST_URI wins over DOCUMENT_URI");
    target_is((const char *const[]){"SCRIPT_NAME=/fortunes", "QUERY_STRING=x=1",
                                    NULL},
              "/fortunes", "x=1", "then SCRIPT_NAME");
    target_is((const char *const[]){"QUERY_STRING=queries=2", NULL}, "",
              "queries=2", "no path at all: empty");
    target_is((const char *const[]){NULL}, "", NULL, "nothing at all");
    target_is((const char *const[]){"REQUEST_URI=/json", "REQUEST_URI=/db",
                                    "QUERY_STRING=a", "QUERY_STRING=b", NULL},
              "/json", "a", "a name sent twice: the first wins");
    target_is((const char *const[]){"HTTP_REQUEST_URI=/x", "REQUEST_UR=/y",
                                    "SCRIPT_NAME=/z", NULL},
              "/z", NULL, "only the whole name matches");
}

static void
test_cgi_find(void)
{
    unsigned char pairs[256];
    char vals[256 + 5];
    struct cgi cgi;
    size_t n = 0;

    n += wire_put_pair(pairs + n, "REQUEST_METHOD", "HEAD");
    n += wire_put_pair(pairs + n, "HTTP_HOST", "x");
    n += wire_put_pair(pairs + n, "QUERY_STRING", "");
    cgi_find(pairs, n, vals, &cgi);
    ok(cgi.method != NULL && strcmp(cgi.method, "HEAD") == 0 &&
           cgi.query != NULL && *cgi.query == '\0' && cgi.uri == NULL,
       "cgi_find: the method, an empty query (sent), no URI (not sent)");
    /* A pair cut by the end: what comes before it is found. */
    pairs[n++] = 11;
    pairs[n++] = 100;
    memcpy(pairs + n, "REQUEST_URI/db", 14);
    cgi_find(pairs, n + 14, vals, &cgi);
    ok(cgi.method != NULL && cgi.uri == NULL,
       "cgi_find: a pair longer than what is left is not read");
}

/* --- a FastCGI client ----------------------------------------------- */

/* xfer: all of len bytes written to fd (out) or read from it; -1 at an
 * error, a timeout or EOF. */
static int
xfer(int fd, void *data, size_t len, int out)
{
    char *p = data;
    ssize_t n;

    for (; len > 0; p += n, len -= (size_t)n)
        if ((n = out ? write(fd, p, len) : read(fd, p, len)) <= 0)
            return -1;
    return 0;
}

#define write_all(fd, data, len) xfer(fd, (void *)(data), len, 1)
#define read_all(fd, data, len) xfer(fd, data, len, 0)

static int
put_record(int fd, int type, int id, const void *body, size_t len)
{
    FCGI_Header h;

    memset(&h, 0, sizeof(h));
    h.version = FCGI_VERSION_1;
    h.type = (unsigned char)type;
    h.requestIdB1 = (unsigned char)(id >> 8);
    h.requestIdB0 = (unsigned char)id;
    h.contentLengthB1 = (unsigned char)(len >> 8);
    h.contentLengthB0 = (unsigned char)len;
    if (write_all(fd, &h, sizeof(h)) == -1)
        return -1;
    return len > 0 ? write_all(fd, body, len) : 0;
}

static int
send_begin(int fd, int id, int keep)
{
    FCGI_BeginRequestBody b;

    memset(&b, 0, sizeof(b));
    b.roleB0 = FCGI_RESPONDER;
    b.flags = keep ? FCGI_KEEP_CONN : 0;
    return put_record(fd, FCGI_BEGIN_REQUEST, id, &b, sizeof(b));
}

/* send_rest: the CGI variables in one PARAMS record, an empty PARAMS, an
 * empty STDIN. */
static int
send_rest(int fd, int id, const char *uri)
{
    const char *nv[] = {"REQUEST_METHOD",
                        "GET",
                        "REQUEST_URI",
                        uri,
                        "QUERY_STRING",
                        "",
                        "SERVER_PROTOCOL",
                        "HTTP/1.1",
                        "GATEWAY_INTERFACE",
                        "CGI/1.1",
                        NULL};
    unsigned char params[1024];
    size_t n = 0, ln, lv;
    int i;

    for (i = 0; nv[i] != NULL; i += 2) {
        ln = strlen(nv[i]);
        lv = strlen(nv[i + 1]);
        /* Short lengths only: one byte each, below 128. */
        params[n++] = (unsigned char)ln;
        params[n++] = (unsigned char)lv;
        memcpy(params + n, nv[i], ln);
        memcpy(params + n + ln, nv[i + 1], lv);
        n += ln + lv;
    }
    if (put_record(fd, FCGI_PARAMS, id, params, n) == -1 ||
        put_record(fd, FCGI_PARAMS, id, NULL, 0) == -1 ||
        put_record(fd, FCGI_STDIN, id, NULL, 0) == -1)
        return -1;
    return 0;
}

/* send_request: a GET of uri, as nginx sends it. */
static int
send_request(int fd, int id, int keep, const char *uri)
{
    return send_begin(fd, id, keep) == -1 ? -1 : send_rest(fd, id, uri);
}

/*
 * read_record: the next record's header into h and its content (padding
 * dropped) into body, which holds 65536 + 256 bytes.  Results: the
 * content's length, or -1 on EOF or timeout.
 */
static long
read_record(int fd, FCGI_Header *h, unsigned char *body)
{
    size_t len;

    if (read_all(fd, h, sizeof(*h)) == -1)
        return -1;
    len = (size_t)(h->contentLengthB1 << 8 | h->contentLengthB0) +
          h->paddingLength;
    if (read_all(fd, body, len) == -1)
        return -1;
    return (long)(len - h->paddingLength);
}

/* record_id: the request id of the record h. */
#define record_id(h) ((h).requestIdB1 << 8 | (h).requestIdB0)

/* add_stdout: an FCGI_STDOUT record's content appended to out[*n]. */
static void
add_stdout(char *out, size_t outlen, size_t *n, const void *body, size_t len)
{
    if (*n + len < outlen) {
        memcpy(out + *n, body, len);
        *n += len;
        out[*n] = '\0';
    }
}

/*
 * read_response: records until FCGI_END_REQUEST of id; the STDOUT
 * stream into out, NUL-terminated.  Results: 0, or -1 on EOF, timeout, a
 * record of another request or an end other than FCGI_REQUEST_COMPLETE
 * with status 0.
 */
static int
read_response(int fd, int id, char *out, size_t outlen)
{
    unsigned char body[65536 + 256];
    FCGI_EndRequestBody *end = (FCGI_EndRequestBody *)body;
    FCGI_Header h;
    size_t n = 0;
    long len;

    out[0] = '\0';
    for (;;) {
        if ((len = read_record(fd, &h, body)) == -1 || record_id(h) != id)
            return -1;
        if (h.type == FCGI_STDOUT)
            add_stdout(out, outlen, &n, body, (size_t)len);
        else if (h.type == FCGI_END_REQUEST)
            return end->protocolStatus == FCGI_REQUEST_COMPLETE &&
                           (end->appStatusB3 | end->appStatusB2 |
                            end->appStatusB1 | end->appStatusB0) == 0
                       ? 0
                       : -1;
    }
}

/* reply: the STDOUT of the last response get() read. */
static char reply[65536];

/* get: a GET of uri as request id, answered completely, into reply. */
static int
get(int fd, int id, int keep, const char *uri)
{
    return send_request(fd, id, keep, uri) == 0 &&
           read_response(fd, id, reply, sizeof(reply)) == 0;
}

/* timed: fd, a new connection or -1, with a 3 s receive timeout: a
 * worker that does not answer fails the check, not the run. */
static int
timed(int fd)
{
    struct timeval tv = {3, 0};

    if (fd != -1)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

/* connect_worker: a connection to the worker's unix socket, or -1. */
static int
connect_worker(void)
{
    return timed(connect_unix(sock_path));
}

/* connected: fd, a new connection, or -1 after a failing check. */
static int
connected(int fd)
{
    if (fd == -1)
        ok(0, "connect: %s", strerror(errno));
    return fd;
}

/* get_new: get() on a new connection, closed after. */
static int
get_new(const char *uri)
{
    int fd = connect_worker(), answered = fd != -1 && get(fd, 1, 0, uri);

    if (fd != -1)
        close(fd);
    return answered;
}

/* eof: the worker closed the connection (no more bytes, not a timeout). */
static int
eof(int fd)
{
    char c;

    return read(fd, &c, 1) == 0;
}

/* --- the worker, forked --------------------------------------------- */

/* wait_state: until the slot says state, for three seconds at most. */
static void
wait_state(const struct sb_slot *slot, enum sb_state state)
{
    int64_t end;

    for (end = clock_ms() + 3000; clock_ms() < end; sleep_ms(5))
        if (sb_state(slot) == state)
            break;
}

/* What a test's worker is started with; 0: the default. */
struct wcfg {
    int fd; /* the listening socket: the unix one by default */
    long max_requests;
    long read_ms, write_ms, idle_ms; /* 5000 each by default */
    int max_conns;                   /* 16 by default */
    int pg; /* the reads' and the writes' handles on pg.h's cluster, with
               the deadlines of test_db_stopped */
};

/* The deadlines of the handles on pg.h's cluster: each host's connection,
 * an answer. */
#define PG_CONNECT_MS 4000
#define PG_ANSWER_MS 400

/*
 * pg_handles: in the worker's child, the two handles main.c makes for
 * --db-read, both on pg.h's cluster (the PG* variables): the reads',
 * connected before the loop as main.c does, and the writes', at the
 * first /updates.
 */
static void
pg_handles(struct handler_ctx *ctx)
{
    if ((ctx->db = db_new(NULL, DB_PERSISTENT)) == NULL ||
        (ctx->db_write = db_new(NULL, DB_PERSISTENT)) == NULL)
        exit(3);
    db_set_timeouts(ctx->db, PG_CONNECT_MS, PG_ANSWER_MS);
    db_set_timeouts(ctx->db_write, PG_CONNECT_MS, PG_ANSWER_MS);
    if (db_connect(ctx->db) != DB_OK)
        exit(3);
}

/*
 * start_with: fork a worker as cfg says, reporting to slot 0 of the
 * scoreboard; wait until it waits for connections.  The child exits with
 * 0 when worker_run returns 0, 1 otherwise.
 */
static pid_t
start_with(const struct wcfg *cfg)
{
    struct sb_slot *slot = sb_slot(sb, 0);
    struct worker_opts wo;
    struct handler_ctx ctx;
    char conninfo[160], fd[16];
    pid_t pid;
    int r;

    sb_slot_reset(slot, SB_STARTING, sb_now_ns());
    fflush(stdout);
    if ((pid = fork()) == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        snprintf(fd, sizeof(fd), "%d", sb_fd(sb));
        setenv(SB_ENV_FD, fd, 1);
        setenv(SB_ENV_SLOT, "0", 1);
        log_init("tfb-fcgi", LOG_WARN);
        memset(&wo, 0, sizeof(wo));
        wo.listen_fd = cfg->fd ? cfg->fd : listen_fd;
        wo.max_requests = cfg->max_requests;
        wo.read_timeout_ms = cfg->read_ms ? cfg->read_ms : 5000;
        wo.write_timeout_ms = cfg->write_ms ? cfg->write_ms : 5000;
        wo.idle_timeout_ms = cfg->idle_ms ? cfg->idle_ms : 5000;
        wo.max_conns = cfg->max_conns ? cfg->max_conns : 16;
        wo.request_max = 65536;
        memset(&ctx, 0, sizeof(ctx));
        ctx.rng = 1;
        /* A database that is not there: nothing here connects to it. */
        snprintf(conninfo, sizeof(conninfo), "host=%s/no-such-dir", dir);
        if (cfg->pg)
            pg_handles(&ctx);
        else if ((ctx.db = db_new(conninfo, DB_PERSISTENT)) == NULL)
            exit(3);
        r = worker_run(&ctx, &wo);
        db_free(ctx.db);
        db_free(ctx.db_write);
        exit(r == 0 ? 0 : 1);
    }
    wait_state(slot, SB_IDLE);
    return pid;
}

static pid_t
start_worker(long max_requests)
{
    struct wcfg cfg = {.max_requests = max_requests};

    return start_with(&cfg);
}

/* stop_worker: SIGTERM, and the check that it returns 0, named name. */
static void
stop_worker(pid_t pid, const char *name)
{
    kill(pid, SIGTERM);
    is_int(wait_exit(pid, 3000), 0, name);
}

static void
test_plaintext(void)
{
    struct sb_slot *slot = sb_slot(sb, 0);
    pid_t pid = start_worker(0);
    int fd;

    is_int(sb_state(slot), SB_IDLE, "the worker reports idle in accept");
    if ((fd = connected(connect_worker())) != -1) {
        ok(get(fd, 1, 0, "/plaintext"),
           "/plaintext: a complete FastCGI response, status 0");
        is_str(reply, plaintext, "its CGI headers and body");
        ok(eof(fd), "without FCGI_KEEP_CONN the worker closes the connection");
        close(fd);
    }
    if ((fd = connected(connect_worker())) != -1) {
        ok(get(fd, 7, 0, "/no/such/route?x=1"),
           "a second connection, request id 7");
        like(reply, "Status: 404 Not Found\r\n", "an unknown path: 404");
        close(fd);
    }
    /* The count follows the response: wait until the worker is idle. */
    wait_state(slot, SB_IDLE);
    is_int(sb_requests(slot), 2, "two requests counted on the scoreboard");

    kill(pid, SIGTERM);
    is_int(wait_exit(pid, 3000), 0, "SIGTERM stops the idle worker: 0");
    is_int(sb_state(slot), SB_EXITING, "leaving: its slot says so");
}

static void
test_keep_conn(void)
{
    pid_t pid = start_worker(0);
    int fd;

    if ((fd = connected(connect_worker())) != -1) {
        ok(get(fd, 1, 1, "/plaintext"),
           "FCGI_KEEP_CONN: the first request answered");
        is_str(reply, plaintext, "the first response");
        ok(get(fd, 2, 1, "/json"),
           "the second request on the same connection answered");
        ok(strstr(reply, "Content-Type: application/json\r\n") != NULL &&
               strstr(reply, "\r\n\r\n{\"message\":\"Hello, World!\"}") != NULL,
           "the second response");
        close(fd);
    }
    /* The closed kept connection sends the worker back to accepting. */
    ok(get_new("/plaintext"),
       "after the kept connection closes, a new one is served");
    stop_worker(pid, "then SIGTERM: 0");
}

/*
 * test_gone: the front server closes a kept connection whose request
 * waits for its answer, as nginx does when its client goes away.  The
 * answer then fails to be written and the connection is closed: the
 * worker must forget it, not keep an entry for a number the next accept()
 * reuses.  More such connections than its table holds (16 here) must
 * leave it accepting.
 */
static void
test_gone(void)
{
    pid_t pid = start_worker(0);
    int64_t t;
    int fd, i, answered, gone = 0;

    for (i = 0; i < 40; i++) {
        if ((fd = connect_worker()) == -1)
            break;
        if (!get(fd, 1, 1, "/plaintext")) {
            close(fd);
            break;
        }
        /* Stopped, the worker sees the second request only once the
         * connection is closed. */
        kill(pid, SIGSTOP);
        if (send_request(fd, 2, 1, "/plaintext") == 0)
            gone++;
        close(fd);
        kill(pid, SIGCONT);
    }
    is_int(gone, 40, "40 kept connections closed with a request unanswered");
    t = clock_ms();
    answered = get_new("/plaintext");
    t = clock_ms() - t;
    ok(answered && t < 1000,
       "more than its table holds, and the worker still accepts and answers "
       "at once (%ld ms)",
       (long)t);
    stop_worker(pid, "then SIGTERM: 0");
}

/*
 * test_in_flight: SIGTERM while a request is being read does not cut it
 * short: it is answered, then the worker leaves.
 */
static void
test_in_flight(void)
{
    struct sb_slot *slot = sb_slot(sb, 0);
    pid_t pid = start_worker(0);
    int fd;

    if ((fd = connected(connect_worker())) == -1) {
        wait_exit(pid, 0); /* killed at once */
        return;
    }
    send_begin(fd, 1, 0);
    wait_state(slot, SB_READING);
    /* A request still arriving costs the worker nothing: not busy, so
     * the request time limit does not run; the read deadline does. */
    is_int(sb_state(slot), SB_READING, "half a request: the worker reads it");
    ok(sb_busy_since(slot) == 0, "and is not busy");
    kill(pid, SIGTERM);
    sleep_ms(50);
    ok(waitpid(pid, NULL, WNOHANG) == 0, "SIGTERM does not cut it short");
    ok(send_rest(fd, 1, "/plaintext") == 0 &&
           read_response(fd, 1, reply, sizeof(reply)) == 0,
       "the rest of the request is read and answered");
    is_int(wait_exit(pid, 3000), 0, "then the worker returns 0");
    close(fd);
}

static void
test_max_requests(void)
{
    struct sb_slot *slot = sb_slot(sb, 0);
    pid_t pid = start_worker(3);
    int fd, i, answered = 0;

    for (i = 0; i < 3; i++)
        answered += get_new("/plaintext");
    is_int(answered, 3, "max_requests 3: three requests answered");
    is_int(wait_exit(pid, 3000), 0, "then worker_run returns 0, unasked");
    is_int(sb_requests(slot), 3, "after three requests");

    /* With keep-alive too: the count is of requests, not connections. */
    pid = start_worker(2);
    answered = 0;
    if ((fd = connected(connect_worker())) != -1) {
        for (i = 0; i < 2; i++)
            answered += get(fd, 1, 1, "/plaintext");
        ok(answered == 2 && eof(fd),
           "max_requests 2 on one kept connection: two answers, then closed");
        close(fd);
    }
    is_int(wait_exit(pid, 3000), 0, "and worker_run returns 0");
}

/*
 * test_shed: the pool grew (scoreboard.h: sb_shed): the worker closes its
 * kept connections, but answers a request that came on one before it took
 * the word (sent while it was stopped: wherever it stopped, the request
 * waits unread), then closes that one too, and goes on taking new ones.
 */
static void
test_shed(void)
{
    pid_t pid = start_worker(0);
    int a = connected(connect_worker()), b = connected(connect_worker());

    if (a != -1 && b != -1) {
        ok(get(a, 1, 1, "/plaintext") && get(b, 1, 1, "/plaintext"),
           "two kept connections, each answered once");
        kill(pid, SIGSTOP);
        send_request(b, 2, 1, "/plaintext");
        sb_shed(sb_slot(sb, 0));
        kill(pid, SIGCONT);
        ok(read_response(b, 2, reply, sizeof(reply)) == 0 &&
               strcmp(reply, plaintext) == 0,
           "sb_shed: the request waiting on a kept connection is answered");
        ok(eof(b) && eof(a), "then both connections are closed");
        ok(get_new("/plaintext"), "and a new one is served");
        ok(!sb_take_shed(sb_slot(sb, 0)), "the word taken once");
    }
    if (a != -1)
        close(a);
    if (b != -1)
        close(b);
    stop_worker(pid, "then SIGTERM: 0");
}

/* --- the peers that once held a worker ------------------------------- */

/* served_ms: a /plaintext on a new connection: how long it took, or -1. */
static long
served_ms(void)
{
    int64_t t = clock_ms();
    int answered = get_new("/plaintext") && strcmp(reply, plaintext) == 0;

    return answered ? (long)(clock_ms() - t) : -1;
}

/* hup_ms: how long until the worker closes fd's other end, or -1 when it
 * does not within ms (what the worker sent stays unread). */
static long
hup_ms(int fd, long ms)
{
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    int64_t t = clock_ms();

    while (clock_ms() - t < ms)
        if (poll(&p, 1, 5) > 0 &&
            (p.revents & (POLLHUP | POLLRDHUP | POLLERR)) != 0)
            return (long)(clock_ms() - t);
    return -1;
}

/*
 * test_deaf_peer: a kept connection whose peer sends request after request
 * and never reads an answer.  Once its socket is full the answer waits on
 * the connection, the worker reads no more requests of it, serves a
 * second client at once, and closes the deaf one at the write deadline
 * (500 ms here).  A blocking write held the worker there for ever.
 */
static void
test_deaf_peer(void)
{
    struct sb_slot *slot = sb_slot(sb, 0);
    struct wcfg cfg = {.write_ms = 500};
    pid_t pid = start_with(&cfg);
    int64_t last = 0, end;
    uint64_t before;
    long took, closed;
    int fd, i, stuck = 0;

    if ((fd = connected(connect_worker())) == -1) {
        wait_exit(pid, 0); /* killed at once */
        return;
    }
    for (i = 0; i < 5000 && !stuck; i++) {
        before = sb_requests(slot);
        if (send_request(fd, 1, 1, "/plaintext") == -1)
            break;
        for (end = clock_ms() + 200;
             sb_requests(slot) == before && clock_ms() < end;)
            nanosleep(&(struct timespec){0, 100000}, NULL);
        if (sb_requests(slot) == before)
            stuck = 1;
        else
            last = clock_ms();
    }
    ok(stuck && i > 10,
       "a peer that never reads: after %d answers the worker reads no more "
       "of its requests",
       i - 1);
    took = served_ms();
    ok(took >= 0 && took < 100,
       "meanwhile a second client is served in %ld ms (under 100)", took);
    closed = hup_ms(fd, 2000);
    took = (long)(clock_ms() - last);
    ok(closed >= 0 && took >= 450 && took < 1000,
       "the deaf peer is closed at the 500 ms write deadline (%ld ms after "
       "its last answer began)",
       took);
    close(fd);
    stop_worker(pid, "then SIGTERM: 0");
}

/*
 * skip_stream: a child that sends FCGI_BEGIN_REQUEST for request 2 in the
 * authorizer role (answered FCGI_UNKNOWN_ROLE), then empty FCGI_PARAMS of
 * request 2 without end, never reading; it exits 0 once the worker closes
 * the connection, 1 if it could not connect.
 */
static pid_t
skip_stream(void)
{
    unsigned char recs[4096];
    FCGI_BeginRequestBody b;
    pid_t pid;
    int fd;
    size_t i;

    fflush(stdout);
    if ((pid = fork()) != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGPIPE, SIG_IGN);
    alarm(10);
    /* Below the worker: on a busy machine the stream's own appetite for
     * the CPU must not be what the second client waits on. */
    if (nice(10) == -1 || (fd = connect_worker()) == -1)
        _exit(1);
    memset(&b, 0, sizeof(b));
    b.roleB0 = FCGI_AUTHORIZER;
    b.flags = FCGI_KEEP_CONN;
    put_record(fd, FCGI_BEGIN_REQUEST, 2, &b, sizeof(b));
    memset(recs, 0, sizeof(recs));
    for (i = 0; i < sizeof(recs); i += 8) {
        recs[i] = FCGI_VERSION_1;
        recs[i + 1] = FCGI_PARAMS;
        recs[i + 3] = 2;
    }
    while (write_all(fd, recs, sizeof(recs)) == 0)
        continue;
    _exit(0);
}

/*
 * test_skip_stream: the stream above, to a worker with a 1 s read
 * deadline: a second client is served meanwhile in under 100 ms, and the
 * stream is closed at the deadline, which the skipped records do not
 * renew; SIGTERM in the middle of one stops the worker by that deadline.
 */
static void
test_skip_stream(void)
{
    struct wcfg cfg = {.read_ms = 1000};
    pid_t pid = start_with(&cfg), s;
    int64_t t0 = clock_ms();
    long took;
    int st;

    s = skip_stream();
    sleep_ms(100);
    took = served_ms();
    ok(took >= 0 && took < 100,
       "a stream of skipped records: a second client is served meanwhile in "
       "%ld ms (under 100)",
       took);
    st = wait_exit(s, 3000);
    took = (long)(clock_ms() - t0);
    ok(st == 0 && took >= 900 && took < 1600,
       "the stream is closed at its 1 s read deadline, not renewed by its "
       "records (%ld ms)",
       took);
    stop_worker(pid, "then SIGTERM: 0");

    pid = start_with(&cfg);
    s = skip_stream();
    sleep_ms(200);
    t0 = clock_ms();
    kill(pid, SIGTERM);
    st = wait_exit(pid, 3000);
    took = (long)(clock_ms() - t0);
    ok(st == 0 && took < 1100,
       "SIGTERM during such a stream: the worker leaves by the stream's read "
       "deadline (%ld ms)",
       took);
    kill(s, SIGKILL);
    waitpid(s, NULL, 0);
}

/* send_body: FCGI_STDIN records of len bytes in all for id, no end. */
static int
send_body(int fd, int id, size_t len)
{
    static char chunk[32768];
    size_t n;

    memset(chunk, 'x', sizeof(chunk));
    for (; len > 0; len -= n) {
        n = len < sizeof(chunk) ? len : sizeof(chunk);
        if (put_record(fd, FCGI_STDIN, id, chunk, n) == -1)
            return -1;
    }
    return 0;
}

/*
 * test_too_big: a well-formed request with a 70 KB body, over
 * --request-max (64 KiB), straight over FastCGI on TCP: answered 413 once
 * read to its end, then closed cleanly (an EOF, no reset: nginx counts a
 * reset while it sends as the host's failure).  A peer sending on past
 * 1 MiB is closed.
 */
static void
test_too_big(void)
{
    struct wcfg cfg = {.fd = tcp_fd};
    pid_t pid = start_with(&cfg), w;
    char c;
    ssize_t n = -1;
    int fd, answered;

    if ((fd = connected(timed(connect_tcp(tcp_port)))) != -1) {
        answered = send_begin(fd, 1, 1) == 0 &&
                   put_record(fd, FCGI_PARAMS, 1, "\x0e\x04REQUEST_METHODPOST",
                              20) == 0 &&
                   put_record(fd, FCGI_PARAMS, 1, NULL, 0) == 0 &&
                   send_body(fd, 1, 70000) == 0 &&
                   put_record(fd, FCGI_STDIN, 1, NULL, 0) == 0 &&
                   read_response(fd, 1, reply, sizeof(reply)) == 0 &&
                   strncmp(reply, "Status: 413 ", 12) == 0 &&
                   strstr(reply, "\r\n\r\n") != NULL &&
                   strchr(strstr(reply, "\r\n\r\n") + 4, '\n') != NULL;
        ok(answered,
           "a 70 KB body over --request-max: answered 413, one line of text");
        n = read(fd, &c, 1);
        ok(answered && n == 0,
           "then the connection closes cleanly: EOF, not a reset (read: %zd, "
           "%s)",
           n, n == -1 ? strerror(errno) : "-");
        close(fd);
    }
    stop_worker(pid, "then SIGTERM: 0");

    /* A peer sending without end (on the unix socket): closed past 1 MiB. */
    pid = start_worker(0);
    if ((fd = connected(connect_worker())) != -1) {
        fflush(stdout);
        if ((w = fork()) == 0) {
            signal(SIGPIPE, SIG_IGN);
            alarm(10);
            send_begin(fd, 1, 0);
            put_record(fd, FCGI_PARAMS, 1, NULL, 0);
            while (send_body(fd, 1, 1 << 16) == 0)
                continue;
            _exit(0);
        }
        ok(wait_exit(w, 3000) == 0 && read_response(fd, 1, reply, 16) == -1,
           "a request body without end: closed unanswered past 1 MiB");
        close(fd);
    }
    ok(served_ms() >= 0, "and the worker serves on");
    stop_worker(pid, "then SIGTERM: 0");
}

/*
 * test_lru: 256 idle kept connections at --max-conns 256 (and a 10 s idle
 * deadline): a 257th client is served at once, and the connection kept
 * longest ago, the first, is the one closed for it.  A full table used to
 * stop the worker listening until a kept one idled out.
 */
static void
test_lru(void)
{
    struct wcfg cfg = {.max_conns = 256, .idle_ms = 10000};
    pid_t pid = start_with(&cfg);
    int fds[256], i, answered = 0;
    long took;

    for (i = 0; i < 256; i++) {
        fds[i] = connect_worker();
        answered += fds[i] != -1 && get(fds[i], 1, 1, "/plaintext");
    }
    is_int(answered, 256, "256 connections answered once each, kept idle");
    took = served_ms();
    ok(took >= 0 && took < 100,
       "--max-conns 256 reached by kept ones: a 257th client is served in "
       "%ld ms (under 100)",
       took);
    ok(fds[0] != -1 && hup_ms(fds[0], 500) >= 0,
       "the connection kept longest ago was closed for it");
    ok(fds[1] != -1 && hup_ms(fds[1], 50) == -1, "and only that one");
    for (i = 0; i < 256; i++)
        if (fds[i] != -1)
            close(fds[i]);
    stop_worker(pid, "then SIGTERM: 0");
}

/*
 * read_counting: records up to the FCGI_END_REQUEST of id, counting the
 * FCGI_GET_VALUES_RESULT records among them; the STDOUT into out.
 * Results: the count, or -1 on EOF or timeout first.
 */
static int
read_counting(int fd, int id, char *out, size_t outlen)
{
    unsigned char body[65536 + 256];
    FCGI_Header h;
    size_t n = 0;
    long len;
    int count = 0;

    out[0] = '\0';
    for (;;) {
        if ((len = read_record(fd, &h, body)) == -1)
            return -1;
        if (h.type == FCGI_GET_VALUES_RESULT)
            count++;
        else if (h.type == FCGI_STDOUT)
            add_stdout(out, outlen, &n, body, (size_t)len);
        else if (h.type == FCGI_END_REQUEST && record_id(h) == id)
            return count;
    }
}

/*
 * test_say_queued: 2000 FCGI_GET_VALUES records, then a request, from a
 * peer that reads nothing for 300 ms: the answers that do not fit the
 * socket wait on the connection, which is not closed for it; all 2000
 * and the request's answer come once the peer reads.
 */
static void
test_say_queued(void)
{
    static unsigned char recs[2000 * 24];
    pid_t pid = start_worker(0), wr;
    int fd, i, got;

    if ((fd = connected(connect_worker())) == -1) {
        wait_exit(pid, 0); /* killed at once */
        return;
    }
    for (i = 0; i < 2000; i++) {
        memcpy(recs + 24 * i, "\x01\x09\0\0\0\x10\0\0", 8);
        recs[24 * i + 8] = 14;
        recs[24 * i + 9] = 0;
        memcpy(recs + 24 * i + 10, "FCGI_MAX_CONNS", 14);
    }
    fflush(stdout);
    if ((wr = fork()) == 0) {
        alarm(10);
        _exit(write_all(fd, recs, sizeof(recs)) == 0 &&
                      send_request(fd, 1, 0, "/plaintext") == 0
                  ? 0
                  : 1);
    }
    sleep_ms(300);
    got = read_counting(fd, 1, reply, sizeof(reply));
    is_int(got, 2000,
           "2000 management records, the peer not reading for "
           "300 ms: all 2000 answered, none a reason to close");
    is_str(reply, plaintext, "then the request after them");
    is_int(wait_exit(wr, 3000), 0, "the peer wrote it all");
    close(fd);
    stop_worker(pid, "then SIGTERM: 0");
}

/* --- a database that stops answering -------------------------------- */

/*
 * status_ms: a GET of uri on a new connection: its HTTP status (the
 * "Status: NNN" line), or -1 when it is not answered; *ms: how long it
 * took.
 */
static int
status_ms(const char *uri, long *ms)
{
    int64_t t = clock_ms();
    int status = -1;

    if (!get_new(uri) || sscanf(reply, "Status: %d", &status) != 1)
        status = -1;
    *ms = (long)(clock_ms() - t);
    return status;
}

/* both_ok: /db and /updates until both answer 200, for ms at most.
 * Results: whether they did; *took: how long it took. */
static int
both_ok(long ms, long *took)
{
    int64_t t = clock_ms();
    long one;
    int good = 0;

    while (!good && clock_ms() - t < ms) {
        good = status_ms("/db", &one) == 200 &&
               status_ms("/updates?queries=2", &one) == 200;
        if (!good)
            sleep_ms(10);
    }
    *took = (long)(clock_ms() - t);
    return good;
}

/*
 * stalled_window: with both handles' connections being made again on a
 * stopped server, a /plaintext and a /db every 100 ms for 2 s: the
 * longest /plaintext and the longest /db (answered 503 at once), -1
 * each when one was not served so.
 */
static void
stalled_window(long *plain, long *db)
{
    int64_t end = clock_ms() + 2000;
    long ms;

    *plain = *db = 0;
    while (clock_ms() < end) {
        ms = served_ms();
        *plain = ms < 0 || *plain < 0 ? -1 : ms > *plain ? ms : *plain;
        if (status_ms("/db", &ms) != 503)
            ms = -1;
        *db = ms < 0 || *db < 0 ? -1 : ms > *db ? ms : *db;
        sleep_ms(100);
    }
}

/*
 * test_db_stopped: the server stopped whole while the worker holds its
 * connections.  /db and /updates each answer 503 at the answer deadline,
 * which closes the handle's connection; then the loop makes each again,
 * waiting on the stopped server up to PG_CONNECT_MS, and meanwhile a
 * /plaintext is served in under 100 ms and a /db answers 503 at once.
 * Resumed, the connections under way are made: both routes answer 200.
 * (The idle reconnection waited in poll() for its whole bound, the
 * worker serving nobody.)
 */
static void
test_db_stopped(void)
{
    struct wcfg cfg = {.pg = 1};
    long db_ms, up_ms, plain, db, took;
    int db_st, up_st, good;
    pid_t pid;

    if (pg_start() == -1) {
        ok(0, "a PostgreSQL cluster for the test (pg.h)");
        return;
    }
    pid = start_with(&cfg);
    ok(both_ok(3000, &took), "a worker with the reads' and the writes' "
                             "handles: /db and /updates answer 200");
    if (!ok(pg_signal(SIGSTOP) > 0, "the server stopped whole (SIGSTOP)")) {
        stop_worker(pid, "then SIGTERM: 0");
        return;
    }
    db_st = status_ms("/db", &db_ms);
    up_st = status_ms("/updates?queries=2", &up_ms);
    ok(db_st == 503 && db_ms >= PG_ANSWER_MS - 50 && db_ms < PG_ANSWER_MS + 500,
       "/db: 503 at the %d ms answer deadline (%d in %ld ms)", PG_ANSWER_MS,
       db_st, db_ms);
    ok(up_st == 503 && up_ms >= PG_ANSWER_MS - 50 && up_ms < PG_ANSWER_MS + 500,
       "/updates, on the writes' handle: 503 at the deadline too (%d in %ld "
       "ms)",
       up_st, up_ms);
    /* Past the first backoff (50 ms): both connections are under way. */
    sleep_ms(150);
    stalled_window(&plain, &db);
    ok(plain >= 0 && plain < 100,
       "while both connections are made again on the stopped server, a "
       "/plaintext every 100 ms for 2 s: each served in under 100 ms "
       "(the longest %ld ms)",
       plain);
    ok(db >= 0 && db < 100,
       "and a /db each time: 503 at once (the longest %ld ms)", db);
    pg_signal(SIGCONT);
    good = both_ok(1500, &took);
    ok(good && took < 1000,
       "resumed: the connections under way are made, /db and /updates answer "
       "200 (after %ld ms)",
       took);
    stop_worker(pid, "then SIGTERM: 0");
}

int
main(void)
{
    test_request_target();
    test_cgi_find();

    /* A case that hangs fails the program instead of the whole run. */
    alarm(90);
    if (temp_dir(dir) == -1)
        return done_testing();
    snprintf(sock_path, sizeof(sock_path), "%s/fcgi.sock", dir);
    if ((listen_fd = listen_unix(sock_path)) == -1 ||
        (tcp_fd = listen_tcp(&tcp_port)) == -1 || (sb = sb_create(1)) == NULL) {
        ok(0, "set-up: %s", strerror(errno));
        return done_testing();
    }
    test_plaintext();
    test_keep_conn();
    test_gone();
    test_in_flight();
    test_max_requests();
    test_shed();
    test_deaf_peer();
    test_skip_stream();
    test_too_big();
    test_lru();
    test_say_queued();
    test_db_stopped();
    sb_free(sb);
    close(listen_fd);
    close(tcp_fd);
    unlink(sock_path);
    rmdir(dir);
    return done_testing();
}
