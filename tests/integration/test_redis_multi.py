"""Transactions as client libraries send them: redis-py's pipeline() and transaction(),
redis-rb's multi {} (Debian's ruby-redis), and the exact bytes node-redis, ioredis,
go-redis and Jedis write for a transaction (docs/CLIENTS.md). Each runs through keymux
on a pinned server connection and gets the replies a redis-server gives directly; the
transaction's writes land on the one backend its keys map to, and another client's
commands run while a transaction is open. (Byte-level cases: test_redis_sessions.py.)"""

import shutil

import pytest

from helpers import encode, run_bounded

EXECABORT = b"EXECABORT Transaction discarded because of previous errors."


@pytest.fixture(scope="module")
def tx(module_redis_factory, module_proxy_factory):
    backends = module_redis_factory(2)
    direct = module_redis_factory(1)[0]
    proxy = module_proxy_factory(backends, label="tx")
    return proxy, backends, direct


@pytest.fixture
def clean(tx):
    """The pool and the direct server emptied; yields (proxy, backends, direct)."""
    proxy, backends, direct = tx
    for b in backends + [direct]:
        b.flushall()
    return proxy, backends, direct


def total_keys(backends):
    n = 0
    for b in backends:
        with b.client() as c:
            n += c.call("DBSIZE")
    return n


def test_pipelined_multi_set_exec_get(clean):
    """MULTI, SET, EXEC and GET in one write: Redis's replies in order."""
    proxy, backends, direct = clean
    out = []
    for port in (proxy.port, direct.port):
        with proxy.client() if port == proxy.port else direct.client() as c:
            c.send_raw(encode("MULTI") + encode("SET", "tx:p", "1") + encode("EXEC") +
                       encode("GET", "tx:p"))
            out.append([c.read_raw() for _ in range(4)])
    assert out[0] == out[1] == [b"+OK\r\n", b"+QUEUED\r\n", b"*1\r\n+OK\r\n", b"$1\r\n1\r\n"]
    assert total_keys(backends) == 1


def test_open_transaction_is_per_client(clean):
    """One client's open MULTI holds back only its own commands."""
    proxy, backends, _ = clean
    with proxy.client() as a, proxy.client() as b:
        assert a.call("MULTI") == b"OK"
        assert a.call("SET", "tx:mine", "v") == b"QUEUED"
        assert b.call("SET", "tx:other", "v") == b"OK"
        assert total_keys(backends) == 1
        assert b.call("GET", "tx:mine") is None
        assert a.call("EXEC") == [b"OK"]
    assert total_keys(backends) == 2


def test_redis_py_pipeline(clean):
    proxy, backends, _ = clean
    r = proxy.redis()
    p = r.pipeline()
    p.set("tx:py", 1)
    p.incr("tx:py")
    assert p.execute() == [True, 2]
    assert r.get("tx:py") == b"2" and total_keys(backends) == 1


def test_redis_py_transaction(clean):
    """redis-py's transaction(): WATCH, the body, MULTI/EXEC, on one server."""
    proxy, backends, _ = clean
    r = proxy.redis()
    r.set("tx:t", "5")

    def body(pipe):
        v = int(pipe.get("tx:t"))
        pipe.multi()
        pipe.set("tx:t", v * 2)
        pipe.incr("tx:t")

    assert r.transaction(body, "tx:t") == [True, 11]
    assert r.get("tx:t") == b"11"


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
    """redis-rb (Debian's ruby-redis, installed by scripts/deps.sh): multi {} runs and
    returns each command's reply."""
    proxy, backends, _ = clean
    ruby = shutil.which("ruby")
    assert ruby, "ruby is missing: scripts/deps.sh installs ruby-redis"
    script = tmp_path / "multi.rb"
    script.write_text(RUBY)
    p = run_bounded([ruby, str(script), str(proxy.port)], 30)
    out = p.stdout.decode()
    assert p.returncode == 0, (out, p.stderr.decode())
    assert 'multi ok ["OK", 2]' in out, out
    assert 'get: "2"' in out and "set: OK" in out, out
    assert total_keys(backends) == 2


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
    """The replies are a redis-server's own, byte for byte, and the connection stays in
    step (a GET and a PING after EXEC)."""
    proxy, backends, direct = clean
    cmds = LIBRARY_MULTI[lib]
    key = cmds[1][1]
    out = []
    for srv in (proxy, direct):
        with srv.client() as c:
            c.send_raw(b"".join(encode(*a) for a in cmds) + encode("GET", key) + encode("PING"))
            out.append([c.read_raw() for _ in range(len(cmds) + 2)])
    assert out[0] == out[1], out
    assert out[0][-3] == b"*2\r\n+OK\r\n:2\r\n" and out[0][-2] == b"$1\r\n2\r\n", out[0]
    assert total_keys(backends) == 1


def test_multi_with_redis_auth(redis_factory, proxy_factory):
    """With redis_auth, MULTI before AUTH is NOAUTH and opens nothing; after AUTH a
    transaction runs on a pinned connection that authenticated itself."""
    backends = redis_factory(1, password="pw-9")
    proxy = proxy_factory(backends, redis_auth="pw-9")
    with proxy.client() as c:
        assert c.call("MULTI") == b"NOAUTH Authentication required."
        assert c.call("EXEC") == b"NOAUTH Authentication required."
        assert c.call("AUTH", "pw-9") == b"OK"
        assert c.call("SET", "tx:auth", "1") == b"OK"
        assert c.call("MULTI") == b"OK"
        assert c.call("INCR", "tx:auth") == b"QUEUED"
        assert c.call("EXEC") == [2]
        assert c.call("GET", "tx:auth") == b"2"
