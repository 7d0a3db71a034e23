/*
 * wire.c: see wire.h.
 *
 * The walk reads like the specification: a request is FCGI_BEGIN_REQUEST,
 * then FCGI_PARAMS records closed by an empty one, then FCGI_STDIN records
 * closed by an empty one.  Records of another request id inside it are
 * skipped by the reader (which answers another BEGIN with
 * FCGI_CANT_MPX_CONN: wire_other_begins); nothing else may come between.
 */
#include "wire.h"

#include <stdio.h>
#include <string.h>

#define ROLE_RESPONDER 1
#define FLAG_KEEP_CONN 1

/*
 * libfcgi 2.4.2 stops reading a FCGI_BEGIN_REQUEST, and an empty
 * FCGI_PARAMS (the end of the parameters), before their padding, then
 * forgets it: it reads the padding as the next record's header.  Padding
 * there could carry a record past this judge, FCGI_GET_VALUES among them,
 * straight to libfcgi's 64-byte overflow; or a header announcing content
 * that never comes, on which libfcgi would block the worker.  Neither
 * record needs padding (their lengths are multiples of 8 already), and
 * neither nginx nor lighttpd pads them: refuse it.
 */
#define PADDING_READ_AS_RECORD                                                 \
    "padding after FCGI_BEGIN_REQUEST or the last FCGI_PARAMS, which libfcgi " \
    "would read as a record"

struct header {
    int version, type;
    unsigned id;
    size_t clen, plen;
};

static void
header_read(const unsigned char *p, struct header *h)
{
    h->version = p[0];
    h->type = p[1];
    h->id = (unsigned)p[2] << 8 | p[3];
    h->clen = (size_t)p[4] << 8 | p[5];
    h->plen = p[6];
}

static void
header_write(unsigned char *p, int type, unsigned id, size_t clen, size_t plen)
{
    p[0] = 1;
    p[1] = (unsigned char)type;
    p[2] = (unsigned char)(id >> 8);
    p[3] = (unsigned char)id;
    p[4] = (unsigned char)(clen >> 8);
    p[5] = (unsigned char)clen;
    p[6] = (unsigned char)plen;
    p[7] = 0;
}

/*
 * A name-value pair decoder that takes its bytes in pieces, as records
 * cut them: two lengths (one byte, or four with the top bit set), then
 * that many bytes of name and value, skipped.
 */
struct pairs {
    unsigned char len[4];
    int nlen;        /* bytes of the length field being read */
    int field;       /* 0: the name's length, 1: the value's */
    size_t name_len; /* once field 0 is read */
    size_t skip;     /* name and value bytes still to pass */
    size_t max;      /* a pair longer than this is a lie */
    const char *why; /* set on a lie */
};

static int
pairs_feed(struct pairs *d, const unsigned char *p, size_t n)
{
    size_t v, step;

    while (n > 0) {
        if (d->skip > 0) {
            step = n < d->skip ? n : d->skip;
            d->skip -= step;
            p += step;
            n -= step;
            continue;
        }
        d->len[d->nlen++] = *p++;
        n--;
        if (d->nlen == 1 && !(d->len[0] & 0x80)) {
            v = d->len[0];
        } else if (d->nlen == 4) {
            v = (size_t)(d->len[0] & 0x7f) << 24 | (size_t)d->len[1] << 16 |
                (size_t)d->len[2] << 8 | d->len[3];
        } else {
            continue;
        }
        d->nlen = 0;
        if (d->field == 0) {
            d->name_len = v;
            d->field = 1;
            continue;
        }
        d->field = 0;
        if (d->name_len > d->max || v > d->max - d->name_len) {
            d->why = "a name-value pair longer than the request may be";
            return -1;
        }
        d->skip = d->name_len + v;
    }
    return 0;
}

/* pairs_whole: the pairs ended where a pair ends. */
static int
pairs_whole(const struct pairs *d)
{
    return d->nlen == 0 && d->field == 0 && d->skip == 0;
}

static void
verdict(struct wire_result *r, enum wire_verdict v, size_t len, unsigned id)
{
    r->verdict = v;
    r->len = len;
    r->id = id;
}

static void
bad(struct wire_result *r, const char *why)
{
    r->verdict = WIRE_BAD;
    r->len = 0;
    r->why = why;
}

