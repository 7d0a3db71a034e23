/*
 * test_main.c: tfb-fcgi's options and start-up (app/main.c).
 *
 * main.c's main() is renamed so that this file has its own.  The option
 * table is read through opt_parse() as parse_options() reads it; what
 * exits (--help, a bad option, a fatal start-up error, main itself) runs
 * in a forked child whose status and output are read here.
 */
#define main tfb_fcgi_main
int tfb_fcgi_main(int argc, char **argv);
#include "../../app/main.c"
#undef main

#include <signal.h>
#include <sys/wait.h>

#include "harness.h"
#include "spawn/envscan.inc"

static char err[512];
static char *argv[32];
static int argc;

/* words: argv from a NULL-terminated list, in writable storage. */
static void
words(const char *const *w)
{
    static char store[32][256];

    for (argc = 0; w[argc] != NULL && argc < 31; argc++) {
        snprintf(store[argc], sizeof(store[argc]), "%s", w[argc]);
        argv[argc] = store[argc];
    }
    argv[argc] = NULL;
}

/* parse: opt_parse on opts from parse_options()'s defaults. */
static int
parse(struct options *o, const char *const *w)
{
    memset(o, 0, sizeof(*o));
    o->backlog = 4096;
    o->db_mode = DB_PERSISTENT;
    o->log_level = LOG_INFO;
    words(w);
    err[0] = '\0';
    return opt_parse(opts, NOPTS, o, argc, argv, 0, err, sizeof(err));
}

static void
test_defaults(void)
{
    static const char *const none[] = {"tfb-fcgi", NULL};
    struct options o;

    /* As main() hands it over. */
    memset(&o, 0, sizeof(o));
    words(none);
    parse_options(argc, argv, &o);
    is_int(o.backlog, 4096, "parse_options: backlog 4096");
    is_int(o.db_mode, DB_PERSISTENT, "db-mode persistent");
    is_int(o.log_level, LOG_INFO, "log level info");

    is_int(parse(&o, none), 1, "no option at all");
    ok(o.bind == NULL && o.conninfo == NULL && o.log_file == NULL,
       "no bind, no conninfo, no log file");
    ok(o.max_requests == 0 && o.cache_ttl == 0 && o.help == 0,
       "no max-requests, no cache ttl, no help");
}

static void
test_flags(void)
{
    static const char *const shorts[] = {
        "tfb-fcgi", "-b", "/run/t.sock",  "-B", "128", "-d", "host=/x", "-m",
        "1000",     "-l", "/tmp/app.log", "-v", NULL};
    static const char *const longs[] = {"tfb-fcgi",
                                        "--bind=127.0.0.1:9000",
                                        "--backlog=65535",
                                        "--db=dbname=x",
                                        "--db-mode=per-request",
                                        "--max-requests=7",
                                        "--cache-ttl=60",
                                        "--log-file=/tmp/x.log",
                                        "--log-level=error",
                                        "--help",
                                        NULL};
    static const char *const help[] = {"tfb-fcgi", "-h", NULL};
    struct options o;

    is_int(parse(&o, shorts), argc, "every short flag");
    is_str(o.bind, "/run/t.sock", "-b");
    is_int(o.backlog, 128, "-B");
    is_str(o.conninfo, "host=/x", "-d");
    is_int(o.max_requests, 1000, "-m");
    is_str(o.log_file, "/tmp/app.log", "-l");
    is_int(o.log_level, LOG_DEBUG, "-v is --log-level debug");

    is_int(parse(&o, longs), argc, "every long flag");
    is_str(o.bind, "127.0.0.1:9000", "--bind");
    is_int(o.backlog, 65535, "--backlog");
    is_str(o.conninfo, "dbname=x", "--db");
    is_int(o.db_mode, DB_PER_REQUEST, "--db-mode");
    is_int(o.max_requests, 7, "--max-requests");
    is_int(o.cache_ttl, 60, "--cache-ttl");
    is_str(o.log_file, "/tmp/x.log", "--log-file");
    is_int(o.log_level, LOG_ERR, "--log-level");
    is_int(o.help, 1, "--help");
    parse(&o, help);
    is_int(o.help, 1, "-h");
}

