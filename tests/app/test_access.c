/*
 * test_access.c: the access log (app/access.c): the line and its escapes,
 * the buffer and when it is written, a file that takes nothing (a pipe
 * nobody reads, a full disk: /dev/full), the reopen after a rotation, and
 * standard output.
 */
#include "../../app/access.c"

#include <fcntl.h>
#include <sys/stat.h>

#include "harness.h"

static char dir[] = "/tmp/test_access.XXXXXX";

/* slurp: the file at path, NUL-terminated, into out (cap bytes). */
static size_t
slurp(const char *path, char *out, size_t cap)
{
    int fd = open(path, O_RDONLY);
    ssize_t n = fd == -1 ? -1 : read(fd, out, cap - 1);

    if (fd != -1)
        close(fd);
    out[n > 0 ? n : 0] = '\0';
    return n > 0 ? (size_t)n : 0;
}

static size_t
lines(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

static void
entry(struct access_entry *e, const char *path, const char *query)
{
    *e = (struct access_entry){"GET", path, strlen(path),    query,
                               200,   31,   {12, 345, 20, 8}};
}

static void
test_line(void)
{
    char path[64], got[8192], err[256], stamp[40];
    struct access_log *log;
    struct access_entry e;
    struct tm tm;
    time_t now = time(NULL);

    snprintf(path, sizeof(path), "%s/a.log", dir);
    if ((log = access_open(path, err, sizeof(err))) == NULL) {
        ok(0, "access_open: %s", err);
        return;
    }
    entry(&e, "/queries", "queries=20");
    access_line(log, &e);
    ok(access_due_ms(log) > 900 && access_due_ms(log) <= ACCESS_FLUSH_MS,
       "a line buffered: due within a second (%lld ms)",
       (long long)access_due_ms(log));
    is_int(slurp(path, got, sizeof(got)), 0, "  and not written yet");
    access_tick(log);
    is_int(slurp(path, got, sizeof(got)), 0,
           "  nor by a tick before it is due");
    e = (struct access_entry){NULL, "/a\"b\\c\n\td\x85", 10, "x=\"\x01", 404,
                              0,    {0, 0, 1, 2}};
    access_line(log, &e);
    access_close(log);
    slurp(path, got, sizeof(got));
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "[%d/%b/%Y:%H:", &tm);
    ok(strncmp(got, "- - - ", 6) == 0 && strstr(got, stamp) == got + 6,
       "the Common Log Format's first fields and time");
    like(got,
         " +0000] \"GET /queries?queries=20\" 200 31 read_us=12 db_us=345 "
         "app_us=20 write_us=8 total_us=385\n",
         "method, path and query, status, bytes, the phases and their total");
    like(got,
         "\"- /a\\\"b\\\\c\\x0a\\x09d\\x85?x=\\\"\\x01\" 404 0 read_us=0 "
         "db_us=0 "
         "app_us=1 write_us=2 total_us=3\n",
         "what a client chose is escaped; no method: -");
    is_int(lines(got), 2, "access_close wrote both lines, one each");
}

static void
test_long(void)
{
    static char big[5000];
    char path[64], err[256];
    static char got[20000];
    struct access_log *log;
    struct access_entry e;
    size_t n;

    snprintf(path, sizeof(path), "%s/long.log", dir);
    memset(big, '\x7f', sizeof(big) - 1);
    big[0] = '/';
    if ((log = access_open(path, err, sizeof(err))) == NULL) {
        ok(0, "access_open: %s", err);
        return;
    }
    entry(&e, big, "q=1");
    access_line(log, &e);
    access_close(log);
    n = slurp(path, got, sizeof(got));
    ok(n > 8000 && n < LINE_MAX_LEN && lines(got) == 1 &&
           strstr(got, "\\x7f...\" 200 31 ") != NULL,
       "a 5000-byte path: cut at %d bytes, each escaped, with \"...\" (%zu)",
       REQUEST_SHOWN, n);
}

