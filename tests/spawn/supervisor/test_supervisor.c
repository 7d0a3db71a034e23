/*
 * test_supervisor.c: the master loop (spawn/supervisor/supervisor.c), run for
 * real.
 *
 * Each case forks a child that calls supervisor_run() on a listening unix
 * socket made here, with small shell workers, and watches it from outside
 * the way an operator would: its children through /proc, signals, and its
 * exit status.  The supervisor's log goes to a file, shown when a check
 * fails.  Each case is bounded: waits poll with a deadline, an alarm()
 * guards the whole program, and the supervisor dies with this process
 * (PR_SET_PDEATHSIG), its workers with it.
 */
#include "../../../spawn/supervisor/supervisor.c"

#include <dirent.h>

#include "harness.h"

#define MAXPIDS 64

static char dir[] = "/tmp/test_supervisor.XXXXXX";
static char logpath[256];
static int listen_fd = -1;
static int status_fd = -1; /* the status page's socket, when a case wants */

/* wait_children: until ppid has n live children; 1, or 0 at the deadline. */
static int
wait_children(pid_t ppid, int n, long timeout_ms)
{
    int64_t end = clock_ms() + timeout_ms;

    while (proc_children(ppid, NULL, MAXPIDS) != n) {
        if (clock_ms() > end)
            return 0;
        sleep_ms(10);
    }
    return 1;
}

/* show_log: the supervisor's log, as TAP comments. */
static void
show_log(void)
{
    char line[1024];
    FILE *fp = fopen(logpath, "r");

    while (fp != NULL && fgets(line, sizeof(line), fp) != NULL)
        printf("#   log: %s", line);
    if (fp != NULL)
        fclose(fp);
}

/* in_log: how many lines of the supervisor's log hold text. */
static int
in_log(const char *text)
{
    char line[1024];
    FILE *fp = fopen(logpath, "r");
    int n = 0;

    while (fp != NULL && fgets(line, sizeof(line), fp) != NULL)
        n += strstr(line, text) != NULL;
    if (fp != NULL)
        fclose(fp);
    return n;
}

/* check: ok(), with the supervisor's log when it fails. */
#define check(cond, ...)                                                       \
    do {                                                                       \
        if (!ok(cond, __VA_ARGS__))                                            \
            show_log();                                                        \
    } while (0)

/* config_for: a pool of workers, short deadlines, no request limit. */
static void
config_for(struct config *cfg, int workers)
{
    *cfg = (struct config){.workers = workers,
                           .max_workers = 8,
                           .socket_mode = 0600,
                           .log_level = LOG_INFO,
                           .graceful_ms = 2000,
                           .request_timeout_ms = 0,
                           .start_timeout_ms = 200};
}

/*
 * start_argv: fork a supervisor of cfg->workers copies of path argv,
 * logging to logpath.  The child exits with supervisor_run's status.
 */
static pid_t
start_argv(const struct config *cfg, const char *path, char *const argv[])
{
    pid_t pid;

    unlink(logpath);
    fflush(stdout);
    if ((pid = fork()) == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        log_init("tfb-spawn", cfg->log_level);
        if (log_open_file(logpath) == -1)
            _exit(100);
        exit(supervisor_run(cfg, listen_fd, path, argv, NULL, status_fd));
    }
    return pid;
}

/* start: start_argv() with `sh -c script` for the workers. */
static pid_t
start(const struct config *cfg, const char *script)
{
    static char sh[] = "/bin/sh", c[] = "-c", body[512];
    char *argv[] = {sh, c, body, NULL};

    snprintf(body, sizeof(body), "%s", script);
    return start_argv(cfg, sh, argv);
}

/* gone: none of pids[0..n) exists any more. */
static int
gone(const pid_t *pids, int n)
{
    int i;

    for (i = 0; i < n; i++)
        if (kill(pids[i], 0) == 0 || errno != ESRCH)
            return 0;
    return 1;
}

