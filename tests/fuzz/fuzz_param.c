/*
 * fuzz_param.c: param_count (app/param.c) against a second reading of the
 * same rule.
 *
 * The input's first byte picks the name (queries or count, the two the
 * routes use); the rest, up to a NUL as a C string ends, is the query
 * string.  param_count must return what reference() says: the rule of
 * param.h written the slow, obvious way (decode the whole value first,
 * then look at it), so that the two can only agree by both being right.
 * And whatever the input, the answer is within [1, 500].
 */
#include "../../app/param.c"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* hex: the value of a hexadecimal digit, or -1 (found in a table, unlike
 * param.c's arithmetic). */
static int
hex(int c)
{
    static const char digits[] = "0123456789abcdef0123456789ABCDEF";
    const char *at = c != '\0' ? strchr(digits, c) : NULL;

    return at == NULL ? -1 : (int)(at - digits) % 16;
}

/* reference: param.h's rule, one step at a time. */
static int
reference(const char *q, const char *name)
{
    size_t nlen = strlen(name), vlen, n = 0, i, digits;
    const char *pair = q, *amp, *v;
    unsigned char *dec;
    int neg = 0, want = PARAM_COUNT_MIN;

    for (;;) {
        amp = strchr(pair, '&');
        vlen = amp ? (size_t)(amp - pair) : strlen(pair);
        if (vlen > nlen && memcmp(pair, name, nlen) == 0 && pair[nlen] == '=')
            break;
        if (amp == NULL)
            return PARAM_COUNT_MIN; /* missing */
        pair = amp + 1;
    }
    v = pair + nlen + 1;
    vlen -= nlen + 1;
    /* Decode the whole value: %XX is a byte, '+' a space. */
    if ((dec = malloc(vlen + 1)) == NULL)
        abort();
    for (i = 0; i < vlen; n++) {
        if (v[i] == '%' && i + 2 < vlen && hex(v[i + 1]) >= 0 &&
            hex(v[i + 2]) >= 0) {
            dec[n] = (unsigned char)(hex(v[i + 1]) << 4 | hex(v[i + 2]));
            i += 3;
        } else {
            dec[n] = v[i] == '+' ? ' ' : (unsigned char)v[i];
            i++;
        }
    }
    /* An optional sign, then decimal digits and nothing else. */
    i = 0;
    if (n > 0 && (dec[0] == '-' || dec[0] == '+')) {
        neg = dec[0] == '-';
        i = 1;
    }
    for (digits = 0;
         i + digits < n && dec[i + digits] >= '0' && dec[i + digits] <= '9';
         digits++)
        continue;
    if (digits == 0 || i + digits != n || neg)
        goto out; /* empty, not an integer, or negative: 1 */
    /* Its value, leading zeros aside: more than three digits is > 500. */
    while (digits > 1 && dec[i] == '0') {
        i++;
        digits--;
    }
    if (digits > 3) {
        want = PARAM_COUNT_MAX;
    } else {
        want = 0;
        for (; i < n; i++)
            want = want * 10 + (dec[i] - '0');
        if (want < PARAM_COUNT_MIN)
            want = PARAM_COUNT_MIN;
        if (want > PARAM_COUNT_MAX)
            want = PARAM_COUNT_MAX;
    }
out:
    free(dec);
    return want;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *name;
    char *q;
    int got, want;

    if (size == 0) {
        if (param_count(NULL, "queries") != PARAM_COUNT_MIN)
            abort();
        return 0;
    }
    name = data[0] & 1 ? "count" : "queries";
    /* An exact-size copy: a read past the string's end is AddressSanitizer's
     * to see. */
    if ((q = malloc(size)) == NULL)
        abort();
    memcpy(q, data + 1, size - 1);
    q[size - 1] = '\0';
    got = param_count(q, name);
    want = reference(q, name);
    if (got < PARAM_COUNT_MIN || got > PARAM_COUNT_MAX || got != want) {
        fprintf(stderr, "param_count(\"%s\", \"%s\") = %d, the rule says %d\n",
                q, name, got, want);
        abort();
    }
    free(q);
    return 0;
}
