/*
 * listener.c: the pool's one listening socket; see listener.h.
 */
#define _GNU_SOURCE
#include "listener.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdarg.h>
#include <sys/file.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "errmsg.h"
#include "log.h"
#include "opt.h"

#define SD_LISTEN_FDS_START 3
/* How long a server waits for another's lock on PATH.lock, and how often
 * it tries: a server holds it for milliseconds, from its stale check to
 * its listen(). */
#define LOCK_WAIT_MS 3000
#define LOCK_TRY_MS 50

/* parse_addr: listener_parse_addr, its messages naming the option what. */
static int
parse_addr(const char *what, const char *spec, struct listener_addr *a,
           char *err, size_t errlen)
{
    const char *colon, *host = "127.0.0.1", *port;
    size_t hostlen = strlen(host);
    long portnum;

    memset(a, 0, sizeof(*a));
    if (strncmp(spec, "unix:", 5) == 0 || strchr(spec, '/') != NULL) {
        const char *path = strncmp(spec, "unix:", 5) == 0 ? spec + 5 : spec;

        if (*path == '\0')
            return errmsg(err, errlen, "%s %s: no path", what, spec);
        if (strlen(path) >= sizeof(a->path))
            return errmsg(err, errlen,
                          "%s %s: a unix socket path has at most %zu bytes",
                          what, spec, sizeof(a->path) - 1);
        a->is_unix = 1;
        strcpy(a->path, path);
        return 0;
    }
    if (*spec == '[') {
        const char *close = strchr(spec, ']');

        if (close == NULL || close[1] != ':')
            return errmsg(err, errlen, "%s %s: expected [ADDRESS]:PORT", what,
                          spec);
        host = spec + 1;
        hostlen = (size_t)(close - host);
        port = close + 2;
    } else if ((colon = strrchr(spec, ':')) != NULL) {
        if (colon != spec) {
            host = spec;
            hostlen = (size_t)(colon - spec);
        }
        port = colon + 1;
    } else {
        port = spec;
    }
    /* Stored as the number it is: "09000" is 9000, and fits port[]. */
    if (opt_long(port, 1, 65535, &portnum) == -1 || *port == '-')
        return errmsg(err, errlen,
                      "%s %s: '%s' is not a port in [1, 65535] (a unix "
                      "socket path needs a '/', as in ./%s)",
                      what, spec, port, spec);
    if (hostlen == 0 || hostlen >= sizeof(a->host))
        return errmsg(err, errlen, "%s %s: bad host", what, spec);
    if (hostlen == 1 && *host == '*')
        hostlen = 0; /* every address */
    memcpy(a->host, host, hostlen);
    a->host[hostlen] = '\0';
    snprintf(a->port, sizeof(a->port), "%ld", portnum);
    return 0;
}

int
listener_parse_addr(const char *spec, struct listener_addr *a, char *err,
                    size_t errlen)
{
    return parse_addr("--bind", spec, a, err, errlen);
}

int
listener_listen_fds(const char *fds, const char *pid, long self)
{
    char *end;
    long n, p;

    if (fds == NULL || pid == NULL)
        return 0;
    errno = 0;
    p = strtol(pid, &end, 10);
    if (errno != 0 || end == pid || *end != '\0' || p <= 0)
        return -1;
    if (p != self)
        return 0;
    errno = 0;
    n = strtol(fds, &end, 10);
    if (errno != 0 || end == fds || *end != '\0' || n < 0 || n > 1024)
        return -1;
    return (int)n;
}

int
listener_is_listening(int fd)
{
    int type = 0, acc = 0;
    socklen_t len = sizeof(type);

    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1 ||
        type != SOCK_STREAM)
        return 0;
    len = sizeof(acc);
    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) == 0 &&
           acc != 0;
}

/*
 * adopt: take an inherited socket, blocking as a libfcgi responder run by
 * anything else expects it (tfb-fcgi's workers make it non-blocking for
 * themselves).  fd 0 stays inheritable; others are dup2()ed onto each
 * worker's fd 0 and need not leak anywhere else.
 */
