"""freeze.py: a server stopped with SIGSTOP for a test, resumed whatever
happens.

    with Frozen(postmaster_pid) as fz:      # the postmaster, then its children
        fz.count                            # how many processes were stopped
        ...                                 # the server answers nothing
    # resumed (SIGCONT) here, and also by a keeper process should this one
    # die first: an exception, the file's deadline, SIGKILL

A stopped server looks to its clients like one, or a network, that stopped
answering: its sockets stay open, the kernel still accepts connections
into its listen queue, nothing comes back.  The keeper is forked before the
first SIGSTOP: it waits on a pipe that only this process writes to, and
when the pipe closes, for whatever reason, it resumes every process that
was stopped, so that a failed test never leaves a frozen PostgreSQL behind
(whose stop would then hang too).  It ignores the signals that stop a test
(a terminal's, timeout(1)'s, the deadline's) and lives in a session of its
own.
"""

import os
import signal

from ..kit import proc

KEEPER_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGALRM)


def _resume(pids):
    for p in pids:
        try:
            os.kill(p, signal.SIGCONT)
        except OSError:
            pass


def _keep(rfd):
    """The keeper's life: read the pids as they are stopped, one per line,
    until EOF (the test closed the pipe, or died); then resume them all."""
    os.setsid()
    for s in KEEPER_SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    data = b""
    try:
        while True:
            chunk = os.read(rfd, 4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    _resume(int(x) for x in data.split() if x.isdigit())
    os._exit(0)


class Frozen:
    """root (a postmaster) and its children stopped on entry, resumed on
    exit: root first, so that it forks nothing unseen, then each child.
    count: how many were stopped; pids: which."""

    def __init__(self, root):
        self.root = root
        self.pids = []
        self.count = 0
        self._wfd = None
        self._keeper = None

    def __enter__(self):
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(wfd)
            _keep(rfd)
        os.close(rfd)
        self._keeper, self._wfd = pid, wfd
        try:
            self._stop(self.root)
            for child in proc.children(self.root):
                self._stop(child)
        except BaseException:
            self.thaw()
            raise
        return self

    def _stop(self, pid):
        # The keeper learns of it first: it must resume what is stopped.
        os.write(self._wfd, b"%d\n" % pid)
        try:
            os.kill(pid, signal.SIGSTOP)
        except OSError:
            return
        self.pids.append(pid)
        self.count += 1

    def thaw(self):
        """Resume them now (once), and let the keeper go."""
        if self._wfd is None:
            return
        _resume(self.pids)
        os.close(self._wfd)
        self._wfd = None
        try:
            os.waitpid(self._keeper, 0)
        except ChildProcessError:
            pass

    def __exit__(self, *exc):
        self.thaw()
        return False
