/*
 * html.h: HTML text escaping.
 */
#ifndef HTML_H
#define HTML_H

#include "buf.h"

/*
 * html_escape: append s[0..len) with & < > " ' replaced by their entities
 * (&amp; &lt; &gt; &quot; &#39;); every other byte, UTF-8 included, is
 * copied as it is.
 */
void html_escape(struct buf *b, const char *s, size_t len);

#endif
