/*
 * proctitle.c: the process's title; see proctitle.h.
 *
 * The kernel shows /proc/PID/cmdline as the bytes from argv[0]'s start to
 * the end of the original argv area, or, when the last of those bytes is
 * no longer a NUL (the title ran into the environment's room), up to the
 * title's first NUL.  So the title is written NUL-terminated and the rest
 * of the room filled with NULs: readers see the title and nothing else.
 */
#define _GNU_SOURCE
#include "proctitle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

extern char **environ;

/* The room: from argv[0] to the end of the last string it holds. */
static char *room;
static size_t room_len;
/* The copy of argv, held for the process's life, where a leak checker
 * sees it held (volatile: a store never read back is not optimised away). */
static char **volatile argv_copy;
static char *volatile env_copy;

/*
 * move_environ: copy the environment strings that lie in the room (each
 * right after the previous one) to one block on the heap, repoint
 * environ's entries at the copies, and return where the room ends.  One
 * block, held in env_copy, so that it stays reachable when unsetenv()
 * drops an entry (the upgrade's variables go that way).  Without memory
 * for it the room ends at argv's last string.
 */
static char *
move_environ(char *end)
{
    char *p = end, *block;
    size_t i, n;

    for (n = 0; environ[n] != NULL && environ[n] == p + 1; n++)
        p = environ[n] + strlen(environ[n]);
    /* From end + 1 to the last string's NUL at p. */
    if (n == 0 || (block = malloc((size_t)(p - end))) == NULL)
        return end;
    memcpy(block, end + 1, (size_t)(p - end));
    for (i = 0; i < n; i++)
        environ[i] = block + (environ[i] - (end + 1));
    env_copy = block;
    return p;
}

char **
proctitle_init(int argc, char **argv, const char *name)
{
    char **copy, *end;
    int i;

    prctl(PR_SET_NAME, name, 0, 0, 0);
    if (argc < 1 || argv[0] == NULL ||
        (copy = calloc((size_t)argc + 1, sizeof(*copy))) == NULL)
        return argv;
    end = argv[0] + strlen(argv[0]);
    for (i = 0; i < argc; i++) {
        if ((copy[i] = strdup(argv[i])) == NULL) {
            while (i-- > 0)
                free(copy[i]);
            free(copy);
            return argv;
        }
        if (i > 0 && argv[i] == end + 1)
            end = argv[i] + strlen(argv[i]);
    }
    end = move_environ(end);
    room = argv[0];
    room_len = (size_t)(end - argv[0]) + 1;
    /* Only our copy is to be read from now on. */
    argv[1] = NULL;
    argv_copy = copy;
    return copy;
}

void
proctitle_set(const char *fmt, ...)
{
    va_list ap;
    int n;

    if (room == NULL)
        return;
    va_start(ap, fmt);
    n = vsnprintf(room, room_len, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n + 1 < room_len)
        memset(room + n, 0, room_len - (size_t)n - 1);
}
