/*
 * test_listener.c: where the pool's socket comes from (spawn/core/listener.c):
 * --bind addresses, LISTEN_FDS, an inherited fd 0, stale unix sockets, the
 * lock file beside a unix socket (its kind, its owner, a holder that does
 * not let go), and the option each message names.
 */
#include "../../../spawn/core/listener.c"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "harness.h"

static char err[512];

static void
test_listen_fds(void)
{
    is_int(listener_listen_fds("1", "123", 123), 1, "LISTEN_FDS=1, our pid");
    is_int(listener_listen_fds("2", "123", 123), 2, "LISTEN_FDS=2");
    is_int(listener_listen_fds("1", "124", 123), 0, "another process's");
    is_int(listener_listen_fds(NULL, "123", 123), 0, "no LISTEN_FDS");
    is_int(listener_listen_fds("1", NULL, 123), 0, "no LISTEN_PID");
    is_int(listener_listen_fds("x", "123", 123), -1, "LISTEN_FDS=x");
    is_int(listener_listen_fds("-1", "123", 123), -1, "LISTEN_FDS=-1");
    is_int(listener_listen_fds("1", "12a", 123), -1, "LISTEN_PID=12a");
    is_int(listener_listen_fds("1", "", 123), -1, "LISTEN_PID empty");
    is_int(listener_listen_fds("", "123", 123), -1, "LISTEN_FDS empty");
}

static void
addr_is(const char *spec, int is_unix, const char *host_or_path,
        const char *port)
{
    struct listener_addr a;
    int r = listener_parse_addr(spec, &a, err, sizeof(err));

    if (is_unix)
        ok(r == 0 && a.is_unix && strcmp(a.path, host_or_path) == 0,
           "--bind %s: unix socket %s", spec, host_or_path);
    else
        ok(r == 0 && !a.is_unix && strcmp(a.host, host_or_path) == 0 &&
               strcmp(a.port, port) == 0,
           "--bind %s: tcp '%s' port %s", spec, host_or_path, port);
}

static void
test_parse_addr(void)
{
    static const char *const bad[] = {
        "x.sock", "70000", "0", "host:", "[::1]9000",
        "[::1",   "unix:", ":", "9000x", ""};
    struct listener_addr a;
    char longpath[200];
    size_t i;

    addr_is("9000", 0, "127.0.0.1", "9000");
    addr_is(":9000", 0, "127.0.0.1", "9000");
    addr_is("*:9000", 0, "", "9000");
    addr_is("0.0.0.0:9000", 0, "0.0.0.0", "9000");
    addr_is("localhost:9000", 0, "localhost", "9000");
    addr_is("[::1]:9000", 0, "::1", "9000");
    addr_is("unix:/run/tfb.sock", 1, "/run/tfb.sock", NULL);
    addr_is("unix:tfb.sock", 1, "tfb.sock", NULL);
    addr_is("/run/tfb.sock", 1, "/run/tfb.sock", NULL);
    addr_is("./tfb.sock", 1, "./tfb.sock", NULL);
    /* Longer than port[] once: a stack overflow then. */
    addr_is("127.0.0.1:0000000000000000009000", 0, "127.0.0.1", "9000");
    addr_is("09000", 0, "127.0.0.1", "9000");
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ok(listener_parse_addr(bad[i], &a, err, sizeof(err)) == -1,
           "--bind '%s' is rejected: %s", bad[i], err);
    ok(listener_parse_addr("x.sock", &a, err, sizeof(err)) == -1 &&
           strstr(err, "./x.sock") != NULL,
       "a path without '/' gets a hint");
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    ok(listener_parse_addr(longpath, &a, err, sizeof(err)) == -1,
       "an overlong unix path is rejected");
}

/*
 * test_not_ours: a live socket the caller may not connect to is no stale
 * one: listener_open must leave it be, not remove it and take the path.
 * Run as nobody when we are root (root may connect to anything).
 */
