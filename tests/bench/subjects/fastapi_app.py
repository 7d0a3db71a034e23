"""The article's asynchronous subject: TechEmpower's FastAPI benchmark,
served by gunicorn with uvicorn's workers (uvloop and httptools, as
TechEmpower installs them), each process holding an asyncpg pool.  The
PostgreSQL settings come from libpq's PG* variables, which asyncpg reads
too.

The pool: TechEmpower sizes it min(1800 / cores, 160) per process, half
of it opened at the start, for a database that takes 2000 connections and
as many processes as cores.  The bench sweeps the processes up to 64
against a server that takes 256 (deploy/stack's setting), so it gives
each process its share of a budget instead, TFB_SUBJECT_POOL connections
(at most 160, at least 1), half of them opened at the start, as
TechEmpower does.
"""
import os
import random

import asyncpg
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse

from fortunes import page as fortunes_page

READ = "SELECT id, randomnumber FROM world WHERE id = $1"
WRITE = "UPDATE world SET randomnumber = $1 WHERE id = $2"
POOL_SIZE = min(max(int(os.environ.get("TFB_SUBJECT_POOL", "8")), 1), 160)

app = FastAPI()
pool = None


@app.on_event("startup")
async def open_pool():
    global pool
    pool = await asyncpg.create_pool(min_size=max(POOL_SIZE // 2, 1), max_size=POOL_SIZE)


@app.on_event("shutdown")
async def close_pool():
    await pool.close()


def count(q):
    try:
        n = int(q if q is not None else "1")
    except ValueError:
        return 1
    return min(max(n, 1), 500)


@app.get("/plaintext")
async def plaintext():
    return PlainTextResponse(b"Hello, World!")


@app.get("/json")
async def json_route():
    return JSONResponse({"message": "Hello, World!"})


async def read_world(conn, wid):
    row = await conn.fetchrow(READ, wid)
    return {"id": row[0], "randomNumber": row[1]}


@app.get("/db")
async def single():
    async with pool.acquire() as conn:
        return JSONResponse(await read_world(conn, random.randint(1, 10000)))


@app.get("/queries")
async def queries(queries: str = None):
    ids = random.sample(range(1, 10001), count(queries))
    async with pool.acquire() as conn:
        stmt = await conn.prepare(READ)
        worlds = []
        for i in ids:
            row = await stmt.fetchrow(i)
            worlds.append({"id": row[0], "randomNumber": row[1]})
    return JSONResponse(worlds)


@app.get("/updates")
async def updates(queries: str = None):
    ids = sorted(random.sample(range(1, 10001), count(queries)))
    async with pool.acquire() as conn:
        stmt = await conn.prepare(READ)
        worlds = []
        for i in ids:
            row = await stmt.fetchrow(i)
            worlds.append({"id": row[0], "randomNumber": random.randint(1, 10000)})
        await conn.executemany(WRITE, [(w["randomNumber"], w["id"]) for w in worlds])
    return JSONResponse(worlds)


@app.get("/fortunes")
async def fortunes():
    async with pool.acquire() as conn:
        rows = [tuple(r) for r in await conn.fetch("SELECT id, message FROM fortune")]
    return HTMLResponse(fortunes_page(rows))
