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

/*
 * children: the live (not zombie) children of ppid, from /proc.
 * Results: how many, their pids in pids[0..MAXPIDS).
 */
static int
children(pid_t ppid, pid_t *pids)
{
    char path[300], buf[512], *p, state;
    DIR *d = opendir("/proc");
    struct dirent *e;
    long parent;
    FILE *fp;
    int n = 0;

    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        if ((fp = fopen(path, "r")) == NULL)
            continue;
        p = fgets(buf, sizeof(buf), fp);
        fclose(fp);
        /* "pid (comm) state ppid ...": comm may hold anything but the
         * last ')'. */
        if (p == NULL || (p = strrchr(buf, ')')) == NULL ||
            sscanf(p + 1, " %c %ld", &state, &parent) != 2)
            continue;
        if (parent == (long)ppid && state != 'Z') {
            if (pids != NULL && n < MAXPIDS)
                pids[n] = (pid_t)atol(e->d_name);
            n++;
        }
    }
    if (d != NULL)
        closedir(d);
    return n;
}

/* wait_children: until ppid has n live children; 1, or 0 at the deadline. */
static int
wait_children(pid_t ppid, int n, long timeout_ms)
{
    int64_t end = clock_ms() + timeout_ms;

    while (children(ppid, NULL) != n) {
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

static void
config_for(struct config *cfg, int workers)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->workers = workers;
    cfg->max_workers = 8;
    cfg->socket_mode = 0600;
    cfg->log_level = LOG_INFO;
    cfg->graceful_ms = 2000;
    cfg->request_timeout_ms = 0;
    cfg->start_timeout_ms = 200;
}

/*
 * start: fork a supervisor of cfg->workers copies of `sh -c script`,
 * logging to logpath.  The child exits with supervisor_run's status.
 */
static pid_t
start(const struct config *cfg, const char *script)
{
    char *argv[4];
    char sh[] = "/bin/sh", c[] = "-c", body[512];
    pid_t pid;

    snprintf(body, sizeof(body), "%s", script);
    argv[0] = sh;
    argv[1] = c;
    argv[2] = body;
    argv[3] = NULL;
    unlink(logpath);
    fflush(stdout);
    if ((pid = fork()) == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        log_init("tfb-spawn", cfg->log_level);
        if (log_open_file(logpath) == -1)
            _exit(100);
        exit(supervisor_run(cfg, listen_fd, "/bin/sh", argv, NULL, -1));
    }
    return pid;
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
    n = children(sv, pids);
    is_int(n, 3, "and no more");

    /* A worker killed: replaced, by a new process. */
    kill(pids[0], SIGKILL);
    for (end = clock_ms() + 3000; clock_ms() < end; sleep_ms(10)) {
        replaced = children(sv, after) == 3;
        for (i = 0; i < 3; i++)
            if (after[i] == pids[0])
                replaced = 0;
        if (replaced)
            break;
    }
    check(replaced, "a killed worker is replaced by a new process");
    n = children(sv, pids);

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
    n = children(sv, pids);
    kill(sv, SIGTERM);
    check(wait_exit(sv, 3000) == 0, "SIGTERM: it returns 0");
    ok(gone(pids, n), "and no worker is left");
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

int
main(void)
{
    char path[256];

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
    test_fatal();
    test_crash_loop();
    close(listen_fd);
    unlink(path);
    unlink(logpath);
    snprintf(path, sizeof(path), "%s/starts", dir);
    unlink(path);
    rmdir(dir);
    return done_testing();
}
