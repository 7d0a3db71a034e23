/*
 * pg.h: a throwaway PostgreSQL cluster for one unit test program.
 *
 * The database tests run against a real server, started the way the rest
 * of the project starts one: deploy/stack, with VAR pointing at a new
 * directory under /tmp (as root, PostgreSQL runs as "postgres", which
 * can reach /tmp).  deploy/stack initdb's it, starts it on a unix socket
 * in $VAR/run and loads deploy/sql; "deploy/stack env" gives the PG*
 * variables, which pg_start() puts in the environment, so that libpq
 * (and db_new(NULL, ...)) find it.
 *
 * The cluster is stopped and its directory removed when the program
 * exits, whatever way: a keeper process forked before the start waits
 * on a pipe that only this process holds; exit() (through atexit) closes
 * it and waits for the keeper, a crash or a signal closes it too.  The
 * keeper ignores SIGINT and SIGTERM, which a terminal or timeout(1) send
 * the whole process group.  Only one cluster per program.
 *
 * pg_signal() stops the whole server (SIGSTOP), as a server or a network
 * that stopped answering looks to a client, and resumes it (SIGCONT).  The
 * keeper resumes it before it stops it, so that a test that fails, or
 * dies, between the two never leaves a frozen cluster behind.
 *
 * pg_peer() starts it and opens the test's own connection to it, peer,
 * on which q_long() reads a number and random_number() a World row, so
 * that what the code under test read can be compared with the database;
 * q_text() reads a value as text on any connection.
 */
#ifndef PG_H
#define PG_H

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static char pg_var[64];
static char pg_stack_path[PATH_MAX];
static pid_t pg_keeper = -1, pg_owner = -1;
static int pg_keeper_fd = -1;

/*
 * pg_run: run argv with VAR=pg_var, its output into out (NUL-terminated,
 * NULL: dropped).  Results: its exit status, or -1.
 */
