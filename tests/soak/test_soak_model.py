"""tests/soak/test_soak_model.py: the soak's own checker must catch what it claims to catch:
foreign, corrupted or never-written values, and replies split at any byte by the network.

Run: /usr/bin/python3 -m pytest -q tests/soak/test_soak_model.py
"""

import os
import random
import time
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


# ---------------------------------------------------------------------------
# transactions, WATCH, and the lists popped with BLPOP

class FakeSink:
    def __init__(self):
        self.wrongs, self.outsides = [], []

    def wrong(self, rec):
        self.wrongs.append(rec)

    def outside(self, rec):
        self.outsides.append(rec)


class Opts:
    seed, eject, sessions, sessions_apart, t_start = 1, False, True, False, 0.0


def redis_client(shared=None):
    faults = soak.Faults(["redis0"], grace=1.5)
    sink = FakeSink()
    c = soak.RedisClient(1, 0, {"redis0"}, faults, None, Opts(), sink, shared)
    for k in c.keys:
        k.home = {"redis0"}
    return c, faults, sink


def ctx_for(op, t0=100.0, t1=100.1):
    ctx = soak.Ctx()
    ctx.t0, ctx.t1, ctx.servers, ctx.op, ctx.i, ctx.batch = t0, t1, {"redis0"}, op, 0, 1
    return ctx


OK, QUEUED = soak.Simple(b"OK"), soak.Simple(b"QUEUED")


def txn(c, subs):
    """A MULTI op over one group: subs are (name, key index in the group, value)."""
    g = c.groups[0]
    subs = [(n, g[i], v) for n, i, v in subs]
    keys = list({id(k): k for _, k, _ in subs}.values())
    return ("MULTI", keys, True, b"", subs)


def known(c, s=b"<x>", c0=b"5"):
    s_key, c0_key, _ = c.groups[0]
    s_key.val, s_key.known, c0_key.val, c0_key.known = s, True, c0, True
    return s_key, c0_key


def test_exec_array_applies_in_order():
    c, _, sink = redis_client()
    s_key, c0 = known(c)
    v = s_key.seg(random.Random(7))
    op = txn(c, [("INCR", 1, None), ("SET", 0, v), ("INCR", 1, None), ("GET", 0, None)])
    c.check(ctx_for(op), op, [OK, QUEUED, QUEUED, QUEUED, QUEUED, [6, OK, 7, v]])
    assert sink.wrongs == [] and c.c["txn_ok"] == 1
    assert (c0.val, c0.known, s_key.val, s_key.known) == (b"7", True, v, True)


@pytest.mark.parametrize("exec_reply,what", [
    ([6, 6], "INCR result"),                              # the second INCR did not count
    ([6, b"<x>"], "value"),                               # GET after INCR: must see the SET
    ([6, soak.Err(b"ERR boom")], "error inside EXEC"),    # nothing of ours fails inside EXEC
    ([OK, 6], "reply"),                                   # replies paired with the wrong command
])
def test_wrong_exec_elements_are_caught(exec_reply, what):
    c, _, sink = redis_client()
    known(c)
    v = c.groups[0][0].seg(random.Random(8))
    second = ("INCR", 1, None) if what != "value" else ("GET", 0, None)
    if what == "value":
        op = txn(c, [("INCR", 1, None), ("SET", 0, v), ("GET", 0, None)])
        exec_reply = [6, OK, b"<x>"]
    else:
        op = txn(c, [("INCR", 1, None), second])
    try:
        c.check(ctx_for(op), op, [OK] + [QUEUED] * len(op[4]) + [exec_reply])
    except soak.Desync:
        pass
    assert len(sink.wrongs) == 1 and what in sink.wrongs[0]["what"], sink.wrongs


def test_execabort_applies_nothing_and_needs_a_fault():
    c, faults, sink = redis_client()
    s_key, c0 = known(c)
    op = txn(c, [("INCR", 1, None)])
    abort = soak.Err(b"EXECABORT Transaction discarded because of previous errors.")
    lost = soak.Err(b"ERR the transaction's server connection was lost; EXEC will abort it")
    c.check(ctx_for(op), op, [OK, lost, abort])      # no fault window: both are outside
    assert c.c["txn_aborted"] == 1 and len(sink.outsides) == 2 and sink.wrongs == []
    assert (c0.val, c0.known) == (b"5", True)        # nothing ran
    faults.begin("redis0", "stop")
    t = faults.win["redis0"][-1][0]
    c.check(ctx_for(op, t, t + 0.5), op, [OK, lost, abort])
    assert len(sink.outsides) == 2 and (c0.val, c0.known) == (b"5", True)


def test_exec_error_is_indeterminate():
    c, faults, sink = redis_client()
    _, c0 = known(c)
    faults.begin("redis0", "stop")
    t = faults.win["redis0"][-1][0]
    op = txn(c, [("INCR", 1, None)])
    c.check(ctx_for(op, t, t + 0.5), op, [OK, QUEUED, soak.Err(b"ERR Connection timed out")])
    assert not c0.known and sink.wrongs == [] and c.c["txn_errors"] == 1


