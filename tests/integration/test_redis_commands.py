"""Command sweep: every command family through the proxy (4-server pool) compared
reply by reply, byte for byte, with a separate single redis-server given the same
commands. Raw RESP so that nothing is hidden by a client library."""

import hashlib
import time

import pytest

from helpers import Error, describe, run_bounded


class Cmd:
    """One step of a case: args (or a function of the previous reply of the same
    side), and how to compare: exact raw bytes, sorted array, integer within a
    tolerance, or reply type only."""

    def __init__(self, *args, mode="exact", tol=0, error=False):
        self.args = args
        self.mode = mode
        self.tol = tol
        self.error = error  # the direct reply is expected to be an error


def S(*args):
    return Cmd(*args, mode="sorted")


def A(*args, tol=1):
    return Cmd(*args, mode="approx", tol=tol)


FUTURE = int(time.time()) + 100000
SCRIPT_SET = "return redis.call('SET', KEYS[1], ARGV[1])"
SCRIPT_GET = "return redis.call('GET', KEYS[1])"
SCRIPT_TWO = ("redis.call('SET', KEYS[1], ARGV[1]); redis.call('SET', KEYS[2], ARGV[2]); "
              "return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2]), "
              "redis.call('STRLEN', KEYS[2])}")


def case_strings(p):
    k, k2, n, f, b, bf = "k" + p, "k2" + p, "n" + p, "f" + p, "b" + p, "bf" + p
    return [
        ("SET", k, "hello"), ("GET", k), ("GET", "missing" + p),
        ("GETSET", k, "world"), ("GET", k), ("GETDEL", k), ("GET", k), ("GETDEL", k),
        ("SET", k, "v", "EX", "100"), A("TTL", k), ("GETEX", k, "PERSIST"), ("TTL", k),
        ("GETEX", k, "EX", "50"), A("TTL", k), ("GETEX", "missing" + p),
        ("SET", k, "v2", "GET"), ("SET", k, "v3", "NX"), ("SET", k, "v3", "XX"), ("GET", k),
        ("SET", k, "v4", "KEEPTTL"), A("TTL", k),
        ("APPEND", k2, "abc"), ("APPEND", k2, "def"), ("STRLEN", k2), ("STRLEN", "missing" + p),
        ("INCR", n), ("INCRBY", n, "10"), ("INCRBY", n, "-3"), ("DECR", n), ("DECRBY", n, "2"),
        ("GET", n),
        ("INCRBYFLOAT", f, "1.5"), ("INCRBYFLOAT", f, "0.1"), ("INCRBYFLOAT", f, "-5e2"),
        ("SETNX", "k3" + p, "a"), ("SETNX", "k3" + p, "b"), ("GET", "k3" + p),
        ("SETEX", "k4" + p, "100", "v"), A("TTL", "k4" + p), ("GET", "k4" + p),
        ("PSETEX", "k5" + p, "100000", "v"), A("PTTL", "k5" + p, tol=3000), ("GET", "k5" + p),
        ("SETRANGE", k2, "2", "XYZ"), ("GET", k2), ("SETRANGE", "k6" + p, "5", "pad"),
        ("GET", "k6" + p),
        ("GETRANGE", k2, "1", "4"), ("GETRANGE", k2, "-3", "-1"), ("SUBSTR", k2, "0", "2"),
        ("SETBIT", b, "7", "1"), ("SETBIT", b, "100", "1"), ("SETBIT", b, "7", "1"),
        ("GETBIT", b, "7"), ("GETBIT", b, "8"), ("GETBIT", b, "100000"),
        ("BITCOUNT", b), ("BITCOUNT", b, "0", "0"), ("BITCOUNT", b, "0", "7", "BIT"),
        ("BITPOS", b, "1"), ("BITPOS", b, "0"), ("BITPOS", b, "1", "1"),
        ("BITFIELD", bf, "SET", "u8", "0", "200", "GET", "u8", "0", "INCRBY", "u8", "0", "100"),
        ("BITFIELD", bf, "OVERFLOW", "SAT", "INCRBY", "i5", "100", "100", "GET", "i5", "100"),
        ("BITFIELD_RO", bf, "GET", "u4", "0"),
        ("MSET", "x1" + p, "1", "x2" + p, "2"),
        ("SET", "{%s}lcs1" % p, "ohmytext"), ("SET", "{%s}lcs2" % p, "mynewtext"),
        ("LCS", "{%s}lcs1" % p, "{%s}lcs2" % p),
    ]


