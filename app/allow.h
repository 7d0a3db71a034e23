/*
 * allow.h: which front servers may connect over TCP.
 *
 * libfcgi's convention, kept: FCGI_WEB_SERVER_ADDRS, a comma-separated
 * list of addresses (blanks around them allowed); when it is set, a TCP
 * connection from any other address is closed unanswered.  Unlike libfcgi, IPv6
 * addresses are understood too.  An IPv4 peer of a [::] listener, which
 * the kernel shows as ::ffff:a.b.c.d, is the IPv4 host it is: listing
 * 127.0.0.1 admits it, and an entry written ::ffff:a.b.c.d is stored as
 * a.b.c.d.  Unix-socket peers are always allowed: the socket's mode
 * decides who may connect.
 */
#ifndef ALLOW_H
#define ALLOW_H

#include <sys/socket.h>

#define ALLOW_MAX 16

struct allow {
    int n; /* 0: everyone */
    struct {
        int family;
        unsigned char addr[16];
    } a[ALLOW_MAX];
};

/*
 * allow_parse: list (NULL or empty: everyone) into al.
 * Results: 0, or -1 with a message in err on an entry that is not an
 * address, or more than ALLOW_MAX of them.
 */
int allow_parse(struct allow *al, const char *list, char *err, size_t errlen);

/* allow_ok: may the peer at sa connect?  An IPv4-mapped IPv6 peer is
 * judged as the IPv4 address it carries. */
int allow_ok(const struct allow *al, const struct sockaddr_storage *sa);

#endif
