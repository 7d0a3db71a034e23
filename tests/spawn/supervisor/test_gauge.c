/*
 * test_gauge.c: what the pool measures of itself (spawn/supervisor/gauge.c)
 * on a real scoreboard and a real listening socket: requests and phase
 * time from the slots' growth, states and the listen queue from the
 * samples, the kernel's CPU and run-queue figures, a slot believed only
 * while it holds the pid given, and the debug line read back.
 */
#include "../../../spawn/supervisor/gauge.c"

#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "harness.h"

/* request: one request on slot, dbms in the database phase. */
static void
request(struct sb_slot *slot, int dbms)
{
    sb_request_begin(slot, 0, "/db", 3);
    sb_phase(slot, SB_DATABASE);
    sleep_ms(dbms);
    sb_phase(slot, SB_WRITING);
    sb_request_end(slot, 200, 0);
}

static void
test_line(void)
{
    struct pm_window w = {0, 1000, 4,    1,  8855, 3.91,
                          4, 2.4,  57.3, 60, 0.02, 0.05};
    struct pm_window r;
    char line[256];

    gauge_line(&w, line, sizeof(line));
    is_str(line,
           "workers=4 moving=1 span=1000 requests=8855 busy=3.91 busy_max=4 "
           "db=2.40 queue=57.3 queue_max=60 cpu_idle=0.02 run_wait=0.05",
           "the debug line");
    ok(gauge_parse(line, &r) == 0 && r.workers == 4 && r.moving == 1 &&
           r.requests == 8855 && r.busy_max == 4 && r.queue_max == 60 &&
           r.busy > 3.90 && r.busy < 3.92 && r.run_wait > 0.04,
       "read back");
    ok(gauge_parse("2026-12-07T12:42:26Z tfb-spawn[1] debug: window "
                   "workers=2 moving=0 span=1000 requests=1 busy=0.00 "
                   "busy_max=0 db=0.00 queue=0.0 queue_max=0 cpu_idle=0.37 "
                   "run_wait=-1.00",
                   &r) == 0 &&
           r.workers == 2 && r.run_wait < 0,
       "read from a log line, prefix and all");
    ok(gauge_parse("workers=2 moving=0 span=0 requests=1", &r) == -1 &&
           gauge_parse("pool size 2 -> 4", &r) == -1,
       "anything else is refused");
}

static void
test_window(void)
{
    struct scoreboard *sb = sb_create(3);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    pid_t pids[3];
    struct pm_window w;
    struct gauge *g;
    int lfd, c1, c2, i;
    int64_t now;

    if (sb == NULL || (lfd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1) {
        ok(0, "a scoreboard and a socket: %s", strerror(errno));
        return;
    }
    snprintf(sun.sun_path, sizeof(sun.sun_path), "/tmp/test_gauge.%ld",
             (long)getpid());
    unlink(sun.sun_path);
    if (bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
        listen(lfd, 8) == -1) {
        ok(0, "bind, listen: %s", strerror(errno));
        return;
    }
    c1 = socket(AF_UNIX, SOCK_STREAM, 0);
    c2 = socket(AF_UNIX, SOCK_STREAM, 0);
    connect(c1, (struct sockaddr *)&sun, sizeof(sun));
    connect(c2, (struct sockaddr *)&sun, sizeof(sun));
    now = sb_now_ns();
    for (i = 0; i < 3; i++)
        sb_slot_reset(sb_slot(sb, i), SB_IDLE, now);
    /* Slot 0: this process, three requests of 4 ms in the database.
     * Slot 1: the parent, busy without phases (a worker that times none).
     * Slot 2: says it is pid 1, which the supervisor does not give. */
    sb_set_pid(sb_slot(sb, 0), getpid());
    sb_set_pid(sb_slot(sb, 1), getppid());
    sb_set_pid(sb_slot(sb, 2), 1);
    pids[0] = getpid();
    pids[1] = getppid();
    pids[2] = 4194304; /* never a pid: the slot is not believed */
    if ((g = gauge_new(sb, lfd)) == NULL) {
        ok(0, "gauge_new");
        return;
    }
    sb_set_state(sb_slot(sb, 1), SB_BUSY);
    sb_request_done(sb_slot(sb, 2));
    for (i = 0; i < 3; i++) {
        request(sb_slot(sb, 0), 4);
        gauge_sample(g, pids, sb_now_ns());
    }
    sleep_ms(20);
    gauge_window(g, pids, 1, sb_now_ns(), &w);
    ok(w.workers == 2 && w.moving == 1,
       "two workers serve, as the pids given say (%d, moving %d)", w.workers,
       w.moving);
    is_int((long long)w.requests, 3, "their requests, the forged slot's not");
    ok(w.busy > 0 && w.db / w.busy > 0.8,
       "busy from the phases' time, most of it in the database (%.4f, %.4f)",
       w.busy, w.db);
    ok(w.queue > 1.99 && w.queue < 2.01 && w.queue_max == 2,
       "the listen queue: two connections wait (%.2f, max %d)", w.queue,
       w.queue_max);
    ok(w.span_ms >= 30 && w.span_ms < 2000, "the window's span (%d ms)",
       w.span_ms);
    ok(w.cpu_idle >= 0 && w.cpu_idle <= 1, "the machine's CPU idle share %.2f",
       w.cpu_idle);
    ok(w.run_wait < 0, "no run-queue wait yet: the workers are new to it");

    /* A window with no phase time: the sampled states. */
    for (i = 0; i < 4; i++)
        gauge_sample(g, pids, sb_now_ns());
    gauge_window(g, pids, 0, sb_now_ns(), &w);
    ok(w.requests == 0 && w.busy > 0.99 && w.busy < 1.01 && w.busy_max == 1,
       "no request ended: busy is the states sampled (%.2f, max %d)", w.busy,
       w.busy_max);
    ok(w.run_wait >= 0, "the run-queue wait, from the second window (%.3f)",
       w.run_wait);

    /* Slot 0's worker replaced: the new one's counts are all new. */
    sb_slot_reset(sb_slot(sb, 0), SB_IDLE, sb_now_ns());
    sb_set_pid(sb_slot(sb, 0), getpid());
    request(sb_slot(sb, 0), 1);
    gauge_window(g, pids, 0, sb_now_ns(), &w);
    is_int((long long)w.requests, 1, "a slot reset: its new worker's request");
    pids[1] = 0;
    gauge_window(g, pids, 0, sb_now_ns(), &w);
    is_int(w.workers, 1, "a worker not given is not counted");

    gauge_free(g);
    close(c1);
    close(c2);
    close(lfd);
    unlink(sun.sun_path);
    sb_free(sb);
}

int
main(void)
{
    test_line();
    test_window();
    return done_testing();
}
