/*
 * worker.c: see worker.h.
 *
 * Stopping a process blocked in libfcgi's accept() without losing a
 * request takes care.  The stop handler sets a flag and puts a socket that
 * is not listening in place of the listening one with dup2(), in this
 * process only (the other workers keep theirs).  The handler is installed
 * with SA_RESTART, so:
 *  - an accept() in progress is restarted by the kernel on the same fd
 *    number, now the dead socket, and fails at once;
 *  - an accept() not yet entered fails the same way, so there is no window
 *    between checking the flag and blocking;
 *  - reads and writes of a request in flight are restarted, not failed,
 *    and the request is answered before the loop sees the flag.
 */
#include "worker.h"

#include <errno.h>
#include <fcgiapp.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "route.h"
#include "scoreboard.h"

/* A request body is read and dropped up to this size. */
#define DRAIN_MAX (1 << 20)

static volatile sig_atomic_t stopping;
static int listen_fd = -1, dead_fd = -1;

static void
on_stop(int sig)
{
    int saved = errno;

    (void)sig;
    stopping = 1;
    dup2(dead_fd, listen_fd);
    FCGX_ShutdownPending();
    errno = saved;
}

static int
install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) == -1)
        return -1;
    sa.sa_handler = on_stop;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaddset(&sa.sa_mask, SIGQUIT);
    if (sigaction(SIGTERM, &sa, NULL) == -1 ||
        sigaction(SIGQUIT, &sa, NULL) == -1)
        return -1;
    return 0;
}

static void
slot_set(struct sb_slot *slot, enum sb_state state)
{
    if (slot == NULL)
        return;
    atomic_store_explicit(&slot->busy_since_ns,
                          state == SB_BUSY ? sb_now_ns() : 0,
                          memory_order_relaxed);
    atomic_store_explicit(&slot->state, state, memory_order_release);
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
serve(struct ctx *ctx, FCGX_Request *req, struct response *r)
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

int
worker_run(struct ctx *ctx, const struct worker_opts *opts)
{
    struct sb_slot *slot = sb_attach_env();
    struct response r = {0};
    FCGX_Request req;
    long served = 0;
    int rc, failures = 0, ret = 0;

    listen_fd = opts->listen_fd;
    if ((dead_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
        install_signals() == -1) {
        log_err("worker: cannot set up signals: %s", strerror(errno));
        return -1;
    }
    /* Our handlers are in place first, so libfcgi leaves them alone. */
    FCGX_Init();
    if (FCGX_InitRequest(&req, listen_fd, 0) != 0) {
        log_err("worker: FCGX_InitRequest failed");
        return -1;
    }
    if (slot != NULL)
        atomic_store_explicit(&slot->pid, (int32_t)getpid(),
                              memory_order_relaxed);
    while (!stopping) {
        slot_set(slot, SB_IDLE);
        rc = FCGX_Accept_r(&req);
        if (rc < 0) {
            if (stopping)
                break;
            /* A failing listener must not spin the CPU: back off, and give
             * up after a minute of nothing but failures. */
            if (++failures > 600) {
                log_err("worker: accept keeps failing: %s", strerror(-rc));
                ret = -1;
                break;
            }
            if (failures == 1)
                log_warn("worker: accept: %s", strerror(-rc));
            nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
            continue;
        }
        failures = 0;
        slot_set(slot, SB_BUSY);
        serve(ctx, &req, &r);
        FCGX_Finish_r(&req);
        db_request_done(ctx->db);
        served++;
        if (slot != NULL)
            atomic_fetch_add_explicit(&slot->requests, 1, memory_order_relaxed);
        if (opts->max_requests > 0 && served >= opts->max_requests) {
            log_info("worker: served %ld requests, leaving to be replaced",
                     served);
            break;
        }
    }
    slot_set(slot, SB_EXITING);
    FCGX_Free(&req, 1);
    resp_free(&r);
    return ret;
}
