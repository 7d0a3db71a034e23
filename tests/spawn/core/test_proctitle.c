/*
 * test_proctitle.c: the process's title (spawn/core/proctitle.c), set in
 * a forked child of this very program, whose argv and environment are
 * the real ones, and read from outside as ps reads it: /proc/PID/cmdline
 * and /proc/PID/comm.
 */
#include "../../../spawn/core/proctitle.c"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* read_proc: /proc/pid/what into buf; its length, -1 on error. */
static ssize_t
read_proc(pid_t pid, const char *what, char *buf, size_t len)
{
    char path[64];

    snprintf(path, sizeof(path), "/proc/%ld/%s", (long)pid, what);
    return read_text(path, buf, len);
}

/*
 * titled: fork a child that takes the title, checks what it can from the
 * inside (its copy of argv, getenv), reports on a pipe and waits to be
 * looked at.  Results: its pid, -1 on failure; *inside its verdict.
 */
static pid_t
titled(int argc, char **argv, const char *title, int *inside)
{
    int p[2];
    char c = 0;
    pid_t pid;

    if (pipe(p) == -1)
        return -1;
    fflush(stdout);
    if ((pid = fork()) == 0) {
        char *first = strdup(argv[0]);
        char **copy = proctitle_init(argc, argv, "test-title");
        const char *home = getenv("TEST_PROCTITLE");

        c = copy != argv && strcmp(copy[0], first) == 0 && copy[argc] == NULL &&
                    home != NULL && strcmp(home, "kept") == 0
                ? 'y'
                : 'n';
        proctitle_set("%s", title);
        if (write(p[1], &c, 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    close(p[1]);
    if (read(p[0], &c, 1) != 1)
        c = 0;
    close(p[0]);
    *inside = c == 'y';
    return pid;
}

static void
stop(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

int
main(int argc, char **argv)
{
    static char buf[1 << 17], big[1 << 17];
    ssize_t page = sysconf(_SC_PAGESIZE);
    int inside = 0;
    ssize_t n, space, shown;
    pid_t pid;

    /* The room: argv's bytes and the environment's, as the kernel has
     * them (setenv's additions live elsewhere). */
    space = read_proc(getpid(), "cmdline", buf, sizeof(buf)) +
            read_proc(getpid(), "environ", buf, sizeof(buf));

    setenv("TEST_PROCTITLE", "kept", 1);
    pid = titled(argc, argv, "tfb-fcgi: worker 3", &inside);
    if (pid == -1) {
        ok(0, "fork: %s", strerror(errno));
        return done_testing();
    }
    ok(inside, "the child's copy of argv and its environment are intact");
    n = read_proc(pid, "cmdline", buf, sizeof(buf));
    ok(n > 0 && strcmp(buf, "tfb-fcgi: worker 3") == 0,
       "/proc/PID/cmdline reads the title (%s)", buf);
    while (n > 0 && buf[n - 1] == '\0')
        n--;
    is_int(n, (long)strlen("tfb-fcgi: worker 3"),
           "and nothing after it but NULs (no old argument shows)");
    read_proc(pid, "comm", buf, sizeof(buf));
    is_str(buf, "test-title\n", "/proc/PID/comm is the name given");
    stop(pid);

    /* Longer than argv and the environment ever were: cut, not spilled. */
    if (space <= 0 || (size_t)space * 2 >= sizeof(big)) {
        ok(0, "the space: %zd bytes", space);
        return done_testing();
    }
    memset(big, 'x', (size_t)space * 2);
    pid = titled(argc, argv, big, &inside);
    n = read_proc(pid, "cmdline", buf, sizeof(buf));
    /* The kernel shows a title that ran past argv's end up to a page. */
    shown = space - 1 < page ? space - 1 : page;
    ok(inside && n > 0 && (ssize_t)strlen(buf) == shown &&
           strspn(buf, "x") == strlen(buf),
       "a title longer than argv and the environment is cut to their %zd "
       "bytes (%zu shown, the kernel's limit a page)",
       space, strlen(buf));
    stop(pid);

    n = read_proc(getpid(), "cmdline", buf, sizeof(buf));
    proctitle_set("no space yet");
    ok(n > 0 && read_proc(getpid(), "cmdline", big, sizeof(big)) == n &&
           memcmp(buf, big, (size_t)n) == 0,
       "proctitle_set before proctitle_init changes nothing");
    return done_testing();
}
