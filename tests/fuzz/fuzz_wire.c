/*
 * fuzz_wire.c: wire_judge and wire_answer (spawn/core/wire.c), the code that
 * stands between the socket and libfcgi.
 *
 * The input: two bytes that pick --request-max (1024 and up, small enough
 * that short inputs reach it), one that picks the skipped request id and
 * the values FCGI_GET_VALUES reports, then the bytes a peer sent, copied
 * to a buffer of their exact size so that AddressSanitizer sees any read
 * past them.  Whatever they are:
 *
 *   - a verdict's length never exceeds the input, nor --request-max;
 *     WIRE_MORE and WIRE_BAD cover nothing, WIRE_BAD says why;
 *   - each verdict holds what it names (a WIRE_REQUEST starts with a
 *     responder's BEGIN of its id, a WIRE_MANAGEMENT is one record of id
 *     0, ...);
 *   - the answer to a management record fits WIRE_VALUES_MAX (written to
 *     a buffer of exactly that size) and is one well-formed record naming
 *     each variable at most once;
 *   - a WIRE_REQUEST is one that libfcgi reads whole from those bytes
 *     alone: written to a socket whose other end then shuts its writing
 *     side, FCGX_Accept_r accepts it as a responder request of the same id
 *     and keep-conn flag, and its stdin reads to the end without error.
 *     libfcgi reading past the verdict would meet the end of the socket
 *     and report it.
 */
#include "../../spawn/core/wire.c"

#include <fcgiapp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* libfcgi's listening socket: one that does not listen, so that its
 * accept, on the error path of FCGX_Accept_r, fails at once. */
static int dead_fd = -1;

