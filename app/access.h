/*
 * access.h: the worker's access log (--access-log), one line per request.
 *
 *   - - - [02/Dec/2026:04:27:00 +0000] "GET /queries?queries=20" 200 1234
 *     read_us=12 db_us=345 app_us=20 write_us=8 total_us=385
 *
 * (one line): the Common Log Format's fields, "-" for the client, ident
 * and user (the front server logs those), the request's method and path
 * with its query, the status and the body's bytes; then the phases of the
 * request in microseconds (spawn/core/scoreboard.h's: reading, database,
 * the application's own code, writing) and their total.  What a client
 * chose (the path, the query, the method) is escaped: a double quote and
 * a backslash get a backslash, other bytes outside printable ASCII become
 * \xHH, so that a line is one line and its quotes are ours.
 *
 * Writing never holds the worker's loop for long: the lines gather in a
 * buffer of ACCESS_BUF bytes, written in one write(2) when it is three
 * quarters full, when its oldest line is ACCESS_FLUSH_MS old (the loop
 * asks access_due_ms how long it may sleep, and calls access_tick), and
 * at access_close.  The file is opened O_NONBLOCK (a pipe or a FIFO does
 * not block us; a regular file takes what it is given): what a write
 * does not take stays buffered, and a line that finds no room is dropped
 * and counted (access_dropped), as are the lines of a write that fails (a
 * full disk); the log says when lines begin to be dropped and when the
 * writes work again, with the count.  A worker killed outright loses the
 * lines of its last second.
 */
#ifndef ACCESS_H
#define ACCESS_H

#include <stddef.h>
#include <stdint.h>

#define ACCESS_BUF 65536
#define ACCESS_FLUSH_MS 1000

struct access_log;

/* What one line says of its request. */
struct access_entry {
    const char *method; /* NULL: "-" */
    const char *path;   /* path[0, path_len) */
    size_t path_len;
    const char *query; /* NULL or "": none */
    int status;        /* HTTP status */
    size_t bytes;      /* of the body */
    uint32_t us[4];    /* reading, database, app, writing */
};

/*
 * access_open: the log at path, appended to (created 0640, never through
 * a symbolic link), or "-": the process's standard output.
 * Results: the log, or NULL with a message in err.
 */
struct access_log *access_open(const char *path, char *err, size_t errlen);

/* access_line: one request's line, buffered; log may be NULL (off). */
void access_line(struct access_log *log, const struct access_entry *e);

/*
 * access_due_ms: how long until the buffer must be written, in ms (0:
 * now); -1 when it holds nothing, or log is NULL.
 */
int64_t access_due_ms(const struct access_log *log);

/* access_tick: write the buffer if it is due (see access_due_ms). */
void access_tick(struct access_log *log);

/*
 * access_reopen: write what is buffered, then open the path again
 * (logrotate moved the file: SIGUSR1).  Results: 0, or -1 (logged; the
 * old file stays in use).  "-" is not reopened.
 */
int access_reopen(struct access_log *log);

/* access_dropped: the lines dropped so far. */
uint64_t access_dropped(const struct access_log *log);

/* access_close: write what is buffered, close, free; NULL is allowed. */
void access_close(struct access_log *log);

#endif
