"""A scripted fake Redis backend for the integration tests: a tiny TCP server run by
threads inside the test process. By default it behaves like a minimal redis-server
(PING, ECHO, GET, SET, MGET, DEL, EXISTS over an in-memory dict); rules keyed by a
request's first key make it misbehave on purpose: reply late, drip a reply byte by
byte, send half a reply and close, or send bytes that are not RESP at all.

    fake = FakeRedis().start()
    fake.on("late", delay=0.5)                            # normal reply, 500 ms late
    fake.on("half", send=b"$10\\r\\nabcde", close=True)     # half a bulk, then close
    fake.on("junk", send=b"HELLO\\r\\n", times=1)          # garbage once, then normal
    proxy_factory([real1, fake], ...)                     # fake has .addr like RedisServer
    ...
    fake.stop()

Each connection is served by its own thread, one request at a time and in order, as
a real server does: a delayed reply holds back the replies behind it on that
connection. Everything blocks for a bounded time only; stop() closes every socket
and joins every thread.
"""

import socket
import threading
import time

from helpers import PORTS


class Rule:
    """What to do with a request whose first key matches: wait delay seconds, then
    send `send` (raw bytes) or else the normal reply, in chunks of `drip` bytes with
    `drip_interval` seconds between them when drip is set; then close the connection
    when close is set. times: how many requests it applies to (None = all)."""

    def __init__(self, key, prefix=False, delay=0.0, send=None, close=False, drip=None,
                 drip_interval=0.0, times=None):
        self.key = key.encode() if isinstance(key, str) else key
        self.prefix = prefix
        self.delay = delay
        self.send = send
        self.close = close
        self.drip = drip
        self.drip_interval = drip_interval
        self.times = times
        self.hits = 0

    def matches(self, key):
        if key is None:
            return False
        return key.startswith(self.key) if self.prefix else key == self.key


def _bulk(v):
    if v is None:
        return b"$-1\r\n"
    return b"$%d\r\n%s\r\n" % (len(v), v)


class _BadRequest(Exception):
    pass


def _parse_request(buf):
    """One request (multibulk or inline) from the start of buf: (args, consumed), or
    (None, 0) when incomplete. Raises _BadRequest on framing a real server refuses."""
    if not buf:
        return None, 0
    nl = buf.find(b"\r\n")
    if buf[:1] != b"*":
        if nl < 0:
            return None, 0
        return buf[:nl].split(), nl + 2
    if nl < 0:
        return None, 0
    try:
        n = int(buf[1:nl])
    except ValueError:
        raise _BadRequest("invalid multibulk length")
    pos = nl + 2
    args = []
    for _ in range(n):
        nl = buf.find(b"\r\n", pos)
        if nl < 0:
            return None, 0
        if buf[pos:pos + 1] != b"$":
            raise _BadRequest("expected '$'")
        try:
            ln = int(buf[pos + 1:nl])
        except ValueError:
            raise _BadRequest("invalid bulk length")
        start = nl + 2
        if len(buf) < start + ln + 2:
            return None, 0
        args.append(bytes(buf[start:start + ln]))
        pos = start + ln + 2
    return args, pos