static void
test_levels_and_modes(void)
{
    static const struct {
        const char *words[4];
        int level;
    } levels[] = {
        {{"tfb-fcgi", "-q"}, LOG_WARN},
        {{"tfb-fcgi", "--quiet"}, LOG_WARN},
        {{"tfb-fcgi", "--verbose"}, LOG_DEBUG},
        {{"tfb-fcgi", "-v", "-q"}, LOG_WARN},
        {{"tfb-fcgi", "-q", "--log-level=debug"}, LOG_DEBUG},
        {{"tfb-fcgi", "--log-level=warn", "-v"}, LOG_DEBUG},
        {{"tfb-fcgi", "--log-level", "info"}, LOG_INFO},
    };
    static const char *const persistent[] = {"tfb-fcgi", "--db-mode",
                                             "persistent", NULL};
    static const char *const other[] = {"tfb-fcgi", "--db-mode", "pooled",
                                        NULL};
    static const char *const loud[] = {"tfb-fcgi", "--log-level", "loud", NULL};
    struct options o;
    size_t i;

    for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        parse(&o, levels[i].words);
        is_int(o.log_level, levels[i].level,
               "-v/-q/--log-level: the last wins");
    }
    parse(&o, persistent);
    is_int(o.db_mode, DB_PERSISTENT, "--db-mode persistent");
    is_int(parse(&o, other), -1, "--db-mode pooled is refused");
    is_str(err, "--db-mode: 'pooled' is not one of persistent, per-request",
           "naming the choices");
    is_int(parse(&o, loud), -1, "--log-level loud is refused");
    is_str(err, "--log-level: 'loud' is not one of debug, info, warn, error",
           "naming the levels");
}

/*
 * option_text: the option that the variable var sets, in o, as text
 * ("(unset)" for a NULL string): the field the test expects it to set,
 * named here, not found through the table under test.
 */
static const char *
option_text(const struct options *o, const char *var)
{
    static char text[64];

    if (strcmp(var, "TFB_MAX_REQUESTS") == 0)
        snprintf(text, sizeof(text), "%ld", o->max_requests);
    else if (strcmp(var, "TFB_SERVER_TIMING") == 0)
        snprintf(text, sizeof(text), "%d", o->server_timing);
    else if (strcmp(var, "FCGI_WEB_SERVER_ADDRS") == 0)
        return o->web_server_addrs ? o->web_server_addrs : "(unset)";
    else
        return o->read_conninfo ? o->read_conninfo : "(unset)";
    return text;
}

/*
 * test_env: the variables of the table's rows, a row of cases each: the
 * variable set ("NAME=VALUE", or "NAME": unset) under the words after
 * tfb-fcgi's name, then the option it sets as text, or, for a want
 * starting "error: ", the start of the message that refuses it.  A flag's
 * variable is a boolean ("0" is off); a flag wins over a variable.
 */
