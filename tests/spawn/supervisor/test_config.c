/*
 * test_config.c: tfb-spawn's options from flags and the environment
 * (spawn/supervisor/config.c).  The parser itself, durations included, is
 * tests/spawn/core/test_opt.c's.
 */
#include "../../../spawn/supervisor/config.c"

#include <ctype.h>
#include <stdlib.h>

#include "harness.h"
#include "../../../spawn/supervisor/upgrade.h"
#include "scoreboard.h"
#include "spawn/envscan.inc"

static char err[512];

/* parse: config_parse on a NULL-terminated list of words. */
static int
parse(struct config *c, const char *const *words)
{
    static char *argv[64];
    static char store[64][128];
    int argc = 0;

    for (; words[argc] != NULL; argc++) {
        snprintf(store[argc], sizeof(store[argc]), "%s", words[argc]);
        argv[argc] = store[argc];
    }
    argv[argc] = NULL;
    err[0] = '\0';
    return config_parse(c, argc, argv, 2, err, sizeof(err));
}

/* clean_env: none of our variables, whatever make test runs under. */
static void
clean_env(void)
{
    size_t i;

    for (i = 0; i < NOPTS; i++)
        if (opts[i].env != NULL)
            unsetenv(opts[i].env);
}

static void
test_defaults(void)
{
    static const char *const w[] = {"tfb-spawn", NULL};
    struct config c;

    is_int(parse(&c, w), 0, "no option at all");
    is_int(c.workers, 2, "workers default to the cores");
    is_int(c.max_workers, 64, "max-workers defaults to 64");
    is_int(c.backlog, 4096, "backlog 4096");
    is_int(c.socket_mode, 0660, "socket mode 0660");
    is_int(c.graceful_ms, 30000, "graceful timeout 30 s");
    is_int(c.request_timeout_ms, 30000, "request timeout 30 s");
    is_int(c.max_requests, 0, "no max-requests");
    ok(c.bind == NULL && c.worker_argv == NULL && c.user == NULL,
       "no bind, no worker command, no user");
}

static void
test_flags(void)
{
    static const char *const w[] = {"tfb-spawn",
                                    "-w",
                                    "4",
                                    "--bind=127.0.0.1:9000",
                                    "--max-requests",
                                    "1000",
                                    "--max-requests-jitter",
                                    "50",
                                    "--graceful-timeout",
                                    "5s",
                                    "--request-timeout",
                                    "500ms",
                                    "--socket-mode",
                                    "0600",
                                    "--log-level",
                                    "debug",
                                    "-p",
                                    "/run/p.pid",
                                    "--",
                                    "/bin/worker",
                                    "--x",
                                    NULL};
    struct config c;

    is_int(parse(&c, w), 0, "a full command line");
    is_int(c.workers, 4, "-w 4");
    is_str(c.bind, "127.0.0.1:9000", "--bind=ADDR");
    is_int(c.max_requests, 1000, "--max-requests");
    is_int(c.max_requests_jitter, 50, "--max-requests-jitter");
    is_int(c.graceful_ms, 5000, "--graceful-timeout 5s");
    is_int(c.request_timeout_ms, 500, "--request-timeout 500ms");
    is_int(c.socket_mode, 0600, "--socket-mode is octal");
    is_int(c.log_level, LOG_DEBUG, "--log-level debug");
    is_str(c.pid_file, "/run/p.pid", "-p");
    ok(c.worker_argv != NULL && strcmp(c.worker_argv[0], "/bin/worker") == 0 &&
           strcmp(c.worker_argv[1], "--x") == 0 && c.worker_argv[2] == NULL,
       "the worker command follows --, its options untouched");
}

static void
test_worker_without_dashes(void)
{
    static const char *const w[] = {"tfb-spawn", "-w", "2", "/bin/worker",
                                    "--bind",    "x",  NULL};
    struct config c;

    is_int(parse(&c, w), 0, "worker command without --");
    ok(c.bind == NULL && c.worker_argv != NULL &&
           strcmp(c.worker_argv[1], "--bind") == 0,
       "options after the worker's name are the worker's");
}

