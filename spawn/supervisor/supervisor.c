/*
 * supervisor.c: the master process of the pool; see supervisor.h.
 *
 * The loop reads like nginx's ngx_master_process_cycle(): every handled
 * signal is blocked except inside sigsuspend(), so the flags the handler
 * sets can only change while we sleep, and each wake-up acts on all of
 * them in a fixed order: stop requests, reloads and resizes, dead
 * children, the clocks, and finally the shape of the pool.
 *
 * The shape is decided by pool_plan() (pool.c) from a census of the
 * worker table; this file only carries the decisions out with fork(),
 * kill() and waitpid().  Row i of the worker table is slot i of the
 * scoreboard, where the worker reports whether it is starting, idle or
 * busy and since when.
 */
#define _GNU_SOURCE
#include "supervisor.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "exitcode.h"
#include "log.h"
#include "pool.h"
#include "scoreboard.h"
#include "status.h"

#define MS 1000000LL /* nanoseconds */
/* How often a starting worker's slot is looked at. */
#define READY_POLL_NS (20 * MS)
/* SIGINT's grace before SIGKILL. */
#define QUICK_STOP_NS (1000 * MS)

enum wstate {
    W_FREE,    /* no worker */
    W_PENDING, /* dead, to be started at due_ns */
    W_FATAL,   /* exited EXITCODE_CONFIG, left dead */
    W_RUNNING, /* alive */
    W_STOPPING /* alive, sent the stop signal at deadline_ns - grace */
};

struct worker {
    enum wstate state;
    pid_t pid;
    unsigned gen;        /* generation it was started in */
    int ready;           /* has accepted, or outlived --start-timeout */
    int killed;          /* we sent it SIGKILL */
    unsigned fails;      /* quick deaths in a row */
    int64_t started_ns;  /* CLOCK_MONOTONIC, as in the scoreboard */
    int64_t due_ns;      /* W_PENDING: when to start it */
    int64_t deadline_ns; /* W_STOPPING: when to SIGKILL it */
};

enum stop { RUNNING, STOP_GRACEFUL, STOP_NOW };

struct sv {
    const struct config *cfg;
    int listen_fd;
    const char *path;
    char *const *argv;
    struct scoreboard *sb;
    struct worker *w;
    int nw;
    int target;   /* workers wanted */
    unsigned gen; /* current generation, bumped by SIGHUP */
    int rolling;  /* a rolling restart is under way */
    int no_slot;  /* a free row was wanted and none found: said so */
    enum stop stop;
    int status; /* what supervisor_run returns */
    /* The workers' environment, built once; the last row changes. */
    char **envp;
    char **env_slot; /* &envp[k]: TFB_WORKER_SLOT */
    char env_sb[48], env_id[48];
    /* --cpu-affinity slot: the CPUs we may run on, in order. */
    int cpus[CPU_SETSIZE];
    int ncpus;
    const struct supervisor_creds *creds; /* NULL: as we are */
    /* The status page's process (status.h), when there is a socket. */
    int status_fd;
    pid_t status_pid;
    int64_t status_due; /* when to start it (again); 0: not due */
};

static void begin_stop(struct sv *sv, enum stop how, int64_t now);

static volatile sig_atomic_t sig_child, sig_stop, sig_quick, sig_hup, sig_ttin,
    sig_ttou, sig_usr1;

static const int handled[] = {SIGCHLD, SIGTERM, SIGQUIT, SIGINT, SIGHUP,
                              SIGTTIN, SIGTTOU, SIGUSR1, SIGALRM};
#define NHANDLED ((int)(sizeof(handled) / sizeof(handled[0])))

/* on_signal: flags only; the loop does the work. */
static void
on_signal(int signo)
{
    switch (signo) {
    case SIGCHLD:
        sig_child = 1;
        break;
    case SIGTERM:
    case SIGQUIT:
        sig_stop = 1;
        break;
    case SIGINT:
        sig_quick = 1;
        break;
    case SIGHUP:
        sig_hup = 1;
        break;
    case SIGTTIN:
        sig_ttin = sig_ttin + 1;
        break;
    case SIGTTOU:
        sig_ttou = sig_ttou + 1;
        break;
    case SIGUSR1:
        sig_usr1 = 1;
        break;
    default: /* SIGALRM: waking up is all it is for */
        break;
    }
}

