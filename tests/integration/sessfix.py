"""Helpers for the Redis session tests (transactions, WATCH, blocking commands, streams,
WAIT): a pool with a redis-server of its own beside it, which backend a key lands on through the proxy, exact reply bytes of a pipelined
exchange, and the same exchange compared between the proxy and a redis-server of its own."""

from helpers import RespConn, encode


def start_pool(redis_factory, proxy_factory, label, n=3, **opts):
    """n redis-servers behind a proxy, and one more for direct comparisons:
    (proxy, backends, direct)."""
    backends = redis_factory(n)
    direct = redis_factory(1)[0]
    return proxy_factory(backends, label=label, **opts), backends, direct


def emptied(pool):
    """pool (proxy, backends, direct) with every server flushed."""
    for b in pool[1] + [pool[2]]:
        b.flushall()
    return pool


def server_of(proxy, backends, key):
    """Index of the backend key lands on (written through the proxy, then removed)."""
    with proxy.client() as c:
        assert c.call("SET", key, "probe") == b"OK"
    found = [i for i, b in enumerate(backends) if b.redis().exists(key)]
    with proxy.client() as c:
        c.call("DEL", key)
    assert len(found) == 1, found
    return found[0]


def keys_on(proxy, backends, want, n, prefix="k"):
    """n keys that land on backend want."""
    out, i = [], 0
    while len(out) < n:
        k = "%d:%s" % (i, prefix)
        if server_of(proxy, backends, k) == want:
            out.append(k)
        i += 1
        assert i < 2000
    return out


def raw_exchange(port, cmds, timeout=5.0):
    """Send cmds (lists of words) in one write; return the replies' exact bytes, read
    until every reply is in (counted with a RESP reader)."""
    c = RespConn(port, timeout=timeout)
    try:
        c.send_raw(b"".join(encode(*w) for w in cmds))
        return [c.read_raw() for _ in cmds]
    finally:
        c.close()


def same_through_both(proxy, direct, cmds):
    got = raw_exchange(proxy.port, cmds)
    want = raw_exchange(direct.port, cmds)
    assert got == want, "\n".join("%r: proxy %r, redis %r" % (c, g, w)
                                  for c, g, w in zip(cmds, got, want) if g != w)
    return got


def blocked_clients(r):
    return r.info("clients")["blocked_clients"]
