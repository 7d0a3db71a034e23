/*
 * worker.c: see worker.h.
 *
 * The worker owns its connections.  It waits in epoll_pwait() on the
 * pool's listening socket and on every connection it holds, accepts,
 * looks at what a connection's socket holds without taking it (recv with
 * MSG_PEEK), and asks wire_judge() what that is.  Only a whole request
 * goes to libfcgi, which reads it from the socket and writes the answer:
 * libfcgi then never waits for a slow peer, and never sees a record that
 * could crash it.  Connections that are not ready cost nothing but a
 * descriptor: a kept connection (FCGI_KEEP_CONN) no longer pins the
 * worker, which serves whichever connection has a request.
 *
 * Why not FCGX_Accept_r's own accept: besides the above, after accepting
 * a unix-socket connection libfcgi 2.4.2 polls it for a while, and a
 * signal during that poll makes it close a connection the front server has
 * just written to (nginx: "writev() failed (32: Broken pipe) while sending
 * request to upstream", a 502).  libfcgi is given a socket that does not
 * listen as its own, so that it never accepts anything.
 *
 * Waking: the listening socket is non-blocking, shared by the pool, and
 * each worker waits on it with EPOLLEXCLUSIVE, so a connection wakes one
 * waiter (the kernel wakes the most recent first), not the whole pool; a
 * worker that loses the race to accept() gets EAGAIN.  Connections are
 * watched edge-triggered: a peek that finds half a request must not make
 * the next wait return at once.
 *
 * Stopping: SIGTERM, SIGQUIT, SIGHUP and SIGXCPU stay blocked except inside
 * epoll_pwait(), so they end a wait and never cut a request short.  Then
 * the worker stops accepting, closes its kept connections, serves the
 * requests still arriving (each within its read deadline) and returns.
 */
#define _GNU_SOURCE
#include "worker.h"

#include <errno.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

static volatile sig_atomic_t stopping, reopen;

struct worker {
    struct handler_ctx *ctx;
    const struct worker_opts *o;
    struct sb_slot *slot;
    struct conns conns;
    int ep;
    int listening; /* the listening socket is in the epoll set */
    int draining;  /* stopping: serve what arrives, accept nothing */
    int dead_fd;   /* libfcgi's listening socket, which does not listen */
    int failures;  /* accept() failures in a row */
    long served;
    sigset_t waitmask;   /* the mask inside epoll_pwait: stops let in */
    unsigned char *peek; /* room for o->request_max bytes and one more */
    struct wire_limits lim;
    struct wire_values values;
    FCGX_Request req;
    struct response r;
};

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
 * ours, sigtab.h's worker column, set before FCGX_Init() so that libfcgi,
 * which installs handlers of its own only where it finds the default,
 * installs none:
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
        if (sigaction(s, &sa, NULL) == -1)
            return -1;
    }
    if (sigprocmask(SIG_BLOCK, &set, waitmask) == -1)
        return -1;
    for (s = 1; s <= SIGTAB_MAX; s++)
        if (sigismember(&set, s) == 1)
            sigdelset(waitmask, s);
    return 0;
}