static void
test_start_and_stop(void)
{
    struct config cfg;
    pid_t sv, pids[MAXPIDS], after[MAXPIDS];
    int n, i, replaced = 0;
    int64_t end;

    config_for(&cfg, 3);
    sv = start(&cfg, "exec sleep 30");
    check(wait_children(sv, 3, 3000), "it starts 3 workers");
    sleep_ms(300);
    n = proc_children(sv, pids, MAXPIDS);
    is_int(n, 3, "and no more");

    /* A worker killed: replaced, by a new process. */
    kill(pids[0], SIGKILL);
    for (end = clock_ms() + 3000; clock_ms() < end; sleep_ms(10)) {
        replaced = proc_children(sv, after, MAXPIDS) == 3;
        for (i = 0; i < 3; i++)
            if (after[i] == pids[0])
                replaced = 0;
        if (replaced)
            break;
    }
    check(replaced, "a killed worker is replaced by a new process");
    n = proc_children(sv, pids, MAXPIDS);

    kill(sv, SIGTERM);
    check(wait_exit(sv, 3000) == 0, "SIGTERM: it returns 0");
    ok(n == 3 && gone(pids, n), "and no worker is left");
}

static void
test_ttin(void)
{
    struct config cfg;
    pid_t sv, pids[MAXPIDS];
    int n;

    config_for(&cfg, 2);
    sv = start(&cfg, "exec sleep 30");
    check(wait_children(sv, 2, 3000), "2 workers");
    kill(sv, SIGTTIN);
    check(wait_children(sv, 3, 3000), "SIGTTIN: 3 workers");
    kill(sv, SIGTTOU);
    check(wait_children(sv, 2, 3000), "SIGTTOU: 2 again");
    n = proc_children(sv, pids, MAXPIDS);
    kill(sv, SIGTERM);
    check(wait_exit(sv, 3000) == 0, "SIGTERM: it returns 0");
    ok(gone(pids, n), "and no worker is left");
}

/*
 * test_ignored: the signals sigtab.h has the supervisor note are logged
 * and change nothing; SIGUSR2 without supervisor_image() is refused with
 * a line; the workers are the same processes after all of them.
 */
static void
test_ignored(void)
{
    static const int sigs[] = {SIGWINCH,  SIGTSTP, SIGPWR, SIGURG,   SIGXCPU,
                               SIGVTALRM, SIGPROF, SIGIO,  SIGSTKFLT};
    struct config cfg;
    pid_t sv, before[MAXPIDS], after[MAXPIDS];
    size_t i;
    int n, m;

    config_for(&cfg, 2);
    sv = start(&cfg, "exec sleep 30");
    check(wait_children(sv, 2, 3000), "2 workers");
    n = proc_children(sv, before, MAXPIDS);
    for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        kill(sv, sigs[i]);
        sleep_ms(20);
    }
    kill(sv, SIGRTMIN + 2);
    sleep_ms(20);
    kill(sv, SIGUSR2);
    sleep_ms(300);
    m = proc_children(sv, after, MAXPIDS);
    check(m == n && memcmp(before, after, (size_t)n * sizeof(pid_t)) == 0,
          "WINCH, TSTP, PWR, URG, XCPU, VTALRM, PROF, IO, STKFLT, RTMIN+2 "
          "and USR2 leave the pool as it was");
    check(in_log("SIGWINCH ignored: gunicorn") == 1 &&
              in_log("SIGTSTP ignored") == 1 && in_log("SIGPWR ignored") == 1 &&
              in_log("SIGRTMIN+2 ignored") == 1 &&
              in_log("SIGSTKFLT ignored") == 1,
          "each is logged once, saying why");
    check(in_log("SIGUSR2: this supervisor was not told its own program") == 1,
          "SIGUSR2 with nothing to re-execute: refused with a line");
    kill(sv, SIGTERM);
    check(wait_exit(sv, 3000) == 0, "SIGTERM: it returns 0");
}

