/*
 * main.c: tfb-spawn, the process manager of the tfb-fcgi pool.
 *
 *     spawn-fcgi -s /run/tfb.sock -n -- tfb-spawn -w 4 -- tfb-fcgi
 *     tfb-spawn --bind 127.0.0.1:9000 --user www-data
 *
 * Start-up reads top to bottom: options, the log file, the worker to run,
 * the pid file, the listening socket, the privilege drop, and only then
 * the supervisor, which forks the workers.  Every error up to there is
 * fatal with status 2 ("configuration: do not restart me"), before any
 * worker exists.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <linux/close_range.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "exitcode.h"
#include "listener.h"
#include "log.h"
#include "pool.h"
#include "status.h"
#include "supervisor.h"

#define PROGNAME "tfb-spawn"
#define WORKER_NAME "tfb-fcgi"

/* The ids of --user/--group and of the socket's owner; -1: unchanged. */
struct ids {
    uid_t uid;
    gid_t gid;
    struct listener_perm sock;
};

/*
 * std_fds: fds 0, 1 and 2 open, on /dev/null if need be, so that no
 * socket or file we open later becomes someone's stdin or stderr.
 */
static void
std_fds(void)
{
    int fd;

    for (fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) == -1 && errno == EBADF &&
            open("/dev/null", O_RDWR) != fd)
            exit(EXITCODE_ERROR);
}

/*
 * cloexec_inherited: fds above 2 that we were started with (a shell's, a
 * test runner's) stay open here but do not leak into the workers.  The
 * listening socket and the scoreboard set their own flags after this.
 */
static void
cloexec_inherited(void)
{
    int fd;

    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
        return;
    for (fd = 3; fd < 1024; fd++) /* kernels before 5.11 */
        fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static void
lookup_user(const char *name, uid_t *uid, gid_t *gid)
{
    struct passwd *pw;

    errno = 0;
    if ((pw = getpwnam(name)) == NULL)
        log_fatal(EXITCODE_CONFIG, "no such user: %s", name);
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
}

static gid_t
lookup_group(const char *name)
{
    struct group *gr;

    if ((gr = getgrnam(name)) == NULL)
        log_fatal(EXITCODE_CONFIG, "no such group: %s", name);
    return gr->gr_gid;
}

/*
 * resolve_ids: spawn-fcgi's rules: the socket belongs to --socket-user
 * (else --user) and --socket-group (else --group, else that user's
 * primary group).
 */
static void
resolve_ids(const struct config *cfg, struct ids *ids)
{
    uid_t uid;
    gid_t gid;

    ids->uid = (uid_t)-1;
    ids->gid = (gid_t)-1;
    ids->sock.uid = (uid_t)-1;
    ids->sock.gid = (gid_t)-1;
    ids->sock.mode = cfg->socket_mode;
    if (cfg->user != NULL) {
        lookup_user(cfg->user, &ids->uid, &ids->gid);
        if (cfg->group != NULL)
            ids->gid = lookup_group(cfg->group);
        if (geteuid() != 0 && ids->uid != geteuid())
            log_fatal(EXITCODE_CONFIG, "--user %s: only root can change users",
                      cfg->user);
        ids->sock.uid = ids->uid;
        ids->sock.gid = ids->gid;
    }
    if (cfg->socket_user != NULL) {
        lookup_user(cfg->socket_user, &uid, &gid);
        ids->sock.uid = uid;
        ids->sock.gid = gid;
    }
    if (cfg->socket_group != NULL)
        ids->sock.gid = lookup_group(cfg->socket_group);
    else if (cfg->group != NULL)
        ids->sock.gid = ids->gid;
}

/*
 * worker_command: argv after "--" (argv[0] searched in PATH unless it
 * has a '/'), or tfb-fcgi next to our own binary.  The path is checked
 * now, so that a typo is a start-up error and not a crash loop.
 */
static const char *
worker_command(const struct config *cfg, char ***argvp)
{
    static char self[PATH_MAX], found[PATH_MAX];
    static char *def_argv[2];
    const char *name, *dirs, *end;
    ssize_t n;

    if (cfg->worker_argv == NULL) {
        if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) == -1)
            log_fatal(EXITCODE_ERROR, "/proc/self/exe: %s", strerror(errno));
        self[n] = '\0';
        snprintf(found, sizeof(found), "%s/%s", dirname(self), WORKER_NAME);
        def_argv[0] = found;
        *argvp = def_argv;
    } else {
        *argvp = cfg->worker_argv;
        name = cfg->worker_argv[0];
        if (strchr(name, '/') != NULL) {
            snprintf(found, sizeof(found), "%s", name);
        } else {
            dirs = getenv("PATH");
            if (dirs == NULL)
                dirs = "/usr/bin:/bin";
            for (;; dirs = end + 1) {
                end = strchrnul(dirs, ':');
                /* An empty element is the current directory, as for
                 * execvp(3). */
                if (end == dirs)
                    snprintf(found, sizeof(found), "./%s", name);
                else
                    snprintf(found, sizeof(found), "%.*s/%s", (int)(end - dirs),
                             dirs, name);
                if (access(found, X_OK) == 0)
                    break;
                if (*end == '\0')
                    log_fatal(EXITCODE_CONFIG, "worker %s: not found in PATH",
                              name);
            }
        }
    }
    if (access(found, X_OK) == -1)
        log_fatal(EXITCODE_CONFIG, "worker %s: %s", found, strerror(errno));
    return found;
}

