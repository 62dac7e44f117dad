"""Failures and the pool options that guard against them, against real redis-servers:
a killed backend (error replies for its keys only, recovery after restart), a stopped
backend with `timeout` (only the late request fails, the connection survives),
auto_eject_hosts (keys remap while a server is out and come back after
server_retry_timeout), every server down (fast errors, no hang), redis_auth, redis_db,
client_connections and preconnect. Every wait is bounded."""

import socket
import time

import pytest

import helpers
from helpers import Error, describe, encode, wait_for


def timed_call(c, *args, timeout=5):
    t0 = time.monotonic()
    reply = c.call(*args, timeout=timeout)
    return reply, time.monotonic() - t0


def is_err(reply, prefix=b"ERR"):
    return isinstance(reply, Error) and reply.startswith(prefix)


def proxy_conn_ids(backend):
    """Ids of the clients of backend other than the one asking (CLIENT LIST)."""
    with backend.client(timeout=5) as c:
        listing = c.call("CLIENT", "LIST").decode()
    ids = []
    for line in listing.splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        if not fields.get("cmd", "").startswith("client"):
            ids.append(fields["id"])
    return sorted(ids)


def connected_clients(backend):
    with backend.client(timeout=5) as c:
        info = c.call("INFO", "clients").decode()
    for line in info.splitlines():
        if line.startswith("connected_clients:"):
            return int(line.split(":")[1])
    raise AssertionError("no connected_clients in INFO: %r" % info)


# ---------------------------------------------------------------------------
# a backend dies


def test_killed_backend_errors_then_recovers(redis_factory, proxy_factory):
    backends = redis_factory(3)
    addrs = [b.addr for b in backends]
    victim = backends[1]
    p = proxy_factory(backends, timeout=2000)
    vkeys = helpers.keys_on(addrs, 1, 3, prefix="kill:v")
    okeys = helpers.keys_on(addrs, 0, 2, prefix="kill:o") + helpers.keys_on(addrs, 2, 2, prefix="kill:o")
    with p.client(timeout=5) as c:
        for k in vkeys + okeys:
            assert c.call("SET", k, "val-" + k) == b"OK"
        victim.kill()
        for k in vkeys:
            reply, took = timed_call(c, "GET", k)
            assert is_err(reply), "GET %s on the killed server -> %s" % (k, describe(reply))
            assert took < 2.5, "error reply took %.2fs" % took
        for k in okeys:   # the other servers, on the same client connection
            assert c.call("GET", k) == ("val-" + k).encode()
        reply = c.call("SET", vkeys[0], "x")
        assert is_err(reply), describe(reply)
        assert c.call("PING") == b"PONG"

        victim.restart()

        def back():
            r = c.call("SET", vkeys[0], "again")
            return r == b"OK"
        assert wait_for(back, 5), "requests to the restarted server still fail"
        assert c.call("GET", vkeys[0]) == b"again"
        with victim.client() as d:
            assert d.call("GET", vkeys[0]) == b"again"
        for k in okeys:
            assert c.call("GET", k) == ("val-" + k).encode()
    with p.client() as fresh:
        assert fresh.call("GET", vkeys[0]) == b"again"


@pytest.mark.parametrize("args", [("MGET", "{v}", "{o}"), ("DEL", "{v}", "{o}"),
                                  ("MSET", "{v}", "1", "{o}", "2"), ("EXISTS", "{o}", "{v}")],
                         ids=["mget", "del", "mset", "exists"])
def test_split_request_across_dead_server(redis_factory, proxy_factory, args):
    """A request split over a live and a dead server is answered (with an error, as
    twemproxy does) at once, and the connection goes on."""
    backends = redis_factory(2)
    addrs = [b.addr for b in backends]
    p = proxy_factory(backends, timeout=2000)
    v = helpers.keys_on(addrs, 0, 1, prefix="split:v")[0]
    o = helpers.keys_on(addrs, 1, 1, prefix="split:o")[0]
    cmd = [a.format(v=v, o=o) for a in args]
    with p.client(timeout=5) as c:
        assert c.call("SET", o, "live") == b"OK"
        backends[0].kill()
        for _ in range(2):   # the EOF of the old connection, then connection refused
            try:
                reply, took = timed_call(c, *cmd, timeout=2)
            except OSError as e:
                pytest.fail("%s across a dead server: no reply within 2 s (%s)" % (cmd, e))
            assert is_err(reply), "%s -> %s" % (cmd, describe(reply))
            assert took < 1.0
        # (the live server's part may have run, as with twemproxy: DEL / MSET are not atomic here)
        assert c.call("SET", o, "after") == b"OK"
        assert c.call("GET", o) == b"after"


