/*
 * fake_worker.c: a libfcgi responder that keeps tfb-fcgi's worker contract
 * (scoreboard slot, the max-requests the pool wrote there, graceful
 * SIGTERM/SIGQUIT, exit status 2), with routes that misbehave on purpose,
 * for tfb-spawn's integration tests (tests/integration/pool_*.py build
 * it):
 *
 *   /sleep          never answers: a request stuck past any time limit
 *   /crash          abort() in the middle of a request
 *   /slow?ms=N      answers after N milliseconds, reported to the
 *                   scoreboard as time in the database (what a worker
 *                   whose database is far away shows the pool)
 *   /pid            its pid
 *   anything else   "Hello, World!"
 *
 * FAKE_START_MS=N waits N ms before accepting (a slow database connect);
 * FAKE_EXIT=N exits with status N at once (a broken binary or config);
 * FAKE_TRUNCATE=1 tries to shrink the scoreboard, and exits 3 if it could;
 * FAKE_FORGE=1 writes a sibling's slot (the next one) as busy since the
 * clock's start.
 *
 * libfcgi reports an interrupted read or write as a failed request, so the
 * stop signals are blocked while a request is served, finished included,
 * and let in only around FCGX_Accept_r(), whose accept() they interrupt
 * (sa_flags 0, no SA_RESTART) after FCGX_ShutdownPending().
 */
#define _GNU_SOURCE
#include <fcgiapp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../harness.h" /* sleep_ms */
#include "scoreboard.h"

static volatile sig_atomic_t stopping;

static void
on_stop(int signo)
{
    (void)signo;
    stopping = 1;
    FCGX_ShutdownPending();
}

static long
env_long(const char *name)
{
    const char *v = getenv(name);

    return v != NULL ? strtol(v, NULL, 10) : 0;
}

/* serve: one request; results: 1 when its phases were reported (and
 * so its end), 0 when only its being busy was. */
static int
serve(FCGX_Request *req, struct sb_slot *slot)
{
    const char *uri = FCGX_GetParam("REQUEST_URI", req->envp);
    const char *ms;
    int phased = 0;

    if (uri == NULL)
        uri = "/";
    if (strncmp(uri, "/sleep", 6) == 0) {
        for (;;)
            pause();
    }
    if (strncmp(uri, "/crash", 6) == 0)
        abort();
    if (strncmp(uri, "/slow", 5) == 0 && (ms = strstr(uri, "ms=")) != NULL) {
        sb_request_begin(slot, 0, "/slow", 5);
        sb_phase(slot, SB_DATABASE);
        sleep_ms(strtol(ms + 3, NULL, 10));
        sb_phase(slot, SB_WRITING);
        phased = 1;
    }
    FCGX_FPrintF(req->out, "Content-Type: text/plain\r\n\r\n");
    if (strncmp(uri, "/pid", 4) == 0)
        FCGX_FPrintF(req->out, "%ld", (long)getpid());
    else
        FCGX_FPrintF(req->out, "Hello, World!");
    return phased;
}

int
main(void)
{
    struct sigaction sa;
    struct sb_slot *slot;
    FCGX_Request req;
    sigset_t stop;
    long max, served = 0;
    int rc, phased;

    if (getenv("FAKE_START_MS") != NULL)
        sleep_ms(env_long("FAKE_START_MS"));
    if (getenv("FAKE_EXIT") != NULL)
        return (int)env_long("FAKE_EXIT");
    if (FCGX_Init() != 0 || FCGX_InitRequest(&req, 0, 0) != 0)
        return 2;
    /* A worker gone wrong: it shrinks the scoreboard under the supervisor
     * (sealed: refused) ... */
    if (getenv("FAKE_TRUNCATE") != NULL &&
        ftruncate((int)env_long(SB_ENV_FD), 0) == 0)
        return 3;
    slot = sb_attach_env();
    max = (long)sb_max_requests(slot);
    /* ... or writes over the next slot, a sibling's: busy since forever,
     * a moment after the sibling has said it was idle. */
    if (getenv("FAKE_FORGE") != NULL && slot != NULL && fork() == 0) {
        int32_t *next = (int32_t *)((char *)slot + SB_SLOT_SIZE);

        sleep_ms(300);
        next[1] = SB_BUSY;
        *(int64_t *)(next + 2) = 1;
        _exit(0);
    }

    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGQUIT);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sa.sa_mask = stop;
    sa.sa_flags = 0;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    sigprocmask(SIG_BLOCK, &stop, NULL);

    while (!stopping && (max <= 0 || served < max)) {
        sb_set_state(slot, SB_IDLE);
        sigprocmask(SIG_UNBLOCK, &stop, NULL);
        rc = stopping ? -1 : FCGX_Accept_r(&req);
        sigprocmask(SIG_BLOCK, &stop, NULL);
        if (rc < 0)
            break;
        sb_set_state(slot, SB_BUSY);
        phased = serve(&req, slot);
        FCGX_Finish_r(&req);
        served++;
        if (phased)
            sb_request_end(slot, 200, 0);
        else
            sb_request_done(slot);
    }
    sb_set_state(slot, SB_EXITING);
    return 0;
}
