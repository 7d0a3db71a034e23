/*
 * test_main.c: tfb-spawn's start-up (spawn/supervisor/main.c): the worker
 * command, the pid file, the ids, the standard descriptors, and main's answer
 * to
 * --help and to a bad option.
 *
 * main.c's main() is renamed so that this file has its own.  What ends in
 * log_fatal() exits, so it runs in a forked child whose status (2, a
 * configuration error) and stderr are read here.
 */
#define main tfb_spawn_main
int tfb_spawn_main(int argc, char *argv[]);
#include "../../../spawn/supervisor/main.c"
#undef main

#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "harness.h"

static char dir[] = "/tmp/test_spawn_main.XXXXXX";

static void
put_file(const char *path, const char *text, mode_t mode)
{
    FILE *fp = fopen(path, "w");

    if (fp != NULL) {
        fputs(text, fp);
        fclose(fp);
    }
    chmod(path, mode);
}

static void
run_worker_command(const void *arg)
{
    const struct config *cfg = arg;
    char **argv;

    printf("%s\n", worker_command(cfg, &argv));
}

static void
test_worker_command(void)
{
    char a[128], b[128], path[512], want[600], cwd[512];
    char name[512] = "myworker", flag[] = "--flag";
    char *wargv[] = {name, flag, NULL};
    const char *found;
    struct config cfg;
    char **argv = NULL;
    ssize_t len;

    memset(&cfg, 0, sizeof(cfg));
    cfg.worker_argv = wargv;
    snprintf(a, sizeof(a), "%s/a", dir);
    snprintf(b, sizeof(b), "%s/b", dir);
    mkdir(a, 0755);
    mkdir(b, 0755);
    snprintf(path, sizeof(path), "%s/myworker", a);
    put_file(path, "#!/bin/sh\n", 0644); /* not executable: skipped */
    snprintf(path, sizeof(path), "%s/myworker", b);
    put_file(path, "#!/bin/sh\n", 0755);

    snprintf(path, sizeof(path), "/nonexistent:%s:%s", a, b);
    setenv("PATH", path, 1);
    found = worker_command(&cfg, &argv);
    snprintf(want, sizeof(want), "%s/myworker", b);
    is_str(found, want, "PATH search: the first executable match");
    ok(argv == cfg.worker_argv, "the worker's argv is the one after --");

    /* An empty element of PATH is the current directory. */
    if (getcwd(cwd, sizeof(cwd)) != NULL && chdir(b) == 0) {
        setenv("PATH", "/nonexistent:", 1);
        is_str(worker_command(&cfg, &argv), "./myworker",
               "an empty PATH element is '.'");
        snprintf(name, sizeof(name), "%s", "./myworker");
        is_str(worker_command(&cfg, &argv), "./myworker",
               "a name with '/' is taken as it is");
        if (chdir(cwd) != 0)
            ok(0, "chdir back: %s", strerror(errno));
    }

    unsetenv("PATH");
    snprintf(name, sizeof(name), "%s", "sh");
    is_str(worker_command(&cfg, &argv),
           access("/usr/bin/sh", X_OK) == 0 ? "/usr/bin/sh" : "/bin/sh",
           "without PATH: /usr/bin:/bin");
    snprintf(name, sizeof(name), "%s", "/bin/sh");
    setenv("PATH", "/nonexistent", 1);
    is_str(worker_command(&cfg, &argv), "/bin/sh",
           "an absolute path needs no PATH");

    snprintf(name, sizeof(name), "%s", "no-such-worker");
    is_int(in_child(run_worker_command, &cfg), 2,
           "a name found nowhere: exit 2");
    said("worker no-such-worker: not found in PATH\n", "saying so");

    snprintf(name, sizeof(name), "%s/myworker", a);
    is_int(in_child(run_worker_command, &cfg), 2,
           "a path that is not executable: exit 2");
    snprintf(want, sizeof(want), "worker %s: %s\n", name, strerror(EACCES));
    said(want, "saying why");

    /* Without a command: tfb-fcgi next to this program, which has none. */
    cfg.worker_argv = NULL;
    is_int(in_child(run_worker_command, &cfg), 2,
           "no tfb-fcgi next to the binary: exit 2");
    if ((len = readlink("/proc/self/exe", path, sizeof(path) - 1)) > 0) {
        path[len] = '\0';
        snprintf(want, sizeof(want), "worker %s/tfb-fcgi: %s\n", dirname(path),
                 strerror(ENOENT));
        said(want, "the default is tfb-fcgi beside it");
    }
}

static void
run_pidfile_write(const void *arg)
{
    pidfile_write(arg);
}

