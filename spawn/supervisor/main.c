/*
 * main.c: tfb-spawn, the process manager of the tfb-fcgi pool.
 *
 *     spawn-fcgi -s /run/tfb.sock -n -- tfb-spawn -w 4 -- tfb-fcgi
 *     tfb-spawn --bind 127.0.0.1:9000 --user www-data
 *
 * Start-up reads top to bottom: the title's copy of argv, options, the
 * log file, the worker to run, the pid file, the listening socket, the
 * privilege drop, and only then the supervisor, which forks the workers.
 * Every error up to there is fatal with status 2 ("configuration: do not
 * restart me"), before any worker exists; --check stops before the first
 * thing made.  Whatever the way out (a stop, an error, every worker
 * exiting 2, a fault), the pid file and the sockets we bound, lock files
 * included, are removed: exit() does it (atexit), a fault's handler too.
 * Only SIGUSR2 leaves them, to the next image of this same process.
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

#include "check.h"
#include "config.h"
#include "exitcode.h"
#include "listener.h"
#include "log.h"
#include "pm.h"
#include "pool.h"
#include "proctitle.h"
#include "sigtab.h"
#include "status.h"
#include "supervisor.h"
#include "upgrade.h"
#include "version.h"

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

/*
 * What the supervisor made, removed on every way out: by exit() (atexit)
 * and by a fault's handler.  Only the process that made them removes
 * them, not a child that calls exit().
 */
static struct {
    pid_t owner;
    const char *pid_file;
    struct listener *socks[2];
    char locks[2][LISTENER_PATH_MAX + 8];
} made;

/* remove_made: atexit(): the sockets we bound, their lock files, the pid
 * file. */
static void
remove_made(void)
{
    int i;

    if (getpid() != made.owner)
        return;
    for (i = 0; i < 2; i++)
        if (made.socks[i] != NULL)
            listener_close(made.socks[i]);
    if (made.pid_file != NULL)
        pidfile_remove(made.pid_file);
}

/*
 * on_fault: a fault (sigtab.h's SIGTAB_CRASH) in the supervisor: its
 * files removed with async-signal-safe calls only, a socket only if it is
 * still the one we bound, then the default action, core and all
 * (SA_RESETHAND put it back).
 */
static void
on_fault(int signo)
{
    const struct listener *l;
    struct stat st;
    int i;

    if (getpid() == made.owner) {
        if (made.pid_file != NULL)
            unlink(made.pid_file);
        for (i = 0; i < 2; i++) {
            if ((l = made.socks[i]) == NULL || l->path[0] == '\0')
                continue;
            if (lstat(l->path, &st) == 0 && st.st_dev == l->dev &&
                st.st_ino == l->ino && unlink(l->path) == 0)
                unlink(made.locks[i]);
        }
    }
    raise(signo);
}

/* catch_faults: on_fault for the faults, once the sockets are made. */
static void
catch_faults(void)
{
    struct sigaction sa;
    int i, s;

    for (i = 0; i < 2; i++)
        if (made.socks[i] != NULL)
            snprintf(made.locks[i], sizeof(made.locks[i]), "%s.lock",
                     made.socks[i]->path);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_fault;
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    for (s = 1; s <= SIGTAB_MAX; s++)
        if (sigtab_action(s, SIGTAB_SUPERVISOR) == SIGTAB_CRASH)
            sigaction(s, &sa, NULL);
}

/*
 * handed_socket: a socket the previous image handed over (SIGUSR2): kept
 * as it is, neither bound again nor its file replaced; its file (addr,
 * as --bind or --status named it) ours to remove at the end if the
 * previous image bound it.
 */
static void
handed_socket(struct listener *l, const struct upgrade_sock *h,
              const char *what, const char *addr)
{
    struct listener_addr a;
    char err[256];

    memset(l, 0, sizeof(*l));
    if (h->fd < 0 || !listener_is_listening(h->fd))
        log_fatal(EXITCODE_ERROR,
                  "%s: fd %d, handed over by the previous image, is not a "
                  "listening socket",
                  what, h->fd);
    l->fd = h->fd;
    fcntl(l->fd, F_SETFD, l->fd == 0 ? 0 : FD_CLOEXEC);
    if ((h->dev != 0 || h->ino != 0) && addr != NULL &&
        listener_parse_addr(addr, &a, err, sizeof(err)) == 0 && a.is_unix) {
        snprintf(l->path, sizeof(l->path), "%s", a.path);
        l->dev = h->dev;
        l->ino = h->ino;
    }
    snprintf(l->desc, sizeof(l->desc),
             "%s%s (fd %d), kept across the "
             "re-execution",
             l->path[0] != '\0' ? "unix:" : "", l->path, l->fd);
}

