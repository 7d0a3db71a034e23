/*
 * test_opt.c: the option parser both programs share (spawn/core/opt.c): numbers
 * and durations, every type of row, variables before flags, where the
 * options end, the error messages, and --help's lines.
 */
#include "../../../spawn/core/opt.c"

#include <limits.h>
#include <stdlib.h>

#include "harness.h"

struct conf {
    int flag, level, i;
    long l, ms;
    int mode;
    const char *name;
    int color;
    int size;
};

#define AT(field) offsetof(struct conf, field)

static const char *const colors[] = {"red", "green", "blue", NULL};
static const char *const sizes[] = {"auto", "huge", NULL};

/* One row of each type; T_OLD_INT is read first, as tfb-spawn's WORKERS. */
static const struct opt table[] = {
    {NULL, 0, OPT_INT, AT(i), 1, 100, NULL, "T_OLD_INT", NULL, NULL},
    /* A flag takes no value: its arg is never shown. */
    {"flag", 'f', OPT_FLAG, AT(flag), 0, 0, NULL, NULL, "IGNORED", "a flag"},
    {"loud", 'v', OPT_SET, AT(level), 0, 7, NULL, NULL, NULL, "level 7"},
    {"int", 'i', OPT_INT, AT(i), 1, 100, NULL, "T_INT", "N", "an int"},
    {"long", 0, OPT_LONG, AT(l), -5, 1L << 40, NULL, "T_LONG", "N", "a long"},
    {"time", 't', OPT_DURATION, AT(ms), 0, 0, NULL, "T_TIME", "TIME", "a time"},
    {"mode", 0, OPT_OCTAL, AT(mode), 0, 0777, NULL, "T_MODE", "MODE", "a mode"},
    {"name", 'n', OPT_STRING, AT(name), 0, 0, NULL, "T_NAME", "NAME",
     "a name, whose help\ntakes two lines"},
    {"color", 0, OPT_CHOICE, AT(color), 0, 0, colors, "T_COLOR", "COLOR",
     "one of three"},
    {"hush", 0, OPT_SET, AT(level), 0, 2, NULL, NULL, NULL, "level 2"},
    {"size", 0, OPT_INT, AT(size), 0, 9, sizes, "T_SIZE", "N|auto",
     "a number or a word"},
};

#define NTABLE (sizeof(table) / sizeof(table[0]))

static char err[512];
static char *argv[32];
static int argc;

/* parse: opt_parse on a NULL-terminated list of words, from defaults. */
static int
parse(struct conf *c, int stop_at_word, const char *const *words)
{
    static char store[32][128];

    memset(c, 0, sizeof(*c));
    c->i = 50;
    c->l = -1;
    for (argc = 0; words[argc] != NULL; argc++) {
        snprintf(store[argc], sizeof(store[argc]), "%s", words[argc]);
        argv[argc] = store[argc];
    }
    argv[argc] = NULL;
    err[0] = '\0';
    return opt_parse(table, NTABLE, c, argc, argv, stop_at_word, err,
                     sizeof(err));
}

static void
test_long(void)
{
    static const struct {
        const char *s;
        long min, max, want; /* want -1: rejected */
    } cases[] = {
        {"0", 0, 10, 0},
        {"7", 0, 10, 7},
        {"-3", -5, 5, -3},
        {"-0", 0, 5, 0},
        {"10", 0, 10, 10},
        {"11", 0, 10, -1},
        {"0", 1, 10, -1},
        {"-6", -5, 5, -1},
        {"+5", 0, 10, -1},
        {" 5", 0, 10, -1},
        {"5 ", 0, 10, -1},
        {"\t5", 0, 10, -1},
        {"", 0, 10, -1},
        {"-", -5, 5, -1},
        {"--5", -10, 10, -1},
        {"5x", 0, 10, -1},
        {"0x10", 0, 100, -1},
        {"1e3", 0, 10000, -1},
        {"99999999999999999999", 0, LONG_MAX, -1},
        {"-99999999999999999999", LONG_MIN, 0, -1},
    };
    size_t i;
    long v;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int r;

        v = 12345;
        r = opt_long(cases[i].s, cases[i].min, cases[i].max, &v);
        if (cases[i].want == -1)
            ok(r == -1 && v == 12345,
               "opt_long '%s' in [%ld, %ld]: rejected, out untouched",
               cases[i].s, cases[i].min, cases[i].max);
        else
            ok(r == 0 && v == cases[i].want, "opt_long '%s' in [%ld, %ld]: %ld",
               cases[i].s, cases[i].min, cases[i].max, cases[i].want);
    }
    ok(opt_long("9223372036854775807", 0, LONG_MAX, &v) == 0 && v == LONG_MAX,
       "opt_long: LONG_MAX itself");
    ok(opt_long("9223372036854775808", 0, LONG_MAX, &v) == -1,
       "opt_long: one past LONG_MAX overflows");
}

