"""memcached's commands about the server through keymux, against real memcached processes:
stats (the proxy's figures, its counters compared with what a real memcached counts for the
same requests, the subcommands), verbosity, flush_all (to every server; the failed ones
named), a binary-protocol client (closed without a byte), and libmemcached's memccapable,
whose ascii tests must pass through keymux wherever they pass against memcached itself."""

import os
import re
import subprocess
import time

import pytest
from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheServerError

from mcfix import PORTS, mc_env, mc_keymux_bin, pool_yaml, server_line, uniq  # noqa: F401
from mcfix import KEYMUX_BIN
from helpers import nworkers

MEMCCAPABLE = "/usr/bin/memccapable"
COUNTERS = ("cmd_get", "cmd_set", "cmd_flush", "cmd_touch", "get_hits", "get_misses",
            "touch_hits", "touch_misses")


def keymux_version():
    out = subprocess.run([KEYMUX_BIN, "-V"], capture_output=True, timeout=10).stdout.decode()
    m = re.search(r"keymux-(\S+)", out)
    assert m, out
    return m.group(1)


def pool(env, n=2, dead=0, **opts):
    """n live memcached (+ dead ports nothing listens on) behind one keymux pool."""
    backends = [env.memcached() for _ in range(n)]
    dead_ports = [PORTS.get() for _ in range(dead)]
    port = PORTS.get()
    servers = [server_line(b.host, b.port) for b in backends]
    servers += [server_line("127.0.0.1", p) for p in dead_ports]
    proxy = env.proxy(pool_yaml("admin", port, servers, **opts), port)
    return proxy, backends, dead_ports


def stats_lines(raw, req=b"stats\r\n"):
    """Send a stats request; the lines before END, checked the way clients read them."""
    got = raw.call(req, marker=b"END\r\n")
    assert got.endswith(b"END\r\n"), got
    lines = got[:-5].split(b"\r\n")[:-1] if got != b"END\r\n" else []
    out = {}
    for line in lines:
        # python-memcache: line.split(' ', 2) must give three parts; npm memcached keeps
        # tokens[2] only: a value is one token
        parts = line.split(b" ")
        assert len(parts) == 3 and parts[0] == b"STAT" and parts[2], line
        assert parts[1] not in out, line
        out[parts[1].decode()] = parts[2].decode()
    return out


def counters(raw):
    st = stats_lines(raw)
    return {k: int(st[k]) for k in COUNTERS}


def test_stats_figures(mc_env):
    proxy, backends, _ = pool(mc_env, n=3)
    r = proxy.raw()
    before = time.time()
    # the harness's probe connection may still be closing: wait until this one is alone
    deadline = time.monotonic() + 5
    st = stats_lines(r)
    while int(st["pool_clients"]) != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
        st = stats_lines(r)
    assert int(st["pid"]) == proxy.proc.pid
    assert st["version"] == keymux_version()
    assert int(st["pointer_size"]) == 64
    assert abs(int(st["time"]) - before) <= 2
    assert 0 <= int(st["uptime"]) < 60
    assert int(st["threads"]) == nworkers()
    assert int(st["pool_servers"]) == 3 and int(st["pool_servers_live"]) == 3
    assert int(st["pool_clients"]) == 1
    for k in COUNTERS:
        assert st[k] == "0", k
    # a second client: the connection figures follow
    total = int(st["total_connections"])
    r2 = proxy.raw()
    st2 = stats_lines(r2)
    assert int(st2["pool_clients"]) == 2
    assert int(st2["total_connections"]) == total + 1
    assert int(st2["curr_connections"]) == int(st["curr_connections"]) + 1
    r2.close()
    # the reply is the proxy's, never a server's
    direct = backends[0].raw()
    dst = stats_lines(direct)
    direct.close()
    assert dst["pid"] != st["pid"] and "curr_items" in dst and "curr_items" not in st
    # pymemcache reads it: numbers become ints, version stays bytes
    c = Client(("127.0.0.1", proxy.port), connect_timeout=5, timeout=5)
    try:
        ps = c.stats()
        assert ps[b"pid"] == proxy.proc.pid and ps[b"version"] == keymux_version().encode()
        assert ps[b"pool_servers"] == 3
    finally:
        c.close()
    r.close()