static int
pg_run(char *const argv[], char *out, size_t outlen)
{
    int p[2], st = 0, fd;
    size_t n = 0;
    ssize_t r;
    pid_t pid;

    if (pipe(p) == -1)
        return -1;
    fflush(stdout);
    if ((pid = fork()) == -1) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        /* Nothing but 0, 1 and 2 for it: the server it starts keeps what
         * it inherits, and our pipe must see EOF when the script ends. */
        fd = open("/dev/null", O_RDONLY);
        dup2(fd, STDIN_FILENO);
        dup2(p[1], STDOUT_FILENO);
        dup2(p[1], STDERR_FILENO);
        if (fd > STDERR_FILENO)
            close(fd);
        close(p[0]);
        close(p[1]);
        setenv("VAR", pg_var, 1);
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    for (;;) {
        char sink[512];

        if (out != NULL && n < outlen - 1)
            r = read(p[0], out + n, outlen - 1 - n);
        else
            r = read(p[0], sink, sizeof(sink));
        if (r <= 0)
            break;
        if (out != NULL && n < outlen - 1)
            n += (size_t)r;
    }
    if (out != NULL)
        out[n] = '\0';
    close(p[0]);
    while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
        continue;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*
 * pg_stack: deploy/stack with up to two arguments ("pg", "stop") on the
 * test's VAR.  Results: its exit status; its output as TAP comments when
 * that is not 0.
 */
static int
pg_stack(const char *a, const char *b)
{
    char out[4096], arg1[32], arg2[32], *line;
    char *argv[] = {pg_stack_path, arg1, b ? arg2 : NULL, NULL};
    int rc;

    snprintf(arg1, sizeof(arg1), "%s", a);
    snprintf(arg2, sizeof(arg2), "%s", b ? b : "");
    rc = pg_run(argv, out, sizeof(out));
    if (rc != 0)
        for (line = strtok(out, "\n"); line; line = strtok(NULL, "\n"))
            printf("# deploy/stack %s %s: %s\n", a, b ? b : "", line);
    return rc;
}

/* pg_cleanup: at exit, in the program that started the cluster only (a
 * forked child's exit must not stop it). */
static void
pg_cleanup(void)
{
    if (getpid() != pg_owner || pg_keeper == -1)
        return;
    close(pg_keeper_fd);
    while (waitpid(pg_keeper, NULL, 0) == -1 && errno == EINTR)
        continue;
    pg_keeper = -1;
}

/*
 * pg_signal: sig to every process of the cluster: the postmaster (the
 * first line of its postmaster.pid) first, so that it forks nothing
 * unseen, then its children (backends and auxiliary processes).
 * Results: how many processes were signalled, or -1.
 */
static int
pg_signal(int sig)
{
    char path[PATH_MAX], line[32];
    pid_t kids[256];
    FILE *fp;
    long pm = 0;
    int n, i;

    snprintf(path, sizeof(path), "%s/pg/data/postmaster.pid", pg_var);
    if ((fp = fopen(path, "r")) == NULL)
        return -1;
    if (fgets(line, sizeof(line), fp) != NULL)
        pm = strtol(line, NULL, 10);
    fclose(fp);
    if (pm <= 1 || kill((pid_t)pm, sig) == -1)
        return -1;
    n = proc_children((pid_t)pm, kids, 256);
    for (i = 0; i < n && i < 256; i++)
        kill(kids[i], sig);
    return 1 + n;
}

/* pg_keep: the keeper's life: wait for EOF, resume, stop, remove. */
static _Noreturn void
pg_keep(int fd)
{
    char rm[] = "/bin/rm", rf[] = "-rf", c;
    char *argv[] = {rm, rf, pg_var, NULL};

    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    while (read(fd, &c, 1) == -1 && errno == EINTR)
        continue;
    pg_signal(SIGCONT);
    pg_stack("stop", NULL);
    pg_run(argv, NULL, 0);
    _exit(0);
}

/*
 * pg_root: the repository, found from this file's path (relative to the
 * directory the compiler ran in, the root for the Makefile) or, when the
 * program runs from elsewhere, above the program itself.
 */
static int
pg_root(char *root, size_t len)
{
    char path[PATH_MAX], *slash;
    const char *self = __FILE__;
    ssize_t n;

    /* __FILE__ is ".../tests/pg.h": two levels up. */
    snprintf(path, sizeof(path), "%s", self);
    if ((slash = strrchr(path, '/')) != NULL)
        *slash = '\0';
    if ((slash = strrchr(path, '/')) != NULL)
        *slash = '\0';
    else
        snprintf(path, sizeof(path), ".");
    if (snprintf(root, len, "%s/deploy/stack", path) < (int)len &&
        access(root, X_OK) == 0)
        return 0;
    if ((n = readlink("/proc/self/exe", path, sizeof(path) - 1)) <= 0)
        return -1;
    path[n] = '\0';
    while ((slash = strrchr(path, '/')) != NULL && slash != path) {
        *slash = '\0';
        if (snprintf(root, len, "%s/deploy/stack", path) < (int)len &&
            access(root, X_OK) == 0)
            return 0;
    }
    return -1;
}

/* pg_clear_env: no PG* variable of the caller's may point elsewhere. */
static void
pg_clear_env(void)
{
    extern char **environ;
    char name[128];
    size_t len;
    int again = 1, i;

    while (again) {
        again = 0;
        for (i = 0; environ[i] != NULL; i++) {
            if (strncmp(environ[i], "PG", 2) != 0)
                continue;
            len = strcspn(environ[i], "=");
            snprintf(name, sizeof(name), "%.*s", (int)len, environ[i]);
            unsetenv(name);
            again = 1;
            break;
        }
    }
}

/*
 * pg_start: a new cluster, loaded, with PGHOST, PGPORT, PGUSER and
 * PGDATABASE pointing at it.  Results: 0, or -1 with why as TAP comments.
 */
static int
pg_start(void)
{
    char out[4096], name[64], *line, *eq, env[] = "env";
    char *argv[] = {pg_stack_path, env, NULL};
    int p[2];

    if (pg_root(pg_stack_path, sizeof(pg_stack_path)) == -1) {
        printf("# pg.h: deploy/stack not found\n");
        return -1;
    }
    snprintf(pg_var, sizeof(pg_var), "/tmp/tfb-unit-pg.XXXXXX");
    /* The server's own account must reach it when we are root. */
    if (mkdtemp(pg_var) == NULL || chmod(pg_var, 0755) == -1) {
        printf("# pg.h: %s: %s\n", pg_var, strerror(errno));
        return -1;
    }
    if (pipe(p) == -1)
        return -1;
    fflush(stdout);
    if ((pg_keeper = fork()) == 0) {
        close(p[1]);
        pg_keep(p[0]);
    }
    close(p[0]);
    if (pg_keeper == -1) {
        rmdir(pg_var);
        return -1;
    }
    fcntl(p[1], F_SETFD, FD_CLOEXEC);
    pg_keeper_fd = p[1];
    pg_owner = getpid();
    atexit(pg_cleanup);

    pg_clear_env();
    if (pg_stack("pg", "start") != 0 || pg_run(argv, out, sizeof(out)) != 0)
        return -1;
    /* Lines "export NAME=VALUE"; the values are paths and words. */
    for (line = strtok(out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (strncmp(line, "export ", 7) != 0 ||
            (eq = strchr(line, '=')) == NULL ||
            strpbrk(eq, "'\"\\$ ") != NULL) {
            printf("# pg.h: cannot read deploy/stack env: %s\n", line);
            return -1;
        }
        snprintf(name, sizeof(name), "%.*s", (int)(eq - line - 7), line + 7);
        setenv(name, eq + 1, 1);
    }
    if (getenv("PGHOST") == NULL) {
        printf("# pg.h: deploy/stack env gave no PGHOST\n");
        return -1;
    }
    return 0;
}

/* peer: the test's own connection to the cluster, made by pg_peer(). */
static PGconn *peer;

/*
 * pg_peer: pg_start(), then peer.  Results: 0, or -1 with why as TAP
 * comments.
 */
__attribute__((unused)) static int
pg_peer(void)
{
    if (pg_start() == -1)
        return -1;
    peer = PQconnectdb("");
    if (PQstatus(peer) == CONNECTION_OK)
        return 0;
    printf("# pg.h: the test's own connection: %s", PQerrorMessage(peer));
    return -1;
}

/*
 * q_text: the single value a statement on conn returns (param: its $1, or
 * NULL), as text that lasts until the next call, or "" when it returns no
 * single value, its error (if any) as a TAP comment.
 */
__attribute__((unused)) static const char *
q_text(PGconn *conn, const char *sql, const char *param)
{
    static char text[256];
    const char *values[1] = {param};
    PGresult *res =
        PQexecParams(conn, sql, param != NULL, NULL, values, NULL, NULL, 0);

    text[0] = '\0';
    if (PQresultStatus(res) != PGRES_TUPLES_OK &&
        PQresultStatus(res) != PGRES_COMMAND_OK)
        printf("# %s: %s", sql, PQresultErrorMessage(res));
    else if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
        snprintf(text, sizeof(text), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return text;
}

/* q_long: q_text on peer, a number, or -1 when there is none. */
__attribute__((unused)) static long
q_long(const char *sql, const char *param)
{
    const char *text = q_text(peer, sql, param);

    return *text != '\0' ? atol(text) : -1;
}

__attribute__((unused)) static long
q_long_int(const char *sql, long param)
{
    char text[32];

    snprintf(text, sizeof(text), "%ld", param);
    return q_long(sql, text);
}

/*
 * random_number: World row id's number, by a statement worded unlike the
 * handle's ("SELECT id, randomnumber FROM world..."), so that
 * pg_stat_statements counts it apart from what the code under test ran.
 */
__attribute__((unused)) static long
random_number(int32_t id)
{
    return q_long_int("SELECT randomnumber AS r FROM world WHERE id = $1", id);
}

#endif
