"""Multi-key retrievals split over servers and merged in the client's key order, and long
pipelines, checked byte for byte: against replies built from what was stored, and against
one real memcached given the same bytes (where a single server gives the reference
semantics for order, misses and duplicates)."""

import random

from mcfix import mc4, mc4_alive, mc_env, mc_keymux_bin  # noqa: F401 (fixtures)
from mcfix import pool_yaml, server_line, uniq, PORTS


def value_reply(key, flags, data):
    return b"VALUE %s %d %d\r\n%s\r\n" % (key, flags, len(data), data)


def store(raw, items):
    """set every (key, flags, data) through raw; all must be STORED."""
    raw.send(b"".join(b"set %s %d 0 %d\r\n%s\r\n" % (k, f, len(d), d) for k, f, d in items))
    want = b"STORED\r\n" * len(items)
    assert raw.read(len(want), timeout=10) == want


def test_multiget_100_keys_over_4_servers(mc4_alive):
    rnd = random.Random(1234)
    p = uniq("mg100")
    keys = [b"%03d-" % i + p for i in range(100)]
    present = set(rnd.sample(range(100), 70))
    model = {}
    items = []
    for i in sorted(present):
        data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 3000)))
        model[keys[i]] = (i, data)
        items.append((keys[i], i, data))
    r = mc4_alive.raw()
    store(r, items)
    # the keys really are spread: every backend holds some, and each key just one
    holders = [mc4_alive.holder(keys[i]) for i in sorted(present)]
    assert all(len(h) == 1 for h in holders)
    assert {h[0] for h in holders} == {0, 1, 2, 3}

    for order in range(3):
        req_keys = keys[:]
        rnd.shuffle(req_keys)
        for cmd in (b"get", b"gets"):
            r.send(cmd + b" " + b" ".join(req_keys) + b"\r\n")
            got = r.read_until(b"END\r\n", timeout=10)
            want = b""
            for k in req_keys:
                if k in model:
                    f, d = model[k]
                    want += value_reply(k, f, d)
            want += b"END\r\n"
            if cmd == b"get":
                assert got == want
            else:
                # gets: same items in the same order, each with its cas unique
                parts = got.split(b"\r\n")
                heads = [x for x in parts if x.startswith(b"VALUE ")]
                assert [h.split()[1] for h in heads] == [k for k in req_keys if k in model]
                assert all(len(h.split()) == 5 for h in heads)
    assert r.pending() == b""
    r.close()


def test_multiget_all_missing_and_duplicates(mc4_alive):
    # the four stored keys must land on at least two servers; where each lands depends
    # on the servers' names (their ports, new each run), so key sets are tried until one
    # does (a set falls on one server about one time in 64: 20 tries always find one)
    r = mc4_alive.raw()
    for attempt in range(20):
        keys = [b"%d-mgdup%d:fixed" % (i, attempt) for i in range(8)]
        for k in keys:
            assert r.call(b"delete " + k + b"\r\n", marker=b"\r\n") in (b"DELETED\r\n", b"NOT_FOUND\r\n")
        assert r.call(b"get " + b" ".join(keys) + b"\r\n", 5) == b"END\r\n"
        items = [(keys[i], i, b"v%d" % i) for i in range(0, 8, 2)]
        store(r, items)
        homes = [mc4_alive.holder(k) for k, _, _ in items]
        assert all(len(h) == 1 for h in homes), homes
        if len({h[0] for h in homes}) >= 2:
            break
    assert len({h[0] for h in homes}) >= 2, homes
    ref = mc4_alive.ref.raw()
    store(ref, items)
    # duplicates, misses, interleaved servers: the same bytes as one memcached gives
    for req in [
        [keys[0], keys[0]],
        [keys[2], keys[1], keys[2], keys[4], keys[2]],
        keys + keys[::-1] + keys,
        [keys[7], keys[6], keys[5], keys[4], keys[3], keys[2], keys[1], keys[0], keys[6]],
    ]:
        for cmd in (b"get ", b"gat 0 "):
            line = cmd + b" ".join(req) + b"\r\n"
            want = ref.call(line, marker=b"END\r\n")
            assert want.endswith(b"END\r\n")
            assert r.call(line, len(want)) == want, line
    # several spaces between keys are fine
    line = b"get   " + b"   ".join(keys[:4]) + b"  \r\n"
    want = ref.call(line, marker=b"END\r\n")
    assert r.call(line, len(want)) == want
    assert r.pending() == b""
    ref.close()
    r.close()