static void
test_fatal(void)
{
    struct config cfg;
    pid_t sv;

    config_for(&cfg, 2);
    sv = start(&cfg, "exit 2");
    check(wait_exit(sv, 3000) == EXITCODE_CONFIG,
          "workers that exit 2: the supervisor returns 2");
    check(in_log("a fatal configuration error: not restarting it") == 2,
          "each of the two was started once, not restarted");
    check(in_log("every worker exited with status 2") == 1,
          "and the supervisor said why it gave up");
}

/*
 * test_fatal_status: the same with a status page, whose process the
 * supervisor stops too when it gives up, instead of waiting for it.
 */
static void
test_fatal_status(void)
{
    struct config cfg;
    char path[300];
    pid_t sv;

    snprintf(path, sizeof(path), "%s/status.sock", dir);
    if ((status_fd = listen_unix(path)) == -1) {
        ok(0, "set-up: the status socket: %s", strerror(errno));
        return;
    }
    config_for(&cfg, 2);
    sv = start(&cfg, "exit 2");
    check(wait_exit(sv, 3000) == EXITCODE_CONFIG,
          "with a status page too, workers that exit 2: the supervisor "
          "returns 2");
    close(status_fd);
    status_fd = -1;
    snprintf(path, sizeof(path), "%s/status.sock", dir);
    unlink(path);
}

/*
 * test_crash_loop: a worker that dies at once is started again after
 * 250 ms, then 500 ms...: a few starts in a second, not thousands.  Each
 * start writes the time (in the 10 ms of /proc/uptime) to a file.
 */
static void
test_crash_loop(void)
{
    char script[512], path[256], line[64];
    double t[16];
    struct config cfg;
    FILE *fp;
    pid_t sv;
    int n = 0;

    snprintf(path, sizeof(path), "%s/starts", dir);
    unlink(path);
    snprintf(script, sizeof(script),
             "read up rest </proc/uptime; echo $up >>%s; exit 1", path);
    config_for(&cfg, 1);
    sv = start(&cfg, script);
    sleep_ms(1200);
    kill(sv, SIGTERM);
    check(wait_exit(sv, 3000) == 0, "a crash-looping pool stops with 0");

    if ((fp = fopen(path, "r")) != NULL) {
        while (n < 16 && fgets(line, sizeof(line), fp) != NULL)
            t[n++] = atof(line);
        fclose(fp);
    }
    /* Started at 0, 0.25 and 0.75 s. */
    check(n >= 2 && n <= 4, "started %d times in 1.2 s", n);
    check(n >= 2 && t[1] - t[0] >= 0.24,
          "the second start waited 250 ms (%.2f s)", n >= 2 ? t[1] - t[0] : 0);
    if (n >= 3)
        check(t[2] - t[1] >= 0.49, "the third 500 ms (%.2f s)", t[2] - t[1]);
}

/*
 * report_as_worker: what this program does when the supervisor of
 * test_worker_env runs it as a worker: it attaches to its slot as any
 * responder does and writes one line to DIR/report.PID, "pid slot
 * max-requests limit-ms PGOPTIONS TFB_MAX_REQUESTS" (a variable unset
 * reads "-"), then waits to be stopped.
 */
static int
report_as_worker(const char *where)
{
    const char *pgo = getenv("PGOPTIONS"), *tmr = getenv("TFB_MAX_REQUESTS");
    const char *slot = getenv(SB_ENV_SLOT);
    struct sb_slot *s = sb_attach_env();
    char path[300];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/report.%ld", where, (long)getpid());
    if (!sb_shared() || (fp = fopen(path, "w")) == NULL)
        return 1;
    fprintf(fp, "%ld %s %llu %lld [%s] [%s]\n", (long)getpid(), slot,
            (unsigned long long)sb_max_requests(s),
            (long long)sb_request_limit_ms(), pgo ? pgo : "-", tmr ? tmr : "-");
    if (fclose(fp) != 0)
        return 1;
    for (;;)
        pause();
}

/*
 * test_worker_env: the supervisor knows no application.  Its workers get
 * its environment as it is (a PGOPTIONS of the user's unchanged, no
 * TFB_MAX_REQUESTS), and what they need from the pool in the scoreboard:
 * the request time limit in the header, each one's own max-requests (the
 * jittered one the supervisor logged for it) in its slot.
 */