static int
adopt(struct listener *l, int fd, const char *how, char *err, size_t errlen)
{
    int fl;

    if (!listener_is_listening(fd))
        return errmsg(err, errlen, "%s: fd %d is not a listening stream socket",
                      how, fd);
    if ((fl = fcntl(fd, F_GETFL)) == -1 ||
        ((fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == -1))
        return errmsg(err, errlen, "%s: fd %d: %s", how, fd, strerror(errno));
    if (fcntl(fd, F_SETFD, fd == 0 ? 0 : FD_CLOEXEC) == -1)
        return errmsg(err, errlen, "%s: fd %d: %s", how, fd, strerror(errno));
    l->fd = fd;
    snprintf(l->desc, sizeof(l->desc), "%s (fd %d)", how, fd);
    return 0;
}

static void
warn_backlog(int backlog)
{
    FILE *fp = fopen("/proc/sys/net/core/somaxconn", "r");
    int max;

    if (fp == NULL)
        return;
    if (fscanf(fp, "%d", &max) == 1 && backlog > max)
        log_warn("listen backlog %d is capped by net.core.somaxconn = %d",
                 backlog, max);
    fclose(fp);
}

int
listener_probe_unix(const char *what, const char *path, char *err,
                    size_t errlen)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct stat st;
    int fd, r, e;

    if (lstat(path, &st) == -1)
        return errno == ENOENT ? 0
                               : errmsg(err, errlen, "%s %s: %s", what, path,
                                        strerror(errno));
    if (!S_ISSOCK(st.st_mode))
        return errmsg(err, errlen, "%s %s: exists and is not a socket", what,
                      path);
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
        return errmsg(err, errlen, "socket: %s", strerror(errno));
    r = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
    e = errno;
    close(fd);
    if (r == 0)
        return errmsg(err, errlen,
                      "%s %s: a running server listens there already", what,
                      path);
    if (e != ECONNREFUSED)
        return errmsg(err, errlen,
                      "%s %s: cannot tell whether a server listens there "
                      "(%s); not removing it",
                      what, path, strerror(e));
    return 1;
}

/*
 * clear_stale: a unix socket left by a server that died is removed; one
 * that still answers, or of which we cannot tell, is left alone.
 */
static int
clear_stale(const char *what, const char *path, char *err, size_t errlen)
{
    int r = listener_probe_unix(what, path, err, errlen);

    if (r <= 0)
        return r;
    if (unlink(path) == -1)
        return errmsg(err, errlen, "%s %s: removing the stale socket: %s", what,
                      path, strerror(errno));
    log_info("removed the stale socket %s", path);
    return 0;
}

/*
 * comm_of: the command name of pid, from /proc/PID/comm, into out (at
 * least 17 bytes).  The name is the process's own choice: anything but a
 * printable ASCII character becomes '?', so that it cannot forge a line of
 * our message or of the log.  "?" when it cannot be read.
 */
static void
comm_of(long pid, char *out, size_t cap)
{
    char path[48];
    ssize_t n = -1;
    int fd, i;

    snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
    if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) != -1) {
        /* TASK_COMM_LEN is 16: its 15 characters and a newline. */
        n = read(fd, out, cap - 1 < 16 ? cap - 1 : 16);
        close(fd);
    }
    if (n <= 0) {
        snprintf(out, cap, "?");
        return;
    }
    out[n] = '\0';
    out[strcspn(out, "\n")] = '\0';
    for (i = 0; out[i] != '\0'; i++)
        if (out[i] < 0x20 || out[i] > 0x7e)
            out[i] = '?';
}

/*
 * lock_holder: the pid of a process holding a lock on the file (device,
 * inode) st, from /proc/locks; a line reads
 *
 *     1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF
 *
 * its device as major:minor in hex.  Lines of waiters ("1: -> FLOCK ...")
 * hold nothing and are passed over.  Results: the pid, 0 when the holder
 * lives outside our pid namespace, -1 when none is found.
 */
static long
lock_holder(const struct stat *st)
{
    char line[256], type[16];
    unsigned maj, mnr;
    unsigned long ino;
    long pid, found = -1;
    FILE *f;

    if ((f = fopen("/proc/locks", "re")) == NULL)
        return -1;
    while (found == -1 && fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "%*[^:]: %15s %*s %*s %ld %x:%x:%lu", type, &pid, &maj,
                   &mnr, &ino) == 5 &&
            strcmp(type, "->") != 0 && maj == major(st->st_dev) &&
            mnr == minor(st->st_dev) && ino == (unsigned long)st->st_ino)
            found = pid;
    fclose(f);
    return found;
}

/*
 * lock_busy: the message for a lock still held at the deadline, naming
 * its holder.  Results: -1.
 */