/*
 * open_sockets: the pool's socket and the status page's, found, bound or
 * handed over (up); each is in `made` as soon as it exists.
 */
static void
open_sockets(const struct config *cfg, const struct ids *ids,
             const struct upgrade *up, struct listener *l, struct listener *sl)
{
    char err[512];

    sl->fd = -1;
    if (up != NULL)
        handed_socket(l, &up->listen, "--bind", cfg->bind);
    else if (listener_open(l, cfg->bind, cfg->backlog, &ids->sock, err,
                           sizeof(err)) == -1)
        log_fatal(EXITCODE_CONFIG, "%s", err);
    made.socks[0] = l;
    log_info("listening on %s", l->desc);
    if (cfg->status == NULL)
        return;
    /* The page is for the machine's own: a unix socket, its mode and
     * owner the pool socket's. */
    if (cfg->status[0] != '/')
        log_fatal(EXITCODE_CONFIG,
                  "--status %s: an absolute path to a unix socket",
                  cfg->status);
    if (up != NULL && up->status.fd >= 0)
        handed_socket(sl, &up->status, "--status", cfg->status);
    else if (listener_bind(sl, "--status", cfg->status, 64, &ids->sock, err,
                           sizeof(err)) == -1)
        log_fatal(EXITCODE_CONFIG, "%s", err);
    made.socks[1] = sl;
    log_info("status page on %s", sl->desc);
}

/*
 * self_exe: our program's path, read once at start: what SIGUSR2 runs,
 * whatever binary is there by then.  NULL when /proc cannot say.
 */
static const char *
self_exe(void)
{
    static char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);

    if (n <= 0)
        return NULL;
    path[n] = '\0';
    return path;
}

/* sock_id: a socket file's identity for the next image (0: none). */
static struct upgrade_sock
sock_id(const struct listener *l)
{
    struct upgrade_sock u = {l->fd, 0, 0};

    if (l->path[0] != '\0') {
        u.dev = l->dev;
        u.ino = l->ino;
    }
    return u;
}

/*
 * run: the pool, from the log file to the supervisor's return.  args is
 * the argv we were started with, for SIGUSR2; up what the previous image
 * handed over, or NULL.
 */
static int
run(const struct config *cfg, char **args, const struct upgrade *up)
{
    static struct supervisor_image img;
    static struct listener l, sl;
    const struct supervisor_creds *creds;
    struct ids ids;
    const char *path;
    char **wargv;

    if (cfg->log_file != NULL && log_open_file(cfg->log_file) == -1)
        log_fatal(EXITCODE_CONFIG, "log file %s: %s", cfg->log_file,
                  strerror(errno));
    resolve_ids(cfg, &ids);
    path = worker_command(cfg, &wargv);
    creds = worker_creds(cfg->user, &ids);

    made.owner = getpid();
    if (atexit(remove_made) != 0)
        log_fatal(EXITCODE_ERROR, "atexit failed");
    if (cfg->pid_file != NULL) {
        pidfile_write(cfg->pid_file);
        made.pid_file = cfg->pid_file;
    }
    open_sockets(cfg, &ids, up, &l, &sl);
    catch_faults();

    img.exe = self_exe();
    img.argv = args;
    img.listen = sock_id(&l);
    img.status = sock_id(&sl);
    img.adopt = up;
    supervisor_image(&img);
    proctitle_set(PROGNAME ": supervisor");
    return supervisor_run(cfg, l.fd, path, wargv, creds, sl.fd);
}

/*
 * check: --check: what start-up would find wrong, found without making
 * anything (check.h); up, when not NULL, is the handoff of a running
 * image whose SIGUSR2 runs this check first.  Exits 2 with the message
 * at the first error, else says what it checked and returns 0.
 */
