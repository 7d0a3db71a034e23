/* test_wire.c: judging what a FastCGI peer sent (spawn/core/wire.c). */
#include "../../../spawn/core/wire.c"

#include "harness.h"

/* A byte stream under construction. */
static unsigned char s[70000];
static size_t n;

static void
rec(int type, unsigned id, const void *content, size_t clen, size_t plen)
{
    header_write(s + n, type, id, clen, plen);
    memcpy(s + n + 8, content, clen);
    memset(s + n + 8 + clen, 0, plen);
    n += 8 + clen + plen;
}

static void
begin(unsigned id, int role, int flags)
{
    unsigned char b[8] = {0, (unsigned char)role, (unsigned char)flags};

    rec(WIRE_BEGIN_REQUEST, id, b, 8, 0);
}

/* request: a whole GET as nginx sends it, params split over records. */
static void
request(unsigned id, int flags)
{
    unsigned char p[256];
    size_t pl = 0;

    begin(id, 1, flags);
    pl += wire_put_pair(p + pl, "REQUEST_METHOD", "GET");
    pl += wire_put_pair(p + pl, "REQUEST_URI", "/plaintext");
    pl += wire_put_pair(p + pl, "QUERY_STRING", "");
    rec(WIRE_PARAMS, id, p, 10, 6); /* a pair cut by the record */
    rec(WIRE_PARAMS, id, p + 10, pl - 10, 0);
    rec(WIRE_PARAMS, id, "", 0, 0);
    rec(WIRE_STDIN, id, "", 0, 0);
}

static struct wire_limits lim = {65536};

static enum wire_verdict
judge(struct wire_result *r)
{
    wire_judge(s, n, 0, &lim, r);
    return r->verdict;
}

static void
test_request(void)
{
    struct wire_result r;
    size_t whole, i;
    int more = 1;

    n = 0;
    request(1, 0);
    whole = n;
    is_int(judge(&r), WIRE_REQUEST, "a whole request");
    ok(r.len == whole && r.id == 1 && !r.keep && r.next_id == 0,
       "its length, id, no keep-conn, nothing after it");
    for (i = 0; i < whole; i++) {
        wire_judge(s, i, 0, &lim, &r);
        if (r.verdict != WIRE_MORE) {
            more = 0;
            printf("# at %zu bytes: %d (%s)\n", i, r.verdict,
                   r.why ? r.why : "");
        }
    }
    ok(more, "every prefix of it: more to come");

    n = 0;
    request(7, 1);
    is_int(judge(&r), WIRE_REQUEST, "FCGI_KEEP_CONN");
    ok(r.keep && r.id == 7, "is seen, with the id");

    n = 0;
    request(1, 0);
    whole = n;
    begin(2, 1, 0);
    is_int(judge(&r), WIRE_REQUEST, "a request, then another's BEGIN");
    ok(r.len == whole && r.next_id == 2, "the second id is named");
}

static void
test_interleaved(void)
{
    struct wire_result r;
    unsigned char p[64];
    size_t pl;

    n = 0;
    begin(1, 1, 0);
    begin(2, 1, 0); /* libfcgi answers FCGI_CANT_MPX_CONN */
    pl = wire_put_pair(p, "A", "b");
    rec(WIRE_PARAMS, 2, p, pl, 0); /* and skips the other id */
    rec(WIRE_PARAMS, 1, p, pl, 0);
    rec(WIRE_PARAMS, 1, "", 0, 0);
    rec(WIRE_STDIN, 1, "body", 4, 4);
    rec(WIRE_STDIN, 1, "", 0, 0);
    is_int(judge(&r), WIRE_REQUEST, "another request's records inside one");
    is_int(r.len, n, "all of it");
}

