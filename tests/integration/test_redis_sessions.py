"""Redis sessions through the proxy: MULTI/EXEC/DISCARD, WATCH/UNWATCH and blocking
commands, each on a server connection pinned to its client.

Every case runs against real redis-servers behind keymux and compares with the same
calls made directly to a redis-server of its own: raw RESP bytes for the transaction
replies (queued, EXEC arrays with errors inside, EXECABORT, the refusals), redis-py's
transactional pipeline(), watch() and transaction(); a key of another server inside a
transaction gets CROSSSLOT and nothing of it runs; a pinned connection that goes back to
the cache carries no state to the next client; BLPOP blocks no other client, outlives the
pool timeout, and a client that leaves while blocked releases its connection; past
max_pinned_connections a command gets an error at once."""

import select
import socket
import time

import pytest
import redis

from helpers import RespConn, encode, wait_for
from sessfix import (blocked_clients, emptied, keys_on, raw_exchange, same_through_both,
                     start_pool)

TIMEOUT_MS = 400


@pytest.fixture(scope="module")
def sess(module_redis_factory, module_proxy_factory):
    return start_pool(module_redis_factory, module_proxy_factory, "sess", timeout=TIMEOUT_MS)


@pytest.fixture
def clean(sess):
    return emptied(sess)


# ---------------------------------------------------------------------------
# transactions, byte for byte


def test_transaction_replies_are_redis_bytes(clean):
    proxy, backends, direct = clean
    k1, k2 = keys_on(proxy, backends, 1, 2)
    got = same_through_both(proxy, direct, [
        ["MULTI"], ["PING"], ["SET", k1, "v"], ["INCR", k2], ["GET", k1], ["INCR", k1],
        ["LPUSH", k1, "x"], ["ECHO", "hi"], ["EXEC"], ["GET", k2]])
    assert got[0] == b"+OK\r\n" and got[1] == b"+QUEUED\r\n"
    assert got[8].startswith(b"*7\r\n+PONG\r\n+OK\r\n:1\r\n$1\r\nv\r\n-ERR")
    assert got[9] == b"$1\r\n1\r\n"
    # the keys are on the one server the transaction ran on
    assert backends[1].redis().get(k2) == b"1"


def test_refusals_are_redis_bytes(clean):
    proxy, backends, direct = clean
    k = keys_on(proxy, backends, 0, 1)[0]
    got = same_through_both(proxy, direct, [
        ["EXEC"], ["DISCARD"], ["MULTI"], ["MULTI"], ["WATCH", k], ["EXEC"],
        ["MULTI"], ["EXEC"],
        ["MULTI"], ["SET", k, "1"], ["GET"], ["EXEC"],
        ["MULTI"], ["SET", k, "2"], ["DISCARD"], ["GET", k],
        ["UNWATCH"], ["WATCH", k], ["UNWATCH"], ["GET", k]])
    assert b"EXECABORT" in got[11]
    assert got[15] == b"$-1\r\n"   # neither the aborted SET nor the discarded one ran
    assert all(not b.redis().exists(k) for b in backends)


def test_keyless_transaction(clean):
    proxy, _, direct = clean
    same_through_both(proxy, direct, [["MULTI"], ["PING"], ["ECHO", "a"], ["EXEC"]])
    same_through_both(proxy, direct, [["MULTI"], ["PING"], ["DISCARD"], ["PING"]])


def test_key_of_another_server_aborts_the_transaction(clean):
    proxy, backends, _ = clean
    a = keys_on(proxy, backends, 0, 1, "a")[0]
    b = keys_on(proxy, backends, 2, 1, "b")[0]
    got = raw_exchange(proxy.port, [["MULTI"], ["SET", a, "1"], ["SET", b, "1"], ["EXEC"],
                                    ["GET", a], ["GET", b]])
    assert got[1] == b"+QUEUED\r\n"
    assert got[2].startswith(b"-CROSSSLOT ")
    assert got[3] == b"-EXECABORT Transaction discarded because of previous errors.\r\n"
    assert got[4] == got[5] == b"$-1\r\n"
    assert all(b_.redis().dbsize() == 0 for b_ in backends)


def test_a_split_command_inside_a_transaction_must_be_on_one_server(clean):
    proxy, backends, direct = clean
    same = keys_on(proxy, backends, 1, 3, "m")
    got = raw_exchange(proxy.port, [["MULTI"], ["MSET", same[0], "1", same[1], "2"],
                                    ["MGET"] + same, ["EXEC"]])
    assert got[3] == b"*2\r\n+OK\r\n*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n"
    other = keys_on(proxy, backends, 0, 1, "o")[0]
    got = raw_exchange(proxy.port, [["MULTI"], ["MGET", same[0], other], ["EXEC"]])
    assert got[1].startswith(b"-CROSSSLOT ") and b"EXECABORT" in got[2]