static void
fail(const char *what, const struct wire_result *r)
{
    fprintf(stderr, "wire: %s (verdict %d, len %zu, id %u)\n", what, r->verdict,
            r->len, r->id);
    abort();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    if (FCGX_Init() != 0 ||
        (dead_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
        abort();
    return 0;
}

static size_t
pair_len(const unsigned char **c, const unsigned char *end)
{
    const unsigned char *p = *c;

    if (p >= end)
        return (size_t)-1;
    if (!(p[0] & 0x80)) {
        *c += 1;
        return p[0];
    }
    if (end - p < 4)
        return (size_t)-1;
    *c += 4;
    return (size_t)(p[0] & 0x7f) << 24 | (size_t)p[1] << 16 |
           (size_t)p[2] << 8 | p[3];
}

/* check_answer: wire_answer's record for the management record at p. */
static void
check_answer(const unsigned char *p, const struct wire_result *r, unsigned seed)
{
    static const char *const names[] = {"FCGI_MAX_CONNS", "FCGI_MAX_REQS",
                                        "FCGI_MPXS_CONNS"};
    /* The values a worker can report: --max-conns is 1 to 65536. */
    struct wire_values v = {1 + seed * 2654435761u % 65536,
                            seed & 1 ? 65536 : 1 + seed % 65536};
    unsigned char *out = malloc(WIRE_VALUES_MAX);
    const unsigned char *c, *end;
    size_t len, clen, nl, vl, i;
    int seen[3] = {0, 0, 0};

    if (out == NULL)
        abort();
    len = wire_answer(out, p, r, &v);
    if (len > WIRE_VALUES_MAX || len < WIRE_HEADER_LEN || len % 8 != 0)
        fail("an answer of a bad length", r);
    clen = (size_t)out[4] << 8 | out[5];
    if (out[0] != 1 || out[2] != 0 || out[3] != 0 ||
        WIRE_HEADER_LEN + clen + out[6] != len)
        fail("an answer whose header does not add up", r);
    if (r->type != WIRE_GET_VALUES) {
        if (out[1] != WIRE_UNKNOWN_TYPE || clen != 8 || out[8] != r->type)
            fail("FCGI_UNKNOWN_TYPE not naming the type", r);
        free(out);
        return;
    }
    if (out[1] != WIRE_GET_VALUES_RESULT)
        fail("FCGI_GET_VALUES not answered by its result", r);
    c = out + WIRE_HEADER_LEN;
    end = c + clen;
    while (c < end) {
        nl = pair_len(&c, end);
        vl = pair_len(&c, end);
        if (nl == (size_t)-1 || vl == (size_t)-1 || (size_t)(end - c) < nl + vl)
            fail("an answer whose pairs do not add up", r);
        for (i = 0; i < 3; i++)
            if (nl == strlen(names[i]) && memcmp(c, names[i], nl) == 0)
                break;
        if (i == 3 || seen[i]++)
            fail("an answer naming a variable twice, or an unknown one", r);
        c += nl + vl;
    }
    free(out);
}

/* check_libfcgi: libfcgi reads the request p[0, r->len) from those bytes
 * alone, and finds what the verdict says. */
static void
check_libfcgi(const unsigned char *p, const struct wire_result *r)
{
    FCGX_Request req;
    char sink[4096];
    int sv[2], ok;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
        abort();
    /* r->len is at most --request-max here, well within a socket's
     * buffer: the write never waits. */
    if (write(sv[0], p, r->len) != (ssize_t)r->len ||
        shutdown(sv[0], SHUT_WR) == -1)
        abort();
    if (FCGX_InitRequest(&req, dead_fd, 0) != 0)
        abort();
    req.ipcFd = sv[1];
    req.keepConnection = 1;
    ok = FCGX_Accept_r(&req) == 0;
    if (!ok)
        fail("libfcgi refuses a request judged whole", r);
    if (req.role != 1 || (unsigned)req.requestId != r->id ||
        !req.keepConnection != !r->keep)
        fail("libfcgi reads another role, id or keep-conn flag", r);
    while (FCGX_GetStr(sink, sizeof(sink), req.in) > 0)
        continue;
    if (FCGX_GetError(req.in) != 0)
        fail("libfcgi needs more than the bytes judged whole", r);
    /* Nothing written: the connection is ours to close. */
    FCGX_Free(&req, 0);
    close(sv[0]);
    close(sv[1]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wire_limits lim;
    struct wire_result r;
    unsigned char *p;
    unsigned skip;
    size_t n;

    if (size < 3)
        return 0;
    lim.request_max = 1024 + (size_t)(data[0] << 8 | data[1]) % 8192;
    skip = data[2] & 0x80 ? data[2] & 0x7f : 0;
    n = size - 3;
    if ((p = malloc(n ? n : 1)) == NULL)
        abort();
    memcpy(p, data + 3, n);
    wire_judge(p, n, skip, &lim, &r);
    if (r.len > n || r.len > lim.request_max)
        fail("a verdict longer than the input or --request-max", &r);
    switch (r.verdict) {
    case WIRE_MORE:
        if (r.len != 0)
            fail("WIRE_MORE covering bytes", &r);
        break;
    case WIRE_BAD:
        if (r.len != 0 || r.why == NULL)
            fail("WIRE_BAD covering bytes, or not saying why", &r);
        break;
    case WIRE_REQUEST:
        /* BEGIN, an empty PARAMS, an empty STDIN at least. */
        if (r.len < 32 || r.id == 0 || p[1] != WIRE_BEGIN_REQUEST ||
            (unsigned)(p[2] << 8 | p[3]) != r.id || p[8] != 0 || p[9] != 1 ||
            r.next_id == r.id)
            fail("WIRE_REQUEST that is not a responder's request", &r);
        check_libfcgi(p, &r);
        break;
    case WIRE_MANAGEMENT:
        if (r.len < WIRE_HEADER_LEN || r.id != 0 || p[2] != 0 || p[3] != 0 ||
            r.type != p[1] ||
            r.len != WIRE_HEADER_LEN + (size_t)(p[4] << 8 | p[5]) + p[6])
            fail("WIRE_MANAGEMENT that is not one record of id 0", &r);
        check_answer(p, &r, data[2]);
        break;
    case WIRE_OTHER_ROLE:
        if (r.len != 16 + (size_t)p[6] || p[1] != WIRE_BEGIN_REQUEST ||
            r.id == 0 || (p[8] << 8 | p[9]) == 1)
            fail("WIRE_OTHER_ROLE that is not another role's BEGIN", &r);
        break;
    case WIRE_ABORTED:
        if (r.len < 24 || p[1] != WIRE_BEGIN_REQUEST || r.id == 0 ||
            (unsigned)(p[2] << 8 | p[3]) != r.id)
            fail("WIRE_ABORTED that is not a begun request", &r);
        break;
    case WIRE_SKIP:
        if (r.id != skip || skip == 0 || r.len < WIRE_HEADER_LEN)
            fail("WIRE_SKIP of an id not skipped", &r);
        break;
    default:
        fail("an unknown verdict", &r);
    }
    free(p);
    return 0;
}