def case_keys(p):
    k, k2 = "k" + p, "k2" + p
    t1, t2 = "{%s}src" % p, "{%s}dst" % p
    return [
        ("SET", k, "v"), ("EXISTS", k), ("EXISTS", "missing" + p), ("TYPE", k),
        ("TYPE", "missing" + p),
        ("EXPIRE", k, "100"), A("TTL", k), ("PEXPIRE", k, "200000"), A("PTTL", k, tol=3000),
        ("EXPIRE", k, "300", "GT"), A("TTL", k), ("EXPIRE", k, "10", "GT"), A("TTL", k),
        ("EXPIREAT", k, str(FUTURE)), ("EXPIRETIME", k), A("TTL", k, tol=2),
        ("PEXPIREAT", k, str(FUTURE * 1000 + 123)), ("PEXPIRETIME", k),
        ("PERSIST", k), ("TTL", k), ("PTTL", k), ("PERSIST", k), ("TTL", "missing" + p),
        ("EXPIRE", "missing" + p, "10"),
        ("TOUCH", k), ("TOUCH", "missing" + p),
        ("RPUSH", k2, "3", "1", "2", "10"), ("TYPE", k2), ("SORT", k2),
        ("SORT", k2, "DESC", "LIMIT", "0", "2"), ("SORT", k2, "ALPHA"), ("SORT_RO", k2),
        ("HSET", "h" + p, "f", "v"), ("TYPE", "h" + p),
        ("DUMP", k), Cmd(lambda prev: ("RESTORE", "restored" + p, "0", prev)),
        ("GET", "restored" + p), ("TTL", "restored" + p),
        ("DUMP", k2), Cmd(lambda prev: ("RESTORE", "restored2" + p, "100000", prev)),
        ("LRANGE", "restored2" + p, "0", "-1"), A("TTL", "restored2" + p, tol=2),
        ("DUMP", "missing" + p),
        ("SET", t1, "copied"), ("COPY", t1, t2), ("GET", t2), ("COPY", t1, t2),
        ("COPY", t1, t2, "REPLACE"),
        ("DEL", k), ("DEL", k), ("UNLINK", k2), ("UNLINK", k2), ("EXISTS", k, k2),
    ]


def case_hashes(p):
    h = "h" + p
    return [
        ("HSET", h, "f1", "v1", "f2", "v2"), ("HSET", h, "f1", "v1b"), ("HGET", h, "f1"),
        ("HGET", h, "nope"), ("HMGET", h, "f1", "nope", "f2"), ("HGETALL", h), ("HKEYS", h),
        ("HVALS", h), ("HLEN", h), ("HEXISTS", h, "f2"), ("HEXISTS", h, "nope"),
        ("HSETNX", h, "f3", "x"), ("HSETNX", h, "f3", "y"), ("HSTRLEN", h, "f1"),
        ("HINCRBY", h, "cnt", "5"), ("HINCRBY", h, "cnt", "-7"),
        ("HINCRBYFLOAT", h, "fl", "2.5"), ("HMSET", h, "a", "1", "b", "2"),
        ("HDEL", h, "a", "b", "nope"), ("HSCAN", h, "0"), ("HGETALL", "missing" + p),
        ("HSET", "one" + p, "only", "val"), ("HRANDFIELD", "one" + p),
        ("HRANDFIELD", "one" + p, "-3", "WITHVALUES"),
    ]


