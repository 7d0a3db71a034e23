/*
 * access.c: see access.h.
 */
#define _GNU_SOURCE
#include "access.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* A line's request (method, path, query), escaped, at most: past it the
 * path and query are cut, with "...". */
#define REQUEST_SHOWN 2048
/* A whole line, at most: the request, then the numbers. */
#define LINE_MAX_LEN (4 * REQUEST_SHOWN + 256)

struct access_log {
    char *path; /* NULL: standard output */
    int fd;
    int sock; /* fd is a socket: send(MSG_DONTWAIT) */
    char buf[ACCESS_BUF];
    size_t len;        /* bytes buffered */
    int64_t oldest_ns; /* when the first of them was buffered */
    uint64_t dropped;  /* lines dropped, ever */
    uint64_t dropping; /* of them since the writes last worked (0: they
                          work) */
    time_t stamp_s;    /* the second stamp[] shows */
    char stamp[40];    /* "[02/Dec/2026:04:27:00 +0000]" */
};

static int64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * open_fd: the descriptor to write to, close-on-exec and non-blocking.
 * Standard output is opened anew through /proc when it is a pipe or a
 * file, so that O_NONBLOCK is ours alone (the open file it shares with
 * the supervisor and the other workers keeps its flags); a socket cannot
 * be, and is written with MSG_DONTWAIT instead.
 */
static int
open_fd(const char *path, int *sock)
{
    struct stat st;
    int fd;

    *sock = 0;
    if (path != NULL)
        return open(path,
                    O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC |
                        O_NONBLOCK,
                    0640);
    fd = open("/proc/self/fd/1", O_WRONLY | O_APPEND | O_CLOEXEC | O_NONBLOCK);
    if (fd != -1)
        return fd;
    if ((fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3)) == -1)
        return -1;
    *sock = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
    return fd;
}

struct access_log *
access_open(const char *path, char *err, size_t errlen)
{
    struct access_log *log;
    int e;

    if ((log = calloc(1, sizeof(*log))) == NULL ||
        (strcmp(path, "-") != 0 && (log->path = strdup(path)) == NULL)) {
        snprintf(err, errlen, "--access-log %s: out of memory", path);
        free(log);
        return NULL;
    }
    if ((log->fd = open_fd(log->path, &log->sock)) == -1) {
        e = errno;
        snprintf(err, errlen, "--access-log %s: %s", path, strerror(e));
        free(log->path);
        free(log);
        return NULL;
    }
    log->stamp_s = -1;
    return log;
}

/*
 * drain: write what the buffer holds, as far as the file takes it now.
 * A failure drops the buffer's lines (counted); what a pipe does not take
 * yet stays.
 */
static void
drain(struct access_log *log)
{
    size_t off = 0, lines, i;
    ssize_t n = 0;

    while (off < log->len) {
        n = log->sock ? send(log->fd, log->buf + off, log->len - off,
                             MSG_DONTWAIT | MSG_NOSIGNAL)
                      : write(log->fd, log->buf + off, log->len - off);
        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    if (off < log->len && n == -1 && errno != EAGAIN && errno != EWOULDBLOCK) {
        lines = 0;
        for (i = off; i < log->len; i++)
            lines += log->buf[i] == '\n';
        if (log->dropping == 0)
            log_warn("access log %s: cannot write (%s): dropping its lines "
                     "until it can",
                     log->path ? log->path : "-", strerror(errno));
        log->dropped += lines;
        log->dropping += lines;
        off = log->len;
    } else if (off > 0 && log->dropping > 0) {
        log_info("access log %s: writing again, %llu lines dropped",
                 log->path ? log->path : "-",
                 (unsigned long long)log->dropping);
        log->dropping = 0;
    }
    memmove(log->buf, log->buf + off, log->len - off);
    log->len -= off;
    log->oldest_ns = log->len > 0 ? now_ns() : 0;
}

/* put_escaped: s[0, n) as access.h says, into out; its new length. */
static size_t
put_escaped(char *out, size_t at, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '"' || c == '\\') {
            out[at++] = '\\';
            out[at++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            out[at++] = '\\';
            out[at++] = 'x';
            out[at++] = hex[c >> 4];
            out[at++] = hex[c & 15];
        } else {
            out[at++] = (char)c;
        }
    }
    return at;
}

