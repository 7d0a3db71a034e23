/*
 * world.c: the World routes: /db, /queries, /updates, /cached-queries.
 */
#include <json-c/json.h>
#include <json-c/printbuf.h>
#include <string.h>

#include "world.h"
#include "param.h"

/* world_random_ids: n distinct ids in [1, WORLD_ROWS] (n <= WORLD_ROWS). */
static void
world_random_ids(struct handler_ctx *ctx, int32_t *ids, int n)
{
    unsigned char seen[WORLD_ROWS / 8 + 1];
    int32_t id;
    int i;

    memset(seen, 0, sizeof(seen));
    for (i = 0; i < n; i++) {
        /* At most 500 of 10,000: a redraw is rare and short. */
        do
            id = handler_random(ctx, WORLD_ROWS);
        while (seen[id / 8] & (1u << (id % 8)));
        seen[id / 8] |= (unsigned char)(1u << (id % 8));
        ids[i] = id;
    }
}

/*
 * The JSON objects of World rows, {"id":N,"randomNumber":N}, made once per
 * worker (as many as the largest answer so far needed) and given each
 * request's values: json-c still serialises every response, without
 * allocating and freeing 3n objects and their hash tables each time,
 * which was half the worker's instructions on /queries?queries=20.
 */
static struct row_json {
    struct json_object *obj, *id, *rn;
} rows_json[PARAM_COUNT_MAX];
static int rows_made;

/*
 * int_json: an integer as JSON text, json-c's serializer for the two
 * numbers of a row.  json-c's own formats every integer through snprintf,
 * a quarter of /queries' instructions; json-c still walks the object,
 * writes its keys and calls this for the values.
 */
static int
int_json(struct json_object *jso, struct printbuf *pb, int level, int flags)
{
    char tmp[24], *p = tmp + sizeof(tmp);
    int64_t v = json_object_get_int64(jso);
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

    (void)level;
    (void)flags;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    return printbuf_memappend(pb, p, (int)(tmp + sizeof(tmp) - p));
}

/* rows_json_make: the first n objects exist.  Results: 0, or -1. */
static int
rows_json_make(int n)
{
    struct row_json *r;

    for (; rows_made < n; rows_made++) {
        r = &rows_json[rows_made];
        if ((r->obj = json_object_new_object()) == NULL ||
            handler_json_add(r->obj, "id", r->id = json_object_new_int(0)) ||
            handler_json_add(r->obj, "randomNumber",
                             r->rn = json_object_new_int(0))) {
            json_object_put(r->obj); /* and what was added to it */
            return -1;
        }
        json_object_set_serializer(r->id, int_json, NULL, NULL);
        json_object_set_serializer(r->rn, int_json, NULL, NULL);
    }
    return 0;
}

/*
 * world_render: rows as JSON, {"id":1,"randomNumber":2} each; a bare object
 * when array is 0 (n must be 1), else an array.  Results: 0, or -1 when
 * json-c ran out of memory.
 */
static int
world_render(struct buf *b, const struct world *rows, int n, int array)
{
    const char *s;
    size_t len;
    int i;

    if (rows_json_make(n) == -1)
        return -1;
    if (array)
        buf_putc(b, '[');
    for (i = 0; i < n; i++) {
        if (!json_object_set_int(rows_json[i].id, rows[i].id) ||
            !json_object_set_int(rows_json[i].rn, rows[i].random_number) ||
            (s = json_object_to_json_string_length(
                 rows_json[i].obj, JSON_C_TO_STRING_PLAIN, &len)) == NULL)
            return -1;
        if (i > 0)
            buf_putc(b, ',');
        buf_append(b, s, len);
    }
    if (array)
        buf_putc(b, ']');
    return 0;
}

/* world_answer: rows as the JSON body of a 200, or a 500. */
static void
world_answer(struct response *r, const struct world *rows, int n, int array)
{
    resp_set(r, 200, RESP_CT_JSON);
    if (world_render(resp_body(r), rows, n, array) == -1)
        resp_error(r, 500, "out of memory");
}

/* Read n random rows: the body of /db and /queries. */
static void
read_rows(struct handler_ctx *ctx, struct response *r, int n, int array)
{
    int32_t ids[PARAM_COUNT_MAX];
    struct world rows[PARAM_COUNT_MAX];
    int rc;

    world_random_ids(ctx, ids, n);
    if ((rc = db_world_read(ctx->db, ids, n, rows)) != DB_OK) {
        handler_db_fail(r, rc);
        return;
    }
    world_answer(r, rows, n, array);
}

void
handle_db(struct handler_ctx *ctx, const struct request *req,
          struct response *r)
{
    (void)req;
    read_rows(ctx, r, 1, 0);
}

void
handle_queries(struct handler_ctx *ctx, const struct request *req,
               struct response *r)
{
    read_rows(ctx, r, param_count(req->query, "queries"), 1);
}

void
handle_updates(struct handler_ctx *ctx, const struct request *req,
               struct response *r)
{
    struct db *db = ctx->db_write != NULL ? ctx->db_write : ctx->db;
    int32_t ids[PARAM_COUNT_MAX], v;
    struct world rows[PARAM_COUNT_MAX];
    int i, rc, n = param_count(req->query, "queries");

    world_random_ids(ctx, ids, n);
    if ((rc = db_world_read(db, ids, n, rows)) != DB_OK) {
        handler_db_fail(r, rc);
        return;
    }
    for (i = 0; i < n; i++) {
        /* A new value that differs, so every row really changes. */
        do
            v = handler_random(ctx, WORLD_ROWS);
        while (v == rows[i].random_number);
        rows[i].random_number = v;
    }
    /* Committed before the response leaves, or the response is an error.
     * HEAD must be safe: it gets GET's headers for rows it does not write
     * (the same length, give or take the digits of the new numbers). */
    if (!req->head && (rc = db_world_update(db, rows, n)) != DB_OK) {
        handler_db_fail(r, rc);
        return;
    }
    world_answer(r, rows, n, 1);
}

void
handle_cached_queries(struct handler_ctx *ctx, const struct request *req,
                      struct response *r)
{
    int32_t ids[PARAM_COUNT_MAX];
    struct world rows[PARAM_COUNT_MAX];
    int i, rc, n = param_count(req->query, "count");

    world_random_ids(ctx, ids, n);
    for (i = 0; i < n; i++) {
        if ((rc = cache_get(ctx->cache, ctx->db, ids[i], &rows[i])) != DB_OK) {
            handler_db_fail(r, rc);
            return;
        }
    }
    world_answer(r, rows, n, 1);
}
