/*
 * world.c: the World routes: /db, /queries, /updates, /cached-queries.
 */
#include <json-c/json.h>
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

static struct json_object *
world_object(const struct world *w)
{
    struct json_object *o = json_object_new_object();

    if (o == NULL)
        return NULL;
    if (json_object_object_add(o, "id", json_object_new_int(w->id)) ||
        json_object_object_add(o, "randomNumber",
                               json_object_new_int(w->random_number))) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

/*
 * world_render: rows as JSON, {"id":1,"randomNumber":2} each; a bare object
 * when array is 0 (n must be 1), else an array.  Results: 0, or -1 when
 * json-c ran out of memory.
 */
static int
world_render(struct buf *b, const struct world *rows, int n, int array)
{
    struct json_object *top, *o;
    const char *s = NULL;
    size_t len;
    int i;

    if (!array) {
        top = world_object(&rows[0]);
    } else if ((top = json_object_new_array_ext(n)) != NULL) {
        for (i = 0; i < n; i++) {
            if ((o = world_object(&rows[i])) == NULL ||
                json_object_array_add(top, o)) {
                json_object_put(o);
                json_object_put(top);
                top = NULL;
                break;
            }
        }
    }
    if (top != NULL)
        s = json_object_to_json_string_length(top, JSON_C_TO_STRING_PLAIN,
                                              &len);
    if (s != NULL)
        buf_append(b, s, len);
    json_object_put(top);
    return s != NULL ? 0 : -1;
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
    int32_t ids[PARAM_COUNT_MAX], v;
    struct world rows[PARAM_COUNT_MAX];
    int i, rc, n = param_count(req->query, "queries");

    world_random_ids(ctx, ids, n);
    if ((rc = db_world_read(ctx->db, ids, n, rows)) != DB_OK) {
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
    if (!req->head && (rc = db_world_update(ctx->db, rows, n)) != DB_OK) {
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
