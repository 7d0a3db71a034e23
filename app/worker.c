/*
 * worker.c: see worker.h.
 *
 * The worker owns its connections.  It waits in epoll_pwait() on the
 * pool's listening socket and on every connection it holds, accepts,
 * reads what a connection sent into that connection's buffer (conn.h) and
 * asks wire_judge() what it is.  A whole request is served: its CGI
 * variables are found among its parameters, the route answers, and the
 * answer goes out as FastCGI records (wire_response) without waiting:
 * what the socket does not take now stays queued on the connection and is
 * written as the peer reads (EPOLLOUT), the worker serving the others
 * meanwhile.  No further request is read on a connection before its
 * answer is written.  A connection that is not ready costs nothing but a
 * descriptor and its buffers: a kept connection (FCGI_KEEP_CONN) does not
 * pin the worker, nor does a peer that stops reading.
 *
 * Why libfcgi has no part in it.  libfcgi reads and writes through
 * buffers of its own on a socket it expects to block: given a
 * non-blocking one it fails where it should wait, and it writes on its own
 * (FCGI_CANT_MPX_CONN, management answers) into the socket we write to.
 * Keeping it to read requests alone would still need each request whole
 * in the socket before it starts (peeked, judged, then read again by
 * libfcgi: the 64 KiB peek per record that a stream of small records
 * turned into a cost), and its defects fenced off (wire.h).  Once wire.c
 * judges every record, what libfcgi still did is small: find five CGI
 * variables among the parameters (wire_gather, wire_pair), and frame the
 * answer (wire_response).  Its own accept had a defect too: after
 * accepting a unix-socket connection libfcgi 2.4.2 polls it, and a signal
 * during that poll made it close a connection the front server had just
 * written to (nginx: "writev() failed (32: Broken pipe)", a 502).
 *
 * Deadlines (conn.h, and the table of waits in worker.h): a request
 * arrives whole within --read-timeout of its first byte, and records that
 * complete no request (management records, other roles, aborted or
 * skipped requests) do not renew it; an answer is read within
 * --write-timeout; a kept connection idles --idle-timeout at most, and is
 * closed sooner when --max-conns is reached and a new connection comes.
 *
 * Turns: a connection is read and acted on for at most WAKE_RECORDS
 * verdicts and WAKE_BYTES bytes per wake-up.  Then it is marked ready and
 * looked at again on the next turn of the loop, whose wait then returns at
 * once: its bytes are in its buffer or still in the socket, and no new
 * edge would come for them.  A peer sending records without end thus
 * shares the worker with the others instead of holding it.
 *
 * The database: a route's statements wait for their answers within the
 * deadlines of db.h, the worker with them (one request at a time); the
 * loop itself never waits on it.  A connection that was lost is made
 * again by the loop, one step per readiness of its socket, in the same
 * epoll set as the clients (tend_dbs): /plaintext and /json are served
 * meanwhile, and the database routes answer 503 at once.
 *
 * Waking: the listening socket is non-blocking, shared by the pool, and
 * each worker waits on it with EPOLLEXCLUSIVE, so a connection wakes one
 * waiter (the kernel wakes the most recent first), not the whole pool; a
 * worker that loses the race to accept() gets EAGAIN.  Connections are
 * watched edge-triggered: half a request already read must not make the
 * next wait return at once.  EPOLLOUT is asked for only while an answer is
 * queued, so that a peer reading our answers does not wake us each time.
 *
 * Stopping: SIGTERM, SIGQUIT, SIGHUP and SIGXCPU stay blocked except inside
 * epoll_pwait(), so they end a wait and never cut a request short.  Then
 * the worker stops accepting, closes its kept connections, serves the
 * requests still arriving and writes the answers still queued (each
 * within its deadline), and returns.
 */
#define _GNU_SOURCE
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "route.h"
#include "scoreboard.h"
#include "sigtab.h"
#include "wire.h"

#define MS 1000000LL /* nanoseconds */
/* Events taken per wait. */
#define EVENTS 64
/* What one connection may take per wake-up: verdicts acted on (records,
 * or a whole request), bytes read. */
#define WAKE_RECORDS 64
#define WAKE_BYTES 65536
/* A request over --request-max is read to its end and dropped for its
 * 413 up to this many bytes; a peer still sending past it is cut off. */
#define DISCARD_MAX (1 << 20)
/* FCGI_STDOUT records of one answer, at most (1 MiB): no route comes
 * near it; one that did would answer 500. */
#define ANSWER_RECORDS 16
#define ANSWER_MAX ((size_t)ANSWER_RECORDS * WIRE_STDOUT_MAX)
/* BEGINs of other requests answered FCGI_CANT_MPX_CONN per request. */
#define MPX_ANSWERS 8

static volatile sig_atomic_t stopping, reopen;

/*
 * A database handle whose connection the loop makes again when it is
 * lost, step by step (db_connect_start, db_connect_step), so that no
 * request waits for it: the socket of the step under way is in the epoll
 * set, tagged with this.
 */
struct dbconn {
    struct db *db;
    int fd;         /* connecting: in the epoll set, or -1 */
    unsigned epoch; /* of the connection last watched while idle */
};

struct worker {
    struct handler_ctx *ctx;
    const struct worker_opts *o;
    struct sb_slot *slot;
    struct conns conns;
    int ep;
    int listening; /* the listening socket is in the epoll set */
    int draining;  /* stopping: serve what arrives, accept nothing */
    int failures;  /* accept() failures in a row */
    long served;
    unsigned turn;        /* of the loop, from 1: a ready mark's age */
    int ready;            /* some connection is marked ready */
    sigset_t waitmask;    /* the mask inside epoll_pwait: stops let in */
    size_t in_cap;        /* a connection's input, at most */
    unsigned char *pairs; /* a request's parameters, gathered */
    char *vals;           /* the CGI variables found, NUL-terminated */
    struct wire_limits lim;
    struct wire_values values;
    struct response r;
    struct dbconn dbs[2]; /* the reads' (or every route's), the writes' */
    int ndbs;
};

