/*
 * errmsg.h: how spawn/'s library-style functions report an error: they
 * write a message a user can act on into the caller's buffer and return
 * -1; the caller decides whether that is fatal.
 */
#ifndef ERRMSG_H
#define ERRMSG_H

#include <stdarg.h>
#include <stdio.h>

/* errmsg: format the message into err[0..errlen); always returns -1. */
__attribute__((format(printf, 3, 4))) static inline int
errmsg(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

#endif
