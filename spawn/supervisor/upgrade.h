/*
 * upgrade.h: what tfb-spawn hands its next image on SIGUSR2.
 *
 * SIGUSR2 re-executes the supervisor in place, the way gunicorn and nginx
 * upgrade their binary, but without a second master: the same pid (the
 * pid file and systemd stay right), the binary now at the path we were
 * started from, the argv we were started with, our environment.  What
 * must survive the exec crosses it as inherited descriptors, named by one
 * variable the old image sets and the new one reads and removes before
 * anything else can see it:
 *
 *     TFB_SPAWN_UPGRADE=pid=4242,listen=0:0:0,status=5:64769:1234,sb=6,target=4
 *
 *   pid      the process it is for: ours after the exec (it is the same
 *            pid), or, for the dry run (tfb-spawn --check) the old image
 *            runs first, its parent's
 *   listen   the listening socket: fd, and the device and inode of the
 *            socket file we bound (0:0 when it was inherited: not ours
 *            to remove); the new image neither unlinks nor binds it again
 *   status   the status page's socket, the same way (fd -1: none)
 *   sb       the scoreboard, whose slots name the workers that keep
 *            running through the exec, to be adopted, then replaced one
 *            at a time as SIGHUP does
 *   target   the pool's size, as SIGTTIN and SIGTTOU left it
 *
 * Pure functions, but for upgrade_take, which reads the environment.
 */
#ifndef UPGRADE_H
#define UPGRADE_H

#include <stddef.h>
#include <sys/types.h>

#define UPGRADE_ENV "TFB_SPAWN_UPGRADE"

/* A socket handed over: fd -1 for none; dev and ino 0 when it was
 * inherited, not bound by us. */
struct upgrade_sock {
    int fd;
    dev_t dev;
    ino_t ino;
};

struct upgrade {
    long pid;
    struct upgrade_sock listen, status;
    int sb_fd; /* -1: none */
    int target;
};

/*
 * upgrade_format: "NAME=VALUE" for execve()'s environment, into buf.
 * Results: 0, or -1 when it does not fit.
 */
int upgrade_format(const struct upgrade *u, char *buf, size_t len);

/*
 * upgrade_parse: the value (after "NAME=").  Every field is checked: a
 * number where a number goes, fds in [0, 65535], target in [1, 65536].
 * Results: 0, or -1 with a message in err.
 */
int upgrade_parse(const char *s, struct upgrade *u, char *err, size_t errlen);

/*
 * upgrade_take: the handoff in our environment, removed from it either
 * way.  A handoff for another pid (one a process we started inherited by
 * mistake) is no handoff; for_check accepts our parent's (the dry run).
 * Results: 1 and *u filled, 0 when there is none for us, -1 when it is
 * malformed (err set).
 */
int upgrade_take(struct upgrade *u, int for_check, char *err, size_t errlen);

#endif