static void
test_env(void)
{
    static const char *const none[] = {"tfb-spawn", NULL};
    static const char *const flag[] = {"tfb-spawn", "--workers", "7", NULL};
    struct config c;

    /* The Makefile's WORKERS is deploy/stack's business, not ours. */
    setenv("WORKERS", "5", 1);
    parse(&c, none);
    is_int(c.workers, 2, "WORKERS=5 is not read: the default, the cores");
    setenv("WORKERS", "many", 1);
    is_int(parse(&c, none), 0, "nor is WORKERS=many an error");
    setenv("TFB_SPAWN_WORKERS", "3", 1);
    parse(&c, none);
    is_int(c.workers, 3, "TFB_SPAWN_WORKERS=3");
    unsetenv("WORKERS");
    parse(&c, flag);
    is_int(c.workers, 7, "a flag wins over the environment");
    setenv("TFB_SPAWN_MAX_REQUESTS_JITTER", "9", 1);
    setenv("TFB_SPAWN_REQUEST_TIMEOUT", "2m", 1);
    setenv("TFB_SPAWN_BIND", "/tmp/x.sock", 1);
    parse(&c, none);
    is_int(c.max_requests_jitter, 9, "TFB_SPAWN_MAX_REQUESTS_JITTER");
    is_int(c.request_timeout_ms, 120000, "TFB_SPAWN_REQUEST_TIMEOUT=2m");
    is_str(c.bind, "/tmp/x.sock", "TFB_SPAWN_BIND");
    setenv("TFB_SPAWN_BACKLOG", "lots", 1);
    is_int(parse(&c, none), -1, "a bad variable is an error");
    ok(strstr(err, "TFB_SPAWN_BACKLOG") != NULL, "which names the variable: %s",
       err);
    clean_env();
}

static void
test_errors(void)
{
    static const struct {
        const char *words[6];
        const char *says;
    } cases[] = {
        {{"tfb-spawn", "-w", "0"}, "--workers"},
        {{"tfb-spawn", "-w", "abc"}, "'abc'"},
        {{"tfb-spawn", "-w", "4097"}, "[1, 4096]"},
        {{"tfb-spawn", "--socket-mode", "999"}, "octal"},
        {{"tfb-spawn", "--log-level", "loud"}, "loud"},
        {{"tfb-spawn", "--request-timeout", "5x"}, "duration"},
        {{"tfb-spawn", "--frobnicate"}, "--frobnicate"},
        {{"tfb-spawn", "-z"}, "-z"},
        {{"tfb-spawn", "--bind"}, "needs a value"},
        {{"tfb-spawn", "--bind="}, "empty"},
        {{"tfb-spawn", "-w", "5", "--max-workers", "3"}, "--workers-max 3"},
        {{"tfb-spawn", "--graceful-timeout", "0"}, "above 0"},
        {{"tfb-spawn", "--group", "www-data"}, "--user"},
    };
    struct config c;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int r = parse(&c, cases[i].words);

        ok(r == -1 && strstr(err, cases[i].says) != NULL,
           "%s %s: rejected, saying %s (%s)", cases[i].words[1],
           cases[i].words[2] ? cases[i].words[2] : "", cases[i].says, err);
    }
}

