"""Pipelining and client churn: long mixed pipelines checked reply by reply against
a lone redis, many concurrent pipelining clients, and clients that vanish mid-request
or with many requests in flight while others keep being served."""

import random
import socket
import struct
import threading
import time

import pytest

from helpers import RespConn, describe, encode, run_bounded


def mixed_commands(n, tag, seed):
    """n pseudo-random commands over ~150 keys of all kinds, including server errors."""
    rnd = random.Random(seed)
    keys = ["%d:%s" % (i, tag) for i in range(150)]
    out = []
    for _ in range(n):
        k = rnd.choice(keys)
        op = rnd.randrange(22)
        if op == 0:
            out.append(("SET", k, "v%d" % rnd.randrange(1000)))
        elif op == 1:
            out.append(("GET", k))
        elif op == 2:
            out.append(("INCR", "n" + k))  # counters live apart from strings
        elif op == 3:
            out.append(("APPEND", k, "x" * rnd.randrange(1, 40)))
        elif op == 4:
            out.append(("MGET",) + tuple(rnd.sample(keys, rnd.randrange(1, 8))))
        elif op == 5:
            out.append(("DEL",) + tuple(rnd.sample(keys, 2)))
        elif op == 6:
            # multi-key EXISTS sums are checked in test_redis_multikey.py
            out.append(("EXISTS", k))
        elif op == 7:
            out.append(("LPUSH", "l" + k, str(rnd.randrange(100))))
        elif op == 8:
            out.append(("LRANGE", "l" + k, "0", "5"))
        elif op == 9:
            out.append(("HSET", "h" + k, "f%d" % rnd.randrange(5), "v"))
        elif op == 10:
            out.append(("HGETALL", "h" + k))
        elif op == 11:
            out.append(("SADD", "s" + k, str(rnd.randrange(20))))
        elif op == 12:
            out.append(("SCARD", "s" + k))
        elif op == 13:
            a, b = rnd.sample(keys, 2)
            out.append(("MSET", a, "m1", b, "m2"))
        elif op == 14:
            out.append(("PING",))
        elif op == 15:
            out.append(("STRLEN", k))
        elif op == 16:
            out.append(("INCR", k))  # often an error: value is not an integer
        elif op == 17:
            out.append(("LPUSH", k, "x"))  # often WRONGTYPE
        elif op == 18:
            out.append(("ZADD", "z" + k, str(rnd.randrange(50)), "m%d" % rnd.randrange(9)))
        elif op == 19:
            out.append(("ZRANGE", "z" + k, "0", "-1", "WITHSCORES"))
        elif op == 20:
            out.append(("EXPIRE", k, "1000"))
        else:
            out.append(("TTL", k))
    return out


def test_ten_thousand_mixed_pipelined(pool4):
    """10,000 mixed commands sent as one pipeline on one connection: every reply, in
    order, has exactly the bytes a lone redis gives for the same pipeline."""
    cmds = mixed_commands(10000, "pipe10k", seed=1234)
    payload = b"".join(encode(*c) for c in cmds)
    with pool4.direct.client(timeout=30) as dc:
        want = dc.pipeline(payload, len(cmds), timeout=60)
    assert sum(1 for w in want if w.startswith(b"-")) > 50, "the mix should contain server errors"
    with pool4.proxy.client(timeout=30) as pc:
        got = pc.pipeline(payload, len(cmds), timeout=60)
        assert pc.call("PING") == b"PONG"
    bad = [(i, cmds[i], got[i], want[i]) for i in range(len(cmds)) if got[i] != want[i]]
    assert not bad, "%d replies differ; first: %s" % (len(bad), describe(bad[:5], 2000))


