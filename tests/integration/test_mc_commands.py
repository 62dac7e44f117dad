"""memcached text commands through keymux, exact bytes on a raw socket: storage (with
noreply), retrieval, incr/decr/delete/touch, version, quit, key rules and malformed lines,
values at and over the size limit; and a pymemcache run. stats, verbosity and flush_all are
in test_mc_admin.py."""

import re

import pytest
from pymemcache.client.base import Client

from mcfix import mc4, mc4_alive, mc_env, mc_keymux_bin  # noqa: F401 (fixtures)
from mcfix import uniq


def value_reply(key, flags, data, cas=None):
    head = b"VALUE %s %d %d" % (key, flags, len(data))
    if cas is not None:
        head += b" %d" % cas
    return head + b"\r\n" + data + b"\r\n"


def test_storage_commands(mc4_alive):
    p = uniq("st")
    k, k2, miss = p + b"k", p + b"k2", p + b"miss"
    r = mc4_alive.raw()
    steps = [
        (b"set %s 5 0 3\r\nbar\r\n" % k, b"STORED\r\n"),
        (b"get %s\r\n" % k, value_reply(k, 5, b"bar") + b"END\r\n"),
        (b"add %s 0 0 1\r\nx\r\n" % k, b"NOT_STORED\r\n"),
        (b"add %s 7 0 2\r\nab\r\n" % k2, b"STORED\r\n"),
        (b"replace %s 9 0 3\r\nBAR\r\n" % k, b"STORED\r\n"),
        (b"replace %s 0 0 1\r\nx\r\n" % miss, b"NOT_STORED\r\n"),
        (b"append %s 0 0 2\r\n-a\r\n" % k, b"STORED\r\n"),
        (b"prepend %s 0 0 2\r\np-\r\n" % k, b"STORED\r\n"),
        (b"append %s 0 0 1\r\nx\r\n" % miss, b"NOT_STORED\r\n"),
        (b"get %s %s\r\n" % (k, k2), value_reply(k, 9, b"p-BAR-a") + value_reply(k2, 7, b"ab") + b"END\r\n"),
        # a value holding the protocol's own words and CRLFs
        (b"set %s 0 0 14\r\nEND\r\nVALUE x\r\n\r\n" % k2, b"STORED\r\n"),
        (b"get %s\r\n" % k2, value_reply(k2, 0, b"END\r\nVALUE x\r\n") + b"END\r\n"),
        (b"set %s 0 0 0\r\n\r\n" % k2, b"STORED\r\n"),
        (b"get %s\r\n" % k2, value_reply(k2, 0, b"") + b"END\r\n"),
    ]
    for req, want in steps:
        got = r.call(req, len(want))
        assert got == want, "request %r" % req
    assert r.pending() == b""

    # cas: the unique from gets
    got = r.call(b"gets %s\r\n" % k, marker=b"END\r\n")
    m = re.match(rb"VALUE (\S+) 9 7 (\d+)\r\np-BAR-a\r\nEND\r\n$", got)
    assert m and m.group(1) == k, got
    cas = int(m.group(2))
    for req, want in [
        (b"cas %s 1 0 3 %d\r\nnew\r\n" % (k, cas + 1000), b"EXISTS\r\n"),
        (b"cas %s 1 0 3 %d\r\nnew\r\n" % (k, cas), b"STORED\r\n"),
        (b"cas %s 1 0 3 %d\r\nnew\r\n" % (k, cas), b"EXISTS\r\n"),
        (b"cas %s 1 0 3 1\r\nnew\r\n" % miss, b"NOT_FOUND\r\n"),
        (b"get %s\r\n" % k, value_reply(k, 1, b"new") + b"END\r\n"),
    ]:
        assert r.call(req, len(want)) == want, "request %r" % req
    r.close()


