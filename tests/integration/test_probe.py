"""The probe of an ejected server (auto_eject_hosts): once its retry time has passed, a
server is asked on a fresh connection (Redis PING, after AUTH when the pool has a
password; memcached `version`) and rejoins the ring only when it answers within the
pool's timeout. A server that accepts connections but does not answer (stopped with
SIGSTOP: the kernel still completes the handshakes) stays out across several retry
periods while its keys are served by the others; a killed one stays out until it is
restarted. Real redis-servers and memcached; every wait is bounded."""

import http.client
import signal

from prometheus_client.parser import text_string_to_metric_families

import helpers
from helpers import wait_for
from mcfix import PORTS as MC_PORTS
from mcfix import mc_env, mc_keymux_bin  # noqa: F401 (fixtures)
from mcfix import pool_yaml as mc_pool_yaml
from mcfix import server_line as mc_server_line

RETRY_MS = 500


def log_text(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def count(text, s):
    return text.count(s)


def assert_probed_back(log, pool, addr):
    """The log has a successful probe of addr, then its return to the ring."""
    ok = log.find("pool %s: server %s: probe ok" % (pool, addr))
    back = log.find("pool %s: server %s back in the ring" % (pool, addr), max(ok, 0))
    assert 0 <= ok < back, log[-4000:]


def eject(c, key, value):
    """Send requests for key until one succeeds (the first fails and ejects its server)."""
    replies = []

    def remapped():
        replies.append(c.call("SET", key, value, timeout=10))
        return replies[-1] == b"OK"
    assert wait_for(remapped, 10, step=0.05), "the server was not ejected: %s" % replies


def test_silent_server_stays_out_until_it_answers(redis_factory, proxy_factory):
    backends = redis_factory(3)
    addrs = [b.addr for b in backends]
    victim = backends[2]
    p = proxy_factory(backends, timeout=500, auto_eject_hosts=True, server_failure_limit=1,
                      server_retry_timeout=RETRY_MS)
    vkeys = helpers.keys_on(addrs, 2, 6, prefix="silent:")
    failed = "pool alpha: server %s: probe failed" % victim.addr
    with p.client(timeout=10) as c:
        for k in vkeys:
            assert c.call("SET", k, "before") == b"OK"
        victim.pause()
        try:
            eject(c, vkeys[0], "out")
            # several retry periods: each probe connects (the kernel accepts for the
            # stopped server) and gets no answer; the keys stay with the others
            assert wait_for(lambda: count(log_text(p.log_path), failed) >= 3, 15, step=0.1), \
                p.log_tail()
            for k in vkeys:
                assert c.call("SET", k, "out") == b"OK", k
                assert c.call("GET", k) == b"out", k
                where = helpers.ketama_server_for(k, addrs[:2])
                with backends[where].client() as d:
                    assert d.call("GET", k) == b"out", "key %s not on %s" % (k, addrs[where])
            log = log_text(p.log_path)
            assert "%s: no answer within 500 ms" % failed in log, log[-4000:]
            assert "server %s back in the ring" % victim.addr not in log, log[-4000:]
        finally:
            victim.resume()
        assert helpers.wait_keys_home(c, victim, vkeys), \
            "the server did not come back:\n" + p.log_tail()
    assert_probed_back(log_text(p.log_path), "alpha", victim.addr)
    assert p.stats()["alpha"]["server_ejects"] == 1
    # the probes are counted in the metrics: the failed ones, and the one that answered
    fails = count(log_text(p.log_path), failed)
    server = [k for k in p.stats()["alpha"] if k.startswith(victim.addr)][0]
    fams = {f.name: f for f in text_string_to_metric_families(scrape(p))}
    got = {s.name: s.value for f in ("keymux_server_probes", "keymux_server_probe_failures")
           for s in fams[f].samples if s.labels["server"] == server}
    assert got == {"keymux_server_probes_total": fails + 1,
                   "keymux_server_probe_failures_total": fails}, got


def scrape(p):
    c = http.client.HTTPConnection("127.0.0.1", p.stats_port, timeout=5)
    try:
        c.request("GET", "/metrics")
        return c.getresponse().read().decode()
    finally:
        c.close()


def test_restarted_server_rejoins_after_probe(redis_factory, proxy_factory):
    backends = redis_factory(3, password="s3cret")
    addrs = [b.addr for b in backends]
    victim = backends[0]
    p = proxy_factory(backends, timeout=1000, auto_eject_hosts=True, server_failure_limit=1,
                      server_retry_timeout=RETRY_MS, redis_auth="s3cret")
    vkeys = helpers.keys_on(addrs, 0, 6, prefix="restart:")
    failed = "pool alpha: server %s: probe failed: connect: Connection refused" % victim.addr
    with p.client(timeout=10) as c:
        assert c.call("AUTH", "s3cret") == b"OK"
        for k in vkeys:
            assert c.call("SET", k, "before") == b"OK"
        victim.kill()
        eject(c, vkeys[0], "out")
        assert wait_for(lambda: count(log_text(p.log_path), failed) >= 2, 15, step=0.1), \
            p.log_tail()
        assert "server %s back in the ring" % victim.addr not in log_text(p.log_path)
        for k in vkeys:
            assert c.call("SET", k, "out") == b"OK", k
        victim.restart()
        assert helpers.wait_keys_home(c, victim, vkeys), \
            "the server did not come back:\n" + p.log_tail()
    assert_probed_back(log_text(p.log_path), "alpha", victim.addr)


def test_memcached_probe(mc_env):  # noqa: F811 (the fixture)
    mcs = [mc_env.memcached() for _ in range(3)]
    addrs = ["%s:%d" % m.addr for m in mcs]
    victim = mcs[1]
    port = MC_PORTS.get()
    conf = mc_pool_yaml("beta", port, [mc_server_line(*m.addr) for m in mcs], timeout=500,
                        auto_eject_hosts="true", server_failure_limit=1,
                        server_retry_timeout=RETRY_MS)
    p = mc_env.proxy(conf, port)
    vkeys = helpers.keys_on(addrs, 1, 4, prefix="mcp:")
    failed = "pool beta: server %s: probe failed" % addrs[1]

    def set_(c, k, v):
        return c.call(b"set %s 0 0 %d\r\n%s\r\n" % (k.encode(), len(v), v), marker=b"\r\n")

    def on_victim(k, v):
        r = victim.raw()
        try:
            return r.call(b"get %s\r\n" % k.encode(), marker=b"END\r\n") == \
                b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (k.encode(), len(v), v)
        finally:
            r.close()

    c = p.raw()
    try:
        for k in vkeys:
            assert set_(c, k, b"before") == b"STORED\r\n"
        assert all(on_victim(k, b"before") for k in vkeys)
        victim.proc.send_signal(signal.SIGSTOP)
        try:
            assert wait_for(lambda: set_(c, vkeys[0], b"out") == b"STORED\r\n", 10, step=0.05)
            assert wait_for(lambda: count(log_text(p.log), failed) >= 3, 15, step=0.1), \
                p.log_tail()
            for k in vkeys:
                assert set_(c, k, b"out") == b"STORED\r\n", k
            assert "server %s back in the ring" % addrs[1] not in log_text(p.log)
        finally:
            victim.proc.send_signal(signal.SIGCONT)
        assert wait_for(lambda: set_(c, vkeys[1], b"home") == b"STORED\r\n"
                        and on_victim(vkeys[1], b"home"), 15, step=0.1), p.log_tail()
        for k in vkeys:
            assert set_(c, k, b"home") == b"STORED\r\n"
        assert all(on_victim(k, b"home") for k in vkeys)
    finally:
        c.close()
    assert_probed_back(log_text(p.log), "beta", addrs[1])
