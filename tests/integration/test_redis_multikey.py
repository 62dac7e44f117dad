"""Multi-key commands over a 4-server pool: MGET/MSET split and merged in order,
DEL/UNLINK/EXISTS/TOUCH counts summed right, placement of MSET keys checked on the
backends themselves, and same-server commands (SINTER, RPOPLPUSH, EVAL) refused when
their keys live on different servers."""

import hashlib

import pytest

from helpers import Error, describe, ketama_server_for


def vkey(i, tag="mk"):
    """Keys whose varying part comes first, so they spread over the ring."""
    return "%d:%s" % (i, tag)


def set_direct_and_proxy(pool, pairs):
    with pool.proxy.client() as pc, pool.direct.client() as dc:
        for k, v in pairs:
            assert pc.call("SET", k, v) == b"OK", k
            assert dc.call("SET", k, v) == b"OK", k


@pytest.mark.parametrize("n", [1, 10, 1000])
def test_mget_order_and_missing(pool4, n):
    """MGET of n keys spread over 4 servers returns each value in request order,
    with nil exactly where the key is missing; the reply bytes equal a lone redis's."""
    tag = "mget%d" % n
    keys = [vkey(i, tag) for i in range(n)]
    present = [i for i in range(n) if i % 3 != 1]
    set_direct_and_proxy(pool4, [(keys[i], "val-%d" % i) for i in present])
    with pool4.proxy.client() as pc, pool4.direct.client() as dc:
        value, raw = pc.call_with_raw("MGET", *keys)
        expected = [(b"val-%d" % i) if i in set(present) else None for i in range(n)]
        assert value == expected
        assert raw == dc.call_raw("MGET", *keys)
        # one missing key alone
        assert pc.call("MGET", vkey(1, tag)) == [None]
        # repeated keys come back repeated
        assert pc.call("MGET", keys[0], keys[0], vkey(1, tag), keys[0]) == \
            [b"val-0", b"val-0", None, b"val-0"]
    if n >= 10:
        homes = {tuple(pool4.locate(keys[i])) for i in present}
        assert len(homes) >= (3 if n >= 100 else 2), "keys did not spread: %s" % homes


def test_mset_places_each_key_on_its_backend(pool4):
    """After one MSET of 400 keys through the proxy, each key is on exactly the
    backend that ketama/fnv1a_64 (an independent Python model) names, with its value."""
    addrs = [b.addr for b in pool4.backends]
    pairs = [(vkey(i, "mset"), "v%d" % i) for i in range(400)]
    flat = [x for kv in pairs for x in kv]
    with pool4.proxy.client() as pc:
        assert pc.call("MSET", *flat) == b"OK"
    wrong = []
    clients = [b.client() for b in pool4.backends]
    try:
        for k, v in pairs:
            want = ketama_server_for(k, addrs)
            for i, c in enumerate(clients):
                got = c.call("GET", k)
                if (i == want) != (got == v.encode()):
                    wrong.append("%s: expected on backend %d, backend %d has %r" % (k, want, i, got))
    finally:
        for c in clients:
            c.close()
    assert not wrong, "%d misplaced:\n%s" % (len(wrong), "\n".join(wrong[:20]))
    used = {ketama_server_for(k, addrs) for k, _ in pairs}
    assert used == {0, 1, 2, 3}


def test_mset_then_mget_many(pool4):
    """MSET of 1000 pairs then MGET of the same keys reversed gives the values back."""
    pairs = [(vkey(i, "msetbig"), "value-%d-%s" % (i, "x" * (i % 50))) for i in range(1000)]
    with pool4.proxy.client() as pc:
        assert pc.call("MSET", *[x for kv in pairs for x in kv]) == b"OK"
        rev = list(reversed(pairs))
        assert pc.call("MGET", *[k for k, _ in rev]) == [v.encode() for _, v in rev]


def test_counting_commands_with_duplicates(pool4):
    """DEL/UNLINK/EXISTS/TOUCH over keys on several servers, with duplicated keys in
    one request, return the same counts as a lone redis (e.g. EXISTS a a -> 2, DEL a a -> 1)."""
    a, b, c, d = vkey(1, "cnt"), vkey(2, "cnt"), vkey(3, "cnt"), vkey(4, "cnt")
    miss = vkey(99, "cnt")
    set_direct_and_proxy(pool4, [(a, "1"), (b, "2"), (c, "3"), (d, "4")])
    steps = [
        ("EXISTS", a, a), ("EXISTS", a, b, miss, a, c), ("EXISTS", miss, miss),
        ("TOUCH", a, a, b), ("TOUCH", miss, c, d),
        ("DEL", a, a), ("EXISTS", a, b), ("DEL", b, miss, c, b),
        ("UNLINK", d, d, miss), ("EXISTS", a, b, c, d), ("DEL", a, b, c, d),
    ]
    want = [2, 4, 0, 3, 2, 1, 1, 2, 1, 0, 0]
    with pool4.proxy.client() as pc, pool4.direct.client() as dc:
        got_p, got_d = [], []
        for args in steps:
            got_p.append(pc.call(*args))
            got_d.append(dc.call(*args))
    assert got_d == want, "test assumption about redis semantics is wrong: %r" % got_d
    assert got_p == got_d, "\n".join("%s: proxy %r direct %r" % (s, p, d)
                                     for s, p, d in zip(steps, got_p, got_d) if p != d)