static void
test_worker_env(void)
{
    static char self[PATH_MAX], arg[] = "report", where[sizeof(dir)];
    char *argv[] = {self, arg, where, NULL};
    char path[300], line[512], want[128], pgo[256], tmr[64];
    long pid, slot, limit;
    unsigned long long max;
    struct dirent *e;
    struct config cfg;
    int n = 0, good = 0, logged = 0, g, l;
    ssize_t len;
    DIR *d;
    FILE *fp;
    pid_t sv;

    if ((len = readlink("/proc/self/exe", self, sizeof(self) - 1)) == -1) {
        ok(0, "set-up: /proc/self/exe: %s", strerror(errno));
        return;
    }
    self[len] = '\0';
    snprintf(where, sizeof(where), "%s", dir);
    setenv("PGOPTIONS", "-c work_mem=64kB", 1);
    unsetenv("TFB_MAX_REQUESTS");
    config_for(&cfg, 3);
    cfg.request_timeout_ms = 2000;
    cfg.max_requests = 300;
    cfg.max_requests_jitter = 100;
    sv = start_argv(&cfg, self, argv);
    check(wait_children(sv, 3, 3000), "3 workers of this program");
    sleep_ms(300);
    kill(sv, SIGTERM);
    check(wait_exit(sv, 3000) == 0, "SIGTERM: the supervisor returns 0");
    unsetenv("PGOPTIONS");

    for (d = opendir(dir); d != NULL && (e = readdir(d)) != NULL;) {
        if (strncmp(e->d_name, "report.", 7) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        g = l = 0;
        line[0] = '\0';
        if ((fp = fopen(path, "r")) != NULL &&
            fgets(line, sizeof(line), fp) != NULL &&
            sscanf(line, "%ld %ld %llu %ld [%255[^]]] [%63[^]]]", &pid, &slot,
                   &max, &limit, pgo, tmr) == 6) {
            n++;
            g = limit == 2000 && max >= 300 && max <= 400 &&
                strcmp(pgo, "-c work_mem=64kB") == 0 && strcmp(tmr, "-") == 0;
            snprintf(want, sizeof(want),
                     "worker %ld started (slot %ld, max-requests %llu)", pid,
                     slot, max);
            l = in_log(want) == 1;
        }
        good += g;
        logged += l;
        if (!g || !l)
            printf("#   %s: %s\n", e->d_name, line);
        if (fp != NULL)
            fclose(fp);
        unlink(path);
    }
    if (d != NULL)
        closedir(d);
    is_int(n, 3, "each worker reports");
    check(good == 3, "each read the limit (2000 ms) and a max-requests in "
                     "[300, 400] in the scoreboard; its environment holds the "
                     "user's PGOPTIONS unchanged and no TFB_MAX_REQUESTS");
    check(logged == 3, "each read the max-requests the supervisor drew for "
                       "it, and logged");
}

int
main(int argc, char **argv)
{
    char path[256];

    if (argc == 3 && strcmp(argv[1], "report") == 0)
        return report_as_worker(argv[2]);

    /* A case that hangs fails the program instead of the whole run. */
    alarm(30);
    if (mkdtemp(dir) == NULL ||
        snprintf(path, sizeof(path), "%s/fcgi.sock", dir) < 0 ||
        (listen_fd = listen_unix(path)) == -1) {
        ok(0, "set-up: %s", strerror(errno));
        return done_testing();
    }
    snprintf(logpath, sizeof(logpath), "%s/spawn.log", dir);
    test_start_and_stop();
    test_ttin();
    test_ignored();
    test_fatal();
    test_fatal_status();
    test_crash_loop();
    test_worker_env();
    close(listen_fd);
    unlink(path);
    unlink(logpath);
    snprintf(path, sizeof(path), "%s/starts", dir);
    unlink(path);
    rmdir(dir);
    return done_testing();
}
