/*
 * fuzz_html.c: html_escape (app/html.c), whose output goes into the
 * fortunes page with messages from the database and one from the code.
 *
 * For any bytes, the escaped text must hold no raw < > " ' and no &
 * that does not start one of the five entities, its length must be what
 * the entities add, and undoing the five entities must give the input
 * back, byte for byte (UTF-8 and NULs included).  The output is appended
 * after a prefix, as the page is built, so that a write before the
 * buffer's end or a growth that loses bytes shows too.
 */
#include "../../app/html.c"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char prefix[] = "<td>";

static const struct {
    const char *text;
    size_t len;
    char raw;
} ents[] = {
    {"&amp;", 5, '&'},  {"&lt;", 4, '<'},   {"&gt;", 4, '>'},
    {"&quot;", 6, '"'}, {"&#39;", 5, '\''},
};

static void
fail(const char *what, size_t at)
{
    fprintf(stderr, "html_escape: %s at output byte %zu\n", what, at);
    abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf b = {0};
    const char *out;
    size_t len, i, j, k, want = size;

    buf_puts(&b, prefix);
    html_escape(&b, (const char *)data, size);
    if (b.failed)
        fail("out of memory", 0);
    if (b.len < sizeof(prefix) - 1 ||
        memcmp(b.data, prefix, sizeof(prefix) - 1) != 0)
        fail("the text before it changed", 0);
    out = b.data + sizeof(prefix) - 1;
    len = b.len - (sizeof(prefix) - 1);
    for (i = 0; i < size; i++)
        for (k = 0; k < sizeof(ents) / sizeof(ents[0]); k++)
            if (data[i] == (uint8_t)ents[k].raw)
                want += ents[k].len - 1;
    if (len != want)
        fail("a length other than the entities add", len);
    /* Undo the entities, comparing with the input as we go. */
    for (i = j = 0; i < len; i++, j++) {
        if (out[i] == '<' || out[i] == '>' || out[i] == '"' || out[i] == '\'')
            fail("a raw < > \" or '", i);
        if (out[i] == '&') {
            for (k = 0; k < sizeof(ents) / sizeof(ents[0]); k++)
                if (len - i >= ents[k].len &&
                    memcmp(out + i, ents[k].text, ents[k].len) == 0)
                    break;
            if (k == sizeof(ents) / sizeof(ents[0]))
                fail("an & that starts no entity", i);
            if (j >= size || data[j] != (uint8_t)ents[k].raw)
                fail("an entity for a byte the input does not hold", i);
            i += ents[k].len - 1;
        } else if (j >= size || (uint8_t)out[i] != data[j]) {
            fail("a byte changed", i);
        }
    }
    if (j != size)
        fail("the input not all there", len);
    buf_free(&b);
    return 0;
}
