/*
 * check.c: tfb-spawn --check's look at paths and sockets; see check.h.
 */
#define _GNU_SOURCE
#include "check.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errmsg.h"
#include "listener.h"
#include "upgrade.h"

/* check_dir: the directory of path exists and takes a new file. */
static int
check_dir(const char *what, const char *path, char *err, size_t errlen)
{
    char copy[PATH_MAX], *dir;
    struct stat st;

    snprintf(copy, sizeof(copy), "%s", path);
    dir = dirname(copy);
    if (stat(dir, &st) == -1)
        return errmsg(err, errlen, "%s %s: directory %s: %s", what, path, dir,
                      strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return errmsg(err, errlen, "%s %s: %s is not a directory", what, path,
                      dir);
    if (access(dir, W_OK | X_OK) == -1)
        return errmsg(err, errlen, "%s %s: cannot create files in %s: %s", what,
                      path, dir, strerror(errno));
    return 0;
}

int
check_file(const char *what, const char *path, char *err, size_t errlen)
{
    struct stat st;

    if (lstat(path, &st) == -1) {
        if (errno != ENOENT)
            return errmsg(err, errlen, "%s %s: %s", what, path,
                          strerror(errno));
        return check_dir(what, path, err, errlen);
    }
    if (S_ISLNK(st.st_mode))
        return errmsg(err, errlen,
                      "%s %s: a symbolic link (never followed: name the file "
                      "itself)",
                      what, path);
    if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode))
        return errmsg(err, errlen, "%s %s: not a regular file", what, path);
    if (access(path, W_OK) == -1)
        return errmsg(err, errlen, "%s %s: %s", what, path, strerror(errno));
    return 0;
}

/* check_unix: the unix socket path could be bound now. */
static int
check_unix(const char *what, const char *path, char *desc, size_t desclen,
           char *err, size_t errlen)
{
    int r;

    if (check_dir(what, path, err, errlen) == -1 ||
        (r = listener_probe_unix(what, path, err, errlen)) == -1)
        return -1;
    snprintf(desc, desclen, "unix:%s%s", path,
             r == 1 ? " (a stale socket, to be replaced)" : "");
    return 0;
}

/* check_tcp: the address bound for a moment, as --bind would. */
static int
check_tcp(const char *what, const struct listener_addr *a, char *desc,
          size_t desclen, char *err, size_t errlen)
{
    int fd = listener_tcp(what, a, -1, NULL, 0, err, errlen);

    if (fd == -1)
        return -1;
    close(fd);
    snprintf(desc, desclen, "tcp %s port %s", *a->host ? a->host : "*",
             a->port);
    return 0;
}

int
check_bind(const char *what, const char *addr, char *desc, size_t desclen,
           char *err, size_t errlen)
{
    struct listener_addr a;

    if (listener_parse_addr(addr, &a, err, errlen) == -1)
        return -1;
    if (a.is_unix)
        return check_unix(what, a.path, desc, desclen, err, errlen);
    return check_tcp(what, &a, desc, desclen, err, errlen);
}

int
check_inherited(const struct upgrade_sock *handed, char *desc, size_t desclen,
                char *err, size_t errlen)
{
    int n, fd;
    const char *how;

    n = listener_listen_fds(getenv("LISTEN_FDS"), getenv("LISTEN_PID"),
                            (long)getpid());
    if (handed != NULL) {
        fd = handed->fd;
        how = "handed over by the running image";
    } else if (n == -1) {
        return errmsg(err, errlen, "LISTEN_FDS / LISTEN_PID are malformed");
    } else if (n > 0) {
        fd = 3;
        how = "LISTEN_FDS";
    } else {
        fd = 0;
        how = "inherited";
    }
    if (!listener_is_listening(fd))
        return handed != NULL || n > 0
                   ? errmsg(err, errlen,
                            "%s: fd %d is not a listening stream socket", how,
                            fd)
                   : errmsg(err, errlen,
                            "no listening socket: fd 0 is not one and "
                            "LISTEN_FDS is not set; start under spawn-fcgi or "
                            "systemd, or pass --bind");
    snprintf(desc, desclen, "%s (fd %d)", how, fd);
    return 0;
}
