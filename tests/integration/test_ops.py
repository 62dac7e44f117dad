"""Operations: the command line (-t -V -h -D -d -p -o), signals (SIGHUP reopens the log,
SIGTTIN/SIGTTOU move the level, SIGINT/SIGTERM exit cleanly and remove the unix socket),
the stats port (twemproxy's JSON document, counters and gauges checked against a real
nutcracker 0.5.0 given the same traffic), and the packaging: `make install` and the
SysV init script run for real against a staged binary."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

import helpers
from conftest import KEYMUX_BIN, NUTCRACKER_BIN, ROOT, Daemon, pid_alive, pool_yaml
from helpers import PORTS, encode, run_bounded, wait_for

STAT_POOL = ["client_eof", "client_err", "client_connections", "server_ejects",
             "forward_error", "fragments"]
STAT_SERVER = ["server_eof", "server_err", "server_timedout", "server_connections",
               "server_ejected_at", "requests", "request_bytes", "responses", "response_bytes",
               "in_queue", "in_queue_bytes", "out_queue", "out_queue_bytes"]
STAT_TOP = ["service", "source", "version", "uptime", "timestamp", "total_connections",
            "curr_connections"]


def need_nutcracker():
    if not os.access(NUTCRACKER_BIN, os.X_OK):
        pytest.skip("nutcracker (twemproxy 0.5.0) is not installed")
    return NUTCRACKER_BIN




def read_stats(port, timeout=5.0, send=None):
    """Connect to a stats port, read to EOF, return (raw bytes, parsed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        if send:
            s.sendall(send)
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            data += chunk
        else:
            pytest.fail("stats port %d: no EOF within %.0fs (%d bytes)" % (port, timeout, len(data)))
    return data, json.loads(data)


def server_stats(doc, pool="alpha"):
    """{server name: stats} of one pool."""
    return {k: v for k, v in doc[pool].items() if isinstance(v, dict)}


def simple_conf(listen_port, server_port=None, listen=None):
    """One redis pool; the server need not exist."""
    return ("alpha:\n  listen: %s\n  redis: true\n  servers:\n   - 127.0.0.1:%d:1\n"
            % (listen or "127.0.0.1:%d" % listen_port, server_port or PORTS.get()))


# ---------------------------------------------------------------------------
# command line


def test_test_conf_valid(tmp_path):
    conf = tmp_path / "ok.yml"
    conf.write_text(simple_conf(PORTS.get()))
    r = run_bounded([KEYMUX_BIN, "-t", "-c", str(conf)], 10)
    out = (r.stdout + r.stderr).decode()
    assert r.returncode == 0, out
    assert "syntax is ok" in out, out


BAD_CONFS = [
    # (label, pool text after the name line, words the message must contain)
    ("hash", "  listen: 127.0.0.1:1\n  hash: fnv9\n  servers:\n   - 127.0.0.1:2:1\n",
     ["poolx", "hash", "fnv9"]),
    ("distribution", "  listen: 127.0.0.1:1\n  distribution: rings\n  servers:\n   - 127.0.0.1:2:1\n",
     ["poolx", "distribution", "rings"]),
    ("timeout", "  listen: 127.0.0.1:1\n  timeout: soon\n  servers:\n   - 127.0.0.1:2:1\n",
     ["poolx", "timeout", "soon"]),
    ("unknown_key", "  listen: 127.0.0.1:1\n  colour: blue\n  servers:\n   - 127.0.0.1:2:1\n",
     ["poolx", "colour"]),
    ("server", "  listen: 127.0.0.1:1\n  servers:\n   - 127.0.0.1:notaport:1\n",
     ["poolx", "servers", "notaport"]),
]


@pytest.mark.parametrize("label,body,words", BAD_CONFS, ids=[b[0] for b in BAD_CONFS])
def test_test_conf_invalid_names_pool_key_value(tmp_path, label, body, words):
    conf = tmp_path / "bad.yml"
    conf.write_text("poolx:\n" + body)
    r = run_bounded([KEYMUX_BIN, "-t", "-c", str(conf)], 10)
    out = (r.stdout + r.stderr).decode()
    assert r.returncode != 0, out
    assert "invalid" in out, out
    for w in words:
        assert w in out, "message lacks %r: %s" % (w, out)


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version(flag):
    r = run_bounded([KEYMUX_BIN, flag], 10)
    assert r.returncode == 0
    assert re.match(rb"This is keymux-\d+\.\d+\.\d+", r.stdout), r.stdout


@pytest.mark.parametrize("flag", ["-h", "-?", "--help"])
def test_help_lists_every_flag(flag):
    r = run_bounded([KEYMUX_BIN, flag], 10)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    for f in ("-h", "-V", "-t", "-d", "-D", "-v", "-o", "-c", "-s", "-a", "-i", "-p", "-m",
              "--pace"):
        assert re.search(r"(^|\s|\[|,)%s\b" % re.escape(f), out), "usage lacks %s:\n%s" % (f, out)


@pytest.mark.parametrize("value", ["", "fast", "NAP", "auto1"])
def test_pace_refuses_unknown_policy(tmp_path, value):
    conf = tmp_path / "ok.yml"
    conf.write_text(simple_conf(PORTS.get()))
    r = run_bounded([KEYMUX_BIN, "--pace", value, "-t", "-c", str(conf)], 10)
    out = (r.stdout + r.stderr).decode()
    assert r.returncode != 0, out
    assert "--pace requires auto, block or nap" in out, out


@pytest.mark.parametrize("value", ["auto", "block", "nap"])
def test_pace_accepts_each_policy(tmp_path, value):
    conf = tmp_path / "ok.yml"
    conf.write_text(simple_conf(PORTS.get()))
    r = run_bounded([KEYMUX_BIN, "--pace=" + value, "-t", "-c", str(conf)], 10)
    out = (r.stdout + r.stderr).decode()
    assert r.returncode == 0, out
    assert "syntax is ok" in out, out


def test_describe_stats_same_as_nutcracker():
    """-D: every stat with nutcracker's description, in its layout."""
    r = run_bounded([KEYMUX_BIN, "-D"], 10)
    assert r.returncode == 0, r.stderr
    ours = r.stdout.decode()
    names = re.findall(r"^  (\w+)\s+\"", ours, re.M)
    assert names == STAT_POOL + STAT_SERVER, names
    nc = need_nutcracker()
    theirs = run_bounded([nc, "-D"], 10)
    ref = (theirs.stdout + theirs.stderr).decode()
    assert ref.index("pool stats:") >= 0
    assert ours[ours.index("pool stats:"):].rstrip("\n") == ref[ref.index("pool stats:"):].rstrip("\n")


# ---------------------------------------------------------------------------
# daemon, pid file, log file, signals


def test_daemonize_pid_file(tmp_path, redis_factory, daemons):
    """-d: the parent exits 0 at once and the daemon serves; -p writes the daemon's pid
    and a SIGTERM exit removes the file."""
    r = redis_factory(1)[0]
    port = PORTS.get()
    pidf = str(tmp_path / "run" / "km.pid")
    os.makedirs(os.path.dirname(pidf))
    d = Daemon(tmp_path, pool_yaml("alpha", port, [r]), ["-d", "-p", pidf, "-v", "6"])
    daemons.append(d)
    d.start()
    try:
        rc = d.proc.wait(5)
    except subprocess.TimeoutExpired:
        pytest.fail("the parent did not exit after daemonizing")
    assert rc == 0, d.log_text()
    assert wait_for(lambda: os.path.exists(pidf) and open(pidf).read().strip(), 5), "no pid file"
    pid = int(open(pidf).read().strip())
    d.pid = pid   # from now on the daemon is stopped by this pid
    assert pid != d.proc.pid
    assert helpers.wait_port(port, 5), d.log_text()
    with helpers.RespConn(port, timeout=5) as c:
        assert c.call("SET", "dkey", "v") == b"OK"
        assert c.call("GET", "dkey") == b"v"
    # detached: a new session, not our child
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ppid, sid = int(fields[1]), int(fields[3])
    assert ppid != os.getpid()
    assert sid != os.getsid(0)
    os.kill(pid, signal.SIGTERM)
    assert d.wait_exit(5), "daemon did not exit on SIGTERM"
    assert not os.path.exists(pidf), "pid file left behind after a clean exit"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_exit_removes_socket_and_pid_file(tmp_path, redis_factory, daemons, sig):
    r = redis_factory(1)[0]
    sock = str(tmp_path / "km.sock")
    pidf = str(tmp_path / "km.pid")
    conf = ("alpha:\n  listen: %s 0666\n  redis: true\n  servers:\n   - %s:1\n" % (sock, r.addr))
    d = Daemon(tmp_path, conf, ["-p", pidf])
    daemons.append(d)
    d.start()
    assert wait_for(lambda: os.path.exists(sock) and os.path.exists(pidf), 5), d.log_text()
    assert oct(os.stat(sock).st_mode & 0o777) == oct(0o666)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(sock)
    s.sendall(encode("SET", "u", "1") + encode("GET", "u"))
    data = b""
    while data.count(b"\r\n") < 3:
        chunk = s.recv(4096)
        assert chunk, "closed"
        data += chunk
    assert data == b"+OK\r\n$1\r\n1\r\n"
    s.close()
    d.proc.send_signal(sig)
    try:
        rc = d.proc.wait(5)
    except subprocess.TimeoutExpired:
        pytest.fail("no exit within 5 s of %s" % sig)
    assert rc == 0, d.log_text()
    assert not os.path.exists(sock), "unix socket left behind"
    assert not os.path.exists(pidf), "pid file left behind"


def test_log_file_and_sighup_reopen(tmp_path, redis_factory, daemons):
    """-o writes the log; after the file is renamed, SIGHUP makes a new file that
    receives the new lines while the old one keeps the old lines."""
    r = redis_factory(1)[0]
    port = PORTS.get()
    d = Daemon(tmp_path, pool_yaml("alpha", port, [r]), ["-v", "7"])
    daemons.append(d)
    d.start()
    assert helpers.wait_port(port, 5, d.proc), d.log_text()
    assert wait_for(lambda: "started" in helpers.read_tail(d.log), 5), d.log_text()
    # a client's connect is logged by the worker that took it: one served before the
    # rotation is logged before it (the readiness probe may be dropped unlogged, having
    # left before it was served, or logged a little later: give it a moment)
    with helpers.RespConn(port, timeout=5) as c:
        assert c.call("PING") == b"PONG"
    assert wait_for(lambda: "connected" in helpers.read_tail(d.log), 5), d.log_text()
    time.sleep(0.2)
    rotated = d.log + ".1"
    os.rename(d.log, rotated)
    d.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: os.path.exists(d.log), 5), "SIGHUP did not reopen the log"
    with helpers.RespConn(port, timeout=5) as c:   # "client ... connected" at debug (7)
        assert c.call("PING") == b"PONG"
    assert wait_for(lambda: "connected" in helpers.read_tail(d.log), 5), \
        "new lines did not reach the new log: %r" % helpers.read_tail(d.log)
    old = helpers.read_tail(rotated)
    assert "started" in old
    assert "connected" not in old.split("reopening")[-1]


