"""keymux integration harness: starts real redis-server processes and the proxy under
test (env KEYMUX_BIN, default build/keymux; /usr/sbin/nutcracker works too), writes
nutcracker-format YAML pool configs, and stops everything by PID at teardown.

Fixtures
  keymux_bin                 path of the proxy under test (fails, never skips, if absent)
  redis_factory(n, args=(), password=None)
                             function scope: n fresh redis-servers, answering PING;
                             each can kill(), restart() (same port), pause(), resume()
  proxy_factory(servers, **) function scope: one proxy with one pool over servers
                             (argv_extra=[...] adds flags, conf_fn(port) writes the YAML)
  module_redis_factory, module_proxy_factory   the same, living for the module
  pool4                      module scope: 4 backends + proxy (hash_tag "{}") + 1 direct redis
  daemons                    a list to append Daemon(tmp_path, conf_text, argv) objects to:
                             keymuxes run by hand, stopped at the end, output checked
A proxy that dies during a test fails that test, and every failing test gets the
logs of the proxies it used appended to its report.
"""

import os
import shutil
import signal
import subprocess
import time

import pytest

import helpers
from helpers import PORTS, RespConn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
KEYMUX_BIN = os.environ.get("KEYMUX_BIN", os.path.join(ROOT, "build", "keymux"))
NUTCRACKER_BIN = "/usr/sbin/nutcracker"
REDIS_SERVER_BIN = shutil.which("redis-server") or "/usr/bin/redis-server"

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
SANITIZER_MARKERS = (b"ERROR: AddressSanitizer", b"ERROR: LeakSanitizer", b"runtime error:",
                     b"WARNING: ThreadSanitizer")


def binary_is_nutcracker(path):
    return os.path.basename(os.path.realpath(path)).startswith("nutcracker")


class Registry:
    """Every process this test session started, so that nothing outlives it."""

    def __init__(self):
        self.redis = []
        self.proxies = []

    def stop_all(self):
        for p in self.proxies + self.redis:
            try:
                p.stop()
            except Exception:
                pass


REG = Registry()


# ---------------------------------------------------------------------------
# redis-server


class RedisServer:
    """One redis-server on 127.0.0.1:port, its own dir, log at dir/redis.log."""

    def __init__(self, workdir, args=(), password=None):
        self.workdir = workdir
        self.args = list(args)
        self.password = password
        self.port = None
        self.proc = None
        self.stopped = False
        os.makedirs(workdir, exist_ok=True)
        self.log_path = os.path.join(workdir, "redis.log")

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def _spawn(self):
        argv = [REDIS_SERVER_BIN, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--daemonize", "no",
                "--dir", self.workdir] + self.args
        if self.password is not None:
            argv += ["--requirepass", self.password]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.workdir)
        if self not in REG.redis:
            REG.redis.append(self)

    def start(self):
        last = ""
        for _ in range(4):
            self.port = PORTS.get()
            self._spawn()
            if self._wait_ping():
                return self
            last = helpers.read_tail(self.log_path, 4000)
            helpers.stop_process(self.proc, 2.0)
            if "Address already in use" not in last:
                break
        raise RuntimeError("redis-server on port %s did not answer PING:\n%s" % (self.port, last))

    def kill(self):
        """SIGKILL (no goodbye to clients' sockets beyond the kernel's), and reap."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT)

    def restart(self):
        """Start again on the same port (after kill()); waits for PING."""
        self.kill()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            self._spawn()
            if self._wait_ping():
                return self
            helpers.stop_process(self.proc, 2.0)
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not restart on port %s:\n%s"
                                   % (self.port, helpers.read_tail(self.log_path, 4000)))
            time.sleep(0.1)

    def pause(self):
        """SIGSTOP: the server keeps its sockets but answers nothing."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def _wait_ping(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with self.client(timeout=1.0) as c:
                    if c.call("PING") == b"PONG":
                        return True
            except (OSError, ConnectionError, helpers.ProtocolError):
                time.sleep(0.02)
        return False

    def client(self, timeout=helpers.DEFAULT_TIMEOUT):
        """A raw connection, already authenticated when the server has a password."""
        c = RespConn(self.port, timeout=timeout)
        if self.password is not None:
            try:
                reply = c.call("AUTH", self.password)
            except BaseException:
                c.close()
                raise
            if reply != b"OK":
                c.close()
                raise ConnectionError("AUTH refused: %r" % (reply,))
        return c

    def redis(self, **kw):
        import redis
        kw.setdefault("socket_timeout", helpers.DEFAULT_TIMEOUT)
        kw.setdefault("socket_connect_timeout", helpers.DEFAULT_TIMEOUT)
        if self.password is not None:
            kw.setdefault("password", self.password)
        return redis.Redis(host="127.0.0.1", port=self.port, **kw)

    def flushall(self):
        with self.client() as c:
            assert c.call("FLUSHALL") == b"OK"

    def stop(self):
        if self.stopped or self.proc is None:
            return
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)   # a paused server could not handle SIGTERM
        helpers.stop_process(self.proc, STOP_TIMEOUT)