static int
check(const struct config *cfg, const struct upgrade *up)
{
    char err[512], sock[256], page[256] = "";
    const char *path;
    struct ids ids;
    char **wargv;

    resolve_ids(cfg, &ids);
    path = worker_command(cfg, &wargv);
    (void)worker_creds(cfg->user, &ids);
    if ((cfg->log_file != NULL &&
         check_file("--log-file", cfg->log_file, err, sizeof(err)) == -1) ||
        (cfg->pid_file != NULL &&
         check_file("--pid-file", cfg->pid_file, err, sizeof(err)) == -1))
        log_fatal(EXITCODE_CONFIG, "%s", err);
    if (up != NULL || cfg->bind == NULL
            ? check_inherited(up != NULL ? &up->listen : NULL, sock,
                              sizeof(sock), err, sizeof(err)) == -1
            : check_bind("--bind", cfg->bind, sock, sizeof(sock), err,
                         sizeof(err)) == -1)
        log_fatal(EXITCODE_CONFIG, "%s", err);
    if (cfg->status != NULL && cfg->status[0] != '/')
        log_fatal(EXITCODE_CONFIG,
                  "--status %s: an absolute path to a unix socket",
                  cfg->status);
    if (cfg->status != NULL && (up == NULL || up->status.fd < 0) &&
        check_bind("--status", cfg->status, page, sizeof(page), err,
                   sizeof(err)) == -1)
        log_fatal(EXITCODE_CONFIG, "%s", err);
    printf(PROGNAME " %s: the configuration is valid: %d workers (%s) of %s "
                    "on %s%s%s\n",
           tfb_version, cfg->workers, pm_mode_name((enum pm_mode)cfg->pm), path,
           sock, cfg->status != NULL ? ", the status page on " : "",
           cfg->status != NULL ? cfg->status : "");
    return fflush(stdout) == 0 ? 0 : EXITCODE_ERROR;
}

/* parse's copy of argv; volatile, so that the store stays though nothing
 * reads it. */
static char **volatile permuted;

/*
 * parse: the options, from a copy of args' pointers (getopt permutes
 * them; args stays as we were started, for SIGUSR2).  --help and
 * --version answer here.
 */
static void
parse(struct config *cfg, int argc, char **args)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    char err[512], **argv;

    /* cfg->worker_argv points into the copy: it lives as long as we do,
     * held here so that a leak checker sees it reachable at exit. */
    argv = permuted = calloc((size_t)argc + 1, sizeof(char *));
    if (argv == NULL)
        log_fatal(EXITCODE_ERROR, "out of memory");
    memcpy(argv, args, (size_t)argc * sizeof(char *));
    if (config_parse(cfg, argc, argv, cores > 0 ? (int)cores : 1, err,
                     sizeof(err)) == -1)
        log_fatal(EXITCODE_CONFIG, "%s (see --help)", err);
    if (cfg->help) {
        config_usage(stdout, PROGNAME);
        exit(EXITCODE_OK);
    }
    if (cfg->version) {
        printf(PROGNAME " %s\n", tfb_version);
        exit(fflush(stdout) == 0 ? EXITCODE_OK : EXITCODE_ERROR);
    }
    log_init(PROGNAME, cfg->log_level);
    /* The name goes into the page's JSON and Prometheus labels as is. */
    if (cfg->pool[0] == '\0' || strlen(cfg->pool) > 64 ||
        cfg->pool[strspn(cfg->pool,
                         "abcdefghijklmnopqrstuvwxyz"
                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-")] != '\0')
        log_fatal(EXITCODE_CONFIG,
                  "--pool %s: at most 64 letters, digits and _ . : -",
                  cfg->pool);
}

int
main(int argc, char *argv[])
{
    struct config cfg;
    struct upgrade up;
    char err[512], **args;
    int handed;

    std_fds();
    cloexec_inherited();
    log_init(PROGNAME, LOG_INFO);
    if (argc > 1 && strcmp(argv[1], "status") == 0)
        return status_command(argc - 1, argv + 1);
    args = proctitle_init(argc, argv, PROGNAME);
    parse(&cfg, argc, args);
    /* Read before anything forks, and gone from the environment. */
    if ((handed = upgrade_take(&up, cfg.check, err, sizeof(err))) == -1)
        log_fatal(EXITCODE_ERROR, "%s", err);
    if (cfg.check)
        return check(&cfg, handed ? &up : NULL);
    return run(&cfg, args, handed ? &up : NULL);
}