def test_stopped_backend_times_out_alone(redis_factory, proxy_factory):
    """timeout 200: a request to a SIGSTOPped server gets `-ERR Connection timed out`
    within ~1 s; requests to other servers still work meanwhile (and a pipelined one
    keeps its place behind the late one); after SIGCONT the same client and the same
    server connection go on, with the late replies discarded rather than handed to the
    next requests."""
    backends = redis_factory(2)
    addrs = [b.addr for b in backends]
    victim = backends[0]
    p = proxy_factory(backends, timeout=200)
    kv = helpers.keys_on(addrs, 0, 1, prefix="tmo:v")[0]
    ko = helpers.keys_on(addrs, 1, 1, prefix="tmo:o")[0]
    with p.client(timeout=5) as c, p.client(timeout=5) as other:
        assert c.call("SET", kv, "old-victim-value") == b"OK"
        assert c.call("SET", ko, "other-value") == b"OK"
        ids_before = proxy_conn_ids(victim)
        assert len(ids_before) == 1, ids_before
        victim.pause()
        try:
            reply, took = timed_call(c, "GET", kv)
            assert reply == b"ERR Connection timed out" and isinstance(reply, Error), describe(reply)
            assert took < 1.0, "timed out after %.2fs" % took
            assert took >= 0.15, "answered after %.2fs, before the 200 ms timeout" % took
            # other servers are unaffected, on this connection and on another
            assert c.call("GET", ko) == b"other-value"
            assert other.call("GET", ko) == b"other-value"
            # pipelined: the late request fails alone, in its place
            t0 = time.monotonic()
            c.send_raw(encode("GET", kv) + encode("GET", ko) + encode("GET", kv))
            replies = [c.read(timeout=3) for _ in range(3)]
            assert time.monotonic() - t0 < 1.5
            assert replies[1] == b"other-value", replies
            assert all(is_err(r, b"ERR Connection timed out") for r in (replies[0], replies[2])), replies
        finally:
            victim.resume()
        # the late replies ("old-victim-value" x3) arrive now and must be swallowed
        assert c.call("SET", kv, "new") == b"OK"
        assert c.call("GET", kv) == b"new"
        assert c.call("INCR", kv + ":n") == 1
        assert c.call("GET", ko) == b"other-value"
        assert other.call("GET", kv) == b"new"
    after = proxy_conn_ids(victim)
    # `other` may live on another worker, which then has a connection of its own
    assert set(ids_before) <= set(after), "the server connection was replaced"
    assert len(after) <= helpers.nworkers(), after


# ---------------------------------------------------------------------------
# auto_eject_hosts


def test_auto_eject_remaps_and_returns(redis_factory, proxy_factory):
    backends = redis_factory(3)
    addrs = [b.addr for b in backends]
    victim = backends[0]
    p = proxy_factory(backends, timeout=1000, auto_eject_hosts=True, server_failure_limit=1,
                      server_retry_timeout=1000)
    vkeys = helpers.keys_on(addrs, 0, 6, prefix="ej:")
    with p.client(timeout=5) as c:
        for k in vkeys:
            assert c.call("SET", k, "1") == b"OK"
        with victim.client() as d:
            assert all(d.call("EXISTS", k) == 1 for k in vkeys)
        victim.kill()
        t_kill = time.time()
        # the first failure (the connection's EOF, or the request that finds the server
        # gone, which then gets an error) ejects it: its keys now live on the others
        replies = []

        def remapped():
            replies.append(c.call("SET", vkeys[0], "2"))
            return replies[-1] == b"OK"
        assert wait_for(remapped, 1.0), "keys of the dead server not remapped: %s" % replies
        assert len(replies) <= 2, replies
        assert all(is_err(r) for r in replies[:-1]), replies
        for k in vkeys:
            assert c.call("SET", k, "remapped") == b"OK"
            assert c.call("GET", k) == b"remapped"
            where = helpers.ketama_server_for(k, addrs[1:])
            with backends[1 + where].client() as d:
                assert d.call("GET", k) == b"remapped", "key %s not on %s" % (k, addrs[1 + where])

        victim.restart()
        assert helpers.wait_keys_home(c, victim, vkeys, timeout=6), \
            "the server did not come back into the ring"

    doc = p.stats()
    assert doc["alpha"]["server_ejects"] >= 1, doc["alpha"]
    at = doc["alpha"][victim.addr]["server_ejected_at"]
    assert t_kill * 1e6 - 1e6 <= at <= time.time() * 1e6 + 1e6, (at, t_kill)