def case_lists(p):
    lk = "l" + p
    a, b = "{%s}a" % p, "{%s}b" % p
    return [
        ("RPUSH", lk, "a", "b", "c", "a", "d", "a"), ("LPUSH", lk, "z"), ("LRANGE", lk, "0", "-1"),
        ("LLEN", lk), ("LINDEX", lk, "2"), ("LINDEX", lk, "99"),
        ("LINSERT", lk, "BEFORE", "c", "ins"), ("LSET", lk, "0", "zz"), ("LREM", lk, "1", "d"),
        ("LRANGE", lk, "0", "-1"),
        ("LPOS", lk, "a"), ("LPOS", lk, "a", "RANK", "2"), ("LPOS", lk, "a", "COUNT", "0"),
        ("LPOS", lk, "a", "RANK", "-1", "MAXLEN", "3"), ("LPOS", lk, "nope"),
        ("LPOP", lk), ("RPOP", lk), ("LPOP", lk, "2"), ("RPOP", lk, "1"), ("LTRIM", lk, "0", "1"),
        ("LRANGE", lk, "0", "-1"), ("RPUSHX", lk, "x"), ("LPUSHX", "missing" + p, "x"),
        ("LPOP", "missing" + p), ("LPOP", "missing" + p, "2"),
        ("RPUSH", a, "1", "2", "3"), ("LMOVE", a, b, "LEFT", "RIGHT"),
        ("LMOVE", a, b, "RIGHT", "LEFT"), ("RPOPLPUSH", a, b),
        ("LRANGE", a, "0", "-1"), ("LRANGE", b, "0", "-1"), ("RPOPLPUSH", a, b),
    ]


def case_sets(p):
    s = "s" + p
    a, b, d = "{%s}a" % p, "{%s}b" % p, "{%s}d" % p
    return [
        ("SADD", s, "m1", "m2", "m3"), ("SADD", s, "m1"), ("SCARD", s), ("SISMEMBER", s, "m2"),
        ("SISMEMBER", s, "no"), ("SMISMEMBER", s, "m1", "no", "m3"), S("SMEMBERS", s),
        ("SREM", s, "m1", "no"), S("SMEMBERS", s),
        ("SADD", a, "1", "2", "3", "4"), ("SADD", b, "3", "4", "5"),
        S("SINTER", a, b), S("SUNION", a, b), S("SDIFF", a, b), ("SINTERCARD", "2", a, b),
        ("SINTERSTORE", d, a, b), S("SMEMBERS", d), ("SUNIONSTORE", d, a, b), ("SDIFFSTORE", d, a, b),
        S("SMEMBERS", d), ("SMOVE", a, b, "1"), S("SMEMBERS", b),
        ("SADD", "one" + p, "solo"), ("SRANDMEMBER", "one" + p), ("SRANDMEMBER", "one" + p, "-2"),
        ("SPOP", "one" + p), ("SPOP", "one" + p), ("SSCAN", a, "0", "MATCH", "*"),
    ]