static void
test_management(void)
{
    unsigned char c[256], out[WIRE_VALUES_MAX];
    struct wire_values v = {256, 256};
    struct wire_result r;
    size_t cl = 0, len;
    int i;

    /* The record that overflowed libfcgi's 64-byte answer. */
    for (i = 0; i < 8; i++)
        cl += wire_put_pair(c + cl, "FCGI_MPXS_CONNS", "");
    cl += wire_put_pair(c + cl, "FCGI_MAX_CONNS", "");
    cl += wire_put_pair(c + cl, "FCGI_NO_SUCH", "");
    n = 0;
    rec(WIRE_GET_VALUES, 0, c, cl, 0);
    request(1, 0);
    is_int(judge(&r), WIRE_MANAGEMENT, "FCGI_GET_VALUES at the front");
    ok(r.len == 8 + cl && r.type == WIRE_GET_VALUES, "its record alone");
    len = wire_answer(out, s, &r, &v);
    ok(len <= WIRE_VALUES_MAX && len % 8 == 0 && out[1] == 10 && out[2] == 0 &&
           out[3] == 0,
       "the answer: an aligned FCGI_GET_VALUES_RESULT, id 0");
    ok((size_t)(out[4] << 8 | out[5]) == 2 + 15 + 1 + 2 + 14 + 3 &&
           memcmp(out + 8,
                  "\x0e\x03"
                  "FCGI_MAX_CONNS256",
                  19) == 0 &&
           memcmp(out + 27,
                  "\x0f\x01"
                  "FCGI_MPXS_CONNS0",
                  18) == 0,
       "each known variable once, the unknown one left out");

    n = 0;
    rec(42, 0, "", 0, 0);
    is_int(judge(&r), WIRE_MANAGEMENT, "an unknown management type");
    len = wire_answer(out, s, &r, &v);
    ok(len == WIRE_UNKNOWN_TYPE_LEN && out[1] == WIRE_UNKNOWN_TYPE &&
           out[8] == 42,
       "answered FCGI_UNKNOWN_TYPE naming it");

    n = 0;
    c[0] = 0x80; /* a name length of 2^31 - 1 */
    c[1] = c[2] = c[3] = 0xff;
    c[4] = 0;
    rec(WIRE_GET_VALUES, 0, c, 5, 3);
    is_int(judge(&r), WIRE_BAD, "FCGI_GET_VALUES with a lying length: bad");
}

static void
test_roles(void)
{
    struct wire_result r;

    n = 0;
    begin(3, 2, 0); /* FCGI_AUTHORIZER */
    rec(WIRE_PARAMS, 3, "", 0, 0);
    is_int(judge(&r), WIRE_OTHER_ROLE, "an authorizer: another role");
    ok(r.id == 3 && r.len == 16, "its BEGIN alone");
    wire_judge(s + 16, n - 16, 3, &lim, &r);
    is_int(r.verdict, WIRE_SKIP, "its other records are skipped");
    wire_judge(s + 16, n - 16, 0, &lim, &r);
    is_int(r.verdict, WIRE_BAD, "unless nobody asked");

    /* Its BEGIN never reaches libfcgi: padding there is the protocol's. */
    n = 0;
    rec(WIRE_BEGIN_REQUEST, 4, "\0\3\0\0\0\0\0\0", 8, 8);
    is_int(judge(&r), WIRE_OTHER_ROLE, "a filter's BEGIN with padding");
    ok(r.id == 4 && r.len == 24, "taken with its padding");
}

static void
test_abort(void)
{
    struct wire_result r;
    size_t at;

    n = 0;
    begin(5, 1, 1);
    rec(WIRE_PARAMS, 5, "\x01\x01xy", 4, 4);
    rec(WIRE_ABORT_REQUEST, 5, "", 0, 0);
    at = n;
    request(6, 0);
    is_int(judge(&r), WIRE_ABORTED, "FCGI_ABORT_REQUEST");
    ok(r.id == 5 && r.len == at, "the request up to its abort");
}

/* bomb: a FCGI_GET_VALUES record naming FCGI_MPXS_CONNS four times into
 * out; its length. */
static size_t
bomb(unsigned char *out)
{
    size_t len = 0;
    int i;

    for (i = 0; i < 4; i++)
        len += wire_put_pair(out + 8 + len, "FCGI_MPXS_CONNS", "");
    header_write(out, WIRE_GET_VALUES, 0, len, 0);
    return 8 + len;
}

/* A lie: records, after a responder's BEGIN of id 1 (begun) or not, the
 * first of them written as how says. */
enum how {
    PLAIN,    /* as they are */
    VERSION2, /* its version byte 2 */
    RAW,      /* its content alone, no header: the stream's first byte */
    HEADER,   /* its header alone, no content */
    BOMB      /* its padding the bomb above */
};

struct lie_rec {
    int type; /* 0 ends the list */
    unsigned id;
    const char *content;
    size_t clen, plen;
};

struct lie {
    enum how how;
    int begun;
    struct lie_rec recs[5];
    const char *name;
};

#define BEGIN_1 WIRE_BEGIN_REQUEST, 1, "\0\1\0\0\0\0\0\0", 8, 0
#define END_PARAMS_1 WIRE_PARAMS, 1, "", 0, 0
#define END_STDIN_1 WIRE_STDIN, 1, "", 0, 0