static void
test_env(void)
{
    static const char *const rows[][4] = {
        {"TFB_MAX_REQUESTS=100", "", "100", "TFB_MAX_REQUESTS"},
        {"TFB_MAX_REQUESTS=100", "-m 5", "5", "-m wins over TFB_MAX_REQUESTS"},
        {"TFB_MAX_REQUESTS=", "", "0",
         "an empty TFB_MAX_REQUESTS counts as unset"},
        {"TFB_MAX_REQUESTS=many", "", "error: TFB_MAX_REQUESTS: 'many'",
         "a bad TFB_MAX_REQUESTS is an error"},
        {"TFB_SERVER_TIMING=1", "", "1",
         "TFB_SERVER_TIMING=1: Server-Timing on"},
        {"TFB_SERVER_TIMING=on", "", "1", "TFB_SERVER_TIMING=on: on"},
        {"TFB_SERVER_TIMING=yes", "", "1", "TFB_SERVER_TIMING=yes: on"},
        {"TFB_SERVER_TIMING=true", "", "1", "TFB_SERVER_TIMING=true: on"},
        {"TFB_SERVER_TIMING=0", "", "0", "TFB_SERVER_TIMING=0: off"},
        {"TFB_SERVER_TIMING=off", "", "0", "TFB_SERVER_TIMING=off: off"},
        {"TFB_SERVER_TIMING=no", "", "0", "TFB_SERVER_TIMING=no: off"},
        {"TFB_SERVER_TIMING=false", "", "0", "TFB_SERVER_TIMING=false: off"},
        {"TFB_SERVER_TIMING=0", "--server-timing", "1",
         "--server-timing wins over TFB_SERVER_TIMING=0"},
        {"TFB_SERVER_TIMING=2", "",
         "error: TFB_SERVER_TIMING: '2' is neither on",
         "TFB_SERVER_TIMING=2 is an error"},
        {"TFB_SERVER_TIMING", "", "0", "unset: off"},
        {"FCGI_WEB_SERVER_ADDRS=127.0.0.1, 10.0.0.2", "", "127.0.0.1, 10.0.0.2",
         "FCGI_WEB_SERVER_ADDRS is --web-server-addrs' variable"},
        {"FCGI_WEB_SERVER_ADDRS=127.0.0.1", "--web-server-addrs ::1", "::1",
         "and the flag wins over it"},
        {"FCGI_WEB_SERVER_ADDRS", "", "(unset)",
         "unset: any front server may connect"},
        {"TFB_DB_READ", "--db-read host=/s,/p", "host=/s,/p", "--db-read"},
        {"TFB_DB_READ=host=/e", "--db host=/p", "host=/e", "TFB_DB_READ"},
        {"TFB_DB_READ=host=/e", "--db-read host=/s,/p", "host=/s,/p",
         "--db-read wins over TFB_DB_READ"},
    };
    char var[64], line[128], *eq;
    const char *w[8] = {"tfb-fcgi"};
    struct options o;
    size_t i, n;
    int r;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        snprintf(var, sizeof(var), "%s", rows[i][0]);
        if ((eq = strchr(var, '=')) != NULL) {
            *eq = '\0';
            setenv(var, eq + 1, 1);
        }
        snprintf(line, sizeof(line), "%s", rows[i][1]);
        for (n = 1; n < 7 && (w[n] = strtok(n == 1 ? line : NULL, " ")); n++)
            continue;
        w[n] = NULL;
        r = parse(&o, w);
        if (strncmp(rows[i][2], "error: ", 7) != 0) {
            /* Refused, the message shows as what was got. */
            is_str(r == -1 ? err : option_text(&o, var), rows[i][2],
                   rows[i][3]);
        } else {
            is_int(r, -1, rows[i][3]);
            ok(strncmp(err, rows[i][2] + 7, strlen(rows[i][2] + 7)) == 0,
               "which names the variable: %s", err);
        }
        unsetenv(var);
    }
}

/* test_pool_rules: our rules for what a pool tells us. */
static void
test_pool_rules(void)
{
    /* statement_timeout: a tenth below the limit, within [100 ms, 1 s]. */
    is_int(statement_timeout_ms(30000), 29000, "30 s limit: 29 s");
    is_int(statement_timeout_ms(5000), 4500, "5 s limit: 4.5 s");
    is_int(statement_timeout_ms(2000), 1800, "2 s limit: 1.8 s");
    is_int(statement_timeout_ms(500), 400, "500 ms limit: 400 ms");
    is_int(statement_timeout_ms(100), 1, "100 ms limit: at least 1");
    /* max-requests: whichever comes first; 0 is none. */
    is_int(first_limit(0, 0), 0, "no limit and none: none");
    is_int(first_limit(0, 300), 300, "none of ours, the pool's 300: 300");
    is_int(first_limit(100, 0), 100, "our 100, none from the pool: 100");
    is_int(first_limit(100, 300), 100, "our 100, the pool's 300: 100");
    is_int(first_limit(500, 300), 300, "our 500, the pool's 300: 300");
}

