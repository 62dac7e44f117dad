"""keymux integration helpers: port allocation, process control, a raw RESP client,
and an independent ketama/fnv1a_64 placement oracle.

Everything here is bounded by timeouts: no helper can block forever.
"""

import hashlib
import os
import select
import signal
import socket
import struct
import subprocess
import threading
import time

PORT_MIN = 26000  # below the kernel's ephemeral range (32768+), so outgoing connections never hold one
PORT_MAX = 26999  # inclusive

DEFAULT_TIMEOUT = 10.0  # seconds, for sockets and waits unless told otherwise

# KEYMUX_WORKERS=N runs every keymux the tests start with -w N (nutcracker never gets it)
WORKERS = os.environ.get("KEYMUX_WORKERS", "")


def nworkers():
    """Workers each keymux of this run has (KEYMUX_WORKERS, else 1)."""
    return int(WORKERS) if WORKERS else 1


def workers_argv(binary):
    """The -w flag for a keymux the tests start, from KEYMUX_WORKERS ([] when unset)."""
    if not WORKERS or os.path.basename(os.path.realpath(binary)).startswith("nutcracker"):
        return []
    return ["-w", WORKERS]


# ---------------------------------------------------------------------------
# ports


class PortAllocator:
    """Hands out ports from [PORT_MIN, PORT_MAX] that are free right now.

    Probing starts at an offset derived from the pid so that parallel runs walk
    the range from different places; a port is never handed out twice by one
    process (even after release), so a port in TIME_WAIT from an earlier test of
    this run is not reused.
    """

    def __init__(self, lo=PORT_MIN, hi=PORT_MAX):
        self.lo = lo
        self.span = hi - lo + 1
        self.next = (os.getpid() * 7919) % self.span
        self.given = set()
        self.lock = threading.Lock()

    @staticmethod
    def _is_free(port):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
        # also nobody listening on a wildcard/other address we could not see
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.settimeout(0.2)
        try:
            c.connect(("127.0.0.1", port))
            return False
        except OSError:
            return True
        finally:
            c.close()

    def get(self):
        with self.lock:
            for attempt in range(2):
                for _ in range(self.span):
                    port = self.lo + self.next
                    self.next = (self.next + 1) % self.span
                    if port in self.given:
                        continue
                    if self._is_free(port):
                        self.given.add(port)
                        return port
                # every port handed out once: allow reuse of those free again
                # (the bind probe still refuses ports in use or in TIME_WAIT)
                self.given.clear()
        raise RuntimeError("no free port in %d-%d" % (PORT_MIN, PORT_MAX))


PORTS = PortAllocator()


def wait_port(port, timeout=DEFAULT_TIMEOUT, proc=None):
    """Wait until 127.0.0.1:port accepts a TCP connection. Returns True, or False on
    timeout or when proc (a Popen) exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(0.5)
        try:
            s.connect(("127.0.0.1", port))
            return True
        except OSError:
            time.sleep(0.02)
        finally:
            s.close()
    return False


def read_tail(path, max_bytes=16384):
    """The last max_bytes of a file as text ('' when missing)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    if size > max_bytes:
        text = "[... %d bytes before ...]\n" % (size - max_bytes) + text
    return text


def stop_process(proc, timeout=5.0):
    """SIGTERM, then SIGKILL after timeout. Returns (returncode, needed_kill).
    Only ever signals this Popen's own pid."""
    if proc.poll() is not None:
        return proc.returncode, False
    try:
        proc.send_signal(signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout)
        return proc.returncode, False
    except subprocess.TimeoutExpired:
        pass
    try:
        proc.kill()
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    return proc.returncode, True


# ---------------------------------------------------------------------------
# RESP


