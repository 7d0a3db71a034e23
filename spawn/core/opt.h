/*
 * opt.h: a program's options, from one table: flags, environment variables
 * and --help.
 *
 * A program describes each option once, as a row of struct opt: its flags,
 * the variable that may set it, the type and range of its value, where the
 * value goes, and its help text.  opt_parse() reads the variables first,
 * in table order, then the command line (getopt_long), so that a flag wins
 * over a variable, which wins over the default already in place; each
 * value is converted and range-checked before it is stored.  The variable
 * of a row without a value (OPT_FLAG, OPT_SET) holds a boolean: 1, on, yes
 * or true (in any case) does what the flag does; 0, off, no or false leaves
 * it off (an OPT_FLAG stores 0); anything else is an error.  An empty
 * variable counts as unset.  opt_usage()
 * prints the option list of --help from the same rows, so that the three
 * views of an option cannot drift apart.  Both tfb-fcgi and tfb-spawn
 * parse their options here.
 */
#ifndef OPT_H
#define OPT_H

#include <stddef.h>
#include <stdio.h>

enum opt_type {
    OPT_FLAG,     /* no value: stores 1 in an int */
    OPT_SET,      /* no value: stores max in an int (-v: a log level) */
    OPT_INT,      /* an int in [min, max]; with choices, or one of those
                     words, stored as -1 - its index (min >= 0 keeps the
                     two apart: -w auto) */
    OPT_LONG,     /* a long in [min, max] */
    OPT_DURATION, /* a long, milliseconds, from opt_duration_ms() */
    OPT_OCTAL,    /* an int in [0, max], written in octal (a file mode) */
    OPT_STRING,   /* a const char *, not empty, pointing into argv or environ */
    OPT_CHOICE    /* an int: the index of the value among choices */
};

struct opt {
    const char *name; /* long flag without "--"; NULL: a variable only */
    int key;          /* short flag, or 0 */
    enum opt_type type;
    size_t offset; /* of the value in the caller's struct */
    long min, max;
    const char *const *choices; /* OPT_CHOICE: the names, NULL-terminated;
                                   OPT_INT: the words it also takes */
    const char *env;            /* the variable that sets it, or NULL */
    const char *arg;            /* the value's name in --help */
    const char *help;           /* lines of at most 48 columns */
};

/*
 * opt_parse: the variables, then argv[1..argc), into conf.  With
 * stop_at_word, the first word that is not an option ends the options (it
 * starts a command to run, as with "+" in getopt), else such a word is an
 * error; "--" ends them either way.  argv is permuted as getopt does.
 * Results: the index of the first word after the options (argc when there
 * is none), or -1 with a message naming the flag or variable in err.
 */
int opt_parse(const struct opt *opts, size_t n, void *conf, int argc,
              char **argv, int stop_at_word, char *err, size_t errlen);

/* opt_usage: one entry per flag, its help, and its variable if any. */
void opt_usage(FILE *fp, const struct opt *opts, size_t n);

/*
 * opt_long: s as a whole decimal number in [min, max].
 * Results: 0, or -1 on anything else (signs, blanks, overflow included).
 */
int opt_long(const char *s, long min, long max, long *out);

/*
 * opt_duration_ms: "30" (seconds), "30s", "500ms" or "2m" in milliseconds,
 * at most a day.  Results: 0, or -1 on anything else.
 */
int opt_duration_ms(const char *s, long *ms);

#endif