static void
test_pm(void)
{
    static const char *const w_auto[] = {"tfb-spawn", "-w", "auto", NULL};
    static const char *const pm_auto[] = {
        "tfb-spawn",     "--pm", "auto",          "-w", "4",
        "--workers-min", "2",    "--workers-max", "16", NULL};
    static const char *const dyn[] = {"tfb-spawn", "--pm", "dynamic", NULL};
    static const char *const dyn26[] = {"tfb-spawn",   "--pm", "dynamic",
                                        "--spare-min", "2",    "--spare-max",
                                        "6",           NULL};
    static const char *const ond[] = {"tfb-spawn",      "--pm", "ondemand",
                                      "--idle-timeout", "30s",  NULL};
    static const char *const old_max[] = {"tfb-spawn", "--max-workers", "8",
                                          NULL};
    static const char *const none[] = {"tfb-spawn", NULL};
    struct config c;

    is_int(parse(&c, none), 0, "no option");
    is_int(c.pm, PM_STATIC, "static by default");
    is_int(parse(&c, w_auto), 0, "-w auto");
    ok(c.pm == PM_AUTO && c.workers == 2 && c.workers_min == 1 &&
           c.max_workers == 64 && c.idle_ms == 10000,
       "-w auto: --pm auto from the cores, within 1..64, idle 10 s");
    is_int(parse(&c, pm_auto), 0, "--pm auto with its bounds");
    ok(c.pm == PM_AUTO && c.workers == 4 && c.workers_min == 2 &&
           c.max_workers == 16,
       "--pm auto -w 4 --workers-min 2 --workers-max 16");
    is_int(parse(&c, dyn), 0, "--pm dynamic");
    ok(c.workers == 2 && c.spare_min == 1 && c.spare_max == 3 &&
           c.workers_min == 1,
       "dynamic: spare 1..3, start_servers 1 + (3 - 1) / 2");
    is_int(parse(&c, dyn26), 0, "--pm dynamic with its spares");
    is_int(c.workers, 4, "start_servers 2 + (6 - 2) / 2");
    is_int(parse(&c, ond), 0, "--pm ondemand");
    ok(c.workers == 0 && c.workers_min == 0 && c.idle_ms == 30000,
       "ondemand: no worker until a request comes, --idle-timeout 30s");
    is_int(parse(&c, old_max), 0, "--max-workers");
    is_int(c.max_workers, 8, "--max-workers is --workers-max");
    setenv("TFB_SPAWN_WORKERS", "auto", 1);
    parse(&c, none);
    is_int(c.pm, PM_AUTO, "TFB_SPAWN_WORKERS=auto");
    clean_env();
}

static void
test_pm_errors(void)
{
    static const struct {
        const char *words[8];
        const char *says;
    } cases[] = {
        {{"tfb-spawn", "-w", "auto", "--pm", "static"},
         "-w auto is --pm auto, not --pm static"},
        {{"tfb-spawn", "--workers-min", "2"},
         "--workers-min belongs to --pm dynamic, ondemand or auto, not --pm "
         "static"},
        {{"tfb-spawn", "--pm", "auto", "--spare-min", "1"},
         "--spare-min belongs to --pm dynamic"},
        {{"tfb-spawn", "--pm", "dynamic", "--idle-timeout", "5s"},
         "--idle-timeout belongs to --pm ondemand or auto"},
        {{"tfb-spawn", "--pm", "auto", "--workers-min", "10", "--workers-max",
          "5"},
         "--workers-min 10 is more than --workers-max 5"},
        {{"tfb-spawn", "--pm", "auto", "-w", "1", "--workers-min", "2"},
         "1 workers is fewer than --workers-min 2"},
        {{"tfb-spawn", "--pm", "dynamic", "--spare-min", "4", "--spare-max",
          "2"},
         "--spare-min 4 is more than --spare-max 2"},
        {{"tfb-spawn", "--pm", "dynamic", "--spare-max", "10", "--workers-max",
          "5"},
         "--spare-max 10 is more than --workers-max 5"},
        {{"tfb-spawn", "--pm", "fast"},
         "--pm: 'fast' is not one of static, dynamic, ondemand, auto"},
        {{"tfb-spawn", "-w", "autox"},
         "--workers: 'autox' is not a number in [1, 4096] nor auto"},
        {{"tfb-spawn", "--pm", "auto", "--workers-max", "0"},
         "--workers-max: '0' is not a number"},
    };
    struct config c;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int r = parse(&c, cases[i].words);

        if (!ok(r == -1 && strstr(err, cases[i].says) == err,
                "%s %s %s: rejected (%s)", cases[i].words[1],
                cases[i].words[2] ? cases[i].words[2] : "",
                cases[i].words[3] ? cases[i].words[3] : "", err))
            printf("#   want '%s...'\n", cases[i].says);
    }
}

