/*
 * wire.h: what a FastCGI peer sent, judged before anyone uses any of it.
 *
 * The bytes on the socket are untrusted, and libfcgi 2.4.2 (Debian 12's
 * libfcgi0ldbl) has four defects that any libfcgi responder meets, each
 * reached by a single request from anyone who can connect.  Each crashes
 * a worker; queued by the hundred, they kept a pool backing off for 40 s.
 * tests/integration/test_fcgi_worker.py sends them, two hundred times.
 * The inputs, byte for byte:
 *
 * 1. FCGI_GET_VALUES is answered into a 64-byte stack buffer with no
 *    bound: a record naming a known variable four times or more overflows
 *    it (glibc's stack protector aborts the process).  Input: the header
 *    01 09 00 00 00 88 00 00, then eight times the pair
 *    0f 00 46 43 47 49 5f 4d 50 58 53 5f 43 4f 4e 4e 53
 *    (name length 15, value length 0, "FCGI_MPXS_CONNS").
 *
 * 2. A name-value pair whose lengths add up past 2^31 makes ReadParams
 *    compute nameLen + valueLen + 2 in an int, which overflows, and
 *    libfcgi's Malloc asserts (abort).  Debian's fix for CVE-2025-23016
 *    refuses a single length of 2^31 - 1, not a sum.  Input:
 *    01 01 00 01 00 08 00 00 00 01 00 00 00 00 00 00 (FCGI_BEGIN_REQUEST,
 *    responder), then 01 04 00 01 00 06 00 02 ff ff ff fe 01 61 00 00 (an
 *    FCGI_PARAMS record whose pair claims a name of 2^31 - 2 bytes and a
 *    value of 1).
 *
 * 3. libfcgi stops reading a FCGI_BEGIN_REQUEST, and the empty
 *    FCGI_PARAMS that ends the parameters, before their padding, and then
 *    reads that padding as the next record's header.  A record hidden
 *    there passes any check that skips padding as the protocol says, so
 *    defect 1 is reached from inside a request (found by
 *    tests/fuzz/fuzz_wire.c).  Input: 01 01 00 01 00 08 4c 00
 *    00 01 00 00 00 00 00 00 (a responder's FCGI_BEGIN_REQUEST announcing
 *    76 bytes of padding), then as its padding 01 09 00 00 00 44 00 00 and
 *    four times the FCGI_MPXS_CONNS pair above, then an ordinary request's
 *    FCGI_PARAMS and FCGI_STDIN.  Neither nginx nor lighttpd pads those two
 *    records, whose lengths are multiples of 8 already; we close a
 *    connection that does.
 *
 * 4. libfcgi skips the records of another request id inside a request,
 *    but clears its "skip" mark only after passing some content: after an
 *    empty record of another id it skips the next record of the request
 *    itself, and reads the parameters out of step with any check made
 *    before it.  Defect 2 is then reached through a pair that was checked
 *    whole (found by tests/fuzz/fuzz_wire.c).  Input: a responder's
 *    FCGI_BEGIN_REQUEST for id 1; 01 05 00 02 00 00 00 00 (an empty
 *    FCGI_STDIN of id 2); 01 04 00 01 00 02 00 00 06 00 (a pair: a name of
 *    6 bytes, no value; libfcgi skips this record);
 *    01 04 00 01 00 06 00 00 ff ff ff fe 01 61 (the 6 bytes of the name;
 *    libfcgi reads a pair of 2^31 - 2 and 1 bytes); then the rest of a
 *    request.  Neither front server multiplexes requests on a connection;
 *    we close one that sends an empty record of another request inside a
 *    request.
 *
 * libfcgi also blocks a worker on a peer that stops half way, and cannot
 * tell a request's end from the next one's start.
 *
 * So a reader looks at the bytes a peer sent and asks wire_judge() what
 * they are.  Every record header is checked, every length against what is
 * left, and every name-value pair of the parameters against its record;
 * only a whole, well-formed request for the responder role is served.
 * What libfcgi would get wrong is answered here instead: management
 * records (request id 0), a role other than the responder,
 * FCGI_ABORT_REQUEST.  A lie ends the connection.  (The worker no longer
 * hands anything to libfcgi, app/worker.c says why, so the four defects
 * above cannot reach it; the status process peeks and reads; the
 * libfcgi-shaped refusals stay, and cost nothing.  libfcgi itself is now
 * only the tests': the fake worker's, and fuzz_wire's reference reader.)
 *
 * The answers go out as records encoded here too: FCGI_END_REQUEST, the
 * management answers, and a response's FCGI_STDOUT records
 * (wire_response), so that a writer never waits on a library's buffer.
 */
