/*
 * resp.h: the response a handler builds, and its one write to the server.
 *
 * A handler sets the status and content type and appends the body to
 * resp_body().  The buffer keeps RESP_HEADROOM bytes free in front of the
 * body; resp_finish() writes the CGI header block right-aligned into that
 * room, so headers and body leave in one contiguous write without copying
 * the body.  The web server adds Server, Date and the HTTP framing.
 */
#ifndef RESP_H
#define RESP_H

#include "buf.h"

#define RESP_HEADROOM 256

#define RESP_CT_JSON "application/json"
#define RESP_CT_TEXT "text/plain"
#define RESP_CT_HTML "text/html; charset=utf-8"

struct response {
    struct buf out;    /* RESP_HEADROOM bytes, then the body */
    int status;        /* HTTP status code */
    const char *type;  /* Content-Type value (static storage) */
    const char *allow; /* Allow header value (static storage), or NULL */
    const char *extra; /* whole header lines ("Name: v\r\n"...), or NULL */
    int head_only;     /* HEAD request: headers with the body's length only */
};

/* resp_begin: start a new response (200, no type); keeps the memory. */
void resp_begin(struct response *r, int head_only);

/* resp_body: where the handler appends the body. */
struct buf *resp_body(struct response *r);

/* resp_set: status and content type of what the body holds. */
void resp_set(struct response *r, int status, const char *type);

/*
 * resp_error: replace whatever was built with status and a one-line
 * text/plain body, msg followed by a newline.
 */
void resp_error(struct response *r, int status, const char *msg);

/*
 * resp_finish: format the headers in front of the body.
 * Results: *data and *len cover what to write.  A response whose buffer
 * ran out of memory is turned into a static 500 first.
 */
void resp_finish(struct response *r, const char **data, size_t *len);

/* resp_reason: the reason phrase of a status code ("OK", "Not Found"). */
const char *resp_reason(int status);

void resp_free(struct response *r);

#endif
