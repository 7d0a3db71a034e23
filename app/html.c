/*
 * html.c: see html.h.
 */
#include "html.h"

void
html_escape(struct buf *b, const char *s, size_t len)
{
    size_t i, run = 0;
    const char *ent;

    for (i = 0; i < len; i++) {
        switch (s[i]) {
        case '&':
            ent = "&amp;";
            break;
        case '<':
            ent = "&lt;";
            break;
        case '>':
            ent = "&gt;";
            break;
        case '"':
            ent = "&quot;";
            break;
        case '\'':
            ent = "&#39;";
            break;
        default:
            continue;
        }
        /* Copy the plain run before this byte in one piece. */
        buf_append(b, s + run, i - run);
        buf_puts(b, ent);
        run = i + 1;
    }
    buf_append(b, s + run, len - run);
}
