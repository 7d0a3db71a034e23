/*
 * harness.h: the unit tests' harness, in the manner of redis' testhelp.h.
 *
 * Each check prints a TAP line, "ok N - name" or "not ok N - name" with
 * where it failed; tests/run counts them over every test program and prints
 * the closing "N passed, N failed, N skipped".  No unit test skips: each
 * needs nothing but its own process.  done_testing() is main's return value.
 */
#ifndef HARNESS_H
#define HARNESS_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int th_run, th_failed;

__attribute__((format(printf, 4, 5))) static int
th_ok(int pass, const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    printf("%s %d - ", pass ? "ok" : "not ok", ++th_run);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!pass) {
        th_failed++;
        printf("#   failed at %s:%d\n", file, line);
    }
    return pass;
}

#define ok(cond, ...) th_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#define is_int(got, want, name)                                                \
    do {                                                                       \
        long long g_ = (got), w_ = (want);                                     \
        if (!ok(g_ == w_, "%s", name))                                         \
            printf("#   got %lld, want %lld\n", g_, w_);                       \
    } while (0)

#define is_str(got, want, name)                                                \
    do {                                                                       \
        const char *g_ = (got), *w_ = (want);                                  \
        if (!ok(g_ != NULL && strcmp(g_, w_) == 0, "%s", name))                \
            printf("#   got  '%s'\n#   want '%s'\n", g_ ? g_ : "(null)", w_);  \
    } while (0)

static int
done_testing(void)
{
    printf("1..%d\n# %d passed, %d failed\n", th_run, th_run - th_failed,
           th_failed);
    return th_failed ? 1 : 0;
}

#endif