# ---------------------------------------------------------------------------
# redis-py


def test_redis_py_pipeline_transaction(clean):
    proxy, backends, direct = clean
    keys = keys_on(proxy, backends, 2, 3, "p")
    results = []
    for r in (proxy.redis(), direct.redis()):
        with r.pipeline(transaction=True) as p:
            p.set(keys[0], "a").incr(keys[1]).incrby(keys[1], 5).rpush(keys[2], 1, 2)
            p.lrange(keys[2], 0, -1).get(keys[0]).incr(keys[0])
            res = p.execute(raise_on_error=False)
        results.append([str(x) if isinstance(x, Exception) else x for x in res])
    assert results[0] == results[1]
    assert results[0][:6] == [True, 1, 6, 2, [b"1", b"2"], b"a"]


def test_redis_py_watch_conflict(clean):
    proxy, backends, direct = clean
    k = keys_on(proxy, backends, 0, 1, "w")[0]
    for r in (proxy.redis(), direct.redis()):
        r.set(k, "0")
        with r.pipeline() as p:
            p.watch(k)
            assert p.get(k) == b"0"
            r.set(k, "other")   # another connection touches the watched key
            p.multi()
            p.set(k, "mine")
            with pytest.raises(redis.WatchError):
                p.execute()
        assert r.get(k) == b"other"


def test_redis_py_transaction_helper_retries(clean):
    proxy, backends, _ = clean
    k = keys_on(proxy, backends, 1, 1, "t")[0]
    r = proxy.redis()
    r.set(k, "10")
    touched = []

    def incr(pipe):
        v = int(pipe.get(k))
        if not touched:
            touched.append(1)
            proxy.redis().set(k, "20")   # the first attempt loses its WATCH
        pipe.multi()
        pipe.set(k, v + 1)

    r.transaction(incr, k)
    assert r.get(k) == b"21"


# ---------------------------------------------------------------------------
# one connection, many clients


@pytest.fixture
def one_pin(module_redis_factory, module_proxy_factory):
    backends = module_redis_factory(1)
    proxy = module_proxy_factory(backends, label="onepin", timeout=TIMEOUT_MS,
                                 max_pinned_connections=1)
    backends[0].flushall()
    return proxy, backends


def test_reused_connection_carries_no_state(one_pin):
    proxy, backends = one_pin
    # A: a transaction left open, and a WATCH, then A leaves
    a = RespConn(proxy.port)
    a.send_raw(encode("WATCH", "x") + encode("MULTI") + encode("SET", "x", "from-a"))
    assert [a.read_raw() for _ in range(3)] == [b"+OK\r\n", b"+OK\r\n", b"+QUEUED\r\n"]
    a.close()
    # B can only have a pinned connection once A's is gone (max 1): the limit frees
    assert wait_for(lambda: raw_exchange(proxy.port, [["WATCH", "y"], ["UNWATCH"]])[0]
                    == b"+OK\r\n", 5)
    # C watches y and ends cleanly: its connection goes back to the cache
    assert raw_exchange(proxy.port, [["WATCH", "y"], ["GET", "y"], ["UNWATCH"]]) == \
        [b"+OK\r\n", b"$-1\r\n", b"+OK\r\n"]
    backends[0].redis().set("y", "touched")
    # D, on the same connection: never watched y, so its EXEC runs
    got = raw_exchange(proxy.port, [["MULTI"], ["SET", "y", "from-d"], ["EXEC"]])
    assert got == [b"+OK\r\n", b"+QUEUED\r\n", b"*1\r\n+OK\r\n"]
    r = backends[0].redis()
    assert r.get("x") is None and r.get("y") == b"from-d"
    # the backend sees no client stuck in a transaction
    for line in r.execute_command("CLIENT", "LIST").decode().splitlines():
        assert "flags=x" not in line, line


# ---------------------------------------------------------------------------
# blocking commands


def no_reply_yet(c):
    """Nothing from the proxy on c yet: nothing buffered, nothing readable (a poll, no wait)."""
    return len(c.buf) == c.pos and not select.select([c.sock], [], [], 0)[0]


