/*
 * log.h: one logger for the responder and the supervisor.
 *
 * Each line goes to stderr in one write(2), so that lines from the workers
 * of a pool sharing one log file never interleave:
 *
 *     2026-11-25T20:31:07Z tfb-fcgi[1234] warn: db: connection lost
 *
 * A warning or an error the same as the one before it, word for word, is
 * counted rather than written again, for a minute at most: then, or when
 * another line comes, or at exit, it is written once more with
 * "(repeated N times in the last M s)".  Tabs, carriage returns and
 * newlines in a message become spaces.
 *
 * Nothing here allocates; none of it may be called from a signal handler.
 */
#ifndef LOG_H
#define LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERR };

/* The levels' names, in the enum's order, NULL-terminated: "debug"... */
extern const char *const log_level_names[];

/* log_init: name the program in every line; lines below min are dropped. */
void log_init(const char *progname, enum log_level min);

void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * log_open_file: open path for appending (creating it 0640) and make it
 * fd 2, where the log goes; a worker started after this inherits it.
 * Results: 0, or -1 with errno set and fd 2 unchanged.
 */
int log_open_file(const char *path);

/* log_flush: write the count of a line repeated since it was last
 * written, if any (it runs at exit too). */
void log_flush(void);

/* log_fatal: log at LOG_ERR and exit(status).  For start-up errors only. */
_Noreturn void log_fatal(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)

#endif
