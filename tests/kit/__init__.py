"""tests.kit: the toolkit of the tests and the bench, one of each thing.

    tap       TAP output: numbered checks, the plan, main() with a deadline
    cmd       commands with a timeout, background jobs, waiting
    proc      process facts from /proc (the careful parse), CPU samples
    web       ports, HTTP requests, raw exchanges, a pool of HTTP clients
    fcgi      a raw FastCGI client, and the records that broke libfcgi
    stack     deploy/stack driven from Python (Stack), and its checks
    pg        a PostgreSQL cluster of a test's own (initdb, pg_ctl, psql)
    front     nginx and lighttpd from the shipped templates (deploy/)
    load      wrk, run and read one way
    pool      tfb-spawn and its workers, run by a test
    netns     hosts in network namespaces behind a switch, the delay line
    scene     a scenario's directory, processes and stack, and the fault checks
    verify    a replica of TechEmpower's verifier
    promtext  Prometheus' text format, checked as promtool does

The paths below are the build under test: make test passes its build
directory as TFB_BUILD_DIR, and the stack's script may be replaced by
TFB_STACK (to test the tests).  Nothing here imports a test file.
"""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("TFB_BUILD_DIR") or REPO / "build")
APP_BIN = BUILD / "tfb-fcgi"
SPAWN_BIN = BUILD / "tfb-spawn"
# Programs make test builds beside the build under test.
FAKE_WORKER = BUILD / "tests" / "spawn" / "supervisor" / "fake_worker"
NETDELAY = BUILD / "tests" / "integration" / "netdelay"
STACK = Path(os.environ.get("TFB_STACK") or REPO / "deploy" / "stack")
APP_NAME = "tfb-fcgi"  # application_name of the app's libpq connections
# How many of them a server holds.
APP_CONNECTIONS_SQL = ("SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s'"
                       % APP_NAME)