def encode(*args):
    """One RESP request (array of bulk strings) from str/bytes/int args."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = str(a).encode()
        elif isinstance(a, float):
            a = repr(a).encode()
        out.append(b"$%d\r\n" % len(a))
        out.append(a)
        out.append(b"\r\n")
    return b"".join(out)


class Status(bytes):
    """+simple string reply."""


class Error(bytes):
    """-error reply."""


class NilArray:
    """*-1 reply."""

    def __repr__(self):
        return "NilArray"

    def __eq__(self, other):
        return isinstance(other, NilArray)

    def __hash__(self):
        return 0


class Incomplete(Exception):
    pass


class ProtocolError(Exception):
    pass


def parse(buf, pos):
    """Parse one RESP2 reply from buf at pos. Returns (value, end). Raises
    Incomplete when more bytes are needed, ProtocolError on bad framing."""
    if pos >= len(buf):
        raise Incomplete()
    nl = buf.find(b"\r\n", pos)
    if nl < 0:
        if len(buf) - pos > 65536:
            raise ProtocolError("no CRLF in %r" % bytes(buf[pos:pos + 64]))
        raise Incomplete()
    kind = buf[pos:pos + 1]
    line = bytes(buf[pos + 1:nl])
    end = nl + 2
    if kind == b"+":
        return Status(line), end
    if kind == b"-":
        return Error(line), end
    if kind == b":":
        return int(line), end
    if kind == b"$":
        n = int(line)
        if n < 0:
            return None, end
        if len(buf) < end + n + 2:
            raise Incomplete()
        if buf[end + n:end + n + 2] != b"\r\n":
            raise ProtocolError("bulk not CRLF terminated")
        return bytes(buf[end:end + n]), end + n + 2
    if kind == b"*":
        n = int(line)
        if n < 0:
            return NilArray(), end
        items = []
        for _ in range(n):
            v, end = parse(buf, end)
            items.append(v)
        return items, end
    raise ProtocolError("bad reply type byte %r at %r" % (kind, bytes(buf[pos:pos + 64])))


class RespConn:
    """A raw RESP client over one TCP socket. Every read is bounded by timeout;
    a timeout raises socket.timeout, EOF raises ConnectionError."""

    def __init__(self, port, timeout=DEFAULT_TIMEOUT, host="127.0.0.1"):
        self.port = port
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, *args):
        self.sock.sendall(encode(*args))

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("reply not complete within %.1fs" % self.timeout)
        self.sock.settimeout(min(remaining, self.timeout))
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("connection closed by peer (buffered %d unparsed bytes: %r)"
                                  % (len(self.buf) - self.pos, bytes(self.buf[self.pos:self.pos + 80])))
        if self.pos and self.pos > (1 << 20):
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += chunk

    def read_with_raw(self, timeout=None):
        """Read one reply: (value, raw bytes of the reply)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            try:
                value, end = parse(self.buf, self.pos)
            except Incomplete:
                self._fill(deadline)
                continue
            raw = bytes(self.buf[self.pos:end])
            self.pos = end
            if self.pos == len(self.buf):
                self.buf = bytearray()
                self.pos = 0
            return value, raw

    def read(self, timeout=None):
        return self.read_with_raw(timeout)[0]

    def read_raw(self, timeout=None):
        return self.read_with_raw(timeout)[1]

    def call(self, *args, timeout=None):
        self.send(*args)
        return self.read(timeout)

    def call_with_raw(self, *args, timeout=None):
        self.send(*args)
        return self.read_with_raw(timeout)

    def call_raw(self, *args, timeout=None):
        self.send(*args)
        return self.read_raw(timeout)

    def expect_closed(self, timeout=5.0):
        """True when the peer closes (EOF or reset) within timeout with no more
        data; returns the extra bytes received otherwise (b'' never)."""
        deadline = time.monotonic() + timeout
        extra = bytearray(self.buf[self.pos:])
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                return True if not extra else bytes(extra)
            if not chunk:
                return True if not extra else bytes(extra)
            extra += chunk
        return bytes(extra) if extra else False

    def pipeline(self, payload, nreplies, timeout=60.0):
        """Send payload (many requests) while reading replies, never blocking on a
        full socket in either direction. Returns the list of nreplies raw replies."""
        return [raw for _, raw in self.pipeline_values(payload, nreplies, timeout)]

    def pipeline_values(self, payload, nreplies, timeout=60.0):
        """Like pipeline() but returns (value, raw) pairs."""
        deadline = time.monotonic() + timeout
        out = []
        sent = 0
        view = memoryview(payload)
        self.sock.setblocking(False)
        try:
            while len(out) < nreplies:
                # parse what we have
                while len(out) < nreplies:
                    try:
                        value, end = parse(self.buf, self.pos)
                    except Incomplete:
                        break
                    out.append((value, bytes(self.buf[self.pos:end])))
                    self.pos = end
                if len(out) >= nreplies:
                    break
                if self.pos > (1 << 20):
                    del self.buf[:self.pos]
                    self.pos = 0
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise socket.timeout("pipeline: %d/%d replies, %d/%d bytes sent after %.0fs"
                                         % (len(out), nreplies, sent, len(payload), timeout))
                wlist = [self.sock] if sent < len(payload) else []
                r, w, _ = select.select([self.sock], wlist, [], min(remaining, 1.0))
                if w:
                    try:
                        sent += self.sock.send(view[sent:sent + 262144])
                    except BlockingIOError:
                        pass
                if r:
                    try:
                        chunk = self.sock.recv(1 << 20)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        raise ConnectionError("pipeline: closed after %d/%d replies" % (len(out), nreplies))
                    self.buf += chunk
        finally:
            self.sock.setblocking(True)
            self.sock.settimeout(self.timeout)
        if self.pos == len(self.buf):
            self.buf = bytearray()
            self.pos = 0
        return out