static void
test_not_ours(const char *dir, const char *path)
{
    struct listener_perm perm = {(uid_t)-1, (gid_t)-1, 0600};
    struct listener live, l;
    struct passwd *pw = getpwnam("nobody");
    struct stat before, after;
    int st = -1;
    pid_t pid;

    if (listener_open(&live, path, 16, &perm, err, sizeof(err)) == -1) {
        ok(0, "a live socket: %s", err);
        return;
    }
    lstat(path, &before);
    chmod(dir, 0755); /* nobody may look, not write */
    if (geteuid() != 0)
        chmod(path, 0); /* EACCES for us too */
    fflush(stdout);
    if ((pid = fork()) == 0) {
        if (geteuid() == 0 && (pw == NULL || setgid(pw->pw_gid) == -1 ||
                               setuid(pw->pw_uid) == -1))
            _exit(3);
        _exit(listener_open(&l, path, 16, &perm, err, sizeof(err)) == -1 &&
                      strstr(err, "cannot tell") != NULL
                  ? 0
                  : 1);
    }
    waitpid(pid, &st, 0);
    ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
       "a live socket we may not connect to: refused, cannot tell (%d)",
       WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    ok(lstat(path, &after) == 0 && after.st_ino == before.st_ino,
       "and it is still there, the same socket");
    listener_close(&live);
}

/* test_lock_link: a lock file that is a link is never followed. */
static void
test_lock_link(const char *dir, const char *path)
{
    struct listener_perm perm = {(uid_t)-1, (gid_t)-1, 0600};
    char lock[160], victim[160];
    struct listener l;
    struct stat st;

    snprintf(lock, sizeof(lock), "%s.lock", path);
    snprintf(victim, sizeof(victim), "%s/victim", dir);
    unlink(lock);
    if (symlink(victim, lock) == -1) {
        ok(0, "symlink: %s", strerror(errno));
        return;
    }
    is_int(listener_open(&l, path, 16, &perm, err, sizeof(err)), -1,
           "a lock file that is a link: refused");
    ok(strstr(err, "is a symbolic link") != NULL, "  saying so: %s", err);
    ok(lstat(victim, &st) == -1 && errno == ENOENT,
       "and what it points to is not created (%s)", err);
    unlink(lock);
}

/*
 * bounded_open: listener_open(path) in a child, so that a version that
 * waits for ever fails the check instead of hanging the test: its result
 * and message (in err) within ms, else -2 and the child killed.  *took is
 * how long it took, in ms.
 */
static int
bounded_open(const char *path, int ms, long *took)
{
    struct listener_perm perm = {(uid_t)-1, (gid_t)-1, 0600};
    struct pollfd p = {.events = POLLIN};
    struct listener l;
    int64_t t0;
    int fds[2], r = -2;
    ssize_t n;
    pid_t pid;

    err[0] = '\0';
    if (pipe(fds) == -1)
        return -2;
    fflush(stdout);
    t0 = clock_ms();
    if ((pid = fork()) == 0) {
        close(fds[0]);
        r = listener_open(&l, path, 16, &perm, err, sizeof(err));
        if (r == 0)
            listener_close(&l);
        if (write(fds[1], &r, sizeof(r)) < 0 ||
            write(fds[1], err, strlen(err) + 1) < 0)
            _exit(1);
        _exit(0);
    }
    close(fds[1]);
    p.fd = fds[0];
    if (poll(&p, 1, ms) == 1 && read(fds[0], &r, sizeof(r)) == sizeof(r)) {
        n = read(fds[0], err, sizeof(err) - 1);
        err[n > 0 ? n : 0] = '\0';
    } else {
        snprintf(err, sizeof(err), "no answer within %d ms", ms);
        kill(pid, SIGKILL);
    }
    waitpid(pid, NULL, 0);
    close(fds[0]);
    *took = (long)(clock_ms() - t0);
    return r;
}

/*
 * hold_lock: a process named "lockholder" that holds an exclusive flock
 * on lock until it is killed (or 30 s pass).  Results: its pid, once it
 * holds it, or -1.
 */
static pid_t
hold_lock(const char *lock)
{
    int ready[2], fd;
    pid_t pid;
    char c;

    if (pipe(ready) == -1)
        return -1;
    fflush(stdout);
    if ((pid = fork()) == 0) {
        prctl(PR_SET_NAME, "lockholder");
        fd = open(lock, O_RDONLY | O_CREAT, 0644);
        if (fd == -1 || flock(fd, LOCK_EX) == -1)
            _exit(1);
        if (write(ready[1], "x", 1) < 0)
            _exit(1);
        sleep(30);
        _exit(0);
    }
    close(ready[1]);
    if (read(ready[0], &c, 1) != 1) {
        waitpid(pid, NULL, 0);
        pid = -1;
    }
    close(ready[0]);
    return pid;
}