def test_sigttin_sigttou_change_level(tmp_path, redis_factory, daemons):
    """At -v 6 a client's connect (a debug line) is not logged; SIGTTIN raises the level
    to 7 and it is; SIGTTOU lowers it again and it is not."""
    r = redis_factory(1)[0]
    port = PORTS.get()
    d = Daemon(tmp_path, pool_yaml("alpha", port, [r]), ["-v", "6"])
    daemons.append(d)
    d.start()
    assert helpers.wait_port(port, 5, d.proc), d.log_text()

    def connect_and_count():
        with helpers.RespConn(port, timeout=5) as c:
            assert c.call("PING") == b"PONG"
        time.sleep(0.1)
        return helpers.read_tail(d.log).count("connected")

    base = helpers.read_tail(d.log).count("connected")
    assert connect_and_count() == base, "debug line logged at -v 6"
    d.proc.send_signal(signal.SIGTTIN)
    assert wait_for(lambda: "raised to 7" in helpers.read_tail(d.log), 5), d.log_text()
    connect_and_count()
    assert wait_for(lambda: helpers.read_tail(d.log).count("connected") > base, 2), \
        "debug line missing at level 7"
    n = helpers.read_tail(d.log).count("connected")
    d.proc.send_signal(signal.SIGTTOU)
    assert wait_for(lambda: "lowered to 6" in helpers.read_tail(d.log), 5), d.log_text()
    assert connect_and_count() == n, "debug line logged after SIGTTOU"