static int
lock_busy(const char *what, const char *path, const char *lock, int fd,
          char *err, size_t errlen)
{
    char comm[32];
    struct stat st;
    long pid = fstat(fd, &st) == 0 ? lock_holder(&st) : -1;

    if (pid > 0) {
        comm_of(pid, comm, sizeof(comm));
        return errmsg(err, errlen,
                      "%s %s: lock file %s is held by pid %ld (%s) for over "
                      "%d s; is another server starting on this path?",
                      what, path, lock, pid, comm, LOCK_WAIT_MS / 1000);
    }
    return errmsg(err, errlen,
                  "%s %s: lock file %s is held by another process (%s) for "
                  "over %d s",
                  what, path, lock,
                  pid == 0 ? "outside our pid namespace"
                           : "not found in /proc/locks",
                  LOCK_WAIT_MS / 1000);
}

/*
 * lock_open: PATH.lock, made if missing, never through a link, a FIFO or
 * a device (O_NONBLOCK: opening a FIFO would wait for a writer), and only
 * if we or root own it: a lock file of another user is one that user can
 * hold for ever.  Readable by all: flock needs no more, so a server of
 * another user waits on a lock file root made.  Results: its fd, or -1
 * with err set.
 */
static int
lock_open(const char *what, const char *path, const char *lock, char *err,
          size_t errlen)
{
    struct stat st;
    int fd;

    fd = open(lock, O_RDONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
              0644);
    if (fd == -1)
        return errmsg(err, errlen, "%s %s: lock file %s: %s", what, path, lock,
                      errno == ELOOP ? "is a symbolic link" : strerror(errno));
    if (fstat(fd, &st) == -1) {
        errmsg(err, errlen, "%s %s: lock file %s: %s", what, path, lock,
               strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        errmsg(err, errlen, "%s %s: lock file %s is not a regular file", what,
               path, lock);
    } else if (st.st_uid != geteuid() && st.st_uid != 0) {
        errmsg(err, errlen,
               "%s %s: lock file %s belongs to uid %ld, neither us (uid %ld) "
               "nor root; remove it",
               what, path, lock, (long)st.st_uid, (long)geteuid());
    } else {
        return fd;
    }
    close(fd);
    return -1;
}

/*
 * lock_path: an exclusive lock on PATH.lock, held from the stale check to
 * listen(), so that two servers starting on one path cannot each find the
 * other's new socket stale and remove it.  Its holder removes it at the
 * end (listener_close; lock_fresh says how that stays safe).  A server
 * holds it for milliseconds, so it is tried every LOCK_TRY_MS up to
 * LOCK_WAIT_MS, never waited on without end.  Results: its fd, or -1 with
 * err set.
 */
static int
lock_path(const char *what, const char *path, char *err, size_t errlen)
{
    char lock[LISTENER_PATH_MAX + 8];
    struct timespec pause = {0, LOCK_TRY_MS * 1000000L}, now;
    double deadline;
    int fd;

    snprintf(lock, sizeof(lock), "%s.lock", path);
    if ((fd = lock_open(what, path, lock, err, errlen)) == -1)
        return -1;
    clock_gettime(CLOCK_MONOTONIC, &now);
    deadline = (double)now.tv_sec + now.tv_nsec / 1e9 + LOCK_WAIT_MS / 1e3;
    for (;;) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return fd;
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK) {
            errmsg(err, errlen, "%s %s: locking %s: %s", what, path, lock,
                   strerror(errno));
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((double)now.tv_sec + now.tv_nsec / 1e9 >= deadline) {
            lock_busy(what, path, lock, fd, err, errlen);
            break;
        }
        nanosleep(&pause, NULL);
    }
    close(fd);
    return -1;
}
/*
 * lock_fresh: lock_path, on the file that is at PATH.lock once the lock
 * is ours.  listener_close removes the lock file under the lock, so a
 * server that opened it before and got the lock after holds a file no
 * one else will open again: it opens the path anew (and the file is
 * only ever removed by its lock's holder, so this ends).
 */
static int
lock_fresh(const char *what, const char *path, char *err, size_t errlen)
{
    char lock[LISTENER_PATH_MAX + 8];
    struct stat held, named;
    int fd, tries;

    snprintf(lock, sizeof(lock), "%s.lock", path);
    for (tries = 0;; tries++) {
        if ((fd = lock_path(what, path, err, errlen)) == -1)
            return -1;
        if ((fstat(fd, &held) == 0 && lstat(lock, &named) == 0 &&
             held.st_dev == named.st_dev && held.st_ino == named.st_ino) ||
            tries == 100)
            return fd;
        close(fd);
    }
}

/*
 * bind_unix: the socket file gets its mode at bind(), from the umask,
 * never from a chmod by path afterwards, and its owner from an lchown(),
 * which changes a link, should the path have become one, and never what
 * it points to: root must not be made to change a file someone else
 * names.
 */
