/*
 * pool.c: the supervisor's decisions; see pool.h.
 */
#include "pool.h"

#include <assert.h>
#include <sys/wait.h>

#include "exitcode.h"

enum pool_action
pool_plan(const struct pool_census *c, int target)
{
    int serving = c->ready + c->old;
    int members = serving + c->starting + c->pending + c->fatal;
    int allowance = target + (c->old > 0 ? 1 : 0);

    assert(target >= 0);
    if (serving > target)
        return c->old > 0 ? POOL_RETIRE_OLD : POOL_RETIRE_READY;
    if (members > allowance) {
        /* The dead go first: dropping them costs no request. */
        if (c->fatal > 0)
            return POOL_DROP_FATAL;
        if (c->pending > 0)
            return POOL_DROP_PENDING;
        /* serving <= target < members, so someone is starting. */
        assert(c->starting > 0);
        return POOL_RETIRE_STARTING;
    }
    if (members < target)
        return POOL_ADD;
    /*
     * Rolling restart: one new worker at a time, only while the last one
     * has become ready, and not while a new one is failing (pending or
     * fatal): then the old workers keep serving.
     */
    if (c->old > 0 && c->starting == 0 && c->pending == 0 && c->fatal == 0)
        return POOL_ADD;
    return POOL_NONE;
}

enum pool_exit
pool_classify(int wstatus, int64_t uptime_ms, uint64_t requests, int busy,
              int retiring, int killed)
{
    int clean = WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0;

    if (retiring)
        return POOL_EXIT_RETIRED;
    if (killed)
        return POOL_EXIT_REPLACE;
    if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == EXITCODE_CONFIG)
        return POOL_EXIT_DISABLED;
    /*
     * A clean exit after serving requests is max-requests at work, however
     * fast it came (a small limit under load recycles within milliseconds).
     * A clean exit that served nothing is a worker that gave up.
     */
    if (clean && requests > 0)
        return POOL_EXIT_RECYCLED;
    if (requests > 0 || busy)
        return POOL_EXIT_REPLACE;
    if (uptime_ms < POOL_MIN_UPTIME_MS)
        return POOL_EXIT_QUICK;
    return POOL_EXIT_REPLACE;
}

long
pool_backoff_ms(unsigned fails)
{
    long ms = POOL_BACKOFF_BASE_MS;

    assert(fails >= 1);
    while (--fails > 0 && ms < POOL_BACKOFF_MAX_MS)
        ms *= 2;
    return ms < POOL_BACKOFF_MAX_MS ? ms : POOL_BACKOFF_MAX_MS;
}

long
pool_max_requests(long base, long jitter, uint32_t rnd)
{
    if (base <= 0)
        return 0;
    if (jitter <= 0)
        return base;
    return base + (long)(rnd % ((uint32_t)jitter + 1));
}