static double
secs(int64_t ns)
{
    return (double)ns / 1e9;
}

static int
slot_of(const struct sv *sv, const struct worker *w)
{
    return (int)(w - sv->w);
}

static enum sb_state
slot_state(struct sv *sv, const struct worker *w)
{
    return sb_state(sb_slot(sv->sb, slot_of(sv, w)));
}

/* describe: a wait status in words. */
static const char *
describe(int st, char *buf, size_t len)
{
    if (WIFEXITED(st))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, len, "was killed by signal %d (%s)%s", WTERMSIG(st),
                 strsignal(WTERMSIG(st)), WCOREDUMP(st) ? ", core dumped" : "");
    else
        snprintf(buf, len, "changed state 0x%x", (unsigned)st);
    return buf;
}

/*
 * worker_env: the workers' environment: ours, passed on as it is, but for
 * the scoreboard's two variables, ours to set: its fd, and a row rewritten
 * before each fork with the worker's slot.  Nothing here is any
 * application's: what a worker needs from the pool (the request time
 * limit, its max-requests) it reads from the scoreboard.
 * Results: 0, or -1 with errno set.
 */
static int
worker_env(struct sv *sv)
{
    static const char *const ours[] = {SB_ENV_FD "=", SB_ENV_SLOT "="};
    const size_t nours = sizeof(ours) / sizeof(ours[0]);
    extern char **environ;
    size_t n = 0, k = 0, i;
    char **e;

    for (e = environ; *e != NULL; e++)
        n++;
    if ((sv->envp = calloc(n + 3, sizeof(char *))) == NULL)
        return -1;
    for (e = environ; *e != NULL; e++) {
        for (i = 0; i < nours; i++)
            if (strncmp(*e, ours[i], strlen(ours[i])) == 0)
                break;
        if (i == nours)
            sv->envp[k++] = *e;
    }
    snprintf(sv->env_sb, sizeof(sv->env_sb), "%s=%d", SB_ENV_FD, sb_fd(sv->sb));
    sv->envp[k++] = sv->env_sb;
    sv->env_slot = &sv->envp[k];
    return 0;
}

/*
 * publish_limit: the request time limit, in the scoreboard's header for
 * every worker to read (tfb-fcgi sets its statement_timeout below it).
 */
static void
publish_limit(struct sv *sv)
{
    long ms = sv->cfg->request_timeout_ms;

    sb_set_request_limit(sv->sb, ms);
    if (ms > 0)
        log_info("request time limit %.1f s, in the scoreboard for the "
                 "workers to see",
                 (double)ms / 1000);
}

/*
 * child: the forked side, until execve().  Only async-signal-safe calls:
 * handlers back to their defaults before the mask is cleared (a pending
 * signal must not run our handler in the child), the socket onto fd 0,
 * the scoreboard made inheritable, and an exec failure reported to the
 * parent through errfd (close-on-exec: EOF means the exec succeeded).
 */
static _Noreturn void
child(const struct sv *sv, int i, pid_t parent, int errfd)
{
    struct sb_slot *slot = sb_slot(sv->sb, i);
    struct sigaction sa;
    cpu_set_t cpu;
    sigset_t none;
    int e;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (e = 0; e < NHANDLED; e++)
        sigaction(handled[e], &sa, NULL);
    sigaction(SIGPIPE, &sa, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    sb_set_pid(slot, getpid());
    /* Drop to the workers' user for good: groups, gid, uid, then check
     * root cannot come back.  Before PR_SET_PDEATHSIG, which a change of
     * credentials clears. */
    if (sv->creds != NULL &&
        (setgroups((size_t)sv->creds->ngroups, sv->creds->groups) == -1 ||
         setresgid(sv->creds->gid, sv->creds->gid, sv->creds->gid) == -1 ||
         setresuid(sv->creds->uid, sv->creds->uid, sv->creds->uid) == -1 ||
         (sv->creds->uid != 0 && setuid(0) != -1)))
        goto fail;
    /* Orphans stop gracefully if the supervisor is killed outright. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1 || getppid() != parent)
        goto fail;
    if (sv->ncpus > 0) {
        CPU_ZERO(&cpu);
        CPU_SET(sv->cpus[i % sv->ncpus], &cpu);
        if (sched_setaffinity(0, sizeof(cpu), &cpu) == -1)
            goto fail;
    }
    if (sv->listen_fd != 0 && dup2(sv->listen_fd, 0) == -1)
        goto fail;
    if (fcntl(sb_fd(sv->sb), F_SETFD, 0) == -1)
        goto fail;
    execve(sv->path, sv->argv, sv->envp);
fail:
    e = errno;
    if (write(errfd, &e, sizeof(e)) < 0) {
        /* The parent sees a quick death all the same. */
    }
    _exit(127);
}

