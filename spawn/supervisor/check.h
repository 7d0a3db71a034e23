/*
 * check.h: tfb-spawn --check, php-fpm -t's and nginx -t's counterpart:
 * would the pool start with these options?  main.c runs the start-up's
 * own checks (the options, the users, the worker's command) and then
 * these, which look at the paths and the sockets without making, binding
 * or opening anything for writing, so that a check leaves no trace and
 * can run beside the pool it checks.
 *
 * Each returns 0, or -1 with a message a user can act on in err; what
 * names the option ("--pid-file") in it.
 */
#ifndef CHECK_H
#define CHECK_H

#include <stddef.h>

struct upgrade_sock;

/*
 * check_file: a file the pool would create or append to (pid file, log
 * file): if it exists, not a link, and a regular file (or, for a log, a
 * character device such as /dev/null) we may write; else a directory that
 * exists and where we may create it.
 */
int check_file(const char *what, const char *path, char *err, size_t errlen);

/*
 * check_bind: addr (as --bind takes it) could be bound now: a unix
 * socket's directory exists and takes a new file, and nothing but a stale
 * socket (nothing answers on it: it would be replaced) is at the path; a
 * TCP address is bound for a moment and let go.  desc says what was
 * checked, for the success line.
 */
int check_bind(const char *what, const char *addr, char *desc, size_t desclen,
               char *err, size_t errlen);

/*
 * check_inherited: without --bind, the socket the pool would serve: the
 * one handed over (handed, not NULL: a dry run of SIGUSR2), systemd's
 * LISTEN_FDS, or fd 0, as listener.h finds it; it must be listening.
 */
int check_inherited(const struct upgrade_sock *handed, char *desc,
                    size_t desclen, char *err, size_t errlen);

#endif
