"""A refused MULTI must not run its body. Transactions are not served yet: MULTI is
refused, every command up to EXEC or DISCARD is refused without being forwarded, EXEC
answers EXECABORT and DISCARD +OK. Checked with raw RESP (one command at a time and
pipelined), redis-py's transactional pipeline() and transaction(), redis-rb's multi {}
(Debian's ruby-redis), and the exact bytes node-redis, ioredis, go-redis and Jedis send
for a transaction (docs/CLIENTS.md). After each: the client saw a failure, nothing was
written on any backend (asked directly), and the connection still works."""

import os
import shutil

import pytest
import redis

from helpers import Error, describe, encode, run_bounded

MULTI_ERR = b"ERR MULTI is not supported by the proxy; the commands up to EXEC or DISCARD are refused"
REFUSED = b"ERR command not executed: it follows a MULTI the proxy refused (EXEC or DISCARD ends it)"
EXECABORT = b"EXECABORT Transaction discarded because of previous errors."


@pytest.fixture(scope="module")
def tx(module_redis_factory, module_proxy_factory):
    backends = module_redis_factory(2)
    direct = module_redis_factory(1)[0]
    proxy = module_proxy_factory(backends, label="tx")
    return proxy, backends, direct


@pytest.fixture
def clean(tx):
    """The pool with every backend emptied; yields (proxy, backends)."""
    proxy, backends, _ = tx
    for b in backends:
        b.flushall()
    return proxy, backends


def total_keys(backends):
    n = 0
    for b in backends:
        with b.client() as c:
            n += c.call("DBSIZE")
    return n


def assert_works(proxy, backends, key):
    """The proxy still serves writes, and they do reach a backend (the check above can fail)."""
    with proxy.client() as c:
        assert c.call("SET", key, "after") == b"OK"
    assert total_keys(backends) == 1
    with proxy.client() as c:
        assert c.call("DEL", key) == 1


def test_multi_body_not_run(clean):
    proxy, backends = clean
    with proxy.client() as c:
        assert c.call("MULTI") == MULTI_ERR
        assert c.call("SET", "tx:k", "1") == REFUSED
        assert c.call("INCR", "tx:k") == REFUSED
        assert c.call("MSET", "tx:a", "1", "tx:b", "2") == REFUSED
        assert c.call("NOSUCHCMD") == REFUSED
        assert c.call("MULTI") == b"ERR MULTI calls can not be nested"
        r = c.call_raw("EXEC")
        assert r == b"-" + EXECABORT + b"\r\n", r
        assert total_keys(backends) == 0
        assert c.call("GET", "tx:k") is None
        assert c.call("SET", "tx:k", "2") == b"OK" and c.call("GET", "tx:k") == b"2"
    assert total_keys(backends) == 1


def test_pipelined_multi_set_exec_get(clean):
    """MULTI, SET, EXEC and GET in one write: the replies in order, nothing written."""
    proxy, backends = clean
    with proxy.client() as c:
        c.send_raw(encode("MULTI") + encode("SET", "tx:p", "1") + encode("EXEC") + encode("GET", "tx:p"))
        replies = [c.read() for _ in range(4)]
        assert replies == [MULTI_ERR, REFUSED, EXECABORT, None], replies
        assert all(isinstance(r, Error) for r in replies[:3])
    assert total_keys(backends) == 0
    assert_works(proxy, backends, "tx:p")


def test_discard_ends_the_refusal(clean):
    proxy, backends = clean
    with proxy.client() as c:
        assert c.call("MULTI") == MULTI_ERR
        assert c.call("SET", "tx:d", "1") == REFUSED
        assert c.call("DISCARD") == b"OK"
        assert total_keys(backends) == 0
        assert c.call("SET", "tx:d", "2") == b"OK"
    assert total_keys(backends) == 1


def test_refusal_is_per_client(clean):
    """One client's refused MULTI does not touch another client's commands."""
    proxy, backends = clean
    with proxy.client() as a, proxy.client() as b:
        assert a.call("MULTI") == MULTI_ERR
        assert b.call("SET", "tx:other", "v") == b"OK"
        assert a.call("SET", "tx:mine", "v") == REFUSED
        assert a.call("EXEC") == EXECABORT
    assert total_keys(backends) == 1


def test_exec_discard_watch_outside_multi(tx):
    """EXEC / DISCARD without MULTI: Redis's own errors. WATCH cannot work through the
    proxy (it would need the transaction's server connection): unsupported. UNWATCH:
    +OK, nothing being watched, so that a library's clean-up passes."""
    proxy, _, direct = tx
    with proxy.client() as c, direct.client() as d:
        for args in (("EXEC",), ("DISCARD",), ("UNWATCH",)):
            assert c.call_raw(*args) == d.call_raw(*args), args
        assert c.call("WATCH", "tx:w") == b"ERR unsupported command 'WATCH'"
        assert c.call("PING") == b"PONG"