def test_mset_odd_arguments_is_an_error_and_connection_survives(pool4):
    """MSET with an odd number of arguments gets an error reply (as redis gives) and
    the same connection keeps serving."""
    with pool4.proxy.client() as pc:
        for args in (("MSET", vkey(1, "odd")), ("MSET", vkey(1, "odd"), "v", vkey(2, "odd"))):
            reply = pc.call(*args)
            assert isinstance(reply, Error), "%s -> %r" % (args, reply)
            assert reply.startswith(b"ERR"), reply
            assert pc.call("PING") == b"PONG"
        assert pc.call("EXISTS", vkey(1, "odd"), vkey(2, "odd")) == 0
        assert pc.call("SET", vkey(1, "odd"), "ok") == b"OK"
        assert pc.call("GET", vkey(1, "odd")) == b"ok"


# ---------------------------------------------------------------------------
# same-server commands


def keys_on_different_servers(pool, tag, setup):
    """Two keys, created by setup(conn, key) through the proxy, that live on different
    backends (found by asking the backends)."""
    homes = {}
    with pool.proxy.client() as pc:
        for i in range(64):
            k = vkey(i, tag)
            setup(pc, k)
            loc = pool.locate(k)
            assert len(loc) == 1, (k, loc)
            for other, where in homes.items():
                if where != loc[0]:
                    return other, k
            homes[k] = loc[0]
    raise AssertionError("all 64 keys on one server: %s" % homes)


CROSS_CASES = {
    "sinter": (lambda c, k: c.call("SADD", k, "m1", "m2"),
               lambda k1, k2: ("SINTER", k1, k2)),
    "sunionstore": (lambda c, k: c.call("SADD", k, "m1", "m2"),
                    lambda k1, k2: ("SUNIONSTORE", k1, k2)),
    "rpoplpush": (lambda c, k: c.call("RPUSH", k, "a", "b"),
                  lambda k1, k2: ("RPOPLPUSH", k1, k2)),
    "lmove": (lambda c, k: c.call("RPUSH", k, "a", "b"),
              lambda k1, k2: ("LMOVE", k1, k2, "LEFT", "RIGHT")),
    "zunion": (lambda c, k: c.call("ZADD", k, "1", "m1", "2", "m2"),
               lambda k1, k2: ("ZUNION", "2", k1, k2)),
    "eval": (lambda c, k: c.call("SET", k, "v"),
             lambda k1, k2: ("EVAL", "return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2])}",
                             "2", k1, k2)),
}


def content(conn, key):
    """A key's type and value, independent of the server's hash-table order."""
    t = conn.call("TYPE", key)
    if t == b"string":
        return t, conn.call("GET", key)
    if t == b"list":
        return t, conn.call("LRANGE", key, "0", "-1")
    if t == b"set":
        return t, sorted(conn.call("SMEMBERS", key))
    return t, None


@pytest.mark.parametrize("name", sorted(CROSS_CASES))
def test_cross_server_keys_are_refused(pool4, name):
    """(keymux-only) A same-server command whose keys hash to different servers gets
    an error reply, changes nothing on any backend, and the connection keeps working."""
    setup, build = CROSS_CASES[name]
    k1, k2 = keys_on_different_servers(pool4, "x" + name, setup)
    before = []
    for k in (k1, k2):
        b = pool4.backends[pool4.locate(k)[0]]
        with b.client() as c:
            before.append(c.call_raw("DUMP", k))
    with pool4.proxy.client() as pc:
        reply = pc.call(*build(k1, k2))
        assert isinstance(reply, Error), "%s over two servers -> %s" % (name, describe(reply))
        after = []
        for k in (k1, k2):
            b = pool4.backends[pool4.locate(k)[0]]
            with b.client() as c:
                after.append(c.call_raw("DUMP", k))
        assert after == before, "refused command changed data"
        for k in (k1, k2):
            assert len(pool4.locate(k)) == 1, "refused command created a key on another server"
        assert pc.call("PING") == b"PONG"
        assert pc.call("EXISTS", k1, k2) == 2


@pytest.mark.parametrize("name", sorted(CROSS_CASES))
def test_hash_tagged_same_server_keys_work(pool4, name):
    """The same command with keys sharing a hash tag runs on their one server and
    returns what a lone redis returns."""
    setup, build = CROSS_CASES[name]
    k1, k2 = "{t%s}one" % name, "{t%s}two" % name
    with pool4.proxy.client() as pc, pool4.direct.client() as dc:
        for k in (k1, k2):
            setup(pc, k)
            setup(dc, k)
        args = build(k1, k2)
        pv, praw = pc.call_with_raw(*args)
        dv, draw = dc.call_with_raw(*args)
        assert not isinstance(dv, Error), dv
        if name == "sinter":  # a set's order depends on the server's hash seed
            assert sorted(pv) == sorted(dv), (pv, dv)
        else:
            assert praw == draw, "%s: proxy %r direct %r" % (name, praw, draw)
        for k in (k1, k2):
            assert content(pc, k) == content(dc, k), k
    assert len({tuple(pool4.locate(k)) for k in (k1, k2)}) == 1


def test_evalsha_routes_by_key(pool4):
    """EVAL caches the script on the key's server; EVALSHA with the same key finds it."""
    script = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
    sha = hashlib.sha1(script.encode()).hexdigest()
    with pool4.proxy.client() as pc:
        for i in range(20):
            k = vkey(i, "evalsha")
            assert pc.call("EVAL", script, "1", k, "2") == 2
            assert pc.call("EVALSHA", sha, "1", k, "3") == 5