/* What a connection may still take in this wake-up. */
struct budget {
    int records;
    size_t bytes;
};

/* The CGI variables the routes need, each NULL when not sent. */
struct cgi {
    const char *method, *uri, *document_uri, *script_name, *query;
};

static void readable(struct worker *w, struct conn *c, int64_t now);

static void
on_signal(int sig)
{
    if (sig == SIGUSR1)
        reopen = 1;
    else if (sigtab_action(sig, SIGTAB_WORKER) == SIGTAB_NOTE)
        sigtab_note(sig);
    else
        stopping = 1;
}

/*
 * install_signals: every signal a worker may be sent has a disposition of
 * ours, sigtab.h's worker column:
 *
 *   TERM, QUIT, HUP   graceful stop (HUP: what a reload means to a worker
 *                     is to be replaced; its default would kill it mid-way)
 *   XCPU              graceful stop too: past RLIMIT_CPU's soft limit, the
 *                     worker leaves to be replaced, as after max-requests
 *   USR1              reopen --log-file (logrotate), as the supervisor does
 *   PIPE, XFSZ        ignored: a front server that went away, a log past
 *                     RLIMIT_FSIZE, are error returns
 *   INT               left to its default: the immediate stop
 *   USR2, TTIN, TTOU, TSTP, WINCH, ALRM, PWR, the real-time ones...
 *                     logged and ignored (pkill -USR2 tfb-fcgi is no stop)
 *
 * The caught ones stay blocked except inside epoll_pwait(); *waitmask is
 * the mask to wait with, the one that lets them in.
 */
static int
install_signals(sigset_t *waitmask)
{
    struct sigaction sa;
    enum sigtab_do d;
    sigset_t set;
    int s;

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&set);
    for (s = 1; s <= SIGTAB_MAX; s++)
        if ((d = sigtab_action(s, SIGTAB_WORKER)) == SIGTAB_ACT ||
            d == SIGTAB_NOTE)
            sigaddset(&set, s);
    sa.sa_mask = set;
    for (s = 1; s <= SIGTAB_MAX; s++) {
        d = sigtab_action(s, SIGTAB_WORKER);
        if (d == SIGTAB_IGNORE)
            sa.sa_handler = SIG_IGN;
        else if (d == SIGTAB_ACT || d == SIGTAB_NOTE)
            sa.sa_handler = on_signal;
        else
            continue;
        /* A real-time signal a runtime keeps for itself (valgrind's,
         * a sanitizer's) refuses a handler: it is not ours to take. */
        if (sigaction(s, &sa, NULL) == -1 &&
            !(errno == EINVAL && s >= SIGRTMIN))
            return -1;
    }
    if (sigprocmask(SIG_BLOCK, &set, waitmask) == -1)
        return -1;
    for (s = 1; s <= SIGTAB_MAX; s++)
        if (sigismember(&set, s) == 1)
            sigdelset(waitmask, s);
    return 0;
}

/*
 * let_signals_in: epoll_pwait() lets a signal in only when it returns for
 * it (EINTR, nothing ready): one that comes while the worker runs stays
 * pending through every epoll_pwait() that finds a connection or its
 * database's answer ready, and under a steady load that is every one (a
 * stopped worker served on until it was killed at its stop deadline).
 * A pending one is let in here, the wait's mask set for a moment.
 */
static void
let_signals_in(const sigset_t *waitmask)
{
    static const sigset_t none;
    sigset_t pending, old;

    memset(&pending, 0, sizeof(pending)); /* the kernel fills _NSIG bits */
    if (sigpending(&pending) == -1 ||
        memcmp(&pending, &none, sizeof(pending)) == 0)
        return;
    if (sigprocmask(SIG_SETMASK, waitmask, &old) == 0)
        (void)sigprocmask(SIG_SETMASK, &old, NULL);
}

/*
 * cgi_find: the variables of struct cgi among the name-value pairs p[0,
 * n), the first of a name winning (as libfcgi's FCGX_GetParam did), their
 * values copied NUL-terminated into vals, which has room for n + 5 bytes
 * (each value is copied once, from a pair of its own).
 */
static void
cgi_find(const unsigned char *p, size_t n, char *vals, struct cgi *out)
{
    static const char *const names[] = {"REQUEST_METHOD", "REQUEST_URI",
                                        "DOCUMENT_URI", "SCRIPT_NAME",
                                        "QUERY_STRING"};
    const char **found[] = {&out->method, &out->uri, &out->document_uri,
                            &out->script_name, &out->query};
    const unsigned char *name, *value;
    size_t off = 0, nl, vl, i;

    memset(out, 0, sizeof(*out));
    while (wire_pair(p, n, &off, &name, &nl, &value, &vl))
        for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            if (*found[i] == NULL && nl == strlen(names[i]) &&
                memcmp(name, names[i], nl) == 0) {
                memcpy(vals, value, vl);
                vals[vl] = '\0';
                *found[i] = vals;
                vals += vl + 1;
            }
}

/* The path and query of the request, from the CGI variables. */
static void
request_target(const struct cgi *env, const char **path, size_t *len,
               const char **query)
{
    const char *uri = env->uri;

    *query = env->query;
    if (uri == NULL && (uri = env->document_uri) == NULL &&
        (uri = env->script_name) == NULL)
        uri = "";
    *path = uri;
    *len = strcspn(uri, "?");
    if (*query == NULL && uri[*len] == '?')
        *query = uri + *len + 1;
}

/*
 * server_timing: the phases so far as a Server-Timing header, so that a
 * browser's developer tools show where the time went (writing is not
 * over yet, so it is not in it).
 */
