"""--pace: with napping forced on (and off), many concurrent clients pipelining through the
proxy each get exactly their own replies, in order, and no request is lost."""

import threading

import pytest

CLIENTS = 24
ROUNDS = 40


@pytest.fixture(scope="module", params=["nap", "block"])
def paced(request, module_redis_factory, module_proxy_factory):
    backends = module_redis_factory(4)
    return module_proxy_factory(backends, label="pace-" + request.param,
                                argv_extra=["--pace", request.param])


def client_run(proxy, t, failures):
    """One client: rounds of one pipelined batch (SET, GET, MGET of its keys, INCR, DEL),
    every reply checked against what this client alone wrote."""
    try:
        c = proxy.redis()
        keys = ["pace:%d:%d" % (t, k) for k in range(5)]
        ctr = "pace:ctr:%d" % t
        c.delete(ctr, *keys)
        for r in range(ROUNDS):
            vals = [b"%d-%d-%d" % (t, r, k) + b"x" * (r * 37 % 300) for k in range(5)]
            p = c.pipeline(transaction=False)
            for k in range(5):
                p.set(keys[k], vals[k])
            p.get(keys[r % 5])
            p.mget(keys)
            p.incr(ctr)
            p.exists(*keys)
            got = p.execute()
            want = [True] * 5 + [vals[r % 5], vals, r + 1, 5]
            if got != want:
                failures.append((t, r, got, want))
                return
        c.close()
    except Exception as e:  # noqa: BLE001 (reported by the test)
        failures.append((t, "exception", repr(e)))


def test_concurrent_pipelines_get_their_own_replies(paced):
    failures = []
    threads = [threading.Thread(target=client_run, args=(paced, t, failures))
               for t in range(CLIENTS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not any(th.is_alive() for th in threads), "a client hung"
    assert failures == [], failures[:3]
    c = paced.redis()
    assert sum(int(c.get("pace:ctr:%d" % t)) for t in range(CLIENTS)) == CLIENTS * ROUNDS
    c.close()
