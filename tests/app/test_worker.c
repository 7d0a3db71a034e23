/*
 * test_worker.c: the responder's connection loop (app/worker.c).
 *
 * request_target() on its own, then worker_run() for real: in a forked
 * child, on a listening unix socket made here, answering a FastCGI client
 * written below (the records a front server sends, read back up to
 * FCGI_END_REQUEST).  /plaintext needs no database, so the worker's handle
 * points at a socket directory that does not exist and never connects.
 * The worker reports to a scoreboard made here, which is how the test
 * knows when it waits, serves and leaves.
 */
#include "../../app/worker.c"

#include <fastcgi.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "harness.h"

static char dir[] = "/tmp/test_worker.XXXXXX";
static char sock_path[96];
static int listen_fd = -1;
static struct scoreboard *sb;

static const char plaintext[] = "Status: 200 OK\r\n"
                                "Content-Type: text/plain\r\n"
                                "Content-Length: 13\r\n"
                                "\r\n"
                                "Hello, World!";

/* --- request_target ------------------------------------------------- */

static void
target_is(const char *const *env, const char *path, const char *query,
          const char *name)
{
    char *envp[8];
    const char *p, *q;
    size_t len, i;

    for (i = 0; env[i] != NULL; i++)
        envp[i] = (char *)env[i];
    envp[i] = NULL;
    request_target(envp, &p, &len, &q);
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
}

/* --- a FastCGI client ----------------------------------------------- */