/* stamp: the Common Log Format's time, computed once a second. */
static const char *
stamp(struct access_log *log)
{
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    if (ts.tv_sec != log->stamp_s) {
        gmtime_r(&ts.tv_sec, &tm);
        strftime(log->stamp, sizeof(log->stamp), "[%d/%b/%Y:%H:%M:%S +0000]",
                 &tm);
        log->stamp_s = ts.tv_sec;
    }
    return log->stamp;
}

/* format: e's line into out (LINE_MAX_LEN bytes); its length. */
static size_t
format(struct access_log *log, const struct access_entry *e, char *out)
{
    const char *method = e->method != NULL ? e->method : "-";
    size_t n, path = e->path_len, query = e->query ? strlen(e->query) : 0;
    int cut = 0, r;

    if (path > REQUEST_SHOWN)
        path = REQUEST_SHOWN, query = 0, cut = 1;
    else if (path + query > REQUEST_SHOWN)
        query = REQUEST_SHOWN - path, cut = 1;
    n = (size_t)snprintf(out, LINE_MAX_LEN, "- - - %s \"", stamp(log));
    n = put_escaped(out, n, method, strnlen(method, 32));
    out[n++] = ' ';
    n = put_escaped(out, n, e->path, path);
    if (query > 0) {
        out[n++] = '?';
        n = put_escaped(out, n, e->query, query);
    }
    r = snprintf(out + n, LINE_MAX_LEN - n,
                 "%s\" %d %zu read_us=%u db_us=%u app_us=%u write_us=%u "
                 "total_us=%llu\n",
                 cut ? "..." : "", e->status, e->bytes, e->us[0], e->us[1],
                 e->us[2], e->us[3],
                 (unsigned long long)e->us[0] + e->us[1] + e->us[2] + e->us[3]);
    return n + (r > 0 ? (size_t)r : 0);
}

void
access_line(struct access_log *log, const struct access_entry *e)
{
    char line[LINE_MAX_LEN];
    size_t n;

    if (log == NULL)
        return;
    n = format(log, e, line);
    if (log->len + n > sizeof(log->buf))
        drain(log);
    if (log->len + n > sizeof(log->buf)) {
        if (log->dropping++ == 0)
            log_warn("access log %s: the file takes nothing: dropping lines "
                     "until it does",
                     log->path ? log->path : "-");
        log->dropped++;
        return;
    }
    if (log->len == 0)
        log->oldest_ns = now_ns();
    memcpy(log->buf + log->len, line, n);
    log->len += n;
    if (log->len > sizeof(log->buf) / 4 * 3)
        drain(log);
}

int64_t
access_due_ms(const struct access_log *log)
{
    int64_t left;

    if (log == NULL || log->len == 0)
        return -1;
    left = log->oldest_ns + ACCESS_FLUSH_MS * 1000000LL - now_ns();
    return left > 0 ? (left + 999999) / 1000000 : 0;
}

void
access_tick(struct access_log *log)
{
    if (access_due_ms(log) == 0)
        drain(log);
}

int
access_reopen(struct access_log *log)
{
    int fd, sock;

    if (log == NULL || log->path == NULL)
        return 0;
    drain(log);
    if ((fd = open_fd(log->path, &sock)) == -1) {
        log_err("access log %s: cannot reopen: %s", log->path, strerror(errno));
        return -1;
    }
    close(log->fd);
    log->fd = fd;
    log->sock = sock;
    return 0;
}

uint64_t
access_dropped(const struct access_log *log)
{
    return log != NULL ? log->dropped : 0;
}

void
access_close(struct access_log *log)
{
    if (log == NULL)
        return;
    drain(log);
    if (log->len > 0)
        log_warn("access log %s: %zu bytes not written at exit",
                 log->path ? log->path : "-", log->len);
    close(log->fd);
    free(log->path);
    free(log);
}