def test_noreply_storage_then_get(mc4_alive):
    p = uniq("nr")
    keys = [p + b"%d" % i for i in range(20)]
    r = mc4_alive.raw()
    req = b"".join(b"set %s 3 0 2 noreply\r\nv%d\r\n" % (k, i % 10) for i, k in enumerate(keys))
    req += b"add %s 0 0 1 noreply\r\nX\r\n" % keys[0]          # not stored, silently
    req += b"append %s 0 0 1 noreply\r\nA\r\n" % keys[1]
    req += b"prepend %s 0 0 1 noreply\r\nP\r\n" % keys[2]
    req += b"set %s 0 0 2 noreply\r\n10\r\n" % keys[3]
    req += b"incr %s 5 noreply\r\n" % keys[3]
    req += b"decr %s 1 noreply\r\n" % keys[3]
    req += b"delete %s noreply\r\n" % keys[4]
    req += b"touch %s 100 noreply\r\n" % keys[5]
    req += b"get " + b" ".join(keys) + b"\r\n"
    r.send(req)
    want = b""
    for i, k in enumerate(keys):
        v = b"v%d" % (i % 10)
        if i == 1:
            v += b"A"
        if i == 2:
            v = b"P" + v
        if i == 3:
            want += value_reply(k, 0, b"14")
            continue
        if i == 4:
            continue
        want += value_reply(k, 3, v)
    want += b"END\r\n"
    got = r.read(len(want))
    assert got == want
    assert r.pending() == b""
    r.close()