static int
bind_unix(struct listener *l, const char *what, const char *path, int backlog,
          const struct listener_perm *perm, char *err, size_t errlen)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct stat st;
    mode_t mask;
    int fd, lock, r;

    if ((lock = lock_fresh(what, path, err, errlen)) == -1)
        return -1;
    if (clear_stale(what, path, err, errlen) == -1)
        goto unlock;
    strcpy(sun.sun_path, path);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
        errmsg(err, errlen, "socket: %s", strerror(errno));
        goto unlock;
    }
    mask = umask(0777 & ~(mode_t)perm->mode);
    r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(mask);
    if (r == -1) {
        errmsg(err, errlen, "%s %s: %s", what, path, strerror(errno));
        goto close_fd;
    }
    if ((perm->uid != (uid_t)-1 || perm->gid != (gid_t)-1) &&
        lchown(path, perm->uid, perm->gid) == -1) {
        errmsg(err, errlen, "%s %s: setting its owner: %s", what, path,
               strerror(errno));
        goto unlink_path;
    }
    if (listen(fd, backlog) == -1 || lstat(path, &st) == -1) {
        errmsg(err, errlen, "%s %s: %s", what, path, strerror(errno));
        goto unlink_path;
    }
    close(lock);
    l->fd = fd;
    strcpy(l->path, path);
    l->dev = st.st_dev;
    l->ino = st.st_ino;
    snprintf(l->desc, sizeof(l->desc), "unix:%s (mode %04o)", path, perm->mode);
    return 0;

unlink_path:
    unlink(path);
close_fd:
    close(fd);
unlock:
    close(lock);
    return -1;
}