static int
write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    ssize_t n;

    while (len > 0) {
        if ((n = write(fd, p, len)) <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int
read_all(int fd, void *data, size_t len)
{
    char *p = data;
    ssize_t n;

    while (len > 0) {
        if ((n = read(fd, p, len)) <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

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
    size_t n = 0, len;

    out[0] = '\0';
    for (;;) {
        if (read_all(fd, &h, sizeof(h)) == -1)
            return -1;
        len = (size_t)(h.contentLengthB1 << 8 | h.contentLengthB0) +
              h.paddingLength;
        if (read_all(fd, body, len) == -1 ||
            (h.requestIdB1 << 8 | h.requestIdB0) != id)
            return -1;
        len -= h.paddingLength;
        if (h.type == FCGI_STDOUT && n + len < outlen) {
            memcpy(out + n, body, len);
            n += len;
            out[n] = '\0';
        } else if (h.type == FCGI_END_REQUEST) {
            return end->protocolStatus == FCGI_REQUEST_COMPLETE &&
                           (end->appStatusB3 | end->appStatusB2 |
                            end->appStatusB1 | end->appStatusB0) == 0
                       ? 0
                       : -1;
        }
    }
}

static int
connect_worker(void)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct timeval tv = {3, 0};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock_path);
    if (fd == -1 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
        if (fd != -1)
            close(fd);
        return -1;
    }
    /* A worker that does not answer fails the check, not the run. */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
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

/*
 * start_worker: fork a worker on the socket with max_requests, reporting
 * to slot 0 of the scoreboard; wait until it waits for connections.
 * The child exits with 0 when worker_run returns 0, 1 otherwise.
 */
static pid_t
start_worker(long max_requests)
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
        wo.listen_fd = listen_fd;
        wo.max_requests = max_requests;
        wo.read_timeout_ms = 5000;
        wo.idle_timeout_ms = 5000;
        wo.max_conns = 16;
        wo.request_max = 65536;
        memset(&ctx, 0, sizeof(ctx));
        ctx.rng = 1;
        /* A database that is not there: nothing here connects to it. */
        snprintf(conninfo, sizeof(conninfo), "host=%s/no-such-dir", dir);
        if ((ctx.db = db_new(conninfo, DB_PERSISTENT)) == NULL)
            exit(3);
        r = worker_run(&ctx, &wo);
        db_free(ctx.db);
        exit(r == 0 ? 0 : 1);
    }
    wait_state(slot, SB_IDLE);
    return pid;
}

static void
test_plaintext(void)
{
    struct sb_slot *slot = sb_slot(sb, 0);
    char out[4096];
    pid_t pid = start_worker(0);
    int fd;

    is_int(sb_state(slot), SB_IDLE, "the worker reports idle in accept");
    if ((fd = connect_worker()) == -1) {
        ok(0, "connect: %s", strerror(errno));
    } else {
        ok(send_request(fd, 1, 0, "/plaintext") == 0 &&
               read_response(fd, 1, out, sizeof(out)) == 0,
           "/plaintext: a complete FastCGI response, status 0");
        is_str(out, plaintext, "its CGI headers and body");
        ok(eof(fd), "without FCGI_KEEP_CONN the worker closes the connection");
        close(fd);
    }
    if ((fd = connect_worker()) == -1) {
        ok(0, "connect: %s", strerror(errno));
    } else {
        ok(send_request(fd, 7, 0, "/no/such/route?x=1") == 0 &&
               read_response(fd, 7, out, sizeof(out)) == 0,
           "a second connection, request id 7");
        ok(strncmp(out, "Status: 404 Not Found\r\n", 23) == 0,
           "an unknown path: 404");
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
    char out[4096];
    pid_t pid = start_worker(0);
    int fd;

    if ((fd = connect_worker()) == -1) {
        ok(0, "connect: %s", strerror(errno));
    } else {
        ok(send_request(fd, 1, 1, "/plaintext") == 0 &&
               read_response(fd, 1, out, sizeof(out)) == 0,
           "FCGI_KEEP_CONN: the first request answered");
        is_str(out, plaintext, "the first response");
        ok(send_request(fd, 2, 1, "/json") == 0 &&
               read_response(fd, 2, out, sizeof(out)) == 0,
           "the second request on the same connection answered");
        ok(strstr(out, "Content-Type: application/json\r\n") != NULL &&
               strstr(out, "\r\n\r\n{\"message\":\"Hello, World!\"}") != NULL,
           "the second response");
        close(fd);
    }
    /* The closed kept connection sends the worker back to accepting. */
    if ((fd = connect_worker()) == -1) {
        ok(0, "connect: %s", strerror(errno));
    } else {
        ok(send_request(fd, 1, 0, "/plaintext") == 0 &&
               read_response(fd, 1, out, sizeof(out)) == 0,
           "after the kept connection closes, a new one is served");
        close(fd);
    }
    kill(pid, SIGTERM);
    is_int(wait_exit(pid, 3000), 0, "then SIGTERM: 0");
}

/*
 * test_gone: the front server closes a kept connection whose request
 * waits for its answer, as nginx does when its client goes away.  libfcgi
 * then fails to write the answer and closes the descriptor itself: the
 * worker must forget the connection, not keep an entry for a number the
 * next accept() reuses.  More such connections than its table holds
 * (16 here) must leave it accepting.
 */
static void
test_gone(void)
{
    char out[4096];
    pid_t pid = start_worker(0);
    int64_t t;
    int fd, i, answered, gone = 0;

    for (i = 0; i < 40; i++) {
        if ((fd = connect_worker()) == -1)
            break;
        if (send_request(fd, 1, 1, "/plaintext") == -1 ||
            read_response(fd, 1, out, sizeof(out)) == -1) {
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
    fd = connect_worker();
    answered = fd != -1 && send_request(fd, 1, 0, "/plaintext") == 0 &&
               read_response(fd, 1, out, sizeof(out)) == 0;
    t = clock_ms() - t;
    ok(answered && t < 1000,
       "more than its table holds, and the worker still accepts and answers "
       "at once (%ld ms)",
       (long)t);
    if (fd != -1)
        close(fd);
    kill(pid, SIGTERM);
    is_int(wait_exit(pid, 3000), 0, "then SIGTERM: 0");
}

/*
 * test_in_flight: SIGTERM while a request is being read does not cut it
 * short: it is answered, then the worker leaves.
 */
static void
test_in_flight(void)
{
    struct sb_slot *slot = sb_slot(sb, 0);
    char out[4096];
    pid_t pid = start_worker(0);
    int fd;

    if ((fd = connect_worker()) == -1) {
        ok(0, "connect: %s", strerror(errno));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
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
           read_response(fd, 1, out, sizeof(out)) == 0,
       "the rest of the request is read and answered");
    is_int(wait_exit(pid, 3000), 0, "then the worker returns 0");
    close(fd);
}

static void
test_max_requests(void)
{
    struct sb_slot *slot = sb_slot(sb, 0);
    char out[4096];
    pid_t pid = start_worker(3);
    int fd, i, answered = 0;

    for (i = 0; i < 3; i++) {
        if ((fd = connect_worker()) == -1)
            break;
        if (send_request(fd, 1, 0, "/plaintext") == 0 &&
            read_response(fd, 1, out, sizeof(out)) == 0)
            answered++;
        close(fd);
    }
    is_int(answered, 3, "max_requests 3: three requests answered");
    is_int(wait_exit(pid, 3000), 0, "then worker_run returns 0, unasked");
    is_int(sb_requests(slot), 3, "after three requests");

    /* With keep-alive too: the count is of requests, not connections. */
    pid = start_worker(2);
    answered = 0;
    if ((fd = connect_worker()) != -1) {
        for (i = 0; i < 2; i++)
            if (send_request(fd, 1, 1, "/plaintext") == 0 &&
                read_response(fd, 1, out, sizeof(out)) == 0)
                answered++;
        ok(answered == 2 && eof(fd),
           "max_requests 2 on one kept connection: two answers, then closed");
        close(fd);
    }
    is_int(wait_exit(pid, 3000), 0, "and worker_run returns 0");
}

int
main(void)
{
    test_request_target();

    /* A case that hangs fails the program instead of the whole run. */
    alarm(30);
    if (mkdtemp(dir) == NULL) {
        ok(0, "mkdtemp: %s", strerror(errno));
        return done_testing();
    }
    snprintf(sock_path, sizeof(sock_path), "%s/fcgi.sock", dir);
    if ((listen_fd = listen_unix(sock_path)) == -1 ||
        (sb = sb_create(1)) == NULL) {
        ok(0, "set-up: %s", strerror(errno));
        return done_testing();
    }
    test_plaintext();
    test_keep_conn();
    test_gone();
    test_in_flight();
    test_max_requests();
    sb_free(sb);
    close(listen_fd);
    unlink(sock_path);
    rmdir(dir);
    return done_testing();
}