@pytest.mark.parametrize("eject", [False, True], ids=["plain", "auto_eject"])
def test_all_servers_down_fast_errors(redis_factory, proxy_factory, eject):
    backends = redis_factory(2)
    addrs = [b.addr for b in backends]
    extra = dict(auto_eject_hosts=True, server_failure_limit=1, server_retry_timeout=30000) if eject else {}
    p = proxy_factory(backends, timeout=3000, **extra)
    k0 = helpers.keys_on(addrs, 0, 1, prefix="down:")[0]
    k1 = helpers.keys_on(addrs, 1, 1, prefix="down:")[0]
    with p.client(timeout=5) as c:
        assert c.call("SET", k0, "a") == b"OK"
        assert c.call("SET", k1, "b") == b"OK"
        for b in backends:
            b.kill()
        t0 = time.monotonic()
        for _ in range(3):
            for args in (("GET", k0), ("SET", k1, "x"), ("MGET", k0, k1), ("DEL", k0, k1),
                         ("INCR", k0)):
                reply, took = timed_call(c, *args, timeout=3)
                assert is_err(reply), "%s -> %s" % (args, describe(reply))
                assert took < 1.0, "%s took %.2fs" % (args, took)
        assert time.monotonic() - t0 < 5
        assert c.call("PING") == b"PONG"
    with p.client(timeout=3) as fresh:
        reply, took = timed_call(fresh, "GET", k1, timeout=3)
        assert is_err(reply) and took < 1.0, (describe(reply), took)


# ---------------------------------------------------------------------------
# redis_auth, redis_db


def test_redis_auth(redis_factory, proxy_factory):
    backends = redis_factory(2, password="s3cret-pw")
    addrs = [b.addr for b in backends]
    with helpers.RespConn(backends[0].port, timeout=5) as raw:   # the backends require it
        assert is_err(raw.call("GET", "x"), b"NOAUTH"), "backend does not require a password"
    p = proxy_factory(backends, redis_auth="s3cret-pw")
    k0 = helpers.keys_on(addrs, 0, 1, prefix="auth:")[0]
    k1 = helpers.keys_on(addrs, 1, 1, prefix="auth:")[0]
    with p.client(timeout=5) as c:
        r = c.call("GET", k0)
        assert r == b"NOAUTH Authentication required." and isinstance(r, Error), describe(r)
        r = c.call("AUTH", "wrong")
        assert is_err(r), describe(r)
        assert is_err(c.call("SET", k0, "v"), b"NOAUTH")
        assert c.call("AUTH", "s3cret-pw") == b"OK"
        assert c.call("SET", k0, "v0") == b"OK"
        assert c.call("SET", k1, "v1") == b"OK"
        assert c.call("MGET", k0, k1) == [b"v0", b"v1"]
    with backends[0].client() as d:
        assert d.call("GET", k0) == b"v0"
    with p.client(timeout=5) as c:
        # commands pipelined before AUTH are refused, those after it run
        c.send_raw(encode("GET", k0) + encode("AUTH", "s3cret-pw") + encode("GET", k0))
        replies = [c.read() for _ in range(3)]
        assert is_err(replies[0], b"NOAUTH"), replies
        assert replies[1:] == [b"OK", b"v0"], replies


def test_no_redis_auth_against_password_backends(redis_factory, proxy_factory):
    """Negative control: without redis_auth the same backends refuse the proxy's
    requests, so the test above proves keymux authenticates itself."""
    backends = redis_factory(1, password="s3cret-pw")
    p = proxy_factory(backends)
    with p.client(timeout=5) as c:
        r = c.call("SET", "k", "v")
        assert isinstance(r, Error), describe(r)


def test_redis_db(redis_factory, proxy_factory):
    b = redis_factory(1)[0]
    p = proxy_factory([b], redis_db=3)
    with p.client(timeout=5) as c:
        assert c.call("SET", "db:key", "in-three") == b"OK"
        assert c.call("GET", "db:key") == b"in-three"
    with b.client() as d:
        assert d.call("GET", "db:key") is None, "key landed in DB 0"
        assert d.call("SELECT", "3") == b"OK"
        assert d.call("GET", "db:key") == b"in-three"


# ---------------------------------------------------------------------------
# client_connections, preconnect


