/*
 * opt.c: see opt.h.
 */
#define _GNU_SOURCE
#include "opt.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "errmsg.h"

/* Rows a table may have; a program's own constant, checked by assert. */
#define OPT_ROWS_MAX 48
/* getopt_long's value for a row without a short flag: OPT_LONG_KEY + row. */
#define OPT_LONG_KEY 256

int
opt_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    /* strtol skips blanks and takes a sign: a number here has neither. */
    if (!isdigit((unsigned char)*s) && *s != '-')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int
opt_duration_ms(const char *s, long *ms)
{
    const long day_ms = 24L * 3600 * 1000;
    char *end;
    long v, unit;

    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0)
        return -1;
    if (*end == '\0' || strcmp(end, "s") == 0)
        unit = 1000;
    else if (strcmp(end, "ms") == 0)
        unit = 1;
    else if (strcmp(end, "m") == 0)
        unit = 60 * 1000;
    else
        return -1;
    if (v > day_ms / unit)
        return -1;
    *ms = v * unit;
    return 0;
}

/* choice_list: "a, b, c" for an error message. */
static void
choice_list(const char *const *choices, char *buf, size_t len)
{
    size_t n = 0;
    int i;

    buf[0] = '\0';
    for (i = 0; choices[i] != NULL && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "",
                              choices[i]);
}

/* choice_of: the index of val among choices, or -1. */
static int
choice_of(const char *const *choices, const char *val)
{
    int i;

    for (i = 0; choices[i] != NULL; i++)
        if (strcmp(val, choices[i]) == 0)
            return i;
    return -1;
}

/* opt_set: convert val for row o and store it; from names it in errors. */
static int
opt_set(const struct opt *o, void *conf, const char *val, const char *from,
        char *err, size_t errlen)
{
    char *dst = (char *)conf + o->offset, *end, names[128];
    long v;
    int i;

    switch (o->type) {
    case OPT_FLAG:
        *(int *)dst = 1;
        break;
    case OPT_SET:
        *(int *)dst = (int)o->max;
        break;
    case OPT_INT:
    case OPT_LONG:
        if (o->type == OPT_INT && o->choices != NULL &&
            (i = choice_of(o->choices, val)) >= 0) {
            *(int *)dst = -1 - i;
            break;
        }
        if (opt_long(val, o->min, o->max, &v) == -1 && o->choices != NULL) {
            choice_list(o->choices, names, sizeof(names));
            return errmsg(err, errlen,
                          "%s: '%s' is not a number in [%ld, %ld] nor %s", from,
                          val, o->min, o->max, names);
        }
        if (opt_long(val, o->min, o->max, &v) == -1)
            return errmsg(err, errlen, "%s: '%s' is not a number in [%ld, %ld]",
                          from, val, o->min, o->max);
        if (o->type == OPT_INT)
            *(int *)dst = (int)v;
        else
            *(long *)dst = v;
        break;
    case OPT_DURATION:
        if (opt_duration_ms(val, &v) == -1)
            return errmsg(err, errlen,
                          "%s: '%s' is not a duration such as 30, 30s, 500ms "
                          "or 2m",
                          from, val);
        *(long *)dst = v;
        break;
    case OPT_OCTAL:
        errno = 0;
        v = strtol(val, &end, 8);
        if (!isdigit((unsigned char)*val) || errno != 0 || *end != '\0' ||
            v > o->max)
            return errmsg(err, errlen,
                          "%s: '%s' is not an octal mode such as 0660", from,
                          val);
        *(int *)dst = (int)v;
        break;
    case OPT_STRING:
        if (*val == '\0')
            return errmsg(err, errlen, "%s: empty value", from);
        *(const char **)dst = val;
        break;
    case OPT_CHOICE:
        if ((i = choice_of(o->choices, val)) >= 0) {
            *(int *)dst = i;
            return 0;
        }
        choice_list(o->choices, names, sizeof(names));
        return errmsg(err, errlen, "%s: '%s' is not one of %s", from, val,
                      names);
    }
    return 0;
}

/* takes_value: whether the row's flag needs a value. */
static int
takes_value(const struct opt *o)
{
    return o->type != OPT_FLAG && o->type != OPT_SET;
}

/* row_of: the row getopt_long() returns val for, or NULL. */
static const struct opt *
row_of(const struct opt *opts, size_t n, int val)
{
    size_t i;

    if (val >= OPT_LONG_KEY)
        return (size_t)(val - OPT_LONG_KEY) < n ? &opts[val - OPT_LONG_KEY]
                                                : NULL;
    for (i = 0; i < n; i++)
        if (opts[i].name != NULL && opts[i].key == val)
            return &opts[i];
    return NULL;
}

/* boolean: 1 or 0 for the words opt.h lists, in any case; else -1. */
static int
boolean(const char *s)
{
    static const char *const words[] = {"0", "off", "no",  "false",
                                        "1", "on",  "yes", "true"};
    size_t i;

    for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcasecmp(s, words[i]) == 0)
            return i >= 4;
    return -1;
}