/* The worker's own --max-requests and answer deadline, for run_pool_word. */
static long own_max, own_answer_ms = DB_TIMEOUT_MS;

/* run_pool_word: pool_word() as main() calls it; prints max-requests. */
static void
run_pool_word(const void *unused)
{
    struct handler_ctx ctx = {0};
    struct worker_opts wo = {0};

    (void)unused;

    log_init("tfb-fcgi", LOG_INFO);
    if ((ctx.db = db_new(NULL, DB_PERSISTENT)) == NULL)
        _exit(9);
    wo.max_requests = own_max;
    pool_word(&ctx, &wo, own_answer_ms);
    printf("max-requests %ld\n", wo.max_requests);
    db_free(ctx.db);
}

/*
 * test_pool_word: a worker under a pool reads the pool's request time
 * limit and its slot's max-requests in the scoreboard (tfb-spawn sets no
 * variable of ours), and applies them by the rules above; without a pool
 * its own --max-requests stands and there is no statement_timeout.
 */
static void
test_pool_word(void)
{
    struct scoreboard *sb = sb_create(2);
    char fd[16];

    if (sb == NULL) {
        ok(0, "sb_create: %s", strerror(errno));
        return;
    }
    sb_set_request_limit(sb, 2000);
    sb_slot_reset(sb_slot(sb, 1), SB_STARTING, sb_now_ns());
    sb_set_max_requests(sb_slot(sb, 1), 300);
    snprintf(fd, sizeof(fd), "%d", sb_fd(sb));
    setenv(SB_ENV_FD, fd, 1);
    setenv(SB_ENV_SLOT, "1", 1);

    own_max = 0;
    in_child(run_pool_word, NULL);
    said("max-requests 300\n", "in a pool: the slot's max-requests, 300");
    said("the pool's request time limit is 2.0 s: statement_timeout 1800 ms",
         "the pool's limit of 2 s: statement_timeout 1800 ms, and it says so");
    own_answer_ms = 1000;
    in_child(run_pool_word, NULL);
    said("statement_timeout 900 ms",
         "a --db-timeout of 1 s below the pool's limit: statement_timeout "
         "100 ms under it, so that the server cancels first");
    own_answer_ms = DB_TIMEOUT_MS;
    sb_set_request_limit(sb, 30000);
    in_child(run_pool_word, NULL);
    said("statement_timeout 4900 ms",
         "the default pool limit of 30 s: statement_timeout under the "
         "default 5 s answer deadline, not 29 s");
    sb_set_request_limit(sb, 2000);
    own_max = 100;
    in_child(run_pool_word, NULL);
    said("max-requests 100\n", "our --max-requests 100 comes first");
    own_max = 500;
    in_child(run_pool_word, NULL);
    said("max-requests 300\n", "the pool's 300 comes before our 500");

    unsetenv(SB_ENV_FD);
    unsetenv(SB_ENV_SLOT);
    own_max = 100;
    in_child(run_pool_word, NULL);
    said("max-requests 100\n", "without a pool: our own --max-requests");
    ok(strstr(child_out, "statement_timeout") == NULL,
       "and no statement_timeout of ours");
    sb_free(sb);
}

/* test_env_table: app/ reads no variable of ours behind the table. */
static void
test_env_table(void)
{
    static const char *const files[] = {"app/*.c", "app/*.h", NULL};
    static const char *const handoff[] = {SB_ENV_FD, SB_ENV_SLOT, NULL};

    static const char *const foreign[] = {"PG*", NULL};

    env_scan_table("app/", files, foreign, opts, NOPTS, handoff, NULL);
}