/* renamed: a child that calls itself name, once /proc says so. */
static pid_t
renamed(const char *name)
{
    char want[32], comm[64] = "", proc[64];
    pid_t pid;
    int i;

    fflush(stdout);
    if ((pid = fork()) == 0) {
        prctl(PR_SET_NAME, name);
        pause();
        _exit(0);
    }
    snprintf(want, sizeof(want), "%s\n", name);
    snprintf(proc, sizeof(proc), "/proc/%ld/comm", (long)pid);
    for (i = 0; i < 200 && strcmp(comm, want) != 0; i++) {
        sleep_ms(5);
        read_text(proc, comm, sizeof(comm));
    }
    return pid;
}

/*
 * test_pidfile_comm: a command name may hold ")" and blanks.  A process
 * called "tfb-spawn) S" is no tfb-spawn, though its /proc/PID/stat line
 * starts "PID (tfb-spawn) S) S ...".
 */
static void
test_pidfile_comm(void)
{
    char path[256], text[64];
    pid_t other = renamed("tfb-spawn) S");

    snprintf(path, sizeof(path), "%s/comm.pid", dir);
    snprintf(text, sizeof(text), "%ld\n", (long)other);
    put_file(path, text, 0644);
    is_int(in_child(run_pidfile_write, path), 0,
           "a pid file naming a live process called 'tfb-spawn) S': no "
           "tfb-spawn, overwritten");
    kill(other, SIGKILL);
    waitpid(other, NULL, 0);
    unlink(path);
}

static void
test_pidfile(void)
{
    char path[256], text[64], want[512];
    struct stat st;
    pid_t dead, live;

    snprintf(path, sizeof(path), "%s/spawn.pid", dir);
    snprintf(want, sizeof(want), "%ld\n", (long)getpid());
    pidfile_write(path);
    read_text(path, text, sizeof(text));
    is_str(text, want, "pidfile_write: our pid and a newline");
    ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644,
       "readable by all (0644)");
    pidfile_write(path);
    read_text(path, text, sizeof(text));
    is_str(text, want, "written again over our own pid");

    /* A stale file: the pid of a process that has exited. */
    if ((dead = fork()) == 0)
        _exit(0);
    waitpid(dead, NULL, 0);
    snprintf(text, sizeof(text), "%ld\n", (long)dead);
    put_file(path, text, 0644);
    pidfile_write(path);
    read_text(path, text, sizeof(text));
    is_str(text, want, "a stale pid file is overwritten");

    /* A live process that is not tfb-spawn (our parent). */
    snprintf(text, sizeof(text), "%ld\n", (long)getppid());
    put_file(path, text, 0644);
    pidfile_write(path);
    read_text(path, text, sizeof(text));
    is_str(text, want, "a pid file naming another program is overwritten");

    put_file(path, "garbage\n", 0644);
    pidfile_write(path);
    read_text(path, text, sizeof(text));
    is_str(text, want, "a garbled pid file is overwritten");

    /* A live tfb-spawn: a child that takes the name. */
    live = renamed("tfb-spawn");
    snprintf(text, sizeof(text), "%ld\n", (long)live);
    put_file(path, text, 0644);
    is_int(in_child(run_pidfile_write, path), 2,
           "a pid file naming a running tfb-spawn: exit 2");
    snprintf(want, sizeof(want), "tfb-spawn %ld is running already",
             (long)live);
    said(want, "saying so");
    read_text(path, text, sizeof(text));
    ok(atol(text) == (long)live, "and the file is left alone");

    /* pidfile_remove removes only our own. */
    pidfile_remove(path);
    ok(access(path, F_OK) == 0, "pidfile_remove leaves another's pid");
    kill(live, SIGKILL);
    {
        char stat[256] = "";
        int i;

        /* Killed, not yet reaped: a zombie still named tfb-spawn. */
        snprintf(want, sizeof(want), "/proc/%ld/stat", (long)live);
        for (i = 0; i < 200 && strstr(stat, ") Z ") == NULL; i++) {
            sleep_ms(5);
            read_text(want, stat, sizeof(stat));
        }
        is_int(in_child(run_pidfile_write, path), 0,
               "a pid file naming a zombie tfb-spawn: stale, overwritten");
    }
    waitpid(live, NULL, 0);
    {
        char link[600], victim[600];

        snprintf(victim, sizeof(victim), "%s.victim", path);
        snprintf(link, sizeof(link), "%s.link", path);
        put_file(victim, "precious\n", 0644);
        unlink(link);
        ok(symlink(victim, link) == 0, "a pid file that is a link");
        is_int(in_child(run_pidfile_write, link), 2, "is refused: exit 2");
        read_text(victim, text, sizeof(text));
        is_str(text, "precious\n", "and what it points to is left alone");
        unlink(link);
        unlink(victim);
    }
    put_file(path, "garbage\n", 0644);
    pidfile_remove(path);
    ok(access(path, F_OK) == 0, "and a garbled file");
    pidfile_write(path);
    pidfile_remove(path);
    ok(access(path, F_OK) == -1 && errno == ENOENT,
       "pidfile_remove removes our own");
    pidfile_remove(path); /* a missing file: nothing to do */

    snprintf(path, sizeof(path), "%s/no/such/dir/spawn.pid", dir);
    is_int(in_child(run_pidfile_write, path), 2,
           "a pid file that cannot be written: exit 2");
    snprintf(want, sizeof(want), "pid file %s: %s\n", path, strerror(ENOENT));
    said(want, "saying why");
}

