"""redis-benchmark (50 clients, with and without pipelining) through the proxy, with each
--pace policy (auto, and napping or blocking forced): it completes, reports no errors,
and every write reached the backends."""

import pytest

from helpers import run_bounded

TESTS = "set,get,incr,lpush,mset"
N = 20000


@pytest.fixture(scope="module", params=["auto", "nap", "block"])
def bench_pool(request, module_redis_factory, module_proxy_factory):
    backends = module_redis_factory(4)
    proxy = module_proxy_factory(backends, label="bench-" + request.param,
                                 argv_extra=["--pace", request.param])
    return proxy, backends


def error_lines(text):
    """Lines that report an error, except the start-up CONFIG warning that
    redis-benchmark prints when a proxy refuses CONFIG GET."""
    bad = []
    for line in text.splitlines():
        if "CONFIG" in line and ("WARN" in line or "Could not fetch" in line):
            continue
        if "ERR" in line or "Error" in line or "error" in line:
            bad.append(line)
    return bad


@pytest.mark.parametrize("pipeline", [1, 16])
def test_redis_benchmark(bench_pool, pipeline):
    """redis-benchmark -t set,get,incr,lpush,mset -n 20000 -c 50 -P {1,16} -q exits 0,
    prints a result for every test and no error line; the INCR counter and the list
    show that no request was lost."""
    proxy, backends = bench_pool
    with proxy.client() as c:
        before_list = c.call("LLEN", "mylist")
        before_ctr = int(c.call("GET", "counter:__rand_int__") or 0)
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(proxy.port), "-t", TESTS,
            "-n", str(N), "-P", str(pipeline), "-c", "50", "-q"]
    r = run_bounded(argv, timeout=120)
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    assert r.returncode == 0, out
    assert not error_lines(out), out
    results = [ln for ln in out.replace("\r", "\n").splitlines() if "requests per second" in ln]
    names = {ln.split(":")[0].strip().split()[0].upper() for ln in results}
    assert {"SET", "GET", "INCR", "LPUSH", "MSET"} <= names, out
    with proxy.client() as c:
        assert c.call("LLEN", "mylist") - before_list == N
        assert int(c.call("GET", "counter:__rand_int__")) - before_ctr == N
        assert len(c.call("GET", "key:__rand_int__")) == 3  # -d 3 by default
        assert c.call("PING") == b"PONG"
