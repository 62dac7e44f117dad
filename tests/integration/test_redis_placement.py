"""Placement: nutcracker (twemproxy 0.5.0) and the proxy under test run side by side
over the same 4 backends; keys written through one must all be found through the
other, for many hash/distribution/hash_tag/weight/name combinations. This proves
bit-identical placement end to end, with real servers in between."""

import pytest

from helpers import encode, ketama_server_for

COMBOS = [
    dict(hash="fnv1a_64", distribution="ketama"),
    dict(hash="md5", distribution="ketama"),
    dict(hash="one_at_a_time", distribution="ketama", hash_tag="{}"),
    dict(hash="murmur", distribution="ketama", weights=[1, 2, 3, 4]),
    dict(hash="crc32a", distribution="ketama", names=["alpha", "beta", "gamma", "delta"]),
    dict(hash="hsieh", distribution="ketama", weights=[5, 1, 1, 3], names=["s1", "s2", "s3", "s4"]),
    dict(hash="jenkins", distribution="ketama"),
    dict(hash="crc16", distribution="ketama"),
    dict(hash="fnv1_64", distribution="modula"),
    dict(hash="fnv1_32", distribution="modula"),
    dict(hash="fnv1a_32", distribution="modula", weights=[3, 1, 1, 2]),
    dict(hash="crc32", distribution="modula"),
    dict(hash="md5", distribution="modula", hash_tag="<>"),
    dict(hash="fnv1a_64", distribution="modula"),
    dict(hash="jenkins", distribution="modula", hash_tag="{}"),
]


def combo_id(c):
    parts = [c["hash"], c["distribution"]]
    if c.get("hash_tag"):
        parts.append("tag")
    if c.get("weights"):
        parts.append("weights")
    if c.get("names"):
        parts.append("names")
    return "-".join(parts)


def make_keys(side, n=250):
    """Distinct keys of many shapes: short, numeric-first, long, binary, tagged."""
    keys = []
    for i in range(n):
        shape = i % 6
        if shape == 0:
            keys.append(b"%d:%s" % (i, side))
        elif shape == 1:
            keys.append(b"user:%s:%d" % (side, i))
        elif shape == 2:
            keys.append(b"\xff\x80%s\x00%d\r\n" % (side, i))
        elif shape == 3:
            keys.append(b"{grp%d}%s:%d" % (i % 7, side, i))
        elif shape == 4:
            keys.append(b"<g%d>%s%d" % (i % 5, side, i) + b"x" * (i % 90))
        else:
            keys.append(bytes([i % 256]) + side)
    return keys


@pytest.fixture(scope="module")
def backends(module_redis_factory):
    return module_redis_factory(4)


def _write(proxy, keys, tag):
    payload = b"".join(encode("SET", k, b"%s=%s" % (tag, k)) for k in keys)
    with proxy.client(timeout=10) as c:
        replies = c.pipeline(payload, len(keys), timeout=10)
    assert replies == [b"+OK\r\n"] * len(keys)


def _read_missing(proxy, keys, tag):
    payload = b"".join(encode("GET", k) for k in keys)
    with proxy.client(timeout=10) as c:
        replies = c.pipeline_values(payload, len(keys), timeout=10)
    return [(k, v) for k, (v, _) in zip(keys, replies) if v != b"%s=%s" % (tag, k)]


def _spread(backends):
    sizes = []
    for b in backends:
        with b.client() as c:
            sizes.append(c.call("DBSIZE"))
    return sizes


@pytest.mark.parametrize("combo", COMBOS, ids=[combo_id(c) for c in COMBOS])
def test_same_placement_as_nutcracker(backends, proxy_factory, keymux_bin, nutcracker_bin, combo):
    """Keys SET through nutcracker are all found by GET through the proxy under test,
    and keys SET through the proxy under test are all found through nutcracker."""
    if nutcracker_bin is None:
        pytest.skip("nutcracker not installed: no reference to compare placement with")
    for b in backends:
        b.flushall()
    ref = proxy_factory(backends, binary=nutcracker_bin, label="nutcracker", **combo)
    under = proxy_factory(backends, binary=keymux_bin, label="under-test", **combo)

    forward = make_keys(b"fw")
    _write(ref, forward, b"nc")
    sizes = _spread(backends)
    assert sum(sizes) == len(forward)
    assert sum(1 for s in sizes if s) >= 3, "keys did not spread (test has no power): %s" % sizes
    missing = _read_missing(under, forward, b"nc")
    assert not missing, "%d/%d keys written by nutcracker not found through %s; first: %r" % (
        len(missing), len(forward), keymux_bin, missing[:5])

    backward = make_keys(b"bw")
    _write(under, backward, b"km")
    missing = _read_missing(ref, backward, b"km")
    assert not missing, "%d/%d keys written through %s not found by nutcracker; first: %r" % (
        len(missing), len(backward), keymux_bin, missing[:5])


def test_python_ketama_model_matches_nutcracker(backends, proxy_factory, nutcracker_bin):
    """The Python ketama/fnv1a_64 model used by other tests as an oracle places keys
    exactly where nutcracker does (checked on the backends)."""
    if nutcracker_bin is None:
        pytest.skip("nutcracker not installed")
    for b in backends:
        b.flushall()
    ref = proxy_factory(backends, binary=nutcracker_bin, label="nutcracker")
    keys = make_keys(b"model", 200)
    _write(ref, keys, b"m")
    addrs = [b.addr for b in backends]
    clients = [b.client() for b in backends]
    try:
        for k in keys:
            want = ketama_server_for(k, addrs)
            have = [i for i, c in enumerate(clients) if c.call("EXISTS", k) == 1]
            assert have == [want], "key %r: nutcracker put it on %s, model says %d" % (k, have, want)
    finally:
        for c in clients:
            c.close()
