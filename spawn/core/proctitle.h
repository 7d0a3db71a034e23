/*
 * proctitle.h: the process's title in ps, top and /proc/PID/cmdline.
 *
 *     tfb-spawn: supervisor
 *     tfb-spawn: status
 *     tfb-fcgi: worker 3
 *
 * nginx's ngx_setproctitle() way: the title is written over the memory
 * that held argv's strings, and the environment's after them, so the
 * environment is first copied to the heap (environ then points there, and
 * getenv() keeps working).  The strings of argv are lost in the process:
 * proctitle_init returns a copy for the program to parse, and to
 * re-execute with.  /proc/PID/comm, which pgrep, deploy/lib and the tests
 * match, is set apart with prctl(PR_SET_NAME) to the program's name, so
 * that it stays "tfb-spawn" or "tfb-fcgi" whatever the binary was called
 * (tfb-spawn.new during an upgrade); /proc/PID/exe is untouched.
 */
#ifndef PROCTITLE_H
#define PROCTITLE_H

/*
 * proctitle_init: call first in main(), before anything reads argv or
 * the environment and keeps a pointer into them (getopt's optarg,
 * getenv's result).  name becomes the comm (15 bytes at most).
 * Results: a copy of argv (argc strings and a NULL) on the heap, for
 * good; argv itself when memory runs out, and the title then stays.
 */
char **proctitle_init(int argc, char **argv, const char *name);

/*
 * proctitle_set: the title, cut to the room argv and the environment
 * had.  Does nothing before proctitle_init.
 */
void proctitle_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
