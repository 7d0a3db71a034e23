/*
 * log.c: see log.h.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static const char *log_name = "tfb";
static enum log_level log_min = LOG_INFO;

const char *const log_level_names[] = {"debug", "info", "warn", "error", NULL};

void
log_init(const char *progname, enum log_level min)
{
    log_name = progname;
    log_min = min;
}

__attribute__((format(printf, 2, 0))) static void
log_write(enum log_level level, const char *fmt, va_list ap)
{
    char line[1024];
    struct tm tm;
    time_t now = time(NULL);
    size_t n, start, i;
    int r;

    gmtime_r(&now, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%SZ ", &tm);
    r = snprintf(line + n, sizeof(line) - n, "%s[%ld] %s: ", log_name,
                 (long)getpid(), log_level_names[level]);
    if (r > 0)
        n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
    start = n;
    r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    if (r > 0)
        n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
    /* Truncated lines still end with a newline. */
    if (n >= sizeof(line) - 1)
        n = sizeof(line) - 2;
    /* One event, one line: libpq's messages end in a newline and may hold
     * more (a DETAIL, a HINT). */
    while (n > start && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    for (i = start; i < n; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[n++] = '\n';
    /* One write: the line is atomic on a pipe or an O_APPEND file. */
    if (write(STDERR_FILENO, line, n) < 0) {
        /* Nowhere left to report it. */
    }
}

int
log_open_file(const char *path)
{
    int fd, e;

    /* Never through a link: as root, a log in a directory another account
     * can write must not become a way to append to any file. */
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
              0640);
    if (fd == -1)
        return -1;
    if (fd == STDERR_FILENO) {
        /* fd 2 was closed: keep the new one across exec. */
        fcntl(fd, F_SETFD, 0);
        return 0;
    }
    if (dup2(fd, STDERR_FILENO) == -1) {
        e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    close(fd);
    return 0;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;

    if (level < log_min)
        return;
    va_start(ap, fmt);
    log_write(level, fmt, ap);
    va_end(ap);
}

void
log_fatal(int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_write(LOG_ERR, fmt, ap);
    va_end(ap);
    exit(status);
}
