/*
 * test_log.c: the logger both programs share (spawn/core/log.c): the line, the
 * levels, truncation, one write per line, repeats counted, the log file.
 *
 * The log goes to fd 2, so each case points fd 2 somewhere it can read
 * and puts the real stderr back after.  That somewhere is a SOCK_SEQPACKET
 * socket pair rather than a plain pipe: it keeps the boundaries of each
 * write(2), one read returning one write, which is how "one write per
 * line" is seen from outside.
 */
#include "../../../spawn/core/log.c"

#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "harness.h"

static int saved_stderr = -1;

/* to_pipe: fd 2 onto a new packet channel; returns its reading end. */
static int
to_pipe(void)
{
    int p[2];

    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, p) == -1)
        return -1;
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    dup2(p[1], STDERR_FILENO);
    close(p[1]);
    return p[0];
}

static void
restore_stderr(void)
{
    dup2(saved_stderr, STDERR_FILENO);
}

/* packet: the next write(2) to fd 2, NUL-terminated; its length or -1. */
static ssize_t
packet(int fd, char *buf, size_t len)
{
    ssize_t n = read(fd, buf, len - 1);

    buf[n > 0 ? n : 0] = '\0';
    return n;
}

static int
ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);

    return n >= t && strcmp(s + n - t, tail) == 0;
}

/*
 * prefix_ok: line starts with "<time>Z name[pid] level: ", the time being
 * one of the seconds around now.
 */
static int
prefix_ok(const char *line, const char *name, const char *level)
{
    char want[256], stamp[32];
    time_t now = time(NULL), t;
    struct tm tm;

    for (t = now - 2; t <= now; t++) {
        gmtime_r(&t, &tm);
        strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
        snprintf(want, sizeof(want), "%s %s[%ld] %s: ", stamp, name,
                 (long)getpid(), level);
        if (strncmp(line, want, strlen(want)) == 0)
            return 1;
    }
    printf("#   line '%s'\n#   want '%s...'\n", line, want);
    return 0;
}

static void
test_line(void)
{
    char buf[4096];
    int fd = to_pipe();
    ssize_t n;

    log_init("test_log", LOG_DEBUG);
    log_info("hello %d %s", 42, "world");
    n = packet(fd, buf, sizeof(buf));
    ok(n > 0 && prefix_ok(buf, "test_log", "info"),
       "time, name[pid] and level");
    ok(n > 0 && ends_with(buf, "] info: hello 42 world\n"),
       "then the message and one newline");
    ok(strchr(buf, '\n') == buf + n - 1, "a single newline, at the end");

    log_debug("d");
    packet(fd, buf, sizeof(buf));
    ok(prefix_ok(buf, "test_log", "debug"), "debug lines say debug");
    log_warn("w");
    packet(fd, buf, sizeof(buf));
    ok(prefix_ok(buf, "test_log", "warn"), "warn lines say warn");
    log_err("e");
    packet(fd, buf, sizeof(buf));
    ok(prefix_ok(buf, "test_log", "error"), "error lines say error");
    log_msg(LOG_INFO, "%s", "");
    n = packet(fd, buf, sizeof(buf));
    ok(n > 0 && ends_with(buf, "] info: \n"),
       "an empty message is still a line");
    log_err("db: %s", "could not connect\nDETAIL:  no route\r\n\n");
    n = packet(fd, buf, sizeof(buf));
    ok(n > 0 &&
           ends_with(buf, "] error: db: could not connect DETAIL:  no "
                          "route\n") &&
           strchr(buf, '\n') == buf + n - 1,
       "a message of several lines (libpq's) is one line");
    is_int(packet(fd, buf, sizeof(buf)), -1, "nothing else was written");

    restore_stderr();
    close(fd);
}

static void
test_levels(void)
{
    char buf[4096];
    int fd = to_pipe();

    log_init("lv", LOG_WARN);
    log_debug("dropped");
    log_info("dropped");
    is_int(packet(fd, buf, sizeof(buf)), -1,
           "below the minimum: debug and info dropped");
    log_warn("kept");
    ok(packet(fd, buf, sizeof(buf)) > 0 && strstr(buf, "kept") != NULL,
       "at the minimum: kept");
    log_err("kept too");
    ok(packet(fd, buf, sizeof(buf)) > 0 && strstr(buf, "kept too") != NULL,
       "above the minimum: kept");

    log_init("lv", LOG_ERR);
    log_warn("dropped");
    is_int(packet(fd, buf, sizeof(buf)), -1, "LOG_ERR drops warnings");

    restore_stderr();
    close(fd);
}

static void
test_long_line(void)
{
    static char msg[3000];
    char buf[4096];
    int fd = to_pipe();
    ssize_t n;

    memset(msg, 'x', sizeof(msg) - 1);
    log_init("long", LOG_INFO);
    log_info("%s", msg);
    n = packet(fd, buf, sizeof(buf));
    ok(n > 900 && n < 1024, "a 3000-byte message is cut to the buffer (%zd)",
       n);
    ok(n > 0 && buf[n - 1] == '\n' && buf[n - 2] == 'x',
       "and still ends in a newline after the message");
    ok(n > 0 && strchr(buf, '\n') == buf + n - 1, "one newline only");
    ok(prefix_ok(buf, "long", "info"), "with its prefix whole");
    is_int(packet(fd, buf, sizeof(buf)), -1, "in one write");

    restore_stderr();
    close(fd);
}