static const char *
server_timing(const struct worker *w, char *buf, size_t len)
{
    uint32_t us[SB_PHASES];

    sb_request_phases(w->slot, us);
    snprintf(buf, len,
             "Server-Timing: read;dur=%u.%03u, db;dur=%u.%03u, "
             "app;dur=%u.%03u\r\n",
             us[SB_PHASE_READING] / 1000, us[SB_PHASE_READING] % 1000,
             us[SB_PHASE_DATABASE] / 1000, us[SB_PHASE_DATABASE] % 1000,
             us[SB_PHASE_RENDERING] / 1000, us[SB_PHASE_RENDERING] % 1000);
    return buf;
}

/*
 * slow_log: one line for a request that took slow_ms or more, from its
 * first byte to its answer's first write: the route, the query and each
 * phase.  (An answer the peer reads late is the peer's time, bounded by
 * --write-timeout, not the request's.)
 */
static int
slow_log(const struct worker *w, const char *target, int status)
{
    uint32_t us[SB_PHASES], total = 0;
    int i;

    if (w->o->slow_ms <= 0)
        return 0;
    sb_request_phases(w->slot, us);
    for (i = 0; i < SB_PHASES; i++)
        total += us[i];
    if (total < (uint64_t)w->o->slow_ms * 1000)
        return 0;
    log_warn("slow request: %s %d in %u.%03u ms (read %u.%03u, db "
             "%u.%03u, app %u.%03u, write %u.%03u)",
             target, status, total / 1000, total % 1000,
             us[SB_PHASE_READING] / 1000, us[SB_PHASE_READING] % 1000,
             us[SB_PHASE_DATABASE] / 1000, us[SB_PHASE_DATABASE] % 1000,
             us[SB_PHASE_RENDERING] / 1000, us[SB_PHASE_RENDERING] % 1000,
             us[SB_PHASE_WRITING] / 1000, us[SB_PHASE_WRITING] % 1000);
    return 1;
}

/*
 * watch: c in the epoll set, edge-triggered, with EPOLLOUT while an
 * answer is queued on it.  Results: 0, or -1 (logged).
 */
static int
watch(struct worker *w, struct conn *c)
{
    int out = conn_queued(c) > 0;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET |
                                       (out ? EPOLLOUT : 0),
                             .data.ptr = c};

    if (c->polled && c->pollout == out)
        return 0;
    if (epoll_ctl(w->ep, c->polled ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd,
                  &ev) == -1) {
        log_err("worker: epoll_ctl: %s", strerror(errno));
        return -1;
    }
    c->polled = 1;
    c->pollout = out;
    return 0;
}

/* take: the first n bytes c holds are used; what was judged is stale. */
static void
take(struct conn *c, size_t n)
{
    conn_consume(c, n);
    c->judged_len = 0;
}

/*
 * writing: c waits for its peer to read what is queued: CONN_WRITING, no
 * more read from it, until the write deadline, or its request's read
 * deadline if that comes first (an answer of ours in the middle of one).
 * Results: -1, for "c reads no more now" (c is closed if it cannot be
 * watched).
 */
static int
writing(struct worker *w, struct conn *c, int64_t now)
{
    int64_t deadline = now + w->o->write_timeout_ms * MS;

    if (c->read_deadline_ns != 0 && c->read_deadline_ns < deadline)
        deadline = c->read_deadline_ns;
    conn_set(&w->conns, c, CONN_WRITING, deadline);
    if (watch(w, c) == -1)
        conn_close(&w->conns, c);
    return -1;
}

/*
 * written: c's queue is empty: back to the request it was reading, or
 * kept for the next, or closed; and what came meanwhile is read, since
 * its edge has passed.
 */
static void
written(struct worker *w, struct conn *c, int64_t now)
{
    if (c->close_after ||
        ((w->draining || c->shed) && c->read_deadline_ns == 0) ||
        watch(w, c) == -1) {
        conn_close(&w->conns, c);
        return;
    }
    if (c->read_deadline_ns != 0)
        conn_set(&w->conns, c, CONN_READING, c->read_deadline_ns);
    else
        conn_set(&w->conns, c, CONN_KEPT, now + w->o->idle_timeout_ms * MS);
    readable(w, c, now);
}

/*
 * say: a short answer of ours (a management answer, FCGI_END_REQUEST):
 * written now, or queued like any answer, c then writing.  close: c is
 * closed once it is written.  Results: 1 to go on reading c, -1 when c is
 * closed or writing.
 */
static int
say(struct worker *w, struct conn *c, const void *p, size_t n, int close,
    int64_t now)
{
    struct iovec iov = {(void *)p, n};

    if (conn_send(c, &iov, 1) == -1) {
        conn_close(&w->conns, c);
        return -1;
    }
    c->close_after = close;
    if (conn_queued(c) > 0)
        return writing(w, c, now);
    if (close) {
        conn_close(&w->conns, c);
        return -1;
    }
    return 1;
}

/* end_request: FCGI_END_REQUEST for id with a protocol status; as say(). */
static int
end_request(struct worker *w, struct conn *c, unsigned id, int status,
            int close, int64_t now)
{
    unsigned char rec[WIRE_END_REQUEST_LEN];

    return say(w, c, rec, wire_end_request(rec, id, 0, status), close, now);
}

/*
 * send_answer: w->r, finished, as the records of request id, then
 * FCGI_END_REQUEST with FCGI_CANT_MPX_CONN for each of mpx[0, nmpx):
 * written now, what the socket does not take queued on c.
 * Results: 0, or -1 when the peer is gone.
 */
static int
send_answer(struct worker *w, struct conn *c, unsigned id, const unsigned *mpx,
            size_t nmpx)
{
    struct iovec iov[WIRE_RESPONSE_IOV(ANSWER_MAX) + 1];
    unsigned char hdr[WIRE_RESPONSE_HDR_LEN(ANSWER_MAX)];
    unsigned char ends[MPX_ANSWERS * WIRE_END_REQUEST_LEN];
    char timing[160];
    const char *data;
    size_t len, i;
    int n;

    if (w->o->server_timing)
        w->r.extra = server_timing(w, timing, sizeof(timing));
    resp_finish(&w->r, &data, &len);
    if (len > ANSWER_MAX) {
        log_err("worker: an answer of %zu bytes, over %zu: 500", len,
                ANSWER_MAX);
        resp_error(&w->r, 500, "answer too large");
        resp_finish(&w->r, &data, &len);
    }
    sb_phase(w->slot, SB_WRITING);
    n = wire_response(iov, hdr, id, data, len);
    for (i = 0; i < nmpx && i < MPX_ANSWERS; i++)
        wire_end_request(ends + i * WIRE_END_REQUEST_LEN, mpx[i], 0,
                         WIRE_CANT_MPX_CONN);
    if (i > 0)
        iov[n++] = (struct iovec){ends, i * WIRE_END_REQUEST_LEN};
    return conn_send(c, iov, n);
}

