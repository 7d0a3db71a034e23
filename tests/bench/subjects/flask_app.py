"""The article's synchronous subject: TechEmpower's Flask benchmark, with
psycopg2, served by gunicorn's sync workers.

TFB_SUBJECT_DB selects the connection policy, the one thing the article
changed:
  per-request  a new PostgreSQL connection for every request, closed after
               it, as TechEmpower's Flask code had it (through SQLAlchemy;
               here psycopg2 directly, so that the cost measured is the
               connection's, not the ORM's);
  persistent   one connection per process, opened on its first request
               and kept: the article's fix.
The PostgreSQL settings come from libpq's PG* variables.
"""
import os
import random

import flask
import psycopg2

from fortunes import page as fortunes_page

MODE = os.environ.get("TFB_SUBJECT_DB", "persistent")
if MODE not in ("per-request", "persistent"):
    raise SystemExit("TFB_SUBJECT_DB=%s: want per-request or persistent" % MODE)

app = flask.Flask(__name__)
_conn = None


def connect():
    conn = psycopg2.connect("")
    conn.autocommit = True
    return conn


def db():
    global _conn
    if MODE == "per-request":
        conn = flask.g.get("conn")
        if conn is None:
            conn = flask.g.conn = connect()
        return conn
    if _conn is None or _conn.closed:
        _conn = connect()
    return _conn


@app.teardown_request
def close_per_request(exc):
    conn = flask.g.pop("conn", None)
    if conn is not None:
        conn.close()


def count(name):
    try:
        n = int(flask.request.args.get(name, "1"))
    except ValueError:
        return 1
    return min(max(n, 1), 500)


def json_response(obj):
    return flask.Response(flask.json.dumps(obj), mimetype="application/json")


@app.route("/plaintext")
def plaintext():
    return flask.Response(b"Hello, World!", mimetype="text/plain")


@app.route("/json")
def json_route():
    return json_response({"message": "Hello, World!"})


def read_world(cur, wid):
    cur.execute("SELECT id, randomnumber FROM world WHERE id = %s", (wid,))
    row = cur.fetchone()
    return {"id": row[0], "randomNumber": row[1]}


@app.route("/db")
def single():
    with db().cursor() as cur:
        return json_response(read_world(cur, random.randint(1, 10000)))


@app.route("/queries")
def queries():
    ids = random.sample(range(1, 10001), count("queries"))
    with db().cursor() as cur:
        return json_response([read_world(cur, i) for i in ids])


@app.route("/updates")
def updates():
    ids = sorted(random.sample(range(1, 10001), count("queries")))
    conn = db()
    with conn.cursor() as cur:
        worlds = [read_world(cur, i) for i in ids]
        for w in worlds:
            w["randomNumber"] = random.randint(1, 10000)
        cur.executemany("UPDATE world SET randomnumber = %s WHERE id = %s",
                        [(w["randomNumber"], w["id"]) for w in worlds])
    return json_response(worlds)


@app.route("/fortunes")
def fortunes():
    with db().cursor() as cur:
        cur.execute("SELECT id, message FROM fortune")
        rows = cur.fetchall()
    return flask.Response(fortunes_page(rows), mimetype="text/html",
                          content_type="text/html; charset=utf-8")
