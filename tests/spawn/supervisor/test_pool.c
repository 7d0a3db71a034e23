/*
 * test_pool.c: the supervisor's decisions (spawn/supervisor/pool.c), including
 * a rolling restart, a resize and a crash loop walked step by step.
 */
#include "../../../spawn/supervisor/pool.c"

#include <stdint.h>
#include <sys/wait.h>

#include "harness.h"

#define EXITED(code) ((code) << 8)
#define SIGNALED(sig) (sig)

/*
 * A model pool for pool_plan(): applies each action the way the
 * supervisor does; `boots` says whether new workers manage to start.
 */
struct model {
    struct pool_census c;
    int stopping; /* retired, still finishing their request */
    int boots;
    int max_members, min_serving, steps;
};

static void
model_apply(struct model *m, enum pool_action a)
{
    switch (a) {
    case POOL_ADD:
        m->c.pending++;
        break;
    case POOL_RETIRE_OLD:
        m->c.old--, m->stopping++;
        break;
    case POOL_RETIRE_READY:
        m->c.ready--, m->stopping++;
        break;
    case POOL_RETIRE_STARTING:
        m->c.starting--, m->stopping++;
        break;
    case POOL_DROP_FATAL:
        m->c.fatal--;
        break;
    case POOL_DROP_PENDING:
        m->c.pending--;
        break;
    case POOL_NONE:
        break;
    }
}

/* model_tick: time passes: pending ones start, starting ones boot or die. */
static void
model_tick(struct model *m)
{
    m->stopping = 0;
    if (m->boots) {
        m->c.ready += m->c.starting;
        m->c.starting = 0;
    } else {
        int died = m->c.starting;

        m->c.starting = 0;
        m->c.pending += died;
    }
    m->c.starting += m->c.pending;
    m->c.pending = 0;
}

/* model_run: plan until NONE, tick; n rounds; track the bounds. */
static void
model_run(struct model *m, int target, int rounds)
{
    int r, guard;

    for (r = 0; r < rounds; r++) {
        for (guard = 0; guard < 100; guard++) {
            enum pool_action a = pool_plan(&m->c, target);
            int members, serving;

            if (a == POOL_NONE)
                break;
            model_apply(m, a);
            m->steps++;
            members = m->c.ready + m->c.old + m->c.starting + m->c.pending +
                      m->c.fatal;
            serving = m->c.ready + m->c.old;
            if (members > m->max_members)
                m->max_members = members;
            if (serving < m->min_serving)
                m->min_serving = serving;
        }
        model_tick(m);
    }
}

static void
test_plan_steady(void)
{
    struct pool_census c = {.ready = 4};

    is_int(pool_plan(&c, 4), POOL_NONE, "a full pool needs nothing");
    c.ready = 3;
    c.pending = 1;
    is_int(pool_plan(&c, 4), POOL_NONE,
           "a dead worker waiting for its restart is still a member");
    c.pending = 0;
    is_int(pool_plan(&c, 4), POOL_ADD, "a missing worker is added");
    c.ready = 2;
    c.fatal = 2;
    is_int(pool_plan(&c, 4), POOL_NONE,
           "workers dead with the fatal status are not replaced");
}

static void
test_plan_resize(void)
{
    struct pool_census c = {.ready = 3};

    is_int(pool_plan(&c, 4), POOL_ADD, "SIGTTIN: one more");
    is_int(pool_plan(&c, 2), POOL_RETIRE_READY, "SIGTTOU: one fewer");
    c.ready = 2;
    c.starting = 1;
    is_int(pool_plan(&c, 2), POOL_RETIRE_STARTING,
           "shrinking drops a starting worker before a serving one");
    c.starting = 0;
    c.pending = 1;
    is_int(pool_plan(&c, 2), POOL_DROP_PENDING,
           "shrinking drops a dead worker first");
}

static void
test_plan_stop(void)
{
    struct model m = {
        .c = {.ready = 2, .old = 1, .pending = 1, .fatal = 1, .starting = 1},
        .boots = 1};

    model_run(&m, 0, 3);
    is_int(m.c.ready + m.c.old + m.c.starting + m.c.pending + m.c.fatal, 0,
           "target 0 empties the pool");
}

static void
test_plan_roll(void)
{
    struct model m = {.c = {.old = 4}, .boots = 1, .min_serving = 4};
    int rounds = 0;

    while ((m.c.old > 0 || m.c.ready < 4) && rounds < 50) {
        model_run(&m, 4, 1);
        rounds++;
    }
    is_int(m.c.ready, 4, "rolling restart: 4 new workers at the end");
    is_int(m.c.old, 0, "rolling restart: no old worker left");
    is_int(m.min_serving, 4, "rolling restart: never fewer than 4 serving");
    is_int(m.max_members, 5, "rolling restart: never more than 5 members");
    ok(rounds >= 4 && rounds <= 10,
       "rolling restart: one worker at a time "
       "(%d rounds)",
       rounds);
}