static void
test_duration(void)
{
    static const struct {
        const char *s;
        long ms;
    } good[] = {
        {"30", 30000},
        {"30s", 30000},
        {"500ms", 500},
        {"2m", 120000},
        {"0", 0},
        {"0ms", 0},
        {"86400", 86400000},
        {"1440m", 86400000},
        {"86400000ms", 86400000},
        {"007s", 7000},
    };
    static const char *const bad[] = {"",
                                      "-1",
                                      "1.5",
                                      "5h",
                                      "s",
                                      "ms",
                                      " 5",
                                      "5 ",
                                      "+5",
                                      "5S",
                                      "5sec",
                                      "5mss",
                                      "86401",
                                      "1441m",
                                      "86400001ms",
                                      "99999999999",
                                      "99999999999999999999"};
    size_t i;
    long ms;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        ms = -1;
        ok(opt_duration_ms(good[i].s, &ms) == 0 && ms == good[i].ms,
           "duration '%s' is %ld ms (got %ld)", good[i].s, good[i].ms, ms);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ms = -1;
        ok(opt_duration_ms(bad[i], &ms) == -1 && ms == -1,
           "duration '%s' is rejected", bad[i]);
    }
}

static void
test_types(void)
{
    static const char *const all[] = {
        "prog", "-f",     "-v",   "-i",     "5",   "--long",  "-3",    "-t",
        "2m",   "--mode", "0640", "--name", "web", "--color", "green", NULL};
    static const char *const joined[] = {"prog",
                                         "--flag",
                                         "-i7",
                                         "--long=1099511627776",
                                         "--time=500ms",
                                         "--mode=640",
                                         "-nweb",
                                         "--color=blue",
                                         NULL};
    struct conf c;
    int r;

    r = parse(&c, 0, all);
    is_int(r, argc, "every type on one command line");
    is_int(c.flag, 1, "OPT_FLAG stores 1");
    is_int(c.level, 7, "OPT_SET stores the row's max");
    is_int(c.i, 5, "OPT_INT");
    is_int(c.l, -3, "OPT_LONG takes a negative value within its range");
    is_int(c.ms, 120000, "OPT_DURATION in milliseconds");
    is_int(c.mode, 0640, "OPT_OCTAL reads octal");
    ok(c.name == argv[12], "OPT_STRING points into argv");
    is_int(c.color, 1, "OPT_CHOICE stores the index");
    parse(&c, 0, (const char *const[]){"prog", "--size", "0", NULL});
    is_int(c.size, 0, "OPT_INT with words still takes a number");
    parse(&c, 0, (const char *const[]){"prog", "--size", "auto", NULL});
    is_int(c.size, -1, "OPT_INT with words: the first word is -1");
    parse(&c, 0, (const char *const[]){"prog", "--size=huge", NULL});
    is_int(c.size, -2, "and the second -2");
    parse(&c, 0, (const char *const[]){"prog", "-v", "--hush", NULL});
    is_int(c.level, 2, "the last of two OPT_SET rows on one value wins");

    r = parse(&c, 0, joined);
    is_int(r, argc, "values joined to their flags");
    ok(c.flag == 1 && c.i == 7 && c.l == 1L << 40 && c.ms == 500 &&
           c.mode == 0640 && c.color == 2,
       "--flag -i7 --long=2^40 --time=500ms --mode=640 --color=blue");
    is_str(c.name, "web", "-nweb");
}

