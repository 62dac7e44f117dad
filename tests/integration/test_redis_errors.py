"""Errors and proxy-answered commands: unsupported commands get an error reply and
the connection lives on; malformed requests get -ERR and a close without hurting
other clients; backend error replies pass through byte for byte; PING, ECHO and
QUIT are answered by the proxy itself (even with every backend down)."""


import pytest

from helpers import PORTS, Error, describe, encode

UNSUPPORTED = [
    ("CONFIG", "GET", "x"),
    ("SWAPDB", "0", "1"),
    ("RANDOMKEY",),
    ("SSUBSCRIBE", "chan"),
    ("SCRIPT", "FLUSH"),
    ("MOVE", "k", "1"),
    ("NOSUCHCOMMAND", "arg"),
]


@pytest.mark.parametrize("args", UNSUPPORTED, ids=[a[0].lower() for a in UNSUPPORTED])
def test_unsupported_command_error_keeps_connection(pool4, args):
    """(keymux-only) An unsupported command gets `-ERR unsupported command ...` and
    the same connection keeps working, also for commands pipelined behind it."""
    with pool4.proxy.client(timeout=5) as c:
        assert c.call("SET", "1:unsup", "before") == b"OK"
        reply = c.call(*args)
        assert isinstance(reply, Error), "%s -> %s" % (args, describe(reply))
        assert reply.startswith(b"ERR unsupported command"), reply
        assert c.call("GET", "1:unsup") == b"before"
        # pipelined: the error takes its place in the reply order
        c.send_raw(encode("SET", "2:unsup", "x") + encode(*args) + encode("GET", "2:unsup")
                   + encode("PING"))
        replies = [c.read() for _ in range(4)]
        assert replies[0] == b"OK" and replies[2] == b"x" and replies[3] == b"PONG", replies
        assert isinstance(replies[1], Error) and replies[1].startswith(b"ERR unsupported command")