# ---------------------------------------------------------------------------
# proxy


def server_line(server, weight=1, name=None):
    addr = server.addr if hasattr(server, "addr") else str(server)
    line = "%s:%d" % (addr, weight)
    if name:
        line += " " + name
    return line


def pool_yaml(name, listen_port, servers, redis=True, hash="fnv1a_64", distribution="ketama",
              hash_tag=None, timeout=5000, weights=None, names=None, **extra):
    """YAML text (nutcracker format) for one pool."""
    lines = ["%s:" % name,
             "  listen: 127.0.0.1:%d" % listen_port,
             "  redis: %s" % ("true" if redis else "false")]
    if hash:
        lines.append("  hash: %s" % hash)
    if distribution:
        lines.append("  distribution: %s" % distribution)
    if hash_tag:
        lines.append('  hash_tag: "%s"' % hash_tag)
    if timeout is not None:
        lines.append("  timeout: %d" % timeout)
    for k, v in extra.items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        lines.append("  %s: %s" % (k, v))
    lines.append("  servers:")
    for i, s in enumerate(servers):
        w = weights[i] if weights else 1
        n = names[i] if names else None
        lines.append("   - %s" % server_line(s, w, n))
    return "\n".join(lines) + "\n"


class Proxy:
    """The proxy binary with one pool listening on 127.0.0.1:port."""

    def __init__(self, binary, workdir, servers, mbuf=None, label="proxy", pool="alpha",
                 argv_extra=(), conf_fn=None, **opts):
        self.binary = binary
        self.workdir = workdir
        self.servers = list(servers)
        self.mbuf = mbuf
        self.label = label
        self.pool = pool
        self.argv_extra = list(argv_extra)   # more flags, after the harness's own
        self.conf_fn = conf_fn               # conf_fn(listen_port) -> YAML text, instead of pool_yaml
        self.opts = opts
        self.port = None
        self.stats_port = None
        self.proc = None
        self.stopped = False
        self.reported = False
        os.makedirs(workdir, exist_ok=True)
        self.conf_path = os.path.join(workdir, "%s.yml" % label)
        self.log_path = os.path.join(workdir, "%s.log" % label)
        self.out_path = os.path.join(workdir, "%s.out" % label)

    @property
    def name(self):
        return "%s (%s, port %s)" % (self.label, os.path.basename(self.binary), self.port)

    def start(self):
        if not (os.path.isfile(self.binary) and os.access(self.binary, os.X_OK)):
            pytest.fail("proxy binary %r is missing or not executable (set KEYMUX_BIN)" % self.binary,
                        pytrace=False)
        problem = ""
        for _ in range(4):
            self.port = PORTS.get()
            self.stats_port = PORTS.get()
            with open(self.conf_path, "w") as f:
                if self.conf_fn is not None:
                    f.write(self.conf_fn(self.port))
                else:
                    f.write(pool_yaml(self.pool, self.port, self.servers, **self.opts))
            argv = [self.binary, "-c", self.conf_path, "-s", str(self.stats_port),
                    "-a", "127.0.0.1", "-v", "6", "-o", self.log_path]
            if self.mbuf:
                argv += ["-m", str(self.mbuf)]
            argv += helpers.workers_argv(self.binary)
            argv += self.argv_extra
            with open(self.out_path, "ab") as out:
                self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, cwd=self.workdir)
            if self not in REG.proxies:
                REG.proxies.append(self)
            if helpers.wait_port(self.port, START_TIMEOUT, self.proc):
                return self
            rc, _ = helpers.stop_process(self.proc, 2.0)
            self.stopped = True
            problem = "exit status %s" % rc
            if "in use" not in self.log_tail():
                break
            self.stopped = False
        pytest.fail("%s did not start listening (%s)\nargv: %s\nconfig:\n%s\n%s"
                    % (self.name, problem, " ".join(argv), open(self.conf_path).read(),
                       self.log_tail()), pytrace=False)

    def log_tail(self, max_bytes=12000):
        parts = []
        for p in (self.log_path, self.out_path):
            t = helpers.read_tail(p, max_bytes)
            if t:
                parts.append("==> %s <==\n%s" % (p, t))
        return "\n".join(parts) or "(no log output)"

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def client(self, timeout=helpers.DEFAULT_TIMEOUT):
        return RespConn(self.port, timeout=timeout)

    def redis(self, **kw):
        import redis
        kw.setdefault("socket_timeout", helpers.DEFAULT_TIMEOUT)
        kw.setdefault("socket_connect_timeout", helpers.DEFAULT_TIMEOUT)
        return redis.Redis(host="127.0.0.1", port=self.port, **kw)

    def stats(self, timeout=5.0):
        """The stats port's JSON object."""
        import json
        import socket
        with socket.create_connection(("127.0.0.1", self.stats_port), timeout=timeout) as s:
            s.settimeout(timeout)
            data = b""
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        return json.loads(data)

    def sanitizer_report(self):
        for p in (self.out_path, self.log_path):
            try:
                with open(p, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            for m in SANITIZER_MARKERS:
                if m in data:
                    return m.decode()
        return None

    def death_problem(self):
        """A description when the proxy exited on its own, else None."""
        if self.stopped or self.proc is None or self.proc.poll() is None:
            return None
        rc = self.proc.returncode
        how = ("killed by signal %d" % -rc) if rc < 0 else ("exit status %d" % rc)
        return "%s died during the test (%s)" % (self.name, how)

    def stop(self):
        """Stop by PID; returns a list of problems (crash, no exit on SIGTERM, sanitizer)."""
        if self.stopped or self.proc is None:
            return []
        problems = []
        died = self.death_problem()
        if died:
            problems.append(died)
        self.stopped = True
        rc, killed = helpers.stop_process(self.proc, STOP_TIMEOUT)
        if not died:
            if killed:
                problems.append("%s did not exit within %.0fs of SIGTERM" % (self.name, STOP_TIMEOUT))
            elif rc is not None and rc < 0 and -rc != signal.SIGTERM:
                problems.append("%s crashed at shutdown (signal %d)" % (self.name, -rc))
        san = self.sanitizer_report()
        if san:
            problems.append("%s: sanitizer report (%s) in its output" % (self.name, san))
        return problems


# ---------------------------------------------------------------------------
# a keymux run by hand (tests of the command line, signals, daemon mode)


class Daemon:
    """A keymux run by hand (its own argv), stopped by pid at the end of the test."""

    def __init__(self, tmp_path, conf_text, argv_extra=(), binary=None):
        self.dir = str(tmp_path)
        self.conf = os.path.join(self.dir, "km.yml")
        with open(self.conf, "w") as f:
            f.write(conf_text)
        self.log = os.path.join(self.dir, "km.log")
        self.out = os.path.join(self.dir, "km.out")
        self.stats_port = PORTS.get()
        self.argv = [binary or KEYMUX_BIN, "-c", self.conf, "-s", str(self.stats_port),
                     "-a", "127.0.0.1", "-o", self.log] + \
            helpers.workers_argv(binary or KEYMUX_BIN) + list(argv_extra)
        self.proc = None
        self.pid = None

    def start(self):
        with open(self.out, "ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.dir)
        self.pid = self.proc.pid
        return self

    def alive(self):
        if self.proc is not None and self.pid == self.proc.pid:
            return self.proc.poll() is None
        return pid_alive(self.pid)

    def wait_exit(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                return True
            time.sleep(0.02)
        return False

    def log_text(self):
        return helpers.read_tail(self.log, 20000) + helpers.read_tail(self.out, 4000)

    def stop(self):
        if self.pid is None or not self.alive():
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        if not self.wait_exit(5):
            os.kill(self.pid, signal.SIGKILL)
            self.wait_exit(5)
        if self.proc is not None and self.proc.pid == self.pid:
            self.proc.wait(5)


@pytest.fixture
def daemons():
    """Keymuxes a test runs by hand: stopped at the end, and their output checked for
    sanitizer reports (as the harness does for its own proxies)."""
    started = []
    yield started
    found = []
    for d in started:
        d.stop()
        text = d.log_text()
        found += [m.decode() for m in SANITIZER_MARKERS if m.decode() in text]
    if found:
        pytest.fail("sanitizer report in a keymux's output: %s\n%s"
                    % (found, "\n".join(d.log_text() for d in started)), pytrace=False)


def pid_alive(pid):
    """True while pid is a process that is not a zombie (a daemon's reaper may be slow)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


# ---------------------------------------------------------------------------
# fixtures


def pytest_sessionfinish(session, exitstatus):
    REG.stop_all()


@pytest.fixture(scope="session")
def keymux_bin():
    return KEYMUX_BIN


@pytest.fixture(scope="session")
def nutcracker_bin():
    """Path of twemproxy 0.5.0, or None when it is not installed."""
    return NUTCRACKER_BIN if os.access(NUTCRACKER_BIN, os.X_OK) else None


class _Owner:
    """Starts processes for one fixture scope and stops them at its end."""

    def __init__(self, base):
        self.base = str(base)
        self.redis = []
        self.proxies = []
        self.n = 0

    def _dir(self, what):
        self.n += 1
        return os.path.join(self.base, "%s%d" % (what, self.n))

    def start_redis(self, n=1, args=(), password=None):
        out = []
        for _ in range(n):
            r = RedisServer(self._dir("redis"), args=args, password=password).start()
            self.redis.append(r)
            out.append(r)
        return out

    def start_proxy(self, servers, binary=None, **opts):
        p = Proxy(binary or KEYMUX_BIN, self._dir("proxy"), servers, **opts)
        self.proxies.append(p)
        return p.start()

    def finish(self):
        problems = []
        for p in self.proxies:
            if not p.reported:
                problems += p.stop()
            else:
                p.stop()
        for r in self.redis:
            r.stop()
        return problems


def _finish_or_fail(owner):
    problems = owner.finish()
    if problems:
        logs = "\n\n".join("%s\n%s" % (p.name, p.log_tail()) for p in owner.proxies)
        pytest.fail("; ".join(problems) + "\n" + logs, pytrace=False)


@pytest.fixture
def redis_factory(tmp_path):
    owner = _Owner(tmp_path)
    yield owner.start_redis
    owner.finish()


@pytest.fixture
def _fn_owner(tmp_path):
    owner = _Owner(tmp_path)
    yield owner
    _finish_or_fail(owner)


@pytest.fixture
def proxy_factory(_fn_owner):
    """proxy_factory(servers, binary=None, mbuf=None, hash=..., distribution=...,
    hash_tag=None, timeout=5000, weights=None, names=None, label=..., **yaml_keys)."""
    return _fn_owner.start_proxy


@pytest.fixture(scope="module")
def _module_owner(tmp_path_factory):
    owner = _Owner(tmp_path_factory.mktemp("mod"))
    yield owner
    _finish_or_fail(owner)


@pytest.fixture(scope="module")
def module_redis_factory(_module_owner):
    return _module_owner.start_redis


@pytest.fixture(scope="module")
def module_proxy_factory(_module_owner):
    return _module_owner.start_proxy


class Pool:
    """A proxy over several backends, plus helpers to look at the backends."""

    def __init__(self, proxy, backends, direct=None):
        self.proxy = proxy
        self.backends = backends
        self.direct = direct

    def locate(self, key):
        """Indices of the backends that hold key."""
        found = []
        for i, b in enumerate(self.backends):
            with b.client() as c:
                if c.call("EXISTS", key) == 1:
                    found.append(i)
        return found


@pytest.fixture(scope="module")
def pool4(module_redis_factory, module_proxy_factory):
    """4 backends behind the proxy (fnv1a_64, ketama, hash_tag "{}") and one separate
    direct redis-server to serve as the oracle."""
    backends = module_redis_factory(4)
    direct = module_redis_factory(1)[0]
    proxy = module_proxy_factory(backends, hash_tag="{}", label="pool4")
    return Pool(proxy, backends, direct)


@pytest.fixture(autouse=True)
def _proxy_watch(request):
    """Fails the test when a proxy it used died during it; records which proxies to
    show in the report of a failing test."""
    start = len(REG.proxies)
    live_before = [p for p in REG.proxies if not p.stopped]
    request.node._km_relevant = lambda: live_before + REG.proxies[start:]
    yield
    dead = []
    for p in live_before + REG.proxies[start:]:
        msg = p.death_problem()
        if msg and not p.reported:
            p.reported = True
            dead.append(msg + "\n" + p.log_tail())
    if dead:
        pytest.fail("\n\n".join(dead), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    relevant = getattr(item, "_km_relevant", None)
    if rep.when == "call" and relevant:
        # a proxy that died while the test ran fails the test itself
        dead = []
        for p in relevant():
            msg = p.death_problem()
            if msg and not p.reported:
                p.reported = True
                dead.append(msg)
        if dead:
            rep.outcome = "failed"
            prior = ("\n\n(the test itself: %s)" % rep.longreprtext) if rep.longrepr else ""
            rep.longrepr = "\n".join(dead) + prior
    if rep.failed:
        relevant = getattr(item, "_km_relevant", None)
        if relevant:
            seen = set()
            for p in relevant():
                if id(p) in seen:
                    continue
                seen.add(id(p))
                rep.sections.append(("log of %s" % p.name, p.log_tail(6000)))