static void
test_bad(void)
{
    static const struct {
        const char *words[4];
        const char *says;
    } cases[] = {
        {{"tfb-fcgi", "extra"}, "unexpected argument 'extra'"},
        {{"tfb-fcgi", "-v", "--", "extra"}, "unexpected argument 'extra'"},
        {{"tfb-fcgi", "-B", "0"},
         "--backlog: '0' is not a number in [1, 65535]"},
        {{"tfb-fcgi", "-B", "65536"}, "--backlog: '65536' is not a number"},
        {{"tfb-fcgi", "-m", "-1"}, "--max-requests: '-1' is not a number"},
        {{"tfb-fcgi", "--cache-ttl", "2000000000"},
         "--cache-ttl: '2000000000' is not a number"},
        {{"tfb-fcgi", "--bind="}, "--bind: empty value"},
        {{"tfb-fcgi", "-d"}, "option '-d' needs a value"},
        {{"tfb-fcgi", "--listen", "x"}, "unknown option '--listen'"},
        {{"tfb-fcgi", "--verbose=2"}, "option '--verbose' takes no value"},
    };
    struct options o;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        refused(parse(&o, cases[i].words), err, cases[i].words, cases[i].says);
}

/* run_parse_options, run_main: on the words w (in a child). */
static void
run_parse_options(const void *w)
{
    struct options o = {0};

    words(w);
    parse_options(argc, argv, &o);
}

static void
run_main(const void *w)
{
    words(w);
    exit(tfb_fcgi_main(argc, argv));
}

static void
test_exits(void)
{
    static const char *const help[] = {"tfb-fcgi", "--help", NULL};
    static const char *const bad[] = {"tfb-fcgi", "--db-mode", "x", NULL};
    static const char *const word[] = {"tfb-fcgi", "serve", NULL};

    is_int(in_child(run_parse_options, help), 0, "--help exits 0");
    ok(strncmp(child_out, "usage: tfb-fcgi [options]\n", 26) == 0,
       "after the usage, on stdout");
    is_int(in_child(run_parse_options, bad), 2, "a bad option exits 2");
    said("error: --db-mode: 'x' is not one of persistent, per-request "
         "(see --help)\n",
         "with the reason and a pointer to --help");
    is_int(in_child(run_parse_options, word), 2, "an unexpected word exits 2");
    said("unexpected argument 'serve' (see --help)", "naming it");
}