/*
 * request_done: the request (method, path[0, len), query) is answered
 * (written or queued): counted on the scoreboard under its route (a
 * route of ours, else "other": a client's path is no label), logged if
 * slow, written to the access log, and the database told.
 */
static void
request_done(struct worker *w, const char *method, const char *path, size_t len,
             const char *query)
{
    struct access_entry e;
    char target[256] = "";
    int slow;

    db_request_done(w->ctx->db);
    if (w->ctx->db_write != NULL)
        db_request_done(w->ctx->db_write);
    if (w->o->slow_ms > 0)
        snprintf(target, sizeof(target), "%.*s%s%s",
                 (int)(len < 200 ? len : 200), path, *query ? "?" : "", query);
    slow = slow_log(w, target, w->r.status);
    if (route_find(path, len) != NULL)
        sb_request_label(w->slot, path, len);
    sb_request_end(w->slot, w->r.status, slow);
    if (w->o->access != NULL) {
        e = (struct access_entry){method,      path, len, query,
                                  w->r.status, 0,    {0}};
        if (!w->r.head_only && w->r.out.len > RESP_HEADROOM)
            e.bytes = w->r.out.len - RESP_HEADROOM;
        sb_request_phases(w->slot, e.us);
        access_line(w->o->access, &e);
    }
    w->served++;
}

/*
 * after_answer: what becomes of c once its answer is written or queued:
 * closed (close: not asked to keep it, a second request sent before the
 * first was answered, the worker leaving), or kept for the next request,
 * or writing until its peer reads the rest.  The request's read window is
 * over either way.  Results: 1 to go on reading c, -1 when it is closed or
 * writing.
 */
static int
after_answer(struct worker *w, struct conn *c, int close, int64_t now)
{
    c->read_deadline_ns = 0;
    c->read_start_ns = 0;
    c->close_after =
        close || c->shed || w->draining ||
        (w->o->max_requests > 0 && w->served >= w->o->max_requests);
    if (conn_queued(c) > 0)
        return writing(w, c, now);
    if (c->close_after) {
        conn_close(&w->conns, c);
        return -1;
    }
    conn_set(&w->conns, c, CONN_KEPT, now + w->o->idle_timeout_ms * MS);
    if (watch(w, c) == -1) {
        conn_close(&w->conns, c);
        return -1;
    }
    return 1;
}

/*
 * serve: the whole request v, at the front of what c holds: its CGI
 * variables found, the route's answer sent, c on to what follows
 * (after_answer).  Bytes that followed the request when it was judged
 * close the connection once it is answered: a peer that pipelines learns
 * at once that nobody will answer them.
 * Results: as after_answer().
 */
static int
serve(struct worker *w, struct conn *c, const struct wire_result *v,
      int64_t now)
{
    const unsigned char *p = c->in + c->in_off;
    unsigned mpx[MPX_ANSWERS];
    const char *path, *query;
    size_t path_len, nmpx;
    struct cgi env;
    long plen;

    /* wire_judge found the request within --request-max: it fits. */
    plen =
        wire_gather(p, v->len, WIRE_PARAMS, v->id, w->pairs, w->o->request_max);
    cgi_find(w->pairs, plen < 0 ? 0 : (size_t)plen, w->vals, &env);
    request_target(&env, &path, &path_len, &query);
    if (query == NULL)
        query = "";
    sb_request_begin(w->slot, c->read_start_ns, path, path_len);
    route_handle(w->ctx, env.method, path, path_len, query, &w->r);
    nmpx = wire_other_begins(p, v->len, v->id, mpx, MPX_ANSWERS - 1);
    if (v->next_id != 0)
        mpx[nmpx++] = v->next_id;
    take(c, v->len);
    if (send_answer(w, c, v->id, mpx, nmpx) == -1) {
        log_warn("%.*s: the server went away", (int)path_len, path);
        request_done(w, env.method, path, path_len, query);
        conn_close(&w->conns, c);
        return -1;
    }
    request_done(w, env.method, path, path_len, query);
    return after_answer(w, c, !v->keep || v->next_id != 0 || conn_held(c) > 0,
                        now);
}

/*
 * answer_too_big: the request over --request-max has been read to its
 * end: answer it 413, through the same path as any answer, and close.
 * Results: -1 (c is closed or writing).
 */
static int
answer_too_big(struct worker *w, struct conn *c, int64_t now)
{
    static const char route[] = "(over --request-max)";
    unsigned id = c->discard_id;

    c->discard_id = 0;
    sb_request_begin(w->slot, c->read_start_ns, route, sizeof(route) - 1);
    resp_begin(&w->r, 0);
    resp_error(&w->r, 413, "request larger than this server takes");
    if (send_answer(w, c, id, NULL, 0) == -1) {
        request_done(w, NULL, route, sizeof(route) - 1, "");
        conn_close(&w->conns, c);
        return -1;
    }
    request_done(w, NULL, route, sizeof(route) - 1, "");
    after_answer(w, c, 1, now);
    return -1;
}

/*
 * discard: one step of dropping a request over --request-max, record by
 * record (a header, then its content and padding as they come), up to its
 * empty FCGI_STDIN (or its FCGI_ABORT_REQUEST), then its 413.  nginx,
 * whose request it is, is then never cut off while still sending, which
 * it would count as the host's failure and retry elsewhere.  A peer that
 * sends more than DISCARD_MAX, or no FastCGI, is closed; the read
 * deadline runs all along.
 * Results: 1 a step made, 0 more bytes needed, -1 c closed or writing.
 */