def test_multiget_large_values(mc4_alive):
    # values far larger than a buffer segment (16 KiB): items are borrowed across segments
    p = uniq("mgbig")
    rnd = random.Random(99)
    items = [(b"%d-" % i + p, i, bytes(rnd.randrange(256) for _ in range(size)))
             for i, size in enumerate([70000, 1, 16384, 250000, 33000, 0, 500000, 16383])]
    r = mc4_alive.raw()
    store(r, items)
    order = [it for it in items[::-1]] + [items[3], items[0]]
    want = b"".join(value_reply(k, f, d) for k, f, d in order) + b"END\r\n"
    r.send(b"get " + b" ".join(k for k, _, _ in order) + b" " + p + b"nope\r\n")
    assert r.read(len(want), timeout=10) == want
    assert r.pending() == b""
    r.close()


def build_pipeline(prefix, n, seed):
    """n mixed requests over 40 keys, none of whose replies depend on the server (no cas
    uniques, no stats): the same bytes must come from one memcached and from the pool."""
    rnd = random.Random(seed)
    keys = [b"%02d-" % i + prefix for i in range(40)]
    out = []
    for _ in range(n):
        k = rnd.choice(keys)
        kind = rnd.randrange(19)
        data = bytes(rnd.choice(b"abcdefgh \r\n0123") for _ in range(rnd.randrange(0, 40)))
        if kind == 0:
            out.append(b"set %s %d 0 %d\r\n%s\r\n" % (k, rnd.randrange(100), len(data), data))
        elif kind == 1:
            out.append(b"get %s\r\n" % k)
        elif kind == 2:
            ks = rnd.sample(keys, rnd.randrange(2, 12))
            out.append(b"get " + b" ".join(ks) + b"\r\n")
        elif kind == 3:
            out.append(b"add %s 1 0 %d\r\n%s\r\n" % (k, len(data), data))
        elif kind == 4:
            out.append(b"append %s 0 0 %d\r\n%s\r\n" % (k, len(data), data))
        elif kind == 5:
            out.append(b"prepend %s 0 0 %d\r\n%s\r\n" % (k, len(data), data))
        elif kind == 6:
            out.append(b"set %s 0 0 %d\r\n%d\r\n" % (k, len(b"%d" % len(data)), len(data)))
        elif kind == 7:
            out.append(b"incr %s %d\r\n" % (k, rnd.randrange(1000)))
        elif kind == 8:
            out.append(b"decr %s %d\r\n" % (k, rnd.randrange(1000)))
        elif kind == 9:
            out.append(b"delete %s\r\n" % k)
        elif kind == 10:
            out.append(b"touch %s %d\r\n" % (k, rnd.randrange(100, 1000)))
        elif kind == 11:
            out.append(b"set %s 0 0 %d noreply\r\n%s\r\n" % (k, len(data), data))
        elif kind == 12:
            out.append(b"mg %s v f k s\r\n" % k)
        elif kind == 13:
            out.append(b"ms %s %d F%d\r\n%s\r\n" % (k, len(data), rnd.randrange(9), data))
        elif kind == 14:
            out.append(b"md %s\r\n" % k)
        elif kind == 15:
            out.append(b"mn\r\n")
        elif kind == 16:
            ks = rnd.sample(keys, rnd.randrange(2, 6))
            out.append(b"gat %d " % rnd.randrange(100, 1000) + b" ".join(ks) + b"\r\n")
        elif kind == 17:
            out.append(b"bogus %s\r\n" % k)
        else:
            out.append(b"version\r\n")
    return b"".join(out)


def read_through_mn(raw, n):
    """Replies read from raw through the nth MN (no value holds "MN")."""
    got = b""
    while got.count(b"MN\r\n") < n:
        more = raw.read_until(b"MN\r\n", timeout=15)
        assert more, "no more replies after %r" % got[-200:]
        got += more
    return got