/*
 * test_lock_held: a lock another process keeps is waited for no longer
 * than LOCK_WAIT_MS, and the message names that process.
 */
static void
test_lock_held(const char *path)
{
    char lock[160], want[64];
    long took;
    pid_t holder;
    int r;

    snprintf(lock, sizeof(lock), "%s.lock", path);
    if ((holder = hold_lock(lock)) == -1) {
        ok(0, "a process holding %s", lock);
        return;
    }
    r = bounded_open(path, LOCK_WAIT_MS + 5000, &took);
    is_int(r, -1, "a lock held by another process: refused, not waited on");
    ok(took >= LOCK_WAIT_MS - 100 && took <= LOCK_WAIT_MS + 1500,
       "  after the %d ms the lock is waited for (%ld ms)", LOCK_WAIT_MS, took);
    snprintf(want, sizeof(want), "held by pid %ld (lockholder)", (long)holder);
    ok(strstr(err, want) != NULL && strstr(err, lock) != NULL,
       "  naming the lock file and its holder: %s", err);
    kill(holder, SIGKILL);
    waitpid(holder, NULL, 0);
    r = bounded_open(path, LOCK_WAIT_MS + 5000, &took);
    ok(r == 0 && took < 1000, "once it is let go: bound (%ld ms) %s", took,
       err);
    unlink(lock);
}

/*
 * test_lock_kinds: a lock file that is no regular file of ours or
 * root's is refused at once: a FIFO (whose plain open would wait for a
 * writer), a directory, a file of another user (as root).
 */
static void
test_lock_kinds(const char *path)
{
    struct passwd *pw = getpwnam("nobody");
    char lock[160];
    long took;
    int fd, r;

    snprintf(lock, sizeof(lock), "%s.lock", path);
    unlink(lock);
    if (mkfifo(lock, 0644) == -1) {
        ok(0, "mkfifo: %s", strerror(errno));
        return;
    }
    r = bounded_open(path, 3000, &took);
    ok(r == -1 && strstr(err, "not a regular file") != NULL && took < 1000,
       "a lock file that is a FIFO: refused at once (%ld ms): %s", took, err);
    unlink(lock);
    mkdir(lock, 0755);
    r = bounded_open(path, 3000, &took);
    ok(r == -1 && strstr(err, lock) != NULL && took < 1000,
       "a lock file that is a directory: refused (%s)", err);
    rmdir(lock);
    if (geteuid() != 0 || pw == NULL)
        return; /* only root can give a file away */
    fd = open(lock, O_RDONLY | O_CREAT, 0644);
    if (fd == -1 || fchown(fd, pw->pw_uid, pw->pw_gid) == -1) {
        ok(0, "a lock file of nobody's: %s", strerror(errno));
    } else {
        r = bounded_open(path, 3000, &took);
        ok(r == -1 && strstr(err, "belongs to uid") != NULL && took < 1000,
           "a lock file of another user: refused at once (%s)", err);
    }
    if (fd != -1)
        close(fd);
    unlink(lock);
}

/* test_what: a socket for another option (--status) is named so. */
static void
test_what(const char *dir)
{
    struct listener_perm perm = {(uid_t)-1, (gid_t)-1, 0600};
    char path[160];
    struct listener l;

    is_int(listener_bind(&l, "--status", "/nonexistent/dir/status.sock", 16,
                         &perm, err, sizeof(err)),
           -1, "a socket in a directory that does not exist: refused");
    ok(strncmp(err, "--status /nonexistent/dir/status.sock", 37) == 0,
       "  the message names --status, not --bind: %s", err);
    is_int(listener_bind(&l, "--status", "x.sock", 16, &perm, err, sizeof(err)),
           -1, "a bad address for --status: refused");
    ok(strncmp(err, "--status x.sock", 15) == 0, "  naming --status: %s", err);
    snprintf(path, sizeof(path), "%s/status.sock", dir);
    ok(listener_bind(&l, "--status", path, 16, &perm, err, sizeof(err)) == 0 &&
           listener_is_listening(l.fd),
       "listener_bind makes the socket (%s)", err);
    listener_close(&l);
    snprintf(path, sizeof(path), "%s/status.sock.lock", dir);
    unlink(path);
}