/* The path and query of the request, from the CGI variables. */
static void
request_target(FCGX_ParamArray env, const char **path, size_t *len,
               const char **query)
{
    const char *uri = FCGX_GetParam("REQUEST_URI", env);

    *query = FCGX_GetParam("QUERY_STRING", env);
    if (uri == NULL && (uri = FCGX_GetParam("DOCUMENT_URI", env)) == NULL &&
        (uri = FCGX_GetParam("SCRIPT_NAME", env)) == NULL)
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
 * first byte to its last written: the route, the query and each phase.
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
 * serve: libfcgi reads the whole request the socket holds, the route
 * answers it, libfcgi writes the answer and FCGI_END_REQUEST.  The
 * connection stays open: closing or keeping it is ours to decide.  Each
 * phase of the request is timed on the scoreboard.
 * Results: 0, or -1 when libfcgi could not read or write it (logged); the
 * caller then closes it, unless c->fd is -1 (libfcgi's error path closed
 * it already).
 */
static int
serve(struct worker *w, struct conn *c)
{
    FCGX_Request *req = &w->req;
    const char *method, *path, *query, *data;
    char sink[4096], timing[160], target[256] = "";
    size_t path_len, len;
    int ret = 0, slow;

    req->ipcFd = c->fd;
    /* FCGX_Accept_r closes the connection of the request before unless it
     * is to be kept: this one is, and libfcgi does not close ours. */
    req->keepConnection = 1;
    /* Should libfcgi close it all the same (its error path), a detached
     * request's close is a plain one, without the lingering wait below. */
    req->detached = 1;
    if (FCGX_Accept_r(req) < 0) {
        /* Its error path has closed the connection already. */
        log_warn("worker: libfcgi refused a request that looked whole");
        req->ipcFd = -1;
        c->fd = -1;
        return -1;
    }
    method = FCGX_GetParam("REQUEST_METHOD", req->envp);
    request_target(req->envp, &path, &path_len, &query);
    if (query == NULL)
        query = "";
    sb_request_begin(w->slot, c->read_start_ns, path, path_len);
    c->read_start_ns = 0;
    route_handle(w->ctx, method, path, path_len, query, &w->r);
    /* Read the body to its end: libfcgi must take all of this request's
     * bytes from the socket, and no more, for the next peek to start at a
     * record.  The request's size is bounded by --request-max. */
    while (FCGX_GetStr(sink, sizeof(sink), req->in) > 0)
        continue;
    if (w->o->server_timing)
        w->r.extra = server_timing(w, timing, sizeof(timing));
    resp_finish(&w->r, &data, &len);
    sb_phase(w->slot, SB_WRITING);
    /*
     * What FCGX_Finish_r does (the streams' last records, FCGI_END_REQUEST
     * with them), but for its close: after a failed write it closes the
     * connection itself, lingering (shutdown, then read until the peer
     * closes, waiting up to 2 s for each read), which a peer that stopped
     * reading but not writing makes last 2 s or, trickling, for ever, the
     * worker held meanwhile; and the descriptor it closed would still be
     * ours.  The connection stays open here; closing it is ours.
     */
    if (FCGX_PutStr(data, (int)len, req->out) < 0)
        ret = -1;
    if (FCGX_FClose(req->err) != 0)
        ret = -1;
    if (FCGX_FClose(req->out) != 0)
        ret = -1;
    if (ret == -1)
        log_warn("%.*s: the server went away", (int)path_len, path);
    if (ret == 0 && FCGX_GetError(req->in) != 0) {
        log_warn("%.*s: libfcgi could not read the request", (int)path_len,
                 path);
        ret = -1;
    }
    /* The path and query live in libfcgi's parameters, which FCGX_Free
     * frees: the slow log keeps a copy. */
    if (w->o->slow_ms > 0)
        snprintf(target, sizeof(target), "%.*s%s%s",
                 (int)(path_len < 200 ? path_len : 200), path,
                 *query ? "?" : "", query);
    FCGX_Free(req, 0);
    req->ipcFd = -1;
    path = query = NULL;
    db_request_done(w->ctx->db);
    if (w->ctx->db_write != NULL)
        db_request_done(w->ctx->db_write);
    slow = slow_log(w, target, w->r.status);
    sb_request_end(w->slot, w->r.status, slow);
    w->served++;
    return ret;
}

/* watch: c in the epoll set, edge-triggered.  Results: 0, or -1. */
static int
watch(struct worker *w, struct conn *c)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET,
                             .data.ptr = c};

    if (c->polled)
        return 0;
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev) == -1) {
        log_err("worker: epoll_ctl: %s", strerror(errno));
        return -1;
    }
    c->polled = 1;
    return 0;
}

/* take: consume n bytes already seen (peeked) from c's socket. */
static int
take(struct conn *c, size_t n)
{
    char sink[4096];
    ssize_t got;

    while (n > 0) {
        got = recv(c->fd, sink, n < sizeof(sink) ? n : sizeof(sink),
                   MSG_DONTWAIT);
        if (got <= 0)
            return -1;
        n -= (size_t)got;
    }
    return 0;
}

/* say: write a short answer of ours; it fits the socket, or we give up. */
static int
say(struct conn *c, const unsigned char *p, size_t n)
{
    return send(c->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)n ? 0
                                                                        : -1;
}

/* end_request: FCGI_END_REQUEST for id with a protocol status. */
static int
end_request(struct conn *c, unsigned id, int status)
{
    unsigned char rec[WIRE_END_REQUEST_LEN];

    return say(c, rec, wire_end_request(rec, id, 0, status));
}

/*
 * after_request: what becomes of c once a request on it is answered: kept
 * for the next, or closed (not asked to keep it, a second request sent
 * before the first was answered, the worker leaving).  pipelined: bytes
 * followed the request when it was judged; libfcgi reads its socket by
 * the buffer and may have taken them with it, to be lost with its
 * buffer: the connection is closed, so that the peer learns it at once
 * instead of waiting on a request nobody will answer.
 */