def _client_work(port, idx, nreq, results):
    """One concurrent client: pipelines nreq commands on its own keys, checks each reply."""
    try:
        cmds, want = [], []
        counter = 0
        for j in range(nreq // 4):
            k = "%d:%d:conc" % (j, idx)
            val = ("c%d-%d-" % (idx, j)).encode() * (1 + j % 7)
            cmds.append(("SET", k, val))
            want.append(b"OK")
            cmds.append(("GET", k))
            want.append(val)
            cmds.append(("INCR", "%d:ctr" % idx))
            counter += 1
            want.append(counter)
            cmds.append(("MGET", k, "%d:%d:none" % (j, idx), k))
            want.append([val, None, val])
        payload = b"".join(encode(*c) for c in cmds)
        with RespConn(port, timeout=30) as c:
            got = [v for v, _ in c.pipeline_values(payload, len(cmds), timeout=60)]
        bad = [(i, cmds[i], got[i], want[i]) for i in range(len(cmds)) if got[i] != want[i]]
        results[idx] = "ok" if not bad else "%d bad, first %s" % (len(bad), describe(bad[:3], 600))
    except Exception as e:  # reported by the main thread
        results[idx] = "exception: %r" % (e,)


def test_concurrent_pipelining_clients(pool4):
    """20 clients at once, each pipelining 500 commands on its own keys: every reply
    of every client is the right one (no cross-talk, no reordering)."""
    results = {}
    threads = [threading.Thread(target=_client_work, args=(pool4.proxy.port, i, 500, results),
                                daemon=True) for i in range(20)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 90
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "clients still running after 90s"
    assert results == {i: "ok" for i in range(20)}, results


def test_redis_py_pipeline(pool4):
    """redis-py's non-transactional pipeline of 2,000 commands gets the right replies."""
    r = pool4.proxy.redis()
    try:
        p = r.pipeline(transaction=False)
        for i in range(1000):
            p.set("%d:rpy" % i, i)
            p.incrby("%d:rpyn" % i, i)
        res = p.execute()
        assert res == [x for i in range(1000) for x in (True, i)]
        assert r.mget(["%d:rpy" % i for i in range(1000)]) == [str(i).encode() for i in range(1000)]
    finally:
        r.close()


def test_redis_cli_pipe_mode(pool4):
    """(keymux-only: needs ECHO) `redis-cli --pipe` mass insertion of 5,000 commands
    reports no errors and all replies; the data is there afterwards."""
    payload = b"".join(encode("SET", "%d:cpipe" % i, "v%d" % i) for i in range(5000))
    r = run_bounded(["redis-cli", "-h", "127.0.0.1", "-p", str(pool4.proxy.port), "--pipe",
                     "--pipe-timeout", "20"], timeout=40, input=payload)
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    assert r.returncode == 0, out
    assert "errors: 0, replies: 5000" in out, out
    with pool4.proxy.client() as c:
        assert c.call("MGET", "0:cpipe", "4999:cpipe") == [b"v0", b"v4999"]


# ---------------------------------------------------------------------------
# clients that go away


def _abort(sock):
    """Close with a TCP reset (SO_LINGER 0)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _check_healthy(pool, conn, tag):
    """conn still gets correct replies for single and multi-key commands."""
    assert conn.call("SET", "a:" + tag, "1") == b"OK"
    assert conn.call("INCR", "a:" + tag) == 2
    assert conn.call("MGET", "a:" + tag, "b:" + tag, "a:" + tag) == [b"2", None, b"2"]
    assert conn.call("DEL", "a:" + tag, "b:" + tag) == 1


@pytest.mark.parametrize("reset", [False, True], ids=["close", "reset"])
def test_client_disconnects_mid_request(pool4, reset):
    """A client that sends half a bulk and vanishes (FIN or RST) leaves the proxy up,
    the half request unexecuted, and a client connected meanwhile correctly served."""
    with pool4.proxy.client() as other:
        _check_healthy(pool4, other, "mid0")
        for i in range(20):
            key = "%d:half:%s" % (i, reset)
            s = socket.create_connection(("127.0.0.1", pool4.proxy.port), timeout=5)
            body = b"y" * 100
            req = encode("SET", key, body)
            s.sendall(req[:len(req) - 60])  # half of the value, no CRLF
            time.sleep(0.005)
            if reset:
                _abort(s)
            else:
                s.close()
            _check_healthy(pool4, other, "mid%d" % i)
        time.sleep(0.1)
        for i in range(20):
            assert pool4.locate("%d:half:%s" % (i, reset)) == [], "half request was executed"
    with pool4.proxy.client() as fresh:
        _check_healthy(pool4, fresh, "midfresh")


@pytest.mark.parametrize("reset", [False, True], ids=["close", "reset"])
def test_client_disconnects_with_requests_in_flight(pool4, reset):
    """A client that pipelines 1000 requests (single and multi-key, over all servers)
    and disconnects without reading leaves the proxy up; others keep correct replies."""
    with pool4.proxy.client() as other:
        for round_ in range(5):
            cmds = []
            for i in range(1000):
                k = "%d:inflight" % i
                cmds.append(("SET", k, "v" * 200) if i % 3 else ("MGET", k, "%d:x" % i, "%d:y" % i))
            s = socket.create_connection(("127.0.0.1", pool4.proxy.port), timeout=5)
            try:
                s.sendall(b"".join(encode(*c) for c in cmds))
            except OSError:
                pass  # the proxy may refuse a client that does not read; fine here
            if reset:
                _abort(s)
            else:
                s.close()
            _check_healthy(pool4, other, "inflight%d" % round_)
    time.sleep(0.2)
    with pool4.proxy.client() as fresh:
        _check_healthy(pool4, fresh, "inflightfresh")
        assert fresh.call("SET", "2:inflight", "final") == b"OK"
        assert fresh.call("GET", "2:inflight") == b"final"
