"""XREAD and XREADGROUP through the proxy, against real redis-servers.

Each case compares the exact reply bytes through keymux with the same calls made
directly to a redis-server of its own (stream IDs given explicitly so that both sides
hold the same entries): the keys are the first half of the words after STREAMS, all on
one server (else CROSSSLOT), the refused options answer with Redis's text; with BLOCK
the command runs on a server connection pinned to its client, so it outlives the pool
timeout, blocks no other client, and a client that leaves while blocked releases that
connection (its server no longer counts a blocked client, and an entry added later is
delivered to no one)."""


import pytest

from helpers import RespConn, wait_for
from sessfix import (blocked_clients, emptied, keys_on, raw_exchange, same_through_both,
                     start_pool)

TIMEOUT_MS = 400
CROSSSLOT = b"-CROSSSLOT Keys in request don't hash to the same server\r\n"


@pytest.fixture(scope="module")
def streams(module_redis_factory, module_proxy_factory):
    return start_pool(module_redis_factory, module_proxy_factory, "streams", timeout=TIMEOUT_MS)


@pytest.fixture
def clean(streams):
    return emptied(streams)


def fill(a, b):
    """Entries 1-1, 2-1 in stream a and 3-1 in b, and a group g on each."""
    return [["XADD", a, "1-1", "f", "1"], ["XADD", a, "2-1", "f", "2"],
            ["XADD", b, "3-1", "g", "3"],
            ["XGROUP", "CREATE", a, "g", "0"], ["XGROUP", "CREATE", b, "g", "0"]]


def test_xread_replies_are_redis_bytes(clean):
    proxy, backends, direct = clean
    a, b = keys_on(proxy, backends, 1, 2, "s")
    got = same_through_both(proxy, direct, fill(a, b) + [
        ["XREAD", "STREAMS", a, "0"],
        ["xread", "count", "1", "streams", a, b, "0", "0"],
        ["XREAD", "COUNT", "5", "STREAMS", a, b, "1-1", "$"],
        ["XREAD", "STREAMS", a, "9-0"],
        ["XREAD", "BLOCK", "1000", "STREAMS", a, b, "0", "0"],   # data there: at once
        ["XREADGROUP", "GROUP", "g", "c1", "COUNT", "1", "STREAMS", a, ">"],
        ["XREADGROUP", "GROUP", "g", "c2", "NOACK", "STREAMS", a, b, ">", ">"],
        ["XREADGROUP", "GROUP", "g", "c1", "STREAMS", a, "0"],    # c1's pending entry
        ["XREADGROUP", "GROUP", "g", "c1", "BLOCK", "50", "STREAMS", a, ">"],   # times out
        ["XREAD", "BLOCK", "50", "STREAMS", a, "$"],
        ["XPENDING", a, "g"],
        ["XREADGROUP", "GROUP", "nosuch", "c", "STREAMS", a, ">"],
        ["XREAD", "STREAMS", a, "bad-id"]])
    assert got[5].startswith(b"*1\r\n*2\r\n")
    assert got[13] == got[14] == b"*-1\r\n"
    assert got[16].startswith(b"-NOGROUP ")


def test_refused_options_are_redis_bytes(clean):
    proxy, backends, direct = clean
    a, b = keys_on(proxy, backends, 0, 2, "r")
    cmds = [
        ["XREAD", "STREAMS", a],
        ["XREAD", "STREAMS", a, b, "0"],
        ["XREAD", "BLOCK", "10", "STREAMS", a, b, "0"],
        ["XREAD", "COUNT", "1", a, "0"],
        ["XREAD", "NOSUCH", "STREAMS", a, "0"],
        ["XREAD", "BLOCK", "abc", "STREAMS", a, "0"],
        ["XREAD", "BLOCK", "abc", "STREAMS", a, "0", "1"],
        ["XREAD", "BLOCK", "0.5", "STREAMS", a, "0"],
        ["XREAD", "BLOCK", "-1", "STREAMS", a, "0"],
        ["XREAD", "COUNT", "x", "STREAMS", a, "0"],
        ["XREAD", "BLOCK", "1", "COUNT", "1"],
        ["XREAD", "COUNT", "1", "STREAMS"],
        ["XREAD", "GROUP", "g", "c", "STREAMS", a, "0"],
        ["XREAD", "NOACK", "STREAMS", a, "0"],
        ["XREADGROUP", "GROUP", "g", "c", "STREAMS", a],
        ["XREADGROUP", "STREAMS", a, b, "c", "0", "0", "0"],
        ["XREADGROUP", "GROUP", "g", "c", "NOACK", "STREAMS", a],
        ["XREADGROUP", "GROUP", "g", "c", "BLOCK", "-5", "STREAMS", a, ">"],
    ]
    got = same_through_both(proxy, direct, cmds)
    assert all(g.startswith(b"-") for g in got), got
    # the connection goes on after them
    assert same_through_both(proxy, direct, [["XREAD", "STREAMS", a, "0"]]) == [b"*-1\r\n"]