def case_zsets(p):
    z = "z" + p
    src, dst, o = "{%s}src" % p, "{%s}dst" % p, "{%s}o" % p
    return [
        ("ZADD", z, "1", "a", "2", "b", "3", "c", "3.5", "d"), ("ZADD", z, "XX", "CH", "5", "a"),
        ("ZSCORE", z, "b"), ("ZSCORE", z, "nope"), ("ZMSCORE", z, "a", "nope", "c"),
        ("ZRANGE", z, "0", "-1"), ("ZRANGE", z, "0", "-1", "WITHSCORES"),
        ("ZRANGE", z, "(1", "3", "BYSCORE"), ("ZRANGEBYSCORE", z, "-inf", "+inf", "LIMIT", "1", "2"),
        ("ZREVRANGE", z, "0", "1"), ("ZRANK", z, "c"), ("ZREVRANK", z, "c"), ("ZCOUNT", z, "2", "4"),
        ("ZINCRBY", z, "0.25", "b"), ("ZCARD", z), ("ZLEXCOUNT", z, "-", "+"),
        ("ZRANGEBYLEX", z, "[a", "[c"), ("ZREM", z, "nope", "d"),
        ("ZADD", "one" + p, "7", "solo"), ("ZRANDMEMBER", "one" + p),
        ("ZRANDMEMBER", "one" + p, "-3", "WITHSCORES"), S("ZRANDMEMBER", z, "10"),
        ("ZADD", src, "1", "x", "2", "y", "3", "w"), ("ZADD", o, "10", "y"),
        ("ZRANGESTORE", dst, src, "0", "1"), ("ZRANGE", dst, "0", "-1", "WITHSCORES"),
        ("ZUNIONSTORE", dst, "2", src, o), ("ZRANGE", dst, "0", "-1", "WITHSCORES"),
        ("ZINTERSTORE", dst, "2", src, o, "WEIGHTS", "1", "2"), ("ZRANGE", dst, "0", "-1", "WITHSCORES"),
        ("ZUNION", "2", src, o, "WITHSCORES"), ("ZDIFF", "2", src, o),
    ] + [
        # numkeys comes first: the keys decide the server, not "2". Several tags so
        # that at least one lands away from where "2" would go.
        step
        for t in ("a", "b", "c", "d", "e")
        for step in (("ZADD", "{%s%s}s" % (t, p), "1", "x", "2", "y"),
                     ("ZADD", "{%s%s}o" % (t, p), "5", "y", "6", "q"),
                     ("ZUNION", "2", "{%s%s}s" % (t, p), "{%s%s}o" % (t, p), "WITHSCORES"),
                     ("ZINTER", "2", "{%s%s}s" % (t, p), "{%s%s}o" % (t, p)),
                     ("ZDIFF", "2", "{%s%s}s" % (t, p), "{%s%s}o" % (t, p)),
                     ("ZINTERCARD", "2", "{%s%s}s" % (t, p), "{%s%s}o" % (t, p)),
                     ("SADD", "{%s%s}ss" % (t, p), "1", "2"), ("SADD", "{%s%s}so" % (t, p), "2"),
                     ("SINTERCARD", "2", "{%s%s}ss" % (t, p), "{%s%s}so" % (t, p)))
    ] + [
        ("ZPOPMIN", z), ("ZPOPMAX", z, "2"), ("ZSCAN", src, "0"),
        ("ZREMRANGEBYRANK", src, "0", "0"), ("ZREMRANGEBYSCORE", src, "3", "3"), ("ZCARD", src),
    ]


def case_hyperloglog(p):
    h1, h2, h3 = "{%s}h1" % p, "{%s}h2" % p, "{%s}h3" % p
    return [
        ("PFADD", h1, "a", "b", "c"), ("PFADD", h1, "a"), ("PFCOUNT", h1),
        ("PFADD", h2) + tuple("e%d" % i for i in range(200)), ("PFCOUNT", h2),
        ("PFCOUNT", h1, h2), ("PFMERGE", h3, h1, h2), ("PFCOUNT", h3), ("GET", h1),
        ("PFADD", "solo" + p, "x"), ("PFCOUNT", "solo" + p),
    ]


def case_geo(p):
    g = "g" + p
    return [
        ("GEOADD", g, "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"),
        ("GEODIST", g, "Palermo", "Catania"), ("GEODIST", g, "Palermo", "Catania", "km"),
        ("GEOPOS", g, "Palermo", "Nowhere"), ("GEOHASH", g, "Palermo", "Catania"),
        ("GEORADIUS", g, "15", "37", "200", "km", "ASC", "WITHDIST"),
        ("GEORADIUSBYMEMBER", g, "Palermo", "300", "km", "ASC"),
        ("GEOSEARCH", g, "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC", "WITHCOORD"),
        ("GEOSEARCH", g, "FROMMEMBER", "Palermo", "BYBOX", "400", "400", "km", "DESC"),
        ("ZRANGE", g, "0", "-1", "WITHSCORES"),
    ]