class FakeRedis:
    """The fake backend. Attributes for the tests to look at (read them through the
    methods, which take the lock): accepted connections, connections the peer closed,
    every request seen, an event log for failure messages."""

    IO_TIMEOUT = 0.2      # seconds a blocking call waits before checking for stop()
    JOIN_TIMEOUT = 5.0

    def __init__(self):
        self.port = None
        self.store = {}
        self.rules = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.listener = None
        self.threads = []
        self.socks = set()
        self._accepted = 0
        self._peer_closed = 0
        self._requests = []
        self._events = []
        self.t0 = time.monotonic()

    # -- set-up --------------------------------------------------------------

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def start(self):
        last = None
        for _ in range(8):
            port = PORTS.get()
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError as e:
                s.close()
                last = e
                continue
            s.listen(128)
            s.settimeout(self.IO_TIMEOUT)
            self.listener = s
            self.port = port
            t = threading.Thread(target=self._accept_loop, name="fake-accept-%d" % port, daemon=True)
            self.threads.append(t)
            t.start()
            return self
        raise RuntimeError("fake backend: no port to bind (%s)" % last)

    def stop(self):
        self.stopping.set()
        with self.lock:
            socks = list(self.socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in list(self.threads):
            t.join(self.JOIN_TIMEOUT)
        if self.listener is not None:
            self.listener.close()
            self.listener = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def on(self, key, **kw):
        """Add a rule (see Rule) for requests whose first key is key. Later rules are
        consulted first."""
        r = Rule(key, **kw)
        with self.lock:
            self.rules.insert(0, r)
        return r

    def set(self, key, value):
        with self.lock:
            self.store[key.encode() if isinstance(key, str) else key] = (
                value.encode() if isinstance(value, str) else value)

    # -- what happened -------------------------------------------------------

    def accepted(self):
        with self.lock:
            return self._accepted

    def peer_closed(self):
        with self.lock:
            return self._peer_closed

    def open_connections(self):
        with self.lock:
            return len(self.socks)

    def requests(self):
        with self.lock:
            return list(self._requests)

    def events(self):
        with self.lock:
            return "\n".join(self._events[-60:])

    def _log(self, text):
        with self.lock:
            self._events.append("%7.3f %s" % (time.monotonic() - self.t0, text))

    # -- serving -------------------------------------------------------------

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                s, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.settimeout(self.IO_TIMEOUT)
            with self.lock:
                self._accepted += 1
                n = self._accepted
                self.socks.add(s)
            self._log("conn %d accepted" % n)
            t = threading.Thread(target=self._serve, args=(s, n), name="fake-conn-%d" % n, daemon=True)
            with self.lock:
                self.threads.append(t)
            t.start()

    def _serve(self, s, n):
        buf = bytearray()
        why = "stopped"
        try:
            while not self.stopping.is_set():
                try:
                    args, used = _parse_request(buf)
                except _BadRequest as e:
                    self._sendall(s, b"-ERR Protocol error: %s\r\n" % str(e).encode())
                    why = "bad request"
                    return
                if args is None:
                    try:
                        chunk = s.recv(65536)
                    except socket.timeout:
                        continue
                    except OSError as e:
                        why = "recv error %s" % e
                        with self.lock:
                            self._peer_closed += 1
                        return
                    if not chunk:
                        why = "peer closed"
                        with self.lock:
                            self._peer_closed += 1
                        return
                    buf += chunk
                    continue
                del buf[:used]
                if not args:
                    continue
                with self.lock:
                    self._requests.append(args)
                if not self._handle(s, n, args):
                    why = "closed by script"
                    return
        finally:
            self._log("conn %d ends: %s" % (n, why))
            with self.lock:
                self.socks.discard(s)
            try:
                s.close()
            except OSError:
                pass

    def _rule_for(self, key):
        with self.lock:
            for r in self.rules:
                if r.matches(key) and (r.times is None or r.hits < r.times):
                    r.hits += 1
                    return r
        return None

    def _handle(self, s, n, args):
        """Answer one request; False when the connection is to be closed."""
        key = args[1] if len(args) > 1 else None
        rule = self._rule_for(key)
        if rule is None:
            return self._sendall(s, self._execute(args))
        self._log("conn %d: rule %r for %r" % (n, rule.key, args[:2]))
        if rule.delay and self.stopping.wait(rule.delay):
            return False
        data = rule.send if rule.send is not None else self._execute(args)
        if rule.drip:
            for i in range(0, len(data), rule.drip):
                if not self._sendall(s, data[i:i + rule.drip]):
                    return False
                if self.stopping.wait(rule.drip_interval):
                    return False
        elif data and not self._sendall(s, data):
            return False
        if rule.close:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return False
        return True

    def _sendall(self, s, data):
        """Send everything within a bounded time; False when the peer is gone."""
        view = memoryview(data)
        deadline = time.monotonic() + 10.0
        while view and time.monotonic() < deadline and not self.stopping.is_set():
            try:
                k = s.send(view)
            except socket.timeout:
                continue
            except OSError:
                return False
            view = view[k:]
        return not view

    def _execute(self, args):
        """The reply redis-server would give (for the few commands the tests use)."""
        cmd = args[0].upper()
        with self.lock:
            st = self.store
            if cmd == b"PING":
                return b"+PONG\r\n"
            if cmd == b"ECHO" and len(args) == 2:
                return _bulk(args[1])
            if cmd == b"GET" and len(args) == 2:
                return _bulk(st.get(args[1]))
            if cmd == b"SET" and len(args) == 3:
                st[args[1]] = args[2]
                return b"+OK\r\n"
            if cmd == b"MGET" and len(args) >= 2:
                return b"*%d\r\n" % (len(args) - 1) + b"".join(_bulk(st.get(k)) for k in args[1:])
            if cmd == b"DEL" and len(args) >= 2:
                return b":%d\r\n" % sum(1 for k in args[1:] if st.pop(k, None) is not None)
            if cmd == b"EXISTS" and len(args) >= 2:
                return b":%d\r\n" % sum(1 for k in args[1:] if k in st)
        return b"-ERR unknown command '%s'\r\n" % args[0]
