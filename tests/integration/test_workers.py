"""Worker threads (-w N): how connections spread over the workers, one truth for server
health whichever worker a client is on, stats summed over the workers in the same shape
as with one, whole log lines, and -w auto. These tests start their keymux with their own
-w, whatever KEYMUX_WORKERS says."""

import json
import os
import re
import socket
import threading
import time

import helpers
from conftest import Daemon, pool_yaml
from helpers import PORTS, Error, RespConn, encode, wait_for

CONNECTED = re.compile(r"client fd (\d+) connected \(worker (\d+)\)")
LOG_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] \S+:\d+ .*$")




def _start(tmp_path, daemons, conf, workers, verbosity="7", extra=()):
    d = Daemon(tmp_path, conf, ["-v", verbosity, "-w", str(workers)] + list(extra))
    daemons.append(d)
    d.start()
    return d


def _workers_of_connects(d):
    return [int(m.group(2)) for m in CONNECTED.finditer(helpers.read_tail(d.log, 1 << 24))]


def _settled(d, port):
    """The connects logged so far, once the readiness probe is dealt with: a client of
    our own is served (its connect is logged before its reply), and a moment passes for
    the probe, which another worker may have taken (logged, or dropped unserved)."""
    with RespConn(port, timeout=5) as c:
        assert c.call("PING") == b"PONG"
    time.sleep(0.2)
    return len(_workers_of_connects(d))


