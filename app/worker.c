/*
 * worker.c: see worker.h.
 *
 * The worker accepts its connections itself and hands each one to libfcgi,
 * which reads the request's records and writes the response.  Not
 * FCGX_Accept_r's own accept: after accepting a unix-socket connection,
 * libfcgi 2.4.2 polls it for up to a few seconds, and a signal that
 * interrupts that poll makes it close the connection the front server has
 * just written its request to (nginx: "writev() failed (32: Broken pipe)
 * while sending request to upstream", a 502).  That is what a SIGTERM of a
 * rolling restart did now and then.
 *
 * Stopping: SIGTERM and SIGQUIT stay blocked except while the worker waits
 * in epoll_pwait(), so they end a wait and never cut a request short; the
 * handler only sets a flag, which the loop reads.
 *
 * Waking: the pool shares one listening socket, made non-blocking; each
 * worker waits on it with EPOLLEXCLUSIVE, so a connection wakes one waiter
 * (or a few), not the whole pool, and a worker that loses the race to
 * accept() gets EAGAIN and waits again.
 *
 * libfcgi is given a socket that is not listening as its own, so that it
 * can never block in accept(): a connection it rejects (a protocol error)
 * makes FCGX_Accept_r fail at once instead of taking the next one.
 */
#define _GNU_SOURCE
#include "worker.h"

#include <errno.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "route.h"
#include "scoreboard.h"

/* A request body is read and dropped up to this size. */
#define DRAIN_MAX (1 << 20)

static volatile sig_atomic_t stopping;

static void
on_stop(int sig)
{
    (void)sig;
    stopping = 1;
}

/*
 * install_signals: SIGPIPE ignored (a front server that went away is an
 * error return), SIGTERM and SIGQUIT caught and blocked; *waitmask is the
 * mask to wait with, the one that lets them in.
 */
static int
install_signals(sigset_t *waitmask)
{
    struct sigaction sa;
    sigset_t stops;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) == -1)
        return -1;
    sigemptyset(&stops);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGQUIT);
    sa.sa_handler = on_stop;
    sa.sa_mask = stops;
    if (sigaction(SIGTERM, &sa, NULL) == -1 ||
        sigaction(SIGQUIT, &sa, NULL) == -1 ||
        sigprocmask(SIG_BLOCK, &stops, waitmask) == -1)
        return -1;
    sigdelset(waitmask, SIGTERM);
    sigdelset(waitmask, SIGQUIT);
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

static void
serve(struct handler_ctx *ctx, FCGX_Request *req, struct response *r)
{
    const char *method = FCGX_GetParam("REQUEST_METHOD", req->envp);
    const char *path, *query, *data;
    char sink[4096];
    size_t path_len, len;
    int n, drained = 0;

    request_target(req->envp, &path, &path_len, &query);
    route_handle(ctx, method, path, path_len, query, r);
    /* Read the rest of what the server sends (a body, then the end of
     * FCGI_STDIN), so that it is not cut off while still writing. */
    while (drained < DRAIN_MAX &&
           (n = FCGX_GetStr(sink, sizeof(sink), req->in)) > 0)
        drained += n;
    resp_finish(r, &data, &len);
    if (FCGX_PutStr(data, (int)len, req->out) < 0)
        log_warn("%.*s: the server went away", (int)path_len, path);
    /*
     * With the whole request read, nothing the server sent is left unread,
     * so closing cannot reset the connection under the response.  Then
     * libfcgi need not linger (shutdown, then wait for the server to close
     * first): detached, the connection is simply closed, three system
     * calls and a wait on the front server fewer per request.
     */
    if (FCGX_HasSeenEOF(req->in))
        FCGX_Detach(req);
}

/*
 * next_connection: wait until the listening socket has a connection or a
 * stop signal comes, and accept it.  Results: the connection's fd, or -1
 * with errno: EAGAIN (another worker took it, or a peer not allowed),
 * EINTR (a signal: look at the flag), or a failure of the socket.
 */