def run_workload(r, p):
    """The same requests, sent to keymux or to a memcached: each reply is read, so the
    counters are settled when it returns. The keys land on several servers."""
    keys = [b"%d%s" % (i, p) for i in range(12)]
    want_stored = b"STORED\r\n"
    for k in keys[:8]:
        assert r.call(b"set %s 0 0 1\r\nv\r\n" % k, len(want_stored)) == want_stored
    assert r.call(b"add %s 0 0 1\r\nv\r\n" % keys[0], 12) == b"NOT_STORED\r\n"
    assert r.call(b"set %s 0 0 1 noreply\r\nv\r\nmn\r\n" % keys[8], 4) == b"MN\r\n"
    assert r.call(b"append %s 0 0 1\r\nw\r\n" % keys[1], 8) == b"STORED\r\n"
    assert r.call(b"ms %s 1\r\nx\r\n" % keys[9], 4) == b"HD\r\n"
    # a multi-get over every server, a single get hit and miss, gets, gat, gats
    r.call(b"get " + b" ".join(keys) + b"\r\n", marker=b"END\r\n")
    r.call(b"get %s\r\n" % keys[2], marker=b"END\r\n")
    assert r.call(b"get %s\r\n" % keys[11], 5) == b"END\r\n"
    r.call(b"gets %s %s\r\n" % (keys[3], keys[10]), marker=b"END\r\n")
    r.call(b"gat 100 %s %s %s\r\n" % (keys[4], keys[5], keys[11]), marker=b"END\r\n")
    r.call(b"gats 100 %s\r\n" % keys[6], marker=b"END\r\n")
    assert r.call(b"touch %s 100\r\n" % keys[7], 9) == b"TOUCHED\r\n"
    assert r.call(b"touch %s 100\r\n" % keys[11], 11) == b"NOT_FOUND\r\n"
    assert r.call(b"mg %s v\r\n" % keys[0], 10) == b"VA 1\r\nv\r\n"
    assert r.call(b"mg %s v\r\n" % keys[11], 4) == b"EN\r\n"
    assert r.call(b"mg %s v q\r\nmn\r\n" % keys[11], 4) == b"MN\r\n"
    assert r.call(b"mg %s\r\n" % keys[1], 4) == b"HD\r\n"
    assert r.call(b"incr %s 1\r\n" % keys[11], 11) == b"NOT_FOUND\r\n"
    assert r.call(b"delete %s\r\n" % keys[11], 11) == b"NOT_FOUND\r\n"
    assert r.call(b"flush_all\r\n", 4) == b"OK\r\n"
    assert r.call(b"flush_all noreply\r\nmn\r\n", 4) == b"MN\r\n"
    assert r.call(b"get %s\r\n" % keys[0], 5) == b"END\r\n"


def test_stats_counters_as_memcached_counts(mc_env):
    """The proxy's counters after a workload equal a real memcached's after the same one."""
    proxy, backends, _ = pool(mc_env, n=3)
    ref = mc_env.memcached()
    p = uniq("cnt")
    for target in (proxy, ref):
        r = target.raw()
        assert r.call(b"stats reset\r\n", 7) == b"RESET\r\n"
        assert counters(r) == {k: 0 for k in COUNTERS}
        r.close()
    got = {}
    for name, target in (("keymux", proxy), ("memcached", ref)):
        r = target.raw()
        run_workload(r, p)
        got[name] = counters(r)
        r.close()
    assert got["keymux"] == got["memcached"]
    # and they are not all zero: the workload did count
    assert got["keymux"]["get_hits"] > 5 and got["keymux"]["touch_misses"] == 2
    # stats reset clears them; the connection goes on
    r = proxy.raw()
    assert r.call(b"stats reset\r\n", 7) == b"RESET\r\n"
    assert counters(r) == {k: 0 for k in COUNTERS}
    assert r.call(b"get %s\r\n" % p, 5) == b"END\r\n"
    assert counters(r)["get_misses"] == 1
    r.close()


@pytest.mark.parametrize("sub", [b"items", b"slabs", b"sizes", b"settings", b"conns",
                                 b"extstore", b"cachedump 1 1", b"detail dump"])
def test_stats_server_subcommands_are_empty(mc_env, sub):
    proxy, _, _ = pool(mc_env, n=1)
    r = proxy.raw()
    assert r.call(b"stats " + sub + b"\r\n", 5) == b"END\r\n"
    assert r.call(b"version\r\n", marker=b"\r\n").startswith(b"VERSION 1.")
    assert r.pending() == b""
    r.close()


@pytest.mark.parametrize("sub", [b"noreply", b"foo", b"proxy", b"resets"])
def test_stats_unknown_subcommand_is_error_as_memcached(mc_env, sub):
    proxy, backends, _ = pool(mc_env, n=1)
    d = backends[0].raw()
    want = d.call(b"stats " + sub + b"\r\n", 7)
    d.close()
    assert want == b"ERROR\r\n"
    r = proxy.raw()
    assert r.call(b"stats " + sub + b"\r\n", len(want)) == want
    assert r.call(b"version\r\n", marker=b"\r\n").startswith(b"VERSION 1.")
    r.close()


