/*
 * html.c: see html.h.
 *
 * A table says, for each byte, which entity replaces it (0: none), so the
 * scan is one load and one test a byte; plain runs are copied whole.
 */
#include "html.h"

static const char *const entities[] = {NULL,   "&amp;",  "&lt;",
                                       "&gt;", "&quot;", "&#39;"};
static const size_t entity_len[] = {0, 5, 4, 4, 6, 5};

static const unsigned char special[256] = {
    ['&'] = 1, ['<'] = 2, ['>'] = 3, ['"'] = 4, ['\''] = 5,
};

void
html_escape(struct buf *b, const char *s, size_t len)
{
    size_t i, run = 0;
    unsigned char e;

    for (i = 0; i < len; i++) {
        if ((e = special[(unsigned char)s[i]]) == 0)
            continue;
        /* Copy the plain run before this byte in one piece. */
        buf_append(b, s + run, i - run);
        buf_append(b, entities[e], entity_len[e]);
        run = i + 1;
    }
    buf_append(b, s + run, len - run);
}
