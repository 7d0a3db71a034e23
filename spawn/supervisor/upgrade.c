/*
 * upgrade.c: the supervisor's handoff to its next image; see upgrade.h.
 */
#include "upgrade.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errmsg.h"

#define FD_MAX 65535

int
upgrade_format(const struct upgrade *u, char *buf, size_t len)
{
    int n = snprintf(buf, len,
                     "%s=pid=%ld,listen=%d:%llu:%llu,status=%d:%llu:%llu,"
                     "sb=%d,target=%d",
                     UPGRADE_ENV, u->pid, u->listen.fd,
                     (unsigned long long)u->listen.dev,
                     (unsigned long long)u->listen.ino, u->status.fd,
                     (unsigned long long)u->status.dev,
                     (unsigned long long)u->status.ino, u->sb_fd, u->target);

    return n > 0 && (size_t)n < len ? 0 : -1;
}

/* number: a decimal in [min, max] at *p, which moves past it. */
static int
number(const char **p, long long min, long long max, long long *out)
{
    char *end;

    if (**p != '-' && (**p < '0' || **p > '9'))
        return -1;
    errno = 0;
    *out = strtoll(*p, &end, 10);
    if (errno != 0 || end == *p || *out < min || *out > max)
        return -1;
    *p = end;
    return 0;
}

/* sock: "FD:DEV:INO" at *p, FD -1 for none. */
static int
sock(const char **p, struct upgrade_sock *s)
{
    long long fd, dev, ino;

    if (number(p, -1, FD_MAX, &fd) == -1 || *(*p)++ != ':' ||
        number(p, 0, LLONG_MAX, &dev) == -1 || *(*p)++ != ':' ||
        number(p, 0, LLONG_MAX, &ino) == -1)
        return -1;
    s->fd = (int)fd;
    s->dev = (dev_t)dev;
    s->ino = (ino_t)ino;
    return 0;
}

/* field: "NAME=" at *p, which moves past it. */
static int
field(const char **p, const char *name)
{
    size_t n = strlen(name);

    if (strncmp(*p, name, n) != 0 || (*p)[n] != '=')
        return -1;
    *p += n + 1;
    return 0;
}

int
upgrade_parse(const char *s, struct upgrade *u, char *err, size_t errlen)
{
    const char *p = s;
    long long pid, sb, target;

    memset(u, 0, sizeof(*u));
    if (field(&p, "pid") == -1 || number(&p, 1, 1 << 30, &pid) == -1 ||
        *p++ != ',' || field(&p, "listen") == -1 ||
        sock(&p, &u->listen) == -1 || u->listen.fd < 0 || *p++ != ',' ||
        field(&p, "status") == -1 || sock(&p, &u->status) == -1 ||
        *p++ != ',' || field(&p, "sb") == -1 ||
        number(&p, -1, FD_MAX, &sb) == -1 || *p++ != ',' ||
        field(&p, "target") == -1 || number(&p, 1, 65536, &target) == -1 ||
        *p != '\0')
        return errmsg(err, errlen, "%s=%s: malformed", UPGRADE_ENV, s);
    u->pid = (long)pid;
    u->sb_fd = (int)sb;
    u->target = (int)target;
    return 0;
}

int
upgrade_take(struct upgrade *u, int for_check, char *err, size_t errlen)
{
    const char *v = getenv(UPGRADE_ENV);
    char copy[256];
    int r;

    if (v == NULL)
        return 0;
    snprintf(copy, sizeof(copy), "%s", v);
    unsetenv(UPGRADE_ENV);
    if (upgrade_parse(copy, u, err, errlen) == -1)
        return -1;
    r = u->pid == (long)getpid() || (for_check && u->pid == (long)getppid());
    return r;
}
