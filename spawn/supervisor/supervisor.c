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
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "errmsg.h"
#include "exitcode.h"
#include "gauge.h"
#include "log.h"
#include "pm.h"
#include "pool.h"
#include "proctitle.h"
#include "scoreboard.h"
#include "sigtab.h"
#include "status.h"
#include "upgrade.h"

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
    int shed;            /* to be asked to let its connections go (resized) */
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
    int shedding; /* workers marked shed, asked once the new ones serve */
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
    /* The pool's size (pm.h), from what the gauge measures every sample
     * and window; gauge NULL: nothing is measured (static, no debug). */
    struct pm pm;
    struct gauge *gauge;
    pid_t *serving; /* per slot: the pid serving from it, or 0 */
    int64_t sample_due, window_due;
    struct pm_report *report; /* shared with the status process */
    struct pm_view view;      /* what it says */
};

static void begin_stop(struct sv *sv, enum stop how, int64_t now);

static volatile sig_atomic_t sig_child, sig_stop, sig_quick, sig_hup, sig_ttin,
    sig_ttou, sig_usr1, sig_usr2, sig_cont;

/* What SIGUSR2 needs (supervisor_image), or NULL: then it is refused. */
static const struct supervisor_image *image;

/*
 * on_signal: flags only; the loop does the work.  What each signal means
 * is sigtab.h's table; a signal it says to note and ignore is counted,
 * and the loop logs it.
 */
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
    case SIGUSR2:
        sig_usr2 = 1;
        break;
    case SIGCONT:
        sig_cont = 1;
        break;
    case SIGALRM: /* waking up is all it is for */
        break;
    default:
        sigtab_note(signo);
        break;
    }
}

/* caught: the signals on_signal takes (the rest keep what they had). */
static int
caught(int signo)
{
    enum sigtab_do d = sigtab_action(signo, SIGTAB_SUPERVISOR);

    return d == SIGTAB_ACT || d == SIGTAB_NOTE;
}

/*
 * signals_default: every signal back to its default action, none blocked:
 * a child's first step, so that a pending one cannot run our handler
 * there and an ignored one (SIGPIPE) is not ignored across its exec.
 */
static void
signals_default(void)
{
    struct sigaction sa;
    sigset_t none;
    int s;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (s = 1; s <= SIGTAB_MAX; s++)
        sigaction(s, &sa, NULL); /* KILL, STOP and glibc's own refuse */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
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
    cpu_set_t cpu;
    int e;

    signals_default();
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
    w->shed = 0;
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
    pid_t pid, self = getpid();
    int s;

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
    /* Signals meant for the supervisor (pkill -HUP tfb-spawn reaches this
     * process too) must not end the page: but a stop's.  PIPE and XFSZ
     * stay ignored, as in the supervisor. */
    signals_default();
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    for (s = 1; s <= SIGTAB_MAX; s++)
        if ((caught(s) && s != SIGTERM && s != SIGINT && s != SIGQUIT &&
             s != SIGCHLD) ||
            sigtab_action(s, SIGTAB_SUPERVISOR) == SIGTAB_IGNORE)
            sigaction(s, &sa, NULL);
    proctitle_set("tfb-spawn: status");
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
    info.size = sv->report;
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

    if (sv->gauge != NULL && sv->stop == RUNNING && sv->sample_due < next)
        next = sv->sample_due;

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

/* --- SIGUSR2: the supervisor re-executed in place (upgrade.h) ---------- */

/* The dry run's limit: `tfb-spawn --check` looks up users, no more. */
#define DRY_RUN_NS (5000 * MS)
/* How long a SIGKILLed status process may take to be reaped. */
#define STATUS_REAP_NS (1000 * MS)

void
supervisor_image(const struct supervisor_image *img)
{
    image = img;
}

/*
 * inheritable: what the next image keeps, open across exec() (on) or
 * close-on-exec again (off): the listening socket (fd 0 always is), the
 * status page's socket, the scoreboard.
 */
static void
inheritable(struct sv *sv, int on)
{
    int fds[3] = {sv->listen_fd, sv->status_fd, sb_fd(sv->sb)}, i;

    for (i = 0; i < 3; i++)
        if (fds[i] > 0)
            fcntl(fds[i], F_SETFD, on ? 0 : FD_CLOEXEC);
}

/*
 * handoff_env: our environment, with handoff ("NAME=VALUE") in place of
 * any variable of that name.  Results: a malloc'd array whose strings are
 * environ's and handoff, or NULL.
 */
static char **
handoff_env(char *handoff)
{
    extern char **environ;
    size_t n = 0, k = 0, name = strlen(UPGRADE_ENV "=");
    char **envp, **e;

    for (e = environ; *e != NULL; e++)
        n++;
    if ((envp = calloc(n + 2, sizeof(char *))) == NULL)
        return NULL;
    for (e = environ; *e != NULL; e++)
        if (strncmp(*e, UPGRADE_ENV "=", name) != 0)
            envp[k++] = *e;
    envp[k] = handoff;
    return envp;
}

/*
 * drain: read fd into buf (NUL-terminated, what fits) until EOF or the
 * deadline (CLOCK_MONOTONIC ns).
 */
static void
drain(int fd, char *buf, size_t len, int64_t deadline)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    size_t n = 0;
    ssize_t r;
    int64_t left;
    char sink[256];

    buf[0] = '\0';
    while ((left = deadline - sb_now_ns()) > 0) {
        if (poll(&pfd, 1, (int)(left / MS) + 1) <= 0)
            continue; /* EINTR, or the deadline: the loop says */
        if (n + 1 < len)
            r = read(fd, buf + n, len - 1 - n);
        else
            r = read(fd, sink, sizeof(sink));
        if (r <= 0 && !(r == -1 && errno == EINTR))
            break;
        if (r > 0 && n + 1 < len)
            buf[n += (size_t)r] = '\0';
    }
}

