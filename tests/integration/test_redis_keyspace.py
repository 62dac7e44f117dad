"""Keyspace commands over a pool of 3 real redis-servers: SCAN walks every server in turn
(redis-py scan_iter returns each key once, the union of a scan of each server, MATCH /
TYPE / COUNT as the servers apply them, the cursor's server index in bits 52..62), bad
cursors get Redis's error, DBSIZE is the sum of the servers', KEYS is refused, FLUSHALL /
FLUSHDB are refused unless the pool says allow_flush: true (then every server is emptied),
and `keymux -t` checks allow_flush like the other boolean keys."""

import pytest

from conftest import KEYMUX_BIN, pool_yaml
from fakeserver import FakeRedis
from helpers import PORTS, Error, run_bounded

SHIFT = 52
NKEYS = 3000
NHASH = 200

KEYS_REFUSED = b"ERR KEYS is not supported by the proxy (it blocks every server); use SCAN"


def flush_refused(cmd):
    return (b"ERR %s is refused by the proxy: it would empty every server of the pool "
            b"(the pool's allow_flush: true lets it through)" % cmd)


def cursor(idx, own=0):
    return (idx << SHIFT) | own


def fill(proxy):
    """NKEYS strings and NHASH hashes through the proxy; the set of names written."""
    r = proxy.redis()
    names = set()
    pipe = r.pipeline(transaction=False)
    for i in range(NKEYS):
        k = "%d:ks" % i
        pipe.set(k, "v%d" % i)
        names.add(k)
    for i in range(NHASH):
        k = "%d:kh" % i
        pipe.hset(k, "f", "x")
        names.add(k)
    pipe.execute()
    return names


@pytest.fixture(scope="module")
def ks(module_redis_factory, module_proxy_factory):
    """3 backends behind a proxy (allow_flush left at its default), filled once."""
    backends = module_redis_factory(3)
    # a dict being rehashed by the servers' cron between the proxy's SCAN and the direct
    # one would give the same keys under another cursor: rehash only on writes, so two
    # SCANs with no write between them see the same table
    for b in backends:
        b.redis().config_set("activerehashing", "no")
    proxy = module_proxy_factory(backends, label="keyspace")
    names = fill(proxy)
    return proxy, backends, names


def direct_union(backends, **kw):
    out = []
    for b in backends:
        out += list(b.redis().scan_iter(**kw))
    return out


def test_scan_iter_every_key_once(ks):
    proxy, backends, names = ks
    got = list(proxy.redis().scan_iter(count=100))
    assert len(got) == len(set(got)), "a key came back twice"
    want = direct_union(backends)
    assert sorted(got) == sorted(want)
    assert {k.decode() for k in got} == names
    # every server holds some, so the walk did cross from server to server
    assert all(b.redis().dbsize() > 0 for b in backends)


def test_scan_cursor_walk(ks):
    """The cursors a client sees: server 0's own while it has more, then 1<<52, 2<<52,
    and 0 after the last; each step's keys are that server's, COUNT passed on."""
    proxy, backends, _ = ks
    r = proxy.redis()
    seen_servers = []
    cur = 0
    steps = 0
    while True:
        idx = cur >> SHIFT
        own = cur & ((1 << SHIFT) - 1)
        nxt, keys = r.scan(cur, count=500)
        dnxt, dkeys = backends[idx].redis().scan(own, count=500)
        assert sorted(keys) == sorted(dkeys), "step %d (server %d)" % (steps, idx)
        if dnxt != 0:
            assert nxt == cursor(idx, dnxt)
        elif idx + 1 < len(backends):
            assert nxt == cursor(idx + 1)
        else:
            assert nxt == 0
        seen_servers.append(idx)
        cur = nxt
        steps += 1
        if cur == 0:
            break
        assert steps < 1000
    assert sorted(set(seen_servers)) == [0, 1, 2]
    assert seen_servers == sorted(seen_servers)


@pytest.mark.parametrize("count", [1, 10, 10000])
def test_scan_count_is_passed_on(ks, count):
    """SCAN <server 1's start> COUNT n gives exactly what SCAN 0 COUNT n gives on server 1."""
    proxy, backends, _ = ks
    nxt, keys = proxy.redis().scan(cursor(1), count=count)
    dnxt, dkeys = backends[1].redis().scan(0, count=count)
    assert sorted(keys) == sorted(dkeys)
    assert nxt == (cursor(1, dnxt) if dnxt else cursor(2))
    if count == 10000:
        assert dnxt == 0 and len(keys) == backends[1].redis().dbsize()
    else:
        assert dnxt != 0


