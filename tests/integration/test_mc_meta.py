"""memcached 1.6 meta commands through keymux: mg, ms, md, ma, me routed by key with
their flags passed through, mn answered in order, and quiet mode (q), where the proxy
closes each quiet request with its own "mn" on the server connection. Replies are
compared byte for byte with those of one real memcached given the same requests."""

import re

from mcfix import mc4, mc4_alive, mc_env, mc_keymux_bin  # noqa: F401 (fixtures)
from mcfix import uniq


def ref_replies(pool, reqs):
    """One memcached's replies to reqs (a list of requests), read through a final mn."""
    ref = pool.ref.raw()
    data = b"".join(reqs) + b"mn\r\n"
    ref.send(data)
    want = b""
    while want.count(b"MN\r\n") < data.count(b"mn\r\n"):
        more = ref.read_until(b"MN\r\n")
        assert more, "the reference memcached stopped answering"
        want += more
    ref.close()
    return want


def same_as_memcached(pool, reqs):
    """Send reqs (then mn) to the proxy, pipelined, and to the reference memcached; the
    bytes must match."""
    want = ref_replies(pool, reqs)
    r = pool.raw()
    r.send(b"".join(reqs) + b"mn\r\n")
    got = r.read(len(want))
    assert got == want
    assert r.pending() == b""
    r.close()
    return got


def same_as_memcached_one_by_one(pool, reqs):
    """Each request alone, nothing behind it: the proxy gives what memcached gives it
    (for a quiet request, the reply before the MN of an mn sent after it; maybe nothing)."""
    r = pool.raw()
    for q in reqs:
        want = ref_replies(pool, [q])[:-4]
        assert r.call(q, len(want)) == want, q
        assert r.pending(0.1) == b"", q
    r.close()


def keys_for(p, n):
    return [b"%d-" % i + p for i in range(n)]


def test_meta_flags_pass_through(mc4_alive):
    k = keys_for(uniq("meta"), 6)
    reqs = [
        b"ms %s 3 T0 F5\r\nbar\r\n" % k[0],
        b"mg %s v f k s\r\n" % k[0],
        b"mg %s\r\n" % k[0],
        b"mg %s k O123 v\r\n" % k[0],
        b"mg %s v k O9\r\n" % k[1],          # miss
        b"mg %s\r\n" % k[1],
        b"ms %s 2 F7 I\r\nhi\r\n" % k[1],     # invalidate mode on a missing key
        b"ms %s 1 MA\r\nx\r\n" % k[2],        # append to a missing key: NS
        b"ms %s 1 MA\r\nx\r\n" % k[0],
        b"mg %s v\r\n" % k[0],
        b"ms %s 1 ME\r\ny\r\n" % k[0],        # add when it exists: NS
        b"md %s\r\n" % k[0],
        b"md %s\r\n" % k[0],
        b"md %s O5 k\r\n" % k[3],
        b"ma %s\r\n" % k[4],                   # miss: NF
        b"ma %s N0 J13 v\r\n" % k[4],          # autovivify
        b"ma %s v\r\n" % k[4],
        b"ma %s MD D5 v\r\n" % k[4],
        b"ma %s MI D100 v k O1\r\n" % k[4],
        b"ms %s 3 T0\r\nabc\r\n" % k[5],
        b"ma %s v\r\n" % k[5],                 # not a number
        b"mg %s zz\r\n" % k[5],                # bad flag
        b"mn\r\n",
        b"mg %s s v\r\n" % k[1],
    ]
    got = same_as_memcached(mc4_alive, reqs)
    assert got.count(b"VA ") >= 6 and got.count(b"EN\r\n") >= 1 and b"NS\r\n" in got


def test_me_is_routed_by_key(mc4_alive):
    p = uniq("me")
    r = mc4_alive.raw()
    assert r.call(b"set %s 0 0 3\r\nabc\r\n" % p, 8) == b"STORED\r\n"
    got = r.call(b"me %s\r\n" % p, marker=b"\r\n")
    assert re.match(rb"ME %s exp=-1 la=\d+ cas=\d+ fetch=no cls=\d+ size=\d+\r\n$" % re.escape(p), got), got
    assert r.call(b"me nope-%s\r\n" % p, 4) == b"EN\r\n"
    r.close()


