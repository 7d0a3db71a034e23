/*
 * test_scoreboard.c: the pool's shared table (spawn/core/scoreboard.c): its
 * creation, the slots' states and counts, and a worker's side, attached
 * through the environment in a child process; the slot's totals across
 * its workers, the histograms, the database's state.
 */
#include "../../../spawn/core/scoreboard.c"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

#include "harness.h"

static void
test_create(void)
{
    struct scoreboard *sb;
    struct sb_header hdr;
    int i, empty = 1;

    errno = 0;
    ok(sb_create(0) == NULL && errno == EINVAL, "no slots: EINVAL");
    ok(sb_create(-1) == NULL, "a negative count: refused");

    if ((sb = sb_create(4)) == NULL) {
        ok(0, "sb_create(4): %s", strerror(errno));
        return;
    }
    is_int(sb_nslots(sb), 4, "sb_create(4): four slots");
    ok(sb_fd(sb) > 2, "it has a descriptor (%d)", sb_fd(sb));
    is_int(fcntl(sb_fd(sb), F_GETFD) & FD_CLOEXEC, 0,
           "not close-on-exec: workers inherit it");
    ok(pread(sb_fd(sb), &hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr) &&
           hdr.magic == SB_MAGIC && hdr.nslots == 4,
       "the header through the descriptor: magic and slot count");
    for (i = 0; i < 4; i++)
        if (sb_state(sb_slot(sb, i)) != SB_EMPTY ||
            sb_requests(sb_slot(sb, i)) != 0 ||
            sb_busy_since(sb_slot(sb, i)) != 0)
            empty = 0;
    ok(empty, "every slot starts empty, idle since never, no requests");
    ok(sb_slot(sb, 3) != sb_slot(sb, 0) &&
           (char *)sb_slot(sb, 1) - (char *)sb_slot(sb, 0) == SB_SLOT_SIZE,
       "slots are %d bytes apart", SB_SLOT_SIZE);
    ok(ftruncate(sb_fd(sb), 0) == -1 && errno == EPERM &&
           ftruncate(sb_fd(sb), 1 << 20) == -1,
       "its size is sealed: neither shrunk nor grown (a worker cannot make "
       "the supervisor's reads fault)");
    ok(fcntl(sb_fd(sb), F_ADD_SEALS, F_SEAL_WRITE) == -1,
       "and the seals themselves are sealed");
    ((int32_t *)sb_slot(sb, 2))[1] = 1234;
    is_int(sb_state(sb_slot(sb, 2)), SB_EMPTY,
           "a state out of range reads as empty");
    sb_slot_reset(sb_slot(sb, 2), SB_EMPTY, 0);
    sb_free(sb);
    sb_free(NULL); /* allowed: a crash here fails the program */
}

static void
test_slot(void)
{
    struct scoreboard *sb = sb_create(2);
    struct sb_slot *s;
    int64_t before, after, t1, t2;

    if (sb == NULL) {
        ok(0, "sb_create: %s", strerror(errno));
        return;
    }
    s = sb_slot(sb, 1);
    sb_set_pid(s, 4242);
    sb_set_state(s, SB_BUSY);
    sb_request_done(s);

    sb_slot_reset(s, SB_STARTING, 123456789);
    is_int(sb_state(s), SB_STARTING, "reset: the state asked for");
    is_int(atomic_load(&s->pid), 0, "reset: pid unknown");
    is_int(sb_requests(s), 0, "reset: no requests");
    is_int(sb_busy_since(s), 0, "reset: not busy");
    is_int(atomic_load(&s->started_ns), 123456789, "reset: started at now");

    sb_set_pid(s, 4243);
    is_int(atomic_load(&s->pid), 4243, "sb_set_pid");

    sb_set_state(s, SB_IDLE);
    is_int(sb_state(s), SB_IDLE, "idle");
    is_int(sb_busy_since(s), 0, "idle: busy_since stays 0");

    before = sb_now_ns();
    sb_set_state(s, SB_BUSY);
    after = sb_now_ns();
    is_int(sb_state(s), SB_BUSY, "busy");
    ok(sb_busy_since(s) >= before && sb_busy_since(s) <= after,
       "busy: busy_since stamped with the scoreboard's clock");
    sb_request_done(s);
    sb_set_state(s, SB_IDLE);
    is_int(sb_busy_since(s), 0, "idle again: busy_since back to 0");
    sb_set_state(s, SB_BUSY);
    sb_request_done(s);
    sb_set_state(s, SB_EXITING);
    is_int(sb_state(s), SB_EXITING, "exiting");
    is_int(sb_busy_since(s), 0, "exiting: busy_since 0");
    sb_set_state(s, SB_STARTING);
    is_int(sb_busy_since(s), 0, "starting: busy_since 0");
    is_int(sb_requests(s), 2, "two requests counted");
    ok(sb_state(sb_slot(sb, 0)) == SB_EMPTY &&
           sb_requests(sb_slot(sb, 0)) == 0 &&
           atomic_load(&sb_slot(sb, 0)->pid) == 0,
       "the other slot is untouched");

    /* A worker without a scoreboard reports to NULL: nothing happens, and
     * a crash here fails the program. */
    sb_set_pid(NULL, 1);
    sb_set_state(NULL, SB_BUSY);
    sb_request_done(NULL);

    t1 = sb_now_ns();
    t2 = sb_now_ns();
    ok(t1 > 0 && t2 >= t1, "sb_now_ns is monotonic");
    sb_free(sb);
}