def case_eval(p):
    k = "k" + p
    a, b = "{%s}a" % p, "{%s}b" % p
    sha = hashlib.sha1(SCRIPT_GET.encode()).hexdigest()
    return [
        ("EVAL", SCRIPT_SET, "1", k, "val"), ("EVAL", SCRIPT_GET, "1", k),
        ("EVALSHA", sha, "1", k), ("EVAL_RO", SCRIPT_GET, "1", k),
        ("EVAL", "return {KEYS[1], ARGV[1], 42, 'x'}", "1", k, "arg"),
        ("EVAL", "return redis.status_reply('FINE')", "1", k),
        ("EVAL", SCRIPT_TWO, "2", a, b, "one", "three"), ("GET", a), ("GET", b),
    ]


def case_streams(p):
    s = "s" + p
    return [
        ("XADD", s, "1-1", "f", "v1"), ("XADD", s, "2-1", "f", "v2", "g", "w"),
        ("XADD", s, "MAXLEN", "10", "3-0", "f", "v3"), ("XLEN", s),
        ("XRANGE", s, "-", "+"), ("XRANGE", s, "2", "+", "COUNT", "1"), ("XREVRANGE", s, "+", "-"),
        ("XDEL", s, "1-1"), ("XLEN", s), ("XTRIM", s, "MAXLEN", "1"), ("XRANGE", s, "-", "+"),
        ("XLEN", "missing" + p),
    ]


CASES = {
    "strings": case_strings, "keys": case_keys, "hashes": case_hashes, "lists": case_lists,
    "sets": case_sets, "zsets": case_zsets, "hyperloglog": case_hyperloglog, "geo": case_geo,
    "eval": case_eval, "streams": case_streams,
}


def _flatten_sorted(value):
    return sorted(value, key=lambda v: (str(type(v)), v if v is not None else b""))


def compare(cmd, args, proxied, direct):
    """Assert that the proxy's reply equals the direct one under cmd's mode."""
    (pv, praw), (dv, draw) = proxied, direct
    where = "command %s" % describe(args)
    if not cmd.error:
        assert not isinstance(dv, Error), "%s: direct redis itself errs: %r (bad test)" % (where, dv)
    if cmd.mode == "exact":
        assert praw == draw, "%s:\n proxy  %s\n direct %s" % (where, describe(praw), describe(draw))
    elif cmd.mode == "sorted":
        assert isinstance(pv, list) and isinstance(dv, list), "%s: %r vs %r" % (where, pv, dv)
        assert _flatten_sorted(pv) == _flatten_sorted(dv), "%s: %r vs %r" % (where, pv, dv)
    elif cmd.mode == "approx":
        assert isinstance(pv, int) and isinstance(dv, int), "%s: %r vs %r" % (where, pv, dv)
        assert abs(pv - dv) <= cmd.tol, "%s: %r vs %r (tolerance %d)" % (where, pv, dv, cmd.tol)
    else:
        raise AssertionError("bad mode %s" % cmd.mode)


def run_case(pool, steps):
    """Run steps against the proxy and the direct server, comparing each reply.
    Keeps going after a mismatch (reconnecting if the proxy closed the connection)
    so that one run lists every command that differs; fails at the end."""
    failures = []
    pc, dc = pool.proxy.client(), pool.direct.client()
    try:
        prev = {"p": None, "d": None}
        for step in steps:
            cmd = step if isinstance(step, Cmd) else Cmd(*step)
            replies = {}
            args_seen = {}
            for side, conn in (("p", pc), ("d", dc)):
                args = cmd.args
                if len(args) == 1 and callable(args[0]):
                    args = args[0](prev[side])
                args_seen[side] = args
                try:
                    conn.send(*args)
                    replies[side] = conn.read_with_raw()
                except (OSError, ConnectionError) as e:
                    replies[side] = None
                    failures.append("command %s via %s: %s" % (
                        describe(args), "proxy" if side == "p" else "direct redis", e))
                    if side == "p":
                        pc.close()
                        pc = pool.proxy.client()
                    else:
                        raise
                prev[side] = replies[side][0] if replies[side] else None
            if replies["p"] is None:
                continue
            try:
                compare(cmd, args_seen["d"], replies["p"], replies["d"])
            except AssertionError as e:
                failures.append(str(e).split("\nassert")[0])
    finally:
        pc.close()
        dc.close()
    if failures:
        pytest.fail("%d of %d commands differ:\n" % (len(failures), len(steps))
                    + "\n".join(failures[:25]), pytrace=False)


