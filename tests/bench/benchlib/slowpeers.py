"""slowpeers: FastCGI peers that send one byte and stop, held open.

The slowloris of FastCGI: each connects to the pool's socket, sends the
first byte of a record header and nothing more.  A worker closes such a
connection at its read deadline (tfb-fcgi --read-timeout); an attacker
then connects again, and so does this: a connection the worker closed is
replaced at once, so that n stay open for as long as the peers run.
"""

import selectors
import socket
import threading


class SlowPeers:
    def __init__(self, path, n):
        self.path, self.n = path, n
        self.sel = selectors.DefaultSelector()
        self.closed = 0      # connections the workers closed
        self.opened = 0
        self.error = None
        self._stop = threading.Event()
        self._thread = None

    def _open(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(self.path)
            s.sendall(b"\x01")
        except OSError:
            s.close()
            raise
        s.setblocking(False)
        self.sel.register(s, selectors.EVENT_READ)
        self.opened += 1

    def _watch(self):
        """A readable peer was closed (or answered, which it should not
        be): count it and open another."""
        try:
            while not self._stop.is_set():
                for key, _ in self.sel.select(0.1):
                    s = key.fileobj
                    try:
                        data = s.recv(4096)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if data:
                        continue  # not expected: a byte is no request
                    self.sel.unregister(s)
                    s.close()
                    self.closed += 1
                    self._open()
        except OSError as e:
            self.error = f"slow peers: {e}"

    def __enter__(self):
        try:
            for _ in range(self.n):
                self._open()
        except OSError:
            self.__exit__(None, None, None)
            raise
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()
        self.sel.close()
        return False