/* What the pool told the worker of the slot a child attaches to. */
static int64_t want_limit;
static uint64_t want_max;

/*
 * attach_in_child: fork; the child sets the two variables, attaches and
 * reports to its slot as a worker does.  Results: the child's exit status
 * (0: attached and reported; 1: refused, given a slot of its own; 2: no
 * slot at all; 3: the fd was left open; 4: it read another request time
 * limit or max-requests than want_limit and want_max, or another slot
 * number than its own, or a refused one read anything but 0 and -1) and
 * its pid in *pid.
 */
static int
attach_in_child(const char *fd, const char *slot, pid_t *pid)
{
    struct sb_slot *s;
    int st = -1;
    long n;

    fflush(stdout);
    if ((*pid = fork()) == 0) {
        if (fd != NULL)
            setenv(SB_ENV_FD, fd, 1);
        if (slot != NULL)
            setenv(SB_ENV_SLOT, slot, 1);
        /* Refused, a worker still gets a slot, its own, shared with none. */
        if ((s = sb_attach_env()) == NULL)
            _exit(2);
        if (!sb_shared())
            _exit(sb_request_limit_ms() == 0 && sb_max_requests(s) == 0 &&
                          sb_self_index() == -1
                      ? 1
                      : 4);
        if (sb_request_limit_ms() != want_limit ||
            sb_max_requests(s) != want_max || sb_self_index() != atoi(slot))
            _exit(4);
        sb_set_pid(s, getpid());
        sb_set_state(s, SB_BUSY);
        for (n = 0; n < 5; n++)
            sb_request_done(s);
        /* The mapping is all a worker keeps: the descriptor is closed. */
        if (fd != NULL && opt_long(fd, 0, 1 << 20, &n) == 0 &&
            fcntl((int)n, F_GETFD) != -1)
            _exit(3);
        _exit(0);
    }
    waitpid(*pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void
test_attach(void)
{
    struct scoreboard *sb = sb_create(4);
    char fd[16];
    pid_t pid;
    int64_t before;
    int i, others = 1;

    if (sb == NULL) {
        ok(0, "sb_create: %s", strerror(errno));
        return;
    }
    snprintf(fd, sizeof(fd), "%d", sb_fd(sb));
    before = sb_now_ns();
    /* The pool's word, as the supervisor writes it before a fork. */
    want_limit = 2500;
    want_max = 321;
    sb_set_request_limit(sb, want_limit);
    sb_slot_reset(sb_slot(sb, 3), SB_STARTING, before);
    sb_set_max_requests(sb_slot(sb, 3), want_max);
    is_int(attach_in_child(fd, "3", &pid), 0,
           "a child attaches to the last slot and closes the fd; it reads "
           "the pool's request time limit (2500 ms) and its slot's "
           "max-requests (321)");
    is_int(atomic_load(&sb_slot(sb, 3)->pid), pid,
           "the parent reads the child's pid");
    is_int(sb_state(sb_slot(sb, 3)), SB_BUSY, "its state");
    ok(sb_busy_since(sb_slot(sb, 3)) >= before, "its busy_since");
    is_int(sb_requests(sb_slot(sb, 3)), 5, "its request count");
    for (i = 0; i < 3; i++)
        if (sb_state(sb_slot(sb, i)) != SB_EMPTY ||
            sb_requests(sb_slot(sb, i)) != 0)
            others = 0;
    ok(others, "and no other slot");

    sb_slot_reset(sb_slot(sb, 3), SB_EMPTY, 0);
    is_int(sb_max_requests(sb_slot(sb, 3)), 0,
           "a reset slot holds no max-requests for its next worker");
    is_int(sb_max_requests(NULL), 0, "no slot: no max-requests");
    ok(!sb_take_shed(sb_slot(sb, 2)), "sb_take_shed: not asked, no");
    sb_shed(sb_slot(sb, 2));
    ok(sb_take_shed(sb_slot(sb, 2)) && !sb_take_shed(sb_slot(sb, 2)),
       "sb_shed: the worker's next sb_take_shed says yes, once");
    sb_shed(sb_slot(sb, 2));
    sb_slot_reset(sb_slot(sb, 2), SB_EMPTY, 0);
    ok(!sb_take_shed(sb_slot(sb, 2)) && !sb_take_shed(NULL),
       "a reset slot holds no word for its next worker; no slot, none");
    is_int(attach_in_child(fd, "4", &pid), 1,
           "slot 4 of 4: refused (and the slot of its own says no limit, "
           "no max-requests)");
    is_int(attach_in_child(fd, NULL, &pid), 1, "no TFB_WORKER_SLOT: none");
    is_int(attach_in_child(NULL, "0", &pid), 1, "no TFB_SCOREBOARD_FD: none");
    is_int(attach_in_child(fd, "", &pid), 1, "an empty slot: refused");
    is_int(attach_in_child(fd, "-1", &pid), 1, "slot -1: refused");
    is_int(attach_in_child(fd, "1x", &pid), 1, "slot 1x: refused");
    is_int(attach_in_child(fd, " 1", &pid), 1, "slot ' 1': refused");
    is_int(attach_in_child("x", "0", &pid), 1, "fd x: refused");
    is_int(attach_in_child("999", "0", &pid), 1, "a closed fd: refused");
    {
        int null = open("/dev/null", O_RDONLY);
        char nfd[16];

        snprintf(nfd, sizeof(nfd), "%d", null);
        is_int(attach_in_child(nfd, "0", &pid), 1,
               "an fd without a header (/dev/null): refused");
        close(null);
    }
    sb->hdr->magic = 0x12345678;
    is_int(attach_in_child(fd, "0", &pid), 1, "a wrong magic: refused");
    sb->hdr->magic = SB_MAGIC;
    is_int(sb_state(sb_slot(sb, 0)), SB_EMPTY, "no refused child wrote a slot");
    want_max = 0;
    sb_set_request_limit(sb, -5);
    want_limit = 0;
    is_int(attach_in_child(fd, "0", &pid), 0,
           "the first slot: attached; no max-requests, and a negative limit "
           "is none");
    sb_free(sb);
}

/*
 * test_phases: a request's phases, timed on a slot, add up to its total,
 * which the clock times apart; the counters and the route follow.
 */
static void
test_phases(void)
{
    struct scoreboard *sb = sb_create(1);
    struct sb_slot *slot;
    struct sb_stats st;
    uint32_t sum = 0, us[SB_PHASES];
    int i;

    if (sb == NULL) {
        ok(0, "sb_create: %s", strerror(errno));
        return;
    }
    slot = sb_slot(sb, 0);
    sb_slot_reset(slot, SB_IDLE, sb_now_ns());
    sb_request_begin(slot, sb_now_ns() - 3000000, "/queries?queries=20", 19);
    is_int(sb_state(slot), SB_RENDERING, "begun: rendering");
    sleep_ms(2);
    sb_phase(slot, SB_DATABASE);
    sleep_ms(4);
    sb_phase(slot, SB_RENDERING);
    sb_request_phases(slot, us);
    ok(us[SB_PHASE_READING] >= 3000 && us[SB_PHASE_DATABASE] >= 4000 &&
           us[SB_PHASE_WRITING] == 0,
       "so far: read %u us, db %u us, no writing", us[0], us[1]);
    sb_phase(slot, SB_WRITING);
    sleep_ms(1);
    sb_request_end(slot, 404, 1);
    sb_stats(slot, &st);
    for (i = 0; i < SB_PHASES; i++)
        sum += st.last_us[i];
    ok(st.last_total_us >= 10000, "the total: at least 3+2+4+1 ms (%u us)",
       st.last_total_us);
    ok(sum <= st.last_total_us && sum + SB_PHASES >= st.last_total_us,
       "the phases add up to it, to a microsecond each (%u of %u us)", sum,
       st.last_total_us);
    ok(st.last_us[SB_PHASE_RENDERING] >= 2000 &&
           st.last_us[SB_PHASE_WRITING] >= 1000,
       "rendering %u us, writing %u us", st.last_us[SB_PHASE_RENDERING],
       st.last_us[SB_PHASE_WRITING]);
    ok(st.requests == 1 && st.status[3] == 1 && st.slow == 1 &&
           st.phase_ns[SB_PHASE_DATABASE] >= 4000000,
       "counted: one request, one 4xx, one slow, the database time summed");
    is_str(st.route, "/queries?queries=20", "the route");
    is_int(st.state, SB_IDLE, "idle again");
    sb_free(sb);
}

/*
 * test_adopt: the scoreboard a supervisor hands its next image across
 * exec() (SIGUSR2) is mapped again from its fd: the same memory, so the
 * workers writing it are seen; one of another kind or size is refused.
 */
static void
test_adopt(void)
{
    struct scoreboard *sb = sb_create(4), *again;
    int fd, null;

    if (sb == NULL || (fd = dup(sb_fd(sb))) == -1) {
        ok(0, "set-up: %s", strerror(errno));
        return;
    }
    sb_slot_reset(sb_slot(sb, 2), SB_IDLE, sb_now_ns());
    sb_set_pid(sb_slot(sb, 2), 4242);
    again = sb_adopt(fd, 4);
    ok(again != NULL,
       "sb_adopt: the fd of a scoreboard of 4 slots is mapped again%s%s",
       again == NULL ? ": " : "", again == NULL ? strerror(errno) : "");
    if (again == NULL)
        return;
    is_int(sb_pid(sb_slot(again, 2)), 4242, "it reads what was written");
    is_int(sb_state(sb_slot(again, 2)), SB_IDLE, "slot 2's state too");
    sb_set_pid(sb_slot(again, 1), 77);
    is_int(sb_pid(sb_slot(sb, 1)), 77, "the same memory, both ways");
    is_int(sb_fd(again), fd, "it owns the fd it was given");
    sb_free(again);
    ok(fcntl(fd, F_GETFD) == -1 && errno == EBADF,
       "sb_free closes the adopted fd");

    errno = 0;
    ok(sb_adopt(sb_fd(sb), 3) == NULL && errno == EINVAL,
       "another number of slots than expected: EINVAL");
    ok(fcntl(sb_fd(sb), F_GETFD) != -1, "and the fd is left open");
    sb->hdr->magic = 0x12345678;
    ok(sb_adopt(sb_fd(sb), 4) == NULL, "another build's magic: refused");
    sb->hdr->magic = SB_MAGIC;
    null = open("/dev/null", O_RDONLY);
    ok(sb_adopt(null, 4) == NULL, "no header (/dev/null): refused");
    close(null);
    ok(sb_adopt(999, 4) == NULL, "a closed fd: refused");
    ok(sb_adopt(sb_fd(sb), 0) == NULL, "no slots: refused");
    sb_free(sb);
}

/* one_request: a request of about ms milliseconds, labelled label (NULL:
 * none), answered status. */
static void
one_request(struct sb_slot *slot, const char *label, int ms, int status)
{
    sb_request_begin(slot, sb_now_ns() - (int64_t)ms * 1000000, "/x", 2);
    if (label != NULL)
        sb_request_label(slot, label, strlen(label));
    sb_request_end(slot, status, 0);
}

static uint64_t
hist_count(const struct sb_hist *h)
{
    uint64_t n = 0;
    int i;

    for (i = 0; i < SB_BUCKETS; i++)
        n += h->bucket[i];
    return n;
}

static void
test_totals(void)
{
    struct scoreboard *sb = sb_create(2);
    struct sb_slot *slot;
    struct sb_totals t;
    struct sb_stats st;
    int i;

    if (sb == NULL) {
        ok(0, "sb_create: %s", strerror(errno));
        return;
    }
    slot = sb_slot(sb, 1);
    sb_slot_reset(slot, SB_IDLE, sb_now_ns());
    for (i = 0; i < 3; i++)
        one_request(slot, "/db", 1, 200);
    one_request(slot, "/db", 1, 503);
    sb_accepted(slot);
    sb_reconnected(slot);
    sb_totals(slot, &t);
    ok(t.requests == 4 && t.status[1] == 3 && t.status[4] == 1 &&
           t.accepted == 1 && t.reconnects == 1 &&
           t.phase_ns[SB_PHASE_READING] >= 4000000,
       "the totals of a slot's first worker: its own counts");
    sb_slot_reset(slot, SB_STARTING, sb_now_ns());
    sb_stats(slot, &st);
    ok(st.requests == 0 && st.status[1] == 0 && st.accepted == 0,
       "a new worker in the slot starts from nothing");
    sb_totals(slot, &t);
    ok(t.requests == 4 && t.status[1] == 3 && t.status[4] == 1 &&
           t.accepted == 1 && t.reconnects == 1,
       "and the slot's totals keep the old one's counts");
    one_request(slot, "/db", 1, 200);
    sb_slot_reset(slot, SB_EMPTY, 0);
    sb_slot_reset(slot, SB_STARTING, sb_now_ns());
    sb_totals(slot, &t);
    ok(t.requests == 5 && t.status[1] == 4,
       "a second worker's counts are added, once, however often the slot "
       "is reset");
    is_int(atomic_load(&slot->ret_seq) % 2, 0, "the totals are whole");
    sb_totals(sb_slot(sb, 0), &t);
    is_int(t.requests, 0, "the other slot's totals: none");
    sb_free(sb);
}

static void
test_hist(void)
{
    struct scoreboard *sb = sb_create(1);
    struct sb_slot *slot;
    struct sb_hist h;
    char name[SB_LABEL_MAX], want[32];
    int i, used = 0, bad = 0;

    if (sb == NULL) {
        ok(0, "sb_create: %s", strerror(errno));
        return;
    }
    slot = sb_slot(sb, 0);
    sb_slot_reset(slot, SB_IDLE, sb_now_ns());
    for (i = 0; i < SB_BUCKETS - 2; i++)
        if (sb_bucket_us[i] >= sb_bucket_us[i + 1])
            bad++;
    ok(!bad && sb_bucket_us[0] == 50 &&
           sb_bucket_us[SB_BUCKETS - 2] == 10000000,
       "the buckets: 50 us to 10 s, increasing");
    ok(strcmp(sb_bucket_le[SB_BUCKETS - 1], "+Inf") == 0 &&
           strtod(sb_bucket_le[0], NULL) * 1e6 == 50 &&
           strtod(sb_bucket_le[13], NULL) == 1,
       "their le labels, in seconds, +Inf last");
    ok(!sb_route_hist(slot, 0, name, &h), "no request: no route histogram");
    one_request(slot, "/db", 2, 200);
    one_request(slot, "/db", 30, 200);
    one_request(slot, "/json", 0, 200);
    one_request(slot, NULL, 0, 404);
    ok(sb_route_hist(slot, 0, name, &h) && strcmp(name, "/db") == 0 &&
           hist_count(&h) == 2 && h.bucket[5] == 1 && h.bucket[9] == 1 &&
           h.sum_us >= 32000,
       "/db: 2 ms in (1, 2.5] ms, 30 ms in (25, 50] ms, the sum %llu us",
       (unsigned long long)h.sum_us);
    ok(sb_route_hist(slot, 1, name, &h) && strcmp(name, "/json") == 0 &&
           hist_count(&h) == 1,
       "/json: a histogram of its own");
    ok(sb_route_hist(slot, SB_ROUTES - 1, name, &h) &&
           strcmp(name, "other") == 0 && hist_count(&h) == 1,
       "a request without a label: \"other\"");
    sb_phase_hist(slot, SB_PHASE_READING, &h);
    ok(hist_count(&h) == 4 && h.bucket[9] == 1,
       "each phase has one: 4 reads, the 30 ms one in (25, 50] ms");
    one_request(slot, "/route-with-a-long-name", 0, 200);
    for (i = 0; i < 19; i++) {
        snprintf(want, sizeof(want), "/r%d", i);
        one_request(slot, want, 0, 200);
    }
    for (i = 0; i < SB_ROUTES; i++)
        used += sb_route_hist(slot, i, name, &h);
    sb_route_hist(slot, SB_ROUTES - 1, name, &h);
    ok(used == SB_ROUTES && hist_count(&h) == 1 + 20 - (SB_ROUTES - 3),
       "20 more names: %d take the rows left, the rest count as other",
       SB_ROUTES - 3);
    sb_route_hist(slot, 2, name, &h);
    is_str(name, "/route-with-a-l", "a name is cut to 15 bytes");
    sb_slot_reset(slot, SB_STARTING, sb_now_ns());
    ok(sb_route_hist(slot, 0, name, &h) && hist_count(&h) == 2,
       "the histograms outlive the slot's worker");
    sb_timing(0);
    one_request(slot, "/db", 0, 200);
    sb_timing(1);
    sb_route_hist(slot, 0, name, &h);
    is_int(hist_count(&h), 2, "--timing off: nothing observed");
    sb_free(sb);
}

static void
test_db(void)
{
    static const char why[] = "connection to server failed: FATAL:\tdatabase "
                              "\"nosuchdb\" does not exist\nDETAIL: x\n";
    struct scoreboard *sb = sb_create(1);
    struct sb_db_view v;
    struct sb_slot *slot;
    char big[600];
    time_t t0 = time(NULL);

    if (sb == NULL) {
        ok(0, "sb_create: %s", strerror(errno));
        return;
    }
    slot = sb_slot(sb, 0);
    sb_slot_reset(slot, SB_STARTING, sb_now_ns());
    sb_db(slot, &v);
    ok(v.state == SB_DB_NONE && v.attempts == 0 && v.error[0] == '\0',
       "a new worker: database not reported");
    sb_db_attempt(slot);
    sb_db_down(slot, why, sizeof(why) - 1);
    sb_db_attempt(slot);
    sb_db_down(slot, why, sizeof(why) - 1);
    sb_db(slot, &v);
    ok(v.state == SB_DB_DOWN && v.attempts == 2 && v.since_unix >= t0 &&
           v.since_unix <= time(NULL),
       "two attempts failed: down, since then");
    is_str(v.error,
           "connection to server failed: FATAL: database \"nosuchdb\" does "
           "not exist DETAIL: x",
           "the error in one line: tabs and newlines made spaces");
    sb_db_attempt(slot);
    sb_db_up(slot);
    sb_db(slot, &v);
    ok(v.state == SB_DB_UP && v.attempts == 3 &&
           strstr(v.error, "nosuchdb") != NULL,
       "connected: up, the last error kept");
    memset(big, 'e', sizeof(big));
    sb_db_down(slot, big, sizeof(big));
    sb_db(slot, &v);
    is_int(strlen(v.error), SB_DB_ERROR_MAX - 1, "a long error is cut");
    atomic_store(&slot->db_state, 77);
    sb_db(slot, &v);
    is_int(v.state, SB_DB_NONE, "a state out of range reads as none");
    sb_slot_reset(slot, SB_STARTING, sb_now_ns());
    sb_db(slot, &v);
    ok(v.state == SB_DB_NONE && v.attempts == 0 && v.error[0] == '\0',
       "reset: the next worker reports afresh");
    sb_db_up(NULL);
    sb_db_down(NULL, "x", 1);
    sb_db_attempt(NULL);
    sb_request_label(NULL, "x", 1);
    sb_free(sb);
}

int
main(void)
{
    test_create();
    test_slot();
    test_attach();
    test_phases();
    test_adopt();
    test_totals();
    test_hist();
    test_db();
    return done_testing();
}