/*
 * proc_stat: pid's command name and state, from /proc/PID/stat.  The name
 * is what stands between the first "(" and the LAST ")": it may hold
 * blanks and ")" itself, which a scan up to the first ")" would take for
 * its end.  Results: 0, or -1 (no such process, or a line not read).
 */
static int
proc_stat(long pid, char *comm, size_t commlen, char *state)
{
    char path[64], line[512], *lp = NULL, *rp = NULL;
    FILE *fp;

    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    if ((fp = fopen(path, "r")) == NULL)
        return -1;
    if (fgets(line, sizeof(line), fp) != NULL) {
        lp = strchr(line, '(');
        rp = strrchr(line, ')');
    }
    fclose(fp);
    if (lp == NULL || rp == NULL || rp < lp || rp[1] != ' ' || rp[2] == '\0')
        return -1;
    snprintf(comm, commlen, "%.*s", (int)(rp - lp - 1), lp + 1);
    *state = rp[2];
    return 0;
}

/*
 * pidfile_write: refuse to start when the file names another live
 * tfb-spawn (a stale file, or one naming an unrelated process, is
 * overwritten).
 */
static void
pidfile_write(const char *path)
{
    char comm[64] = "";
    struct stat st;
    FILE *fp;
    long pid;
    int fd;

    if ((fp = fopen(path, "r")) != NULL) {
        if (fscanf(fp, "%ld", &pid) == 1 && pid > 0 && pid != getpid()) {
            char state = 0;

            /* A zombie (a supervisor killed, not yet reaped) runs no more:
             * its comm is still ours, its state Z. */
            if (proc_stat(pid, comm, sizeof(comm), &state) == -1)
                comm[0] = '\0';
            if (strcmp(comm, PROGNAME) == 0 && state != 'Z')
                log_fatal(EXITCODE_CONFIG,
                          "%s: " PROGNAME " %ld is running already", path, pid);
        }
        fclose(fp);
    }
    /* Never through a link: root must not be made to write another file.
     * Truncated once open, so that a file we refuse is left as it was. */
    fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd != -1 && (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode))) {
        close(fd);
        log_fatal(EXITCODE_CONFIG, "pid file %s: not a regular file", path);
    }
    if (fd == -1 || ftruncate(fd, 0) == -1 ||
        dprintf(fd, "%ld\n", (long)getpid()) < 0 || close(fd) == -1)
        log_fatal(EXITCODE_CONFIG, "pid file %s: %s", path, strerror(errno));
}

/* pidfile_remove: only if it is still ours. */
static void
pidfile_remove(const char *path)
{
    FILE *fp;
    long pid = 0;

    if ((fp = fopen(path, "r")) == NULL)
        return;
    if (fscanf(fp, "%ld", &pid) != 1)
        pid = 0;
    fclose(fp);
    if (pid == (long)getpid() && unlink(path) == -1)
        log_debug("cannot remove %s: %s", path, strerror(errno));
}

/*
 * worker_creds: whom --user makes the workers run as, with USER's
 * supplementary groups.  NULL when there is nothing to change.
 */
static const struct supervisor_creds *
worker_creds(const char *user, const struct ids *ids)
{
    static struct supervisor_creds c;

    if (user == NULL || (getuid() == ids->uid && geteuid() == ids->uid))
        return NULL;
    c.uid = ids->uid;
    c.gid = ids->gid;
    c.ngroups = (int)(sizeof(c.groups) / sizeof(c.groups[0]));
    if (getgrouplist(user, ids->gid, c.groups, &c.ngroups) == -1)
        log_fatal(EXITCODE_CONFIG, "--user %s: more than %d groups", user,
                  (int)(sizeof(c.groups) / sizeof(c.groups[0])));
    snprintf(c.name, sizeof(c.name), "%s", user);
    return &c;
}

/*
 * status_command: tfb-spawn status [--watch[=S]] SOCKET [json|full|...]:
 * the page from a running pool's status socket, once or every S seconds
 * (2 by default), as watch(1) would.
 */