def test_exec_that_ran_after_a_refused_command_is_caught():
    c, faults, sink = redis_client()
    known(c)
    faults.begin("redis0", "kill")
    t = faults.win["redis0"][-1][0]
    op = txn(c, [("INCR", 1, None), ("INCR", 1, None)])
    c.check(ctx_for(op, t, t + 0.5), op, [OK, QUEUED, soak.Err(b"ERR Connection refused"), [6, 7]])
    assert len(sink.wrongs) == 1 and "refused" in sink.wrongs[0]["what"]


def test_exec_nil_without_watch_is_caught():
    c, _, sink = redis_client()
    known(c)
    op = txn(c, [("INCR", 1, None)])
    with pytest.raises(soak.Desync):
        c.check(ctx_for(op), op, [OK, QUEUED, None])
    assert len(sink.wrongs) == 1


def watch_try(new, exec_reply, got=b"5"):
    return {"watch": OK, "get": got, "new": new, "txn": [OK, QUEUED, exec_reply]}


def test_watch_increment():
    c, faults, sink = redis_client()
    _, c0 = known(c)
    op = ("WATCH", [c0], True, b"", None)
    c.check(ctx_for(op), op, [watch_try(b"6", [OK])])
    assert sink.wrongs == [] and c0.val == b"6" and c.c["watch_ok"] == 1
    # nil with no fault and no other writer of the key: wrong
    c.check(ctx_for(op), op, [watch_try(b"7", None, b"6")])
    assert len(sink.wrongs) == 1 and "nil" in sink.wrongs[0]["what"]
    assert not c0.known                  # a wrong reply leaves its key unknown
    c0.val, c0.known = b"6", True
    # nil in a fault window (the WATCH was lost with its connection), then a retry that ran
    faults.begin("redis0", "stop")
    t = faults.win["redis0"][-1][0]
    c.check(ctx_for(op, t, t + 0.5), op, [watch_try(b"7", None, b"6"), watch_try(b"7", [OK], b"6")])
    assert len(sink.wrongs) == 1 and c.c["watch_nil"] == 2 and c0.val == b"7"
    # the GET under WATCH is checked against the model like any read
    c.check(ctx_for(op, t + 100, t + 100.1), op, [watch_try(b"10", [OK], b"9")])
    assert len(sink.wrongs) == 2 and sink.wrongs[1]["what"] == "value"


def queues():
    return soak.Queues(soak.Faults(["redis0"], grace=1.5))


def test_pops_are_checked():
    qs = queues()
    a, b = qs.queues[0], qs.queues[1]
    v = qs.new_value(a, "redis-1", {"redis0"})
    assert qs.pop(b.name, v) == "a value pushed to soak:{q0}:list"
    assert qs.pop(a.name, b"<soak:{q0}:list|redis-1|999>") == "a value never pushed"
    assert qs.pop(a.name, v) is None
    assert qs.pop(a.name, v) == "a value popped before"


def test_lists_at_the_end():
    qs = queues()
    q = qs.queues[0]
    vals = [qs.new_value(q, "redis-1", {"redis0"}) for _ in range(6)]
    for v in vals[:5]:
        qs.confirm(v)                      # vals[5]: its push got an error (indeterminate)
    assert qs.pop(q.name, vals[0]) is None
    counts, problems = qs.settle({q.name: [vals[1], vals[2]]})
    assert counts["found"] == 3 and counts["unanswered_missing"] == 1
    assert [p["what"] for p in problems] == [
        "a push answered with a length is neither popped nor in the list"] * 2  # vals[3], vals[4]
    qs.pop_lost(q.name, time.monotonic())  # a BLPOP lost its reply after those pushes
    counts, problems = qs.settle({q.name: [vals[1], vals[2]]})
    assert problems == [] and counts["lost_with_a_blpop_reply"] == 2
    counts, problems = qs.settle({q.name: [vals[0], vals[1], vals[1], b"junk"]})
    assert sorted(p["what"] for p in problems) == [
        "left in soak:{q0}:list: a value never pushed", "popped and still in the list",
        "twice in the list"]


def test_lost_to_a_kill():
    qs = queues()
    q = qs.queues[0]
    v = qs.new_value(q, "redis-1", {"redis0"})
    qs.confirm(v)
    qs.faults.begin("redis0", "kill")
    counts, problems = qs.settle({q.name: []})
    assert problems == [] and counts["lost_to_kill"] == 1


def test_blpop_replies():
    qs = queues()
    c = soak.QueueClient(0, 0, {"redis0"}, qs.faults, None, Opts(), FakeSink(), qs)
    q, other = qs.queues[0], qs.queues[1]
    v = qs.new_value(q, "redis-1", {"redis0"})
    op = ("BLPOP", [q], False, b"", None)
    c.check(ctx_for(op, 100.0, 101.0), op, None)           # nil after its 1 s timeout
    c.check(ctx_for(op, 100.0, 100.2), op, None)           # nil too early
    c.check(ctx_for(op), op, [other.name, v])               # from a key not asked
    c.check(ctx_for(op), op, [q.name, v])                   # popped before
    whats = [w["what"] for w in c.sink.wrongs]
    assert whats == ["BLPOP nil before its timeout", "BLPOP popped from a key not asked",
                     "BLPOP value: a value popped before"], whats
    assert c.c["blpop_timeouts"] == 2 and c.c["blpop_pops"] == 2