def test_mn_answers_in_order(mc4_alive):
    k = keys_for(uniq("mn"), 4)
    r = mc4_alive.raw()
    assert r.call(b"mn\r\n", 4) == b"MN\r\n"
    # replies to everything before mn come first, whichever servers served them
    r.send(b"".join(b"ms %s 1\r\n%d\r\n" % (x, i) for i, x in enumerate(k)) + b"mn\r\n" +
           b"".join(b"mg %s v\r\n" % x for x in k) + b"mn\r\n")
    want = b"HD\r\n" * 4 + b"MN\r\n" + b"".join(b"VA 1\r\n%d\r\n" % i for i in range(4)) + b"MN\r\n"
    assert r.read(len(want)) == want
    r.close()


def test_quiet_mode(mc4_alive):
    k = keys_for(uniq("quiet"), 8)
    reqs = [
        b"ms %s 3 q\r\nbar\r\n" % k[0],        # HD suppressed
        b"ms %s 1 q MA\r\nx\r\n" % k[1],       # NS shown
        b"mg %s v q\r\n" % k[2],               # miss: EN suppressed
        b"mg %s v q k\r\n" % k[0],             # hit: shown
        b"mg %s q\r\n" % k[0],                 # hit without value: HD suppressed
        b"md %s q\r\n" % k[3],                 # NF suppressed
        b"md %s q\r\n" % k[0],                 # HD suppressed
        b"mg %s v q\r\n" % k[0],               # gone now
        b"ma %s q N0 J5\r\n" % k[4],           # HD suppressed
        b"ma %s q v\r\n" % k[4],               # value shown
        b"ma %s q\r\n" % k[5],                 # NF shown? (as memcached says)
        b"ms %s 2 q\r\nhi\r\n" % k[6],
        b"mg %s q zz\r\n" % k[6],              # errors are never quiet
        b"mn\r\n",
        b"mg %s v q O7 k\r\n" % k[6],
        b"mn\r\n",
        b"get %s %s\r\n" % (k[6], k[0]),
    ]
    got = same_as_memcached(mc4_alive, reqs)
    assert b"NS\r\n" in got and b"CLIENT_ERROR" in got and got.count(b"MN\r\n") == 3
    # and one at a time, with nothing pipelined behind each quiet request
    k2 = keys_for(uniq("quiet1"), 4)
    same_as_memcached_one_by_one(mc4_alive, [
        b"ms %s 3 q\r\nbar\r\n" % k2[0],
        b"mg %s v q\r\n" % k2[1],
        b"mg %s v q\r\n" % k2[0],
        b"ms %s 1 q MA\r\nx\r\n" % k2[2],
        b"md %s q\r\n" % k2[0],
        b"mg %s v q\r\n" % k2[0],
    ])


def test_quiet_request_runs_once(mc4_alive):
    # the "mn" the proxy adds must not repeat the request: a counter moves by one
    k = uniq("once")
    reqs = [b"ma %s q N0 J10\r\n" % k] + [b"ma %s q\r\n" % k] * 5 + [b"mg %s v\r\n" % k]
    # memcached answers the autovivifying one even when quiet (HD), then stays silent
    got = same_as_memcached(mc4_alive, reqs)
    assert got == b"HD\r\nVA 2\r\n15\r\nMN\r\n"


def test_many_quiet_requests_over_servers(mc4_alive):
    k = keys_for(uniq("qmany"), 60)
    reqs = []
    for i, x in enumerate(k):
        if i % 3:
            reqs.append(b"ms %s %d q F%d\r\n%s\r\n" % (x, len(b"v%d" % i), i, b"v%d" % i))
    for i, x in enumerate(k):
        reqs.append(b"mg %s v f k q\r\n" % x)
        if i % 7 == 0:
            reqs.append(b"mn\r\n")
    same_as_memcached(mc4_alive, reqs)


def test_base64_keys_refused(mc4_alive):
    r = mc4_alive.raw()
    want = b"CLIENT_ERROR base64 keys (b flag) are not supported by the proxy\r\n"
    assert r.call(b"mg Zm9v b v\r\nmn\r\n", len(want) + 4) == want + b"MN\r\n"
    r.close()