def test_redis_py_pipeline(clean):
    """redis-py's pipeline() (transaction=True by default) fails, writes nothing, and the
    client keeps working; a non-transactional pipeline does write (control)."""
    proxy, backends = clean
    r = proxy.redis()
    p = r.pipeline()
    p.set("tx:py", 1)
    p.incr("tx:py")
    with pytest.raises(redis.exceptions.ResponseError) as e:
        p.execute()
    assert "MULTI is not supported by the proxy" in str(e.value), e.value
    assert total_keys(backends) == 0
    assert r.ping() and r.get("tx:py") is None
    p = r.pipeline(transaction=False)
    p.set("tx:py", 1)
    p.incr("tx:py")
    assert p.execute() == [True, 2]
    assert total_keys(backends) == 1


def test_redis_py_transaction(clean):
    """redis-py's transaction(): with a watched key WATCH fails first; without, the
    queued commands are refused; nothing written either way."""
    proxy, backends = clean
    r = proxy.redis()
    called = []

    def body(pipe):
        called.append(1)
        pipe.multi()
        pipe.set("tx:t", "1")
        pipe.incr("tx:t")

    with pytest.raises(redis.exceptions.ResponseError) as e:
        r.transaction(body, "tx:t")
    assert "WATCH" in str(e.value) and not called, e.value
    with pytest.raises(redis.exceptions.ResponseError) as e:
        r.transaction(body)
    assert "MULTI is not supported" in str(e.value), e.value
    assert total_keys(backends) == 0
    assert r.set("tx:t", "2") and r.get("tx:t") == b"2"


RUBY = r"""
require 'redis'
r = Redis.new(host: '127.0.0.1', port: ARGV[0].to_i)
begin
  res = r.multi { |m| m.set('tx:rb', '1'); m.incr('tx:rb') }
  puts "multi ok #{res.inspect}"
rescue Redis::BaseError => e
  puts "multi failed: #{e.class}: #{e.message}"
end
puts "get: #{r.get('tx:rb').inspect}"
puts "set: #{r.set('tx:rb2', 'v')}"
"""


def test_redis_rb_multi(clean, tmp_path):
    """redis-rb (Debian's ruby-redis, installed by scripts/deps.sh): multi {} raises,
    nothing is written, and the client goes on."""
    proxy, backends = clean
    ruby = shutil.which("ruby")
    assert ruby, "ruby is missing: scripts/deps.sh installs ruby-redis"
    script = tmp_path / "multi.rb"
    script.write_text(RUBY)
    p = run_bounded([ruby, str(script), str(proxy.port)], 30)
    out = p.stdout.decode()
    assert p.returncode == 0, (out, p.stderr.decode())
    assert "multi failed: Redis::CommandError: ERR MULTI is not supported by the proxy" in out, out
    assert "get: nil" in out and "set: OK" in out, out
    assert total_keys(backends) == 1   # tx:rb2 only


# The bytes each library writes for a two-command transaction (SET then INCR), pipelined in
# one write, then a GET on the same connection. node-redis 6.4.0 and ioredis 6.1.0 were
# captured from the libraries (multi().set().incr().exec()); go-redis v9 TxPipelined and
# Jedis 5 multi()/exec() are written from their source (docs/CLIENTS.md).
LIBRARY_MULTI = {
    "node-redis-6.4": [("MULTI",), ("SET", "nk", "1"), ("INCR", "nk"), ("EXEC",)],
    "ioredis-6.1": [("multi",), ("set", "ik", "1"), ("incr", "ik"), ("exec",)],
    "go-redis-9": [("multi",), ("set", "gk", "1"), ("incr", "gk"), ("exec",)],
    "jedis-5.1": [("MULTI",), ("SET", "jk", "1"), ("INCR", "jk"), ("EXEC",)],
}


@pytest.mark.parametrize("lib", sorted(LIBRARY_MULTI))
def test_library_multi_bytes(clean, lib):
    """Every reply of the transaction is an error (what each library reports as a failed
    transaction), EXEC the EXECABORT they all know, one reply per command so the
    connection stays in step, and nothing reaches a backend."""
    proxy, backends = clean
    cmds = LIBRARY_MULTI[lib]
    key = cmds[1][1]
    with proxy.client() as c:
        c.send_raw(b"".join(encode(*a) for a in cmds) + encode("GET", key) + encode("PING"))
        replies = [c.read() for _ in range(len(cmds) + 2)]
        assert replies[0] == MULTI_ERR and replies[1:-3] == [REFUSED] * (len(cmds) - 2), replies
        assert replies[-3] == EXECABORT and replies[-2] is None and replies[-1] == b"PONG", replies
    assert total_keys(backends) == 0
    assert_works(proxy, backends, key)


def test_multi_refused_before_auth(redis_factory, proxy_factory):
    """With redis_auth, MULTI before AUTH is NOAUTH and opens nothing: after AUTH the
    client's commands run."""
    backends = redis_factory(1, password="pw-9")
    proxy = proxy_factory(backends, redis_auth="pw-9")
    with proxy.client() as c:
        assert c.call("MULTI") == b"NOAUTH Authentication required."
        assert c.call("AUTH", "pw-9") == b"OK"
        assert c.call("SET", "tx:auth", "1") == b"OK"
        assert c.call("MULTI") == MULTI_ERR
        assert c.call("SET", "tx:auth", "2") == REFUSED
        assert c.call("EXEC") == EXECABORT
        assert c.call("GET", "tx:auth") == b"1"
