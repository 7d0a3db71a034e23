/*
 * hello.h: /plaintext and /json, the routes without a database.
 */
#ifndef HELLO_H
#define HELLO_H

#include "handler.h"

handler_fn handle_plaintext, handle_json;

#endif
