/*
 * exitcode.h: what the exit status of a pool process means, to whoever
 * started it: the supervisor (tfb-spawn) reading a worker's, and systemd
 * or a shell reading the supervisor's.  nginx's master reads its workers'
 * the same way.
 */
#ifndef EXITCODE_H
#define EXITCODE_H

#include <stdlib.h>

#define EXITCODE_OK EXIT_SUCCESS
/* A system error: trying again may help. */
#define EXITCODE_ERROR EXIT_FAILURE
/* A configuration error: restarting cannot fix it, so do not. */
#define EXITCODE_CONFIG 2

#endif