def test_client_connections_limit(redis_factory, proxy_factory):
    p = proxy_factory(redis_factory(1), client_connections=2)
    time.sleep(0.2)   # let the proxy see the close of the harness's readiness probe
    c1 = p.client(timeout=5)
    c2 = p.client(timeout=5)
    try:
        assert c1.call("PING") == b"PONG"
        assert c2.call("PING") == b"PONG"
        with p.client(timeout=5) as c3:
            try:
                reply = c3.read_raw(timeout=3)
            except (ConnectionError, OSError) as e:
                pytest.fail("the third client got no error reply before the close: %s" % e)
            assert reply.startswith(b"-ERR"), reply
            assert c3.expect_closed(3) is True, "the third client was not closed"
        assert c1.call("SET", "cc", "1") == b"OK"
        assert c2.call("GET", "cc") == b"1"
        c1.close()

        def admitted():
            with p.client(timeout=2) as c4:
                try:
                    return c4.call("PING", timeout=1) == b"PONG"
                except (ConnectionError, OSError):
                    return False
        assert wait_for(admitted, 3), "a freed slot was not given to a new client"
        assert c2.call("GET", "cc") == b"1"
    finally:
        c1.close()
        c2.close()


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_client_connections_boundary(redis_factory, proxy_factory, limit):
    """client_connections: N serves exactly N clients at once, and the stats port's
    client_connections agrees at each step: N in, the (N+1)th refused with the error
    and closed (not counted), one leaves, the next is served, and the (N+1)th is again
    refused; a client that comes right as another leaves is served; connections that
    open and close at once take no place."""
    p = proxy_factory(redis_factory(1), client_connections=limit)

    def count():
        return p.stats()["alpha"]["client_connections"]

    assert wait_for(lambda: count() == 0, 3), "the readiness probe is still counted"
    inside = []
    try:
        for i in range(limit):
            c = p.client(timeout=5)
            inside.append(c)
            assert c.call("PING") == b"PONG", "client %d of %d refused" % (i + 1, limit)
            assert count() == i + 1
        with p.client(timeout=5) as extra:
            reply = extra.read_raw(timeout=3)
            assert reply == b"-ERR too many client connections\r\n", reply
            assert extra.expect_closed(3) is True, "the refused client was not closed"
        assert count() == limit, "a refused client is counted"
        for c in inside:
            assert c.call("PING") == b"PONG", "a client inside the limit lost its connection"
        inside.pop(0).close()
        assert wait_for(lambda: count() == limit - 1, 3), count()
        c = p.client(timeout=5)
        inside.append(c)
        assert c.call("PING") == b"PONG", "a freed slot was not given to a new client"
        assert count() == limit
        with p.client(timeout=5) as extra:
            assert extra.read_raw(timeout=3).startswith(b"-ERR too many client connections")
        assert count() == limit
        # one leaves and another comes straight after it, with no pause for the proxy
        # to see the close first: the newcomer is served
        for _ in range(20):
            inside.pop(0).close()
            c = p.client(timeout=5)
            inside.append(c)
            assert c.call("PING") == b"PONG", "the place of a client that left was not given"
    finally:
        for c in inside:
            c.close()
    assert wait_for(lambda: count() == 0, 3), count()
    # connections that open and close without a word (health checks, port probes) take
    # no place: right after 50 of them, N clients are served
    for _ in range(50):
        socket.create_connection(("127.0.0.1", p.port), timeout=5).close()
    inside = [p.client(timeout=5) for _ in range(limit)]
    try:
        for c in inside:
            assert c.call("PING") == b"PONG", "a probe that left took a client's place"
    finally:
        for c in inside:
            c.close()


def test_preconnect(redis_factory, proxy_factory):
    """preconnect: every backend has a connection from the proxy before any request;
    without it (control) none has."""
    pre = redis_factory(2)
    lazy = redis_factory(2)
    proxy_factory(pre, preconnect=True, label="pre")
    proxy_factory(lazy, label="lazy")
    assert wait_for(lambda: all(connected_clients(b) >= 2 for b in pre), 3), \
        [connected_clients(b) for b in pre]
    time.sleep(0.2)
    assert [connected_clients(b) for b in lazy] == [1, 1]


# ---------------------------------------------------------------------------
# the failures in the stats


def test_failure_counters_in_stats(redis_factory, proxy_factory):
    backends = redis_factory(2)
    addrs = [b.addr for b in backends]
    p = proxy_factory(backends, timeout=200)
    k0 = helpers.keys_on(addrs, 0, 1, prefix="fs:")[0]
    k1 = helpers.keys_on(addrs, 1, 1, prefix="fs:")[0]
    with p.client(timeout=5) as c:
        assert c.call("SET", k0, "a") == b"OK"
        assert c.call("SET", k1, "b") == b"OK"
        backends[0].pause()
        try:
            assert is_err(c.call("GET", k0), b"ERR Connection timed out")
        finally:
            backends[0].resume()
        backends[1].kill()
        assert is_err(c.call("GET", k1))
    doc = p.stats()
    s0 = doc["alpha"][addrs[0]]
    s1 = doc["alpha"][addrs[1]]
    assert s0["server_timedout"] >= 1, s0
    assert s1["server_eof"] + s1["server_err"] >= 1, s1
    assert s0["server_connections"] == 1, s0
    assert s1["server_connections"] == 0, s1
    gauges = ("in_queue", "in_queue_bytes", "out_queue", "out_queue_bytes")

    def drained():
        d = p.stats()["alpha"]
        return all(d[a][g] == 0 for a in addrs for g in gauges)
    # the late reply to the timed-out request comes in after SIGCONT; a gauge that
    # went below zero would show as a negative number
    assert wait_for(drained, 2), p.stats()["alpha"]