/*
 * test_refused: bad values and bad words, with or without stop_at_word,
 * refused with a message that names the flag.
 */
static void
test_refused(void)
{
    static const struct {
        const char *words[4];
        const char *says;
    } cases[] = {
        {{"prog", "-i", "101"}, "--int: '101' is not a number in [1, 100]"},
        {{"prog", "--int", "0"}, "--int: '0' is not a number in [1, 100]"},
        {{"prog", "-i", "five"}, "--int: 'five' is not a number in [1, 100]"},
        {{"prog", "--long", "-6"},
         "--long: '-6' is not a number in [-5, 1099511627776]"},
        {{"prog", "-t", "5h"},
         "--time: '5h' is not a duration such as 30, 30s, 500ms or 2m"},
        {{"prog", "--mode", "0980"},
         "--mode: '0980' is not an octal mode such as 0660"},
        {{"prog", "--mode", "01000"},
         "--mode: '01000' is not an octal mode such as 0660"},
        {{"prog", "--mode", "-1"},
         "--mode: '-1' is not an octal mode such as 0660"},
        {{"prog", "--mode="}, "--mode: '' is not an octal mode such as 0660"},
        {{"prog", "--name="}, "--name: empty value"},
        {{"prog", "-n", ""}, "--name: empty value"},
        {{"prog", "--color", "pink"},
         "--color: 'pink' is not one of red, green, blue"},
        {{"prog", "--size", "10"},
         "--size: '10' is not a number in [0, 9] nor auto, huge"},
        {{"prog", "--size", "Auto"}, "--size: 'Auto' is not a number in"},
        {{"prog", "-i"}, "option '-i' needs a value"},
        {{"prog", "--int"}, "option '--int' needs a value"},
        {{"prog", "-f", "--color"}, "option '--color' needs a value"},
        {{"prog", "-z"}, "unknown option '-z'"},
        {{"prog", "-fz"}, "unknown option '-z'"},
        {{"prog", "--frobnicate"}, "unknown option '--frobnicate'"},
        {{"prog", "--frobnicate=3"}, "unknown option '--frobnicate=3'"},
        {{"prog", "--flag=1"}, "option '--flag' takes no value"},
        {{"prog", "--loud=yes"}, "option '--loud' takes no value"},
        {{"prog", "--hush=1"}, "option '--hush' takes no value"},
    };
    struct conf c;
    size_t i;
    int stop;

    for (stop = 0; stop <= 1; stop++) {
        printf("# stop_at_word %d\n", stop);
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
            refused(parse(&c, stop, cases[i].words), err, cases[i].words,
                    cases[i].says);
    }
}

static void
test_env(void)
{
    static const char *const none[] = {"prog", NULL};
    static const char *const flags[] = {"prog",   "-i",   "9",
                                        "--name", "flag", NULL};
    struct conf c;

    setenv("T_INT", "7", 1);
    setenv("T_LONG", "-2", 1);
    setenv("T_TIME", "3s", 1);
    setenv("T_MODE", "600", 1);
    setenv("T_NAME", "env", 1);
    setenv("T_COLOR", "blue", 1);
    is_int(parse(&c, 0, none), 1, "variables alone");
    ok(c.i == 7 && c.l == -2 && c.ms == 3000 && c.mode == 0600 && c.color == 2,
       "each type from its variable");
    is_str(c.name, "env", "a string from its variable");

    parse(&c, 0, flags);
    is_int(c.i, 9, "a flag wins over its variable");
    is_str(c.name, "flag", "for strings too");
    is_int(c.l, -2, "variables without a flag still count");

    setenv("T_OLD_INT", "3", 1);
    parse(&c, 0, none);
    is_int(c.i, 7, "of two variables for one value, the later row wins");
    unsetenv("T_INT");
    parse(&c, 0, none);
    is_int(c.i, 3, "the earlier row alone");
    unsetenv("T_OLD_INT");

    setenv("T_INT", "", 1);
    setenv("T_NAME", "", 1);
    is_int(parse(&c, 0, none), 1, "empty variables are no error");
    ok(c.i == 50 && c.name == NULL, "an empty variable counts as unset");

    setenv("T_INT", "lots", 1);
    is_int(parse(&c, 0, none), -1, "a bad variable is an error");
    is_str(err, "T_INT: 'lots' is not a number in [1, 100]",
           "which names the variable");
    setenv("T_COLOR", "pink", 1);
    setenv("T_INT", "", 1);
    parse(&c, 0, none);
    is_str(err, "T_COLOR: 'pink' is not one of red, green, blue",
           "a bad choice from a variable");

    unsetenv("T_INT");
    unsetenv("T_LONG");
    unsetenv("T_TIME");
    unsetenv("T_MODE");
    unsetenv("T_NAME");
    unsetenv("T_COLOR");
    parse(&c, 0, none);
    ok(c.i == 50 && c.l == -1 && c.name == NULL,
       "without variables the defaults stay");
}