def _stats(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def _shape(doc):
    """Keys and nesting of a stats document, values left out."""
    return {k: _shape(v) if isinstance(v, dict) else type(v).__name__ for k, v in doc.items()}


def test_thousand_connections_spread_over_four_workers(tmp_path, redis_factory, daemons):
    """1,000 connections to a TCP pool at -w 4 (a SO_REUSEPORT socket per worker): every
    worker takes a fair share (the counts are printed: pytest -s shows them), each
    client is served, and the stats port counts them all."""
    r = redis_factory(1)[0]
    port = PORTS.get()
    d = _start(tmp_path, daemons, pool_yaml("alpha", port, [r]), 4)
    assert helpers.wait_port(port, 5, d.proc), d.log_text()
    base = _settled(d, port)
    conns = []
    try:
        for _ in range(1000):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            conns.append(s)
        for s in conns[::50]:
            s.sendall(encode("PING"))
            assert s.recv(64) == b"+PONG\r\n"
        assert wait_for(lambda: len(_workers_of_connects(d)) >= base + 1000, 10)
        counts = [0] * 4
        for w in _workers_of_connects(d)[base:base + 1000]:
            counts[w] += 1
        print("1000 connections over 4 workers: %s" % counts)
        assert sum(counts) == 1000
        assert min(counts) >= 125, "a worker got %d of 1000 connections: %s" % (min(counts), counts)
        assert wait_for(lambda: _stats(d.stats_port)["alpha"]["client_connections"] == 1000, 5)
    finally:
        for s in conns:
            s.close()
    assert wait_for(lambda: _stats(d.stats_port)["alpha"]["client_connections"] == 0, 10)


def test_unix_socket_dealt_in_turn(tmp_path, redis_factory, daemons):
    """A unix socket is one socket, accepted on by the main thread: clients go to the
    workers in turn, so 12 clients at -w 3 give each worker exactly 4, and all work."""
    r = redis_factory(1)[0]
    path = str(tmp_path / "km.sock")
    conf = "alpha:\n  listen: %s\n  redis: true\n  servers:\n   - %s:1\n" % (path, r.addr)
    d = _start(tmp_path, daemons, conf, 3)
    assert wait_for(lambda: os.path.exists(path) and "started" in helpers.read_tail(d.log), 5), \
        d.log_text()
    conns = []
    try:
        for i in range(12):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(path)
            conns.append(s)
            s.sendall(encode("SET", "ux:%d" % i, str(i)) + encode("GET", "ux:%d" % i))
            want = b"+OK\r\n$%d\r\n%d\r\n" % (len(str(i)), i)
            got = b""
            while len(got) < len(want):
                chunk = s.recv(4096)
                assert chunk, "closed"
                got += chunk
            assert got == want
        assert wait_for(lambda: len(_workers_of_connects(d)) == 12, 5)
        counts = [0] * 3
        for w in _workers_of_connects(d):
            counts[w] += 1
        assert counts == [4, 4, 4], counts
    finally:
        for s in conns:
            s.close()
    assert "one socket dealt to the workers" in helpers.read_tail(d.log, 1 << 20)


def _client_on_other_worker(d, port, than):
    """A connection whose worker differs from `than`: (RespConn, worker)."""
    for _ in range(200):
        n = len(_workers_of_connects(d))
        c = RespConn(port, timeout=5)
        assert c.call("PING") == b"PONG"
        assert wait_for(lambda: len(_workers_of_connects(d)) > n, 5)
        w = _workers_of_connects(d)[n]
        if w != than:
            return c, w
        c.close()
    raise AssertionError("200 connections all landed on worker %d" % than)


def test_one_truth_for_server_health(tmp_path, redis_factory, daemons):
    """auto_eject_hosts over 3 servers at -w 4. A writer and a reader on two different
    workers: each round the writer sets a key to a fresh value and the reader reads it
    back. One server is killed (ejected once for the pool, not once per worker), then
    restarted and let back after its retry time. The reader never sees anything but the
    value just written (an error reply while a server fails is allowed, a wrong or
    missing value is not), across the ejection and the return."""
    backends = redis_factory(3)
    port = PORTS.get()
    conf = pool_yaml("alpha", port, backends, timeout=300, auto_eject_hosts=True,
                     server_retry_timeout=1500, server_failure_limit=2)
    d = _start(tmp_path, daemons, conf, 4)
    assert helpers.wait_port(port, 5, d.proc), d.log_text()
    _settled(d, port)
    writer, ww = _client_on_other_worker(d, port, -1)
    reader, rw = _client_on_other_worker(d, port, ww)
    assert ww != rw
    victim = backends[0]
    addrs = [b.addr for b in backends]
    # keys on every server, the victim's among them (fnv1a_64 barely moves on a key's
    # last bytes, so they are picked by the placement oracle)
    keys = [k for i in range(3) for k in helpers.keys_on(addrs, i, 12, prefix="h%d:" % i)]
    victim_keys = set(keys[:12])
    moved = set()
    wrong, errors, ok, n = [], 0, 0, 0
    t0 = time.monotonic()
    killed = restarted = False
    try:
        while time.monotonic() - t0 < 6.0 and n < 20000:
            el = time.monotonic() - t0
            if not killed and el > 0.5:
                victim.kill()
                killed = True
            if not restarted and el > 2.0:
                victim.restart()
                restarted = True
            key = keys[n % len(keys)]
            val = "v%d" % n
            n += 1
            set_reply = writer.call("SET", key, val)
            if isinstance(set_reply, Error):
                errors += 1
                continue
            got = reader.call("GET", key)
            if isinstance(got, Error):
                errors += 1
            elif got != val.encode():
                wrong.append((round(el, 3), key, val, got))
            else:
                ok += 1
                if killed and not restarted and key in victim_keys:
                    moved.add(key)   # served while the victim was out of the ring
    finally:
        writer.close()
        reader.close()
    assert killed and restarted
    doc = _stats(d.stats_port)
    print("health: %d rounds, %d read back, %d errors, %d wrong, %d ejections, %d of the "
          "victim's keys served elsewhere" % (n, ok, errors, len(wrong),
                                              doc["alpha"]["server_ejects"], len(moved)))
    assert wrong == [], "wrong reads (time, key, wrote, read): %s" % wrong[:10]
    assert ok > 100, "too few rounds completed: %d ok, %d errors" % (ok, errors)
    assert moved, "no key of the victim was served by another server while it was out"
    # the victim returns once a probe on a fresh connection is answered: the first one
    # may come before the restarted server listens, and the rounds may end before the
    # next one (server_retry_timeout later), so its return is waited for
    back = "server %s back in the ring" % victim.addr
    assert wait_for(lambda: back in helpers.read_tail(d.log, 1 << 24), 10), \
        helpers.read_tail(d.log, 1 << 24)[-4000:]
    log = helpers.read_tail(d.log, 1 << 24)
    assert doc["alpha"]["server_ejects"] == 1, log[-4000:]
    assert _stats(d.stats_port)["alpha"]["server_ejects"] == 1, log[-4000:]
    assert log.count("ejecting server %s" % victim.addr) == 1
    assert log.count(back) == 1, log[-4000:]


def test_stats_summed_same_shape(tmp_path, redis_factory, daemons):
    """The stats JSON at -w 4 has exactly the keys and nesting it has at -w 1, and its
    counters are the sums over the workers: 8 clients (spread over the workers) send
    25 GETs each, and the server's requests and responses grow by exactly 200."""
    backends = redis_factory(1)
    docs = {}
    for workers in (1, 4):
        port = PORTS.get()
        sub = tmp_path / ("w%d" % workers)
        sub.mkdir()
        d = _start(sub, daemons, pool_yaml("alpha", port, backends), workers, verbosity="5")
        assert helpers.wait_port(port, 5, d.proc), d.log_text()
        before = _stats(d.stats_port)
        conns = [RespConn(port, timeout=5) for _ in range(8)]
        try:
            def work(c):
                for i in range(25):
                    c.call("GET", "sum:%d" % i)
            threads = [threading.Thread(target=work, args=(c,)) for c in conns]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            after = _stats(d.stats_port)
        finally:
            for c in conns:
                c.close()
        srv = backends[0].addr
        for k in ("requests", "responses"):
            assert after["alpha"][srv][k] - before["alpha"][srv][k] == 200, (workers, k)
        assert after["alpha"]["client_connections"] == 8
        assert after["curr_connections"] - before["curr_connections"] >= 8
        docs[workers] = after
        d.stop()
    assert _shape(docs[1]) == _shape(docs[4])
    assert list(docs[1].keys()) == list(docs[4].keys())


def test_log_lines_whole_under_load(tmp_path, redis_factory, daemons):
    """At -v 7 with -w 4, 16 threads connecting and disconnecting make every worker log
    at once: every line of the log is one whole line."""
    r = redis_factory(1)[0]
    port = PORTS.get()
    d = _start(tmp_path, daemons, pool_yaml("alpha", port, [r]), 4)
    assert helpers.wait_port(port, 5, d.proc), d.log_text()

    def churn():
        for _ in range(100):
            with RespConn(port, timeout=5) as c:
                c.call("PING")
    threads = [threading.Thread(target=churn) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert wait_for(lambda: len(_workers_of_connects(d)) >= 1600, 10)
    lines = helpers.read_tail(d.log, 1 << 26).splitlines()
    bad = [ln for ln in lines if not LOG_LINE.match(ln)]
    assert bad == [], bad[:5]
    assert len(set(_workers_of_connects(d))) == 4


def test_workers_auto(tmp_path, redis_factory, daemons):
    """-w auto starts one worker per CPU the process may run on."""
    r = redis_factory(1)[0]
    port = PORTS.get()
    d = _start(tmp_path, daemons, pool_yaml("alpha", port, [r]), "auto", verbosity="5")
    assert helpers.wait_port(port, 5, d.proc), d.log_text()
    assert wait_for(lambda: "started" in helpers.read_tail(d.log), 5)
    n = len(os.sched_getaffinity(0))
    assert "%d worker(s)" % n in helpers.read_tail(d.log), d.log_text()
    with RespConn(port, timeout=5) as c:
        assert c.call("PING") == b"PONG"
