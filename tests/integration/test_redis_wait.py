"""WAIT through the proxy, against a real redis master with one replica.

The proxy's server connections are shared, so WAIT counts the writes of a session: a
client that holds a pinned connection (its WATCH) writes to that server and WAITs on that
connection, and gets what Redis gives the same calls made directly; it waits past the
pool timeout and blocks no other client. A client without one gets keymux's error. Inside
MULTI WAIT is queued and EXEC answers it at once, as Redis does."""


import pytest

from helpers import RespConn, encode, wait_for
from sessfix import blocked_clients, raw_exchange

TIMEOUT_MS = 400
NO_SESSION = (b"-ERR WAIT through keymux counts the writes of a session: WATCH a key first, "
              b"then the writes to that key's server and WAIT go on this client's own "
              b"server connection\r\n")


def replica_up(master, replica):
    info = replica.redis().info("replication")
    return (master.redis().info("replication").get("connected_slaves") == 1
            and info.get("master_link_status") == "up")


@pytest.fixture(scope="module")
def repl(module_redis_factory, module_proxy_factory):
    master = module_redis_factory(1)[0]
    replica = module_redis_factory(1, args=["--replicaof", "127.0.0.1", str(master.port)])[0]
    assert wait_for(lambda: replica_up(master, replica), 15)
    proxy = module_proxy_factory([master], label="wait", timeout=TIMEOUT_MS)
    return proxy, master, replica


def test_wait_in_a_watch_session(repl):
    proxy, master, replica = repl
    cmds = [["WATCH", "k"], ["SET", "k", "v"], ["WAIT", "1", "2000"], ["UNWATCH"]]
    got = raw_exchange(proxy.port, cmds)
    assert got == [b"+OK\r\n", b"+OK\r\n", b":1\r\n", b"+OK\r\n"]
    assert got == raw_exchange(master.port, cmds)
    assert wait_for(lambda: replica.redis().get("k") == b"v", 5)


def test_wait_errors_of_redis_in_a_session(repl):
    proxy, master, _ = repl
    cmds = [["WATCH", "k"], ["WAIT", "x", "0"], ["WAIT", "1", "-1"], ["WAIT", "1"],
            ["UNWATCH"]]
    got = raw_exchange(proxy.port, cmds)
    assert got == raw_exchange(master.port, cmds)
    assert got[1].startswith(b"-ERR ") and got[2] == b"-ERR timeout is negative\r\n"


def test_wait_without_a_session_is_refused(repl):
    proxy, _, _ = repl
    assert raw_exchange(proxy.port, [["SET", "k", "v"], ["WAIT", "1", "100"], ["GET", "k"]]) \
        == [b"+OK\r\n", NO_SESSION, b"$1\r\nv\r\n"]
    # once the session is over (its replies in), the client holds no connection any more
    with RespConn(proxy.port) as c:
        assert c.call_raw("WATCH", "k") == b"+OK\r\n"
        assert c.call_raw("UNWATCH") == b"+OK\r\n"
        assert c.call_raw("WAIT", "0", "0") == NO_SESSION


def test_wait_outlives_the_pool_timeout(repl):
    proxy, master, _ = repl
    cmds = [["WATCH", "k"], ["SET", "k", "w"], ["WAIT", "2", "1000"], ["UNWATCH"]]
    got = raw_exchange(proxy.port, cmds)
    # only one replica: it waits out its own timeout, not cut by the pool timeout (0.4 s,
    # which would have answered with an error), and counts it
    assert got == [b"+OK\r\n", b"+OK\r\n", b":1\r\n", b"+OK\r\n"], got
    assert got == raw_exchange(master.port, cmds)


def test_wait_blocks_no_other_client(repl):
    proxy, master, _ = repl
    r = master.redis()
    waiter = RespConn(proxy.port, timeout=10)
    waiter.send_raw(encode("WATCH", "k") + encode("SET", "k", "x") + encode("WAIT", "2", "0"))
    assert waiter.read_raw() == b"+OK\r\n" and waiter.read_raw() == b"+OK\r\n"
    assert wait_for(lambda: blocked_clients(r) == 1, 5)
    # another client's requests to the same server are answered meanwhile
    with proxy.client() as c:
        for i in range(20):
            assert c.call("SET", "other", str(i)) == b"OK"
            assert c.call("GET", "other") == str(i).encode()
    # ... while WAIT is still outstanding: its server still holds it, its client got nothing
    assert blocked_clients(r) == 1
    waiter.sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        waiter.sock.recv(1)
    waiter.sock.setblocking(True)
    # leaving while blocked releases the pinned connection: the server has no one blocked
    waiter.close()
    assert wait_for(lambda: blocked_clients(r) == 0, 5)
    assert raw_exchange(proxy.port, [["WATCH", "k"], ["UNWATCH"]]) == [b"+OK\r\n"] * 2


def test_wait_inside_multi(repl):
    proxy, master, _ = repl
    # Redis queues it and answers it inside EXEC at once, without blocking (WAIT 5 0 would
    # otherwise wait for ever); how many replicas it counts then depends on the
    # connection's earlier writes, so only the shape is compared
    cmds = [["MULTI"], ["SET", "m", "1"], ["WAIT", "5", "0"], ["EXEC"]]
    for port in (proxy.port, master.port):
        got = raw_exchange(port, cmds)
        assert got[:3] == [b"+OK\r\n", b"+QUEUED\r\n", b"+QUEUED\r\n"], got
        assert got[3] in (b"*2\r\n+OK\r\n:0\r\n", b"*2\r\n+OK\r\n:1\r\n"), got
    # keyless: WAIT first, then a write
    got = raw_exchange(proxy.port, [["MULTI"], ["WAIT", "0", "0"], ["SET", "m", "2"], ["EXEC"]])
    assert got[3] in (b"*2\r\n:0\r\n+OK\r\n", b"*2\r\n:1\r\n+OK\r\n"), got
