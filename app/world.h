/*
 * world.h: the World routes: /db, /queries, /updates, /cached-queries.
 *
 * Each SELECT reads one row by its id; /updates writes its rows in one
 * statement, committed before the response is written.  /updates reads
 * and writes through the context's db_write when there is one (the
 * primary), the other routes through its db.
 */
#ifndef WORLD_H
#define WORLD_H

#include "handler.h"

handler_fn handle_db, handle_queries, handle_updates, handle_cached_queries;

#endif