static void
test_full(void)
{
    char path[64], got[256], err[256];
    struct access_log *log;
    struct access_entry e;
    int64_t t;
    int i, p[2];

    if ((log = access_open("/dev/full", err, sizeof(err))) == NULL) {
        ok(0, "access_open /dev/full: %s", err);
        return;
    }
    entry(&e, "/db", NULL);
    for (i = 0; i < 3; i++)
        access_line(log, &e);
    log->oldest_ns -= 2000000000LL; /* two seconds ago */
    is_int(access_due_ms(log), 0, "two seconds later: due now");
    access_tick(log);
    ok(access_dropped(log) == 3 && log->len == 0,
       "a full disk (ENOSPC): the 3 lines dropped and counted, the buffer "
       "empty again");
    access_line(log, &e);
    t = clock_ms();
    access_close(log);
    t = clock_ms() - t;
    ok(t < 1000,
       "closing on a full disk returns at once (%ld ms), the write "
       "not retried",
       (long)t);

    snprintf(path, sizeof(path), "%s/fifo", dir);
    if (mkfifo(path, 0600) == -1 ||
        (p[0] = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) == -1) {
        ok(0, "a FIFO: %s", strerror(errno));
        return;
    }
    if ((log = access_open(path, err, sizeof(err))) == NULL) {
        ok(0, "access_open %s: %s", path, err);
        return;
    }
    ok(fcntl(log->fd, F_GETFL) & O_NONBLOCK, "opened non-blocking");
    for (i = 0; i < 5000; i++)
        access_line(log, &e);
    ok(access_dropped(log) > 0 && log->len > 0,
       "a FIFO nobody reads: the worker goes on, %llu of 5000 lines dropped, "
       "%zu bytes still buffered",
       (unsigned long long)access_dropped(log), log->len);
    while (read(p[0], got, sizeof(got)) == (ssize_t)sizeof(got))
        continue;
    access_close(log);
    close(p[0]);
    ok(access_open("/nonexistent/dir/x.log", err, sizeof(err)) == NULL,
       "a path that cannot be opened: NULL");
    is_str(err,
           "--access-log /nonexistent/dir/x.log: No such file or directory",
           "  with a message naming the option and the path");
}

static void
test_reopen(void)
{
    char path[64], moved[80], got[4096], err[256];
    struct access_log *log;
    struct access_entry e;

    snprintf(path, sizeof(path), "%s/r.log", dir);
    snprintf(moved, sizeof(moved), "%s/r.log.1", dir);
    if ((log = access_open(path, err, sizeof(err))) == NULL) {
        ok(0, "access_open: %s", err);
        return;
    }
    entry(&e, "/before", NULL);
    access_line(log, &e);
    rename(path, moved);
    is_int(access_reopen(log), 0, "access_reopen after a rotation");
    entry(&e, "/after", NULL);
    access_line(log, &e);
    access_close(log);
    slurp(moved, got, sizeof(got));
    ok(lines(got) == 1 && strstr(got, "/before") != NULL,
       "the old file got the lines before the reopen");
    slurp(path, got, sizeof(got));
    ok(lines(got) == 1 && strstr(got, "/after") != NULL,
       "a new file the lines after");
    access_close(NULL);
    access_line(NULL, &e);
    is_int(access_due_ms(NULL), -1, "no log: nothing due");
}

static void
test_stdout(void)
{
    char got[4096], err[256];
    struct access_log *log;
    struct access_entry e;
    int p[2], saved = dup(STDOUT_FILENO);

    if (pipe(p) == -1 || saved == -1) {
        ok(0, "pipe: %s", strerror(errno));
        return;
    }
    fflush(stdout);
    dup2(p[1], STDOUT_FILENO);
    close(p[1]);
    log = access_open("-", err, sizeof(err));
    dup2(saved, STDOUT_FILENO);
    close(saved);
    if (log == NULL) {
        ok(0, "access_open -: %s", err);
        return;
    }
    ok((fcntl(STDOUT_FILENO, F_GETFL) & O_NONBLOCK) == 0,
       "-: standard output's own flags untouched");
    entry(&e, "/json", NULL);
    access_line(log, &e);
    is_int(access_reopen(log), 0, "-: nothing to reopen");
    access_close(log);
    read_out(p[0], 1000);
    close(p[0]);
    ok(lines(child_out) == 1 && strstr(child_out, "\"GET /json\" 200") != NULL,
       "-: the line on standard output");
    (void)got;
}

int
main(void)
{
    char path[64];

    if (mkdtemp(dir) == NULL) {
        ok(0, "mkdtemp: %s", strerror(errno));
        return done_testing();
    }
    log_init("test_access", LOG_ERR);
    test_line();
    test_long();
    test_full();
    test_reopen();
    test_stdout();
    snprintf(path, sizeof(path), "rm -rf %s", dir);
    if (system(path) != 0)
        printf("# could not remove %s\n", dir);
    return done_testing();
}