int
listener_tcp(const char *what, const struct listener_addr *a, int backlog,
             char *host, size_t hostlen, char *err, size_t errlen)
{
    struct addrinfo hints = {0}, *res, *ai;
    char serv[NI_MAXSERV];
    int fd = -1, one = 1, r, e = 0;

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    r = getaddrinfo(*a->host ? a->host : NULL, a->port, &hints, &res);
    if (r != 0)
        return errmsg(err, errlen, "%s %s:%s: %s", what, a->host, a->port,
                      gai_strerror(r));
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd == -1) {
            e = errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
            (backlog < 0 || listen(fd, backlog) == 0))
            break;
        e = errno;
        close(fd);
        fd = -1;
    }
    if (fd == -1) {
        freeaddrinfo(res);
        return errmsg(err, errlen, "%s %s:%s: %s", what,
                      *a->host ? a->host : "*", a->port, strerror(e));
    }
    if (host != NULL &&
        getnameinfo(ai->ai_addr, ai->ai_addrlen, host, (socklen_t)hostlen, serv,
                    sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        snprintf(host, hostlen, "?");
    freeaddrinfo(res);
    return fd;
}

static int
bind_tcp(struct listener *l, const char *what, const struct listener_addr *a,
         int backlog, char *err, size_t errlen)
{
    char host[64]; /* numeric: INET6_ADDRSTRLEN fits */
    int fd = listener_tcp(what, a, backlog, host, sizeof(host), err, errlen);

    if (fd == -1)
        return -1;
    l->fd = fd;
    snprintf(l->desc, sizeof(l->desc), "tcp %s port %s", host, a->port);
    return 0;
}

int
listener_bind(struct listener *l, const char *what, const char *addr,
              int backlog, const struct listener_perm *perm, char *err,
              size_t errlen)
{
    struct listener_addr a;

    memset(l, 0, sizeof(*l));
    l->fd = -1;
    if (parse_addr(what, addr, &a, err, errlen) == -1)
        return -1;
    warn_backlog(backlog);
    if (a.is_unix)
        return bind_unix(l, what, a.path, backlog, perm, err, errlen);
    return bind_tcp(l, what, &a, backlog, err, errlen);
}

int
listener_open(struct listener *l, const char *bind, int backlog,
              const struct listener_perm *perm, char *err, size_t errlen)
{
    int n;

    memset(l, 0, sizeof(*l));
    l->fd = -1;
    n = listener_listen_fds(getenv("LISTEN_FDS"), getenv("LISTEN_PID"),
                            (long)getpid());
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDNAMES");

    if (bind != NULL)
        return listener_bind(l, "--bind", bind, backlog, perm, err, errlen);
    if (n == -1)
        return errmsg(err, errlen, "LISTEN_FDS / LISTEN_PID are malformed");
    if (n > 0) {
        if (n > 1)
            log_warn("LISTEN_FDS=%d: serving fd %d only", n,
                     SD_LISTEN_FDS_START);
        return adopt(l, SD_LISTEN_FDS_START, "LISTEN_FDS", err, errlen);
    }
    if (listener_is_listening(0))
        return adopt(l, 0, "inherited", err, errlen);
    return errmsg(err, errlen,
                  "no listening socket: fd 0 is not one and LISTEN_FDS is "
                  "not set; start under spawn-fcgi or systemd, or pass "
                  "--bind");
}

void
listener_close(struct listener *l)
{
    char lock[LISTENER_PATH_MAX + 8], err[256];
    struct stat st;
    int fd;

    if (l->fd == -1)
        return;
    close(l->fd);
    l->fd = -1;
    if (l->path[0] == '\0')
        return;
    /* Only if it is still the one we made: a new server may own it now.
     * Its lock file goes too, removed under the lock (see lock_fresh). */
    fd = lock_fresh("--bind", l->path, err, sizeof(err));
    snprintf(lock, sizeof(lock), "%s.lock", l->path);
    if (lstat(l->path, &st) == 0 && st.st_dev == l->dev &&
        st.st_ino == l->ino) {
        if (unlink(l->path) == -1)
            log_debug("cannot remove %s: %s", l->path, strerror(errno));
        else if (fd != -1 && unlink(lock) == -1)
            log_debug("cannot remove %s: %s", lock, strerror(errno));
    }
    if (fd != -1)
        close(fd);
}

/*
 * unix_queue: the connections waiting in a unix listening socket's
 * queue, from the kernel's socket diagnostics (what ss -xl shows as
 * Recv-Q), and its length (Send-Q).  Results: 0, or -1.
 */
static int
unix_queue(int fd, unsigned *queued, unsigned *len)
{
    struct {
        struct nlmsghdr nlh;
        struct unix_diag_req req;
    } msg;
    struct sockaddr_nl nl = {.nl_family = AF_NETLINK};
    struct unix_diag_msg *m;
    struct nlmsghdr *h;
    struct rtattr *a;
    char buf[4096];
    struct stat st;
    ssize_t n;
    int s, ret = -1, alen;

    if (fstat(fd, &st) == -1 ||
        (s = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC,
                    NETLINK_SOCK_DIAG)) == -1)
        return -1;
    memset(&msg, 0, sizeof(msg));
    msg.nlh.nlmsg_len = sizeof(msg);
    msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST;
    msg.req.sdiag_family = AF_UNIX;
    msg.req.udiag_states = 1u << 10; /* TCP_LISTEN */
    msg.req.udiag_ino = (uint32_t)st.st_ino;
    msg.req.udiag_show = UDIAG_SHOW_RQLEN;
    msg.req.udiag_cookie[0] = msg.req.udiag_cookie[1] = ~0U;
    if (sendto(s, &msg, sizeof(msg), 0, (struct sockaddr *)&nl, sizeof(nl)) ==
            -1 ||
        /* The kernel answers within sendto(): nothing to wait for. */
        (n = recv(s, buf, sizeof(buf), MSG_DONTWAIT)) <= 0)
        goto out;
    for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
         h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
            break;
        m = NLMSG_DATA(h);
        alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
        for (a = (struct rtattr *)(m + 1); RTA_OK(a, alen);
             a = RTA_NEXT(a, alen)) {
            if (a->rta_type == UNIX_DIAG_RQLEN &&
                RTA_PAYLOAD(a) >= sizeof(struct unix_diag_rqlen)) {
                struct unix_diag_rqlen *q = RTA_DATA(a);

                *queued = q->udiag_rqueue;
                *len = q->udiag_wqueue;
                ret = 0;
            }
        }
    }
out:
    close(s);
    return ret;
}

unsigned
listener_queue(int fd, unsigned *len)
{
    struct sockaddr_storage sa;
    socklen_t salen = sizeof(sa);
    struct tcp_info ti;
    socklen_t tlen = sizeof(ti);
    unsigned q = 0, ignored;

    if (len == NULL)
        len = &ignored;
    *len = 0;
    if (getsockname(fd, (struct sockaddr *)&sa, &salen) == -1)
        return 0;
    if (sa.ss_family == AF_UNIX) {
        unix_queue(fd, &q, len);
    } else if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tlen) == 0) {
        /* For a listening socket: the accept queue, and its length. */
        q = ti.tcpi_unacked;
        *len = ti.tcpi_sacked;
    }
    return q;
}