static void
test_one_write(void)
{
    char buf[4096], want[64];
    int fd = to_pipe(), i, whole = 1;
    ssize_t n;

    log_init("w", LOG_INFO);
    for (i = 0; i < 20; i++)
        log_info("line %d of twenty", i);
    /* Each packet is one write(2): it must hold exactly one whole line. */
    for (i = 0; i < 20; i++) {
        n = packet(fd, buf, sizeof(buf));
        snprintf(want, sizeof(want), "] info: line %d of twenty\n", i);
        if (n <= 0 || strstr(buf, want) == NULL ||
            strchr(buf, '\n') != buf + n - 1) {
            whole = 0;
            printf("#   packet %d: '%s'\n", i, buf);
        }
    }
    ok(whole, "twenty lines, twenty writes, each a whole line");
    is_int(packet(fd, buf, sizeof(buf)), -1, "and no other write");

    restore_stderr();
    close(fd);
}

static void
test_file(void)
{
    char dir[] = "/tmp/test_log.XXXXXX", path[128], buf[4096];
    struct stat st, st2;
    mode_t mask;
    FILE *fp;
    size_t n;
    int fd, first_free;

    /* The lowest free descriptor, to see that none is left behind. */
    first_free = open("/dev/null", O_RDONLY);
    close(first_free);
    if (temp_dir(dir) == -1)
        return;
    snprintf(path, sizeof(path), "%s/app.log", dir);
    log_init("file", LOG_INFO);

    /* A new file: created 0640 whatever the umask lets through. */
    mask = umask(022);
    is_int(log_open_file(path), 0, "log_open_file creates the file");
    umask(mask);
    memset(&st, 0, sizeof(st));
    stat(path, &st);
    is_int(st.st_mode & 0777, 0640, "mode 0640");
    ok(fstat(STDERR_FILENO, &st2) == 0 && st.st_ino == st2.st_ino &&
           st.st_dev == st2.st_dev,
       "it is fd 2 now");
    ok(fcntl(STDERR_FILENO, F_GETFL) & O_APPEND, "opened for appending");
    is_int(fcntl(STDERR_FILENO, F_GETFD) & FD_CLOEXEC, 0,
           "fd 2 is inherited across exec");
    restore_stderr();

    /* An existing file: appended to, not truncated. */
    fp = fopen(path, "w");
    fputs("before\n", fp);
    fclose(fp);
    is_int(log_open_file(path), 0, "log_open_file on an existing file");
    log_info("after");
    restore_stderr();
    fp = fopen(path, "r");
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    ok(strncmp(buf, "before\n", 7) == 0 && prefix_ok(buf + 7, "file", "info") &&
           ends_with(buf, "] info: after\n"),
       "the line is appended after what was there");

    /* With fd 2 closed, the file takes its place and stays inheritable. */
    close(STDERR_FILENO);
    is_int(log_open_file(path), 0, "log_open_file with fd 2 closed");
    ok(fstat(STDERR_FILENO, &st2) == 0 && st.st_ino == st2.st_ino,
       "the file is fd 2");
    is_int(fcntl(STDERR_FILENO, F_GETFD) & FD_CLOEXEC, 0,
           "and is inherited across exec");
    restore_stderr();

    /* A path it cannot open: an error, fd 2 untouched. */
    fstat(STDERR_FILENO, &st);
    snprintf(buf, sizeof(buf), "%s/no/such/dir/app.log", dir);
    errno = 0;
    is_int(log_open_file(buf), -1, "a path that cannot be opened");
    is_int(errno, ENOENT, "errno says why");
    ok(fstat(STDERR_FILENO, &st2) == 0 && st.st_ino == st2.st_ino,
       "fd 2 is unchanged");

    /* A log that is a link: never followed, whoever planted it. */
    {
        char victim[600];

        snprintf(victim, sizeof(victim), "%s/victim", dir);
        snprintf(buf, sizeof(buf), "%s/linked.log", dir);
        if (symlink(victim, buf) == 0) {
            is_int(log_open_file(buf), -1,
                   "a log path that is a link: refused");
            ok(access(victim, F_OK) == -1, "and its target is not created");
            unlink(buf);
        } else {
            ok(0, "symlink: %s", strerror(errno));
        }
    }

    /* No descriptor left behind by any of it. */
    fd = open("/dev/null", O_RDONLY);
    ok(fd == 3 || fd == saved_stderr + 1, "no descriptor leaked (next %d)", fd);
    close(fd);

    unlink(path);
    rmdir(dir);
}

