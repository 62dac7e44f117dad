"""Limits against hostile or broken clients: what a client declares is checked before
anything is allocated for it, over-limit requests get a clear error and never affect
other clients, and a client that does not read its replies is cut off."""
import socket
import time

from helpers import Error, RespConn, encode


def _proxy(redis_factory, proxy_factory, **limits):
    backends = redis_factory(2)
    return proxy_factory(backends, **limits), backends


def _rss(proxy):
    with open("/proc/%d/status" % proxy.proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for the proxy")


def _healthy(proxy):
    """Another client, connected now, is served normally."""
    with RespConn(proxy.port) as c:
        assert c.call("SET", "healthy", "yes") == b"OK"
        assert c.call("GET", "healthy") == b"yes"


def test_bulk_over_max_bulk_length_is_refused_and_closed(redis_factory, proxy_factory):
    """A bulk longer than max_bulk_length gets -ERR at its header and the client is closed."""
    proxy, _ = _proxy(redis_factory, proxy_factory, max_bulk_length=1000)
    with RespConn(proxy.port) as c:
        assert c.call("SET", "small", "x" * 1000) == b"OK"
        c.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1001\r\n")
        reply = c.read()
        assert isinstance(reply, Error) and b"invalid bulk length" in reply
        assert c.expect_closed() is True
    _healthy(proxy)


def test_four_gigabyte_declared_bulk(redis_factory, proxy_factory):
    """A 4 GB bulk declaration is refused at once with the default limits: nothing waits
    for 4 GB to arrive and the proxy's memory does not move."""
    proxy, _ = _proxy(redis_factory, proxy_factory)
    rss_before = _rss(proxy)
    with RespConn(proxy.port) as c:
        c.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4294967296\r\n")
        reply = c.read(timeout=5)
        assert isinstance(reply, Error) and b"invalid bulk length" in reply
        assert c.expect_closed() is True
    assert _rss(proxy) - rss_before < 16 << 20
    _healthy(proxy)


def test_multibulk_over_max_multibulk_length(redis_factory, proxy_factory):
    """More arguments than max_multibulk_length are refused at the count."""
    proxy, _ = _proxy(redis_factory, proxy_factory, max_multibulk_length=10)
    with RespConn(proxy.port) as c:
        assert c.call("MGET", *["k%d" % i for i in range(9)]) == [None] * 9
        c.send_raw(b"*11\r\n")
        reply = c.read()
        assert isinstance(reply, Error) and b"invalid multibulk length" in reply
        assert c.expect_closed() is True
    _healthy(proxy)


def test_request_over_max_request_size(redis_factory, proxy_factory):
    """A request whose bytes exceed max_request_size is refused once it crosses the
    limit, even though each bulk on its own is allowed."""
    proxy, _ = _proxy(redis_factory, proxy_factory, max_request_size=4096)
    with RespConn(proxy.port) as c:
        assert c.call("MSET", "a", "x" * 1000, "b", "y" * 1000) == b"OK"
        c.send_raw(encode("MSET", *(["k", "v" * 1000] * 5)))
        reply = c.read()
        assert isinstance(reply, Error) and b"max_request_size" in reply
        assert c.expect_closed() is True
    _healthy(proxy)


def test_client_that_does_not_read_is_closed(redis_factory, proxy_factory):
    """A client pipelining GETs of a 1 MB value without reading the replies is closed
    once more than client_output_limit bytes of replies are queued for it; the event
    is logged and other clients are unaffected."""
    proxy, _ = _proxy(redis_factory, proxy_factory, client_output_limit=4 << 20)
    with RespConn(proxy.port) as c:
        assert c.call("SET", "big", "v" * (1 << 20)) == b"OK"
    s = socket.create_connection(("127.0.0.1", proxy.port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    closed = False
    deadline = time.monotonic() + 20
    try:
        for _ in range(200):
            if time.monotonic() > deadline:
                break
            s.sendall(encode("GET", "big") * 4)
            time.sleep(0.01)
    except (BrokenPipeError, ConnectionResetError):
        closed = True
    if not closed:
        # the proxy closed its side: reading drains what was sent, then EOF or reset
        s.settimeout(5)
        try:
            while s.recv(1 << 20):
                pass
            closed = True
        except ConnectionResetError:
            closed = True
        except socket.timeout:
            closed = False
    s.close()
    assert closed, "a client that never reads was not cut off"
    log = proxy.log_tail()
    assert "client_output_limit" in log
    _healthy(proxy)


def test_memcached_value_over_max_value_size(tmp_path):
    """A memcached pool refuses a value over max_value_size with SERVER_ERROR, drops its
    bytes as they arrive, and the same connection goes on."""
    from mcfix import PORTS as MC_PORTS, Env, pool_yaml, server_line
    env = Env(str(tmp_path))
    try:
        mc = env.memcached()
        port = MC_PORTS.get()
        proxy = env.proxy(pool_yaml("beta", port, [server_line("127.0.0.1", mc.port)],
                                    max_value_size=1000), port)
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
            s.sendall(b"set a 0 0 1000\r\n" + b"x" * 1000 + b"\r\n")
            assert s.recv(100) == b"STORED\r\n"
            s.sendall(b"set b 0 0 1001\r\n" + b"y" * 1001 + b"\r\nget a b\r\n")
            buf = b""
            while not buf.endswith(b"END\r\n"):
                chunk = s.recv(65536)
                assert chunk, "connection closed"
                buf += chunk
            assert buf.startswith(b"SERVER_ERROR object too large for cache\r\n")
            assert buf.endswith(b"VALUE a 0 1000\r\n" + b"x" * 1000 + b"\r\nEND\r\n")
    finally:
        env.stop_all()
