"""memcached fixtures for keymux's integration tests: real memcached processes, keymux and
nutcracker started on nutcracker-format configs, and a raw text-protocol socket client for
exact bytes.

Everything here is bounded: every wait has a timeout, every process is stopped by PID
(SIGTERM, then SIGKILL), and ports come from 24000-24999 only (the kernel's ephemeral
ports start at 32768 here).

Fixtures (import them into a test module: `from mcfix import *`)
  mc_keymux_bin   path of the proxy under test (env KEYMUX_BIN, default build/keymux)
  mc_env          function scope: an Env that starts memcached / keymux / nutcracker and
                  stops them all at teardown
  mc4             module scope: 4 memcached + one keymux pool over them (+ a spare
                  memcached, `ref`, for comparisons with a single real server)
"""

import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from helpers import workers_argv

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
KEYMUX_BIN = os.environ.get("KEYMUX_BIN", os.path.join(ROOT, "build", "keymux"))
NUTCRACKER_BIN = "/usr/sbin/nutcracker"
MEMCACHED_BIN = "/usr/bin/memcached"

PORT_MIN, PORT_MAX = 24000, 24999
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
IO_TIMEOUT = 5.0


class _Ports:
    """Free ports from [PORT_MIN, PORT_MAX], never the same one twice in a run."""

    def __init__(self):
        self.next = (os.getpid() * 131) % (PORT_MAX - PORT_MIN + 1)
        self.given = set()
        self.lock = threading.Lock()

    @staticmethod
    def free(host, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False
        finally:
            s.close()

    def get(self):
        span = PORT_MAX - PORT_MIN + 1
        with self.lock:
            for _ in range(span):
                port = PORT_MIN + self.next
                self.next = (self.next + 1) % span
                if port not in self.given and self.free("127.0.0.1", port):
                    self.given.add(port)
                    return port
        raise RuntimeError("no free port in %d-%d" % (PORT_MIN, PORT_MAX))


PORTS = _Ports()


def wait_port(host, port, proc, timeout=START_TIMEOUT):
    """Wait until host:port accepts a connection; fail if proc exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("process %s exited with %s before listening on %s:%d"
                               % (proc.args, proc.returncode, host, port))
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("nothing listens on %s:%d after %.0fs" % (host, port, timeout))


def stop_proc(proc):
    """SIGTERM, wait, SIGKILL: by PID, never by name."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(STOP_TIMEOUT)


class Memcached:
    def __init__(self, host, port, extra=()):
        self.host, self.port = host, port
        argv = [MEMCACHED_BIN, "-l", host, "-p", str(port), "-U", "0", "-t", "2", "-m", "64"]
        if os.geteuid() == 0:
            argv += ["-u", "nobody"]
        self.proc = subprocess.Popen(list(argv) + list(extra), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(host, port, self.proc)

    @property
    def addr(self):
        return (self.host, self.port)

    def raw(self):
        return Raw(self.host, self.port)

    def stop(self):
        stop_proc(self.proc)


def server_line(host, port, weight=1, name=None):
    line = "%s:%d:%d" % (host, port, weight)
    return line + (" " + name if name else "")


def pool_yaml(name, listen_port, servers, **opts):
    """A memcached pool written the way nutcracker's own example config writes one
    (no `redis:` key: memcached is the default). servers: lines from server_line()."""
    conf = {
        "hash": "fnv1a_64",
        "distribution": "ketama",
        "timeout": 3000,
        "backlog": 1024,
        "auto_eject_hosts": "false",
        "server_retry_timeout": 2000,
        "server_failure_limit": 3,
    }
    conf.update(opts)
    lines = ["%s:" % name, "  listen: 127.0.0.1:%d" % listen_port]
    for k, v in conf.items():
        lines.append("  %s: %s" % (k, v))
    lines.append("  servers:")
    lines += ["   - " + s for s in servers]
    return "\n".join(lines) + "\n"


class Proxy:
    """keymux (default) or nutcracker on a config file; listens on `port`."""

    def __init__(self, workdir, conf_text, port, nutcracker=False, conf_path=None):
        self.port = port
        self.stopped = False
        self.stats_port = PORTS.get()
        self.nutcracker = nutcracker
        tag = "nutcracker" if nutcracker else "keymux"
        self.conf = conf_path or os.path.join(workdir, "%s-%d.yml" % (tag, port))
        if conf_path is None:
            with open(self.conf, "w") as f:
                f.write(conf_text)
        self.log = os.path.join(workdir, "%s-%d.log" % (tag, port))
        if nutcracker:
            argv = [NUTCRACKER_BIN, "-c", self.conf, "-s", str(self.stats_port), "-a",
                    "127.0.0.1", "-o", self.log]
        else:
            argv = [KEYMUX_BIN, "-c", self.conf, "-s", str(self.stats_port), "-a", "127.0.0.1",
                    "-v", "6", "-o", self.log] + workers_argv(KEYMUX_BIN)
        self.errlog = self.log + ".stderr"
        with open(self.errlog, "wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err)
        wait_port("127.0.0.1", port, self.proc)

    def alive(self):
        return self.proc.poll() is None

    def stats(self):
        """The stats port's JSON object."""
        s = socket.create_connection(("127.0.0.1", self.stats_port), timeout=IO_TIMEOUT)
        data = b""
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
        finally:
            s.close()
        return json.loads(data)

    def raw(self):
        return Raw("127.0.0.1", self.port)

    def log_tail(self, n=4000):
        out = ""
        for path in (self.log, self.errlog):
            try:
                with open(path, "rb") as f:
                    out += f.read()[-n:].decode("utf-8", "replace")
            except OSError:
                out += "(no %s)" % path
        return out

    def sanitizer_report(self):
        """What a sanitizer build wrote on stderr, or None."""
        try:
            with open(self.errlog, "rb") as f:
                data = f.read()
        except OSError:
            return None
        for marker in (b"ERROR: AddressSanitizer", b"ERROR: LeakSanitizer", b"runtime error:"):
            if marker in data:
                return data[-6000:].decode("utf-8", "replace")
        return None

    def stop(self):
        self.stopped = True
        stop_proc(self.proc)


class Raw:
    """A plain socket speaking bytes: send, then read exactly what is expected."""

    def __init__(self, host, port, timeout=IO_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def read(self, n, timeout=IO_TIMEOUT):
        """Exactly n bytes (fewer only if the peer closes or the time runs out)."""
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.sock.settimeout(left)
            try:
                d = self.sock.recv(max(65536, n - len(self.buf)))
            except socket.timeout:
                break
            if not d:
                break
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_until(self, marker, timeout=IO_TIMEOUT, limit=64 << 20):
        deadline = time.monotonic() + timeout
        while marker not in self.buf and len(self.buf) < limit:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.sock.settimeout(left)
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                break
            if not d:
                break
            self.buf += d
        i = self.buf.find(marker)
        if i < 0:
            out, self.buf = self.buf, b""
            return out
        out, self.buf = self.buf[:i + len(marker)], self.buf[i + len(marker):]
        return out

    def pending(self, wait=0.05):
        """Whatever arrives within `wait` seconds (to check that nothing more came)."""
        self.sock.settimeout(wait)
        try:
            d = self.sock.recv(65536)
            self.buf += d
        except socket.timeout:
            pass
        out, self.buf = self.buf, b""
        return out

    def closed(self, timeout=IO_TIMEOUT):
        """True when the peer closes the connection (nothing else arriving) in time."""
        self.sock.settimeout(timeout)
        try:
            d = self.sock.recv(1)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        return d == b""

    def call(self, req, expect_len=None, marker=None):
        """Send req; read expect_len bytes or up to marker."""
        self.send(req)
        if marker is not None:
            return self.read_until(marker)
        return self.read(expect_len)

    def close(self):
        self.sock.close()


class Env:
    """Starts processes for one test (or module) and stops them all afterwards."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.procs = []

    def memcached(self, host="127.0.0.1", port=None, extra=()):
        m = Memcached(host, port or PORTS.get(), extra)
        self.procs.append(m)
        return m

    def proxy(self, conf_text, port, nutcracker=False, conf_path=None):
        p = Proxy(self.workdir, conf_text, port, nutcracker, conf_path)
        self.procs.append(p)
        return p

    def stop_all(self):
        # SIGTERM to all first: memcached takes up to a second to exit, so wait in parallel
        for p in self.procs:
            if p.proc.poll() is None:
                p.proc.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.stop()
            except Exception:
                pass
        self.procs = []


class Pool4:
    """4 memcached behind one keymux pool, plus `ref`, one memcached on its own."""

    def __init__(self, env):
        self.env = env
        self.backends = [env.memcached() for _ in range(4)]
        self.ref = env.memcached()
        self.port = PORTS.get()
        self.conf = pool_yaml("gamma", self.port,
                              [server_line(b.host, b.port) for b in self.backends])
        self.proxy = env.proxy(self.conf, self.port)

    def raw(self):
        return self.proxy.raw()

    def holder(self, key):
        """Indices of the backends that hold key (asked directly)."""
        out = []
        for i, b in enumerate(self.backends):
            r = b.raw()
            got = r.call(b"mg " + key + b"\r\n", marker=b"\r\n")
            r.close()
            if got.startswith(b"HD"):
                out.append(i)
        return out


def _check_alive(procs):
    for p in procs:
        if isinstance(p, Proxy) and not p.stopped and not p.alive():
            pytest.fail("%s exited with %s during the test\n%s"
                        % ("nutcracker" if p.nutcracker else "keymux", p.proc.returncode,
                           p.log_tail()), pytrace=False)


def _stop_and_check(env):
    """Stop everything; a sanitizer report from a proxy fails the test (or module)."""
    proxies = [p for p in env.procs if isinstance(p, Proxy)]
    env.stop_all()
    for p in proxies:
        rep = p.sanitizer_report()
        if rep:
            pytest.fail("sanitizer report from %s:\n%s" % (p.conf, rep), pytrace=False)


@pytest.fixture(scope="session")
def mc_keymux_bin():
    if not os.access(KEYMUX_BIN, os.X_OK):
        pytest.fail("keymux binary %s not found (build it with make)" % KEYMUX_BIN)
    return KEYMUX_BIN


@pytest.fixture
def mc_env(mc_keymux_bin, tmp_path):
    env = Env(str(tmp_path))
    try:
        yield env
        _check_alive(env.procs)
    except BaseException:
        env.stop_all()
        raise
    _stop_and_check(env)


@pytest.fixture(scope="module")
def mc4(mc_keymux_bin, tmp_path_factory):
    env = Env(str(tmp_path_factory.mktemp("mc4")))
    try:
        pool = Pool4(env)
        yield pool
    except BaseException:
        env.stop_all()
        raise
    _stop_and_check(env)


@pytest.fixture
def mc4_alive(mc4):
    """mc4, failing the test if the proxy died during it (with its log)."""
    yield mc4
    _check_alive(mc4.env.procs)


def uniq(prefix):
    """A key prefix no other test of this run uses. Put what varies between keys in
    front of it: twemproxy's fnv1a_64 (the default hash) is a 32-bit FNV whose last
    bytes barely move the hash, so keys that differ only at their end share a server."""
    uniq.n += 1
    return ("%s%d-%d:" % (prefix, os.getpid(), uniq.n)).encode()


uniq.n = 0