static void
run_resolve_ids(const void *arg)
{
    struct ids ids;

    resolve_ids(arg, &ids);
}

/* As a user that is not root, asking for another user is refused. */
static void
run_resolve_ids_unprivileged(const void *arg)
{
    struct ids ids;
    struct passwd *pw = getpwnam("nobody");

    if (geteuid() == 0 &&
        (pw == NULL || setgid(pw->pw_gid) == -1 || setuid(pw->pw_uid) == -1))
        _exit(99);
    resolve_ids(arg, &ids);
}

static void
test_resolve_ids(void)
{
    struct config cfg;
    struct ids ids;
    struct passwd *pw;
    struct group *gr;
    uid_t uid;
    gid_t gid;

    memset(&cfg, 0, sizeof(cfg));
    cfg.socket_mode = 0640;
    resolve_ids(&cfg, &ids);
    ok(ids.uid == (uid_t)-1 && ids.gid == (gid_t)-1,
       "no --user: ids unchanged (-1)");
    ok(ids.sock.uid == (uid_t)-1 && ids.sock.gid == (gid_t)-1,
       "the socket's owner unchanged (-1)");
    is_int(ids.sock.mode, 0640, "the socket's mode from --socket-mode");

    if ((pw = getpwnam("daemon")) != NULL && (gr = getgrnam("nogroup"))) {
        uid = pw->pw_uid;
        gid = pw->pw_gid;
        cfg.socket_group = "nogroup";
        resolve_ids(&cfg, &ids);
        ok(ids.uid == (uid_t)-1 && ids.sock.uid == (uid_t)-1 &&
               ids.sock.gid == gr->gr_gid,
           "--socket-group alone: the socket's group only");
        cfg.socket_group = NULL;
        if (geteuid() == 0) {
            cfg.user = "daemon";
            resolve_ids(&cfg, &ids);
            ok(ids.uid == uid && ids.gid == gid,
               "--user: its uid and primary group");
            ok(ids.sock.uid == uid && ids.sock.gid == gid,
               "the socket follows --user");
            cfg.group = "nogroup";
            gid = getgrnam("nogroup")->gr_gid;
            resolve_ids(&cfg, &ids);
            ok(ids.uid == uid && ids.gid == gid && ids.sock.gid == gid,
               "--group: the process's and the socket's group");
            cfg.socket_user = "nobody";
            pw = getpwnam("nobody");
            cfg.socket_group = NULL;
            resolve_ids(&cfg, &ids);
            ok(ids.sock.uid == pw->pw_uid && ids.sock.gid == gid,
               "--socket-user: the socket's owner; --group still its group");
            cfg.group = NULL;
            resolve_ids(&cfg, &ids);
            ok(ids.sock.uid == pw->pw_uid && ids.sock.gid == pw->pw_gid,
               "--socket-user without --group: that user's group");
            cfg.socket_user = NULL;
        }
    }

    memset(&cfg, 0, sizeof(cfg));
    cfg.user = "no-such-user-here";
    is_int(in_child(run_resolve_ids, &cfg), 2, "an unknown user: exit 2");
    said("no such user: no-such-user-here", "saying so");
    cfg.user = NULL;
    cfg.socket_group = "no-such-group-here";
    is_int(in_child(run_resolve_ids, &cfg), 2, "an unknown group: exit 2");
    said("no such group: no-such-group-here", "saying so");

    memset(&cfg, 0, sizeof(cfg));
    cfg.user = "daemon";
    is_int(in_child(run_resolve_ids_unprivileged, &cfg), 2,
           "--user as another user, not root: exit 2");
    said("--user daemon: only root can change users", "saying so");
}