static const struct lie lies[] = {
    {VERSION2, 0, {{BEGIN_1}}, "version 2"},
    {RAW,
     0,
     {{WIRE_STDIN, 0, "G", 1, 0}},
     "a first byte that is not version 1"},
    {PLAIN, 0, {{END_PARAMS_1}}, "PARAMS before BEGIN"},
    {HEADER,
     1,
     {{WIRE_PARAMS, 1, "", 65535, 255}},
     "a record longer than the limit, at its header"},
    {PLAIN,
     1,
     {{WIRE_PARAMS, 1, "\xff\xff\xff\xff\x01x", 6, 2}},
     "a pair length near 2^31"},
    {PLAIN, 1, {{END_STDIN_1}}, "STDIN before the end of the parameters"},
    {PLAIN,
     1,
     {{WIRE_PARAMS, 1,
       "\x05\x01"
       "ab",
       4, 4},
      {END_PARAMS_1}},
     "parameters ending inside a pair"},
    {PLAIN,
     1,
     {{WIRE_GET_VALUES, 0, "", 0, 0}},
     "a management record inside a request"},
    {PLAIN, 1, {{BEGIN_1}}, "a second BEGIN for the same id"},
    {PLAIN,
     0,
     {{WIRE_BEGIN_REQUEST, 1, "\0\1\0\0", 4, 4}},
     "a BEGIN of 4 bytes"},
    {PLAIN,
     0,
     {{WIRE_BEGIN_REQUEST, 0, "\0\1\0\0\0\0\0\0", 8, 0}},
     "a BEGIN for id 0"},
    {PLAIN,
     1,
     {{8 /* FCGI_DATA */, 1, "", 0, 0}},
     "an unknown record type inside a request"},
    /* libfcgi reads this padding as a record: here, FCGI_GET_VALUES
     * naming FCGI_MPXS_CONNS four times, its 64-byte overflow. */
    {BOMB,
     0,
     {{BEGIN_1}, {END_PARAMS_1}, {END_STDIN_1}},
     "a responder's BEGIN with padding"},
    {BOMB, 1, {{END_PARAMS_1}, {END_STDIN_1}}, "the empty PARAMS with padding"},
    /* After it libfcgi skips the next PARAMS, and reads the one after
     * as a pair of 2^31 - 2 and 1 bytes: its assert. */
    {PLAIN,
     1,
     {{WIRE_STDIN, 2, "", 0, 0},
      {WIRE_PARAMS, 1, "\x06\x00", 2, 6},
      {WIRE_PARAMS, 1, "\xff\xff\xff\xfe\x01\x61", 6, 2},
      {END_PARAMS_1},
      {END_STDIN_1}},
     "an empty record of another request inside one"},
};

/* tell: the lie l, written into s. */
static void
tell(const struct lie *l)
{
    unsigned char bombrec[8 + 4 * 17];
    const struct lie_rec *r = l->recs;
    size_t at;

    n = 0;
    if (l->begun)
        begin(1, 1, 0);
    at = n;
    if (l->how == HEADER) { /* its content is not there to copy */
        header_write(s + n, r->type, r->id, r->clen, r->plen);
        n += 8;
        r++;
    }
    for (; r < l->recs + 5 && r->type != 0; r++)
        rec(r->type, r->id, r->content, r->clen,
            r == l->recs && l->how == BOMB ? bomb(bombrec) : r->plen);
    if (l->how == VERSION2) {
        s[at] = 2;
    } else if (l->how == RAW) {
        n = at + l->recs[0].clen;
        memmove(s + at, s + at + 8, l->recs[0].clen);
    } else if (l->how == BOMB) {
        at += 8 + l->recs[0].clen;
        memcpy(s + at, bombrec, sizeof(bombrec));
    }
}

static void
test_lies(void)
{
    struct wire_result r;
    size_t i;

    for (i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
        tell(&lies[i]);
        /* Judged first: the arguments of ok() have no order. */
        judge(&r);
        ok(r.verdict == WIRE_BAD && r.why != NULL, "%s: bad (%s)", lies[i].name,
           r.why ? r.why : "no reason");
    }
}