def test_incr_decr_delete_touch(mc4_alive):
    p = uniq("ar")
    n, s, miss = p + b"n", p + b"s", p + b"miss"
    r = mc4_alive.raw()
    for req, want in [
        (b"set %s 0 0 2\r\n10\r\n" % n, b"STORED\r\n"),
        (b"incr %s 5\r\n" % n, b"15\r\n"),
        (b"decr %s 20\r\n" % n, b"0\r\n"),
        (b"incr %s 18446744073709551615\r\n" % n, b"18446744073709551615\r\n"),
        (b"incr %s 1\r\n" % n, b"0\r\n"),
        (b"incr %s 1\r\n" % miss, b"NOT_FOUND\r\n"),
        (b"decr %s 1\r\n" % miss, b"NOT_FOUND\r\n"),
        (b"set %s 0 0 3\r\nabc\r\n" % s, b"STORED\r\n"),
        (b"incr %s 1\r\n" % s, b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"),
        (b"incr %s x\r\n" % n, b"CLIENT_ERROR invalid numeric delta argument\r\n"),
        (b"touch %s 100\r\n" % s, b"TOUCHED\r\n"),
        (b"touch %s 100\r\n" % miss, b"NOT_FOUND\r\n"),
        (b"delete %s\r\n" % s, b"DELETED\r\n"),
        (b"delete %s\r\n" % s, b"NOT_FOUND\r\n"),
        (b"delete %s 0\r\n" % n, b"DELETED\r\n"),
        (b"delete %s 5\r\n" % n,
         b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"),
        (b"get %s %s\r\n" % (n, s), b"END\r\n"),
    ]:
        assert r.call(req, len(want)) == want, "request %r" % req
    # touch really sets the expiry (a negative one: expired at once)
    assert r.call(b"set %s 0 0 1\r\nx\r\ntouch %s -1\r\n" % (s, s), 17) == b"STORED\r\nTOUCHED\r\n"
    assert r.call(b"get %s\r\n" % s, 5) == b"END\r\n"
    r.close()


def test_gat_gats(mc4_alive):
    p = uniq("gat")
    a, b, miss = p + b"a", p + b"b", p + b"miss"
    r = mc4_alive.raw()
    assert r.call(b"set %s 1 0 1\r\nA\r\nset %s 2 0 2\r\nBB\r\n" % (a, b), 16) == b"STORED\r\nSTORED\r\n"
    want = value_reply(b, 2, b"BB") + value_reply(a, 1, b"A") + b"END\r\n"
    assert r.call(b"gat 100 %s %s %s\r\n" % (b, miss, a), len(want)) == want
    got = r.call(b"gats 0 %s %s %s\r\n" % (miss, a, b), marker=b"END\r\n")
    m = re.match(rb"VALUE (\S+) 1 1 \d+\r\nA\r\nVALUE (\S+) 2 2 \d+\r\nBB\r\nEND\r\n$", got)
    assert m and m.group(1) == a and m.group(2) == b, got
    # gat with a past exptime expires them after returning them
    want = value_reply(a, 1, b"A") + b"END\r\n"
    assert r.call(b"gat -1 %s\r\n" % a, len(want)) == want
    assert r.call(b"get %s\r\n" % a, 5) == b"END\r\n"
    want = b"CLIENT_ERROR invalid exptime argument\r\n"
    assert r.call(b"gat x %s\r\n" % a, len(want)) == want
    r.close()


def test_version_is_a_live_servers(mc4_alive):
    d = mc4_alive.ref.raw()
    direct = d.call(b"version\r\n", marker=b"\r\n")
    d.close()
    assert direct.startswith(b"VERSION 1.")
    r = mc4_alive.raw()
    assert r.call(b"version\r\n", len(direct)) == direct
    assert r.call(b"version\r\nversion\r\n", 2 * len(direct)) == direct * 2
    r.close()


def test_quit_closes_after_earlier_replies(mc4_alive):
    p = uniq("q")
    r = mc4_alive.raw()
    r.send(b"set %s 0 0 1\r\nx\r\nget %s\r\nquit\r\nget %s\r\n" % (p, p, p))
    want = b"STORED\r\n" + value_reply(p, 0, b"x") + b"END\r\n"
    assert r.read(len(want)) == want
    assert r.closed()
    r.close()
    r = mc4_alive.raw()
    r.send(b"quit\r\n")
    assert r.closed()
    r.close()


K250 = b"k" * 250
FMT = b"CLIENT_ERROR bad command line format\r\n"


@pytest.mark.parametrize("req,want", [
    (b"get " + K250 + b"k\r\n", FMT),
    (b"set " + K250 + b"k 0 0 1\r\n", FMT),
    (b"get a\x01b\r\n", FMT),
    (b"get a\x7fb\r\n", FMT),
    (b"delete a\tb\r\n", FMT),
    (b"mg " + K250 + b"k v\r\n", FMT),
    (b"bogus\r\n", b"ERROR\r\n"),
    (b"GET a\r\n", b"ERROR\r\n"),
    (b"\r\n", b"ERROR\r\n"),
    (b"get\r\n", b"ERROR\r\n"),
    (b"set a 0 0\r\n", b"ERROR\r\n"),
    (b"set a x 0 1\r\n", FMT),
    (b"set a 0 0 -1\r\n", FMT),
    (b"set a 0 0 1 noreply junk\r\n", b"ERROR\r\n"),
    (b"incr a\r\n", b"ERROR\r\n"),
    (b"touch a x\r\n", b"CLIENT_ERROR invalid exptime argument\r\n"),
    (b"ms a\r\n", FMT),
], ids=["get-long-key", "set-long-key", "get-ctrl-byte", "get-del-byte", "delete-tab",
        "mg-long-key", "unknown", "upper-case", "empty-line", "get-no-key", "set-short",
        "set-bad-flags", "set-negative-length", "set-too-many", "incr-no-delta",
        "touch-bad-exptime", "ms-no-length"])
def test_bad_requests_keep_connection(mc4_alive, req, want):
    p = uniq("bad")
    r = mc4_alive.raw()
    got = r.call(req + b"set %s 0 0 2\r\nok\r\n" % p, len(want) + 8)
    assert got == want + b"STORED\r\n"
    assert r.pending() == b""
    r.close()


def test_bad_line_noreply_is_silent(mc4_alive):
    # as memcached: a bad storage line with noreply gets no reply; its data is then read
    # as a command line ("xy" -> ERROR)
    p = uniq("bnr")
    r = mc4_alive.raw()
    r.send(b"set %s x 0 2 noreply\r\nxy\r\nget %s\r\n" % (p, p))
    assert r.read(12) == b"ERROR\r\nEND\r\n"
    assert r.pending() == b""
    r.close()


def test_key_of_250_bytes(mc4_alive):
    key = uniq("long") + b"x" * 200
    key = key + b"y" * (250 - len(key))
    assert len(key) == 250
    r = mc4_alive.raw()
    want = b"STORED\r\n" + value_reply(key, 0, b"v") + b"END\r\n"
    assert r.call(b"set %s 0 0 1\r\nv\r\nget %s\r\n" % (key, key), len(want)) == want
    r.close()


def test_bad_data_chunk_closes(mc4_alive):
    p = uniq("chunk")
    r = mc4_alive.raw()
    r.send(b"get %s\r\nset %s 0 0 3\r\nbarx\r\nget %s\r\n" % (p, p, p))
    assert r.read(34) == b"END\r\nCLIENT_ERROR bad data chunk\r\n"
    assert r.closed()
    r.close()


def test_values_near_the_limit(mc4_alive):
    p = uniq("big")
    r = mc4_alive.raw()
    for size in (16383, 16384, 16385, 100000, 1000000):
        data = bytes((i * 7 + size) % 251 for i in range(size))
        key = p + b"%d" % size
        assert r.call(b"set %s 0 0 %d\r\n%s\r\n" % (key, size, data), 8) == b"STORED\r\n"
        want = value_reply(key, 0, data) + b"END\r\n"
        assert r.call(b"get %s\r\n" % key, len(want), ) == want
    r.close()


@pytest.mark.parametrize("size", [1024 * 1024 + 1, 2 * 1024 * 1024])
def test_value_over_limit(mc4_alive, size):
    p = uniq("over")
    r = mc4_alive.raw()
    assert r.call(b"set %s 0 0 1\r\nx\r\n" % p, 8) == b"STORED\r\n"
    # the line first, then the data in pieces: the refusal is not held back by them
    r.send(b"set %s 0 0 %d\r\n" % (p, size))
    chunk = b"z" * 65536
    left = size
    while left > 0:
        r.send(chunk[:min(left, len(chunk))])
        left -= min(left, len(chunk))
    r.send(b"\r\nget %s\r\n" % p)
    want = b"SERVER_ERROR object too large for cache\r\n" + value_reply(p, 0, b"x") + b"END\r\n"
    assert r.read(len(want), timeout=10) == want
    # noreply: refused silently, as memcached does
    r.send(b"set %s 0 0 %d noreply\r\n" % (p, size) + b"q" * size + b"\r\nget %s\r\n" % p)
    want = value_reply(p, 0, b"x") + b"END\r\n"
    assert r.read(len(want), timeout=10) == want
    assert r.pending() == b""
    r.close()


def test_pymemcache_client(mc4_alive):
    p = uniq("py").decode()
    c = Client(("127.0.0.1", mc4_alive.port), connect_timeout=5, timeout=5, default_noreply=False)
    try:
        vals = {p + str(i): ("value-%d" % i).encode() * (i + 1) for i in range(50)}
        assert c.set_many(vals) == []
        got = c.get_many(list(vals) + [p + "missing"])
        assert got == vals
        assert c.get(p + "missing") is None
        v, cas = c.gets(p + "3")
        assert v == vals[p + "3"]
        assert c.cas(p + "3", b"new", cas) is True
        assert c.cas(p + "3", b"newer", cas) is False
        assert c.get(p + "3") == b"new"
        assert c.set(p + "n", b"41")
        assert c.incr(p + "n", 1) == 42
        assert c.decr(p + "n", 2) == 40
        assert c.add(p + "n", b"x") is False
        assert c.replace(p + "n", b"7") is True
        assert c.append(p + "n", b"8") is True
        assert c.prepend(p + "n", b"6") is True
        assert c.get(p + "n") == b"678"
        assert c.touch(p + "n", 100) is True
        assert c.delete(p + "n") is True
        assert c.delete(p + "n", noreply=False) is False
        assert c.set(p + "nr", b"quiet", noreply=True) is True
        assert c.get(p + "nr") == b"quiet"
        assert c.version().startswith(b"1.")
    finally:
        c.close()