/* management: the record at the front has request id 0. */
static void
management(const unsigned char *p, const struct header *h,
           struct wire_result *r)
{
    struct pairs d = {.max = h->clen};

    if (h->type == WIRE_GET_VALUES &&
        (pairs_feed(&d, p + WIRE_HEADER_LEN, h->clen) == -1 ||
         !pairs_whole(&d))) {
        bad(r, "FCGI_GET_VALUES whose pairs do not add up");
        return;
    }
    verdict(r, WIRE_MANAGEMENT, WIRE_HEADER_LEN + h->clen + h->plen, 0);
    r->type = h->type;
}

/* trailing: what follows a whole request: a BEGIN is a second request. */
static void
trailing(const unsigned char *p, size_t n, struct wire_result *r)
{
    struct header h;

    if (n < WIRE_HEADER_LEN)
        return;
    header_read(p, &h);
    if (h.version == 1 && h.type == WIRE_BEGIN_REQUEST && h.id != 0 &&
        h.id != r->id)
        r->next_id = h.id;
}

/* The request being judged: its id (0 until a BEGIN) and parameters. */
struct judging {
    unsigned id;
    struct pairs params;
    int params_done;
};

/*
 * first_record: the record at the front of the bytes, no request begun:
 * a BEGIN begins one (1), anything else settles the verdict (0).
 */
static int
first_record(const unsigned char *p, const struct header *h, size_t rec,
             unsigned skip, struct judging *j, struct wire_result *r)
{
    const unsigned char *b = p + WIRE_HEADER_LEN;

    if (h->type != WIRE_BEGIN_REQUEST) {
        if (h->id == 0)
            management(p, h, r);
        else if (skip != 0 && h->id == skip)
            verdict(r, WIRE_SKIP, rec, h->id);
        else
            bad(r, "a record before FCGI_BEGIN_REQUEST");
        return 0;
    }
    if (h->id == 0 || h->clen != 8) {
        bad(r, "a malformed FCGI_BEGIN_REQUEST");
        return 0;
    }
    if ((b[0] << 8 | b[1]) != ROLE_RESPONDER) {
        verdict(r, WIRE_OTHER_ROLE, rec, h->id);
        return 0;
    }
    if (h->plen != 0) {
        bad(r, PADDING_READ_AS_RECORD);
        return 0;
    }
    j->id = h->id;
    r->keep = b[2] & FLAG_KEEP_CONN;
    return 1;
}

/*
 * other_request: a record of another request id inside ours.  libfcgi
 * skips it (and answers a BEGIN with FCGI_CANT_MPX_CONN), so it may
 * pass (1), unless libfcgi would be put out of step (0).
 */
static int
other_request(const struct header *h, struct wire_result *r)
{
    if (h->type == WIRE_BEGIN_REQUEST && h->clen != 8) {
        bad(r, "a malformed FCGI_BEGIN_REQUEST");
        return 0;
    }
    /* But libfcgi 2.4.2 marks a record to skip and clears the mark only
     * once it has passed some content: after an empty one it skips the
     * next record of this request instead, and reads the parameters out
     * of step with what was checked here (a length near 2^31 then
     * reaches its assert). */
    if (h->clen == 0) {
        bad(r, "an empty record of another request inside one, "
               "after which libfcgi would skip this one's next");
        return 0;
    }
    return 1;
}

/*
 * request_record: the record at p + off, inside the request begun: go on
 * to the next record (1), or the verdict is settled (0).
 */
static int
request_record(const unsigned char *p, size_t n, size_t off,
               const struct header *h, size_t rec, struct judging *j,
               struct wire_result *r)
{
    if (h->id == 0) {
        bad(r, "a management record inside a request");
        return 0;
    }
    if (h->id != j->id)
        return other_request(h, r);
    if (h->type == WIRE_ABORT_REQUEST) {
        verdict(r, WIRE_ABORTED, off + rec, j->id);
        return 0;
    }
    if (h->type == WIRE_PARAMS && !j->params_done) {
        if (h->clen != 0) {
            if (pairs_feed(&j->params, p + off + WIRE_HEADER_LEN, h->clen) ==
                -1) {
                bad(r, j->params.why);
                return 0;
            }
            return 1;
        }
        if (!pairs_whole(&j->params)) {
            bad(r, "parameters cut off in the middle of a pair");
            return 0;
        }
        if (h->plen != 0) {
            bad(r, PADDING_READ_AS_RECORD);
            return 0;
        }
        j->params_done = 1;
        return 1;
    }
    if (h->type == WIRE_STDIN && j->params_done) {
        if (h->clen != 0)
            return 1;
        verdict(r, WIRE_REQUEST, off + rec, j->id);
        trailing(p + off + rec, n - off - rec, r);
        return 0;
    }
    bad(r, "a record out of place in a request");
    return 0;
}