# ---------------------------------------------------------------------------
# placement oracle (independent Python model of twemproxy's ketama + fnv1a_64)

KETAMA_POINTS_PER_SERVER = 160


def hash_fnv1a_64(key):
    """twemproxy's fnv1a_64: the 64-bit FNV-1a constants truncated to 32 bits, with
    each byte sign-extended as a C char (x86)."""
    h = 0xCBF29CE484222325 & 0xFFFFFFFF
    for b in key:
        v = b if b < 0x80 else (b | 0xFFFFFF00)
        h ^= v
        h = (h * (0x100000001B3 & 0xFFFFFFFF)) & 0xFFFFFFFF
    return h


def hash_md5(key):
    d = hashlib.md5(key).digest()
    return int.from_bytes(d[0:4], "little")


def _f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def ketama_continuum(names, weights):
    """Sorted [(point, server index)] for live servers named names with weights."""
    total = float(sum(weights))
    nlive = len(names)
    points = []
    for idx, (name, w) in enumerate(zip(names, weights)):
        pct = _f32(w / total)
        # twemproxy computes this in single precision
        v = _f32(_f32(_f32(pct * KETAMA_POINTS_PER_SERVER) / 4) * _f32(float(nlive)))
        ns = int((v + 0.0000000001) // 1) * 4
        for p in range(ns // 4):
            d = hashlib.md5(b"%s-%d" % (name.encode(), p)).digest()
            for x in range(4):
                points.append((int.from_bytes(d[4 * x:4 * x + 4], "little"), idx))
    points.sort()
    return points


def ketama_lookup(continuum, h):
    lo, hi = 0, len(continuum)
    while lo < hi:
        mid = (lo + hi) // 2
        if continuum[mid][0] < h:
            lo = mid + 1
        else:
            hi = mid
    if lo == len(continuum):
        lo = 0
    return continuum[lo][1]


def ketama_server_for(key, server_addrs, weights=None, hashfn=hash_fnv1a_64, hash_tag=None):
    """Index into server_addrs ('host:port' strings, unnamed) where twemproxy's ketama
    places key."""
    if isinstance(key, str):
        key = key.encode()
    if hash_tag:
        a, b = hash_tag[0].encode(), hash_tag[1].encode()
        i = key.find(a)
        if i >= 0:
            j = key.find(b, i + 1)
            if j >= 0 and j - i > 1:
                key = key[i + 1:j]
    names = []
    for addr in server_addrs:
        host, port = addr.rsplit(":", 1)
        names.append(host if port == "11211" else addr)
    cont = ketama_continuum(names, weights or [1] * len(names))
    return ketama_lookup(cont, hashfn(key))


def keys_on(server_addrs, index, n, prefix="k"):
    """n keys (prefix + number) that ketama over fnv1a_64 puts on server_addrs[index]
    when all of server_addrs are live (unnamed servers, equal weights)."""
    out = []
    i = 0
    while len(out) < n:
        k = "%s%d" % (prefix, i)
        if ketama_server_for(k, server_addrs) == index:
            out.append(k)
        i += 1
        if i > 100000 * n:
            raise ValueError("no keys for server %d" % index)
    return out


# ---------------------------------------------------------------------------
# misc


def wait_for(pred, timeout, step=0.02):
    """pred() until it is true or timeout seconds have passed; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def wait_keys_home(c, backend, keys, value=b"home", timeout=15):
    """After an ejected backend is back: wait until a SET of keys[1] through the proxy
    connection c lands on it, then SET every key and check that backend holds them all."""
    def returned():
        if c.call("SET", keys[1], value) != b"OK":
            return False
        with backend.client() as d:
            return d.call("GET", keys[1]) == value
    if not wait_for(returned, timeout, step=0.1):
        return False
    for k in keys:
        assert c.call("SET", k, value) == b"OK", k
    with backend.client() as d:
        return all(d.call("GET", k) == value for k in keys)


def run_bounded(argv, timeout, input=None, **kw):
    """subprocess.run with a hard timeout; returns CompletedProcess (bytes)."""
    return subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, **kw)


def describe(value, limit=200):
    r = repr(value)
    return r if len(r) <= limit else r[:limit] + "...(%d chars)" % len(r)