def test_blpop_blocks_no_other_client(clean):
    proxy, backends, _ = clean
    q = keys_on(proxy, backends, 0, 1, "q")[0]
    other = keys_on(proxy, backends, 0, 1, "n")[0]   # same server, shared connection
    b0 = backends[0].redis()
    popper = RespConn(proxy.port)
    popper.send("BLPOP", q, "0")                     # blocks until a push, however long
    assert wait_for(lambda: blocked_clients(b0) == 1, 5)
    # another client of the same server is answered while the BLPOP is still blocked on
    # it (a BLPOP on the shared connection would hold these replies: the socket timeout,
    # a safety net only, or the pool's "timed out" error would fail the test)
    with RespConn(proxy.port) as c:
        for i in range(50):
            assert c.call("SET", other, str(i)) == b"OK"
            assert c.call("GET", other) == str(i).encode()
    assert no_reply_yet(popper) and blocked_clients(b0) == 1
    proxy.redis().rpush(q, "job")
    assert popper.read() == [q.encode(), b"job"]
    popper.close()


def test_blocking_outlives_the_pool_timeout(clean):
    proxy, backends, direct = clean
    q = keys_on(proxy, backends, 1, 1, "q")[0]
    got = raw_exchange(proxy.port, [["BLPOP", q, "1"], ["PING"]])
    assert got == raw_exchange(direct.port, [["BLPOP", q, "1"], ["PING"]])
    # its own timeout's nil, not the error the pool timeout (0.4 s) would have made
    assert got[0] == b"*-1\r\n", got
    # the other blocking commands, each through and direct
    for cmd in (["BRPOP", q, "0.2"], ["BLMOVE", q, q, "LEFT", "RIGHT", "0.2"],
                ["BRPOPLPUSH", q, q, "0.2"], ["BZPOPMIN", q, "0.2"], ["BZPOPMAX", q, "0.2"],
                ["BLMPOP", "0.2", "1", q, "LEFT"], ["BZMPOP", "0.2", "1", q, "MIN"]):
        assert raw_exchange(proxy.port, [cmd]) == raw_exchange(direct.port, [cmd]), cmd


def test_blocking_keys_on_two_servers(clean):
    proxy, backends, _ = clean
    a = keys_on(proxy, backends, 0, 1, "a")[0]
    b = keys_on(proxy, backends, 1, 1, "b")[0]
    got = raw_exchange(proxy.port, [["BLPOP", a, b, "1"]])
    assert got[0].startswith(b"-CROSSSLOT ")


def test_client_leaving_while_blocked_releases(clean):
    proxy, backends, _ = clean
    q = keys_on(proxy, backends, 2, 1, "q")[0]
    r = backends[2].redis()
    c = RespConn(proxy.port)
    c.send("BLPOP", q, "30")
    assert wait_for(lambda: blocked_clients(r) == 1, 5)
    c.close()
    assert wait_for(lambda: blocked_clients(r) == 0, 5)
    proxy.redis().rpush(q, "v")
    time.sleep(0.2)
    assert r.llen(q) == 1   # nobody took it


def test_max_pinned_connections_refuses_at_once(one_pin):
    proxy, backends = one_pin
    holder = RespConn(proxy.port)
    holder.send("BLPOP", "q", "0")   # holds the only pinned connection until a push
    assert wait_for(lambda: blocked_clients(backends[0].redis()) == 1, 5)
    # refused with an error, not queued for the pinned connection: one that waited for it
    # would wait for ever (BLPOP 0), and raw_exchange's socket timeout (a safety net
    # only) fails the test
    got = raw_exchange(proxy.port, [["BLPOP", "q", "3"], ["MULTI"], ["SET", "a", "1"],
                                    ["EXEC"], ["GET", "a"]], timeout=30)
    assert no_reply_yet(holder)      # the refusals came while the holder still blocks
    assert got[0].startswith(b"-ERR max_pinned_connections (1)"), got
    assert got[1] == b"+OK\r\n" and got[2].startswith(b"-ERR max_pinned_connections")
    assert b"EXECABORT" in got[3] and got[4] == b"$-1\r\n"
    backends[0].redis().rpush("q", "x")
    assert holder.read_raw() == b"*2\r\n$1\r\nq\r\n$1\r\nx\r\n"
    holder.close()


def test_backend_lost_inside_a_transaction(module_redis_factory, module_proxy_factory):
    backends = module_redis_factory(1)
    proxy = module_proxy_factory(backends, label="lost", timeout=TIMEOUT_MS)
    c = RespConn(proxy.port)
    c.send_raw(encode("MULTI") + encode("SET", "k", "1"))
    assert [c.read_raw() for _ in range(2)] == [b"+OK\r\n", b"+QUEUED\r\n"]
    backends[0].kill()
    c.send("SET", "j", "2")
    assert c.read_raw().startswith(b"-")
    backends[0].restart()
    c.send("EXEC")
    assert c.read_raw() == b"-EXECABORT Transaction discarded because of previous errors.\r\n"
    assert wait_for(lambda: c.call("SET", "after", "1") == b"OK", 5)
    r = backends[0].redis()
    assert r.get("k") is None and r.get("j") is None
    c.close()