void
wire_judge(const unsigned char *p, size_t n, unsigned skip,
           const struct wire_limits *lim, struct wire_result *r)
{
    struct judging j = {.params = {.max = lim->request_max}};
    struct header h;
    size_t off = 0, rec;

    memset(r, 0, sizeof(*r));
    for (;; off += rec) {
        if (n - off < WIRE_HEADER_LEN) {
            /* The version byte can be judged alone. */
            if (n > off && p[off] != 1)
                bad(r, "not FastCGI version 1");
            else
                verdict(r, WIRE_MORE, 0, j.id);
            return;
        }
        header_read(p + off, &h);
        rec = WIRE_HEADER_LEN + h.clen + h.plen;
        if (h.version != 1) {
            bad(r, "not FastCGI version 1");
            return;
        }
        if (off + rec > lim->request_max) {
            bad(r, "a request larger than --request-max");
            /* Begun and well-formed so far: too big, no lie. */
            r->id = j.id;
            r->too_big = j.id != 0;
            return;
        }
        if (n - off < rec) {
            verdict(r, WIRE_MORE, 0, j.id);
            return;
        }
        /* Nothing begun: off is 0, each front record is judged alone. */
        if (j.id == 0 ? !first_record(p, &h, rec, skip, &j, r)
                      : !request_record(p, n, off, &h, rec, &j, r))
            return;
    }
}

size_t
wire_end_request(unsigned char *out, unsigned id, uint32_t app_status,
                 int protocol_status)
{
    header_write(out, WIRE_END_REQUEST, id, 8, 0);
    out[8] = (unsigned char)(app_status >> 24);
    out[9] = (unsigned char)(app_status >> 16);
    out[10] = (unsigned char)(app_status >> 8);
    out[11] = (unsigned char)app_status;
    out[12] = (unsigned char)protocol_status;
    memset(out + 13, 0, 3);
    return WIRE_END_REQUEST_LEN;
}

/* length: a pair's length field at *c, which it passes. */
static size_t
length(const unsigned char **c)
{
    const unsigned char *p = *c;

    if (!(p[0] & 0x80)) {
        *c += 1;
        return p[0];
    }
    *c += 4;
    return (size_t)(p[0] & 0x7f) << 24 | (size_t)p[1] << 16 |
           (size_t)p[2] << 8 | p[3];
}

long
wire_gather(const unsigned char *p, size_t n, int type, unsigned id,
            unsigned char *out, size_t cap)
{
    struct header h;
    size_t off = 0, len = 0;

    while (n - off >= WIRE_HEADER_LEN) {
        header_read(p + off, &h);
        if (h.clen + h.plen > n - off - WIRE_HEADER_LEN)
            break;
        if (h.type == type && h.id == id) {
            if (h.clen > cap - len)
                return -1;
            memcpy(out + len, p + off + WIRE_HEADER_LEN, h.clen);
            len += h.clen;
        }
        off += WIRE_HEADER_LEN + h.clen + h.plen;
    }
    return (long)len;
}

/* pair_length: the length field at p[*off] into *v, *off past it; -1 if
 * the field is cut by the end. */
static int
pair_length(const unsigned char *p, size_t len, size_t *off, size_t *v)
{
    const unsigned char *c = p + *off;

    if (*off >= len || ((c[0] & 0x80) && len - *off < 4))
        return -1;
    *v = length(&c);
    *off = (size_t)(c - p);
    return 0;
}