static void
after_request(struct worker *w, struct conn *c, const struct wire_result *v,
              int pipelined, int64_t now)
{
    if (v->next_id != 0)
        end_request(c, v->next_id, WIRE_CANT_MPX_CONN);
    if (!v->keep || v->next_id != 0 || pipelined || w->draining ||
        (w->o->max_requests > 0 && w->served >= w->o->max_requests)) {
        conn_close(&w->conns, c);
        return;
    }
    c->state = CONN_KEPT;
    c->deadline_ns = now + w->o->idle_timeout_ms * MS;
    if (watch(w, c) == -1)
        conn_close(&w->conns, c);
}

/*
 * readable: look at what c's socket holds and act on it, until it holds
 * nothing whole.  c may be closed on return.
 */
static void
readable(struct worker *w, struct conn *c, int64_t now)
{
    struct wire_result v;
    unsigned char answer[WIRE_VALUES_MAX];
    ssize_t n;

    for (;;) {
        n = recv(c->fd, w->peek, w->lim.request_max + 1,
                 MSG_PEEK | MSG_DONTWAIT);
        if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
            conn_close(&w->conns, c); /* the peer went away */
            return;
        }
        if (n == -1) {
            if (c->state != CONN_KEPT && watch(w, c) == -1)
                conn_close(&w->conns, c);
            return;
        }
        if (c->state == CONN_KEPT) {
            c->state = CONN_READING;
            c->deadline_ns = now + w->o->read_timeout_ms * MS;
        }
        /* The reading phase starts when this worker first sees the
         * request's bytes, timed now: `now` is the wake-up's, and the
         * connections served before this one in the same wake-up are
         * time the request waited for the worker, not time reading. */
        if (c->read_start_ns == 0)
            c->read_start_ns = sb_now_ns();
        wire_judge(w->peek, (size_t)n, c->skip, &w->lim, &v);
        switch (v.verdict) {
        case WIRE_MORE:
            if (watch(w, c) == -1)
                conn_close(&w->conns, c);
            return;
        case WIRE_BAD:
            log_info("worker: closing a FastCGI connection: %s", v.why);
            conn_close(&w->conns, c);
            return;
        case WIRE_REQUEST:
            if (serve(w, c) == -1)
                conn_close(&w->conns, c);
            else
                after_request(w, c, &v, v.len < (size_t)n, now);
            return;
        case WIRE_MANAGEMENT:
            if (take(c, v.len) == -1 ||
                say(c, answer, wire_answer(answer, w->peek, &v, &w->values)) ==
                    -1) {
                conn_close(&w->conns, c);
                return;
            }
            break;
        case WIRE_OTHER_ROLE:
            c->skip = v.id;
            if (take(c, v.len) == -1 ||
                end_request(c, v.id, WIRE_UNKNOWN_ROLE) == -1) {
                conn_close(&w->conns, c);
                return;
            }
            break;
        case WIRE_SKIP:
            if (take(c, v.len) == -1) {
                conn_close(&w->conns, c);
                return;
            }
            break;
        case WIRE_ABORTED:
            if (take(c, v.len) == -1 ||
                end_request(c, v.id, WIRE_REQUEST_COMPLETE) == -1) {
                conn_close(&w->conns, c);
                return;
            }
            if (!v.keep) {
                conn_close(&w->conns, c);
                return;
            }
            break;
        }
        /* Whatever was consumed, the request window starts afresh. */
        c->state = CONN_READING;
        c->deadline_ns = now + w->o->read_timeout_ms * MS;
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
 * connects, so most are served without entering the epoll set.
 * Results: 0, or -1 when the listening socket fails for good.
 */
static int
accept_one(struct worker *w, int64_t now)
{
    struct sockaddr_storage sa;
    socklen_t salen = sizeof(sa);
    struct conn *c;
    int fd;

    fd = accept4(w->o->listen_fd, (struct sockaddr *)&sa, &salen, SOCK_CLOEXEC);
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
    c = conn_open(&w->conns, fd, now + w->o->read_timeout_ms * MS);
    readable(w, c, now);
    /* Full: let the other workers take the next ones. */
    if (w->conns.used == w->conns.max)
        return listen_on(w, 0);
    return 0;
}

/* drain: the worker leaves: accept no more, close what waits for nothing. */
static void
drain(struct worker *w)
{
    int i;

    if (w->draining)
        return;
    w->draining = 1;
    listen_on(w, 0);
    for (i = 0; i < w->conns.high; i++)
        if (w->conns.c[i].state == CONN_KEPT)
            conn_close(&w->conns, &w->conns.c[i]);
}

/*
 * wait_ms: epoll's timeout until the earliest deadline, or until the
 * database connection, lost, may be tried again.
 */
static int
wait_ms(const struct worker *w, int64_t now)
{
    int64_t next = conns_deadline(&w->conns);
    int64_t db = w->draining ? -1 : db_retry_in(w->ctx->db);
    int64_t ms;

    if (next == INT64_MAX)
        ms = -1;
    else if (next <= now)
        ms = 0;
    else
        ms = (next - now + MS - 1) / MS;
    if (db >= 0 && (ms < 0 || db < ms))
        ms = db;
    return (int)(ms > INT_MAX ? INT_MAX : ms);
}

/*
 * setup: the non-blocking listening socket, the epoll set, the signals,
 * the connection table, libfcgi's request on a socket that does not
 * listen.  Results: 0, or -1 (logged).
 */
static int
setup(struct worker *w)
{
    int fl, fd = w->o->listen_fd;

    w->ep = w->dead_fd = -1;
    w->lim.request_max = w->o->request_max;
    w->values.max_conns = (unsigned)w->o->max_conns;
    w->values.max_reqs = (unsigned)w->o->max_conns;
    if ((fl = fcntl(fd, F_GETFL)) == -1 ||
        fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1 ||
        (w->ep = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
        (w->dead_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
        install_signals(&w->waitmask) == -1) {
        log_err("worker: cannot set up: %s", strerror(errno));
        return -1;
    }
    if ((w->peek = malloc(w->o->request_max + 1)) == NULL ||
        conns_init(&w->conns, w->o->max_conns) == -1) {
        log_err("worker: out of memory");
        return -1;
    }
    if (listen_on(w, 1) == -1)
        return -1;
    /* Our handlers are in place first, so libfcgi leaves them alone. */
    FCGX_Init();
    if (FCGX_InitRequest(&w->req, w->dead_fd, 0) != 0) {
        log_err("worker: FCGX_InitRequest failed");
        return -1;
    }
    return 0;
}

static void
teardown(struct worker *w)
{
    if (w->conns.c != NULL)
        conns_free(&w->conns);
    w->req.ipcFd = -1;
    FCGX_Free(&w->req, 0);
    free(w->peek);
    if (w->ep != -1)
        close(w->ep);
    if (w->dead_fd != -1)
        close(w->dead_fd);
    resp_free(&w->r);
}

int
worker_run(struct handler_ctx *ctx, const struct worker_opts *opts)
{
    struct epoll_event ev[EVENTS];
    struct worker w;
    int64_t now;
    int i, n, ret = 0;

    memset(&w, 0, sizeof(w));
    w.ctx = ctx;
    w.o = opts;
    w.slot = sb_attach_env();
    w.req.ipcFd = -1;
    if (setup(&w) == -1) {
        teardown(&w);
        return -1;
    }
    sb_set_pid(w.slot, getpid());
    for (;;) {
        if (sigtab_pending())
            sigtab_report(SIGTAB_WORKER);
        if (reopen) {
            reopen = 0;
            if (opts->log_file == NULL)
                log_info("worker: SIGUSR1: no --log-file to reopen");
            else if (log_open_file(opts->log_file) == -1)
                log_err("worker: SIGUSR1: cannot reopen %s: %s", opts->log_file,
                        strerror(errno));
            else
                log_info("worker: SIGUSR1: reopened %s", opts->log_file);
        }
        if (stopping ||
            (opts->max_requests > 0 && w.served >= opts->max_requests))
            drain(&w);
        if (w.draining && w.conns.used == 0)
            break;
        /* Full, then not: take connections again. */
        if (!w.draining && w.conns.used < w.conns.max &&
            listen_on(&w, 1) == -1) {
            ret = -1;
            break;
        }
        now = sb_now_ns();
        sb_set_state(w.slot, conns_count(&w.conns, CONN_READING) > 0
                                 ? SB_READING
                                 : SB_IDLE);
        n = epoll_pwait(w.ep, ev, EVENTS, wait_ms(&w, now), &w.waitmask);
        now = sb_now_ns();
        for (i = 0; i < n; i++) {
            if (ev[i].data.ptr == NULL) {
                if (accept_one(&w, now) == -1) {
                    ret = -1;
                    break;
                }
            } else if (((struct conn *)ev[i].data.ptr)->state != CONN_FREE) {
                /* (A connection closed earlier in this batch is skipped.) */
                readable(&w, ev[i].data.ptr, now);
            }
        }
        if (ret == -1)
            break;
        if ((n = conns_expire(&w.conns, CONN_FREE, now)) > 0)
            log_debug("worker: closed %d connections past their deadline", n);
        /* A worker that no request reaches (with kept connections nginx
         * may send all its requests to the others) still holds its one
         * connection once the database is back. */
        if (!w.draining && db_retry_in(ctx->db) == 0)
            db_connect(ctx->db);
    }
    if (opts->max_requests > 0 && w.served >= opts->max_requests)
        log_info("worker: served %ld requests, leaving to be replaced",
                 w.served);
    sb_set_state(w.slot, SB_EXITING);
    teardown(&w);
    return ret;
}
