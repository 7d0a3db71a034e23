"""test_fault_lost_updates.py: no lost updates under concurrent /updates.

The stack behind nginx (3 workers).  CLIENTS clients at once, each on a
keep-alive connection of its own, send /updates?queries=20 and
/updates?queries=1 in turn for SECONDS.  For every request a client
records when it sent it (start: before the first byte leaves) and when the
answer had fully arrived (end), and, for a 200, every (id, randomNumber)
the answer reported.  The world table is read before and after.

What "later" can mean.  The worker commits a request's UPDATE before its
answer leaves, so each write took effect at some instant inside its
request's [start, end].  Two requests that write the same row are
serialized by PostgreSQL's row lock: the second UPDATE waits for the first
to commit, and the row keeps the value of the one that committed last.
That is not the order in which the answers complete: the request that
committed last may be answered first.  What the clients can know is real
time: when B started after A had completed (start(B) > end(A)), B's commit
came after A's, and the row cannot hold A's value any more; when their
intervals overlap, either may have committed last.

The check, for every row an answer reported: the database holds the value
of an answer W for that row that no other answer for it followed, that is,
no answer B for the row started after W completed.  Any such W may have
committed last, so a correct service always passes; a value of a write
that another write of the row strictly followed (a lost update), or a
value no answer reported (a write reported other than it was made, or not
made), fails.  Rows no answer reported must hold what they held before.
("Every reported value is the database's or was overwritten by a request
that started after it completed" would be wrong: a concurrent request may
overwrite it.)  Every request must be answered 200 with as many distinct
rows as asked: an answer the clients did not see would be a write they
cannot reason about.

That the check can fail is shown on the real table: a row written by two
answers one after the other gets the first one's value back (a lost
update made by hand), another a value no answer reported, and the same
check must name both; then both rows get their values back.
"""

import json

from ..kit import web
from ..kit.scene import Scene
from ..kit.tap import main

CLIENTS = 8
SECONDS = 3.0
PATHS = ["/updates?queries=20", "/updates?queries=1"]


def answer(req):
    """A request of web.Clients as (start, end, path, status, the rows of
    a 200 or an error text)."""
    start, end, path, status, body = req
    if status != 200:
        return start, end, path, status, body[:200]
    try:
        return start, end, path, status, json.loads(body)
    except ValueError as e:
        return start, end, path, None, "ValueError: %s" % e


def malformed(path, rows):
    """Why an answer of a 200 is not what path asked for, or None."""
    want = int(path.rsplit("=", 1)[1])
    if not isinstance(rows, list) or len(rows) != want:
        return "not a list of %d rows" % want
    ids = []
    for r in rows:
        if not (isinstance(r, dict) and set(r) == {"id", "randomNumber"}
                and all(isinstance(v, int) for v in r.values())):
            return "a row that is not {id, randomNumber}: %r" % (r,)
        ids.append(r["id"])
    if len(set(ids)) != len(ids):
        return "an id twice"
    return None


def writes_by_id(answers):
    """{id: [(start, end, value), ...]} from the 200 answers."""
    out = {}
    for start, end, _, _, rows in answers:
        for r in rows:
            out.setdefault(r["id"], []).append((start, end, r["randomNumber"]))
    return out


def unfollowed(ws):
    """The values of the writes ws (of one row) that no other write
    followed: none of them started after it had ended."""
    last_start = max(w[0] for w in ws)
    return {v for (start, end, v) in ws if not last_start > end}


def lost(writes, before, after):
    """The check of the docstring: the rows whose value in after no
    answer can account for, as (id, why)."""
    bad = []
    for i, ws in writes.items():
        if after.get(i) not in unfollowed(ws):
            bad.append((i, "holds %s; the answers not followed by another reported %s; "
                        "all answers: %s" % (after.get(i), sorted(unfollowed(ws)),
                                             sorted(ws)[-6:])))
    for i, v in before.items():
        if i not in writes and after.get(i) != v:
            bad.append((i, "no answer reported it, yet it changed from %s to %s"
                        % (v, after.get(i))))
    return bad


def body(tap):
    label = "concurrent /updates"
    with Scene(tap, "lost-updates", stack={}) as sc:
        st = sc.st
        before = st.world()
        reqs = [answer(r) for r in
                web.Clients("127.0.0.1", st.port, PATHS, CLIENTS, max_s=SECONDS).run()]
        after = st.world()
        bad = ["%s -> %s: %s" % (p, s, rows) for (_, _, p, s, rows) in reqs if s != 200]
        bad += ["%s: %s" % (p, malformed(p, rows)) for (_, _, p, s, rows) in reqs
                if s == 200 and malformed(p, rows)]
        counts = {p: sum(1 for r in reqs if r[2] == p) for p in PATHS}
        tap.check(reqs and not bad,
                  "%s: %d clients, %.0f s: every request answered 200 with the rows it "
                  "asked for (%s)" % (label, CLIENTS, SECONDS,
                                      ", ".join("%d x %s" % (n, p) for p, n in counts.items())),
                  bad[:10])
        if bad:
            return
        writes = writes_by_id(reqs)
        overlapping = sum(1 for ws in writes.values()
                          if any(a[0] < b[1] and b[0] < a[1]
                                 for x, a in enumerate(ws) for b in ws[x + 1:]))
        last_done = sum(1 for i, ws in writes.items() if max(ws, key=lambda w: w[1])[2] != after[i])
        tap.note("%d row writes on %d rows; %d rows written by requests that overlapped in "
                 "time; on %d rows the answer that completed last is not the value that "
                 "stayed" % (sum(len(ws) for ws in writes.values()), len(writes),
                             overlapping, last_done))
        found = lost(writes, before, after)
        tap.check(not found, "%s: every row holds the value of an answer no later answer "
                  "followed; the rows no answer reported are unchanged (%d rows checked)"
                  % (label, len(before)), ["id %d: %s" % f for f in found[:10]])

        # The check can fail: a lost update and a foreign value, made by hand.
        stale = next(((i, v, after[i]) for i, ws in sorted(writes.items())
                      for v in sorted({w[2] for w in ws} - unfollowed(ws))), None)
        foreign_id = next(i for i in sorted(writes) if stale is None or i != stale[0])
        taken = {w[2] for w in writes[foreign_id]}
        foreign = next(v for v in range(1, 10001) if v not in taken)
        if not tap.check(stale is not None, "%s: a row written by two answers one after "
                         "the other, to show the check failing" % label):
            return
        try:
            st.psql("UPDATE world SET randomnumber = %d WHERE id = %d; "
                    "UPDATE world SET randomnumber = %d WHERE id = %d"
                    % (stale[1], stale[0], foreign, foreign_id))
            named = {i for i, _ in lost(writes, before, st.world())}
        finally:
            st.psql("UPDATE world SET randomnumber = %d WHERE id = %d; "
                    "UPDATE world SET randomnumber = %d WHERE id = %d"
                    % (stale[2], stale[0], after[foreign_id], foreign_id))
        tap.check(named == {stale[0], foreign_id},
                  "%s: the check names a row given back an overwritten value (id %d) and "
                  "one given a value no answer reported (id %d), and no other"
                  % (label, stale[0], foreign_id), "named: %s" % sorted(named))
        tap.check(st.world() == after, "%s: the two rows have their values back" % label)
        sc.check_same_workers(label)
        sc.check_connections(label)


if __name__ == "__main__":
    main(body, deadline=120)