static int
discard(struct worker *w, struct conn *c, int64_t now)
{
    size_t held = conn_held(c), k, clen;
    const unsigned char *h;

    if (c->discard_left > 0) {
        if (held == 0)
            return 0;
        k = held < c->discard_left ? held : c->discard_left;
        take(c, k);
        c->discard_left -= k;
        return 1;
    }
    if (c->discard_end)
        return answer_too_big(w, c, now);
    if (held < WIRE_HEADER_LEN)
        return 0;
    h = c->in + c->in_off;
    clen = (size_t)h[4] << 8 | h[5];
    c->discarded += WIRE_HEADER_LEN + clen + h[6];
    if (h[0] != 1 || c->discarded > DISCARD_MAX) {
        log_info("worker: closing a FastCGI connection: %s",
                 h[0] != 1 ? "not FastCGI version 1"
                           : "a request over --request-max going on past "
                             "1 MiB");
        conn_close(&w->conns, c);
        return -1;
    }
    if (((unsigned)h[2] << 8 | h[3]) == c->discard_id &&
        (h[1] == WIRE_ABORT_REQUEST || (h[1] == WIRE_STDIN && clen == 0)))
        c->discard_end = 1;
    c->discard_left = clen + h[6];
    take(c, WIRE_HEADER_LEN);
    return 1;
}

/*
 * whole_records: the offset past the last whole record among p[0, n),
 * walking from off, itself the end of a whole record.
 */
static size_t
whole_records(const unsigned char *p, size_t n, size_t off)
{
    size_t rec;

    while (n - off >= WIRE_HEADER_LEN) {
        rec = WIRE_HEADER_LEN + ((size_t)p[off + 4] << 8 | p[off + 5]) +
              p[off + 6];
        if (n - off < rec)
            break;
        off += rec;
    }
    return off;
}

/*
 * judge: what c holds, as wire_judge() says, but without asking it again
 * after WIRE_MORE when nothing came that could change its answer: a
 * record made whole, a header made whole, the first byte of a record.  A
 * peer trickling a request byte by byte then costs a walk of the request
 * per record, not per byte.
 */
static void
judge(struct worker *w, struct conn *c, struct wire_result *v)
{
    size_t n = conn_held(c), was = c->judged_len, whole;
    const unsigned char *p;

    if (n == 0) { /* (and c->in may be NULL) */
        memset(v, 0, sizeof(*v));
        v->verdict = WIRE_MORE;
        return;
    }
    p = c->in + c->in_off;
    whole = whole_records(p, n, was != 0 ? c->judged_whole : 0);
    if (was != 0 && whole == c->judged_whole &&
        (was - whole >= WIRE_HEADER_LEN || n - whole < WIRE_HEADER_LEN) &&
        (was > whole || n == whole)) {
        memset(v, 0, sizeof(*v));
        v->verdict = WIRE_MORE;
        return;
    }
    wire_judge(p, n, c->skip, &w->lim, v);
    c->judged_len = v->verdict == WIRE_MORE ? n : 0;
    c->judged_whole = whole;
}

/*
 * start_discard: the request id on c went past --request-max, well-formed
 * so far: drop it to its end, then answer 413 (discard()).
 */
static void
start_discard(struct conn *c, unsigned id)
{
    log_info("worker: a request over --request-max: reading it to its end "
             "to answer 413");
    c->discard_id = id;
    c->discard_left = c->discarded = 0;
    c->discard_end = 0;
    c->judged_len = 0;
}

/*
 * act: judge what c holds and act on the verdict.
 * Results: 1 one verdict acted on, c still reading; 0 more bytes needed;
 * -1 c closed or writing.
 */
static int
act(struct worker *w, struct conn *c, int64_t now)
{
    unsigned char answer[WIRE_VALUES_MAX];
    struct wire_result v;
    size_t n;

    judge(w, c, &v);
    switch (v.verdict) {
    case WIRE_MORE:
        return 0;
    case WIRE_BAD:
        if (v.too_big) {
            start_discard(c, v.id);
            return 1;
        }
        log_info("worker: closing a FastCGI connection: %s", v.why);
        conn_close(&w->conns, c);
        return -1;
    case WIRE_REQUEST:
        return serve(w, c, &v, now);
    case WIRE_MANAGEMENT:
        n = wire_answer(answer, c->in + c->in_off, &v, &w->values);
        take(c, v.len);
        return say(w, c, answer, n, 0, now);
    case WIRE_OTHER_ROLE:
        c->skip = v.id;
        take(c, v.len);
        return end_request(w, c, v.id, WIRE_UNKNOWN_ROLE, 0, now);
    case WIRE_SKIP:
        take(c, v.len);
        return 1;
    case WIRE_ABORTED:
        take(c, v.len);
        return end_request(w, c, v.id, WIRE_REQUEST_COMPLETE, !v.keep, now);
    }
    return -1;
}

/*
 * fill: what waits on c's socket into its buffer, within the budget.  The
 * first byte after an answer opens a request's window: its read deadline
 * runs from then.  Results: bytes read (> 0); 0 when none waits; -1 when
 * the peer is gone, or sent more than a request may be without it being
 * judged (cannot happen: wire_judge decides within request_max + a header).
 */
static ssize_t
fill(struct worker *w, struct conn *c, struct budget *b, int64_t now)
{
    ssize_t got;

    if (c->drained)
        return 0;
    if ((got = conn_recv(c, b->bytes, w->in_cap)) <= 0)
        return got;
    /* Less than asked, with room left: the socket is empty; what comes
     * next brings an edge of its own. */
    c->drained = c->in_len < c->in_cap && (size_t)got < b->bytes;
    b->bytes -= (size_t)got;
    if (c->state == CONN_KEPT) {
        c->read_deadline_ns = now + w->o->read_timeout_ms * MS;
        conn_set(&w->conns, c, CONN_READING, c->read_deadline_ns);
    }
    /* The reading phase starts when this worker first sees the request's
     * bytes, timed now: `now` is the wake-up's, and the connections
     * served before this one in the same wake-up are time the request
     * waited for the worker, not time reading. */
    if (c->read_start_ns == 0)
        c->read_start_ns = sb_now_ns();
    return got;
}