/*
 * test_env_bool: the variable of a flag (OPT_FLAG, OPT_SET) is a boolean:
 * "=0" turns nothing on, a word that is neither is an error, and the
 * command line's flag still wins.
 */
static void
test_env_bool(void)
{
    static const struct opt rows[] = {
        {"flag", 'f', OPT_FLAG, AT(flag), 0, 0, NULL, "T_FLAG", NULL, "a flag"},
        {"loud", 'v', OPT_SET, AT(level), 0, 7, NULL, "T_LOUD", NULL, "7"},
    };
    static const char *const on[] = {"1", "on", "yes", "true", "ON", "True"};
    static const char *const off[] = {"0", "off", "no", "false", "OFF", "No"};
    char *words[] = {NULL, NULL}, prog[] = "prog", f[] = "-f", *text = NULL;
    struct conf c;
    size_t i, len = 0;
    int good = 1;
    FILE *fp;

    words[0] = prog;
    for (i = 0; i < sizeof(on) / sizeof(on[0]); i++) {
        memset(&c, 0, sizeof(c));
        setenv("T_FLAG", on[i], 1);
        setenv("T_LOUD", on[i], 1);
        good &= opt_parse(rows, 2, &c, 1, words, 0, err, sizeof(err)) == 1 &&
                c.flag == 1 && c.level == 7;
    }
    ok(good, "1, on, yes, true (any case): the flag's variable sets it");
    good = 1;
    for (i = 0; i < sizeof(off) / sizeof(off[0]); i++) {
        memset(&c, 0, sizeof(c));
        c.flag = 1; /* a default of on, which off turns off */
        c.level = 3;
        setenv("T_FLAG", off[i], 1);
        setenv("T_LOUD", off[i], 1);
        good &= opt_parse(rows, 2, &c, 1, words, 0, err, sizeof(err)) == 1 &&
                c.flag == 0 && c.level == 3;
    }
    ok(good, "0, off, no, false (any case): off; an OPT_SET left as it was");
    setenv("T_FLAG", "0", 1);
    memset(&c, 0, sizeof(c));
    words[1] = f;
    opt_parse(rows, 2, &c, 2, words, 0, err, sizeof(err));
    is_int(c.flag, 1, "T_FLAG=0 and -f: the flag wins");
    setenv("T_FLAG", "maybe", 1);
    is_int(opt_parse(rows, 2, &c, 1, words, 0, err, sizeof(err)), -1,
           "T_FLAG=maybe: an error");
    is_str(err,
           "T_FLAG: 'maybe' is neither on (1, on, yes, true) nor off (0, off, "
           "no, false)",
           "which names the variable and the words it takes");
    setenv("T_FLAG", "", 1);
    memset(&c, 0, sizeof(c));
    is_int(opt_parse(rows, 2, &c, 1, words, 0, err, sizeof(err)), 1,
           "T_FLAG empty: unset, no error");
    unsetenv("T_FLAG");
    unsetenv("T_LOUD");

    fp = open_memstream(&text, &len);
    opt_usage(fp, rows, 1);
    fclose(fp);
    is_str(text,
           "  -f, --flag                   a flag\n"
           "                               [env T_FLAG=on|off, 1|0]\n",
           "--help shows a flag's variable with the values it takes");
    free(text);
}