# ---------------------------------------------------------------------------
# stats port


def test_stats_document_shape(proxy_factory, redis_factory):
    r = redis_factory(2)
    p = proxy_factory(r, names=[None, "named"])
    raw, doc = read_stats(p.stats_port)
    assert raw.endswith(b"}\n")
    assert list(doc) == STAT_TOP + ["alpha"]
    assert doc["service"] == "keymux"
    assert doc["source"] == socket.gethostname()
    assert re.match(r"\d+\.\d+\.\d+$", doc["version"])
    assert abs(doc["timestamp"] - time.time()) < 5
    assert 0 <= doc["uptime"] < 60
    pool = doc["alpha"]
    assert list(pool)[:6] == STAT_POOL
    servers = server_stats(doc)
    assert sorted(servers) == sorted([r[0].addr, "named"])
    for name, st in servers.items():
        assert list(st) == STAT_SERVER, name
        assert all(isinstance(v, int) for v in st.values()), st


def test_stats_text_matches_nutcracker(proxy_factory):
    """Same config (named, unnamed, :11211 and unix servers, two pools), no traffic:
    keymux's document is nutcracker's text once the numbers and the service name are
    masked: same keys, order and separators."""
    nc = need_nutcracker()
    ports = [PORTS.get() for _ in range(4)]

    def conf_with_beta_on(beta_port):
        def conf(listen_port):
            return ("alpha:\n  listen: 127.0.0.1:%d\n  redis: true\n  servers:\n"
                    "   - 127.0.0.1:%d:1\n   - 127.0.0.1:%d:1 web1\n   - 127.0.0.1:11211:1\n"
                    "   - localhost:%d:2\n   - 127.0.0.1:%d:1 a\n"
                    "beta:\n  listen: 127.0.0.1:%d\n  redis: true\n  servers:\n"
                    "   - /tmp/keymux-nonexistent.sock:1\n   - 127.0.0.1:%d:1 zz\n"
                    % (listen_port, ports[0], ports[1], ports[2], ports[3], beta_port, ports[0]))
        return conf

    km = proxy_factory([], conf_fn=conf_with_beta_on(PORTS.get()), label="km")
    ncp = proxy_factory([], conf_fn=conf_with_beta_on(PORTS.get()), binary=nc, label="nc")

    def norm(raw):
        t = re.sub(rb'"(service|version|source)":"[^"]*"', rb'"\1":""', raw)
        return re.sub(rb":-?\d+", b":0", t)

    a, _ = read_stats(km.stats_port)
    b, _ = read_stats(ncp.stats_port)
    assert norm(a) == norm(b)


