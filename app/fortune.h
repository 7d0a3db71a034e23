/*
 * fortune.h: /fortunes, the Fortune table plus one fortune added at request
 * time, sorted by message, as an HTML page.
 */
#ifndef FORTUNE_H
#define FORTUNE_H

#include "handler.h"

handler_fn handle_fortunes;

#endif
