/*
 * harness.h: the unit tests' harness, in the manner of redis' testhelp.h.
 *
 * Each check prints a TAP line, "ok N - name" or "not ok N - name" with
 * where it failed; tests/run counts them over every test program and prints
 * the closing "N passed, N failed, N skipped".  No unit test skips: each
 * needs nothing but its own process.  done_testing() is main's return value;
 * it prints the plan, "1..N", which tests/run holds the program to.
 *
 * Below the checks, what the tests that fork, wait and listen share: time
 * (sleep_ms, clock_ms), children (in_child, wait_exit, proc_children),
 * files (temp_dir, read_text) and sockets on this host (listen_unix,
 * listen_tcp, connect_unix, connect_tcp).  Every wait has a deadline.  A
 * program that uses none of them, or a tool that uses no check (fake_worker.c),
 * is not warned about the rest.
 */
#ifndef HARNESS_H
#define HARNESS_H

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TH_UNUSED __attribute__((unused))

static int th_run TH_UNUSED, th_failed TH_UNUSED;

TH_UNUSED __attribute__((format(printf, 4, 5))) static int
th_ok(int pass, const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    printf("%s %d - ", pass ? "ok" : "not ok", ++th_run);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!pass) {
        th_failed++;
        printf("#   failed at %s:%d\n", file, line);
    }
    return pass;
}

#define ok(cond, ...) th_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#define is_int(got, want, name)                                                \
    do {                                                                       \
        long long g_ = (got), w_ = (want);                                     \
        if (!ok(g_ == w_, "%s", name))                                         \
            printf("#   got %lld, want %lld\n", g_, w_);                       \
    } while (0)

#define is_str(got, want, name)                                                \
    do {                                                                       \
        const char *g_ = (got), *w_ = (want);                                  \
        if (!ok(g_ != NULL && strcmp(g_, w_) == 0, "%s", name))                \
            printf("#   got  '%s'\n#   want '%s'\n", g_ ? g_ : "(null)", w_);  \
    } while (0)

/* like: ok when got holds want, saying both when it does not. */
#define like(got, want, name)                                                  \
    do {                                                                       \
        const char *g_ = (got), *w_ = (want);                                  \
        if (!ok(g_ != NULL && strstr(g_, w_) != NULL, "%s", name))             \
            printf("#   got  '%s'\n#   want '...%s...'\n", g_ ? g_ : "(null)", \
                   w_);                                                        \
    } while (0)

/*
 * refused: ok when a parse of words returned r == -1 with a message err
 * that starts with says; the check is named after words[1] and words[2].
 */
TH_UNUSED static int
refused(int r, const char *err, const char *const *words, const char *says)
{
    if (ok(r == -1 && strncmp(err, says, strlen(says)) == 0, "%s %s: %s",
           words[1], words[2] ? words[2] : "", err))
        return 1;
    printf("#   want '%s...'\n", says);
    return 0;
}

TH_UNUSED static int
done_testing(void)
{
    printf("1..%d\n# %d passed, %d failed\n", th_run, th_run - th_failed,
           th_failed);
    return th_failed ? 1 : 0;
}

/* sleep_ms: ms milliseconds, however many signals come meanwhile. */
TH_UNUSED static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, ms % 1000 * 1000000};

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        continue;
}

/*
 * clock_ms: the monotonic clock in milliseconds, for deadlines.  Not named
 * now_ms: app/db.c, which test_db.c includes, has a now_ms of its own.
 */
TH_UNUSED static int64_t
clock_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * wait_exit: pid's exit status (128 + the signal when one ended it), or -1
 * when it still runs after timeout_ms: then it is killed and reaped.
 */