def test_stats_counters_match_nutcracker(proxy_factory, redis_factory):
    """The same traffic through keymux and through nutcracker (over the same three
    backends) moves requests, request_bytes, responses and response_bytes by the same
    amounts, and the gauges read the same. fragments is keymux's own: nutcracker 0.5.0
    never counts it (it stays 0 after a split MGET), keymux counts one per fragment."""
    nc = need_nutcracker()
    backends = redis_factory(3)
    addrs = [b.addr for b in backends]
    km = proxy_factory(backends, label="km")
    ncp = proxy_factory(backends, binary=nc, argv_extra=["-i", "100"], label="nc")
    per = [helpers.keys_on(addrs, i, 3, prefix="st") for i in range(3)]
    mget = [per[0][0], per[1][0], per[2][0], per[0][1]]

    def traffic(px):
        with px.client(timeout=5) as c:
            for i, ks in enumerate(per):
                for k in ks:
                    assert c.call("SET", k, "v" * (i + 1)) == b"OK"
                    assert c.call("GET", k) == b"v" * (i + 1)
            assert c.call("MGET", *mget) == [b"v", b"vv", b"vvv", b"v"]
            assert c.call("GET", "missing-key-" + "x" * 10) is None

    def snapshot(px, settle):
        time.sleep(settle)
        return read_stats(px.stats_port)[1]

    results = {}
    for label, px, settle in (("keymux", km, 0.0), ("nutcracker", ncp, 0.35)):
        before = snapshot(px, settle)
        traffic(px)
        with px.client() as c1, px.client() as c2, px.client() as c3:
            for c in (c1, c2, c3):
                assert c.call("GET", per[0][0]) == b"v"
            during = snapshot(px, settle)
        results[label] = (before, during)

    fields = ["requests", "request_bytes", "responses", "response_bytes"]
    deltas = {}
    for label, (before, during) in results.items():
        sb, sd = server_stats(before), server_stats(during)
        deltas[label] = {
            "servers": {n: {f: sd[n][f] - sb[n][f] for f in fields} for n in sd},
            "fragments": during["alpha"]["fragments"] - before["alpha"]["fragments"],
            "client_connections": during["alpha"]["client_connections"],
            "server_connections": {n: sd[n]["server_connections"] for n in sd},
        }
    kf = deltas["keymux"].pop("fragments")
    nf = deltas["nutcracker"].pop("fragments")
    # each worker holds its own server_connections per server (documented): with more
    # than one, a server has one connection per worker that sent it something
    kc = deltas["keymux"].pop("server_connections")
    nc = deltas["nutcracker"].pop("server_connections")
    assert set(nc.values()) == {1}
    if helpers.nworkers() == 1:
        assert kc == nc
    else:
        assert kc.keys() == nc.keys() and all(1 <= v <= helpers.nworkers() for v in kc.values()), kc
    assert deltas["keymux"] == deltas["nutcracker"]
    assert nf == 0   # if nutcracker ever counts them, compare them too
    assert kf == 3
    # and an absolute check that does not lean on nutcracker
    k = deltas["keymux"]
    assert k["client_connections"] == 3
    assert sum(s["requests"] for s in k["servers"].values()) == 9 * 2 + 3 + 1 + 3