# verbosity lines and memcached 1.6.18's replies (each checked against a real one below)
VERBOSITY = [b"verbosity 1", b"verbosity 0", b"verbosity", b"verbosity x", b"verbosity -1",
             b"verbosity 1 noreply", b"verbosity noreply", b"verbosity x noreply",
             b"verbosity 1 2", b"verbosity 1 2 3", b"verbosity foo bar my"]


def test_verbosity_answers_as_memcached(mc_env):
    proxy, backends, _ = pool(mc_env, n=2)
    ref = mc_env.memcached()
    for line in VERBOSITY:
        replies = []
        for target in (ref, proxy):
            r = target.raw()
            # the version after it shows what (if anything) came before
            got = r.call(line + b"\r\nversion\r\n", marker=b"VERSION ")
            r.close()
            replies.append(got)
        assert replies[1] == replies[0], line
    r = proxy.raw()
    assert r.call(b"verbosity 1\r\n", 4) == b"OK\r\n"
    r.send(b"verbosity 1 noreply\r\n")
    assert r.pending(0.2) == b""
    r.close()


def held_keys(backends, keys):
    """For each backend, how many of keys it holds."""
    out = []
    for b in backends:
        r = b.raw()
        n = 0
        for k in keys:
            if r.call(b"mg %s\r\n" % k, marker=b"\r\n").startswith(b"HD"):
                n += 1
        r.close()
        out.append(n)
    return out


def wait_flushed(backends, keys, timeout=3.0):
    """After a flush_all noreply the servers may still be at it: poll them (bounded)."""
    deadline = time.monotonic() + timeout
    held = held_keys(backends, keys)
    while any(held) and time.monotonic() < deadline:
        time.sleep(0.05)
        held = held_keys(backends, keys)
    return held


def fill(proxy, p, n=24):
    keys = [b"%d%s" % (i, p) for i in range(n)]
    r = proxy.raw()
    # with replies: a noreply set may still be on its way when the proxy answers an mn
    r.send(b"".join(b"set %s 0 0 1\r\nv\r\n" % k for k in keys))
    assert r.read(8 * n) == b"STORED\r\n" * n
    r.close()
    return keys


def test_flush_all_reaches_every_server(mc_env):
    proxy, backends, _ = pool(mc_env, n=3)
    p = uniq("fl")
    keys = fill(proxy, p)
    held = held_keys(backends, keys)
    assert all(h > 0 for h in held) and sum(held) == len(keys), held
    r = proxy.raw()
    assert r.call(b"flush_all\r\n", 4) == b"OK\r\n"
    assert held_keys(backends, keys) == [0, 0, 0]

    # noreply: nothing back, every server flushed all the same
    keys = fill(proxy, p + b"n")
    r.send(b"flush_all noreply\r\n")
    assert r.call(b"mn\r\n", 4) == b"MN\r\n"
    assert wait_flushed(backends, keys) == [0, 0, 0]

    # the delay goes as written: nothing is gone yet
    keys = fill(proxy, p + b"d")
    assert r.call(b"flush_all 3600\r\n", 4) == b"OK\r\n"
    assert sum(held_keys(backends, keys)) == len(keys)
    assert r.call(b"flush_all 0\r\n", 4) == b"OK\r\n"
    assert held_keys(backends, keys) == [0, 0, 0]

    # a bad line is refused as memcached refuses it, and goes nowhere
    keys = fill(proxy, p + b"b")
    d = backends[0].raw()
    for line in (b"flush_all x", b"flush_all noreply 10", b"flush_all 1 2 3"):
        want = d.call(line + b"\r\n", marker=b"\r\n")
        assert want.startswith(b"CLIENT_ERROR") or want == b"ERROR\r\n", want
        assert r.call(line + b"\r\n", len(want)) == want, line
    d.close()
    assert sum(held_keys(backends, keys)) == len(keys)

    # pymemcache: flush_all() sends "flush_all 0 [noreply]"
    for noreply in (False, True):
        keys = fill(proxy, p + b"p%d" % noreply)
        c = Client(("127.0.0.1", proxy.port), connect_timeout=5, timeout=5)
        try:
            assert c.flush_all(noreply=noreply) is True
            assert c.version().startswith(b"1.")
        finally:
            c.close()
        assert wait_flushed(backends, keys) == [0, 0, 0]
    r.close()