def test_scan_match_and_type(ks):
    proxy, backends, names = ks
    r = proxy.redis()
    got = list(r.scan_iter(match="1*:ks", count=200))
    assert sorted(got) == sorted(direct_union(backends, match="1*:ks", count=200))
    assert {k.decode() for k in got} == {n for n in names if n.startswith("1") and n.endswith(":ks")}
    got = list(r.scan_iter(_type="hash", count=200))
    assert sorted(got) == sorted(direct_union(backends, _type="hash", count=200))
    assert len(got) == NHASH
    got = list(r.scan_iter(match="*:kh", _type="string", count=200))
    assert got == []


def test_scan_bad_cursor(ks):
    proxy, backends, _ = ks
    with proxy.client() as pc, backends[0].client() as dc:
        for bad in ("x", "-1", "1.5", "", "18446744073709551616", " 1"):
            want = dc.call("SCAN", bad)
            got = pc.call("SCAN", bad)
            assert isinstance(got, Error) and got == b"ERR invalid cursor", (bad, got)
            if bad not in ("-1", ""):     # Redis's strtoul takes these two
                assert got == want, bad
        # a server index past the pool's last server
        for c in (cursor(3), cursor(3, 5), cursor(2047), 1 << 63, (1 << 64) - 1):
            assert pc.call("SCAN", str(c)) == Error(b"ERR invalid cursor"), c
        # arity, and an argument error from the server itself, as Redis words them
        assert pc.call("SCAN") == dc.call("SCAN")
        assert pc.call("SCAN", "0", "COUNT", "x") == dc.call("SCAN", "0", "COUNT", "x")
        assert pc.call("SCAN", "0", "BOGUS") == dc.call("SCAN", "0", "BOGUS")
        # the connection goes on
        assert pc.call("PING") == b"PONG"


def test_dbsize_is_the_sum(ks):
    proxy, backends, names = ks
    sizes = [b.redis().dbsize() for b in backends]
    assert proxy.redis().dbsize() == sum(sizes) == len(names)
    with proxy.client() as pc:
        assert pc.call("DBSIZE", "extra") == Error(b"ERR wrong number of arguments for 'dbsize' command")


def test_keys_refused(ks):
    proxy, backends, names = ks
    with proxy.client() as pc:
        assert pc.call("KEYS", "*") == Error(KEYS_REFUSED)
        assert pc.call("keys", "1*") == Error(KEYS_REFUSED)
        assert pc.call("DBSIZE") == len(names)


@pytest.mark.parametrize("words", [["FLUSHALL"], ["FLUSHALL", "ASYNC"], ["flushdb"],
                                   ["FLUSHDB", "SYNC"]])
def test_flush_refused_by_default(ks, words):
    proxy, backends, names = ks
    before = [b.redis().dbsize() for b in backends]
    with proxy.client() as pc:
        assert pc.call(*words) == Error(flush_refused(words[0].upper().encode()))
        assert pc.call("PING") == b"PONG"
    assert [b.redis().dbsize() for b in backends] == before
    assert sum(before) == len(names)


@pytest.mark.parametrize("words", [["FLUSHALL"], ["FLUSHDB", "ASYNC"]])
def test_flush_with_allow_flush(redis_factory, proxy_factory, words):
    backends = redis_factory(3)
    proxy = proxy_factory(backends, allow_flush=True)
    names = fill(proxy)
    assert all(b.redis().dbsize() > 0 for b in backends)
    assert proxy.redis().dbsize() == len(names)
    with proxy.client() as pc:
        assert pc.call(*words) == b"OK"
    assert [b.redis().dbsize() for b in backends] == [0, 0, 0]
    assert proxy.redis().dbsize() == 0
    assert list(proxy.redis().scan_iter()) == []


def test_flush_with_a_server_down(redis_factory, proxy_factory):
    """allow_flush and one server down: the client gets that server's error, not +OK."""
    backends = redis_factory(3)
    proxy = proxy_factory(backends, allow_flush=True)
    fill(proxy)
    backends[1].kill()
    with proxy.client() as pc:
        got = pc.call("FLUSHALL")
        assert isinstance(got, Error), got
        got = pc.call("DBSIZE")
        assert isinstance(got, Error), got
    assert backends[0].redis().dbsize() == 0 and backends[2].redis().dbsize() == 0