/*
 * bound_in: a new directory at dir (a mkdtemp template), and l bound by
 * listener_open to unix:DIR/fcgi.sock, its path into path (128 bytes),
 * with perm, as a check.  Results: 0, or -1 when there is no directory.
 */
static int
bound_in(char *dir, char *path, struct listener *l,
         const struct listener_perm *perm)
{
    char spec[160];

    if (temp_dir(dir) == -1)
        return -1;
    snprintf(path, 128, "%s/fcgi.sock", dir);
    snprintf(spec, sizeof(spec), "unix:%s", path);
    is_int(listener_open(l, spec, 16, perm, err, sizeof(err)), 0,
           "bind a unix socket");
    return 0;
}

static void
test_unix(void)
{
    struct listener_perm perm = {(uid_t)-1, (gid_t)-1, 0640};
    struct listener l, l2;
    char dir[] = "/tmp/test_listener.XXXXXX", path[128], spec[160];
    struct stat st;
    int fd;

    if (bound_in(dir, path, &l, &perm) == -1)
        return;
    ok(lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
           (st.st_mode & 0777) == 0640,
       "it has the mode asked for (%o)", (unsigned)(st.st_mode & 0777));
    ok(listener_is_listening(l.fd), "it listens");
    ok(fcntl(l.fd, F_GETFD) & FD_CLOEXEC, "close-on-exec (fd %d)", l.fd);
    is_int(listener_open(&l2, path, 16, &perm, err, sizeof(err)), -1,
           "a second server on the same path is refused");
    ok(strstr(err, "running server") != NULL, "saying why: %s", err);
    listener_close(&l);
    ok(lstat(path, &st) == -1 && errno == ENOENT,
       "listener_close removes the socket");

    /* A stale socket: bound, closed, never unlinked. */
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};

        strcpy(sun.sun_path, path);
        bind(fd, (struct sockaddr *)&sun, sizeof(sun));
        close(fd);
    }
    is_int(listener_open(&l, path, 16, &perm, err, sizeof(err)), 0,
           "a stale socket is replaced");
    listener_close(&l);

    fd = open(path, O_CREAT | O_WRONLY, 0600);
    close(fd);
    is_int(listener_open(&l, path, 16, &perm, err, sizeof(err)), -1,
           "a plain file in the way is refused");
    unlink(path);
    test_not_ours(dir, path);
    test_lock_link(dir, path);
    test_lock_held(path);
    test_lock_kinds(path);
    test_what(dir);
    snprintf(spec, sizeof(spec), "%s.lock", path);
    unlink(spec);
    rmdir(dir);
}

static void
test_tcp(void)
{
    struct listener_perm perm = {(uid_t)-1, (gid_t)-1, 0660};
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    struct listener_addr a;
    struct listener l;
    char spec[32];
    int port = 0, fd = listen_tcp(&port);

    /* A port that was free a moment ago. */
    close(fd);
    snprintf(spec, sizeof(spec), "%d", port);
    is_int(listener_open(&l, spec, 16, &perm, err, sizeof(err)), 0,
           "--bind PORT");
    getsockname(l.fd, (struct sockaddr *)&sin, &len);
    ok(sin.sin_family == AF_INET &&
           sin.sin_addr.s_addr == htonl(INADDR_LOOPBACK),
       "a bare port is bound to 127.0.0.1 only (%s)", l.desc);
    /* --check's way: bound for a moment (backlog -1), never listening. */
    listener_parse_addr(spec, &a, err, sizeof(err));
    ok(listener_tcp("--bind", &a, -1, NULL, 0, err, sizeof(err)) == -1 &&
           strstr(err, spec) != NULL,
       "listener_tcp on a port a server listens on: refused (%s)", err);
    listener_close(&l);
    fd = listener_tcp("--bind", &a, -1, NULL, 0, err, sizeof(err));
    ok(fd != -1 && !listener_is_listening(fd),
       "listener_tcp, backlog -1: bound, not listening (%s)", err);
    if (fd != -1)
        close(fd);
}