static void
test_usage(void)
{
    char *text = NULL, *line;
    size_t len = 0, i;
    FILE *fp = open_memstream(&text, &len);
    int longest = 0, all = 1;
    char flag[64];

    usage(fp);
    fclose(fp);
    for (i = 0; i < NOPTS; i++) {
        snprintf(flag, sizeof(flag), "--%s", opts[i].name);
        if (strstr(text, flag) == NULL) {
            all = 0;
            printf("#   %s missing\n", flag);
        }
    }
    ok(all, "usage lists every flag of the table");
    ok(strstr(text, "[env TFB_MAX_REQUESTS]") != NULL,
       "and the variable of --max-requests");
    ok(strstr(text, "[env TFB_SERVER_TIMING=on|off, 1|0]") != NULL &&
           strstr(text, "[env FCGI_WEB_SERVER_ADDRS]") != NULL,
       "of --server-timing, with its values, and of --web-server-addrs");
    ok(strstr(text, "libpq's PG*") != NULL &&
           strstr(text, "LISTEN_FDS and LISTEN_PID") != NULL &&
           strstr(text, "TFB_SCOREBOARD_FD and TFB_WORKER_SLOT") != NULL,
       "and other programs' variables: PG*, LISTEN_FDS, LISTEN_PID, the "
       "scoreboard's");
    ok(strstr(text, "Exit status 2") != NULL, "and what status 2 means");
    for (line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n"))
        if ((int)strlen(line) > longest)
            longest = (int)strlen(line);
    ok(longest <= 80, "usage fits 80 columns (longest %d)", longest);
    free(text);
}

/*
 * test_main: the whole start-up, with a socket of its own and a database
 * that is not there (no connection: /plaintext needs none, and a database
 * that is down is not fatal), stopped by SIGTERM.
 */
static struct options db_opts;

static void
run_open_db(const void *unused)
{
    struct handler_ctx ctx = {0};

    (void)unused;
    open_db(&db_opts, &ctx);
}

/*
 * test_db_read: --db-read (or TFB_DB_READ) gives the reads a handle of
 * their own and /updates one on --db; without it, one handle serves all.
 */
static void
test_db_read(void)
{
    static const char *const flag[] = {"tfb-fcgi",  "--db",       "host=/p",
                                       "--db-read", "host=/s,/p", NULL};
    static const char *const none[] = {"tfb-fcgi", "--db", "host=/p", NULL};
    struct handler_ctx ctx = {0};
    struct options o;

    parse(&o, none);
    open_db(&o, &ctx);
    ok(ctx.db != NULL && ctx.db_write == NULL,
       "without --db-read: one handle, for every route");
    db_free(ctx.db);
    parse(&o, flag);
    open_db(&o, &ctx);
    ok(ctx.db != NULL && ctx.db_write != NULL && ctx.db != ctx.db_write,
       "with --db-read: a handle for the reads, another for /updates");
    db_free(ctx.db);
    db_free(ctx.db_write);

    db_opts.read_conninfo = "host";
    is_int(in_child(run_open_db, NULL), 2,
           "a --db-read that does not parse exits 2");
    said("--db-read: cannot use it", "naming the option");
}

static void
test_main_runs(void)
{
    char dir[] = "/tmp/test_fcgi_main.XXXXXX", sock[128], conninfo[160];
    const char *w[] = {"tfb-fcgi", "--bind", sock, "--db", conninfo, NULL};
    int p[2], st, i;
    pid_t pid;

    if (mkdtemp(dir) == NULL || pipe(p) == -1) {
        ok(0, "set-up: %s", strerror(errno));
        return;
    }
    snprintf(sock, sizeof(sock), "%s/fcgi.sock", dir);
    snprintf(conninfo, sizeof(conninfo), "host=%s/nodb connect_timeout=1", dir);
    fflush(stdout);
    if ((pid = fork()) == 0) {
        close(p[0]);
        dup2(p[1], STDERR_FILENO);
        close(p[1]);
        run_main(w);
    }
    close(p[1]);
    for (i = 0; i < 300 && access(sock, F_OK) == -1; i++)
        sleep_ms(10);
    ok(access(sock, F_OK) == 0, "main binds --bind's socket");
    sleep_ms(100);
    kill(pid, SIGTERM);
    read_out(p[0], 5000);
    close(p[0]);
    st = wait_exit(pid, 3000);
    ok(st == 0, "SIGTERM: main returns 0 (%d)", st);
    said("warn: db: cannot connect", "a database that is down is no error");
    ok(access(sock, F_OK) == -1, "the socket is removed at exit");
    rmdir(dir);

    setenv("FCGI_WEB_SERVER_ADDRS", "127.0.0.1,nginx", 1);
    is_int(in_child(run_main, w), 2, "a bad FCGI_WEB_SERVER_ADDRS exits 2");
    said("--web-server-addrs or FCGI_WEB_SERVER_ADDRS: 'nginx' is not an "
         "IPv4 or IPv6 address",
         "naming the entry");
    unsetenv("FCGI_WEB_SERVER_ADDRS");
}

int
main(void)
{
    unsetenv("TFB_MAX_REQUESTS");
    unsetenv("TFB_DB_READ");
    unsetenv("FCGI_WEB_SERVER_ADDRS");
    unsetenv("TFB_SERVER_TIMING");
    unsetenv(SB_ENV_FD);
    unsetenv(SB_ENV_SLOT);
    test_defaults();
    test_flags();
    test_levels_and_modes();
    test_env();
    test_pool_rules();
    test_pool_word();
    test_env_table();
    test_bad();
    test_exits();
    test_usage();
    test_db_read();
    test_main_runs();
    return done_testing();
}
