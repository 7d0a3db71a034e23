"""servers: the anchor servers, and the sections a signal must not cut.

The stack under test (PostgreSQL, the pool, the front server) is
deploy/stack's, driven through tests/kit/stack.py.  The anchors are front
servers deploy/stack does not start: nginx answering by itself and
lighttpd serving a static file, each the shipped configuration
(deploy/SERVER/SERVER.conf.in) including its part from
tests/bench/anchors/NAME.conf.in (tests/kit/front.py renders both), on
the front server's port (the runner stops the front server first), with
its files under $VAR/anchor.

Every process is found through a pid file, never by name: other people's
pools and servers may run on the same machine.
"""

import os
from pathlib import Path

from ...kit.front import Front

ANCHORS = Path(__file__).resolve().parent.parent / "anchors"
PLAINTEXT = b"Hello, World!"


class _Critical:
    """A section a signal must not cut short (a deploy/stack start or
    stop, an anchor's start: killed half-way, it could leave a process
    with no pid file).  The runner's signal handler looks at depth and,
    when inside, only notes the signal in pending; leaving the outermost
    section raises KeyboardInterrupt then."""

    def __init__(self):
        self.depth = 0
        self.pending = None

    def __enter__(self):
        self.depth += 1

    def __exit__(self, *exc):
        self.depth -= 1
        if self.depth == 0 and self.pending is not None:
            self.pending = None
            if exc[0] is None:
                raise KeyboardInterrupt


CRITICAL = _Critical()


def anchor(var, port, name, paths):
    """Anchor name (nginx-alone, lighttpd-alone), a kit.front.Front to
    start(guard=CRITICAL), with its files under var/anchor (var: the
    stack's state directory, resolved: as root the servers' users must
    reach it); paths: what it must answer (lighttpd gets a file for
    each)."""
    front = Front(name.split("-")[0], os.path.join(var, "anchor"),
                  ANCHORS / ("%s.conf.in" % name), port)
    if name == "lighttpd-alone":
        os.makedirs(front.path("www"), exist_ok=True)
        os.chmod(front.path("www"), 0o755)
        for p in paths:
            f = front.path("www", p.split("?")[0].strip("/") or "index")
            Path(f).write_bytes(PLAINTEXT)
            os.chmod(f, 0o644)
    return front
