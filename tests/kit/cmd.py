"""cmd: commands, with a deadline for every wait.

    r = cmd.run(["nginx", "-t"], 30)        # CompletedProcess, output merged
    job = cmd.Job(["wrk", ...])              # in the background, own session
    rc, out, cpu_ticks = job.wait(60)        # its CPU time from rusage
    cmd.wait_for(lambda: port_is_free(p), 5)
"""

import os
import signal
import subprocess
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def run(argv, timeout, env=None, cwd=None, session=False):
    """subprocess.run with a timeout, stdout and stderr merged into
    .stdout (text).  A timeout returns returncode None, never raises.
    session: run it in a session of its own, out of reach of a Ctrl-C
    on our terminal."""
    argv = [str(a) for a in argv]
    try:
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                              timeout=timeout, text=True, errors="replace",
                              start_new_session=session)
    except subprocess.TimeoutExpired as e:
        out = e.stdout or ""
        if isinstance(out, bytes):
            out = out.decode(errors="replace")
        return subprocess.CompletedProcess(argv, None, out + "\n(timed out after %ss)" % timeout)


def interrupt(argv, ready, settle, budget, env=None, cwd=None):
    """Run argv, read its output until ready(line) says it is where it
    should be (or budget seconds pass), let it go on settle seconds, then
    SIGINT it, as Ctrl-C would: (its exit status, all it printed).  A
    program that has not exited 90 s after is killed (status not 130)."""
    proc = subprocess.Popen([str(a) for a in argv], env=env, cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    lines, deadline = [], time.monotonic() + budget
    try:
        for line in proc.stdout:
            lines.append(line)
            if ready(line) or time.monotonic() > deadline:
                break
        time.sleep(settle)
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=90)
        lines.append(rest)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
    return proc.returncode, "".join(lines)


def wait_exit(proc, timeout):
    """proc's exit status once it exits within timeout seconds, else
    None (it is left running)."""
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


def tail(text, n=30):
    """The last n lines of text."""
    return (text or "").rstrip().splitlines()[-n:]


def wait_for(pred, timeout, step=0.02):
    """Poll pred() until it returns something true or timeout seconds
    pass; returns its last value."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= end:
            return v
        time.sleep(step)


class Job:
    """A command in the background, in a session of its own (a Ctrl-C on
    the terminal reaches only us, who stop it), its output in a temporary
    file.  wait() reaps it with wait4, so that its CPU time is known."""

    def __init__(self, argv, env=None, cwd=None):
        self.argv = [str(a) for a in argv]
        self.out = tempfile.TemporaryFile(mode="w+", errors="replace")
        self.proc = subprocess.Popen(self.argv, stdout=self.out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                                     start_new_session=True)
        self.pid = self.proc.pid
        self.started = time.monotonic()
        self.rc = self.output = self.cpu_ticks = None

    def running(self):
        """Whether it still runs (looked at without reaping it: wait()
        reaps, for the CPU time)."""
        if self.rc is not None:
            return False
        try:
            return os.waitid(os.P_PID, self.pid,
                             os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
        except ChildProcessError:
            return False

    def signal(self, sig, group=False):
        """sig to it, or to its whole process group (its session's)."""
        if self.running():
            try:
                os.killpg(self.pid, sig) if group else os.kill(self.pid, sig)
            except OSError:
                pass

    def peek(self):
        """Its output so far."""
        if self.output is not None:
            return self.output
        # pread: the file's offset is shared with the writer.
        fd = self.out.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

    def wait(self, timeout):
        """(exit status, output, CPU ticks) once it exits; past timeout
        seconds it is killed, and its status is None."""
        if self.rc is None:
            end = time.monotonic() + timeout
            killed = False
            while True:
                pid, status, ru = os.wait4(self.pid, os.WNOHANG)
                if pid == self.pid:
                    break
                if time.monotonic() > end and not killed:
                    os.kill(self.pid, signal.SIGKILL)
                    killed = True
                time.sleep(0.02)
            self.proc.returncode = os.waitstatus_to_exitcode(status)
            self.rc = None if killed else self.proc.returncode
            self.cpu_ticks = (ru.ru_utime + ru.ru_stime) * CLK_TCK
            self.out.seek(0)
            self.output = self.out.read() + ("\n(killed after %ss)" % timeout if killed else "")
            self.out.close()
        return self.rc, self.output, self.cpu_ticks

    def kill(self):
        if self.rc is None:
            self.signal(signal.SIGKILL)
            self.wait(5)