static int
status_command(int argc, char *argv[])
{
    const char *usage = "usage: " PROGNAME " status [--watch[=SECONDS]] "
                        "SOCKET [full|json|prometheus|openmetrics|top|ping]\n";
    char err[512], *end;
    double every = 0;
    int i = 1;

    if (argc > 1 && strncmp(argv[1], "--watch", 7) == 0) {
        every = 2;
        if (argv[1][7] == '=') {
            every = strtod(argv[1] + 8, &end);
            if (*end != '\0' || !(every >= 0.1 && every <= 3600)) {
                fputs(usage, stderr);
                return EXITCODE_CONFIG;
            }
        } else if (argv[1][7] != '\0') {
            fputs(usage, stderr);
            return EXITCODE_CONFIG;
        }
        i++;
    }
    if (argc - i < 1 || argc - i > 2 || argv[i][0] == '-') {
        fputs(usage, stderr);
        return argc > 1 && strcmp(argv[1], "--help") == 0 ? 0 : EXITCODE_CONFIG;
    }
    for (;;) {
        if (every > 0 && isatty(STDOUT_FILENO))
            fputs("\033[H\033[2J", stdout);
        if (status_fetch(argv[i],
                         argc - i > 1 ? argv[i + 1]
                         : every      ? "top"
                                      : "",
                         err, sizeof(err)) == -1) {
            fprintf(stderr, PROGNAME " status: %s\n", err);
            return EXITCODE_ERROR;
        }
        if (every == 0)
            return fflush(stdout) == 0 ? 0 : EXITCODE_ERROR;
        fflush(stdout);
        nanosleep(&(struct timespec){(time_t)every,
                                     (long)((every - (time_t)every) * 1e9)},
                  NULL);
    }
}

int
main(int argc, char *argv[])
{
    struct config cfg;
    struct listener l, sl;
    struct ids ids;
    char err[512], **wargv;
    const char *path;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int status;

    std_fds();
    cloexec_inherited();
    log_init(PROGNAME, LOG_INFO);
    if (argc > 1 && strcmp(argv[1], "status") == 0)
        return status_command(argc - 1, argv + 1);
    if (config_parse(&cfg, argc, argv, cores > 0 ? (int)cores : 1, err,
                     sizeof(err)) == -1)
        log_fatal(EXITCODE_CONFIG, "%s (see --help)", err);
    if (cfg.help) {
        config_usage(stdout, PROGNAME);
        return 0;
    }
    log_init(PROGNAME, cfg.log_level);
    /* The name goes into the page's JSON and Prometheus labels as is. */
    if (cfg.pool[0] == '\0' || strlen(cfg.pool) > 64 ||
        cfg.pool[strspn(cfg.pool,
                        "abcdefghijklmnopqrstuvwxyz"
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-")] != '\0')
        log_fatal(EXITCODE_CONFIG,
                  "--pool %s: at most 64 letters, digits and _ . : -",
                  cfg.pool);
    if (cfg.log_file != NULL && log_open_file(cfg.log_file) == -1)
        log_fatal(EXITCODE_CONFIG, "log file %s: %s", cfg.log_file,
                  strerror(errno));
    resolve_ids(&cfg, &ids);
    path = worker_command(&cfg, &wargv);

    if (cfg.pid_file != NULL)
        pidfile_write(cfg.pid_file);
    if (listener_open(&l, cfg.bind, cfg.backlog, &ids.sock, err, sizeof(err)) ==
        -1) {
        if (cfg.pid_file != NULL)
            pidfile_remove(cfg.pid_file);
        log_fatal(EXITCODE_CONFIG, "%s", err);
    }
    log_info("listening on %s", l.desc);
    sl.fd = -1;
    if (cfg.status != NULL) {
        /* The page is for the machine's own: a unix socket, its mode and
         * owner the pool socket's. */
        if (cfg.status[0] != '/' ||
            listener_bind(&sl, "--status", cfg.status, 64, &ids.sock, err,
                          sizeof(err)) == -1) {
            if (cfg.status[0] != '/')
                snprintf(err, sizeof(err),
                         "--status %s: an absolute path to a unix socket",
                         cfg.status);
            listener_close(&l);
            if (cfg.pid_file != NULL)
                pidfile_remove(cfg.pid_file);
            log_fatal(EXITCODE_CONFIG, "%s", err);
        }
        log_info("status page on %s", sl.desc);
    }

    status = supervisor_run(&cfg, l.fd, path, wargv,
                            worker_creds(cfg.user, &ids), sl.fd);

    if (sl.fd != -1)
        listener_close(&sl);
    listener_close(&l);
    if (cfg.pid_file != NULL)
        pidfile_remove(cfg.pid_file);
    return status;
}
