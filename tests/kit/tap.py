"""tap: what a test program prints, and how it ends.

    def body(tap):
        tap.check(r.status == 200, "GET /json: 200", r.summary())
    if __name__ == "__main__":
        tap.main(body, deadline=120)

Every line is a TAP line: "ok N - ...", "not ok N - ..." (with "# "
details under it), "ok N - ... # SKIP why", a "# " comment, and at the
end the plan "1..N", which tests/run holds the program to: a program
that stops early prints none.  A precondition of the whole program that
fails (a binary make did not build) is "Bail out!", never a passed check:
need() says it.  There is no unconditional ok(): a check states its
condition.
"""

import os
import shutil
import signal
import sys
import threading
import traceback


class Bail(BaseException):
    """A precondition of the whole program failed; main() says why."""


class SkipRest(BaseException):
    """The rest of the program cannot run here (skip_rest said why)."""


class TAP:
    """Numbered check lines.  A check passes or fails; details go on "# "
    lines right after a failed one so that a reader sees why."""

    MAX_DETAIL_LINES = 40
    MAX_LINE = 400

    def __init__(self):
        self.n = 0
        self.failed = 0
        self._lock = threading.Lock()

    @staticmethod
    def _one_line(text):
        return " ".join(str(text).split())

    def note(self, *lines):
        """Print "# " comment lines (each argument may hold several)."""
        for text in lines:
            for line in str(text).splitlines() or [""]:
                if len(line) > self.MAX_LINE:
                    line = line[: self.MAX_LINE] + "..."
                print("# " + line if line else "#", flush=True)

    def check(self, cond, desc, details=()):
        """One check: ok when cond is true.  details (a string or a list
        of strings) are printed under a failing check only.  Returns
        whether it passed."""
        with self._lock:
            self.n += 1
            desc = self._one_line(desc)
            if cond:
                print("ok %d - %s" % (self.n, desc), flush=True)
                return True
            self.failed += 1
            print("not ok %d - %s" % (self.n, desc), flush=True)
            lines = []
            for d in [details] if isinstance(details, str) else details:
                lines.extend(str(d).splitlines())
            if len(lines) > self.MAX_DETAIL_LINES:
                cut = len(lines) - self.MAX_DETAIL_LINES
                lines = lines[: self.MAX_DETAIL_LINES] + ["(%d more lines)" % cut]
            self.note(*lines)
            return False

    def fail(self, desc, details=()):
        return self.check(False, desc, details)

    def skip(self, desc, reason):
        """A check that cannot run here for a reason that is no gap in
        the machine (an external PostgreSQL the test must not restart).
        tests/run counts it apart, neither passed nor failed."""
        with self._lock:
            self.n += 1
            print("ok %d - %s # SKIP %s" % (self.n, self._one_line(desc),
                                             self._one_line(reason)), flush=True)

    def skip_rest(self, desc, reason):
        """desc skipped (see skip()), and the rest of the program with it:
        main() ends it there, the checks so far counted."""
        self.skip(desc, reason)
        raise SkipRest(reason)

    def need(self, paths, hint="run `make test` first: it builds them"):
        """Bail out unless every path exists: a program that cannot start
        is no check passed or failed, but a run that fails."""
        missing = [str(p) for p in paths if not os.path.exists(p)]
        if missing:
            raise Bail("missing %s; %s" % (", ".join(missing), hint))

    def tool(self, name, desc):
        """The path of a program deploy/deps test installs; None, and a
        failed check desc, when it is missing: that is a gap in the
        machine the tests must not hide by skipping."""
        path = shutil.which(name)
        if path is None:
            self.fail(desc, "%s not found; deploy/deps test installs it" % name)
        return path

    def root(self, desc):
        """True when we are root.  Otherwise a check that needs root
        cannot run: skipped on a developer's machine, failed under CI
        (CI set, as CI runs as root), where it must never go missing."""
        if os.geteuid() == 0:
            return True
        if in_ci():
            self.fail(desc, "needs root, and CI runs as root")
        else:
            self.skip(desc, "not root")
        return False

    def problems(self, desc, problems):
        """A check from a list of TFB verifier problems (level, reason,
        url): it passes only when none is a fail or a warn, because a
        WARN counts as a failure for this project."""
        bad = [p for p in problems if p[0] in ("fail", "warn")]
        details = ["%s: %s (%s)" % (p[0].upper(), p[1], p[2]) for p in bad]
        return self.check(not bad, desc, details)


def in_ci():
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


# Both derive from BaseException, like KeyboardInterrupt, so that no
# "except Exception" on the way swallows them.
class TestTimeout(BaseException):
    """Raised by the deadline alarm of main()."""


class Terminated(BaseException):
    """Raised by SIGTERM / SIGHUP so that finally blocks still run."""


def _on_alarm(signum, frame):
    raise TestTimeout("test file exceeded its deadline")


def _on_term(signum, frame):
    raise Terminated("signal %d" % signum)


def main(body, deadline=600):
    """Run body(tap) with a deadline (seconds), report anything that
    escapes it as a failed check, print the plan, and exit with the
    verdict: 0 when every check passed, 1 when one failed, 2 after a
    "Bail out!"."""
    tap = TAP()
    # Ctrl-C must raise KeyboardInterrupt even when our parent started us
    # with SIGINT ignored (a background job of a script).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGHUP, _on_term)
    signal.alarm(deadline)
    try:
        body(tap)
    except Bail as e:
        print("Bail out! %s" % e, flush=True)
        sys.exit(2)
    except SkipRest:
        pass
    except KeyboardInterrupt:
        tap.fail("interrupted (Ctrl-C)")
    except (TestTimeout, Terminated) as e:
        tap.fail("test aborted: %s" % e)
    except Exception as e:
        tap.fail("test raised %s: %s" % (type(e).__name__, e), traceback.format_exc())
    finally:
        signal.alarm(0)
    print("1..%d" % tap.n, flush=True)
    sys.exit(1 if tap.failed else 0)
