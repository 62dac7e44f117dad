"""server_connections > 1: clients spread over several connections to each server, and
one client's requests to a server still run in the order the client sent them."""
import threading

from helpers import RespConn, encode, nworkers


def _proxy_clients(backend):
    with RespConn(backend.port) as c:
        info = c.call("CLIENT", "LIST").decode()
    return [line for line in info.splitlines() if "cmd=client" not in line]


def test_connections_spread_and_order_kept(redis_factory, proxy_factory):
    """With server_connections 4, eight clients end up on several connections to the one
    backend (4 per worker at most), and each client's SET/GET pairs read back exactly what
    it just wrote."""
    (backend,) = redis_factory(1)
    proxy = proxy_factory([backend], server_connections=4)
    errors = []

    def worker(n):
        try:
            with RespConn(proxy.port) as c:
                payload = b"".join(encode("SET", "k%d" % n, str(i)) + encode("GET", "k%d" % n)
                                   for i in range(500))
                replies = c.pipeline_values(payload, 1000)
                for i in range(500):
                    if replies[2 * i][0] != b"OK" or replies[2 * i + 1][0] != str(i).encode():
                        errors.append((n, i, replies[2 * i][0], replies[2 * i + 1][0]))
                        return
        except Exception as e:  # reported below with the others
            errors.append((n, repr(e)))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a client did not finish"
    assert errors == []
    conns = _proxy_clients(backend)
    # server_connections is per worker: each worker holds up to 4
    assert 2 <= len(conns) <= 4 * nworkers(), conns