def test_keys_on_two_servers(clean):
    proxy, backends, _ = clean
    a = keys_on(proxy, backends, 0, 1, "a")[0]
    b = keys_on(proxy, backends, 2, 1, "b")[0]
    got = raw_exchange(proxy.port, [
        ["XREAD", "STREAMS", a, b, "0", "0"],
        ["XREAD", "BLOCK", "0", "STREAMS", a, b, "$", "$"],
        ["XREADGROUP", "GROUP", "g", "c", "STREAMS", a, b, ">", ">"],
        ["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", b, a, ">", ">"],
        ["PING"]])
    assert got == [CROSSSLOT] * 4 + [b"+PONG\r\n"]


def test_block_outlives_the_pool_timeout(clean):
    proxy, backends, direct = clean
    a = keys_on(proxy, backends, 2, 1, "t")[0]
    got = raw_exchange(proxy.port, [["XREAD", "BLOCK", "1000", "STREAMS", a, "$"], ["PING"]])
    # its own timeout's nil, not the error the pool timeout (0.4 s) would have made
    assert got == [b"*-1\r\n", b"+PONG\r\n"], got
    assert got == raw_exchange(direct.port, [["XREAD", "BLOCK", "1000", "STREAMS", a, "$"],
                                             ["PING"]])


def test_block_0_waits_for_an_entry(clean):
    proxy, backends, _ = clean
    a = keys_on(proxy, backends, 1, 1, "z")[0]
    r = backends[1].redis()
    c = RespConn(proxy.port, timeout=10)
    c.send("XREAD", "BLOCK", "0", "STREAMS", a, "$")
    assert wait_for(lambda: blocked_clients(r) == 1, 5)
    proxy.redis().xadd(a, {"f": "v"}, id="5-1")
    assert c.read_raw() == b"*1\r\n*2\r\n$%d\r\n%s\r\n*1\r\n*2\r\n$3\r\n5-1\r\n*2\r\n" \
        b"$1\r\nf\r\n$1\r\nv\r\n" % (len(a), a.encode())
    # the client's connection is usable after it, and its server has no one blocked
    assert c.call("PING") == b"PONG"
    assert blocked_clients(r) == 0
    c.close()


@pytest.mark.parametrize("group", [False, True], ids=["xread", "xreadgroup"])
def test_block_blocks_no_other_client(clean, group):
    proxy, backends, _ = clean
    a = keys_on(proxy, backends, 0, 1, "q")[0]
    other = keys_on(proxy, backends, 0, 1, "n")[0]   # same server, shared connections
    r = backends[0].redis()
    if group:
        r.xgroup_create(a, "g", id="$", mkstream=True)
        cmd = ["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", a, ">"]
    else:
        cmd = ["XREAD", "BLOCK", "0", "STREAMS", a, "$"]
    blocked = RespConn(proxy.port, timeout=10)
    blocked.send(*cmd)
    assert wait_for(lambda: blocked_clients(r) == 1, 5)
    # another client's requests to the same server are answered meanwhile
    with proxy.client() as c:
        for i in range(20):
            assert c.call("SET", other, str(i)) == b"OK"
            assert c.call("GET", other) == str(i).encode()
    # ... while the XREAD is still outstanding: its server still holds it blocked, and
    # nothing came back to its client
    assert blocked_clients(r) == 1
    blocked.sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        blocked.sock.recv(1)
    blocked.sock.setblocking(True)
    proxy.redis().xadd(a, {"f": "v"}, id="7-1")
    assert blocked.read_raw().startswith(b"*1\r\n*2\r\n")
    blocked.close()


