/*
 * listener.h: the pool's one listening socket.
 *
 * The socket is found or made once, before any worker is forked, and each
 * worker gets it as its fd 0, where libfcgi looks (FCGI_LISTENSOCK_FILENO).
 * Where it comes from, first match wins:
 *
 *   1. --bind ADDR: we bind it, a unix socket PATH or [HOST:]PORT over TCP;
 *   2. LISTEN_FDS=1 with LISTEN_PID=<our pid>: systemd's socket activation
 *      (and systemd-socket-activate), the socket being fd 3;
 *   3. fd 0, if it is a listening stream socket: spawn-fcgi, or systemd's
 *      StandardInput=socket.
 *
 * LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES are removed from the
 * environment in every case, so that no worker mistakes them for its own.
 */
#ifndef LISTENER_H
#define LISTENER_H

#include <stddef.h>
#include <sys/types.h>

#define LISTENER_PATH_MAX 108 /* sizeof(sun_path) on Linux */

struct listener {
    int fd;         /* the listening socket, blocking */
    char desc[160]; /* where it came from, for the log */
    /* A unix socket we bound, unlinked by listener_close if still ours. */
    char path[LISTENER_PATH_MAX];
    dev_t dev;
    ino_t ino;
};

/* What a unix socket made by --bind looks like; -1 ids leave it alone. */
struct listener_perm {
    uid_t uid;
    gid_t gid;
    int mode;
};

/*
 * listener_open: find or make the socket as above (--bind through
 * listener_bind below).  backlog and perm only matter for --bind.  Results: 0,
 * or -1 with a message a user can act on in err.  The fd is close-on-exec
 * unless it is fd 0.
 */
int listener_open(struct listener *l, const char *bind, int backlog,
                  const struct listener_perm *perm, char *err, size_t errlen);

/*
 * listener_bind: make the socket at addr (as --bind takes it), whatever
 * the environment holds; what names the option it came from ("--bind",
 * "--status") in every message.  A unix socket is made under an exclusive
 * lock on PATH.lock, a regular file that we or root own (anything else is
 * refused), waited for at most 3 s; past that the message names the
 * process holding it (pid and command name).  Results: 0, or -1 with err
 * set.  The fd is close-on-exec.
 */
int listener_bind(struct listener *l, const char *what, const char *addr,
                  int backlog, const struct listener_perm *perm, char *err,
                  size_t errlen);

/*
 * listener_close: close it; the unix socket we bound is unlinked if it
 * is still ours, and its PATH.lock with it, under that lock.
 */
void listener_close(struct listener *l);

/* An address for --bind, split. */
struct listener_addr {
    int is_unix;
    char path[LISTENER_PATH_MAX]; /* is_unix */
    char host[256];               /* "" means every address */
    char port[8];
};

/*
 * listener_parse_addr: "unix:PATH" or anything with a '/' is a unix
 * socket; "PORT", ":PORT" and "HOST:PORT" are TCP, HOST defaulting to
 * 127.0.0.1, "*" meaning every address, "[v6]:PORT" for IPv6.
 * Results: 0, or -1 with err set.
 */
int listener_parse_addr(const char *spec, struct listener_addr *a, char *err,
                        size_t errlen);

/*
 * listener_listen_fds: sd_listen_fds(3)'s test.  Results: the number of
 * sockets passed to pid self from the values of LISTEN_FDS and LISTEN_PID
 * (either may be NULL), 0 when none or they are for another process, -1
 * when they are malformed.
 */
int listener_listen_fds(const char *fds, const char *pid, long self);

/* listener_is_listening: fd is a stream socket in the listening state. */
int listener_is_listening(int fd);

/*
 * listener_probe_unix: what is at path, for a server about to bind it
 * there.  Only a refused connection means nobody listens: any other
 * failure (no permission to connect, say) tells nothing, and the path is
 * not ours to take.  Nothing is made or removed.  Results: 0 when nothing
 * is there, 1 when a stale socket is (a server that died left it), or -1
 * with err set (what names the option): something else is there, a
 * server answers on it, or we cannot tell.
 */
int listener_probe_unix(const char *what, const char *path, char *err,
                        size_t errlen);

/*
 * listener_tcp: a socket (close-on-exec) bound to the first of a's
 * addresses that takes it, as --bind would, and listening with backlog;
 * a backlog below 0 binds only, for a check that lets it go at once.
 * host, when not NULL, receives the address bound, numeric.  Results: the
 * fd, or -1 with err set (what names the option).
 */
int listener_tcp(const char *what, const struct listener_addr *a, int backlog,
                 char *host, size_t hostlen, char *err, size_t errlen);

/*
 * listener_queue: the connections waiting in listening socket fd's accept
 * queue now, as the kernel counts them (a unix socket's through netlink's
 * socket diagnostics, a TCP socket's through TCP_INFO), and the queue's
 * length into *len (NULL allowed; 0 when the kernel does not say).
 * Results: the count, 0 when it cannot be read.  A few system calls, no
 * wait: the supervisor samples it every 100 ms, the status page on each
 * request.
 */
unsigned listener_queue(int fd, unsigned *len);

#endif