/*
 * readable: read c and act on what it holds, until it holds nothing whole
 * and its socket nothing more, or its turn's budget is spent (then it is
 * marked ready for the next turn).  c may be closed or writing on return.
 */
static void
readable(struct worker *w, struct conn *c, int64_t now)
{
    struct budget b = {WAKE_RECORDS, WAKE_BYTES};
    ssize_t got;
    int step;

    c->drained = 0;
    for (;;) {
        if (b.records == 0 || b.bytes == 0) {
            c->ready = w->turn;
            w->ready = 1;
            return;
        }
        step = c->discard_id != 0 ? discard(w, c, now) : act(w, c, now);
        if (step == -1)
            return;
        if (step == 1) {
            b.records--;
            continue;
        }
        if ((got = fill(w, c, &b, now)) == -1) {
            conn_close(&w->conns, c); /* the peer went away */
            return;
        }
        if (got == 0) {
            if (watch(w, c) == -1)
                conn_close(&w->conns, c);
            return;
        }
    }
}

/*
 * on_event: what epoll reported for c.  A connection writing takes only
 * the socket's room (or its error): what it sent meanwhile waits.
 */
static void
on_event(struct worker *w, struct conn *c, uint32_t events, int64_t now)
{
    int r;

    if (c->state != CONN_WRITING) {
        readable(w, c, now);
        return;
    }
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
        return;
    if ((r = conn_flush(c)) == -1)
        conn_close(&w->conns, c);
    else if (r == 1)
        written(w, c, now);
}

/*
 * run_ready: the connections whose budget ran out on an earlier turn get
 * their next one; those marked this turn wait for the next.
 */
static void
run_ready(struct worker *w, int64_t now)
{
    struct conn *c;
    int i;

    if (!w->ready)
        return;
    w->ready = 0;
    for (i = 0; i < w->conns.high; i++) {
        c = &w->conns.c[i];
        if (c->ready == 0)
            continue;
        if (c->ready == w->turn && c->state != CONN_FREE) {
            w->ready = 1;
            continue;
        }
        c->ready = 0;
        if (c->state == CONN_READING || c->state == CONN_KEPT)
            readable(w, c, now);
    }
}

/* listen_on: the listening socket in the epoll set, or out of it. */
static int
listen_on(struct worker *w, int on)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE};

    if (w->listening == on)
        return 0;
    if (epoll_ctl(w->ep, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, w->o->listen_fd,
                  &ev) == -1) {
        log_err("worker: epoll_ctl on the listening socket: %s",
                strerror(errno));
        return -1;
    }
    w->listening = on;
    return 0;
}

/*
 * accept_one: take a connection from the listening socket and look at it
 * at once: the front server usually writes its request right after it
 * connects, so most are served without entering the epoll set.  A full
 * table makes room by closing the connection kept longest ago: kept
 * connections are a cache; with none kept, the worker stops listening
 * and the others take the next ones.
 * Results: 0, or -1 when the listening socket fails for good.
 */
static int
accept_one(struct worker *w, int64_t now)
{
    struct sockaddr_storage sa;
    socklen_t salen = sizeof(sa);
    struct conn *c;
    int fd;

    if (w->conns.used == w->conns.max && conns_lru(&w->conns) == NULL)
        return listen_on(w, 0);
    fd = accept4(w->o->listen_fd, (struct sockaddr *)&sa, &salen,
                 SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd == -1) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
            errno == ECONNABORTED)
            return 0;
        /* A failing listener (descriptors exhausted...) must not spin the
         * CPU: back off, and give up after a minute of nothing else. */
        if (++w->failures > 600) {
            log_err("worker: accept keeps failing: %s", strerror(errno));
            return -1;
        }
        if (w->failures == 1)
            log_warn("worker: accept: %s", strerror(errno));
        nanosleep(&(struct timespec){0, 100 * MS}, NULL);
        return 0;
    }
    w->failures = 0;
    if (!allow_ok(&w->o->allow, &sa)) {
        close(fd);
        return 0;
    }
    if (sa.ss_family != AF_UNIX)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
    sb_accepted(w->slot);
    if (w->conns.used == w->conns.max) {
        log_debug("worker: --max-conns reached: closing the connection "
                  "kept longest for a new one");
        conn_close(&w->conns, conns_lru(&w->conns));
    }
    c = conn_open(&w->conns, fd, now + w->o->read_timeout_ms * MS);
    readable(w, c, now);
    return 0;
}

/*
 * let_go: the kept connections closed now, every other one marked to
 * close after its next answer (c->shed).  A kept connection whose next
 * request has come but is not read yet is one of the others: closed, it
 * would lose that request (conn_pending).  *now, *later: how many of each.
 */
static void
let_go(struct worker *w, int *now, int *later)
{
    struct conn *c;
    int i;

    *now = *later = 0;
    for (i = 0; i < w->conns.high; i++) {
        c = &w->conns.c[i];
        if (c->state == CONN_FREE)
            continue;
        if (c->state == CONN_KEPT && !conn_pending(c)) {
            conn_close(&w->conns, c);
            (*now)++;
        } else {
            c->shed = 1;
            (*later)++;
        }
    }
}

/* drain: the worker leaves: accept no more, let every connection go. */
static void
drain(struct worker *w)
{
    int now, later;

    if (w->draining)
        return;
    w->draining = 1;
    listen_on(w, 0);
    let_go(w, &now, &later);
}

/*
 * shed: the supervisor asked (scoreboard.h: sb_shed): every connection
 * let go, for the front server to open new ones, which the pool's new
 * workers take their share of.
 */