#ifndef WIRE_H
#define WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define WIRE_HEADER_LEN 8
/* The answers written here: FCGI_END_REQUEST, FCGI_UNKNOWN_TYPE. */
#define WIRE_END_REQUEST_LEN 16
#define WIRE_UNKNOWN_TYPE_LEN 16
/* An FCGI_GET_VALUES_RESULT naming each of the three variables once. */
#define WIRE_VALUES_MAX (WIRE_HEADER_LEN + 64)

/* Record types and protocol statuses, from the FastCGI specification. */
enum {
    WIRE_BEGIN_REQUEST = 1,
    WIRE_ABORT_REQUEST = 2,
    WIRE_END_REQUEST = 3,
    WIRE_PARAMS = 4,
    WIRE_STDIN = 5,
    WIRE_STDOUT = 6,
    WIRE_GET_VALUES = 9,
    WIRE_GET_VALUES_RESULT = 10,
    WIRE_UNKNOWN_TYPE = 11
};
enum {
    WIRE_REQUEST_COMPLETE = 0,
    WIRE_CANT_MPX_CONN = 1,
    WIRE_OVERLOADED = 2,
    WIRE_UNKNOWN_ROLE = 3
};

enum wire_verdict {
    WIRE_MORE,       /* not a whole request yet: wait for more bytes */
    WIRE_REQUEST,    /* a whole responder request in [0, len): serve it */
    WIRE_MANAGEMENT, /* a management record in [0, len): answer, consume */
    WIRE_OTHER_ROLE, /* a BEGIN for another role in [0, len): answer
                        FCGI_UNKNOWN_ROLE, consume, then skip its id */
    WIRE_ABORTED,    /* a request and its ABORT in [0, len): answer
                        FCGI_END_REQUEST, consume */
    WIRE_SKIP,       /* a record of the skipped request in [0, len) */
    WIRE_BAD         /* a lie or too much: close the connection */
};

/* What a connection may send, at most. */
struct wire_limits {
    size_t request_max; /* all the records of one request, in bytes */
};

struct wire_result {
    enum wire_verdict verdict;
    size_t len;       /* the bytes the verdict covers, from the start */
    unsigned id;      /* the request's id (WIRE_MANAGEMENT: 0) */
    int keep;         /* WIRE_REQUEST: the peer set FCGI_KEEP_CONN */
    unsigned next_id; /* WIRE_REQUEST: the id of a BEGIN already sent after
                         it, which a connection that serves one request at
                         a time refuses (0: none) */
    int type;         /* WIRE_MANAGEMENT: the record's type */
    const char *why;  /* WIRE_BAD: what was wrong, for the log */
    int too_big;      /* WIRE_BAD: no lie, but a request (id) whose records
                         so far are well-formed goes past request_max: it
                         deserves an answer (HTTP 413), not a reset */
};

/*
 * wire_judge: what the n bytes at p hold, skip being the id of a request
 * answered with FCGI_UNKNOWN_ROLE whose records may still come (0: none).
 * A whole request must fit lim->request_max, else the answer is WIRE_BAD
 * as soon as the bytes so far pass it.  Pure: no system call, no memory.
 */
void wire_judge(const unsigned char *p, size_t n, unsigned skip,
                const struct wire_limits *lim, struct wire_result *r);

