/*
 * test_upgrade.c: the handoff of SIGUSR2 (spawn/supervisor/upgrade.c):
 * written and read back, every malformed one refused, and taken from the
 * environment only by the process it names.
 */
#include "../../../spawn/supervisor/upgrade.c"

#include "harness.h"

static char err[256];

static void
test_round_trip(void)
{
    struct upgrade u = {4242, {0, 0, 0}, {5, 64769, 1234567890123ULL}, 6, 4}, v;
    char buf[256], tiny[16];

    is_int(upgrade_format(&u, buf, sizeof(buf)), 0, "format");
    is_str(buf,
           "TFB_SPAWN_UPGRADE=pid=4242,listen=0:0:0,status=5:64769:"
           "1234567890123,sb=6,target=4",
           "NAME=VALUE, every field");
    is_int(upgrade_format(&u, tiny, sizeof(tiny)), -1,
           "a buffer too small: -1");
    is_int(upgrade_parse(strchr(buf, '=') + 1, &v, err, sizeof(err)), 0,
           "parse what format wrote");
    ok(v.pid == 4242 && v.listen.fd == 0 && v.listen.dev == 0 &&
           v.status.fd == 5 && v.status.dev == 64769 &&
           v.status.ino == 1234567890123ULL && v.sb_fd == 6 && v.target == 4,
       "the same fields back");
    is_int(upgrade_parse("pid=1,listen=3:0:0,status=-1:0:0,sb=-1,target=1", &v,
                         err, sizeof(err)),
           0, "no status page, no scoreboard (-1)");
}

static void
test_refused(void)
{
    static const char *const bad[] = {
        "",
        "pid=1",
        "pid=0,listen=3:0:0,status=-1:0:0,sb=4,target=1",
        "pid=1,listen=-1:0:0,status=-1:0:0,sb=4,target=1",
        "pid=1,listen=70000:0:0,status=-1:0:0,sb=4,target=1",
        "pid=1,listen=3:0,status=-1:0:0,sb=4,target=1",
        "pid=1,listen=3:0:0,status=-1:0:0,sb=4,target=0",
        "pid=1,listen=3:0:0,status=-1:0:0,sb=4,target=1,",
        "pid=1,listen=3:0:0,status=-1:0:0,sb=4,target=1x",
        "pid=1,listen=3:-5:0,status=-1:0:0,sb=4,target=1",
        "pid=1,status=-1:0:0,listen=3:0:0,sb=4,target=1",
        "pid= 1,listen=3:0:0,status=-1:0:0,sb=4,target=1",
        "pid=99999999999999999999,listen=3:0:0,status=-1:0:0,sb=4,target=1",
        NULL};
    struct upgrade v;
    int i, refused = 0;

    for (i = 0; bad[i] != NULL; i++) {
        if (upgrade_parse(bad[i], &v, err, sizeof(err)) == -1)
            refused++;
        else
            printf("#   taken: '%s'\n", bad[i]);
    }
    is_int(refused, i, "every malformed handoff is refused");
    ok(strstr(err, "TFB_SPAWN_UPGRADE=") != NULL &&
           strstr(err, "malformed") != NULL,
       "naming the variable: %s", err);
}

static void
put(long pid)
{
    char v[128];

    snprintf(v, sizeof(v), "pid=%ld,listen=3:0:0,status=-1:0:0,sb=4,target=2",
             pid);
    setenv(UPGRADE_ENV, v, 1);
}

static void
test_take(void)
{
    struct upgrade u;

    unsetenv(UPGRADE_ENV);
    is_int(upgrade_take(&u, 0, err, sizeof(err)), 0, "no variable: none");
    put((long)getpid());
    is_int(upgrade_take(&u, 0, err, sizeof(err)), 1, "one for our pid: taken");
    ok(u.target == 2 && u.listen.fd == 3, "its fields");
    ok(getenv(UPGRADE_ENV) == NULL, "and gone from the environment");
    put((long)getpid() + 1);
    is_int(upgrade_take(&u, 0, err, sizeof(err)), 0,
           "one for another pid: none");
    ok(getenv(UPGRADE_ENV) == NULL, "removed all the same");
    put((long)getppid());
    is_int(upgrade_take(&u, 0, err, sizeof(err)), 0,
           "our parent's, for a start: none");
    put((long)getppid());
    is_int(upgrade_take(&u, 1, err, sizeof(err)), 1,
           "our parent's, for --check (the dry run): taken");
    setenv(UPGRADE_ENV, "garbage", 1);
    is_int(upgrade_take(&u, 0, err, sizeof(err)), -1, "malformed: -1");
    ok(getenv(UPGRADE_ENV) == NULL, "and removed");
}

int
main(void)
{
    test_round_trip();
    test_refused();
    test_take();
    return done_testing();
}