/* spawn: start the worker of row w now. */
static void
spawn(struct sv *sv, struct worker *w, int64_t now)
{
    int i = slot_of(sv, w), p[2] = {-1, -1}, e;
    struct sb_slot *slot = sb_slot(sv->sb, i);
    long maxreq =
        pool_max_requests(sv->cfg->max_requests, sv->cfg->max_requests_jitter,
                          (uint32_t)random());
    ssize_t n;
    pid_t pid, self;

    snprintf(sv->env_id, sizeof(sv->env_id), "%s=%d", SB_ENV_SLOT, i);
    sv->env_slot[0] = sv->env_id;

    sb_slot_reset(slot, SB_STARTING, now);
    sb_set_max_requests(slot, (uint64_t)maxreq);

    /* Our pid, taken before the fork: the child checks that its parent
     * is still us after it asked to die with it. */
    self = getpid();
    if (pipe2(p, O_CLOEXEC) == -1) {
        pid = -1;
    } else if ((pid = fork()) == 0) {
        close(p[0]);
        child(sv, i, self, p[1]);
    } else {
        e = errno;
        close(p[1]);
        errno = e;
    }
    if (pid == -1) {
        long delay = pool_backoff_ms(++w->fails);

        log_err("cannot start a worker in slot %d: %s; next try in %.2f s", i,
                strerror(errno), (double)delay / 1000);
        if (p[0] >= 0)
            close(p[0]);
        sb_slot_reset(slot, SB_EMPTY, 0);
        w->due_ns = now + delay * MS;
        return;
    }
    sb_set_pid(slot, pid);
    w->state = W_RUNNING;
    w->pid = pid;
    w->gen = sv->gen;
    w->ready = 0;
    w->killed = 0;
    w->started_ns = now;

    /* Blocks until the exec: the child does nothing slow before it. */
    do
        n = read(p[0], &e, sizeof(e));
    while (n == -1 && errno == EINTR);
    close(p[0]);
    if (n == (ssize_t)sizeof(e))
        log_err("worker %ld (slot %d): cannot run %s: %s", (long)pid, i,
                sv->path, strerror(e));
    else if (maxreq > 0)
        log_info("worker %ld started (slot %d, max-requests %ld)", (long)pid, i,
                 maxreq);
    else
        log_info("worker %ld started (slot %d)", (long)pid, i);
}

