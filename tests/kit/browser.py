"""browser: a page loaded in a real browser, Debian's headless Chromium.

    dom = browser.dump_dom(url, workdir)            # the DOM once its scripts ran
    ok = browser.screenshot(url, "shot.png", workdir)

Each call runs `chromium --headless` with a profile of its own (under
workdir, made fresh), no network of its own beyond the page (no QUIC, no
background requests, no component updates, no sync) and a deadline.
--virtual-time-budget lets the page's timers run for that many
milliseconds of the browser's own clock before the DOM is taken, so that
a page that refreshes itself with a script has done so, without the test
waiting that long.  Chromium's own complaints (no D-Bus here) go to a
log file in workdir, not to the test's output.
"""

import os
import shutil
import subprocess
import tempfile

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]


def path():
    """The browser's path, or None (deploy/deps test installs it)."""
    return shutil.which("chromium")


def _run(args, workdir, timeout):
    profile = tempfile.mkdtemp(prefix="chromium-", dir=workdir)
    log = os.path.join(workdir, "chromium.log")
    argv = [path() or "chromium"] + FLAGS + ["--user-data-dir=" + profile] + args
    try:
        with open(log, "ab") as err:
            return subprocess.run(argv, stdout=subprocess.PIPE, stderr=err,
                                  stdin=subprocess.DEVNULL, timeout=timeout,
                                  start_new_session=True)
    except subprocess.TimeoutExpired:
        return None
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def dump_dom(url, workdir, budget_ms=3000, timeout=60):
    """The DOM of url (text) after budget_ms of the page's time; None when
    the browser failed or ran out of time."""
    r = _run(["--virtual-time-budget=%d" % budget_ms, "--dump-dom", url], workdir, timeout)
    if r is None or r.returncode != 0:
        return None
    return r.stdout.decode(errors="replace")


def screenshot(url, png, workdir, size=(1280, 900), budget_ms=1000, timeout=60):
    """A PNG of url at size into png; whether it was written."""
    if os.path.exists(png):
        os.unlink(png)
    r = _run(["--virtual-time-budget=%d" % budget_ms, "--window-size=%d,%d" % size,
              "--screenshot=" + png, url], workdir, timeout)
    return r is not None and r.returncode == 0 and os.path.getsize(png) > 0 \
        if os.path.exists(png) else False
