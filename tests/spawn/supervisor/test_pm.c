/*
 * test_pm.c: the pool's sizing (spawn/supervisor/pm.c), driven by
 * recorded traces.
 *
 * A trace (a file in traces/) is what the gauge measured, a window a second,
 * with a real pool of each size in turn behind nginx under wrk -c64: the
 * lines tfb-spawn --log-level debug writes ("window workers=8 ...", the
 * prefix cut; traces/README.txt says how each was recorded).  The
 * simulation below feeds the controller, second after second, a window
 * recorded at the size it asks for (one of the size's windows in turn;
 * between two recorded sizes, the two windows mixed in proportion), and
 * checks where it settles (within 0.9 of the best size's requests per
 * second, as the target says of the bench), how soon, and how
 * often it turns.  The presets and the report are checked on plain
 * windows.
 */
#include "../../../spawn/supervisor/pm.c"

#include "../../../spawn/supervisor/gauge.h"
#include "harness.h"

#define TRACES "tests/spawn/supervisor/traces/"
#define SIZES 65    /* sizes 0..64 */
#define SECONDS 600 /* the longest simulation */

struct trace {
    const char *name;
    struct pm_window *w[SIZES];
    int count[SIZES];
};

/* trace_load: traces/NAME.txt.  Results: 0, or -1 (said). */
static int
trace_load(struct trace *t, const char *name)
{
    char path[256], line[512];
    struct pm_window w;
    FILE *fp;
    int n = 0;

    memset(t, 0, sizeof(*t));
    t->name = name;
    snprintf(path, sizeof(path), TRACES "%s.txt", name);
    if ((fp = fopen(path, "r")) == NULL) {
        printf("# cannot open %s\n", path);
        return -1;
    }
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (line[0] == '#' || gauge_parse(line, &w) == -1 || w.workers >= SIZES)
            continue;
        t->w[w.workers] = realloc(
            t->w[w.workers], (size_t)(t->count[w.workers] + 1) * sizeof(w));
        t->w[w.workers][t->count[w.workers]++] = w;
        n++;
    }
    fclose(fp);
    return n > 0 ? 0 : -1;
}

static void
trace_free(struct trace *t)
{
    int i;

    for (i = 0; i < SIZES; i++)
        free(t->w[i]);
}

/* recorded: the recorded size nearest n from below (dir -1) or above
 * (+1), or 0. */
static int
recorded(const struct trace *t, int n, int dir)
{
    for (; n > 0 && n < SIZES; n += dir)
        if (t->count[n] > 0)
            return n;
    return 0;
}

/* mix: a window (1 - f) of a and f of b, as a pool of size n. */
static struct pm_window
mix(const struct pm_window *a, const struct pm_window *b, double f, int n)
{
    struct pm_window w = *a;

    w.workers = n;
    w.requests = (uint64_t)((1 - f) * (double)a->requests +
                            f * (double)b->requests * a->span_ms / b->span_ms);
    w.busy = (1 - f) * a->busy + f * b->busy;
    w.db = (1 - f) * a->db + f * b->db;
    w.queue = (1 - f) * a->queue + f * b->queue;
    w.cpu_idle = (1 - f) * a->cpu_idle + f * b->cpu_idle;
    w.run_wait = (1 - f) * a->run_wait + f * b->run_wait;
    w.busy_max = (int)(w.busy + 0.999);
    w.queue_max = a->queue_max > b->queue_max ? a->queue_max : b->queue_max;
    return w;
}

/*
 * trace_at: the k-th window of a pool of size n: recorded, or mixed from
 * the two nearest recorded sizes; past the largest, the largest's (the
 * extra workers idle: the same work over more of them).
 */
static struct pm_window
trace_at(const struct trace *t, int n, int k)
{
    int lo = recorded(t, n, -1), hi = recorded(t, n, +1);
    const struct pm_window *a, *b;

    if (lo == n)
        return mix(&t->w[n][k % t->count[n]], &t->w[n][k % t->count[n]], 0, n);
    if (lo == 0)
        lo = hi;
    if (hi == 0)
        hi = lo;
    a = &t->w[lo][k % t->count[lo]];
    b = &t->w[hi][k % t->count[hi]];
    return mix(a, b, hi == lo ? 0 : (double)(n - lo) / (hi - lo), n);
}

