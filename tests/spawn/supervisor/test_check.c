/*
 * test_check.c: tfb-spawn --check's look at paths and sockets
 * (spawn/supervisor/check.c), each good and bad case made in a directory
 * of its own, and that a check makes nothing.
 */
#include "../../../spawn/supervisor/check.c"

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>

#include "harness.h"

static char dir[] = "/tmp/test_check.XXXXXX";
static char err[512], desc[256];

static const char *
at(const char *name)
{
    static char path[4][256];
    static int k;

    k = (k + 1) % 4;
    snprintf(path[k], sizeof(path[k]), "%s/%s", dir, name);
    return path[k];
}

/* unix_socket: a socket bound at path, listening or not; its fd. */
static int
unix_socket(const char *path, int listening)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    if (fd == -1 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
        (listening && listen(fd, 4) == -1))
        return -1;
    return fd;
}

/* entries: how many names dir holds (. and .. aside). */
static int
entries(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    while (d != NULL && (e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d != NULL)
        closedir(d);
    return n;
}

static void
test_file(void)
{
    int fd;

    is_int(check_file("--pid-file", at("spawn.pid"), err, sizeof(err)), 0,
           "a file to create in a writable directory");
    is_int(entries(), 0, "and it is not created");
    is_int(check_file("--pid-file", at("nodir/spawn.pid"), err, sizeof(err)),
           -1, "a missing directory");
    ok(strstr(err, "--pid-file") && strstr(err, "No such file"), "%s", err);
    fd = open(at("plain"), O_CREAT | O_WRONLY, 0600);
    close(fd);
    is_int(check_file("--log-file", at("plain"), err, sizeof(err)), 0,
           "an existing file to append to");
    is_int(check_file("--log-file", at("plain/x"), err, sizeof(err)), -1,
           "a directory that is a file");
    ok(strstr(err, "ot a directory") != NULL, "%s", err);
    is_int(check_file("--log-file", "/dev/null", err, sizeof(err)), 0,
           "/dev/null for a log");
    ok(symlink(at("plain"), at("link")) == 0, "set-up: a link");
    is_int(check_file("--pid-file", at("link"), err, sizeof(err)), -1,
           "a symbolic link (never followed)");
    ok(strstr(err, "symbolic link") != NULL, "%s", err);
    mkdir(at("sub"), 0700);
    is_int(check_file("--pid-file", at("sub"), err, sizeof(err)), -1,
           "a directory in the way");
    unlink(at("plain"));
    unlink(at("link"));
    rmdir(at("sub"));
}

static void
test_bind_unix(void)
{
    int fd;

    is_int(check_bind("--bind", at("fcgi.sock"), desc, sizeof(desc), err,
                      sizeof(err)),
           0, "a free unix socket path");
    is_int(entries(), 0, "nothing made: no socket, no lock file");
    is_int(check_bind("--status", at("none/st.sock"), desc, sizeof(desc), err,
                      sizeof(err)),
           -1, "its directory missing");
    ok(strstr(err, "--status") != NULL, "naming the option: %s", err);
    fd = unix_socket(at("live.sock"), 1);
    is_int(check_bind("--bind", at("live.sock"), desc, sizeof(desc), err,
                      sizeof(err)),
           -1, "a server listening there");
    ok(strstr(err, "running server") != NULL, "%s", err);
    close(fd);
    is_int(check_bind("--bind", at("live.sock"), desc, sizeof(desc), err,
                      sizeof(err)),
           0, "a stale socket (nothing answers) would be replaced");
    ok(strstr(desc, "stale") != NULL, "and says so: %s", desc);
    ok(access(at("live.sock"), F_OK) == 0, "but is left in place");
    unlink(at("live.sock"));
    close(open(at("file.sock"), O_CREAT | O_WRONLY, 0600));
    is_int(check_bind("--bind", at("file.sock"), desc, sizeof(desc), err,
                      sizeof(err)),
           -1, "a plain file in the way");
    unlink(at("file.sock"));
    is_int(
        check_bind("--bind", "http://x", desc, sizeof(desc), err, sizeof(err)),
        -1, "an address that is neither");
}

static void
test_bind_tcp(void)
{
    char addr[64];
    int port, fd = listen_tcp(&port);

    if (fd == -1) {
        ok(0, "set-up: %s", strerror(errno));
        return;
    }
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    is_int(check_bind("--bind", addr, desc, sizeof(desc), err, sizeof(err)), -1,
           "a TCP port a server listens on");
    ok(strstr(err, "in use") != NULL, "%s", err);
    close(fd);
    is_int(check_bind("--bind", addr, desc, sizeof(desc), err, sizeof(err)), 0,
           "the same port once free");
    ok(strstr(desc, "tcp 127.0.0.1 port") != NULL, "%s", desc);
}

static void
test_inherited(void)
{
    struct upgrade_sock h = {-1, 0, 0};
    int fd = unix_socket(at("in.sock"), 1), saved = dup(0);
    int quiet = unix_socket(at("quiet.sock"), 0);

    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_PID");
    dup2(open("/dev/null", O_RDONLY), 0);
    is_int(check_inherited(NULL, desc, sizeof(desc), err, sizeof(err)), -1,
           "fd 0 not a socket, no LISTEN_FDS");
    ok(strstr(err, "no listening socket") != NULL, "%s", err);
    dup2(fd, 0);
    is_int(check_inherited(NULL, desc, sizeof(desc), err, sizeof(err)), 0,
           "a listening fd 0");
    h.fd = fd;
    is_int(check_inherited(&h, desc, sizeof(desc), err, sizeof(err)), 0,
           "a listening socket handed over");
    h.fd = quiet;
    is_int(check_inherited(&h, desc, sizeof(desc), err, sizeof(err)), -1,
           "a handed-over socket that does not listen");
    setenv("LISTEN_FDS", "x", 1);
    setenv("LISTEN_PID", "1", 1);
    is_int(check_inherited(NULL, desc, sizeof(desc), err, sizeof(err)), 0,
           "LISTEN_FDS for another process: fd 0 as before");
    setenv("LISTEN_PID", "oops", 1);
    is_int(check_inherited(NULL, desc, sizeof(desc), err, sizeof(err)), -1,
           "a malformed LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_PID");
    dup2(saved, 0);
    close(fd);
    close(quiet);
    unlink(at("in.sock"));
    unlink(at("quiet.sock"));
}

int
main(void)
{
    if (temp_dir(dir) == -1)
        return done_testing();
    test_file();
    test_bind_unix();
    test_bind_tcp();
    test_inherited();
    is_int(entries(), 0, "the directory is left empty");
    rmdir(dir);
    return done_testing();
}