MALFORMED = {
    "bad_bulk_len": b"*2\r\n$3\r\nGET\r\n$x\r\n",
    "bad_array_len": b"*x\r\n",
    "bulk_overruns": b"*2\r\n$3\r\nGETT\r\n$1\r\nk\r\n",
    "int_in_request": b"*2\r\n$3\r\nGET\r\n:5\r\n",
    "negative_bulk": b"*2\r\n$3\r\nGET\r\n$-7\r\n",
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_request_error_then_close(pool4, name):
    """(keymux-only) A malformed request gets an error reply starting with -ERR and
    then the connection is closed; a client connected at the same time is unaffected."""
    with pool4.proxy.client(timeout=5) as other, pool4.proxy.client(timeout=5) as bad:
        assert other.call("SET", "1:malformed", "v") == b"OK"
        assert bad.call("PING") == b"PONG"
        bad.send_raw(MALFORMED[name])
        try:
            reply = bad.read_raw(timeout=5)
        except (ConnectionError, OSError) as e:
            pytest.fail("no error reply before the close: %s" % e)
        assert reply.startswith(b"-ERR"), reply
        assert bad.expect_closed(5) is True, "connection not closed after a framing error"
        assert other.call("GET", "1:malformed") == b"v"
        assert other.call("MGET", "1:malformed", "2:malformed") == [b"v", None]
    with pool4.proxy.client() as fresh:
        assert fresh.call("GET", "1:malformed") == b"v"


def test_malformed_request_does_not_affect_pipelined_neighbours(pool4):
    """(keymux-only) Requests sent before the malformed one on the same connection are answered
    first, in order (their replies are not lost to the close)."""
    with pool4.proxy.client(timeout=5) as bad:
        bad.send_raw(encode("SET", "1:mfpipe", "a") + encode("GET", "1:mfpipe") + MALFORMED["bad_bulk_len"])
        assert bad.read(timeout=5) == b"OK"
        assert bad.read(timeout=5) == b"a"


SERVER_ERRORS = [
    [("SET", "s:srverr", "notanumber"), ("INCR", "s:srverr")],
    [("SET", "s2:srverr", "x"), ("LPUSH", "s2:srverr", "v")],
    [("SET", "s3:srverr", "x"), ("HGET", "s3:srverr", "f")],
    [("HSET", "h:srverr", "f", "x"), ("HINCRBY", "h:srverr", "f", "1")],
    [("ZADD", "z:srverr", "notafloat", "m")],
    [("SET", "e:srverr", "v", "EX", "-5")],
    [("EVAL", "return redis.error_reply('MYERR custom failure')", "1", "k:srverr")],
    [("EVAL", "return redis.call('NOPE')", "1", "k:srverr")],
    [("INCRBYFLOAT", "s:srverr", "1")],
    [("SETRANGE", "r:srverr", "-1", "x")],
    [("LSET", "nolist:srverr", "0", "x")],
]


@pytest.mark.parametrize("steps", SERVER_ERRORS, ids=[s[-1][0].lower() + str(i) for i, s in enumerate(SERVER_ERRORS)])
def test_server_error_passes_through_unchanged(pool4, steps):
    """An error reply made by redis (not an integer, WRONGTYPE, script errors...)
    reaches the client as exactly the bytes redis sends directly."""
    with pool4.proxy.client() as pc, pool4.direct.client() as dc:
        for args in steps:
            got, want = pc.call_raw(*args), dc.call_raw(*args)
            assert got == want, "%s: proxy %r direct %r" % (args, got, want)
        assert want.startswith(b"-"), "test should end in a server error: %r" % want
        assert pc.call("PING") == b"PONG"


def test_wrongtype_exact_bytes(pool4):
    """WRONGTYPE errors keep their code and text exactly."""
    with pool4.proxy.client() as pc:
        pc.call("RPUSH", "l:wt", "a")
        assert pc.call_raw("GET", "l:wt") == \
            b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"


# ---------------------------------------------------------------------------
# answered by the proxy


def test_ping(pool4):
    """PING -> +PONG, also in its place within a pipeline."""
    with pool4.proxy.client(timeout=5) as c:
        assert c.call_raw("PING") == b"+PONG\r\n"
        c.send_raw(encode("SET", "1:ping", "v") + encode("PING") + encode("GET", "1:ping") + encode("PING"))
        assert [c.read() for _ in range(4)] == [b"OK", b"PONG", b"v", b"PONG"]


def test_quit(pool4):
    """(keymux-only: twemproxy closes without a reply) QUIT -> +OK as redis sends,
    then the proxy closes the connection."""
    with pool4.proxy.client(timeout=5) as c:
        assert c.call_raw("PING") == b"+PONG\r\n"
        assert c.call_raw("QUIT") == b"+OK\r\n"
        assert c.expect_closed(5) is True


def test_quit_after_pipelined_requests(pool4):
    """(keymux-only) Replies to requests pipelined before QUIT are all delivered before the close."""
    with pool4.proxy.client(timeout=5) as c:
        c.send_raw(b"".join(encode("SET", "%d:quitp" % i, "v") for i in range(50)) + encode("QUIT"))
        assert [c.read() for _ in range(51)] == [b"OK"] * 50 + [b"OK"]
        assert c.expect_closed(5) is True


def test_ping_with_message_and_echo(pool4):
    """(keymux-only) PING msg and ECHO msg reply with msg as a bulk string, exactly
    as redis does."""
    with pool4.proxy.client(timeout=5) as pc, pool4.direct.client() as dc:
        for args in (("PING", "hello"), ("PING", b"bin\r\n\x00"), ("ECHO", "hi there"),
                     ("ECHO", b""), ("ECHO", b"\r\n\x00\xff")):
            got = pc.call_raw(*args)
            assert got == dc.call_raw(*args), args
        assert pc.call("GET", "1:echo") is None


@pytest.fixture
def dead_pool(proxy_factory):
    """A proxy whose only backend address has no server listening."""
    return proxy_factory(["127.0.0.1:%d" % PORTS.get()], timeout=2000, label="deadpool")


def test_proxy_answers_without_backends(dead_pool):
    """PING is answered by the proxy itself: it works with no backend up; a keyed
    command gets an error reply (not a hang, not a close) and the connection lives."""
    with dead_pool.client(timeout=10) as c:
        assert c.call_raw("PING") == b"+PONG\r\n"
        reply = c.call("GET", "k", timeout=10)
        assert isinstance(reply, Error) and reply.startswith(b"ERR"), reply
        assert c.call_raw("PING") == b"+PONG\r\n"


def test_echo_without_backends(dead_pool):
    """(keymux-only) ECHO is answered by the proxy with no backend up."""
    with dead_pool.client(timeout=5) as c:
        assert c.call_raw("ECHO", "alone") == b"$5\r\nalone\r\n"
