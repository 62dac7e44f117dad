"""Large and binary payloads: 1 MB and 64 MB values round-trip byte-exact through the
proxy (with -m 16384 and -m 512), and keys/values holding CR, LF, NUL and every
byte value survive, as seen both through the proxy and on the backends."""

import os

import pytest

from helpers import encode


@pytest.fixture(scope="module")
def large_pools(module_redis_factory, module_proxy_factory):
    """4 backends, and one proxy per mbuf size over them (created on demand)."""
    backends = module_redis_factory(4)
    proxies = {}

    def get(mbuf):
        if mbuf not in proxies:
            proxies[mbuf] = module_proxy_factory(backends, mbuf=mbuf, timeout=30000,
                                                 label="large-m%d" % mbuf)
        return proxies[mbuf]
    return backends, get


def backend_holding(backends, key):
    """(index, value) of the only backend that has key; fails if not exactly one."""
    found = []
    for i, b in enumerate(backends):
        with b.client(timeout=60) as c:
            v = c.call("GET", key, timeout=60)
            if v is not None:
                found.append((i, v))
    assert len(found) == 1, "key %r on %d backends" % (key[:40], len(found))
    return found[0]


def set_big(conn, key, value, timeout=60):
    """SET key value without building one more copy of a huge value."""
    conn.send_raw(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n" % (len(key), key, len(value)))
    conn.send_raw(value)
    conn.send_raw(b"\r\n")
    return conn.read(timeout)


@pytest.mark.parametrize("mbuf", [16384, 512])
def test_one_megabyte_values(large_pools, mbuf):
    """Eight 1 MB random values: SET/GET round trip, MGET across servers, and the
    bytes stored on the backend are the bytes sent."""
    backends, get = large_pools
    proxy = get(mbuf)
    values = {("%d:big1m:%d" % (i, mbuf)).encode(): os.urandom(1 << 20) for i in range(8)}
    with proxy.client(timeout=60) as c:
        for k, v in values.items():
            assert set_big(c, k, v) == b"OK"
        for k, v in values.items():
            got = c.call("GET", k, timeout=60)
            assert got == v, "GET %r: %d bytes back, first diff at %s" % (
                k, len(got or b""), next((i for i, (a, b) in enumerate(zip(got, v)) if a != b), None))
        keys = list(values)
        got = c.call("MGET", *keys, timeout=60)
        assert got == [values[k] for k in keys]
        # a pipeline of large SETs and GETs
        payload = b"".join(encode("SET", k, v) + encode("GET", k) for k, v in values.items())
        replies = c.pipeline_values(payload, 2 * len(values), timeout=60)
        assert [r for r, _ in replies] == [x for v in values.values() for x in (b"OK", v)]
    homes = set()
    for k, v in values.items():
        i, stored = backend_holding(backends, k)
        assert stored == v
        homes.add(i)
    assert len(homes) >= 2, "1 MB keys all on one backend: %s" % homes


def test_sixty_four_megabyte_value(large_pools):
    """One 64 MB value SET and GET through the proxy (-m 16384) comes back identical,
    and the backend holds exactly those bytes."""
    backends, get = large_pools
    proxy = get(16384)
    key = b"huge:64m"
    value = os.urandom(64 << 20)
    with proxy.client(timeout=120) as c:
        assert set_big(c, key, value, timeout=120) == b"OK"
        got = c.call("GET", key, timeout=120)
        assert got is not None and len(got) == len(value)
        assert got == value
        del got
        assert c.call("STRLEN", key) == len(value)
        assert c.call("PING") == b"PONG"
        i, stored = backend_holding(backends, key)
        assert stored == value
        assert c.call("DEL", key) == 1


BINARY_KEYS = [
    bytes(range(256)),
    b"a\r\nb",
    b"\r\n",
    b"\x00",
    b"nul\x00in\x00key",
    b"*2\r\n$3\r\nGET\r\n$1\r\nx\r\n",  # looks like a request
    b"$-1\r\n",
    b"\xff\xfe\x80" * 20,
    b"{tag}\r\n\x00",
    b"k" * 300,  # longer than half an mbuf at -m 512
]
BINARY_VALUE = bytes(range(256)) * 3 + b"\r\n\x00\r\n" + bytes(range(255, -1, -1))


@pytest.mark.parametrize("mbuf", [16384, 512])
def test_binary_keys_and_values(large_pools, mbuf):
    """Keys and values with CR, LF, NUL and all 256 byte values: SET, GET, MGET,
    APPEND, EXISTS, DEL through the proxy; each key stored once, byte-exact, on a backend."""
    backends, get = large_pools
    proxy = get(mbuf)
    keys = [k + (b":%d" % mbuf) for k in BINARY_KEYS]
    with proxy.client() as c:
        for i, k in enumerate(keys):
            v = BINARY_VALUE + bytes([i])
            assert c.call("SET", k, v) == b"OK", k
            assert c.call("GET", k) == v, k
        assert c.call("MGET", *keys) == [BINARY_VALUE + bytes([i]) for i in range(len(keys))]
        assert c.call("APPEND", keys[0], b"\r\n\x00") == len(BINARY_VALUE) + 1 + 3
        assert c.call("GET", keys[0]) == BINARY_VALUE + b"\x00\r\n\x00"
        for i, k in enumerate(keys):
            _, stored = backend_holding(backends, k)
            want = BINARY_VALUE + bytes([i]) + (b"\r\n\x00" if i == 0 else b"")
            assert stored == want, k
        # (multi-key EXISTS sums are checked in test_redis_multikey.py)
        assert [c.call("EXISTS", k) for k in keys] == [1] * len(keys)
        assert c.call("DEL", *keys) == len(keys)
        assert [c.call("EXISTS", k) for k in keys] == [0] * len(keys)
        assert c.call("PING") == b"PONG"