def cmd_lines(r, name):
    """CLIENT LIST lines of the server's connections whose last command was name."""
    return [l for l in r.execute_command("CLIENT", "LIST").decode().splitlines()
            if " cmd=%s " % name in l]


def test_client_leaving_while_blocked_releases(clean):
    proxy, backends, _ = clean
    a = keys_on(proxy, backends, 2, 1, "l")[0]
    r = backends[2].redis()
    r.xgroup_create(a, "g", id="$", mkstream=True)
    c = RespConn(proxy.port)
    c.send("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", a, ">")
    assert wait_for(lambda: blocked_clients(r) == 1, 5)
    assert len(cmd_lines(r, "xreadgroup")) == 1
    c.close()
    # its pinned connection is closed: no blocked client, no connection left behind
    assert wait_for(lambda: blocked_clients(r) == 0, 5)
    assert wait_for(lambda: not cmd_lines(r, "xreadgroup"), 5)
    # an entry added now goes to no consumer
    proxy.redis().xadd(a, {"f": "v"}, id="9-1")
    assert r.xpending(a, "g")["pending"] == 0
    # the next client blocks and gets it
    with RespConn(proxy.port) as d:
        got = d.call_raw("XREADGROUP", "GROUP", "g", "d", "BLOCK", "0", "STREAMS", a, ">")
        assert b"9-1" in got


def test_block_inside_multi_does_not_block(clean):
    proxy, backends, direct = clean
    a = keys_on(proxy, backends, 1, 1, "m")[0]
    got = same_through_both(proxy, direct, [
        ["MULTI"], ["XREAD", "BLOCK", "0", "STREAMS", a, "$"], ["XADD", a, "1-1", "f", "v"],
        ["XREAD", "BLOCK", "0", "STREAMS", a, "0"], ["EXEC"]])
    assert got[4].startswith(b"*3\r\n*-1\r\n$3\r\n1-1\r\n*1\r\n")


def test_block_with_a_watch(clean):
    proxy, backends, direct = clean
    a = keys_on(proxy, backends, 0, 1, "w")[0]
    far = keys_on(proxy, backends, 1, 1, "f")[0]
    # on the WATCH's server it runs on the client's pinned connection
    same_through_both(proxy, direct, [
        ["WATCH", a], ["XADD", a, "1-1", "f", "v"], ["XREAD", "BLOCK", "10", "STREAMS", a, "0"],
        ["MULTI"], ["XLEN", a], ["EXEC"]])
    # elsewhere it is refused: it would wait on another server than the session's
    got = raw_exchange(proxy.port, [["WATCH", a], ["XREAD", "BLOCK", "10", "STREAMS", far, "$"],
                                    ["XREAD", "STREAMS", far, "0"], ["UNWATCH"]])
    assert got[1].startswith(b"-CROSSSLOT a blocking command's keys must be on the server")
    assert got[2:] == [b"*-1\r\n", b"+OK\r\n"]


def test_redis_py(clean):
    proxy, backends, direct = clean
    a, b = keys_on(proxy, backends, 2, 2, "p")
    results = []
    for r in (proxy.redis(), direct.redis()):
        r.xadd(a, {"x": "1"}, id="1-1")
        r.xadd(b, {"y": "2"}, id="2-1")
        r.xgroup_create(a, "g", id="0")
        results.append([
            r.xread({a: "0", b: "0"}),
            r.xread({a: "$"}, block=100),
            r.xreadgroup("g", "c", {a: ">"}, count=1, block=100),
            r.xreadgroup("g", "c", {a: ">"}, block=100),
        ])
    assert results[0] == results[1]
    assert results[0][1] is None or results[0][1] == []
