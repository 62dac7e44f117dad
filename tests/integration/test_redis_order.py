"""A client's requests reach each server in the order it sent them, whichever of the
proxy's connections they take: the shared ones for plain requests, the one pinned to the
client for its transaction, WATCH or blocking command.

Each case sends one pipeline in one write, many rounds over, through keymux (two
redis-servers, hash md5, hash_tag "{}") and to a redis-server of its own, and wants the same reply
bytes from both: a request sent before a transaction is seen by it, a split request (MGET
over both servers) sent after one sees its writes, a push sent before a blocking pop feeds
it; many requests read behind a waiting one, a QUIT among them, and a client that leaves
while one waits."""

import socket

import pytest

from helpers import RespConn, encode, wait_for
from sessfix import emptied, raw_exchange, same_through_both, server_of, start_pool

ROUNDS = 40


@pytest.fixture(scope="module")
def order(module_redis_factory, module_proxy_factory):
    return start_pool(module_redis_factory, module_proxy_factory, "order", n=2,
                      hash_tag="{}", hash="md5")


@pytest.fixture
def clean(order):
    proxy, backends, direct = emptied(order)
    # a hash tag on each server: "{a}..." keys on one, "{b}..." keys on the other
    tags = {}
    i = 0
    while len(tags) < 2:
        t = "t%d" % i
        tags.setdefault(server_of(proxy, backends, "{%s}" % t), t)
        i += 1
        assert i < 200
    return proxy, backends, direct, "{%s}" % tags[0], "{%s}" % tags[1]


def rounds(proxy, direct, cmds, n=ROUNDS):
    for _ in range(n):
        same_through_both(proxy, direct, cmds)


def test_request_before_a_transaction_is_seen_by_it(clean):
    proxy, _, direct, a, _ = clean
    rounds(proxy, direct, [["INCR", a + "c"], ["MULTI"], ["GET", a + "c"], ["EXEC"]])
    rounds(proxy, direct, [["SET", a + "s", "x"], ["APPEND", a + "s", "y"], ["MULTI"],
                           ["PING"], ["STRLEN", a + "s"], ["GET", a + "s"], ["EXEC"]])


def test_split_request_after_a_transaction_sees_its_writes(clean):
    proxy, _, direct, a, b = clean
    rounds(proxy, direct, [["MULTI"], ["INCR", a + "c"], ["EXEC"],
                           ["MGET", a + "c", b + "c"], ["INCR", b + "c"],
                           ["MGET", b + "c", a + "c"]])
    rounds(proxy, direct, [["MULTI"], ["SET", a + "d", "1"], ["EXEC"],
                           ["DEL", a + "d", b + "d"], ["EXISTS", a + "d", b + "d"]])


def test_watch_keeps_order_with_split_requests(clean):
    proxy, _, direct, a, b = clean
    rounds(proxy, direct, [["WATCH", a + "c"], ["INCR", a + "c"], ["MGET", a + "c", b + "x"],
                           ["INCR", a + "c"], ["MGET", b + "x", a + "c"], ["UNWATCH"],
                           ["GET", a + "c"]])
    rounds(proxy, direct, [["INCR", a + "w"], ["WATCH", a + "w"], ["GET", a + "w"],
                           ["MULTI"], ["INCR", a + "w"], ["EXEC"], ["GET", a + "w"]])


def test_push_before_a_blocking_pop_feeds_it(clean):
    proxy, _, direct, a, b = clean
    # were BLPOP to pass the RPUSH, it would wait its 2 s and answer nil
    rounds(proxy, direct, [["RPUSH", a + "q", "x"], ["BLPOP", a + "q", "2"],
                           ["RPUSH", b + "q", "y"], ["LLEN", a + "q"]], n=15)


def test_many_requests_read_behind_a_waiting_one(clean):
    proxy, _, direct, a, b = clean
    cmds = [["INCR", a + "c"], ["MULTI"], ["INCR", a + "c"], ["EXEC"]]
    for i in range(3000):
        cmds.append(["INCR", (a if i % 2 else b) + "c"])
    cmds += [["MULTI"], ["GET", a + "c"], ["EXEC"], ["MGET", a + "c", b + "c"]]
    rounds(proxy, direct, cmds, n=3)


def test_quit_read_behind_a_waiting_request(clean):
    proxy, backends, direct, a, _ = clean
    cmds = [["INCR", a + "c"], ["MULTI"], ["INCR", a + "c"], ["EXEC"], ["QUIT"],
            ["INCR", a + "c"]]
    for port in (proxy.port, direct.port):
        c = RespConn(port, timeout=5.0)
        try:
            c.send_raw(b"".join(encode(*w) for w in cmds))
            got = [c.read_raw() for _ in range(5)]
            assert got == [b":1\r\n", b"+OK\r\n", b"+QUEUED\r\n", b"*1\r\n:2\r\n", b"+OK\r\n"]
            assert c.sock.recv(100) == b""   # closed after the QUIT's reply
        finally:
            c.close()
    # the INCR after the QUIT never ran
    assert [b.redis().get(a + "c") for b in backends].count(b"2") == 1
    assert direct.redis().get(a + "c") == b"2"


def test_client_that_leaves_while_a_request_waits(clean):
    proxy, backends, _, a, _ = clean
    wire = b"".join(encode(*w) for w in [["INCR", a + "c"], ["MULTI"], ["INCR", a + "c"],
                                          ["EXEC"], ["GET", a + "c"]])
    for _ in range(30):
        s = socket.create_connection(("127.0.0.1", proxy.port))
        s.sendall(wire)
        s.close()
    # every one of them is gone, and with it any pinned connection it had taken
    assert wait_for(lambda: proxy.stats()["alpha"]["client_connections"] == 0, 5)
    got = raw_exchange(proxy.port, [["INCR", a + "c"], ["MULTI"], ["GET", a + "c"],
                                    ["EXEC"]])
    n = int(got[0][1:-2])
    assert got[3] == b"*1\r\n$%d\r\n%d\r\n" % (len(str(n)), n)
    assert proxy.alive()
