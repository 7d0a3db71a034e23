/*
 * log.c: see log.h.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_name = "tfb";
static enum log_level log_min = LOG_INFO;

/*
 * Repeats.  A warning or an error the same as the last one, word for
 * word, is counted instead of written, until REPEAT_S seconds have passed
 * since it was last written or another line comes: then it is written
 * once more with "(repeated N times in the last M s)".  A worker whose
 * database refuses it every 2 s then writes a line a minute, not thirty.
 * Not const: the unit tests shorten it.
 */
static int repeat_s = 60;
static struct {
    enum log_level level;
    char text[1024]; /* the message, without the time and the pid */
    size_t len;
    unsigned long count; /* not written since written_s */
    int64_t written_s;   /* CLOCK_MONOTONIC, when it was last written */
    int hooked;          /* log_flush is registered with atexit */
} last;

const char *const log_level_names[] = {"debug", "info", "warn", "error", NULL};

void
log_init(const char *progname, enum log_level min)
{
    log_name = progname;
    log_min = min;
}

static int64_t
mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

/*
 * emit: one line, "TIME NAME[PID] LEVEL: " then text[0, len) then
 * suffix, in one write: the line is atomic on a pipe or an O_APPEND file.
 */
static void
emit(enum log_level level, const char *text, size_t len, const char *suffix)
{
    char line[1024];
    struct tm tm;
    time_t now = time(NULL);
    size_t n;
    int r;

    gmtime_r(&now, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%SZ ", &tm);
    r = snprintf(line + n, sizeof(line) - n, "%s[%ld] %s: %.*s%s\n", log_name,
                 (long)getpid(), log_level_names[level], (int)len, text,
                 suffix);
    if (r < 0)
        return;
    n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
    line[n - 1] = '\n'; /* a line cut short still ends */
    if (write(STDERR_FILENO, line, n) < 0) {
        /* Nowhere left to report it. */
    }
}

/* flush_repeats: the repeats of the last line not yet said, said. */
static void
flush_repeats(void)
{
    char suffix[96];

    if (last.count == 0)
        return;
    snprintf(suffix, sizeof(suffix), " (repeated %lu times in the last %lld s)",
             last.count, (long long)(mono_s() - last.written_s));
    emit(last.level, last.text, last.len, suffix);
    last.count = 0;
    last.written_s = mono_s();
}

void
log_flush(void)
{
    flush_repeats();
}

/*
 * repeated: whether the line text[0, len) of level is the last one again,
 * to be counted rather than written (see repeat_s).  A line written is
 * remembered.
 */
static int
repeated(enum log_level level, const char *text, size_t len)
{
    int64_t now = mono_s();

    if (level >= LOG_WARN && level == last.level && len == last.len &&
        memcmp(text, last.text, len) == 0) {
        last.count++;
        if (now - last.written_s < repeat_s)
            return 1;
        /* Due: this one is written with the count, which includes it. */
        flush_repeats();
        return 1;
    }
    flush_repeats();
    if (level < LOG_WARN || len >= sizeof(last.text)) {
        last.len = 0;
        last.level = LOG_DEBUG;
        return 0;
    }
    memcpy(last.text, text, len);
    last.len = len;
    last.level = level;
    last.written_s = now;
    if (!last.hooked)
        last.hooked = atexit(log_flush) == 0;
    return 0;
}

__attribute__((format(printf, 2, 0))) static void
log_write(enum log_level level, const char *fmt, va_list ap)
{
    char text[1024];
    size_t n, i;
    int r;

    r = vsnprintf(text, sizeof(text), fmt, ap);
    if (r < 0)
        return;
    n = (size_t)r < sizeof(text) ? (size_t)r : sizeof(text) - 1;
    /* One event, one line: libpq's messages end in a newline and may hold
     * more (a DETAIL, a HINT), and tabs. */
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        n--;
    for (i = 0; i < n; i++)
        if (text[i] == '\n' || text[i] == '\r' || text[i] == '\t')
            text[i] = ' ';
    if (!repeated(level, text, n))
        emit(level, text, n, "");
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
    flush_repeats();
    exit(status);
}