@pytest.mark.parametrize("family", sorted(CASES))
def test_command_family_matches_direct_redis(pool4, family):
    """Each command of the family, sent through the proxy to a 4-server pool, gets
    exactly the reply bytes a lone redis-server gives for the same sequence."""
    prefix = ":sweep:%s" % family
    run_case(pool4, CASES[family](prefix))


def test_keys_spread_over_backends(pool4):
    """The sweep is meaningful only if the pool really spreads keys: the strings
    case's keys must live on more than one backend, each on exactly one."""
    with pool4.proxy.client() as c:
        for i in range(40):
            assert c.call("SET", "%d:spread" % i, "v") == b"OK"
    homes = [pool4.locate("%d:spread" % i) for i in range(40)]
    assert all(len(h) == 1 for h in homes), homes
    assert len({h[0] for h in homes}) >= 3, homes


def test_hash_tagged_keys_share_a_backend(pool4):
    """With hash_tag "{}" keys with the same tag land on one backend."""
    keys = ["{tagged}:%d" % i for i in range(30)]
    with pool4.proxy.client() as c:
        for k in keys:
            assert c.call("SET", k, "v") == b"OK"
    homes = {tuple(pool4.locate(k)) for k in keys}
    assert len(homes) == 1 and len(next(iter(homes))) == 1, homes


REDIS_CLI_SCRIPT = [
    ["SET", "cli:k", "hello world"], ["GET", "cli:k"], ["INCR", "cli:n"], ["INCRBY", "cli:n", "41"],
    ["RPUSH", "cli:l", "a", "b", "c"], ["LRANGE", "cli:l", "0", "-1"],
    ["HSET", "cli:h", "f", "v"], ["HGETALL", "cli:h"], ["GET", "cli:missing"],
    ["ZADD", "cli:z", "1.5", "m"], ["ZRANGE", "cli:z", "0", "-1", "WITHSCORES"],
    ["MGET", "cli:k", "cli:missing", "cli:n"], ["DEL", "cli:k", "cli:n", "cli:missing"],
    ["PING"],
]


def test_redis_cli_output_matches(pool4):
    """redis-cli (a real client) prints the same output through the proxy as
    against a lone redis-server, command by command."""
    for args in REDIS_CLI_SCRIPT:
        outs = []
        for port in (pool4.proxy.port, pool4.direct.port):
            r = run_bounded(["redis-cli", "-h", "127.0.0.1", "-p", str(port)] + args, timeout=10)
            outs.append((r.returncode, r.stdout))
        assert outs[0] == outs[1], "redis-cli %s: proxy %r direct %r" % (args, outs[0], outs[1])


def test_redis_py_round_trip(pool4):
    """redis-py 4.3 (a real client library) works through the proxy for common calls."""
    r = pool4.proxy.redis()
    try:
        assert r.set("py:k", b"v\x00\xff") is True
        assert r.get("py:k") == b"v\x00\xff"
        assert r.incr("py:n", 5) == 5
        assert r.hset("py:h", mapping={"a": "1", "b": "2"}) == 2
        assert r.hgetall("py:h") == {b"a": b"1", b"b": b"2"}
        assert r.mget(["py:k", "py:none", "py:n"]) == [b"v\x00\xff", None, b"5"]
        assert r.delete("py:k", "py:n", "py:none") == 2
        assert r.exists("py:k") == 0
    finally:
        r.close()