def test_scan_server_down_then_retry(redis_factory, proxy_factory):
    backends = redis_factory(3)
    proxy = proxy_factory(backends)
    fill(proxy)
    want = backends[1].redis().scan(0, count=50)
    backends[1].kill()
    with proxy.client() as pc:
        got = pc.call("SCAN", str(cursor(1)), "COUNT", "50")
        assert isinstance(got, Error), got
        # the other servers still scan
        assert not isinstance(pc.call("SCAN", str(cursor(2))), Error)
    backends[1].restart()
    backends[1].flushall()
    nxt, keys = proxy.redis().scan(cursor(1), count=50)
    assert (nxt, keys) == (cursor(2), [])
    assert want[1]   # the server had keys before it went down


def test_scan_server_cursor_too_large(redis_factory, proxy_factory):
    """A server cursor that does not fit in 52 bits is an error, never a cut cursor; a
    reply of another shape is an error too."""
    real = redis_factory(1)[0]
    fake = FakeRedis().start()
    try:
        fake.on("0", send=b"*2\r\n$16\r\n4503599627370496\r\n*1\r\n$1\r\na\r\n")
        fake.on("7", send=b"*2\r\n$16\r\n4503599627370495\r\n*1\r\n$1\r\nb\r\n")
        fake.on("8", send=b"$3\r\nodd\r\n")
        proxy = proxy_factory([real, fake])
        with proxy.client() as pc:
            assert pc.call("SCAN", str(cursor(1))) == \
                Error(b"ERR a server's SCAN cursor is too large for the proxy's cursor")
            assert pc.call("SCAN", str(cursor(1, 7))) == [str(cursor(1, (1 << SHIFT) - 1)).encode(), [b"b"]]
            assert pc.call("SCAN", str(cursor(1, 8))) == Error(b"ERR unexpected reply from a server to SCAN")
            assert pc.call("PING") == b"PONG"
    finally:
        fake.stop()


def test_scan_pipelined_in_order(ks):
    """SCAN replies keep their place among other replies in a pipeline."""
    proxy, backends, names = ks
    r = proxy.redis()
    pipe = r.pipeline(transaction=False)
    pipe.get("0:ks")
    pipe.scan(cursor(2), count=5)
    pipe.dbsize()
    pipe.scan(0, count=5)
    pipe.get("1:ks")
    out = pipe.execute()
    assert out[0] == b"v0" and out[4] == b"v1"
    assert out[2] == len(names)
    assert isinstance(out[1], tuple) and isinstance(out[3], tuple)
    assert (out[1][0] >> SHIFT) in (0, 2) and (out[3][0] >> SHIFT) in (0, 1)


# --------------------------------------------------------------------- keymux -t


def check_conf(tmp_path, text):
    conf = tmp_path / "km.yml"
    conf.write_text(text)
    r = run_bounded([KEYMUX_BIN, "-t", "-c", str(conf)], 10)
    return r.returncode, (r.stdout + r.stderr).decode()


@pytest.mark.parametrize("value", ["true", "false"])
def test_conf_allow_flush_accepted(tmp_path, value):
    rc, out = check_conf(tmp_path, pool_yaml("alpha", PORTS.get(), ["127.0.0.1:%d" % PORTS.get()],
                                             allow_flush=value))
    assert rc == 0, out
    assert "syntax is ok" in out, out


@pytest.mark.parametrize("value", ["yes", "1", "True", "maybe"])
def test_conf_allow_flush_not_boolean(tmp_path, value):
    rc, out = check_conf(tmp_path, pool_yaml("alpha", PORTS.get(), ["127.0.0.1:%d" % PORTS.get()],
                                             allow_flush=value))
    assert rc != 0, out
    assert "invalid" in out and "allow_flush" in out and value in out, out


def test_conf_allow_flush_redis_only(tmp_path):
    rc, out = check_conf(tmp_path, pool_yaml("alpha", PORTS.get(), ["127.0.0.1:%d" % PORTS.get()],
                                             redis=False, allow_flush="true"))
    assert rc != 0, out
    assert "allow_flush" in out and "redis" in out, out


def test_conf_allow_flush_twice(tmp_path):
    text = pool_yaml("alpha", PORTS.get(), ["127.0.0.1:%d" % PORTS.get()], allow_flush="true")
    text = text.replace("  allow_flush: true\n", "  allow_flush: true\n  allow_flush: false\n")
    rc, out = check_conf(tmp_path, text)
    assert rc != 0, out
    assert "allow_flush" in out and "twice" in out, out