static void
shed(struct worker *w)
{
    int now, later;

    let_go(w, &now, &later);
    log_debug("worker: the pool grew: %d kept connections closed, %d more "
              "after their answer",
              now, later);
}

/* expire: close the connections past their deadline. */
static void
expire(struct worker *w, int64_t now)
{
    int n;

    if ((n = conns_expire(&w->conns, CONN_WRITING, now)) > 0)
        log_info("worker: closed %d connection%s whose peer did not read "
                 "its answer in time",
                 n, n == 1 ? "" : "s");
    if ((n = conns_expire(&w->conns, CONN_FREE, now)) > 0)
        log_debug("worker: closed %d connections past their deadline", n);
}

/*
 * The database's reconnection.  A handle whose connection was lost (a
 * stalled server, a restart) says through db_retry_in() when it may try
 * again; the loop then starts the connection and drives it one step per
 * readiness of its socket, or at the current host's deadline
 * (db_connect_left), never waiting on it.  Meanwhile the database routes
 * answer 503 at once (db.h: a request never waits for a connection under
 * way during an outage) and the others are served as usual.  The one
 * exception is the first attempt after a connection that ended while
 * idle (watch_idle): a request that needs it finishes it (db.h:
 * db_idle_check).
 *
 * The socket leaves the epoll set before each step and comes back after
 * it, whatever its number: libpq closes it and opens another at any step
 * (the next address, the next host), and a number alone cannot tell an
 * old socket from a new one.  So a number is taken out of the set only
 * while it is still the attempt's (or the connection's) socket: one
 * closed under the loop, by a request that finished the attempt, left the
 * set with it, and its number may be a client's now.
 */

/*
 * db_unwatch: d's socket out of the epoll set, if that number is still the
 * database's: a request may have finished the attempt itself (db.h:
 * db_idle_check), and a socket libpq closed meanwhile left the set with
 * it, its number free for a client's.
 */
static void
db_unwatch(struct worker *w, struct dbconn *d)
{
    short events;

    if (d->fd != -1 &&
        (d->fd == db_pollfd(d->db, &events) || d->fd == db_idle_fd(d->db)))
        (void)epoll_ctl(w->ep, EPOLL_CTL_DEL, d->fd, NULL);
    d->fd = -1;
}

/*
 * db_step: d's connection one step further (start: begun), its socket
 * then watched for what the next step needs, level-triggered, until the
 * connection is made or given up.  A socket that cannot be watched
 * leaves the step to the host's deadline.
 */
static void
db_step(struct worker *w, struct dbconn *d, int start)
{
    struct epoll_event ev = {.data.ptr = d};
    short events;
    int fd;

    db_unwatch(w, d);
    if ((start ? db_connect_start(d->db) : db_connect_step(d->db)) !=
            DB_PENDING ||
        (fd = db_pollfd(d->db, &events)) < 0)
        return;
    ev.events =
        ((events & POLLIN) ? EPOLLIN : 0) | ((events & POLLOUT) ? EPOLLOUT : 0);
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
        log_warn("worker: epoll_ctl on the database's socket: %s",
                 strerror(errno));
        return;
    }
    d->fd = fd;
}

/* db_of: the handle an epoll event's tag names, or NULL (not one). */
static struct dbconn *
db_of(struct worker *w, void *tag)
{
    int i;

    for (i = 0; i < w->ndbs; i++)
        if (tag == &w->dbs[i])
            return &w->dbs[i];
    return NULL;
}

/*
 * watch_idle: d's connection, once made, watched for input between
 * requests (db.h: db_idle_fd), level-triggered: a server that ends it is
 * seen at once.  Added once per connection, when its epoch is new; a
 * closed one left the epoll set with its socket.
 */
static void
watch_idle(struct worker *w, struct dbconn *d)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = d};
    int fd;

    if (d->epoch == db_epoch(d->db))
        return;
    d->epoch = db_epoch(d->db);
    if ((fd = db_idle_fd(d->db)) < 0)
        return;
    /* Made by a request (db_connect) out of an attempt this loop watched:
     * the same socket is still in the set (EEXIST below), or a closed one
     * left it. */
    d->fd = -1;
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) == -1 &&
        (errno != EEXIST || epoll_ctl(w->ep, EPOLL_CTL_MOD, fd, &ev) == -1))
        log_warn("worker: epoll_ctl on the database's socket: %s",
                 strerror(errno));
}

/*
 * tend_dbs: each handle's reconnection: a step under way whose host's
 * deadline has come is taken (it gives that host up), and a handle whose
 * backoff is over starts one, unless the worker is leaving.  Idle or not:
 * a worker that no request reaches (with kept connections nginx may send
 * all its requests to the others) holds its connection again once the
 * database is back.
 */
static void
tend_dbs(struct worker *w)
{
    struct dbconn *d;
    int i;

    for (i = 0; i < w->ndbs; i++) {
        d = &w->dbs[i];
        if (db_connect_left(d->db) == 0)
            db_step(w, d, 0);
        else if (!w->draining && db_retry_in(d->db) == 0)
            db_step(w, d, 1);
    }
}

/*
 * db_wait_ms: how long the loop may wait for the database's sake: until a
 * host's deadline of a connection under way, or the end of a backoff
 * (none while leaving); -1: as long as it likes.
 */
static int64_t
db_wait_ms(const struct worker *w)
{
    int64_t ms = -1, t;
    int i;

    for (i = 0; i < w->ndbs; i++) {
        t = db_connect_left(w->dbs[i].db);
        if (t < 0 && !w->draining)
            t = db_retry_in(w->dbs[i].db);
        if (t >= 0 && (ms < 0 || t < ms))
            ms = t;
    }
    return ms;
}

/*
 * wait_ms: epoll's timeout: none when a connection is ready, else until
 * the earliest deadline, or until the database needs a step (db_wait_ms),
 * or until the access log's buffer is due.
 */