def test_stats_gauges_follow_clients(proxy_factory, redis_factory):
    p = proxy_factory(redis_factory(1))
    conns = [p.client(timeout=5) for _ in range(5)]
    try:
        for c in conns:
            assert c.call("PING") == b"PONG"
        assert read_stats(p.stats_port)[1]["alpha"]["client_connections"] == 5
        for c in conns[:3]:
            c.close()
        conns = conns[3:]
        assert wait_for(lambda: read_stats(p.stats_port)[1]["alpha"]["client_connections"] == 2, 3)
        doc = read_stats(p.stats_port)[1]
        assert doc["alpha"]["client_eof"] >= 3
        assert doc["curr_connections"] >= 2
        assert doc["total_connections"] >= 5
    finally:
        for c in conns:
            c.close()


def test_stats_large_document_slow_reader(proxy_factory, redis_factory):
    """20,000 servers make a ~5 MB document, more than the kernel buffers take at once:
    a client that does not read for a while neither blocks the proxy nor loses bytes;
    one that sends something first still gets everything; 5 at once all get complete
    documents; one that never reads is closed once the send deadline (5 s) passes."""
    r = redis_factory(1)[0]
    n = 20000
    base = 30000   # ports nobody connects to: no keyed traffic is sent here

    def conf(listen_port):
        lines = ["alpha:", "  listen: 127.0.0.1:%d" % listen_port, "  redis: true",
                 "  servers:", "   - %s:1 live" % r.addr]
        lines += ["   - 127.0.0.1:%d:1 server-with-a-long-name-%05d" % (base + i, i)
                  for i in range(n)]
        return "\n".join(lines) + "\n"

    def small_window():
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        s.settimeout(10)
        s.connect(("127.0.0.1", p.stats_port))
        return s

    def read_all(s, timeout):
        data = b""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                chunk = s.recv(1 << 16)
                if not chunk:
                    return data, True
                data += chunk
        except ConnectionResetError:
            return data, True
        return data, False

    p = proxy_factory([], conf_fn=conf)
    never = small_window()        # never reads until the deadline has passed
    t_never = time.monotonic()
    slow = small_window()
    try:
        time.sleep(0.3)
        with p.client(timeout=2) as c:   # the loop is not stuck on the stats writers
            assert c.call("PING") == b"PONG"
        data, eof = read_all(slow, 10)
    finally:
        slow.close()
    assert eof
    full = len(data)
    assert full > n * 250
    assert len(server_stats(json.loads(data))) == n + 1

    # bytes that are no HTTP request line (an HTTP request gets an HTTP answer: see
    # test_metrics.py) are dropped, and the document comes whole
    _, doc2 = read_stats(p.stats_port, timeout=10, send=b"stats\r\n" * 400)
    assert len(server_stats(doc2)) == n + 1

    results = []

    def grab():
        try:
            results.append(len(server_stats(read_stats(p.stats_port, timeout=10)[1])))
        except Exception as e:   # reported below
            results.append(repr(e))

    threads = [threading.Thread(target=grab) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert results == [n + 1] * 5

    time.sleep(max(0.0, t_never + 5.5 - time.monotonic()))
    try:
        data, eof = read_all(never, 5)
    finally:
        never.close()
    assert eof, "a client that never read was not closed after the send deadline"
    assert len(data) < full - 1000, "the never-reading client got the whole document"
    assert "too slow" in p.log_tail()


# ---------------------------------------------------------------------------
# packaging


def stage_binary(tmp_path):
    """A copy of the binary under test at tmp/usr/local/sbin/keymux."""
    sbin = tmp_path / "stage" / "usr" / "local" / "sbin"
    sbin.mkdir(parents=True)
    dst = sbin / "keymux"
    shutil.copy2(KEYMUX_BIN, dst)
    return str(dst)


def test_make_install_destdir(tmp_path):
    """make install DESTDIR=...: binary, config, unit and init script land where they
    belong; a second install keeps an edited config; PREFIX reaches the unit and script."""
    build = tmp_path / "build"
    build.mkdir()
    shutil.copy2(KEYMUX_BIN, build / "keymux")
    dest = tmp_path / "stage"

    def install(prefix="/usr/local"):
        r = run_bounded(["make", "-s", "-C", ROOT, "-o", "%s/keymux" % build, "install",
                         "DESTDIR=%s" % dest, "BUILD=%s" % build, "PREFIX=%s" % prefix], 60)
        assert r.returncode == 0, (r.stdout + r.stderr).decode()
        return (r.stdout + r.stderr).decode()

    install()
    files = {
        "usr/local/sbin/keymux": 0o755,
        "etc/keymux/keymux.yml": 0o644,
        "lib/systemd/system/keymux.service": 0o644,
        "etc/init.d/keymux": 0o755,
    }
    for rel, mode in files.items():
        st = os.stat(dest / rel)
        assert st.st_mode & 0o777 == mode, (rel, oct(st.st_mode))
    assert open(dest / "usr/local/sbin/keymux", "rb").read() == open(KEYMUX_BIN, "rb").read()
    unit = (dest / "lib/systemd/system/keymux.service").read_text()
    assert "ExecStart=/usr/local/sbin/keymux -c /etc/keymux/keymux.yml" in unit
    assert "User=keymux" in unit and "LimitNOFILE=" in unit
    # reload: the check, then SIGUSR1 (run for real in test_reload.py)
    assert re.findall(r"^ExecReload=(.*)$", unit, re.M) == [
        "/usr/local/sbin/keymux -t -c /etc/keymux/keymux.yml", "/bin/kill -USR1 $MAINPID"]
    if shutil.which("systemd-analyze"):
        # the unit as systemd reads it, pointed at the staged binary
        probe = tmp_path / "keymux.service"
        probe.write_text(unit.replace("/usr/local/sbin/keymux", str(dest / "usr/local/sbin/keymux")))
        r = run_bounded(["systemd-analyze", "verify", str(probe)], 30)
        assert r.returncode == 0, (r.stdout + r.stderr).decode()
    r = run_bounded(["sh", "-n", str(dest / "etc/init.d/keymux")], 10)
    assert r.returncode == 0, r.stderr
    # the shipped config is valid
    r = run_bounded([KEYMUX_BIN, "-t", "-c", str(dest / "etc/keymux/keymux.yml")], 10)
    assert r.returncode == 0, r.stdout + r.stderr

    with open(dest / "etc/keymux/keymux.yml", "a") as f:
        f.write("# edited by the operator\n")
    out = install(prefix="/opt/km")
    assert (dest / "etc/keymux/keymux.yml").read_text().endswith("# edited by the operator\n")
    assert "keeping" in out
    assert "ExecStart=/opt/km/sbin/keymux " in (dest / "lib/systemd/system/keymux.service").read_text()
    assert "/opt/km/sbin/keymux" in (dest / "etc/init.d/keymux").read_text()
    assert os.access(dest / "opt/km/sbin/keymux", os.X_OK)


@pytest.mark.parametrize("ssd", ["start-stop-daemon", "plain"])
def test_init_script_start_status_stop(tmp_path, redis_factory, ssd):
    """The SysV script for real: start (daemon, pid file, log), status, start again (no
    second copy), condrestart (new pid), stop (clean exit, pid file gone), status 3."""
    if ssd == "start-stop-daemon" and shutil.which("start-stop-daemon") is None:
        pytest.skip("start-stop-daemon is not installed")
    r = redis_factory(1)[0]
    binary = stage_binary(tmp_path)
    port = PORTS.get()
    conf = tmp_path / "keymux.yml"
    conf.write_text(pool_yaml("alpha", port, [r]))
    pidf = tmp_path / "run" / "keymux.pid"
    log = tmp_path / "log" / "keymux.log"
    env = dict(os.environ, KEYMUX_DEFAULTS="", KEYMUX_BIN=binary, KEYMUX_CONF=str(conf),
               KEYMUX_PIDFILE=str(pidf), KEYMUX_LOG=str(log), KEYMUX_USER="",
               KEYMUX_OPTS="-s %d -a 127.0.0.1" % PORTS.get(),
               KEYMUX_NO_SSD="0" if ssd == "start-stop-daemon" else "1", KEYMUX_STOP_TIMEOUT="5")
    script = os.path.join(ROOT, "contrib", "keymux.init")
    pids = []

    def run(action):
        res = run_bounded(["sh", script, action], 30, env=env)
        return res.returncode, (res.stdout + res.stderr).decode()

    try:
        rc, out = run("start")
        assert rc == 0, out
        pid = int(pidf.read_text().strip())
        pids.append(pid)
        os.kill(pid, 0)
        assert helpers.wait_port(port, 5), helpers.read_tail(str(log))
        with helpers.RespConn(port, timeout=5) as c:
            assert c.call("SET", "init", "ok") == b"OK"
        assert "started" in helpers.read_tail(str(log))
        assert run("status") == (0, "keymux is running (pid %d)\n" % pid)
        rc, out = run("start")
        assert rc == 0 and "already running" in out, out
        assert int(pidf.read_text().strip()) == pid
        rc, out = run("condrestart")
        assert rc == 0, out
        pid2 = int(pidf.read_text().strip())
        pids.append(pid2)
        assert pid2 != pid
        assert wait_for(lambda: not pid_alive(pid), 2)
        rc, out = run("stop")
        assert rc == 0, out
        assert not pidf.exists()
        assert not pid_alive(pid2)
        assert run("status")[0] == 3
        rc, out = run("condrestart")   # not running: does nothing
        assert rc == 0 and not pidf.exists(), out
        rc, out = run("reload")
        assert rc != 0
        # a config that does not load: start fails with the reason, nothing left running
        conf.write_text("alpha:\n  listen: 127.0.0.1:%d\n  hash: nope\n" % port)
        rc, out = run("start")
        assert rc != 0 and "nope" in out, out
        assert not pidf.exists()
    finally:
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_init_script_start_fails_when_port_taken(tmp_path, redis_factory):
    """keymux exits after daemonizing when it cannot listen: start reports failure."""
    r = redis_factory(1)[0]
    binary = stage_binary(tmp_path)
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    conf = tmp_path / "keymux.yml"
    conf.write_text(pool_yaml("alpha", port, [r]))
    pidf = tmp_path / "keymux.pid"
    env = dict(os.environ, KEYMUX_DEFAULTS="", KEYMUX_BIN=binary, KEYMUX_CONF=str(conf),
               KEYMUX_PIDFILE=str(pidf), KEYMUX_LOG=str(tmp_path / "keymux.log"),
               KEYMUX_USER="", KEYMUX_OPTS="-s %d -a 127.0.0.1" % PORTS.get())
    try:
        res = run_bounded(["sh", os.path.join(ROOT, "contrib", "keymux.init"), "start"], 30, env=env)
        out = (res.stdout + res.stderr).decode()
        assert res.returncode != 0, out
        assert "failed" in out, out
        assert not pidf.exists()
    finally:
        blocker.close()
        if pidf.exists():
            try:
                os.kill(int(pidf.read_text().strip()), signal.SIGKILL)
            except (ValueError, ProcessLookupError):
                pass
