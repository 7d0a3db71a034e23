/*
 * pool.h: the supervisor's decisions, as pure functions.
 *
 * Nothing here makes a system call: the supervisor counts its workers,
 * asks pool_plan() what to do next, and does it.  Keeping the policy apart
 * from fork(), kill() and waitpid() lets the unit tests walk a rolling
 * restart, a resize or a crash loop step by step without a process.
 */
#ifndef POOL_H
#define POOL_H

#include <stdint.h>

/* A worker that dies sooner than this after its start is crash-looping. */
#define POOL_MIN_UPTIME_MS 1000
/* Its next start waits BASE, 2 BASE, 4 BASE ... at most MAX. */
#define POOL_BACKOFF_BASE_MS 250
#define POOL_BACKOFF_MAX_MS 30000

/*
 * The pool as the planner sees it.  "New" workers run the current
 * generation (since the last SIGHUP), "old" ones a previous generation.
 */
struct pool_census {
    int ready;    /* new, accepting requests */
    int starting; /* new, not accepting yet */
    int old;      /* old, not asked to stop yet, ready or not */
    int pending;  /* dead, to be started again (now or after a backoff) */
    int fatal;    /* dead with EXITCODE_CONFIG, left dead */
};

enum pool_action {
    POOL_NONE,
    POOL_ADD,             /* add a member, to be started at once */
    POOL_RETIRE_OLD,      /* ask an old worker to stop */
    POOL_RETIRE_READY,    /* ask a new, ready worker to stop */
    POOL_RETIRE_STARTING, /* ask a new, starting worker to stop */
    POOL_DROP_FATAL,      /* forget a fatal member */
    POOL_DROP_PENDING     /* forget a pending member */
};

/*
 * pool_plan: the next step towards target workers, or POOL_NONE when the
 * pool has the right shape.  The caller applies the step, counts again and
 * calls again until POOL_NONE.
 *
 * The rules, in order: never more than target workers serving; never more
 * than target members, plus one while old workers remain (the rolling
 * restart's spare); add members up to target; while old workers remain and
 * nothing new is on its way, add one more new worker.  A new worker counts
 * as serving only once it accepts, so an old one is retired only after its
 * replacement is ready: a new binary that cannot start never takes the
 * old workers down.  target 0 retires everyone (the pool's graceful stop).
 */
enum pool_action pool_plan(const struct pool_census *c, int target);

/* What a worker's death means for its slot. */
enum pool_exit {
    POOL_EXIT_RETIRED,  /* we asked it to stop: free the slot */
    POOL_EXIT_RECYCLED, /* served its max-requests and left: start again */
    POOL_EXIT_REPLACE,  /* died after a healthy life, or of a request it
                           served: start again now */
    POOL_EXIT_QUICK,    /* died right after its start, before it served
                           anything: start after a backoff */
    POOL_EXIT_DISABLED  /* exited EXITCODE_CONFIG: leave the slot dead */
};

/*
 * pool_classify: read a worker's death.  wstatus is waitpid()'s; requests
 * is how many it served, busy that it was serving one; retiring says we
 * sent it the stop signal; killed says we killed it for the request time
 * limit (it is replaced at once, whatever its age).
 *
 * Only a worker that dies before it has served anything counts towards
 * the crash-loop backoff: that is a binary or a configuration that cannot
 * start.  One that served, or died serving, is a casualty of a request:
 * replaced at once, however young, so that a storm of requests that crash
 * workers cannot back the pool off into not serving at all.
 */
enum pool_exit pool_classify(int wstatus, int64_t uptime_ms, uint64_t requests,
                             int busy, int retiring, int killed);

/* pool_backoff_ms: the delay before the next start after `fails` quick
 * deaths in a row (fails >= 1). */
long pool_backoff_ms(unsigned fails);

/* pool_max_requests: base plus a jitter in [0, jitter] drawn from rnd,
 * so that workers started together do not all recycle together.
 * 0 when base is 0 (no limit). */
long pool_max_requests(long base, long jitter, uint32_t rnd);

#endif
