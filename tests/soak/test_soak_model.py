"""tests/soak/test_soak_model.py: the soak's own checker must catch what it claims to catch:
foreign, corrupted or never-written values, and replies split at any byte by the network.

Run: /usr/bin/python3 -m pytest -q tests/soak/test_soak_model.py
"""

import os
import random
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import soak  # noqa: E402


def make_key(name=b"soak:r01:s001", kind="s"):
    return soak.Key(name, kind)


def test_own_values_are_plausible():
    k = make_key()
    rng = random.Random(1)
    v = k.seg(rng) + k.seg(rng) + k.seg(rng)  # SET then two APPENDs
    assert soak.plausible(k, v) == (True, "")
    assert soak.plausible(k, None) == (True, "")


@pytest.mark.parametrize("mutate,why", [
    (lambda k, v, o: o, "segment of key soak:r02:s001"),           # another client's data
    (lambda k, v, o: v[:-5] + b"X" + v[-4:], "filler corrupted"),  # one byte changed
    (lambda k, v, o: v[:-1], "not terminated"),                    # truncated
    (lambda k, v, o: v + b"junk", "no segment header"),            # trailing garbage
    (lambda k, v, o: b"", "empty value"),
])
def test_wrong_values_are_caught(mutate, why):
    rng = random.Random(2)
    k, other = make_key(), make_key(b"soak:r02:s001")
    v, o = k.seg(rng), other.seg(rng)
    ok, reason = soak.plausible(k, mutate(k, v, o))
    assert not ok, reason
    assert why in reason, (why, reason)


def test_future_version_is_caught():
    rng = random.Random(3)
    k = make_key()
    v = k.seg(rng)
    k.ver = 0  # as if this version had never been generated
    ok, reason = soak.plausible(k, v)
    assert not ok and "never written" in reason, reason


def test_counter_values():
    k = make_key(b"soak:r01:c00", "c")
    assert soak.plausible(k, b"12345")[0]
    assert not soak.plausible(k, b"12a")[0]
    assert not soak.plausible(k, b"<soak:r01:c00#1:x>")[0]


class TrickleSocket:
    """A socket that hands out `data` in the given chunk sizes."""

    def __init__(self, data, sizes):
        self.data, self.sizes, self.pos = data, sizes, 0

    def recv(self, n):
        if self.pos >= len(self.data):
            return b""
        step = min(n, next(self.sizes))
        out = self.data[self.pos:self.pos + step]
        self.pos += len(out)
        return out


def wire_over(data, sizes):
    w = soak.Wire.__new__(soak.Wire)
    w.s, w.buf, w.pos = TrickleSocket(data, sizes), bytearray(), 0
    return w


def resp_stream(reps=3):
    rng = random.Random(4)
    k = make_key()
    big = k.seg(rng)
    while len(big) < 70000:  # crosses the 64 KiB compaction point of Wire._fill
        big += k.seg(rng)
    replies = [b"+OK\r\n", b":42\r\n", b"$-1\r\n", b"$%d\r\n%s\r\n" % (len(big), big),
               b"-ERR Connection refused\r\n", b"*2\r\n$3\r\nabc\r\n$-1\r\n"]
    expect = [b"OK", 42, None, big, "ERR", [b"abc", None]]
    return b"".join(replies * reps), expect * reps


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1000, 65536, 1 << 18])
def test_resp_any_split(chunk):
    data, expect = resp_stream(1 if chunk < 4 else 3)  # byte by byte: keep it quick
    w = wire_over(data, iter(lambda: chunk, None))
    for want in expect:
        got = w.resp()
        if want == "ERR":
            assert isinstance(got, soak.Err) and got.msg == b"ERR Connection refused"
        else:
            assert got == want, (want if not isinstance(want, bytes) else len(want), got if not isinstance(got, bytes) else len(got))


def test_resp_random_splits():
    data, expect = resp_stream()
    rng = random.Random(5)
    w = wire_over(data, iter(lambda: rng.randint(1, 40000), None))
    for want in expect:
        got = w.resp()
        if want != "ERR":
            assert got == want


def test_mc_values_split_and_errors():
    rng = random.Random(6)
    k = make_key(b"soak:m01:s001")
    v = k.seg(rng) + b"\r\nEND\r\n" + k.seg(rng)  # payload that looks like protocol
    data = (b"VALUE soak:m01:s001 7 %d\r\n%s\r\nEND\r\n" % (len(v), v) + b"END\r\n" +
            b"SERVER_ERROR Connection refused\r\n" + b"STORED\r\n")
    for chunk in (1, 5, 4096):
        w = wire_over(data, iter(lambda: chunk, None))
        assert w.mc_values() == [(b"soak:m01:s001", 7, v)]
        assert w.mc_values() == []
        e = w.mc_values()
        assert isinstance(e, soak.Err) and e.msg.startswith(b"SERVER_ERROR")
        assert w.mc_line() == b"STORED"


def test_fault_windows():
    f = soak.Faults(["a", "b"], grace=1.5)
    assert not f.near({"a"}, 0, 1e9)
    f.begin("a", "stop")
    t = f.win["a"][-1][0]
    assert f.near({"a"}, t - 10, t + 0.1)       # request in flight when the fault began
    assert not f.near({"a"}, t - 10, t - 5)     # answered before the fault
    assert not f.near({"b"}, t, t + 1)          # another server
    f.end("a")
    e = f.win["a"][-1][1]
    assert f.near({"a"}, e + 1.0, e + 1.2)      # within the grace
    assert not f.near({"a"}, e + 2.0, e + 2.1)  # after it
    assert f.kill_gen["a"] == 0
    f.begin("a", "kill")
    assert f.kill_gen["a"] == 1