/* last_line: the last non-empty line of text, after any log prefix. */
static const char *
last_line(char *text)
{
    char *end = text + strlen(text), *line, *p;

    while (end > text && (end[-1] == '\n' || end[-1] == '\r'))
        *--end = '\0';
    line = strrchr(text, '\n') != NULL ? strrchr(text, '\n') + 1 : text;
    if ((p = strstr(line, " error: ")) != NULL)
        line = p + 8;
    return line;
}

/*
 * dry_run: `EXE --check ARGV...` with envp, the way the exec would run
 * it, bounded by DRY_RUN_NS.  Results: 0 when it exits 0; -1 otherwise,
 * with its last words (or how it ended) in why.
 */
static int
dry_run(const char *exe, char *const argv[], char *const envp[], char *why,
        size_t len)
{
    static char check[] = "--check";
    int64_t deadline = sb_now_ns() + DRY_RUN_NS;
    char **args, out[1024];
    int p[2], st = 0, n;
    pid_t pid, r;

    for (n = 0; argv[n] != NULL; n++)
        continue;
    if ((args = calloc((size_t)n + 2, sizeof(char *))) == NULL ||
        pipe2(p, O_CLOEXEC) == -1) {
        free(args);
        return errmsg(why, len, "%s", strerror(errno));
    }
    args[0] = argv[0];
    args[1] = check;
    memcpy(args + 2, argv + 1, (size_t)n * sizeof(char *));
    if ((pid = fork()) == 0) {
        signals_default();
        dup2(p[1], STDOUT_FILENO);
        dup2(p[1], STDERR_FILENO);
        execve(exe, args, envp);
        dprintf(STDERR_FILENO, "cannot run it: %s\n", strerror(errno));
        _exit(127);
    }
    close(p[1]);
    free(args);
    if (pid == -1) {
        close(p[0]);
        return errmsg(why, len, "fork: %s", strerror(errno));
    }
    drain(p[0], out, sizeof(out), deadline);
    close(p[0]);
    while ((r = waitpid(pid, &st, WNOHANG)) != pid) {
        if (r == -1 && errno != EINTR)
            return errmsg(why, len, "waitpid: %s", strerror(errno));
        if (sb_now_ns() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return errmsg(why, len, "no answer within %.0f s",
                          secs(DRY_RUN_NS));
        }
        nanosleep(&(struct timespec){0, 10 * MS}, NULL);
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    if (*last_line(out) != '\0')
        return errmsg(why, len, "%s", last_line(out));
    return errmsg(why, len, "it %s", describe(st, out, sizeof(out)));
}

/* status_stop: the status process gone before the exec (the new image
 * starts its own); bounded by STATUS_REAP_NS. */
static void
status_stop(struct sv *sv)
{
    int64_t deadline = sb_now_ns() + STATUS_REAP_NS;

    if (sv->status_pid <= 0)
        return;
    kill(sv->status_pid, SIGKILL);
    while (waitpid(sv->status_pid, NULL, WNOHANG) == 0 &&
           sb_now_ns() < deadline)
        nanosleep(&(struct timespec){0, 5 * MS}, NULL);
    sv->status_pid = 0;
}

/*
 * reexec: SIGUSR2.  The binary now at image->exe runs first as a dry run
 * (--check, with our argv and the handoff); only if it passes is the
 * status process stopped and the exec made, the workers running on
 * through it.  Returns only when the pool goes on in this image, having
 * logged why.
 */
static void
reexec(struct sv *sv, int64_t now)
{
    struct itimerval off;
    struct upgrade up;
    char handoff[256], why[512], **envp = NULL;

    if (image == NULL || image->exe == NULL) {
        log_warn("SIGUSR2: this supervisor was not told its own program; "
                 "not re-executing");
        return;
    }
    memset(&up, 0, sizeof(up));
    up.pid = (long)getpid();
    up.listen = image->listen;
    up.listen.fd = sv->listen_fd;
    up.status = image->status;
    up.status.fd = sv->status_fd;
    up.sb_fd = sb_fd(sv->sb);
    up.target = sv->target;
    if (upgrade_format(&up, handoff, sizeof(handoff)) == -1 ||
        (envp = handoff_env(handoff)) == NULL) {
        log_err("SIGUSR2: out of memory; running on with this image");
        return;
    }
    inheritable(sv, 1);
    if (dry_run(image->exe, image->argv, envp, why, sizeof(why)) == -1) {
        log_err("SIGUSR2: %s --check: %s; running on with this image",
                image->exe, why);
    } else {
        status_stop(sv);
        log_info("SIGUSR2: re-executing %s; %d workers serve on", image->exe,
                 live(sv));
        memset(&off, 0, sizeof(off));
        setitimer(ITIMER_REAL, &off, NULL);
        execve(image->exe, image->argv, envp);
        log_err("SIGUSR2: cannot re-execute %s: %s; running on with this "
                "image",
                image->exe, strerror(errno));
        if (sv->status_fd != -1)
            sv->status_due = now;
    }
    inheritable(sv, 0);
    free(envp);
}

/*
 * adopt_slots: the workers the previous image left running, each in its
 * slot of the scoreboard it handed over: ours now (we are the same
 * process, their parent), of generation 0, so that the plan replaces
 * them one at a time as after SIGHUP.  One that died during the exec is
 * reaped here and its slot started again.
 */
static void
adopt_slots(struct sv *sv, int target)
{
    struct sb_stats st;
    int i, n = 0, ws;
    pid_t pid;

    for (i = 0; i < sv->nw; i++) {
        struct sb_slot *slot = sb_slot(sv->sb, i);

        sb_stats(slot, &st);
        if (st.pid <= 0 || st.state == SB_EMPTY)
            continue;
        if ((pid = waitpid(st.pid, &ws, WNOHANG)) != 0) {
            log_info("worker %ld (slot %d) ended during the re-execution",
                     (long)st.pid, i);
            sb_slot_reset(slot, SB_EMPTY, 0);
            continue;
        }
        sv->w[i].state = W_RUNNING;
        sv->w[i].pid = st.pid;
        sv->w[i].gen = 0;
        sv->w[i].ready = 1;
        sv->w[i].started_ns = st.started_ns;
        n++;
    }
    sv->target = target < sv->cfg->max_workers ? target : sv->cfg->max_workers;
    sv->rolling = n > 0;
    log_info("re-executed: %d workers of the previous image adopted; a "
             "rolling restart replaces them, one at a time",
             n);
}

/*
 * stop_strays: when the scoreboard could not be adopted, the previous
 * image's workers are our children all the same: each is asked to stop
 * gracefully (its requests are answered), new ones start at once.
 */
static void
stop_strays(void)
{
    char path[64], buf[512], *p;
    struct dirent *e;
    long ppid;
    DIR *d = opendir("/proc");
    FILE *fp;
    int n = 0;

    while (d != NULL && (e = readdir(d)) != NULL) {
        snprintf(path, sizeof(path), "/proc/%.20s/stat", e->d_name);
        if (e->d_name[0] < '1' || e->d_name[0] > '9' ||
            (fp = fopen(path, "re")) == NULL)
            continue;
        p = fgets(buf, sizeof(buf), fp) != NULL ? strrchr(buf, ')') : NULL;
        fclose(fp);
        if (p != NULL && sscanf(p, ") %*c %ld", &ppid) == 1 &&
            ppid == (long)getpid() && kill(atol(e->d_name), SIGTERM) == 0)
            n++;
    }
    if (d != NULL)
        closedir(d);
    log_warn("the previous image's scoreboard does not fit this build: its "
             "%d workers are stopped gracefully and replaced at once",
             n);
}

/*
 * board: the scoreboard: the one the previous image handed over, its
 * workers adopted, or a new one.  Results: 0, or -1 (logged).
 */
static int
board(struct sv *sv)
{
    const struct upgrade *up = image != NULL ? image->adopt : NULL;

    if (up != NULL && up->sb_fd >= 0 &&
        (sv->sb = sb_adopt(up->sb_fd, sv->nw)) != NULL) {
        adopt_slots(sv, up->target);
        return 0;
    }
    if (up != NULL && up->sb_fd >= 0)
        close(up->sb_fd);
    if ((sv->sb = sb_create(sv->nw)) == NULL) {
        log_err("cannot create the scoreboard: %s", strerror(errno));
        return -1;
    }
    if (up != NULL) {
        stop_strays();
        sv->target = up->target;
    }
    return 0;
}

/* --- the pool's size (pm.h, gauge.h) ------------------------------------ */

/*
 * resized: the target is now n, for why (one line): logged, and in the
 * report the status page shows.  A pool that sizes itself and grows also
 * marks the workers it had, to be asked to close their connections
 * (sb_shed) once the new ones serve (shed_due): a front server that keeps
 * its FastCGI connections (nginx's keepalive, the stack's default) would
 * otherwise keep them all on those workers, whose own loops take every
 * connection they are given, and the new workers would idle however long
 * requests wait (measured: 2 -> 4 workers at 1 ms, 1,700 req/s both, the
 * 2 new ones idle).  The front server opens others, and the kernel hands
 * them to the workers waiting, the new ones among them.  (A rolling
 * restart did the same at the cost of every worker's fork and database
 * connection, one at a time: at 16 -> 32, seconds during which the
 * controller could measure nothing.)
 */
static void
resized(struct sv *sv, int n, const char *why)
{
    int grew = n > sv->target && sv->target > 0, i;

    log_info("pool size %d -> %d (%s): %s", sv->target, n,
             pm_mode_name((enum pm_mode)sv->cfg->pm), why);
    sv->view.from = sv->target;
    sv->view.target = n;
    sv->view.changed_unix = (int64_t)time(NULL);
    snprintf(sv->view.why, sizeof(sv->view.why), "%s", why);
    sv->target = n;
    if (sv->report != NULL)
        pm_report_write(sv->report, &sv->view);
    if (!grew || sv->cfg->pm == PM_STATIC)
        return;
    for (i = 0; i < sv->nw; i++)
        if (sv->w[i].state == W_RUNNING && !sv->w[i].killed) {
            sv->w[i].shed = 1;
            sv->shedding = 1;
        }
}

/*
 * shed_due: the workers resized() marked, asked to let their connections
 * go, once no worker is still starting.  Asked at once, they did so
 * before the new workers waited on the listening socket, and the front
 * server's new connections went to them again (measured: 8 -> 16 at 1 ms,
 * the 8 new workers served no request in 5 s).  A worker that never
 * reports lets the start timeout count it ready.
 */
static void
shed_due(struct sv *sv)
{
    int i, asked = 0;

    if (!sv->shedding)
        return;
    for (i = 0; i < sv->nw; i++)
        if (sv->w[i].state == W_RUNNING && !sv->w[i].ready)
            return;
    for (i = 0; i < sv->nw; i++) {
        struct worker *w = &sv->w[i];

        if (w->shed && w->state == W_RUNNING && !w->killed) {
            sb_shed(sb_slot(sv->sb, i));
            asked++;
        }
        w->shed = 0;
    }
    sv->shedding = 0;
    log_debug("the pool grew: %d workers asked to close their connections, "
              "for the front server to spread them",
              asked);
}

/*
 * sizing_start: the controller at the pool's size, the gauge when the
 * pool sizes itself or the log wants every window (--log-level debug:
 * how the unit tests' traces are recorded), and the report.  Results: 0,
 * or -1 (out of memory, logged).
 */
static int
sizing_start(struct sv *sv, int64_t now)
{
    const struct config *c = sv->cfg;
    struct pm_config pc = {
        (enum pm_mode)c->pm, sv->target,   c->workers_min, c->max_workers,
        c->spare_min,        c->spare_max, c->idle_ms,     1};
    cpu_set_t set;

    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        pc.cpus = CPU_COUNT(&set);
    if (pc.start < pc.min)
        pc.start = pc.min;
    pm_init(&sv->pm, &pc);
    sv->target = sv->pm.target;
    sv->report = mmap(NULL, sizeof(*sv->report), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sv->report == MAP_FAILED)
        sv->report = NULL;
    sv->view.mode = pc.mode;
    sv->view.target = sv->view.from = sv->target;
    sv->view.min = pc.mode == PM_STATIC ? 1 : pc.min;
    sv->view.max = pc.max;
    if (sv->report != NULL)
        pm_report_write(sv->report, &sv->view);
    if (pc.mode != PM_STATIC)
        log_info("the pool sizes itself (--pm %s): %d workers to start, "
                 "between %d and %d",
                 pm_mode_name(pc.mode), sv->target, pc.min, pc.max);
    if (pc.mode == PM_STATIC && c->log_level < LOG_DEBUG)
        return 0;
    sv->serving = calloc((size_t)sv->nw, sizeof(*sv->serving));
    if (sv->serving == NULL ||
        (sv->gauge = gauge_new(sv->sb, sv->listen_fd)) == NULL) {
        log_err("cannot measure the pool: %s", strerror(ENOMEM));
        return -1;
    }
    sv->sample_due = now + PM_SAMPLE_MS * MS;
    sv->window_due = now + PM_WINDOW_MS * MS;
    return 0;
}

static void
sizing_free(struct sv *sv)
{
    gauge_free(sv->gauge);
    free(sv->serving);
    if (sv->report != NULL)
        munmap(sv->report, sizeof(*sv->report));
}

/*
 * serving_pids: the pid serving from each slot (0: none), for the gauge.
 * Results: the workers on their way in or out (starting, stopping, or
 * dead and due to start again).
 */
static int
serving_pids(struct sv *sv)
{
    int i, moving = 0;

    for (i = 0; i < sv->nw; i++) {
        const struct worker *w = &sv->w[i];
        int serves = w->state == W_RUNNING && w->ready && !w->killed;

        sv->serving[i] = serves ? w->pid : 0;
        moving += (w->state == W_RUNNING && !w->ready) ||
                  w->state == W_STOPPING || w->state == W_PENDING;
    }
    return moving;
}

/* next_tick: due + period, or now + period when that has passed. */
static int64_t
next_tick(int64_t due, int64_t period, int64_t now)
{
    return due + period > now ? due + period : now + period;
}

/*
 * measure: a sample when one is due, a window when one is, and the
 * controller's answer to it carried out.
 */
static void
measure(struct sv *sv, int64_t now)
{
    struct pm_window win;
    char why[PM_WHY_MAX], line[256];
    int moving, to;

    if (sv->gauge == NULL || sv->stop != RUNNING || now < sv->sample_due)
        return;
    moving = serving_pids(sv);
    gauge_sample(sv->gauge, sv->serving, now);
    sv->sample_due = next_tick(sv->sample_due, PM_SAMPLE_MS * MS, now);
    if (now < sv->window_due)
        return;
    sv->window_due = next_tick(sv->window_due, PM_WINDOW_MS * MS, now);
    gauge_window(sv->gauge, sv->serving, moving, now, &win);
    if (sv->cfg->log_level >= LOG_DEBUG) {
        gauge_line(&win, line, sizeof(line));
        log_debug("window %s", line);
    }
    if ((to = pm_step(&sv->pm, &win, why, sizeof(why))) != sv->target)
        resized(sv, to, why);
}

/*
 * sleep_until: sigsuspend(); but with no worker to take a connection
 * (ondemand, down to 0) ppoll() on the listening socket too, so that a
 * connection starts one at once.  Results: 1 when a connection waits.
 */
static int
sleep_until(struct sv *sv, const sigset_t *mask)
{
    struct pollfd pfd = {.fd = sv->listen_fd, .events = POLLIN};

    if (sv->target > 0 || sv->stop != RUNNING || live(sv) > 0 ||
        sv->gauge == NULL) {
        sigsuspend(mask);
        return 0;
    }
    return ppoll(&pfd, 1, NULL, mask) == 1 && (pfd.revents & POLLIN);
}

/* wake: a connection came to a pool without a worker. */
static void
wake(struct sv *sv)
{
    char why[PM_WHY_MAX];
    int to = pm_wake(&sv->pm, why, sizeof(why));

    if (to != sv->target)
        resized(sv, to, why);
}

/* --- the flags ----------------------------------------------------------- */

/* reopen_log: SIGUSR1's work, then a roll for the workers' sake. */
static void
reopen_log(struct sv *sv)
{
    if (sv->cfg->log_file == NULL) {
        log_info("SIGUSR1: no --log-file to reopen");
    } else if (log_open_file(sv->cfg->log_file) == -1) {
        log_err("SIGUSR1: cannot reopen %s: %s; logging on to the old file",
                sv->cfg->log_file, strerror(errno));
    } else {
        log_info("SIGUSR1: reopened %s", sv->cfg->log_file);
        sig_hup = 1; /* the workers still hold the old file */
    }
}

/* resize: SIGTTIN and SIGTTOU, counted, within 1 (or --workers-min)
 * and --workers-max; a pool that sizes itself starts from there. */
static void
resize(struct sv *sv)
{
    int n = sv->target + sig_ttin - sig_ttou;
    int lo = sv->cfg->pm == PM_STATIC ? 1 : sv->cfg->workers_min;

    if (n > sv->cfg->max_workers) {
        n = sv->cfg->max_workers;
        sb_pool_max_children(sv->sb);
    }
    if (n < lo)
        n = lo;
    n = pm_set(&sv->pm, n);
    if (n != sv->target)
        resized(sv, n, sig_ttin > sig_ttou ? "SIGTTIN" : "SIGTTOU");
    else
        log_warn("pool size stays %d (between %d and --workers-max %d)", n, lo,
                 sv->cfg->max_workers);
    sig_ttin = sig_ttou = 0;
}

/* on_flags: act on what the signal handler noted, most drastic first. */
static void
on_flags(struct sv *sv, int64_t now)
{
    if (sigtab_pending())
        sigtab_report(SIGTAB_SUPERVISOR);
    if (sig_cont) {
        sig_cont = 0;
        log_info("SIGCONT: running again; the clocks are looked at now");
    }
    if (sig_quick) {
        sig_quick = 0;
        begin_stop(sv, STOP_NOW, now);
    }
    if (sig_stop) {
        sig_stop = 0;
        begin_stop(sv, STOP_GRACEFUL, now);
    }
    if (sv->stop != RUNNING) {
        if (sig_usr2 || sig_hup || sig_ttin || sig_ttou)
            log_info("the pool is stopping: SIGUSR2, SIGHUP, SIGTTIN and "
                     "SIGTTOU are ignored");
        sig_hup = sig_usr1 = sig_usr2 = sig_ttin = sig_ttou = 0;
        return;
    }
    if (sig_usr1) {
        sig_usr1 = 0;
        reopen_log(sv);
    }
    if (sig_hup) {
        sig_hup = 0;
        roll(sv, "SIGHUP", now);
    }
    if (sig_ttin || sig_ttou)
        resize(sv);
    if (sig_usr2) {
        sig_usr2 = 0;
        reexec(sv, now);
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
    struct sigaction act[SIGTAB_SLOTS];
    sigset_t mask;
};

/*
 * signals_take: on_signal for every signal sigtab.h has the supervisor
 * act on or note, all of them blocked except inside sigsuspend(wait_mask);
 * SIGPIPE and SIGXFSZ ignored; the faults left to main.c's handler.
 */
static void
signals_take(struct saved_signals *saved, sigset_t *wait_mask)
{
    struct sigaction sa;
    sigset_t set;
    int s;

    sigemptyset(&set);
    for (s = 1; s <= SIGTAB_MAX; s++)
        if (caught(s))
            sigaddset(&set, s);
    sigprocmask(SIG_BLOCK, &set, &saved->mask);
    *wait_mask = saved->mask;
    memset(&sa, 0, sizeof(sa));
    sa.sa_mask = set;
    for (s = 1; s <= SIGTAB_MAX; s++) {
        sigaction(s, NULL, &saved->act[s]);
        if (caught(s)) {
            sigdelset(wait_mask, s);
            sa.sa_handler = on_signal;
            sa.sa_flags = s == SIGCHLD ? SA_NOCLDSTOP : 0;
        } else if (sigtab_action(s, SIGTAB_SUPERVISOR) == SIGTAB_IGNORE) {
            sa.sa_handler = SIG_IGN;
            sa.sa_flags = 0;
        } else {
            continue;
        }
        sigaction(s, &sa, NULL);
    }
}

/*
 * signals_restore: the timer off, the dispositions and mask as found.
 * A SIGALRM the timer raised since the last sigsuspend() is pending,
 * blocked: it is taken here, or the restored default would end the
 * process (the gauge arms the timer every 100 ms).
 */
static void
signals_restore(const struct saved_signals *saved)
{
    const struct timespec now = {0, 0};
    struct itimerval off;
    sigset_t alrm;
    int s;

    memset(&off, 0, sizeof(off));
    setitimer(ITIMER_REAL, &off, NULL);
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    while (sigtimedwait(&alrm, NULL, &now) == SIGALRM)
        continue;
    for (s = 1; s <= SIGTAB_MAX; s++)
        if (caught(s) || sigtab_action(s, SIGTAB_SUPERVISOR) == SIGTAB_IGNORE)
            sigaction(s, &saved->act[s], NULL);
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
    int knock;

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
    if ((sv.w = calloc((size_t)sv.nw, sizeof(*sv.w))) == NULL) {
        log_err("cannot start the pool: %s", strerror(errno));
        return EXITCODE_ERROR;
    }
    if (board(&sv) == -1) {
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
    if (sizing_start(&sv, sb_now_ns()) == -1) {
        sv.status = EXITCODE_ERROR;
        goto free_sv;
    }
    srandom((unsigned)getpid() ^ (unsigned)time(NULL));
    if (cfg->cpu_affinity == CONFIG_AFFINITY_SLOT && cpus_allowed(&sv) == -1) {
        log_err("--cpu-affinity: cannot read the CPUs allowed: %s",
                strerror(errno));
        sv.status = EXITCODE_ERROR;
        goto free_sv;
    }
    signals_take(&saved, &wait_mask);

    log_info("%s %d workers: %s", sv.rolling ? "keeping" : "starting",
             sv.target, path);
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
        knock = sleep_until(&sv, &wait_mask);
        now = sb_now_ns();
        on_flags(&sv, now);
        if (sig_child) {
            sig_child = 0;
            reap(&sv, now);
        }
        watch(&sv, now);
        shed_due(&sv);
        if (knock && sv.stop == RUNNING)
            wake(&sv);
        measure(&sv, now);
        reshape(&sv, now);
        if (sv.status_due > 0 && sv.status_due <= now && sv.stop == RUNNING)
            status_start(&sv, now);
        if (sv.stop != RUNNING && live(&sv) == 0 && sv.status_pid == 0)
            break;
    }
    log_info("all workers gone; exiting with status %d", sv.status);
    signals_restore(&saved);
free_sv:
    sizing_free(&sv);
    free(sv.envp);
    sb_free(sv.sb);
    free(sv.w);
    return sv.status;
}