/* trace_rate: the mean requests per second of size n, over all its
 * windows (mixed as trace_at does). */
static double
trace_rate(const struct trace *t, int n)
{
    int lo = recorded(t, n, -1) ? recorded(t, n, -1) : recorded(t, n, +1);
    int k, count = t->count[lo] > 0 ? t->count[lo] : 1;
    double sum = 0;

    for (k = 0; k < count; k++) {
        struct pm_window w = trace_at(t, n, k);

        sum += (double)w.requests * 1000 / w.span_ms;
    }
    return sum / count;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/*
 * trace_capacity: what size n answers when the machine's other work
 * leaves it alone: the 90th percentile of its windows' rates (mixed as
 * trace_at does).  The traces were recorded on a machine shared with
 * other work, whose busy spells fell on some sizes' windows more than on
 * others' (at 1 ms, 32 workers' mean rate was 8,800 req/s, its quiet
 * seconds 13,000-14,400); the upper percentiles are the pool's own
 * curve, the one the sweep of measured-facts.md shows.
 */
static double
trace_capacity(const struct trace *t, int n)
{
    int lo = recorded(t, n, -1) ? recorded(t, n, -1) : recorded(t, n, +1);
    int k, count = t->count[lo] > 0 ? t->count[lo] : 1;
    double r[256];

    if (count > 256)
        count = 256;
    for (k = 0; k < count; k++) {
        struct pm_window w = trace_at(t, n, k);

        r[k] = (double)w.requests * 1000 / w.span_ms;
    }
    qsort(r, (size_t)count, sizeof(r[0]), cmp_double);
    return r[count * 9 / 10];
}

/* trace_best: the recorded size in [lo, hi] of the highest capacity. */
static int
trace_best(const struct trace *t, int lo, int hi)
{
    int n, best = 0;

    for (n = lo; n <= hi && n < SIZES; n++)
        if (t->count[n] > 0 &&
            (best == 0 || trace_capacity(t, n) > trace_capacity(t, best)))
            best = n;
    return best;
}

/* A stretch of load: a trace's (NULL: none, an idle pool) for seconds;
 * busy > 0: no more than busy workers' worth of it (a load of that many
 * connections: the window of that size, spread over the pool). */
struct load {
    const struct trace *t;
    int seconds;
    int busy;
};

struct run {
    int size[SECONDS]; /* the target at each second's end */
    int seconds;
    int changes, turns;
    int last_change; /* the second of the last change, -1: none */
    int turn_at[8];  /* the seconds of the first turns */
};

/* window: second k of load l, for a pool of n workers. */
static struct pm_window
window(const struct load *l, int n, int k)
{
    struct pm_window w;

    if (l->t == NULL) {
        memset(&w, 0, sizeof(w));
        w.workers = n;
        w.span_ms = 1000;
        w.cpu_idle = 0.5;
        return w;
    }
    if (l->busy > 0 && l->busy < n) {
        /* Fewer connections than workers: nothing waits. */
        w = trace_at(l->t, l->busy, k);
        w.workers = n;
        w.queue = 0;
        w.queue_max = 0;
        return w;
    }
    return trace_at(l->t, n, k);
}

/*
 * simulate: cfg's controller through the loads, one window a second;
 * every change said as a comment when verbose.
 */
static void
simulate(const struct pm_config *cfg, const struct load *loads, int nloads,
         struct run *r, int k, int verbose)
{
    struct pm pm;
    char why[PM_WHY_MAX];
    int i, s, dir = 0, to, before;

    memset(r, 0, sizeof(*r));
    r->last_change = -1;
    pm_init(&pm, cfg);
    for (i = 0; i < nloads; i++) {
        for (s = 0; s < loads[i].seconds && r->seconds < SECONDS; s++) {
            struct pm_window w = window(&loads[i], pm.target, k++);

            w.end_ms = (int64_t)(r->seconds + 1) * 1000;
            before = pm.target;
            to = pm_step(&pm, &w, why, sizeof(why));
            if (to != before) {
                int d = to > before ? 1 : -1;

                if (dir != 0 && d != dir) {
                    if (r->turns < 8)
                        r->turn_at[r->turns] = r->seconds;
                    r->turns++;
                }
                dir = d;
                r->changes++;
                r->last_change = r->seconds;
                if (verbose)
                    printf("#   %3d s: %d -> %d: %s\n", r->seconds + 1, before,
                           to, why);
            }
            r->size[r->seconds++] = to;
        }
    }
}

/* turns_between: the changes of direction in seconds [from, to). */
static int
turns_between(const struct run *r, int from, int to)
{
    int i, n = 0;

    for (i = 0; i < r->turns && i < 8; i++)
        n += r->turn_at[i] >= from && r->turn_at[i] < to;
    return n;
}

static const struct pm_config auto_cfg = {PM_AUTO, 2, 1, 64, 1, 3, 10000, 2};

/*
 * settles: a steady load of trace name, from the cores' 2 workers, in
 * REPLAYS replays, each starting at another of the trace's seconds (the
 * machine's busy spells then fall on other sizes' measurements): every
 * one settled within 30 s and turned no more than twice; on average over
 * the replays at a size answering 0.9 of the best recorded size's
 * requests per second (their capacities, above), and never below 0.7.
 * A controller judging a few seconds of a noisy machine cannot be right
 * every time: this says how often, and by how much, it misses (on the
 * committed traces: far-db 7 of 8 replays at the best, one at 0.73;
 * local-queries, whose 2, 3 and 4 workers the noise barely tells apart,
 * at 0.87 to 1).
 */
#define REPLAYS 8
static void
settles(const char *name)
{
    struct trace t;
    struct load l = {&t, 90, 0};
    struct run r;
    int best, end, i, slow = 0, turny = 0, ends[REPLAYS];
    double top, q, sum = 0, low = 1;

    if (!ok(trace_load(&t, name) == 0, "%s: the trace reads", name))
        return;
    best = trace_best(&t, auto_cfg.min, auto_cfg.max);
    top = trace_capacity(&t, best);
    for (i = 0; i < REPLAYS; i++) {
        simulate(&auto_cfg, &l, 1, &r, 7 * i,
                 getenv("TEST_PM_VERBOSE") != NULL || i == 0);
        end = ends[i] = r.size[r.seconds - 1];
        slow += r.last_change >= 30;
        turny += r.turns > 2;
        q = trace_capacity(&t, end) / top;
        sum += q;
        low = q < low ? q : low;
    }
    printf("#   %s: settled at", name);
    for (i = 0; i < REPLAYS; i++)
        printf(" %d (%.2f)", ends[i], trace_capacity(&t, ends[i]) / top);
    printf("; the best recorded: %d workers, %.0f req/s (mean %.0f)\n", best,
           top, trace_rate(&t, best));
    ok(slow == 0, "%s: every replay settled within 30 s (%d did not)", name,
       slow);
    ok(turny == 0, "%s: every replay turned at most twice (%d did not)", name,
       turny);
    ok(sum / REPLAYS >= 0.9 && low >= 0.7,
       "%s: the replays settled at %.2f of the best recorded size's "
       "requests/s on average (0.9 at least), %.2f at worst (0.7 at least)",
       name, sum / REPLAYS, low);
    trace_free(&t);
}

/* last_change_in: the second of the last change in [from, to), or -1. */
static int
last_change_in(const struct run *r, int from, int to)
{
    int t, last = -1;

    for (t = from; t < to && t < r->seconds; t++)
        if (r->size[t] != (t > 0 ? r->size[t - 1] : r->size[0]))
            last = t;
    return last;
}

/* grew_in: the size rose in [from, to). */
static int
grew_in(const struct run *r, int from, int to)
{
    int t;

    for (t = from > 0 ? from : 1; t < to && t < r->seconds; t++)
        if (r->size[t] > r->size[t - 1])
            return 1;
    return 0;
}

/*
 * burst: an idle pool, then the far trace's load (wrk -c64) for 60 s,
 * then idle again: down to --workers-min at first, a climb that settles
 * within 30 s turning at most twice, and down to --workers-min within
 * 60 s of the load's end.
 */
static void
burst(const char *name)
{
    struct trace t;
    struct load l[3] = {{NULL, 20, 0}, {&t, 60, 0}, {NULL, 70, 0}};
    struct run r;
    int last, best;
    double got, top;

    if (!ok(trace_load(&t, name) == 0, "burst of %s: the trace reads", name))
        return;
    simulate(&auto_cfg, l, 3, &r, 0, 1);
    ok(r.size[19] == auto_cfg.min, "burst: idle first: at --workers-min (%d)",
       r.size[19]);
    last = last_change_in(&r, 20, 80);
    ok(last >= 20 && last < 50,
       "burst: the load settled within 30 s of its start (%d s after)",
       last - 20 + 1);
    ok(turns_between(&r, 20, 80) <= 2, "burst: %d turns under the load",
       turns_between(&r, 20, 80));
    best = trace_best(&t, auto_cfg.min, auto_cfg.max);
    got = trace_capacity(&t, r.size[79]);
    top = trace_capacity(&t, best);
    ok(got >= 0.9 * top, "burst: at %d workers, %.2f of the best (%d)",
       r.size[79], top > 0 ? got / top : 0, best);
    ok(r.size[139] == auto_cfg.min,
       "burst: the load gone, at --workers-min within 60 s (%d at 60 s)",
       r.size[139]);
    trace_free(&t);
}

/*
 * leak: the far trace's full load for 40 s, then less and less of it (a
 * load of 32 connections' worth, then 24, 16 ... 1, 10 s each), then
 * none: the pool follows it down without ever growing again, stays
 * above what the load keeps busy, and ends at --workers-min.
 */
static void
leak(const char *name)
{
    static const int steps[] = {32, 24, 16, 12, 8, 6, 4, 3, 2, 1};
    struct load l[12];
    struct trace t;
    struct run r;
    int i, t0, below = 0;

    if (!ok(trace_load(&t, name) == 0, "leak of %s: the trace reads", name))
        return;
    l[0] = (struct load){&t, 40, 0};
    for (i = 0; i < 10; i++)
        l[i + 1] = (struct load){&t, 10, steps[i]};
    l[11] = (struct load){NULL, 60, 0};
    simulate(&auto_cfg, l, 12, &r, 0, 1);
    ok(!grew_in(&r, 40, r.seconds),
       "leak: once the load ebbs, the pool never grows again");
    for (i = 0, t0 = 40; i < 10; i++, t0 += 10)
        below += r.size[t0 + 9] < steps[i] && steps[i] < r.size[39];
    ok(below == 0,
       "leak: never below what the load keeps busy, once it needs fewer "
       "than the %d workers of its full load (%d times)",
       r.size[39], below);
    ok(r.size[139] <= 3,
       "leak: at 1 connection's worth, 3 workers at most (%d)", r.size[139]);
    ok(r.size[r.seconds - 1] == auto_cfg.min,
       "leak: the load gone, at --workers-min (%d)", r.size[r.seconds - 1]);
    trace_free(&t);
}

/*
 * switched: trace from's load for 60 s, then to's at once on the same
 * pool, as the bench's auto block runs its routes and distances one after
 * the other, in REPLAYS replays as settles has them: the pool ends at 0.9
 * of to's best recorded size on average, 0.7 at worst (as settles asks),
 * its last change within settle_s of the switch; when fewer is set, below
 * where from left it in a quarter of the replays at least.
 *
 * carry, far /db then far /queries: the pool /db grew finds that
 * /queries's added workers only wait longer on the database, and comes
 * down, when the noise lets it: the far /queries trace answers as much
 * at 32 and 64 (0.88 of 8's), and a descent judged against a fast second
 * at 64 meets slow spells at 32 and 16 (2 replays of 8 come down, to 8;
 * 0.93 of the best on average).  moved, local /queries then far /db (the delay
 * line changed, not the pool): a ceiling found CPU-bound, just above the cores'
 * count, goes once the CPUs are no longer the limit, though the rate at that
 * size fell by less than PM_CONTEXT; the pool grows.  Both within the
 * issue's 30 s, of which seeing the load's change takes 5 to 10.
 */
static void
switched(const char *name, const char *from, const char *to, int fewer,
         int settle_s)
{
    struct trace a, b;
    struct load l[2] = {{&a, 60, 0}, {&b, 90, 0}};
    struct run r;
    int best, end, last, i, n = 0, slow = 0, down = 0;
    double q, top, sum = 0, low = 1;
    char line[512] = "";

    if (!ok(trace_load(&a, from) == 0 && trace_load(&b, to) == 0,
            "%s: %s then %s: the traces read", name, from, to))
        return;
    best = trace_best(&b, auto_cfg.min, auto_cfg.max);
    top = trace_capacity(&b, best);
    for (i = 0; i < REPLAYS; i++) {
        simulate(&auto_cfg, l, 2, &r, 7 * i,
                 getenv("TEST_PM_VERBOSE") != NULL || i == 0);
        end = r.size[r.seconds - 1];
        q = trace_capacity(&b, end) / top;
        sum += q;
        low = q < low ? q : low;
        down += end < r.size[59];
        last = last_change_in(&r, 60, r.seconds);
        slow += last >= 60 + settle_s;
        if (n >= 0 && (size_t)n < sizeof(line))
            n += snprintf(line + n, sizeof(line) - (size_t)n,
                          " %d -> %d (%.2f, %d s)", r.size[59], end, q,
                          last >= 60 ? last - 60 + 1 : 0);
    }
    printf("#   %s: %s then %s:%s; the best recorded: %d\n", name, from, to,
           line, best);
    ok(sum / REPLAYS >= 0.9 && low >= 0.7,
       "%s: the replays settled at %.2f of %s's best recorded size's "
       "requests/s on average (0.9 at least), %.2f at worst (0.7 at least)",
       name, sum / REPLAYS, to, low);
    if (fewer)
        ok(down >= REPLAYS / 4,
           "%s: fewer workers for %s than %s left in %d of %d replays (%d "
           "at least)",
           name, to, from, down, REPLAYS, REPLAYS / 4);
    ok(slow == 0,
       "%s: every replay settled within %d s of the change (%d "
       "did not)",
       name, settle_s, slow);
    trace_free(&a);
    trace_free(&b);
}

/* plain: a window of n workers, busy of them serving, queue waiting,
 * rate requests a second; the CPU half idle, no wait for it. */
static struct pm_window
plain(int n, double busy, double queue, int rate)
{
    struct pm_window w;

    memset(&w, 0, sizeof(w));
    w.workers = n;
    w.span_ms = 1000;
    w.requests = (uint64_t)rate;
    w.busy = busy;
    w.db = busy * 0.9;
    w.busy_max = (int)(busy + 0.999);
    w.queue = queue;
    w.queue_max = (int)(queue + 0.999);
    w.cpu_idle = 0.5;
    return w;
}

/* feed: w to pm as second t (its end), the pool at its target. */
static int
feed(struct pm *pm, struct pm_window w, int t, char *why, size_t len)
{
    w.workers = pm->target;
    w.end_ms = (int64_t)t * 1000;
    return pm_step(pm, &w, why, len);
}

static void
test_static(void)
{
    struct pm_config c = {PM_STATIC, 4, 1, 8, 1, 3, 10000, 2};
    struct pm pm;
    char why[PM_WHY_MAX] = "";
    int t, n = 0;

    pm_init(&pm, &c);
    for (t = 1; t <= 30; t++)
        n += feed(&pm, plain(4, 4, 50, 1000), t, why, sizeof(why)) != 4;
    is_int(n, 0, "static: 30 s of requests waiting change nothing");
    is_int(pm_set(&pm, 9), 8, "static: SIGTTIN stops at --workers-max");
    is_int(pm_set(&pm, 0), 1, "static: SIGTTOU at 1");
    is_str(pm_mode_name(PM_STATIC), "static", "the mode's name");
}

static void
test_dynamic(void)
{
    struct pm_config c = {PM_DYNAMIC, 2, 1, 10, 1, 3, 10000, 2};
    struct pm pm;
    char why[PM_WHY_MAX] = "";
    int t = 0, n;

    pm_init(&pm, &c);
    feed(&pm, plain(2, 0, 0, 0), ++t, why, sizeof(why)); /* warm-up */
    n = feed(&pm, plain(2, 2, 0, 500), ++t, why, sizeof(why));
    ok(n == 3 && strstr(why, "0 spare, below --spare-min 1"),
       "dynamic: both busy: one more, for a spare (%d: %s)", n, why);
    feed(&pm, plain(3, 0, 0, 0), ++t, why, sizeof(why));
    n = feed(&pm, plain(3, 2.5, 4, 500), ++t, why, sizeof(why));
    ok(n == 8, "dynamic: 7 wanted (2.5 busy, 4 waiting) and a spare: 8 (%d)",
       n);
    feed(&pm, plain(8, 0, 0, 0), ++t, why, sizeof(why));
    n = feed(&pm, plain(8, 1, 0, 100), ++t, why, sizeof(why));
    ok(n == 7 && strstr(why, "7 spare, above --spare-max 3"),
       "dynamic: 7 spare: one goes (%d: %s)", n, why);
    for (; t < 60; t++)
        n = feed(&pm, plain(pm.target, 1, 0, 100), t, why, sizeof(why));
    is_int(n, 4, "dynamic: one busy: down to it and 3 spare, one at a time");
    for (; t < 90; t++)
        n = feed(&pm, plain(pm.target, 0, 0, 0), t, why, sizeof(why));
    is_int(n, 3, "dynamic: idle: 3 spare");
}

static void
test_ondemand(void)
{
    struct pm_config c = {PM_ONDEMAND, 0, 0, 8, 1, 3, 10000, 2};
    struct pm pm;
    char why[PM_WHY_MAX] = "";
    int t = 0, n;

    pm_init(&pm, &c);
    is_int(pm.target, 0, "ondemand: no worker at start");
    n = pm_wake(&pm, why, sizeof(why));
    ok(n == 1 && strstr(why, "a connection waits"),
       "ondemand: a connection wakes the first worker (%s)", why);
    is_int(pm_wake(&pm, why, sizeof(why)), 1, "once");
    feed(&pm, plain(1, 0, 0, 0), ++t, why, sizeof(why));
    n = feed(&pm, plain(1, 1, 3, 50), ++t, why, sizeof(why));
    ok(n == 4 && strstr(why, "requests wait for a worker"),
       "ondemand: one busy, three waiting: 4 (%d: %s)", n, why);
    feed(&pm, plain(4, 0, 0, 0), ++t, why, sizeof(why));
    n = feed(&pm, plain(4, 4, 20, 50), ++t, why, sizeof(why));
    is_int(n, 8, "ondemand: never past --workers-max");
    feed(&pm, plain(8, 0, 0, 0), ++t, why, sizeof(why));
    for (n = 8; t < 100 && n == 8; t++)
        n = feed(&pm, plain(8, 2, 0, 50), t, why, sizeof(why));
    ok(n == 2 && t >= 14 && t <= 17 && strstr(why, "at most 2 needed"),
       "ondemand: 2 busy at most for --idle-timeout: down to 2 at %d s (%s)", t,
       why);
    for (n = 2; t < 100 && n == 2; t++)
        n = feed(&pm, plain(2, 0, 0, 0), t, why, sizeof(why));
    ok(n == 0 && t <= 30, "ondemand: idle: down to 0 at %d s", t);
}

/*
 * probe_8_16: a pool of 8, every worker busy, probes 16, where busy16 are
 * busy and the rate rises by 42% (measured at 1 ms: 6,654 -> 9,478 req/s,
 * 3.8 more busy where PM_TOOK wanted 4.0).  Results: the size after 30 s.
 */
static int
probe_8_16(double busy16)
{
    struct pm_config c = {PM_AUTO, 8, 1, 64, 1, 3, 10000, 2};
    struct pm pm;
    char why[PM_WHY_MAX];
    int t, n = 8;

    pm_init(&pm, &c);
    for (t = 1; t < 30; t++) {
        struct pm_window w = pm.target == 8 ? plain(8, 7.9, 0, 6654)
                                            : plain(pm.target, busy16, 0, 9478);

        w.cpu_idle = pm.target == 8 ? 0.33 : 0.16;
        n = feed(&pm, w, t, why, sizeof(why));
    }
    return n;
}

static void
test_auto_plain(void)
{
    struct pm_config c = {PM_AUTO, 16, 2, 64, 1, 3, 10000, 2};
    struct pm pm;
    char why[PM_WHY_MAX] = "";
    int t = 0, n = 16, changes = 0, top = 0, pm_prev = 16;

    pm_init(&pm, &c);
    for (t = 1; t < 60 && n == 16; t++)
        n = feed(&pm, plain(16, 0, 0, 0), t, why, sizeof(why));
    ok(n == 2 && t <= 13 && strstr(why, "at most 0 needed in the last 10 s"),
       "auto: idle: down to --workers-min at %d s, in one step (%s)", t, why);

    /* CPU-bound: every worker busy, 8 at work and the rest waiting for
     * a CPU, the machine without an idle CPU, 1,000 req/s a worker at
     * work: a probe of a quarter more, which buys nothing (the same 8 at
     * work, the same rate), undone and below: 8 answer as many, 4 half,
     * so back to 8, which the 8 at work need. */
    pm_init(&pm, &c);
    for (t = 1; t < 60; t++) {
        struct pm_window w =
            plain(16, pm.target, 0, 1000 * (pm.target < 8 ? pm.target : 8));

        w.cpu_idle = 0.01;
        w.run_wait = pm.target > 8 ? pm.target - 8 : 0;
        n = feed(&pm, w, t, why, sizeof(why));
        if (n > 16 && top == 0)
            top = n;
        changes += n != pm_prev;
        pm_prev = n;
    }
    ok(top == 20 && n == 8 && changes == 4 &&
           strstr(why, "back to the fewest that served as well"),
       "auto: CPU-bound, every worker busy, half waiting for a CPU: a probe "
       "of a quarter more (%d), undone, then down to the 8 at work, tried "
       "below (%d after %d changes: %s)",
       top, n, changes, why);

    /* At --workers-max (16), every worker busy and 4 enough for the rate
     * (the database the limit): 8 -> 16 is kept for its busy workers, and
     * nothing above can undo it, so the pool tries fewer, below the 8 just
     * measured: 4 serves as well, 2 loses half at its first look, back to
     * 4, where it stays. */
    {
        struct pm_config cm = {PM_AUTO, 8, 2, 16, 1, 3, 10000, 2};
        char first[PM_WHY_MAX] = "";

        pm_init(&pm, &cm);
        for (t = 1, top = 0, changes = 0, pm_prev = 8; t < 60; t++) {
            n = feed(&pm,
                     plain(pm.target, pm.target, 0,
                           1000 * (pm.target < 4 ? pm.target : 4)),
                     t, why, sizeof(why));
            top = n > top ? n : top;
            if (n != pm_prev && changes++ == 1)
                snprintf(first, sizeof(first), "%s", why);
            pm_prev = n;
        }
        ok(top == 16 && n == 4 && changes == 4 &&
               strstr(first, "the most allowed") != NULL,
           "auto: kept at --workers-max for its busy workers, the rate no "
           "higher: fewer tried, down to the 4 that serve as well (%d, "
           "after %d changes: %s)",
           n, changes, first);
    }

    /* The database 5 ms away: 64, the most, answers twice 32's rate, and
     * is kept (16 loses).  Then the database local: the same rate at any
     * size, 4 at work and the rest waiting for a CPU: the trim, counting
     * them out, finds half the pool or less needed, and goes below the 64
     * kept for the far load (it stayed at 64, 0.5 of the best). */
    {
        char trim[PM_WHY_MAX] = "";

        pm_init(&pm, &c);
        for (t = 1, pm_prev = 0; t < 80; t++) {
            int k = pm.target;
            struct pm_window w = plain(k, k, 0, t <= 30 ? 100 * k : 8000);

            if (t > 30) {
                w.cpu_idle = 0.01;
                w.run_wait = k > 4 ? k - 4 : 0;
            }
            n = feed(&pm, w, t, why, sizeof(why));
            if (t == 30)
                pm_prev = n;
            if (t > 30 && trim[0] == '\0' && strstr(why, "needed in the last"))
                snprintf(trim, sizeof(trim), "%s", why);
        }
        ok(pm_prev == 64 && n <= 8 && trim[0] != '\0',
           "auto: a size kept under a far database, the CPUs the limit "
           "after: trimmed below it (%d -> %d: %s)",
           pm_prev, n, trim);
    }

    /* /db far: 16 -> 32 more than doubles the rate, and 32 are not all
     * busy (no probe above, no ceiling).  Then /queries: every worker
     * busy, 8 as fast as any more; 32 -> 64 keeps 20 more busy and buys
     * nothing.  32 was kept for a rise under the other load (6 times the
     * rate), which says nothing of this one: the pool goes below, to 8
     * (it stayed at 32). */
    pm_init(&pm, &c);
    for (t = 1; t < 80; t++) {
        int k = pm.target;
        struct pm_window w =
            t <= 30 ? plain(k, k >= 32 ? 28 : k, 0, k >= 32 ? 9000 : 4000)
                    : plain(k, k > 32 ? 52 : k, 0, 190 * (k < 8 ? k : 8));

        n = feed(&pm, w, t, why, sizeof(why));
        if (t == 30)
            pm_prev = n;
    }
    ok(pm_prev == 32 && n == 8,
       "auto: a size kept for a rise under another load is descended "
       "from: %d -> %d (%s)",
       pm_prev, n, why);

    /* The same with the CPU busy by others, the workers not waiting. */
    pm_init(&pm, &c);
    for (t = 1, n = 16; t < 10 && n == 16; t++) {
        struct pm_window w = plain(16, 16, 0, 8000);

        w.cpu_idle = 0.0;
        w.run_wait = 0.3;
        n = feed(&pm, w, t, why, sizeof(why));
    }
    ok(n == 32 && strstr(why, "requests wait"),
       "auto: the CPU busy, the workers not waiting for it: a probe to 32 "
       "(%d: %s)",
       n, why);

    is_int(probe_8_16(11.7), 16,
           "auto: 8 -> 16, +42% with 3.8 more busy where 4.0 were wanted: "
           "kept (a clear rise, a busy count just short)");
    is_int(probe_8_16(9.9), 8,
           "auto: 8 -> 16, +42% with 2.0 more busy: undone (the added "
           "workers found too little work for the rise to be theirs)");

    /* TTIN: the hand wins, what was learnt goes. */
    is_int(pm_set(&pm, 80), 64, "auto: SIGTTIN within --workers-max");
    is_int(pm_set(&pm, 1), 2, "auto: SIGTTOU within --workers-min");
}

static void
test_report(void)
{
    struct pm_report r;
    struct pm_view v = {PM_AUTO, 8, 6, 1, 64, 4, 1000, "requests wait"}, got;
    char line[256];

    memset(&r, 0, sizeof(r));
    pm_report_write(&r, &v);
    pm_report_read(&r, &got);
    ok(got.mode == PM_AUTO && got.target == 8 && got.current == 6 &&
           got.from == 4 && got.changed_unix == 1000 &&
           strcmp(got.why, "requests wait") == 0 &&
           (atomic_load(&r.seq) & 1) == 0,
       "the report, written and read whole");
    pm_report_line(&got, 1012, line, sizeof(line));
    is_str(line,
           "6 workers, wanted 8 (auto, 1..64); 4 -> 8 12 s ago: requests wait",
           "in one line");
    got.changed_unix = 0;
    got.mode = PM_STATIC;
    pm_report_line(&got, 1012, line, sizeof(line));
    is_str(line, "6 workers, wanted 8 (static); no change yet",
           "a static pool, unchanged");
}

int
main(void)
{
    test_static();
    test_dynamic();
    test_ondemand();
    test_auto_plain();
    test_report();
    settles("far-db");
    settles("local-db");
    settles("far-queries");
    settles("local-queries");
    burst("far-db");
    burst("local-db");
    leak("far-db");
    switched("carry", "far-db", "far-queries", 1, 30);
    switched("moved", "local-queries", "far-db", 0, 30);
    return done_testing();
}