/* env_set: a row's variable, val, into conf. */
static int
env_set(const struct opt *o, void *conf, const char *val, char *err,
        size_t errlen)
{
    if (takes_value(o))
        return opt_set(o, conf, val, o->env, err, errlen);
    /* A flag's variable says on or off: "=0" must not turn it on. */
    switch (boolean(val)) {
    case 1:
        return opt_set(o, conf, val, o->env, err, errlen);
    case 0:
        if (o->type == OPT_FLAG)
            *(int *)((char *)conf + o->offset) = 0;
        return 0;
    default:
        return errmsg(err, errlen,
                      "%s: '%s' is neither on (1, on, yes, true) nor off (0, "
                      "off, no, false)",
                      o->env, val);
    }
}

/* An empty variable counts as unset, as WORKERS= on a command line means. */
static int
from_env(const struct opt *opts, size_t n, void *conf, char *err, size_t errlen)
{
    const char *val;
    size_t i;

    for (i = 0; i < n; i++)
        if (opts[i].env != NULL && (val = getenv(opts[i].env)) != NULL &&
            *val != '\0' && env_set(&opts[i], conf, val, err, errlen) == -1)
            return -1;
    return 0;
}

int
opt_parse(const struct opt *opts, size_t n, void *conf, int argc, char **argv,
          int stop_at_word, char *err, size_t errlen)
{
    struct option longopts[OPT_ROWS_MAX + 1];
    char shortopts[2 * OPT_ROWS_MAX + 3], from[64];
    const struct opt *o;
    size_t i, nl = 0, ns = 0;
    int ch;

    assert(n <= OPT_ROWS_MAX);
    if (from_env(opts, n, conf, err, errlen) == -1)
        return -1;

    /* '+': stop at the first word that is not ours; ':': report a missing
     * value as ':' rather than '?'. */
    if (stop_at_word)
        shortopts[ns++] = '+';
    shortopts[ns++] = ':';
    for (i = 0; i < n; i++) {
        o = &opts[i];
        if (o->name == NULL)
            continue;
        longopts[nl].name = o->name;
        longopts[nl].has_arg = takes_value(o) ? required_argument : no_argument;
        longopts[nl].flag = NULL;
        longopts[nl].val = o->key ? o->key : OPT_LONG_KEY + (int)i;
        nl++;
        if (o->key) {
            shortopts[ns++] = (char)o->key;
            if (takes_value(o))
                shortopts[ns++] = ':';
        }
    }
    memset(&longopts[nl], 0, sizeof(longopts[nl]));
    shortopts[ns] = '\0';

    optind = 0; /* glibc: start afresh, so that a program may parse twice */
    opterr = 0;
    while ((ch = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        if (ch == '?') {
            /* A known flag's value in optopt: its long form was given a
             * value it does not take ("--verbose=1"). */
            if (optopt != 0 && (o = row_of(opts, n, optopt)) != NULL)
                return errmsg(err, errlen, "option '--%s' takes no value",
                              o->name);
            if (optopt != 0)
                return errmsg(err, errlen, "unknown option '-%c'", optopt);
            return errmsg(err, errlen, "unknown option '%s'", argv[optind - 1]);
        }
        if (ch == ':')
            return errmsg(err, errlen, "option '%s' needs a value",
                          argv[optind - 1]);
        o = row_of(opts, n, ch);
        assert(o != NULL);
        snprintf(from, sizeof(from), "--%s", o->name);
        if (opt_set(o, conf, optarg ? optarg : "", from, err, errlen) == -1)
            return -1;
    }
    if (!stop_at_word && optind < argc)
        return errmsg(err, errlen, "unexpected argument '%s'", argv[optind]);
    return optind;
}

void
opt_usage(FILE *fp, const struct opt *opts, size_t n)
{
    char left[64];
    const char *p, *nl, *arg;
    size_t i;

    for (i = 0; i < n; i++) {
        const struct opt *o = &opts[i];

        if (o->name == NULL)
            continue;
        arg = takes_value(o) ? o->arg : NULL;
        if (o->key)
            snprintf(left, sizeof(left), "-%c, --%s%s%s", o->key, o->name,
                     arg ? " " : "", arg ? arg : "");
        else
            snprintf(left, sizeof(left), "    --%s%s%s", o->name,
                     arg ? " " : "", arg ? arg : "");
        fprintf(fp, "  %-28s ", left);
        for (p = o->help; (nl = strchr(p, '\n')) != NULL; p = nl + 1)
            fprintf(fp, "%.*s\n  %-28s ", (int)(nl - p), p, "");
        fprintf(fp, "%s\n", p);
        if (o->env != NULL)
            fprintf(fp, "  %-28s [env %s%s]\n", "", o->env,
                    takes_value(o) ? "" : "=on|off, 1|0");
    }
}