/* retire: ask a worker to finish its request and leave. */
static void
retire(struct sv *sv, struct worker *w, int signo, int64_t grace_ns,
       int64_t now)
{
    assert(w->state == W_RUNNING || w->state == W_STOPPING);
    if (kill(w->pid, signo) == -1 && errno != ESRCH)
        log_err("kill %ld: %s", (long)w->pid, strerror(errno));
    if (w->state != W_STOPPING || now + grace_ns < w->deadline_ns)
        w->deadline_ns = now + grace_ns;
    w->state = W_STOPPING;
    log_debug("worker %ld (slot %d): sent %s", (long)w->pid, slot_of(sv, w),
              signo == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void
census(struct sv *sv, struct pool_census *c)
{
    int i;

    memset(c, 0, sizeof(*c));
    for (i = 0; i < sv->nw; i++) {
        const struct worker *w = &sv->w[i];

        if (w->state == W_PENDING)
            c->pending++;
        else if (w->state == W_FATAL)
            c->fatal++;
        else if (w->state != W_RUNNING)
            continue;
        else if (w->gen != sv->gen)
            c->old++;
        else if (w->ready)
            c->ready++;
        else
            c->starting++;
    }
}

/*
 * pick: the member of a kind that is cheapest to lose: one not accepting
 * yet, then an idle one, then a busy one.  NULL when there is none.
 */
static struct worker *
pick(struct sv *sv, enum pool_action kind)
{
    struct worker *best = NULL;
    int cost, best_cost = INT_MAX, i;

    for (i = 0; i < sv->nw; i++) {
        struct worker *w = &sv->w[i];
        int match;

        switch (kind) {
        case POOL_DROP_FATAL:
            match = w->state == W_FATAL;
            break;
        case POOL_DROP_PENDING:
            match = w->state == W_PENDING;
            break;
        case POOL_RETIRE_OLD:
            match = w->state == W_RUNNING && w->gen != sv->gen;
            break;
        case POOL_RETIRE_READY:
            match = w->state == W_RUNNING && w->gen == sv->gen && w->ready;
            break;
        case POOL_RETIRE_STARTING:
            match = w->state == W_RUNNING && w->gen == sv->gen && !w->ready;
            break;
        default:
            match = w->state == W_FREE;
            break;
        }
        if (!match)
            continue;
        if (w->state != W_RUNNING || !w->ready)
            cost = 0;
        else
            cost = sb_busy(slot_state(sv, w)) ? 2 : 1;
        if (cost < best_cost) {
            best = w;
            best_cost = cost;
        }
    }
    return best;
}

/* old_stopping: a worker of a previous generation has yet to exit. */
static int
old_stopping(const struct sv *sv)
{
    int i;

    for (i = 0; i < sv->nw; i++)
        if (sv->w[i].state == W_STOPPING && sv->w[i].gen != sv->gen)
            return 1;
    return 0;
}

/* reshape: carry out pool_plan() until the pool has its shape. */
static void
reshape(struct sv *sv, int64_t now)
{
    struct pool_census c;
    enum pool_action act;
    struct worker *w;
    int guard;

    for (guard = 0; guard < 4 * sv->nw; guard++) {
        census(sv, &c);
        if ((act = pool_plan(&c, sv->target)) == POOL_NONE)
            break;
        if ((w = pick(sv, act)) == NULL) {
            /* Only POOL_ADD can miss: every row holds a stopping worker. */
            assert(act == POOL_ADD);
            if (!sv->no_slot)
                log_warn("no free slot for a new worker until a stopping "
                         "one exits");
            sv->no_slot = 1;
            break;
        }
        switch (act) {
        case POOL_ADD:
            w->state = W_PENDING;
            w->due_ns = now;
            w->fails = 0;
            sv->no_slot = 0;
            break;
        case POOL_DROP_FATAL:
        case POOL_DROP_PENDING:
            w->state = W_FREE;
            break;
        default:
            retire(sv, w, SIGTERM, sv->cfg->graceful_ms * MS, now);
            break;
        }
    }
    census(sv, &c);
    if (sv->rolling && c.old == 0 && c.starting == 0 && c.pending == 0 &&
        !old_stopping(sv)) {
        log_info("rolling restart done: %d workers", c.ready);
        sv->rolling = 0;
    }
    if (sv->stop != RUNNING)
        return;
    for (w = sv->w; w < sv->w + sv->nw; w++)
        if (w->state == W_PENDING && w->due_ns <= now)
            spawn(sv, w, now);
}

/*
 * status_start: fork the status process: no exec, so that it keeps the
 * scoreboard's mapping; signals to their defaults, as the workers', the
 * workers' identity, and death with the supervisor.
 */
static void
status_start(struct sv *sv, int64_t now)
{
    struct status_info info;
    struct sigaction sa;
    sigset_t none;
    pid_t pid, self = getpid();
    int i;

    sv->status_due = 0;
    if ((pid = fork()) == -1) {
        log_err("cannot start the status process: %s; next try in 1 s",
                strerror(errno));
        sv->status_due = now + 1000 * MS;
        return;
    }
    if (pid > 0) {
        sv->status_pid = pid;
        log_info("status process %ld started", (long)pid);
        return;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (i = 0; i < NHANDLED; i++)
        sigaction(handled[i], &sa, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (sv->creds != NULL &&
        (setgroups((size_t)sv->creds->ngroups, sv->creds->groups) == -1 ||
         setresgid(sv->creds->gid, sv->creds->gid, sv->creds->gid) == -1 ||
         setresuid(sv->creds->uid, sv->creds->uid, sv->creds->uid) == -1))
        _exit(EXITCODE_ERROR);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != self)
        _exit(EXITCODE_ERROR);
    info.pool = sv->cfg->pool;
    info.listen_fd = sv->listen_fd;
    info.backlog = sv->cfg->bind != NULL ? sv->cfg->backlog : 0;
    info.sb = sv->sb;
    status_serve(sv->status_fd, &info);
}

/* live: workers still running, stopping ones included. */
static int
live(const struct sv *sv)
{
    int i, n = 0;

    for (i = 0; i < sv->nw; i++)
        n += sv->w[i].state == W_RUNNING || sv->w[i].state == W_STOPPING;
    return n;
}

/* worker_of: the row of a child, or NULL when pid is not a worker. */
static struct worker *
worker_of(struct sv *sv, pid_t pid)
{
    int i;

    for (i = 0; i < sv->nw; i++)
        if (sv->w[i].pid == pid)
            return &sv->w[i];
    return NULL;
}

/* buried: what the death of w (wait status st) makes of its row. */
static void
buried(struct sv *sv, struct worker *w, int st, int64_t now)
{
    int i = slot_of(sv, w);
    struct sb_slot *slot = sb_slot(sv->sb, i);
    uint64_t reqs = sb_requests(slot);
    int busy = sb_busy(sb_state(slot));
    int64_t up = now - w->started_ns;
    long pid = (long)w->pid, delay;
    char how[96];

    describe(st, how, sizeof(how));
    sb_slot_reset(slot, SB_EMPTY, 0);
    w->pid = 0;
    switch (pool_classify(st, up / MS, reqs, busy, w->state == W_STOPPING,
                          w->killed)) {
    case POOL_EXIT_RETIRED:
        log_info("worker %ld (slot %d) %s, stopped after %llu requests", pid, i,
                 how, (unsigned long long)reqs);
        w->state = W_FREE;
        return;
    case POOL_EXIT_RECYCLED:
        log_info("worker %ld (slot %d) recycled after %llu requests", pid, i,
                 (unsigned long long)reqs);
        w->fails = 0;
        w->due_ns = now;
        break;
    case POOL_EXIT_REPLACE:
        log_msg(w->killed ? LOG_INFO : LOG_WARN,
                "worker %ld (slot %d) %s after %.1f s and %llu requests; "
                "replacing it",
                pid, i, how, secs(up), (unsigned long long)reqs);
        w->fails = 0;
        w->due_ns = now;
        break;
    case POOL_EXIT_QUICK:
        delay = pool_backoff_ms(++w->fails);
        log_err("worker %ld (slot %d) %s %.2f s after its start (%u in a "
                "row); next start in %.2f s",
                pid, i, how, secs(up), w->fails, (double)delay / 1000);
        w->due_ns = now + delay * MS;
        break;
    case POOL_EXIT_DISABLED:
        log_err("worker %ld (slot %d) exited with status %d, a fatal "
                "configuration error: not restarting it",
                pid, i, EXITCODE_CONFIG);
        w->state = W_FATAL;
        return;
    }
    w->state = W_PENDING;
}

/*
 * reap: collect every dead child and decide what its row becomes; when
 * every worker has died of a configuration error, give up.
 */
static void
reap(struct sv *sv, int64_t now)
{
    struct pool_census c;
    struct worker *w;
    pid_t pid;
    int st;

    while ((pid = waitpid(-1, &st, WNOHANG)) != 0) {
        if (pid == -1) {
            if (errno == EINTR)
                continue;
            break; /* ECHILD */
        }
        if (pid == sv->status_pid) {
            sv->status_pid = 0;
            if (sv->stop == RUNNING) {
                log_err("the status process %ld died; starting it again in "
                        "1 s",
                        (long)pid);
                sv->status_due = now + 1000 * MS;
            }
        } else if ((w = worker_of(sv, pid)) == NULL) {
            log_debug("reaped process %ld, not a worker", (long)pid);
        } else {
            buried(sv, w, st, now);
        }
    }

    census(sv, &c);
    if (sv->stop == RUNNING && live(sv) == 0 && c.pending == 0 && c.fatal > 0) {
        log_err("every worker exited with status %d (fatal configuration "
                "error): giving up",
                EXITCODE_CONFIG);
        sv->status = EXITCODE_CONFIG;
        /* The status process goes too: the loop ends once it is gone. */
        begin_stop(sv, STOP_NOW, now);
    }
}

/*
 * busy_since: when w's request began, as its slot says, if the slot holds
 * up against what the supervisor itself knows: the pid is w's, the time
 * lies between w's start and now.  Else 0: a slot another worker wrote
 * over by mistake must not get w killed.
 */
static int64_t
busy_since(const struct worker *w, const struct sb_slot *slot, int64_t now)
{
    int64_t since = sb_busy_since(slot);

    if (sb_pid(slot) != w->pid || since < w->started_ns || since > now)
        return 0;
    return since;
}

/*
 * watch: the clocks.  A starting worker becomes ready when its slot says
 * it accepts (or after --start-timeout); a worker busy on one request past
 * the limit, or still alive past its stop deadline, is killed.
 */
static void
watch(struct sv *sv, int64_t now)
{
    int64_t limit = sv->cfg->request_timeout_ms * MS;
    int i;

    for (i = 0; i < sv->nw; i++) {
        struct worker *w = &sv->w[i];
        struct sb_slot *slot = sb_slot(sv->sb, i);
        int state;

        if (w->state != W_RUNNING && w->state != W_STOPPING)
            continue;
        state = sb_state(slot);
        if (!w->ready && w->state == W_RUNNING) {
            if (state != SB_EMPTY && state != SB_STARTING) {
                w->ready = 1;
                log_debug("worker %ld (slot %d) accepting after %.3f s",
                          (long)w->pid, i, secs(now - w->started_ns));
            } else if (now - w->started_ns >= sv->cfg->start_timeout_ms * MS) {
                w->ready = 1;
                log_warn("worker %ld (slot %d) has not reported accepting "
                         "after %.1f s; counting it as ready",
                         (long)w->pid, i, secs(now - w->started_ns));
            }
        }
        if (w->killed)
            continue;
        if (limit > 0 && sb_busy(state)) {
            int64_t since = busy_since(w, slot, now);

            if (since > 0 && now - since > limit) {
                log_err("worker %ld (slot %d) busy on one request for "
                        "%.1f s, over the %.1f s limit: killing it",
                        (long)w->pid, i, secs(now - since), secs(limit));
                kill(w->pid, SIGKILL);
                w->killed = 1;
                continue;
            }
        }
        if (w->state == W_STOPPING && now >= w->deadline_ns) {
            log_warn("worker %ld (slot %d) still running after its stop "
                     "deadline: killing it",
                     (long)w->pid, i);
            kill(w->pid, SIGKILL);
            w->killed = 1;
        }
    }
}

/*
 * arm: set the one-shot timer to the next moment a clock needs looking
 * at, or disarm it.  SIGALRM then ends the sigsuspend().
 */
static void
arm(struct sv *sv, int64_t now)
{
    int64_t limit = sv->cfg->request_timeout_ms * MS;
    int64_t next = sv->status_due > 0 ? sv->status_due : INT64_MAX, t;
    struct itimerval it;
    int i;

    for (i = 0; i < sv->nw; i++) {
        struct worker *w = &sv->w[i];

        if (w->state == W_PENDING && sv->stop == RUNNING)
            next = w->due_ns < next ? w->due_ns : next;
        if ((w->state != W_RUNNING && w->state != W_STOPPING) || w->killed)
            continue;
        if (!w->ready && w->state == W_RUNNING)
            next = now + READY_POLL_NS < next ? now + READY_POLL_NS : next;
        if (w->state == W_STOPPING)
            next = w->deadline_ns < next ? w->deadline_ns : next;
        if (limit > 0) {
            struct sb_slot *slot = sb_slot(sv->sb, i);
            int64_t since =
                sb_busy(sb_state(slot)) ? busy_since(w, slot, now) : 0;

            /* An idle worker cannot overrun before now + limit. */
            t = (since > 0 ? since : now) + limit + MS;
            next = t < next ? t : next;
        }
    }
    memset(&it, 0, sizeof(it));
    if (next != INT64_MAX) {
        t = next - now > MS ? next - now : MS;
        it.it_value.tv_sec = (time_t)(t / 1000000000);
        it.it_value.tv_usec = (suseconds_t)(t % 1000000000 / 1000);
    }
    setitimer(ITIMER_REAL, &it, NULL);
}

/* begin_stop: the pool's end, graceful (SIGTERM) or not (SIGINT). */
static void
begin_stop(struct sv *sv, enum stop how, int64_t now)
{
    int i, n = 0;

    if (how == STOP_GRACEFUL && sv->stop != RUNNING)
        return;
    if (how == STOP_NOW && sv->stop == STOP_NOW)
        return;
    sv->stop = how;
    sv->target = 0;
    sv->status_due = 0;
    if (sv->status_pid > 0)
        kill(sv->status_pid, SIGKILL); /* it holds nothing worth a goodbye */
    for (i = 0; i < sv->nw; i++) {
        struct worker *w = &sv->w[i];

        if (w->state == W_RUNNING || w->state == W_STOPPING) {
            if (how == STOP_GRACEFUL)
                retire(sv, w, SIGTERM, sv->cfg->graceful_ms * MS, now);
            else
                retire(sv, w, SIGINT, QUICK_STOP_NS, now);
            n++;
        } else if (w->state != W_FREE) {
            w->state = W_FREE;
        }
    }
    if (how == STOP_GRACEFUL)
        log_info("graceful stop: waiting up to %.1f s for %d workers",
                 (double)sv->cfg->graceful_ms / 1000, n);
    else
        log_info("immediate stop: %d workers", n);
}

/* roll: a new generation; the plan then replaces the old one. */
static void
roll(struct sv *sv, const char *why, int64_t now)
{
    int i, old = 0;

    sv->gen++;
    for (i = 0; i < sv->nw; i++) {
        struct worker *w = &sv->w[i];

        /* The dead get a fresh start: the fix may be in. */
        if (w->state == W_PENDING || w->state == W_FATAL) {
            w->state = W_PENDING;
            w->due_ns = now;
            w->fails = 0;
        }
        old += w->state == W_RUNNING;
    }
    sv->rolling = 1;
    log_info("%s: rolling restart of %d workers, one at a time", why, old);
}

/* on_flags: act on what the signal handler noted, most drastic first. */
static void
on_flags(struct sv *sv, int64_t now)
{
    int n;

    if (sig_quick) {
        sig_quick = 0;
        begin_stop(sv, STOP_NOW, now);
    }
    if (sig_stop) {
        sig_stop = 0;
        begin_stop(sv, STOP_GRACEFUL, now);
    }
    if (sv->stop != RUNNING) {
        sig_hup = sig_usr1 = sig_ttin = sig_ttou = 0;
        return;
    }
    if (sig_usr1) {
        sig_usr1 = 0;
        if (sv->cfg->log_file == NULL) {
            log_info("SIGUSR1: no --log-file to reopen");
        } else if (log_open_file(sv->cfg->log_file) == -1) {
            log_err("SIGUSR1: cannot reopen %s: %s; logging on to the old "
                    "file",
                    sv->cfg->log_file, strerror(errno));
        } else {
            log_info("SIGUSR1: reopened %s", sv->cfg->log_file);
            sig_hup = 1; /* the workers still hold the old file */
        }
    }
    if (sig_hup) {
        sig_hup = 0;
        roll(sv, "SIGHUP", now);
    }
    n = sv->target + sig_ttin - sig_ttou;
    if (sig_ttin || sig_ttou) {
        if (n > sv->cfg->max_workers) {
            n = sv->cfg->max_workers;
            sb_pool_max_children(sv->sb);
        }
        if (n < 1)
            n = 1;
        if (n != sv->target)
            log_info("pool size %d -> %d", sv->target, n);
        else
            log_warn("pool size stays %d (between 1 and --max-workers %d)", n,
                     sv->cfg->max_workers);
        sv->target = n;
        sig_ttin = sig_ttou = 0;
    }
}

/* cpus_allowed: the CPUs we may run on, for --cpu-affinity slot. */
static int
cpus_allowed(struct sv *sv)
{
    cpu_set_t set;
    int c;

    if (sched_getaffinity(0, sizeof(set), &set) == -1)
        return -1;
    for (c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &set))
            sv->cpus[sv->ncpus++] = c;
    log_info("--cpu-affinity slot: worker i runs on CPU i mod %d", sv->ncpus);
    return 0;
}

/* The dispositions and mask supervisor_run found, put back at its end. */
struct saved_signals {
    struct sigaction act[NHANDLED], pipe;
    sigset_t mask;
};

/*
 * signals_take: our handler for every handled signal, all of them blocked
 * except inside sigsuspend(wait_mask); SIGPIPE ignored.
 */
static void
signals_take(struct saved_signals *saved, sigset_t *wait_mask)
{
    struct sigaction sa;
    sigset_t set;
    int i;

    sigemptyset(&set);
    for (i = 0; i < NHANDLED; i++)
        sigaddset(&set, handled[i]);
    sigprocmask(SIG_BLOCK, &set, &saved->mask);
    *wait_mask = saved->mask;
    for (i = 0; i < NHANDLED; i++)
        sigdelset(wait_mask, handled[i]);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_mask = set;
    for (i = 0; i < NHANDLED; i++) {
        sa.sa_flags = handled[i] == SIGCHLD ? SA_NOCLDSTOP : 0;
        sigaction(handled[i], &sa, &saved->act[i]);
    }
    sa.sa_handler = SIG_IGN;
    sa.sa_flags = 0;
    sigaction(SIGPIPE, &sa, &saved->pipe);
}

/* signals_restore: the timer off, the dispositions and mask as found. */
static void
signals_restore(const struct saved_signals *saved)
{
    struct itimerval off;
    int i;

    memset(&off, 0, sizeof(off));
    setitimer(ITIMER_REAL, &off, NULL);
    for (i = 0; i < NHANDLED; i++)
        sigaction(handled[i], &saved->act[i], NULL);
    sigaction(SIGPIPE, &saved->pipe, NULL);
    sigprocmask(SIG_SETMASK, &saved->mask, NULL);
}

int
supervisor_run(const struct config *cfg, int listen_fd, const char *path,
               char *const argv[], const struct supervisor_creds *creds,
               int status_fd)
{
    struct saved_signals saved;
    sigset_t wait_mask;
    struct sv sv;
    int64_t now;

    memset(&sv, 0, sizeof(sv));
    sv.cfg = cfg;
    sv.listen_fd = listen_fd;
    sv.path = path;
    sv.argv = argv;
    sv.creds = creds;
    sv.status_fd = status_fd;
    sv.target = cfg->workers;
    sv.gen = 1;
    /* Room for a full pool stopping while a full new one starts. */
    sv.nw = 2 * cfg->max_workers;
    if ((sv.w = calloc((size_t)sv.nw, sizeof(*sv.w))) == NULL ||
        (sv.sb = sb_create(sv.nw)) == NULL) {
        log_err("cannot create the scoreboard: %s", strerror(errno));
        free(sv.w);
        return EXITCODE_ERROR;
    }
    /* Inheritable by workers only: the child clears the flag. */
    if (fcntl(sb_fd(sv.sb), F_SETFD, FD_CLOEXEC) == -1 ||
        worker_env(&sv) == -1) {
        log_err("cannot prepare the workers' environment: %s", strerror(errno));
        sv.status = EXITCODE_ERROR;
        goto free_sv;
    }
    publish_limit(&sv);
    srandom((unsigned)getpid() ^ (unsigned)time(NULL));
    if (cfg->cpu_affinity == CONFIG_AFFINITY_SLOT && cpus_allowed(&sv) == -1) {
        log_err("--cpu-affinity: cannot read the CPUs allowed: %s",
                strerror(errno));
        sv.status = EXITCODE_ERROR;
        goto free_sv;
    }
    signals_take(&saved, &wait_mask);

    log_info("starting %d workers: %s", sv.target, path);
    if (status_fd != -1)
        status_start(&sv, sb_now_ns());
    if (creds != NULL)
        log_info("workers run as %s (uid %ld, gid %ld); the supervisor stays "
                 "uid %ld for its housekeeping",
                 creds->name, (long)creds->uid, (long)creds->gid,
                 (long)geteuid());
    now = sb_now_ns();
    reshape(&sv, now);
    for (;;) {
        arm(&sv, now);
        sigsuspend(&wait_mask);
        now = sb_now_ns();
        on_flags(&sv, now);
        if (sig_child) {
            sig_child = 0;
            reap(&sv, now);
        }
        watch(&sv, now);
        reshape(&sv, now);
        if (sv.status_due > 0 && sv.status_due <= now && sv.stop == RUNNING)
            status_start(&sv, now);
        if (sv.stop != RUNNING && live(&sv) == 0 && sv.status_pid == 0)
            break;
    }
    log_info("all workers gone; exiting with status %d", sv.status);
    signals_restore(&saved);
free_sv:
    free(sv.envp);
    sb_free(sv.sb);
    free(sv.w);
    return sv.status;
}