static void
test_fatal(void)
{
    char buf[4096];
    int fd = to_pipe(), st = 0;
    pid_t pid;

    log_init("fatal", LOG_ERR);
    fflush(stdout);
    if ((pid = fork()) == 0)
        log_fatal(3, "cannot go on: %s", "reason");
    waitpid(pid, &st, 0);
    restore_stderr();
    ok(WIFEXITED(st) && WEXITSTATUS(st) == 3,
       "log_fatal exits with its status");
    ok(packet(fd, buf, sizeof(buf)) > 0 &&
           strstr(buf, "] error: cannot go on: reason\n") != NULL,
       "after an error line");
    close(fd);
}

static void
test_repeats(void)
{
    char buf[4096];
    int fd = to_pipe(), i;
    ssize_t n;

    log_init("rep", LOG_INFO);
    for (i = 0; i < 30; i++)
        log_warn("db: cannot connect: FATAL:\tdatabase \"%s\" does not exist",
                 "nosuchdb");
    n = packet(fd, buf, sizeof(buf));
    ok(n > 0 && ends_with(buf, "] warn: db: cannot connect: FATAL: database "
                               "\"nosuchdb\" does not exist\n"),
       "a warning 30 times: written once, its tab a space");
    is_int(packet(fd, buf, sizeof(buf)), -1, "  and not 29 times more");
    log_info("db: connected again");
    n = packet(fd, buf, sizeof(buf));
    ok(n > 0 &&
           ends_with(buf, "does not exist (repeated 29 times in the "
                          "last 0 s)\n") &&
           prefix_ok(buf, "rep", "warn"),
       "another line: first the count of the repeats, at the warning's level");
    n = packet(fd, buf, sizeof(buf));
    ok(n > 0 && ends_with(buf, "] info: db: connected again\n"),
       "  then the other line");
    is_int(packet(fd, buf, sizeof(buf)), -1, "  and nothing else");

    log_info("an info line");
    log_info("an info line");
    ok(packet(fd, buf, sizeof(buf)) > 0 && packet(fd, buf, sizeof(buf)) > 0 &&
           packet(fd, buf, sizeof(buf)) == -1,
       "info lines are not counted: written each time");
    log_warn("once");
    log_warn("once");
    log_err("once");
    ok(packet(fd, buf, sizeof(buf)) > 0 && ends_with(buf, "warn: once\n") &&
           packet(fd, buf, sizeof(buf)) > 0 &&
           ends_with(buf, "warn: once (repeated 1 times in the last 0 s)\n") &&
           packet(fd, buf, sizeof(buf)) > 0 && ends_with(buf, "error: once\n"),
       "the same words at another level are another line");
    log_flush();
    is_int(packet(fd, buf, sizeof(buf)), -1, "log_flush: nothing pending");
    log_err("once");
    log_flush();
    ok(packet(fd, buf, sizeof(buf)) > 0 &&
           ends_with(buf, "error: once (repeated 1 times in the last 0 s)\n"),
       "log_flush: the count pending written (as at exit)");

    repeat_s = 0;
    log_warn("due");
    log_warn("due");
    log_warn("due");
    ok(packet(fd, buf, sizeof(buf)) > 0 && ends_with(buf, "warn: due\n") &&
           packet(fd, buf, sizeof(buf)) > 0 &&
           ends_with(buf, "warn: due (repeated 1 times in the last 0 s)\n") &&
           packet(fd, buf, sizeof(buf)) > 0 &&
           ends_with(buf, "warn: due (repeated 1 times in the last 0 s)\n"),
       "past the window each repeat is written, with its count");
    repeat_s = 60;
    log_info("end");
    packet(fd, buf, sizeof(buf));
    is_int(packet(fd, buf, sizeof(buf)), -1, "and nothing more");
    restore_stderr();
    close(fd);
}

static void
test_fatal_flush(void)
{
    char buf[4096];
    int fd = to_pipe(), st = -1;
    pid_t pid;

    fflush(stdout);
    if ((pid = fork()) == 0) {
        log_init("ff", LOG_INFO);
        log_warn("again");
        log_warn("again");
        exit(0);
    }
    waitpid(pid, &st, 0);
    ok(packet(fd, buf, sizeof(buf)) > 0 && ends_with(buf, "warn: again\n") &&
           packet(fd, buf, sizeof(buf)) > 0 &&
           ends_with(buf, "again (repeated 1 times in the last 0 s)\n"),
       "at exit the count pending is written");
    restore_stderr();
    close(fd);
}

int
main(void)
{
    saved_stderr = dup(STDERR_FILENO);
    fcntl(saved_stderr, F_SETFD, FD_CLOEXEC);
    is_str(log_level_names[LOG_DEBUG], "debug", "level names: debug");
    is_str(log_level_names[LOG_ERR], "error", "level names: error");
    ok(log_level_names[LOG_ERR + 1] == NULL, "level names: NULL-terminated");
    test_line();
    test_levels();
    test_long_line();
    test_one_write();
    test_repeats();
    test_fatal_flush();
    test_file();
    test_fatal();
    close(saved_stderr);
    return done_testing();
}