static int
wait_ms(const struct worker *w, int64_t now)
{
    int64_t next = conns_deadline(&w->conns);
    int64_t db = db_wait_ms(w);
    int64_t log = access_due_ms(w->o->access);
    int64_t ms;

    if (w->ready)
        return 0;
    if (next == INT64_MAX)
        ms = -1;
    else if (next <= now)
        ms = 0;
    else
        ms = (next - now + MS - 1) / MS;
    if (db >= 0 && (ms < 0 || db < ms))
        ms = db;
    if (log >= 0 && (ms < 0 || log < ms))
        ms = log;
    return (int)(ms > INT_MAX ? INT_MAX : ms);
}

/*
 * setup: the non-blocking listening socket, the epoll set, the signals,
 * the connection table and the buffers a request is read out of.
 * Results: 0, or -1 (logged).
 */
static int
setup(struct worker *w)
{
    int fl, fd = w->o->listen_fd;

    w->ep = -1;
    w->turn = 1;
    w->lim.request_max = w->o->request_max;
    /* Room to see the header that goes past request_max. */
    w->in_cap = w->o->request_max + WIRE_HEADER_LEN;
    w->values.max_conns = (unsigned)w->o->max_conns;
    w->values.max_reqs = (unsigned)w->o->max_conns;
    if (w->ctx->db != NULL)
        w->dbs[w->ndbs++] = (struct dbconn){w->ctx->db, -1, 0};
    if (w->ctx->db_write != NULL)
        w->dbs[w->ndbs++] = (struct dbconn){w->ctx->db_write, -1, 0};
    if ((fl = fcntl(fd, F_GETFL)) == -1 ||
        fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1 ||
        (w->ep = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
        install_signals(&w->waitmask) == -1) {
        log_err("worker: cannot set up: %s", strerror(errno));
        return -1;
    }
    if ((w->pairs = malloc(w->o->request_max)) == NULL ||
        (w->vals = malloc(w->o->request_max + 5)) == NULL ||
        conns_init(&w->conns, w->o->max_conns) == -1) {
        log_err("worker: out of memory");
        return -1;
    }
    return listen_on(w, 1);
}

static void
teardown(struct worker *w)
{
    if (w->conns.c != NULL)
        conns_free(&w->conns);
    free(w->pairs);
    free(w->vals);
    if (w->ep != -1)
        close(w->ep);
    resp_free(&w->r);
}

/* reopen_log: SIGUSR1's work: --log-file again, for logrotate. */
static void
reopen_log(const struct worker_opts *opts)
{
    reopen = 0;
    if (opts->log_file == NULL)
        log_info("worker: SIGUSR1: no --log-file to reopen");
    else if (log_open_file(opts->log_file) == -1)
        log_err("worker: SIGUSR1: cannot reopen %s: %s", opts->log_file,
                strerror(errno));
    else
        log_info("worker: SIGUSR1: reopened %s", opts->log_file);
    access_reopen(opts->access);
}

/*
 * loop_turn: one turn of the loop: wait, tend the database's reconnection
 * (first, so that the requests of this turn find it under way rather than
 * make it themselves), act on what woke us, give the ready connections
 * their turn, close what is past its deadline.
 * Results: 0, or -1 when the listening socket failed for good.
 */
static int
loop_turn(struct worker *w)
{
    struct epoll_event ev[EVENTS];
    int64_t now = sb_now_ns();
    struct dbconn *d;
    int i, n;

    /* Reading, or an answer waiting for its peer: a deadline runs. */
    sb_set_state(w->slot, w->conns.used > w->conns.kept ? SB_READING : SB_IDLE);
    for (i = 0; i < w->ndbs; i++)
        watch_idle(w, &w->dbs[i]);
    n = epoll_pwait(w->ep, ev, EVENTS, wait_ms(w, now), &w->waitmask);
    if (n >= 0)
        let_signals_in(&w->waitmask);
    now = sb_now_ns();
    tend_dbs(w);
    for (i = 0; i < n; i++) {
        struct conn *c = ev[i].data.ptr;

        if (c == NULL) {
            if (accept_one(w, now) == -1)
                return -1;
        } else if ((d = db_of(w, c)) != NULL) {
            /* Connecting (unless tend_dbs settled it already), or idle. */
            if (db_connect_left(d->db) >= 0)
                db_step(w, d, 0);
            else
                (void)db_idle_check(d->db);
        } else if (c->state != CONN_FREE) {
            /* (A connection closed earlier in this batch is skipped.) */
            on_event(w, c, ev[i].events, now);
        }
    }
    run_ready(w, now);
    expire(w, now);
    access_tick(w->o->access);
    w->turn++;
    return 0;
}

int
worker_run(struct handler_ctx *ctx, const struct worker_opts *opts)
{
    struct worker w;
    int ret = 0;

    memset(&w, 0, sizeof(w));
    w.ctx = ctx;
    w.o = opts;
    w.slot = sb_attach_env();
    if (setup(&w) == -1) {
        teardown(&w);
        return -1;
    }
    sb_set_pid(w.slot, getpid());
    for (;;) {
        if (sigtab_pending())
            sigtab_report(SIGTAB_WORKER);
        if (reopen)
            reopen_log(opts);
        if (stopping ||
            (opts->max_requests > 0 && w.served >= opts->max_requests))
            drain(&w);
        else if (sb_take_shed(w.slot))
            shed(&w);
        if (w.draining && w.conns.used == 0)
            break;
        /* Room, or a kept connection to make room with: take new ones. */
        if (!w.draining && listen_on(&w, w.conns.used < w.conns.max ||
                                             w.conns.kept > 0) == -1) {
            ret = -1;
            break;
        }
        if (loop_turn(&w) == -1) {
            ret = -1;
            break;
        }
    }
    if (opts->max_requests > 0 && w.served >= opts->max_requests)
        log_info("worker: served %ld requests, leaving to be replaced",
                 w.served);
    sb_set_state(w.slot, SB_EXITING);
    teardown(&w);
    return ret;
}