static void
run_std_fds(const void *arg)
{
    struct stat st, null;
    int i;

    (void)arg;
    close(STDIN_FILENO);
    close(STDOUT_FILENO);
    close(STDERR_FILENO);
    std_fds();
    stat("/dev/null", &null);
    for (i = 0; i < 3; i++)
        if (fstat(i, &st) == -1 || st.st_rdev != null.st_rdev)
            _exit(10 + i);
    _exit(0);
}

static void
run_cloexec(const void *arg)
{
    int fd = open("/dev/null", O_RDONLY);

    (void)arg;
    if (fd < 3 || (fcntl(fd, F_GETFD) & FD_CLOEXEC))
        _exit(10);
    cloexec_inherited();
    if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC))
        _exit(11);
    if (fcntl(STDERR_FILENO, F_GETFD) & FD_CLOEXEC)
        _exit(12);
    _exit(0);
}

static void
run_creds(const void *arg)
{
    const struct supervisor_creds *c;
    struct passwd *pw = getpwnam(arg);
    struct ids ids;
    struct config cfg;
    int i, primary = 0;

    memset(&cfg, 0, sizeof(cfg));
    cfg.user = arg;
    resolve_ids(&cfg, &ids);
    if (pw == NULL || (c = worker_creds(cfg.user, &ids)) == NULL)
        _exit(10);
    if (c->uid != pw->pw_uid || c->gid != pw->pw_gid ||
        strcmp(c->name, arg) != 0)
        _exit(11);
    /* The user's own groups, its primary one among them, not root's. */
    for (i = 0; i < c->ngroups; i++) {
        if (c->groups[i] == 0)
            _exit(12);
        primary |= c->groups[i] == pw->pw_gid;
    }
    if (!primary || worker_creds(NULL, &ids) != NULL)
        _exit(13);
    /* The supervisor itself stays who it is. */
    _exit(geteuid() == 0 ? 0 : 14);
}

static void
run_main(const void *arg)
{
    char **words = (char **)arg;
    int argc = 0;

    while (words[argc] != NULL)
        argc++;
    exit(tfb_spawn_main(argc, words));
}

static void
test_process(void)
{
    char prog[] = "tfb-spawn", opt_help[] = "--help",
         opt_bad[] = "--frobnicate";
    char *help[] = {prog, opt_help, NULL};
    char *bad[] = {prog, opt_bad, NULL};

    is_int(in_child(run_std_fds, NULL), 0,
           "std_fds: closed 0, 1 and 2 reopened on /dev/null");
    is_int(in_child(run_cloexec, NULL), 0,
           "cloexec_inherited: fds above 2 close-on-exec, 0-2 not");
    if (geteuid() == 0)
        is_int(in_child(run_creds, "nobody"), 0,
               "worker_creds: nobody's uid, gid and groups for the workers; "
               "the supervisor stays root");

    is_int(in_child(run_main, help), 0, "tfb-spawn --help: exit 0");
    ok(strncmp(child_out, "usage: tfb-spawn ", 17) == 0 &&
           strstr(child_out, "--max-requests-jitter") != NULL,
       "with the usage");
    is_int(in_child(run_main, bad), 2, "a bad option: exit 2");
    said("unknown option '--frobnicate' (see --help)\n", "saying so");
    {
        char cmd[] = "status", watch[] = "--watch=0.01",
             nosock[] = "/nonexistent.sock";
        char *bare[] = {prog, cmd, NULL};
        char *badw[] = {prog, cmd, watch, nosock, NULL};
        char *gone[] = {prog, cmd, nosock, NULL};

        is_int(in_child(run_main, bare), 2,
               "tfb-spawn status: no socket: exit 2");
        said("usage: tfb-spawn status [--watch[=SECONDS]] SOCKET",
             "with its usage");
        is_int(in_child(run_main, badw), 2,
               "status --watch=0.01: too often, exit 2");
        is_int(in_child(run_main, gone), 1,
               "status on a missing socket: exit 1");
        said("tfb-spawn status: status socket /nonexistent.sock: No such file",
             "naming it");
    }
}

static int
remove_tree(const char *path)
{
    char cmd[600];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    return system(cmd);
}

int
main(void)
{
    const char *path = getenv("PATH");
    char *saved_path = strdup(path ? path : "/usr/bin:/bin");

    log_init("test_main", LOG_INFO);
    if (temp_dir(dir) == -1)
        return done_testing();
    test_worker_command();
    setenv("PATH", saved_path, 1);
    free(saved_path);
    test_pidfile();
    test_pidfile_comm();
    test_resolve_ids();
    test_process();
    remove_tree(dir);
    return done_testing();
}