static void
test_max_workers(void)
{
    static const char *const big[] = {"tfb-spawn", "-w", "100", NULL};
    static const char *const help[] = {"tfb-spawn", "--help", NULL};
    struct config c;

    parse(&c, big);
    is_int(c.max_workers, 100, "max-workers follows a large -w");
    parse(&c, help);
    is_int(c.help, 1, "--help");
}

/*
 * test_env_names: config.h's promise, TFB_SPAWN_<NAME> for every option
 * that takes a value, NAME its long flag upper-cased, '-' as '_'.
 */
static void
test_env_names(void)
{
    char want[64], *p;
    size_t i;

    for (i = 0; i < NOPTS; i++) {
        const struct opt *o = &opts[i];

        if (o->name == NULL || o->type == OPT_FLAG || o->type == OPT_SET)
            continue;
        snprintf(want, sizeof(want), "TFB_SPAWN_%s", o->name);
        for (p = want; *p != '\0'; p++)
            *p = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
        if (!ok(o->env != NULL && strcmp(o->env, want) == 0,
                "--%s has the variable %s", o->name, want))
            printf("#   got %s\n", o->env ? o->env : "(none)");
    }
}

static void
test_usage(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);
    int longest = 0;
    char *line;

    config_usage(fp, "tfb-spawn");
    fclose(fp);
    ok(strstr(text, "TFB_SPAWN_MAX_REQUESTS_JITTER") != NULL &&
           strstr(text, "--request-timeout") != NULL &&
           strstr(text, "HUP rolling restart") != NULL,
       "--help lists the options, their variables and the signals");
    for (line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n"))
        if ((int)strlen(line) > longest)
            longest = (int)strlen(line);
    ok(longest <= 80, "--help fits 80 columns (longest %d)", longest);
    free(text);
}

/* is_row: name is the variable of a row of config.c's table. */
static int
is_row(const char *name)
{
    size_t i;

    for (i = 0; i < NOPTS; i++)
        if (opts[i].env != NULL && strcmp(opts[i].env, name) == 0)
            return 1;
    return 0;
}

/*
 * test_env_table: spawn/ reads no variable of ours behind the table but
 * the scoreboard's handoff and the supervisor's own to its next image
 * (upgrade.h), and no application's (PGOPTIONS,
 * TFB_MAX_REQUESTS, the Makefile's WORKERS: none is a row, nor allowed).
 */
static void
test_env_table(void)
{
    static const char *const files[] = {
        "spawn/supervisor/*.c", "spawn/supervisor/*.h", "spawn/core/*.c",
        "spawn/core/*.h", NULL};
    static const char *const handoff[] = {SB_ENV_FD, SB_ENV_SLOT, UPGRADE_ENV,
                                          NULL};
    static const char *const by_name[] = {"opt.c", "scoreboard.c", "upgrade.c",
                                          NULL};
    /* systemd's socket activation, and PATH for the worker's command;
     * no PG*: the supervisor knows no database. */
    static const char *const foreign[] = {"LISTEN_*", "PATH", NULL};
    size_t i;
    int workers = 0;

    env_scan("spawn/", files, foreign, is_row, handoff, by_name);
    for (i = 0; i < NOPTS; i++)
        workers += opts[i].env != NULL && strcmp(opts[i].env, "WORKERS") == 0;
    is_int(workers, 0, "no row reads the Makefile's WORKERS");
}

int
main(void)
{
    clean_env();
    test_defaults();
    test_flags();
    test_worker_without_dashes();
    test_env();
    test_errors();
    test_max_workers();
    test_pm();
    test_pm_errors();
    test_env_names();
    test_usage();
    test_env_table();
    return done_testing();
}