static void
test_words(void)
{
    static const char *const cmd[] = {"prog", "-f",  "run", "-i",
                                      "5",    "--x", NULL};
    static const char *const dashes[] = {"prog", "-f", "--", "-i", "5", NULL};
    static const char *const word[] = {"prog", "-f", "run", "-i", "5", NULL};
    static const char *const late[] = {"prog", "run", "-f", NULL};
    static const char *const end[] = {"prog", "-i", "5", "--", NULL};
    struct conf c;

    is_int(parse(&c, 1, cmd), 2, "stop_at_word: the first word ends them");
    ok(c.flag == 1 && c.i == 50, "options before it are read, none after");
    is_str(argv[2], "run", "argv[result] is the word");
    is_int(parse(&c, 1, late), 1, "stop_at_word: a word first");
    is_int(c.flag, 0, "and an option after it is left alone");

    is_int(parse(&c, 0, word), -1, "without stop_at_word a word is an error");
    is_str(err, "unexpected argument 'run'", "naming the word");
    is_int(parse(&c, 0, late), -1, "wherever it comes");
    is_str(err, "unexpected argument 'run'", "naming it there too");

    is_int(parse(&c, 1, dashes), 3, "'--' ends the options (stop_at_word)");
    ok(c.flag == 1 && c.i == 50, "what follows '--' is not read");
    is_int(parse(&c, 0, dashes), -1,
           "'--' then words, without stop_at_word: an error");
    is_str(err, "unexpected argument '-i'", "naming the first");
    is_int(parse(&c, 0, end), 4, "a final '--' is fine");
    is_int(c.i, 5, "and what came before it is read");
}

static void
test_usage(void)
{
    char *text = NULL, *line;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);
    static const struct {
        int line;
        const char *text, *name;
    } want[] = {
        {0, "  -f, --flag                   a flag",
         "a flag: no value shown, help at column 31"},
        {1, "  -v, --loud                   level 7", "OPT_SET"},
        {2, "  -i, --int N                  an int",
         "a short and a long flag with its value"},
        {3, "                               [env T_INT]",
         "its variable on the next line, in the help column"},
        {4, "      --long N                 a long",
         "a long flag alone, aligned with the others"},
        {10, "  -n, --name NAME              a name, whose help",
         "a two-line help: its first line"},
        {11, "                               takes two lines",
         "its second, in the same column"},
        {12, "                               [env T_NAME]",
         "then the variable"},
        {15, "      --hush                   level 2",
         "a long flag alone without a value"},
    };
    int longest = 0, n = 0;
    char *lines[32];
    size_t i;

    opt_usage(fp, table, NTABLE);
    fclose(fp);
    for (line = strtok(text, "\n"); line != NULL && n < 32;
         line = strtok(NULL, "\n")) {
        lines[n++] = line;
        if ((int)strlen(line) > longest)
            longest = (int)strlen(line);
    }
    /* 10 named rows, one with two help lines, 7 with a variable. */
    is_int(n, 10 + 1 + 7,
           "one line per flag, per extra help line, per variable");
    for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        is_str(want[i].line < n ? lines[want[i].line] : "(none)", want[i].text,
               want[i].name);
    ok(strstr(text, "T_OLD_INT") == NULL, "a variable-only row is not shown");
    ok(longest <= 80, "within 80 columns (longest %d)", longest);
    free(text);

    /* A help line of the 48 columns opt.h allows ends at column 79. */
    {
        static const struct opt wide[] = {
            {"opt", 'x', OPT_STRING, 0, 0, 0, NULL, NULL, "SOMETHING",
             "123456789012345678901234567890123456789012345678"},
        };

        text = NULL;
        fp = open_memstream(&text, &len);
        opt_usage(fp, wide, 1);
        fclose(fp);
        is_int(strlen(text), 79 + 1, "a 48-column help line fits 80");
        free(text);
    }
}

int
main(void)
{
    test_long();
    test_duration();
    test_types();
    test_refused();
    test_env();
    test_env_bool();
    test_words();
    test_usage();
    return done_testing();
}
