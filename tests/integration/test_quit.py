"""QUIT ends a connection's requests: what came before it is answered, QUIT itself gets
its reply (Redis +OK, memcached none), the connection closes, and nothing after it is
forwarded, however the bytes are split across reads. The backends are asked directly
whether a request after QUIT ran."""

import socket
import time

from helpers import encode
from mcfix import mc4, mc4_alive, mc_env, mc_keymux_bin  # noqa: F401 (fixtures)
from mcfix import PORTS as MC_PORTS, pool_yaml as mc_pool_yaml, server_line as mc_server_line, uniq


def _exchange(port, pieces, gap=0.02, timeout=5.0):
    """Send pieces one write each (gap seconds apart), then read to EOF. Returns
    (bytes received, closed by the proxy)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        for i, p in enumerate(pieces):
            if i > 0:
                time.sleep(gap)
            try:
                s.sendall(p)
            except (BrokenPipeError, ConnectionResetError):
                break   # the proxy closed after QUIT: what is left was never to be run
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                return data, True
            except socket.timeout:
                return data, False
            if not chunk:
                return data, True
            data += chunk
        return data, False
    finally:
        s.close()


def _get_direct(backend, key):
    with backend.client() as c:
        return c.call("GET", key)


def test_redis_quit_in_one_write(redis_factory, proxy_factory):
    """SET a 1, QUIT, SET a 2 in one write: +OK, +OK, closed, and a stays 1."""
    b = redis_factory(1)[0]
    p = proxy_factory([b])
    stream = encode("SET", "q:a", "1") + encode("QUIT") + encode("SET", "q:a", "2")
    got, closed = _exchange(p.port, [stream])
    assert got == b"+OK\r\n+OK\r\n"
    assert closed, "the connection stayed open after QUIT"
    assert _get_direct(b, "q:a") == b"1", "a request after QUIT was executed"
    with p.client() as c:   # the proxy still serves others
        assert c.call("GET", "q:a") == b"1"


def test_redis_quit_every_split(redis_factory, proxy_factory):
    """The same stream cut at every byte into two writes, and inline commands too:
    never a request after QUIT, always both replies, always closed."""
    b = redis_factory(1)[0]
    p = proxy_factory([b])
    streams = [
        encode("SET", "q:s", "1") + encode("QUIT") + encode("SET", "q:s", "2"),
        b"SET q:s 1\r\nQUIT\r\nSET q:s 2\r\n",
    ]
    for stream in streams:
        for cut in range(1, len(stream)):
            with b.client() as c:
                assert c.call("DEL", "q:s") in (0, 1)
            got, closed = _exchange(p.port, [stream[:cut], stream[cut:]], gap=0.01)
            assert got == b"+OK\r\n+OK\r\n", "cut at %d of %r: %r" % (cut, stream, got)
            assert closed, "cut at %d: not closed" % cut
            assert _get_direct(b, "q:s") == b"1", "cut at %d: the SET after QUIT ran" % cut


def test_redis_quit_waits_for_earlier_replies(redis_factory, proxy_factory):
    """Requests before QUIT that go to different servers (and a split MGET) are all
    answered, in order, before the close."""
    backends = redis_factory(3)
    p = proxy_factory(backends)
    keys = ["q:w%d" % i for i in range(12)]
    stream = b"".join(encode("SET", k, k) for k in keys)
    stream += encode("MGET", *keys) + encode("QUIT") + encode("DEL", *keys)
    got, closed = _exchange(p.port, [stream])
    mget = b"*12\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(k), k.encode()) for k in keys)
    assert got == b"+OK\r\n" * 12 + mget + b"+OK\r\n"
    assert closed
    with p.client() as c:
        assert c.call("EXISTS", *keys) == 12, "the DEL after QUIT ran"


def test_memcached_quit(mc_env):
    """memcached: set, quit, set in one write, and cut at every byte: STORED, then the
    close (quit has no reply); the set after quit never runs."""
    m = mc_env.memcached()
    port = MC_PORTS.get()
    mc_env.proxy(mc_pool_yaml("gamma", port, [mc_server_line(m.host, m.port)]), port)
    key = uniq("quit") + b"k"
    stream = (b"set %s 0 0 1\r\n1\r\n" % key + b"quit\r\n" +
              b"set %s 0 0 1\r\n2\r\n" % key)
    cuts = [None] + list(range(1, len(stream)))
    for cut in cuts:
        r = m.raw()
        assert r.call(b"delete %s\r\n" % key, marker=b"\r\n") in (b"DELETED\r\n", b"NOT_FOUND\r\n")
        r.close()
        pieces = [stream] if cut is None else [stream[:cut], stream[cut:]]
        got, closed = _exchange(port, pieces, gap=0.01)
        assert got == b"STORED\r\n", "cut at %s: %r" % (cut, got)
        assert closed, "cut at %s: not closed" % cut
        r = m.raw()
        assert r.call(b"get %s\r\n" % key, marker=b"END\r\n") == \
            b"VALUE %s 0 1\r\n1\r\nEND\r\n" % key, "cut at %s: the set after quit ran" % cut
        r.close()


def test_memcached_quit_after_multiget(mc4_alive):
    """A multi-get over 4 servers, then quit, then a delete: the values, END, close;
    the delete never runs."""
    p = uniq("qm")
    keys = [b"%d%s" % (i, p) for i in range(8)]
    r = mc4_alive.raw()
    for k in keys:
        assert r.call(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(k), k), 8) == b"STORED\r\n"
    r.close()
    stream = b"get " + b" ".join(keys) + b"\r\nquit\r\n" + b"delete " + keys[0] + b"\r\n"
    got, closed = _exchange(mc4_alive.port, [stream])
    want = b"".join(b"VALUE %s 0 %d\r\n%s\r\n" % (k, len(k), k) for k in keys) + b"END\r\n"
    assert got == want
    assert closed
    r = mc4_alive.raw()
    assert r.call(b"get %s\r\n" % keys[0], marker=b"END\r\n").startswith(b"VALUE"), \
        "the delete after quit ran"
    r.close()