/* The values a pool worker reports to FCGI_GET_VALUES. */
struct wire_values {
    unsigned max_conns; /* FCGI_MAX_CONNS */
    unsigned max_reqs;  /* FCGI_MAX_REQS */
};

/*
 * wire_answer: the answer to the management record at p (as judged,
 * WIRE_MANAGEMENT), into out (WIRE_VALUES_MAX bytes): for FCGI_GET_VALUES
 * the variables it names that we know, each once; for another type,
 * FCGI_UNKNOWN_TYPE.  Results: the length written.
 */
size_t wire_answer(unsigned char *out, const unsigned char *p,
                   const struct wire_result *r, const struct wire_values *v);

/*
 * wire_gather: the content of every record of type for request id among
 * the n bytes at p (a request wire_judge found whole), joined into out,
 * which has room for cap bytes: a stream's content (FCGI_PARAMS,
 * FCGI_STDIN) as its records cut it.  Results: the length, or -1 when it
 * does not fit.
 */
long wire_gather(const unsigned char *p, size_t n, int type, unsigned id,
                 unsigned char *out, size_t cap);

/*
 * wire_other_begins: the ids of the FCGI_BEGIN_REQUEST records of other
 * requests among the n bytes at p (a request of id wire_judge found
 * whole), into ids, at most max of them: a peer that multiplexes, to be
 * answered FCGI_CANT_MPX_CONN.  Results: how many.
 */
size_t wire_other_begins(const unsigned char *p, size_t n, unsigned id,
                         unsigned *ids, size_t max);

/*
 * wire_pair: the name-value pair at *off of the len bytes of pairs at p,
 * *off moved past it.  Results: 1, or 0 at the end or at a pair that does
 * not fit what is left.
 */
int wire_pair(const unsigned char *p, size_t len, size_t *off,
              const unsigned char **name, size_t *name_len,
              const unsigned char **value, size_t *value_len);

/*
 * wire_stdout: one FCGI_STDOUT record of n (at most 65535) bytes for id:
 * its header into hdr (8 bytes); the content follows it unchanged, with
 * no padding.  n 0 is the record that ends the stream.
 */
void wire_stdout(unsigned char *hdr, unsigned id, size_t n);

/* The content of one FCGI_STDOUT record, at most. */
#define WIRE_STDOUT_MAX 65535
/* What wire_response needs for a response of n bytes: its FCGI_STDOUT
 * records, the iovecs, the headers' bytes. */
#define WIRE_RESPONSE_RECORDS(n) (((n) + WIRE_STDOUT_MAX - 1) / WIRE_STDOUT_MAX)
#define WIRE_RESPONSE_IOV(n) (2 * WIRE_RESPONSE_RECORDS(n) + 1)
#define WIRE_RESPONSE_HDR_LEN(n)                                               \
    (WIRE_HEADER_LEN * (WIRE_RESPONSE_RECORDS(n) + 1) + WIRE_END_REQUEST_LEN)

/*
 * wire_response: a responder's answer to request id, the n bytes at data
 * (its CGI headers and body), as the iovecs of its records: each
 * FCGI_STDOUT record's header, written into hdr, and its piece of data,
 * which is not copied; then the empty FCGI_STDOUT and FCGI_END_REQUEST
 * (application status 0, FCGI_REQUEST_COMPLETE) in one last iovec.  iov
 * has room for WIRE_RESPONSE_IOV(n) entries, hdr for
 * WIRE_RESPONSE_HDR_LEN(n) bytes; both must outlive the writing.
 * Results: the number of iovecs filled.
 */
int wire_response(struct iovec *iov, unsigned char *hdr, unsigned id,
                  const void *data, size_t n);

/*
 * wire_put_pair: a name-value pair whose name and value are both under
 * 128 bytes (one-byte lengths), into out.  Results: its length.
 */
size_t wire_put_pair(unsigned char *out, const char *name, const char *value);

/* wire_end_request: FCGI_END_REQUEST for id into out (16 bytes). */
size_t wire_end_request(unsigned char *out, unsigned id, uint32_t app_status,
                        int protocol_status);

#endif