static void
test_inherited(void)
{
    struct listener_perm perm = {(uid_t)-1, (gid_t)-1, 0660};
    struct listener l;
    int saved0 = dup(0), sock = listen_tcp(NULL), r;
    char pid[32];

    /* spawn-fcgi's way: the socket is fd 0. */
    dup2(sock, 0);
    fcntl(0, F_SETFD, FD_CLOEXEC);
    r = listener_open(&l, NULL, 16, &perm, err, sizeof(err));
    ok(r == 0 && l.fd == 0, "a listening fd 0 is taken (%s)", err);
    ok(fcntl(0, F_GETFD) == 0, "and left inheritable");

    /* systemd's way: fd 3 and LISTEN_FDS, which then vanish. */
    dup2(sock, 3);
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    setenv("LISTEN_FDS", "1", 1);
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDNAMES", "tfb", 1);
    r = listener_open(&l, NULL, 16, &perm, err, sizeof(err));
    ok(r == 0 && l.fd == 3, "LISTEN_FDS=1 wins over fd 0 (%s)", err);
    ok(getenv("LISTEN_FDS") == NULL && getenv("LISTEN_PID") == NULL &&
           getenv("LISTEN_FDNAMES") == NULL,
       "LISTEN_* are removed from the environment");
    ok(fcntl(3, F_GETFD) & FD_CLOEXEC, "fd 3 is close-on-exec");

    setenv("LISTEN_FDS", "1", 1);
    setenv("LISTEN_PID", "1", 1);
    r = listener_open(&l, NULL, 16, &perm, err, sizeof(err));
    ok(r == 0 && l.fd == 0, "LISTEN_FDS for another pid is ignored");
    close(3);

    /* Nothing at all. */
    dup2(saved0, 0);
    close(saved0);
    close(sock);
    if (!listener_is_listening(0)) {
        r = listener_open(&l, NULL, 16, &perm, err, sizeof(err));
        ok(r == -1 && strstr(err, "--bind") != NULL,
           "no socket anywhere: an error that says what to do (%s)", err);
    }
}

/*
 * test_lock_removed: listener_close removes PATH.lock with the socket;
 * a server that opened the lock file before that and got its lock after
 * opens the path again (lock_fresh), so that two servers never hold
 * locks on two different files for one path.
 */
static void
test_lock_removed(void)
{
    struct listener_perm perm = {(uid_t)-1, (gid_t)-1, 0600};
    char dir[] = "/tmp/test_listener_lock.XXXXXX", path[128], lock[160];
    struct stat st, held, named;
    struct listener l;
    int fd, ws = 0, mine;
    pid_t pid;

    if (bound_in(dir, path, &l, &perm) == -1)
        return;
    snprintf(lock, sizeof(lock), "%s.lock", path);
    listener_close(&l);
    ok(lstat(path, &st) == -1 && lstat(lock, &st) == -1 && errno == ENOENT,
       "listener_close removes the socket and its PATH.lock");

    /* A holder, a waiter on the same file, then the file removed. */
    fd = open(lock, O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd == -1 || flock(fd, LOCK_EX) == -1) {
        ok(0, "lock %s: %s", lock, strerror(errno));
        return;
    }
    fflush(stdout);
    if ((pid = fork()) == 0) {
        alarm(5);  /* a wait without end fails the check, not the run */
        close(fd); /* our copy would hold the parent's lock too */
        mine = lock_fresh("--bind", path, err, sizeof(err));
        _exit(mine != -1 && fstat(mine, &held) == 0 &&
                      lstat(lock, &named) == 0 && held.st_ino == named.st_ino
                  ? 0
                  : 1);
    }
    sleep_ms(200);
    unlink(lock); /* as listener_close does, under the lock */
    close(fd);    /* and lets go */
    waitpid(pid, &ws, 0);
    ok(WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
       "a server that waited on a lock file removed since holds the one at "
       "the path (%#x)",
       (unsigned)ws);
    unlink(lock);
    rmdir(dir);
}

int
main(void)
{
    log_init("test_listener", LOG_ERR);
    test_lock_removed();
    test_listen_fds();
    test_parse_addr();
    test_unix();
    test_tcp();
    test_inherited();
    return done_testing();
}