TH_UNUSED static int
wait_exit(pid_t pid, long timeout_ms)
{
    int64_t end = clock_ms() + timeout_ms;
    int st;

    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (clock_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        sleep_ms(5);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/*
 * read_text: the file at path into buf, NUL-terminated, at most len - 1
 * bytes.  Results: how many, or -1 (buf then "").
 */
TH_UNUSED static ssize_t
read_text(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = -1;

    if (fd != -1) {
        n = read(fd, buf, len - 1);
        close(fd);
    }
    buf[n > 0 ? n : 0] = '\0';
    return n;
}

/*
 * th_proc_stat: the state letter and the parent of process pid, from
 * /proc/PID/stat (its name may hold blanks and parentheses: the fields
 * follow the last ')').  Results: 0, or -1 when it cannot be read.
 */
TH_UNUSED static int
th_proc_stat(long pid, char *state, long *ppid)
{
    char path[64], buf[512], *p;

    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    if (read_text(path, buf, sizeof(buf)) <= 0 ||
        (p = strrchr(buf, ')')) == NULL ||
        sscanf(p + 1, " %c %ld", state, ppid) != 2)
        return -1;
    return 0;
}

/*
 * proc_children: the live (not zombie) children of ppid, from /proc, their
 * pids into pids[0..max) unless pids is NULL.  Results: how many.
 */
TH_UNUSED static int
proc_children(pid_t ppid, pid_t *pids, int max)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    long parent;
    char state;
    int n = 0;

    while (d != NULL && (e = readdir(d)) != NULL)
        if (e->d_name[0] >= '1' && e->d_name[0] <= '9' &&
            th_proc_stat(atol(e->d_name), &state, &parent) == 0 &&
            parent == (long)ppid && state != 'Z') {
            if (pids != NULL && n < max)
                pids[n] = (pid_t)atol(e->d_name);
            n++;
        }
    if (d != NULL)
        closedir(d);
    return n;
}

/* child_out: what the last in_child's function wrote, or read_out read. */
static char child_out[16384] TH_UNUSED;

/* read_out: what fd gives until its end, or for timeout_ms, in child_out. */
TH_UNUSED static void
read_out(int fd, long timeout_ms)
{
    int64_t end = clock_ms() + timeout_ms;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    size_t n = 0;
    ssize_t r = 1;

    while (n < sizeof(child_out) - 1 && r > 0 && clock_ms() < end) {
        if (poll(&pfd, 1, 50) == 1)
            r = read(fd, child_out + n, sizeof(child_out) - 1 - n);
        n += r > 0 ? (size_t)r : 0;
    }
    child_out[n] = '\0';
}

/*
 * in_child: fn(arg) in a forked child, its stdout and stderr into
 * child_out.  Results: its exit status (fn returning is 0), 128 + the
 * signal that ended it, or -1 when it still runs after 10 s (killed).
 */
TH_UNUSED static int
in_child(void (*fn)(const void *), const void *arg)
{
    int p[2];
    pid_t pid;

    child_out[0] = '\0';
    if (pipe(p) == -1)
        return -1;
    fflush(stdout);
    if ((pid = fork()) == 0) {
        close(p[0]);
        dup2(p[1], STDOUT_FILENO);
        dup2(p[1], STDERR_FILENO);
        close(p[1]);
        fn(arg);
        fflush(stdout);
        _exit(0);
    }
    close(p[1]);
    read_out(p[0], 10000);
    close(p[0]);
    return wait_exit(pid, 1000);
}

/* said: ok when the child's output holds want. */
#define said(want, name) like(child_out, want, name)

/*
 * temp_dir: mkdtemp(tmpl), a check failing when it cannot be made (which
 * no program can test without).  Results: 0, or -1.
 */
TH_UNUSED static int
temp_dir(char *tmpl)
{
    if (mkdtemp(tmpl) != NULL)
        return 0;
    ok(0, "mkdtemp %s: %s", tmpl, strerror(errno));
    return -1;
}

/* listen_unix: a unix socket listening at path, or -1. */
TH_UNUSED static int
listen_unix(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    int fd;

    if (len >= sizeof(sun.sun_path))
        return -1;
    memcpy(sun.sun_path, path, len + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
        listen(fd, 16) == -1) {
        if (fd != -1)
            close(fd);
        return -1;
    }
    return fd;
}

/*
 * listen_tcp: a socket listening on 127.0.0.1, on a port the kernel
 * picks, told in *port when port is not NULL.  Results: its fd, or -1.
 */
TH_UNUSED static int
listen_tcp(int *port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd == -1)
        return -1;
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
        listen(fd, 16) == -1 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) == -1) {
        close(fd);
        return -1;
    }
    if (port != NULL)
        *port = ntohs(sin.sin_port);
    return fd;
}

/* th_connect: a new socket of family connected to sa, or -1. */
TH_UNUSED static int
th_connect(int family, const void *sa, socklen_t len)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), e;

    if (fd != -1 && connect(fd, (const struct sockaddr *)sa, len) == -1) {
        e = errno;
        close(fd);
        errno = e; /* the caller's message says why */
        return -1;
    }
    return fd;
}

/* connect_unix: a connection to the unix socket at path, or -1. */
TH_UNUSED static int
connect_unix(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};

    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    return th_connect(AF_UNIX, &sun, sizeof(sun));
}

/* connect_tcp: a connection to port on 127.0.0.1, or -1. */
TH_UNUSED static int
connect_tcp(int port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

    return th_connect(AF_INET, &sin, sizeof(sin));
}

#endif