def test_flush_all_names_the_failed_servers(mc_env):
    proxy, backends, dead = pool(mc_env, n=2, dead=1)
    p = uniq("ff")
    r = proxy.raw()
    # keys on the live servers only (a key on the dead one would fail its set)
    keys = []
    for i in range(40):
        k = b"%d%s" % (i, p)
        if r.call(b"set %s 0 0 1\r\nv\r\n" % k, marker=b"\r\n") == b"STORED\r\n":
            keys.append(k)
    assert len(keys) > 5
    want = b"SERVER_ERROR flush_all failed on server 127.0.0.1:%d: Connection refused\r\n" % dead[0]
    assert r.call(b"flush_all\r\n", len(want)) == want
    # the live ones were flushed all the same, and the connection goes on (a key of a
    # live server: version might go to the dead one)
    assert held_keys(backends, keys) == [0, 0]
    assert r.call(b"get %s\r\n" % keys[0], 5) == b"END\r\n"

    # two down: both named, in the pool's order
    backends[1].stop()
    # (the first time, the proxy may still hold its connection to the stopped one: then the
    # reason is what that connection met, closed or reset, instead of a refused connect)
    got = r.call(b"flush_all\r\n", marker=b"\r\n")
    assert re.match(rb"SERVER_ERROR flush_all failed on server 127\.0\.0\.1:%d: Connection "
                    rb"(refused|closed by server|reset by server); server 127\.0\.0\.1:%d: "
                    rb"Connection refused\r\n$" % (backends[1].port, dead[0]), got), got
    got = r.call(b"flush_all\r\n", marker=b"\r\n")
    assert got == (b"SERVER_ERROR flush_all failed on server 127.0.0.1:%d: Connection refused; "
                   b"server 127.0.0.1:%d: Connection refused\r\n" % (backends[1].port, dead[0]))
    # noreply: silent even so
    r.send(b"flush_all noreply\r\n")
    assert r.call(b"mn\r\n", 4) == b"MN\r\n"
    r.close()
    # pymemcache raises on it
    c = Client(("127.0.0.1", proxy.port), connect_timeout=5, timeout=5)
    try:
        with pytest.raises(MemcacheServerError):
            c.flush_all(noreply=False)
    finally:
        c.close()


BINARY_GET = bytes([0x80, 0x00, 0x00, 0x03, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0,
                    0, 0, 0, 0, 0, 0, 0, 0]) + b"foo"


def wait_log(proxy, text, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(proxy.log, "rb") as f:
            if text in f.read():
                return True
        time.sleep(0.05)
    return False


def test_binary_protocol_is_closed_at_once(mc_env):
    proxy, _, _ = pool(mc_env, n=1)
    p = uniq("bin")
    other = proxy.raw()
    assert other.call(b"set %s 0 0 1\r\nx\r\n" % p, 8) == b"STORED\r\n"
    b = proxy.raw()
    t0 = time.monotonic()
    b.send(BINARY_GET)
    assert b.closed(timeout=3)
    assert time.monotonic() - t0 < 2
    b.close()
    assert wait_log(proxy, b"binary protocol not supported"), proxy.log_tail()
    # after a text request in the same write: its reply, then the close
    b = proxy.raw()
    b.send(b"get %s\r\n" % p + BINARY_GET)
    want = b"VALUE %s 0 1\r\nx\r\nEND\r\n" % p
    assert b.read(len(want)) == want
    assert b.closed(timeout=3)
    b.close()
    # the other client goes on
    want = b"VALUE %s 0 1\r\nx\r\nEND\r\n" % p
    assert other.call(b"get %s\r\n" % p, len(want)) == want
    other.close()


def memccapable(port):
    """memccapable's ascii tests against 127.0.0.1:port: {test name: passed}."""
    res = subprocess.run([MEMCCAPABLE, "-h", "127.0.0.1", "-p", str(port), "-a", "-t", "5"],
                         capture_output=True, timeout=120)
    out = res.stdout.decode() + res.stderr.decode()
    got = {}
    for m in re.finditer(r"^(ascii [a-z ]+?)\s+\[(pass|FAIL|skip)\]", out, re.M):
        got[m.group(1)] = m.group(2) == "pass"
    assert got, out
    return got, out


@pytest.mark.parametrize("nservers", [1, 3])
def test_memccapable_ascii_passes_as_on_memcached(mc_env, nservers):
    assert os.access(MEMCCAPABLE, os.X_OK), "memccapable missing (libmemcached-tools, scripts/deps.sh)"
    ref = mc_env.memcached()
    direct, dout = memccapable(ref.port)
    passed = sorted(t for t, ok in direct.items() if ok)
    # memcached 1.6 passes all 27 of them
    assert len(passed) >= 27, dout
    proxy, _, _ = pool(mc_env, n=nservers)
    through, pout = memccapable(proxy.port)
    failed = [t for t in passed if not through.get(t)]
    assert failed == [], pout