static void
test_plan_roll_broken(void)
{
    struct model m = {.c = {.old = 3}, .boots = 0, .min_serving = 3};

    model_run(&m, 3, 20);
    is_int(m.c.old, 3,
           "a new binary that cannot start retires no old "
           "worker");
    is_int(m.max_members, 4, "and it is tried in one slot only");
    m.c.fatal = m.c.pending + m.c.starting;
    m.c.pending = m.c.starting = 0;
    is_int(pool_plan(&m.c, 3), POOL_NONE,
           "a new worker dead with the fatal status stalls the roll");
}

static void
test_classify(void)
{
    is_int(pool_classify(EXITED(0), 5, 100, 0, 0, 0), POOL_EXIT_RECYCLED,
           "clean exit after requests: recycled, however fast");
    is_int(pool_classify(EXITED(0), 5, 0, 0, 0, 0), POOL_EXIT_QUICK,
           "clean exit at once without a request: crash loop");
    is_int(pool_classify(EXITED(1), 10, 0, 0, 0, 0), POOL_EXIT_QUICK,
           "exit 1 at start: crash loop");
    is_int(pool_classify(SIGNALED(SIGSEGV), 999, 0, 0, 0, 0), POOL_EXIT_QUICK,
           "signal within a second, nothing served: crash loop");
    is_int(pool_classify(SIGNALED(SIGSEGV), 20, 3, 0, 0, 0), POOL_EXIT_REPLACE,
           "signal within a second after serving: replaced at once");
    is_int(pool_classify(SIGNALED(SIGABRT), 5, 0, 1, 0, 0), POOL_EXIT_REPLACE,
           "died serving its first request: replaced at once");
    is_int(pool_classify(SIGNALED(SIGKILL), 1000, 0, 0, 0, 0),
           POOL_EXIT_REPLACE, "killed after a second: replaced at once");
    is_int(pool_classify(EXITED(2), 50000, 0, 0, 0, 0), POOL_EXIT_DISABLED,
           "exit 2: fatal, left dead");
    is_int(pool_classify(EXITED(2), 10, 5, 1, 0, 0), POOL_EXIT_DISABLED,
           "exit 2, even after serving: fatal");
    is_int(pool_classify(EXITED(2), 10, 0, 0, 1, 0), POOL_EXIT_RETIRED,
           "any death after our stop signal: retired");
    is_int(pool_classify(SIGNALED(SIGKILL), 10, 0, 0, 0, 1), POOL_EXIT_REPLACE,
           "killed by us for the time limit: replaced at once");
}

static void
test_backoff(void)
{
    is_int(pool_backoff_ms(1), 250, "backoff 1");
    is_int(pool_backoff_ms(2), 500, "backoff 2");
    is_int(pool_backoff_ms(3), 1000, "backoff 3");
    is_int(pool_backoff_ms(7), 16000, "backoff 7");
    is_int(pool_backoff_ms(8), 30000, "backoff 8 is capped");
    is_int(pool_backoff_ms(4000000000u), 30000, "backoff never overflows");
}

static void
test_jitter(void)
{
    static const uint32_t rnds[] = {0, 1, 49, 50, 51, 100, 12345, UINT32_MAX};
    size_t i;
    int inside = 1, low = 0, high = 0;

    is_int(pool_max_requests(0, 50, 7), 0, "no max-requests: 0, no jitter");
    is_int(pool_max_requests(1000, 0, 7), 1000, "no jitter: the base");
    for (i = 0; i < sizeof(rnds) / sizeof(rnds[0]); i++) {
        long v = pool_max_requests(1000, 50, rnds[i]);

        inside &= v >= 1000 && v <= 1050;
        low |= v == 1000;
        high |= v == 1050;
    }
    ok(inside, "jitter stays in [base, base + jitter]");
    ok(low && high, "both ends of the jitter are reachable");
    is_int(pool_max_requests(1, 1000000000, UINT32_MAX),
           1 + (long)(UINT32_MAX % 1000000001u), "a huge jitter is fine");
}

int
main(void)
{
    test_plan_steady();
    test_plan_resize();
    test_plan_stop();
    test_plan_roll();
    test_plan_roll_broken();
    test_classify();
    test_backoff();
    test_jitter();
    return done_testing();
}