static void
test_limit(void)
{
    static unsigned char body[65535];
    struct wire_limits small;
    struct wire_result r;
    size_t whole;

    n = 0;
    begin(1, 1, 0);
    rec(WIRE_PARAMS, 1, "", 0, 0);
    rec(WIRE_STDIN, 1, body, 1000, 0);
    rec(WIRE_STDIN, 1, "", 0, 0);
    whole = n;
    small.request_max = whole;
    wire_judge(s, n, 0, &small, &r);
    is_int(r.verdict, WIRE_REQUEST, "a request of exactly the limit");
    small.request_max = whole - 1;
    wire_judge(s, n, 0, &small, &r);
    is_int(r.verdict, WIRE_BAD, "one byte over: bad");
    ok(r.too_big && r.id == 1 && r.len == 0,
       "but too big, no lie: request 1, to be answered 413");
    wire_judge(s, whole - 8, 0, &small, &r);
    is_int(r.verdict, WIRE_MORE, "as long as the bytes so far fit: more");
    small.request_max = 1024;
    wire_judge(s, n, 0, &small, &r);
    ok(r.verdict == WIRE_BAD && r.too_big && r.id == 1,
       "known from the header of the record that passes it");
    n = 0;
    rec(WIRE_GET_VALUES, 0, body, 2000, 0);
    wire_judge(s, n, 0, &small, &r);
    ok(r.verdict == WIRE_BAD && !r.too_big,
       "a management record over the limit: no request, a plain lie");
}

static void
test_end_request(void)
{
    unsigned char out[WIRE_END_REQUEST_LEN];

    is_int(wire_end_request(out, 0x1234, 0x01020304, WIRE_UNKNOWN_ROLE), 16,
           "FCGI_END_REQUEST: 16 bytes");
    ok(memcmp(out,
              "\x01\x03\x12\x34\x00\x08\x00\x00"
              "\x01\x02\x03\x04\x03\x00\x00\x00",
              16) == 0,
       "header, app status, protocol status, padding");
}

/* test_response: an answer's records, cut at 65535 bytes of content. */
static void
test_response(void)
{
    static unsigned char body[140000];
    unsigned char hdr[WIRE_RESPONSE_HDR_LEN(sizeof(body))], got[150000];
    struct iovec iov[WIRE_RESPONSE_IOV(sizeof(body))];
    size_t len = 0, i;
    int k;

    memset(body, 'x', sizeof(body));
    is_int(WIRE_RESPONSE_RECORDS(sizeof(body)), 3, "140000 bytes: 3 records");
    k = wire_response(iov, hdr, 7, body, sizeof(body));
    is_int(k, WIRE_RESPONSE_IOV(sizeof(body)),
           "7 iovecs: 3 headers, 3 pieces, the end");
    for (i = 0; i < (size_t)k; i++) {
        memcpy(got + len, iov[i].iov_base, iov[i].iov_len);
        len += iov[i].iov_len;
    }
    is_int(len, sizeof(body) + 3 * 8 + 8 + 16, "their bytes");
    ok(memcmp(got, "\x01\x06\x00\x07\xff\xff\x00\x00", 8) == 0 &&
           memcmp(got + 8 + 65535, "\x01\x06\x00\x07\xff\xff\x00\x00", 8) ==
               0 &&
           memcmp(got + 2 * (8 + 65535), "\x01\x06\x00\x07\x22\xe2\x00\x00",
                  8) == 0,
       "FCGI_STDOUT of 65535, 65535, then 8930 bytes");
    ok(memcmp(got + len - 24,
              "\x01\x06\x00\x07\x00\x00\x00\x00"
              "\x01\x03\x00\x07\x00\x08\x00\x00"
              "\x00\x00\x00\x00\x00\x00\x00\x00",
              24) == 0,
       "then the empty FCGI_STDOUT, FCGI_END_REQUEST complete, status 0");
    k = wire_response(iov, hdr, 1, body, 0);
    ok(k == 1 && iov[0].iov_len == 24, "an empty answer: the end alone");
}

static void
test_other_begins(void)
{
    unsigned ids[4];

    n = 0;
    begin(1, 1, 0);
    rec(WIRE_PARAMS, 1, "", 0, 0);
    begin(3, 1, 0);
    begin(0, 1, 0);
    rec(WIRE_STDIN, 4, "x", 1, 0);
    begin(5, 2, 0);
    rec(WIRE_STDIN, 1, "", 0, 0);
    ok(wire_other_begins(s, n, 1, ids, 4) == 2 && ids[0] == 3 && ids[1] == 5,
       "the BEGINs of other requests: 3 and 5 (not ours, not id 0)");
    is_int(wire_other_begins(s, n, 1, ids, 1), 1, "at most max of them");
}

int
main(void)
{
    test_request();
    test_interleaved();
    test_management();
    test_roles();
    test_abort();
    test_lies();
    test_limit();
    test_end_request();
    test_response();
    test_other_begins();
    return done_testing();
}
