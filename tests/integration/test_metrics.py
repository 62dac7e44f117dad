"""HTTP on the stats port: GET /metrics (Prometheus text format 0.0.4), /stats (the same
JSON as the raw port), /health (200, or 503 naming the pools without a live server).

Against real redis-servers behind keymux: the exposition parsed with prometheus_client's
parser and checked with promtool; its counters agree with the requests sent and with the
JSON; a client that sends nothing still gets the JSON; bad, huge, unknown and non-GET
requests get 400/404/405; /health follows a backend killed and restarted; slow scrapers
hold nothing of the request path."""

import http.client
import json
import os
import re
import shutil
import socket
import subprocess

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from helpers import RespConn, wait_for


def get(proxy, path, method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", proxy.stats_port, timeout=5)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def raw(proxy, data, timeout=5):
    """What the stats port answers to data (then the client's EOF), read to its close."""
    with socket.create_connection(("127.0.0.1", proxy.stats_port), timeout=timeout) as s:
        if data:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            out += b
        return out


def families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def sample(fams, family, name, **labels):
    got = [s.value for s in fams[family].samples
           if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(got) == 1, (name, labels, got)
    return got[0]


@pytest.fixture
def pool2(redis_factory, proxy_factory):
    backends = redis_factory(2)
    return proxy_factory(backends, label="metrics", hash="md5"), backends


def test_metrics_parse_and_agree_with_requests(pool2):
    proxy, backends = pool2
    with RespConn(proxy.port) as c:
        for i in range(100):
            assert c.call("SET", "k%d" % i, "v") == b"OK"
        for i in range(50):
            assert c.call("GET", "k%d" % i) == b"v"
    status, headers, body = get(proxy, "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    fams = families(text)
    assert fams["keymux_server_requests"].type == "counter"
    assert fams["keymux_client_connections"].type == "gauge"
    doc = proxy.stats()["alpha"]
    servers = [k for k, v in doc.items() if isinstance(v, dict)]
    assert len(servers) == len(backends)
    reqs = [sample(fams, "keymux_server_requests", "keymux_server_requests_total",
                   pool="alpha", server=s) for s in servers]
    assert sum(reqs) == 150 and all(r > 0 for r in reqs)
    # the same figures as the JSON, server by server
    for s, r in zip(servers, reqs):
        assert doc[s]["requests"] == r
        assert sample(fams, "keymux_server_responses", "keymux_server_responses_total",
                      pool="alpha", server=s) == doc[s]["responses"]
        assert sample(fams, "keymux_server_up", "keymux_server_up", pool="alpha",
                      server=s) == 1
    assert sample(fams, "keymux_info", "keymux_info", version=proxy.stats()["version"]) == 1
    # Prometheus conventions: counters end in _total; every family has HELP and TYPE
    types = [l.split() for l in text.splitlines() if l.startswith("# TYPE ")]
    helps = {l.split()[2] for l in text.splitlines() if l.startswith("# HELP ")}
    assert types and all(t[3] != "counter" or t[2].endswith("_total") for t in types)
    assert {t[2] for t in types} == helps


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian's prometheus) missing")
def test_promtool_accepts_the_exposition(pool2):
    proxy, _ = pool2
    with RespConn(proxy.port) as c:
        assert c.call("SET", "a", "1") == b"OK"
    _, _, body = get(proxy, "/metrics")
    r = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True,
                       timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == b"" and r.stderr.strip() == b"", r.stdout + r.stderr


def test_stats_json_over_http_and_raw(pool2):
    proxy, _ = pool2
    status, headers, body = get(proxy, "/stats")
    assert status == 200 and headers["Content-Type"] == "application/json"
    over_http = json.loads(body)
    raw_doc = json.loads(raw(proxy, b""))   # a client that sends nothing: the JSON
    for doc in (over_http, raw_doc):
        assert doc["service"] == "keymux" and "alpha" in doc
    assert set(over_http["alpha"]) == set(raw_doc["alpha"])
    status, _, body = get(proxy, "/")   # what `curl host:port` read from twemproxy
    assert status == 200 and json.loads(body)["service"] == "keymux"
    # a client that sends something that is no HTTP request gets the JSON too
    assert json.loads(raw(proxy, b"stats\r\n"))["service"] == "keymux"


def test_bad_requests(pool2):
    proxy, _ = pool2
    assert raw(proxy, b"GET /metrics HTTP/9.9\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(proxy, b"GET metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(proxy, b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n").startswith(
        b"HTTP/1.1 400 ")
    huge = b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n"
    assert raw(proxy, huge).startswith(b"HTTP/1.1 400 ")
    headers = b"GET /metrics HTTP/1.1\r\n" + b"X-A: b\r\n" * 2000 + b"\r\n"
    assert raw(proxy, headers).startswith(b"HTTP/1.1 400 ")
    # a request cut short by the client's EOF
    assert raw(proxy, b"GET /metrics HTT").startswith(b"HTTP/1.1 400 ")
    status, _, body = get(proxy, "/nothing")
    assert status == 404 and b"/metrics" in body
    status, headers, _ = get(proxy, "/metrics", method="POST")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    status, headers, body = get(proxy, "/metrics", method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0
    # a query string is not part of the path
    assert get(proxy, "/health?verbose=1")[0] == 200
    # the port still serves after all of that
    assert proxy.alive() and get(proxy, "/metrics")[0] == 200


def test_health_follows_a_backend(redis_factory, proxy_factory):
    backend = redis_factory(1)[0]
    proxy = proxy_factory([backend], label="health", timeout=500, server_failure_limit=1)
    status, _, body = get(proxy, "/health")
    assert (status, body) == (200, b"ok\n")
    backend.kill()
    r = proxy.redis()
    with pytest.raises(redis.exceptions.ResponseError):
        r.get("k")   # the server is down: an error reply
    status, _, body = get(proxy, "/health")
    assert status == 503 and body == b"no live server in pool alpha\n", body
    fams = families(get(proxy, "/metrics")[2].decode())
    assert sample(fams, "keymux_pool_servers_live", "keymux_pool_servers_live",
                  pool="alpha") == 0
    backend.restart()
    assert wait_for(lambda: _get_ok(r), 10)
    status, _, body = get(proxy, "/health")
    assert (status, body) == (200, b"ok\n")


def _get_ok(r):
    try:
        r.get("k")
        return True
    except Exception:
        return False


def test_slow_scrapers_hold_nothing_of_the_request_path(pool2):
    proxy, _ = pool2
    slow = []
    try:
        for _ in range(100):
            s = socket.create_connection(("127.0.0.1", proxy.stats_port), timeout=5)
            s.sendall(b"GET /metr")   # and never the rest
            slow.append(s)
        with RespConn(proxy.port) as c:
            for i in range(200):
                assert c.call("SET", "s%d" % i, "v") == b"OK"
                assert c.call("GET", "s%d" % i) == b"v"
    finally:
        for s in slow:
            s.close()
    # once they are gone the port answers again
    assert wait_for(lambda: _scrape_ok(proxy), 10)


def _scrape_ok(proxy):
    try:
        return get(proxy, "/metrics")[0] == 200
    except (OSError, http.client.HTTPException):
        return False


def test_dashboard_uses_metrics_that_exist(pool2):
    proxy, _ = pool2
    path = os.path.join(os.path.dirname(__file__), "..", "..", "contrib", "grafana-keymux.json")
    with open(path) as f:
        exprs = [t["expr"] for p in json.load(f)["panels"] for t in p["targets"]]
    used = {n for e in exprs for n in re.findall(r"keymux_[a-z_]+", e)}
    text = get(proxy, "/metrics")[2].decode()
    have = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    assert used and used <= have, used - have


def test_latency_histograms_count_the_requests(pool2):
    proxy, backends = pool2
    with RespConn(proxy.port) as c:
        for i in range(120):
            assert c.call("SET", "h%d" % i, "v") == b"OK"
        assert c.call("PING") == b"PONG"   # answered by the proxy: no server time
        for i in range(0, 120, 3):
            assert c.call("MGET", "h%d" % i, "h%d" % (i + 1), "h%d" % (i + 2)) == [b"v"] * 3
    text = get(proxy, "/metrics")[2].decode()
    fams = families(text)
    pool = fams["keymux_request_duration_seconds"]
    assert pool.type == "histogram"
    got = {s.name: s.value for s in pool.samples if s.labels["pool"] == "alpha" and
           s.labels.get("le") in (None, "+Inf")}
    # every request the client made, once, whatever it became inside
    assert got["keymux_request_duration_seconds_count"] == 120 + 1 + 40
    assert got["keymux_request_duration_seconds_bucket"] == 161
    assert got["keymux_request_duration_seconds_sum"] > 0
    # per server: every request and fragment written, as the requests counters say
    reqs = fams["keymux_server_requests"]
    srv = fams["keymux_server_request_duration_seconds"]
    total = 0
    for s in reqs.samples:
        server = s.labels["server"]
        count = [x.value for x in srv.samples if x.name.endswith("_count") and
                 x.labels["server"] == server]
        assert count == [s.value], (server, count, s.value)
        total += s.value
        buckets = [x for x in srv.samples if x.name.endswith("_bucket") and
                   x.labels["server"] == server]
        values = [x.value for x in buckets]
        assert values == sorted(values) and values[-1] == s.value
        assert buckets[-1].labels["le"] == "+Inf" and len(buckets) == 20
    # 120 SETs and the MGETs' fragments: at least one per MGET, at most one per key
    assert 160 <= total <= 240
