/*
 * param.c: see param.h.
 */
#include "param.h"

#include <stddef.h>
#include <string.h>

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Decode the next character of a value at *p (a %XX escape or a plain
 * byte, '+' being a space) and advance; -1 at the end of the value.
 */
static int
next_char(const char **p, const char *end)
{
    const char *s = *p;
    int hi, lo;

    if (s >= end)
        return -1;
    if (*s == '%' && end - s >= 3 && (hi = hexval(s[1])) >= 0 &&
        (lo = hexval(s[2])) >= 0) {
        *p = s + 3;
        return hi << 4 | lo;
    }
    *p = s + 1;
    return *s == '+' ? ' ' : (unsigned char)*s;
}

/* Parse a whole decimal integer with an optional sign, saturating. */
static int
clamp_value(const char *s, const char *end)
{
    long v = 0;
    int c, neg = 0, digits = 0;

    c = next_char(&s, end);
    if (c == '-' || c == '+') {
        neg = c == '-';
        c = next_char(&s, end);
    }
    for (; c >= '0' && c <= '9'; c = next_char(&s, end)) {
        digits++;
        /* Saturate early: anything past PARAM_COUNT_MAX clamps the same. */
        if (v <= PARAM_COUNT_MAX)
            v = v * 10 + (c - '0');
    }
    if (c != -1 || digits == 0 || neg || v < PARAM_COUNT_MIN)
        return PARAM_COUNT_MIN;
    return v > PARAM_COUNT_MAX ? PARAM_COUNT_MAX : (int)v;
}

int
param_count(const char *query, const char *name)
{
    size_t nlen = strlen(name);
    const char *p = query, *end;

    if (query == NULL)
        return PARAM_COUNT_MIN;
    while (*p != '\0') {
        end = strchr(p, '&');
        if (end == NULL)
            end = p + strlen(p);
        if ((size_t)(end - p) > nlen && strncmp(p, name, nlen) == 0 &&
            p[nlen] == '=')
            return clamp_value(p + nlen + 1, end);
        p = *end ? end + 1 : end;
    }
    return PARAM_COUNT_MIN;
}