static int
next_connection(int ep, int listen_fd, const sigset_t *waitmask,
                const struct allow *al)
{
    struct sockaddr_storage sa;
    socklen_t salen = sizeof(sa);
    struct epoll_event ev;
    int fd, n;

    if ((n = epoll_pwait(ep, &ev, 1, -1, waitmask)) <= 0) {
        if (n == 0)
            errno = EAGAIN;
        return -1;
    }
    fd = accept4(listen_fd, (struct sockaddr *)&sa, &salen, SOCK_CLOEXEC);
    if (fd == -1) {
        if (errno == EWOULDBLOCK || errno == ECONNABORTED)
            errno = EAGAIN;
        return -1;
    }
    if (!allow_ok(al, &sa)) {
        close(fd);
        errno = EAGAIN;
        return -1;
    }
    if (sa.ss_family != AF_UNIX)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
    return fd;
}

/*
 * worker_setup: the non-blocking listening socket, the epoll set waiting
 * on it, the signals, and libfcgi's request on a socket that does not
 * listen.  Results: 0, or -1 (logged).
 */
static int
worker_setup(int listen_fd, int *ep, int *dead_fd, sigset_t *waitmask,
             FCGX_Request *req)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE};
    int fl;

    if ((fl = fcntl(listen_fd, F_GETFL)) == -1 ||
        fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK) == -1 ||
        (*ep = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
        epoll_ctl(*ep, EPOLL_CTL_ADD, listen_fd, &ev) == -1 ||
        (*dead_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
        install_signals(waitmask) == -1) {
        log_err("worker: cannot set up: %s", strerror(errno));
        return -1;
    }
    /* Our handlers are in place first, so libfcgi leaves them alone. */
    FCGX_Init();
    if (FCGX_InitRequest(req, *dead_fd, 0) != 0) {
        log_err("worker: FCGX_InitRequest failed");
        return -1;
    }
    return 0;
}

int
worker_run(struct handler_ctx *ctx, const struct worker_opts *opts)
{
    struct sb_slot *slot = sb_attach_env();
    struct response r = {0};
    FCGX_Request req;
    sigset_t waitmask;
    long served = 0;
    int fd, ep = -1, dead_fd = -1, failures = 0, ret = 0;

    memset(&req, 0, sizeof(req));
    req.ipcFd = -1;
    if (worker_setup(opts->listen_fd, &ep, &dead_fd, &waitmask, &req) == -1) {
        ret = -1;
        goto out;
    }
    sb_set_pid(slot, getpid());
    while (!stopping) {
        /* A kept connection (FCGI_KEEP_CONN) carries the next request. */
        if (req.ipcFd < 0) {
            sb_set_state(slot, SB_IDLE);
            if ((fd = next_connection(ep, opts->listen_fd, &waitmask,
                                      &opts->allow)) == -1) {
                if (errno == EAGAIN || errno == EINTR)
                    continue;
                /* A failing listener must not spin the CPU: back off, and
                 * give up after a minute of nothing but failures. */
                if (++failures > 600) {
                    log_err("worker: accept keeps failing: %s",
                            strerror(errno));
                    ret = -1;
                    break;
                }
                if (failures == 1)
                    log_warn("worker: accept: %s", strerror(errno));
                nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
                continue;
            }
            failures = 0;
            req.ipcFd = fd;
            /* FCGX_Accept_r first finishes the previous request, and
             * closes the connection unless it is to be kept: this one is. */
            req.keepConnection = 1;
        }
        sb_set_state(slot, SB_BUSY);
        if (FCGX_Accept_r(&req) < 0) {
            /* libfcgi rejected what the peer sent and closed it. */
            req.ipcFd = -1;
            continue;
        }
        serve(ctx, &req, &r);
        FCGX_Finish_r(&req);
        db_request_done(ctx->db);
        served++;
        sb_request_done(slot);
        if (opts->max_requests > 0 && served >= opts->max_requests) {
            log_info("worker: served %ld requests, leaving to be replaced",
                     served);
            break;
        }
    }
    sb_set_state(slot, SB_EXITING);
    FCGX_Free(&req, 1);
out:
    if (ep != -1)
        close(ep);
    if (dead_fd != -1)
        close(dead_fd);
    resp_free(&r);
    return ret;
}