int
wire_pair(const unsigned char *p, size_t len, size_t *off,
          const unsigned char **name, size_t *name_len,
          const unsigned char **value, size_t *value_len)
{
    size_t nl, vl;

    if (pair_length(p, len, off, &nl) == -1 ||
        pair_length(p, len, off, &vl) == -1 || nl > len - *off ||
        vl > len - *off - nl)
        return 0;
    *name = p + *off;
    *name_len = nl;
    *value = p + *off + nl;
    *value_len = vl;
    *off += nl + vl;
    return 1;
}

void
wire_stdout(unsigned char *hdr, unsigned id, size_t n)
{
    header_write(hdr, 6 /* FCGI_STDOUT */, id, n, 0);
}

int
wire_response(struct iovec *iov, unsigned char *hdr, unsigned id,
              const void *data, size_t n)
{
    const char *p = data;
    size_t off, chunk;
    int k = 0;

    for (off = 0; off < n; off += chunk) {
        chunk = n - off > WIRE_STDOUT_MAX ? WIRE_STDOUT_MAX : n - off;
        wire_stdout(hdr, id, chunk);
        iov[k++] = (struct iovec){hdr, WIRE_HEADER_LEN};
        iov[k++] = (struct iovec){(void *)(p + off), chunk};
        hdr += WIRE_HEADER_LEN;
    }
    wire_stdout(hdr, id, 0);
    wire_end_request(hdr + WIRE_HEADER_LEN, id, 0, WIRE_REQUEST_COMPLETE);
    iov[k++] = (struct iovec){hdr, WIRE_HEADER_LEN + WIRE_END_REQUEST_LEN};
    return k;
}

size_t
wire_other_begins(const unsigned char *p, size_t n, unsigned id, unsigned *ids,
                  size_t max)
{
    struct header h;
    size_t off = 0, k = 0;

    while (n - off >= WIRE_HEADER_LEN && k < max) {
        header_read(p + off, &h);
        if (h.clen + h.plen > n - off - WIRE_HEADER_LEN)
            break;
        if (h.type == WIRE_BEGIN_REQUEST && h.id != id && h.id != 0)
            ids[k++] = h.id;
        off += WIRE_HEADER_LEN + h.clen + h.plen;
    }
    return k;
}

/* One name-value pair of a GET_VALUES_RESULT, both lengths below 128. */
static size_t
put_pair(unsigned char *out, const char *name, unsigned value)
{
    char v[16];

    snprintf(v, sizeof(v), "%u", value);
    return wire_put_pair(out, name, v);
}

size_t
wire_put_pair(unsigned char *out, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);

    out[0] = (unsigned char)nl;
    out[1] = (unsigned char)vl;
    memcpy(out + 2, name, nl);
    memcpy(out + 2 + nl, value, vl);
    return 2 + nl + vl;
}

size_t
wire_answer(unsigned char *out, const unsigned char *p,
            const struct wire_result *r, const struct wire_values *v)
{
    static const char *const names[] = {"FCGI_MAX_CONNS", "FCGI_MAX_REQS",
                                        "FCGI_MPXS_CONNS"};
    const unsigned values[] = {v->max_conns, v->max_reqs, 0};
    const unsigned char *c = p + WIRE_HEADER_LEN, *end;
    size_t len = 0, nl, vl, pad;
    int asked[3] = {0, 0, 0}, i;

    if (r->type != WIRE_GET_VALUES) {
        header_write(out, WIRE_UNKNOWN_TYPE, 0, 8, 0);
        memset(out + WIRE_HEADER_LEN, 0, 8);
        out[WIRE_HEADER_LEN] = (unsigned char)r->type;
        return WIRE_UNKNOWN_TYPE_LEN;
    }
    /* wire_judge has checked that the pairs add up to the content. */
    end = c + (r->len - WIRE_HEADER_LEN - p[6]);
    while (c < end) {
        nl = length(&c);
        vl = length(&c);
        for (i = 0; i < 3; i++)
            if (nl == strlen(names[i]) && memcmp(c, names[i], nl) == 0)
                asked[i] = 1;
        c += nl + vl;
    }
    for (i = 0; i < 3; i++)
        if (asked[i])
            len += put_pair(out + WIRE_HEADER_LEN + len, names[i], values[i]);
    pad = (8 - len % 8) % 8;
    memset(out + WIRE_HEADER_LEN + len, 0, pad);
    header_write(out, WIRE_GET_VALUES_RESULT, 0, len, pad);
    return WIRE_HEADER_LEN + len + pad;
}