def unpad_counters(replies):
    """replies with memcached's in-place padding of counters undone.

    memcached stores an incr/decr result whose digits are fewer than the old value's in
    the old item, padded with spaces, but only if no other request holds the item at that
    moment; otherwise it stores a new item of the exact length. So the same bytes can leave
    "286" + 30 spaces on one server and "286" on another: both are memcached's answer.
    Each value (VALUE and meta VA, found by walking the replies by their declared lengths)
    that is digits followed by spaces is rewritten without the spaces, on both sides."""
    out, i = [], 0
    while i < len(replies):
        j = replies.index(b"\r\n", i)
        head = replies[i:j].split(b" ")
        if head[0] not in (b"VALUE", b"VA"):
            out.append(replies[i:j + 2])
            i = j + 2
            continue
        lenpos = 3 if head[0] == b"VALUE" else 1
        n = int(head[lenpos])
        data = replies[j + 2:j + 2 + n]
        digits = data.rstrip(b" ")
        if digits != data and digits.isdigit():
            head[lenpos] = b"%d" % len(digits)
            head = [b"s%d" % len(digits) if head[0] == b"VA" and t.startswith(b"s") else t
                    for t in head]
            data = digits
        out.append(b" ".join(head) + b"\r\n" + data + b"\r\n")
        i = j + 2 + n + 2
    return b"".join(out)


def reference_replies(pool, pipeline):
    """What one memcached answers to pipeline (which ends with "mn")."""
    ref = pool.ref.raw()
    ref.send(pipeline)
    want = read_through_mn(ref, pipeline.count(b"mn\r\n"))
    ref.close()
    return want


def test_pipeline_1000_mixed_requests(mc4_alive):
    p = uniq("pipe")
    pipeline = build_pipeline(p, 1000, 4242)
    want = reference_replies(mc4_alive, pipeline + b"mn\r\n")
    frags = mc4_alive.proxy.stats()["gamma"]["fragments"]
    assert want.count(b"VALUE ") > 50 and want.count(b"STORED\r\n") > 50
    r = mc4_alive.raw()
    r.send(pipeline + b"mn\r\n")
    got = read_through_mn(r, want.count(b"MN\r\n"))
    assert unpad_counters(got) == unpad_counters(want)
    assert r.pending() == b""
    r.close()
    # the multi-key retrievals really were split
    assert mc4_alive.proxy.stats()["gamma"]["fragments"] - frags > 100


def test_pipeline_from_many_clients(mc4_alive):
    # several clients interleaved on the same server connections keep their own order
    p = uniq("many")
    clients = []
    for c in range(8):
        pipeline = build_pipeline(p + b"c%d" % c, 150, c) + b"mn\r\n"
        clients.append((mc4_alive.raw(), pipeline, reference_replies(mc4_alive, pipeline)))
    for r, pipeline, _ in clients:
        r.send(pipeline)
    for r, _, want in clients:
        got = read_through_mn(r, want.count(b"MN\r\n"))
        assert unpad_counters(got) == unpad_counters(want)
        r.close()


def test_multiget_with_a_server_down(mc_env):
    a = mc_env.memcached()
    b = mc_env.memcached()
    port = PORTS.get()
    proxy = mc_env.proxy(pool_yaml("gamma", port, [server_line(a.host, a.port),
                                                   server_line(b.host, b.port)]), port)
    r = proxy.raw()
    keys = [b"%d-down" % i for i in range(20)]
    store(r, [(k, 0, k) for k in keys])
    direct = b.raw()
    on_b = [k for k in keys if direct.call(b"mg %s\r\n" % k, marker=b"\r\n").startswith(b"HD")]
    direct.close()
    on_a = [k for k in keys if k not in on_b]
    assert on_a and on_b
    b.stop()
    r.send(b"get " + b" ".join(keys) + b"\r\n")
    got = r.read_until(b"\r\n", timeout=10)
    assert got.startswith(b"SERVER_ERROR ")
    assert r.pending(0.2) == b""
    # keys of the live server still answer, and the connection goes on
    want = b"".join(value_reply(k, 0, k) for k in on_a) + b"END\r\n"
    assert r.call(b"get " + b" ".join(on_a) + b"\r\n", len(want)) == want
    r.close()
