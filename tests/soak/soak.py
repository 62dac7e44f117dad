#!/usr/bin/python3
"""tests/soak/soak.py: keymux fault soak: model-checked Redis and memcached traffic through
keymux while its backends are killed, stopped and slowed; zero wrong replies expected.

Run: /usr/bin/python3 tests/soak/soak.py [--duration 600] [--clients 32] [--eject] ...
(`make soak SOAK_SECONDS=60`). Starts 3 redis-server, 2 memcached and keymux on
127.0.0.1 ports 28000-28999, all stopped by PID at the end (also on Ctrl-C or an error).

The model. Every client owns its keys (the client id is in every key) and keeps, per key,
either the exact value (known) or "unknown". Every reply is compared with the model:
  - a wrong reply (a value the model does not allow, another key's or client's data, a
    reply of the wrong shape, an out-of-order item) is counted WRONG and logged in full;
  - an error reply is allowed only while a server the request touches is in a fault
    window (from just before the fault until it is undone, plus a grace of timeout + 1 s);
    an error on a write makes its keys unknown;
  - an unknown key accepts any value this client could have written to it (every value
    carries "<key#version:filler>" segments, so foreign or garbled data is still caught),
    and becomes known again from a reply to a request sent when its server was quiet;
  - a kill -9 of a server makes every key it holds unknown (the data is gone).
Where each key lives is learnt from the backends themselves after the first writes, so a
fault on one server allows errors for that server's keys only (strict mode). With
--eject (auto_eject_hosts: true) keys move while a server is out of the ring and come back
to older data, so a value this key once had is accepted as "stale" (counted, not wrong),
and errors are allowed during a fault on any server of the pool.
"""

import argparse
import collections
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PORT_LO, PORT_HI = 28000, 28999
CLIENT_TIMEOUT = 10.0  # s without a reply (keymux's own timeout is 0.5 s): a stall

# ---------------------------------------------------------------------------
# values: "<key#ver:filler>" segments; the filler is a slice of ALPH chosen by (key, ver, len)

def _make_alph():
    rng = random.Random(0x5EED)
    pool = bytes(c for c in range(33, 127) if c not in b"<>") + b" \t\x00\xff\x80"
    out = bytearray(rng.choice(pool) for _ in range(1 << 17))
    for i in range(0, len(out) - 2, 97):  # CRLF inside values: payloads must be skipped by length
        out[i:i + 2] = b"\r\n"
    return bytes(out)


ALPH = _make_alph()
SEG_HEAD = re.compile(rb"<([^#<>]{1,200})#(\d{1,12}):")


def filler_off(h, ver, n):
    return (ver * 7919 + h) % (len(ALPH) - n)


MAX_VALUE = [40000]  # --max-value


def value_size(rng):
    r = rng.random()
    if r < 0.70:
        n = rng.randint(1, 64)
    elif r < 0.90:
        n = rng.randint(65, 2048)
    elif r < 0.98:
        n = rng.randint(2049, 16000)
    else:
        n = rng.randint(16001, 40000)
    return min(n, MAX_VALUE[0])


class Key:
    __slots__ = ("name", "kind", "h", "flags", "ver", "val", "known", "home")

    def __init__(self, name, kind):
        self.name = name          # bytes
        self.kind = kind          # 's' string, 'c' counter
        self.h = zlib.crc32(name)
        self.flags = self.h & 0xFFFF
        self.ver = 0              # highest version ever generated for this key
        self.val = None           # model value (bytes) or None (absent), valid when known
        self.known = True         # before the first write the key is absent
        self.home = None          # backend names holding it (learnt), None = any of the pool

    def seg(self, rng):
        self.ver += 1
        n = value_size(rng)
        off = filler_off(self.h, self.ver, n)
        return b"<%s#%d:%s>" % (self.name, self.ver, ALPH[off:off + n])


def plausible(key, got):
    """(True, '') when got is a value this key could hold, else (False, why)."""
    if got is None:
        return True, ""
    if key.kind == "c":
        if got.isdigit() and len(got) <= 20:
            return True, ""
        return False, "counter holds non-digits: %s" % describe(got)
    pos, n = 0, len(got)
    if n == 0:
        return False, "empty value"
    while pos < n:
        m = SEG_HEAD.match(got, pos)
        if m is None:
            return False, "no segment header at byte %d: %s" % (pos, describe(got[pos:]))
        tag, ver = m.group(1), int(m.group(2))
        end = got.find(b">", m.end())
        if end < 0:
            return False, "segment %s#%d not terminated" % (tag.decode("latin1"), ver)
        if tag != key.name:
            return False, "segment of key %s (ver %d), not of %s" % (
                tag.decode("latin1"), ver, key.name.decode("latin1"))
        if ver > key.ver:
            return False, "version %d never written (highest %d)" % (ver, key.ver)
        fill = got[m.end():end]
        off = filler_off(key.h, ver, len(fill))
        if fill != ALPH[off:off + len(fill)]:
            return False, "segment #%d filler corrupted" % ver
        pos = end + 1
    return True, ""


def describe(v, limit=160):
    if v is None:
        return "nil"
    if isinstance(v, (bytes, bytearray)):
        heads = [(t.decode("latin1"), int(x)) for t, x in SEG_HEAD.findall(bytes(v[:4096]))][:4]
        s = repr(bytes(v[:limit]))
        if len(v) > limit:
            s += "...(%d bytes)" % len(v)
        if heads:
            s += " segments=%s" % heads
        return s
    return repr(v)[:limit]


# ---------------------------------------------------------------------------
# processes and ports

def port_free(port):
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
    except OSError:
        return False
    finally:
        s.close()
    c = socket.socket()
    c.settimeout(0.2)
    try:
        c.connect(("127.0.0.1", port))
        return False
    except OSError:
        return True
    finally:
        c.close()


def pick_ports(n):
    start = PORT_LO + (os.getpid() * 37) % (PORT_HI - PORT_LO + 1)
    out = []
    for i in range(PORT_HI - PORT_LO + 1):
        p = PORT_LO + (start - PORT_LO + i) % (PORT_HI - PORT_LO + 1)
        if port_free(p):
            out.append(p)
            if len(out) == n:
                return out
    raise RuntimeError("not enough free ports in %d-%d" % (PORT_LO, PORT_HI))


def wait_port(port, timeout, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


PROCS = []  # every Popen we started, for cleanup


def stop_proc(p, timeout=5.0):
    if p is None or p.poll() is not None:
        return p.returncode if p is not None else None
    for sig in (signal.SIGCONT, signal.SIGTERM):
        try:
            os.kill(p.pid, sig)
        except ProcessLookupError:
            pass
    try:
        return p.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.kill(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    return p.returncode


def cleanup_all():
    for p in reversed(PROCS):
        try:
            stop_proc(p)
        except Exception:  # keep stopping the others
            pass


class Backend:
    def __init__(self, kind, idx, port, rundir):
        self.kind, self.port, self.rundir = kind, port, rundir
        self.name = "%s%d" % ("redis" if kind == "redis" else "mc", idx)
        self.addr = "127.0.0.1:%d" % port
        self.proc = None
        self.starts = 0

    def argv(self):
        if self.kind == "redis":
            return ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--daemonize", "no",
                    "--dir", self.rundir, "--dbfilename", self.name + ".rdb",
                    "--logfile", os.path.join(self.rundir, self.name + ".log")]
        argv = ["memcached", "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-m", "256",
                "-c", "4096", "-t", "4"]
        if os.geteuid() == 0:
            argv += ["-u", "root"]
        return argv

    def start(self):
        out = open(os.path.join(self.rundir, self.name + ".out"), "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        out.close()
        PROCS.append(self.proc)
        self.starts += 1
        if not wait_port(self.port, 10, self.proc):
            raise RuntimeError("%s did not start on port %d" % (self.name, self.port))

    def signal(self, sig):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def kill9(self):
        self.signal(signal.SIGKILL)
        self.proc.wait(10)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


# ---------------------------------------------------------------------------
# fault windows

class Faults:
    def __init__(self, names, grace):
        self.grace = grace
        self.win = {n: [] for n in names}      # [start, end|None], append-only
        self.kill_gen = {n: 0 for n in names}  # bumped before every SIGKILL
        self.lock = threading.Lock()
        self.log = []

    def begin(self, name, kind):
        with self.lock:
            if kind == "kill":
                self.kill_gen[name] += 1
            self.win[name].append([time.monotonic(), None])

    def end(self, name):
        with self.lock:
            w = self.win[name]
            if w and w[-1][1] is None:
                w[-1][1] = time.monotonic()

    def near(self, names, t0, t1):
        """True when a fault window of one of names overlaps [t0 - grace, t1]."""
        g = self.grace
        for n in names:
            for w in reversed(self.win[n]):
                end = w[1]
                if end is not None and end + g < t0:
                    break
                if w[0] <= t1:
                    return True
        return False

    def ever(self, names):
        return any(self.win[n] for n in names)


# ---------------------------------------------------------------------------
# wire

class ProtoError(Exception):
    pass


class Err:
    __slots__ = ("msg",)

    def __init__(self, msg):
        self.msg = bytes(msg)

    def __repr__(self):
        return "Err(%r)" % self.msg[:200]


class Simple(bytes):
    def __repr__(self):
        return "+" + bytes.__repr__(self)


class Wire:
    def __init__(self, port):
        s = socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(CLIENT_TIMEOUT)
        self.s, self.buf, self.pos = s, bytearray(), 0

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    def send(self, data):
        self.s.sendall(data)

    def _fill(self):
        if self.pos > 1 << 16:
            del self.buf[:self.pos]
            self.pos = 0
        c = self.s.recv(1 << 18)
        if not c:
            raise EOFError("keymux closed the connection")
        self.buf += c

    def line(self):
        skip = 0  # bytes after pos already searched (relative: _fill may move the buffer)
        while True:
            i = self.buf.find(b"\r\n", self.pos + skip)
            if i >= 0:
                out = bytes(self.buf[self.pos:i])
                self.pos = i + 2
                return out
            skip = max(0, len(self.buf) - self.pos - 1)
            if len(self.buf) - self.pos > 1 << 20:
                raise ProtoError("line longer than 1 MiB: %r" % bytes(self.buf[self.pos:self.pos + 80]))
            self._fill()

    def exact(self, n):
        while len(self.buf) - self.pos < n:
            self._fill()
        out = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return out

    def resp(self):
        ln = self.line()
        t, rest = ln[:1], ln[1:]
        try:
            if t == b"+":
                return Simple(rest)
            if t == b"-":
                return Err(rest)
            if t == b":":
                return int(rest)
            if t == b"$":
                n = int(rest)
                if n < 0:
                    return None
                d = self.exact(n + 2)
                if d[-2:] != b"\r\n":
                    raise ProtoError("bulk of %d not followed by CRLF" % n)
                return d[:-2]
            if t == b"*":
                n = int(rest)
                if n < 0:
                    return None
                return [self.resp() for _ in range(n)]
        except ValueError:
            pass
        raise ProtoError("bad RESP line %r" % ln[:200])

    def mc_line(self):
        ln = self.line()
        if ln == b"ERROR" or ln.startswith(b"SERVER_ERROR") or ln.startswith(b"CLIENT_ERROR"):
            return Err(ln)
        return ln

    def mc_values(self):
        """A get reply: list of (key, flags, data), or Err."""
        items = []
        while True:
            ln = self.mc_line()
            if isinstance(ln, Err):
                return ln if not items else Err(b"(after %d items) " % len(items) + ln.msg)
            if ln == b"END":
                return items
            parts = ln.split(b" ")
            if parts[0] != b"VALUE" or len(parts) not in (4, 5):
                raise ProtoError("bad line in a get reply: %r" % ln[:200])
            try:
                flags, n = int(parts[2]), int(parts[3])
            except ValueError:
                raise ProtoError("bad VALUE line %r" % ln[:200])
            d = self.exact(n + 2)
            if d[-2:] != b"\r\n":
                raise ProtoError("data block of %d not followed by CRLF" % n)
            items.append((parts[1], flags, d[:-2]))


# ---------------------------------------------------------------------------
# clients

class Desync(Exception):
    """The reply stream can no longer be trusted: reconnect."""


class Control:
    def __init__(self, n):
        self.cv = threading.Condition()
        self.phase, self.seq, self.n, self.idle = "init", 0, n, 0
        self.deadline = float("inf")

    def set(self, phase, deadline=float("inf")):
        with self.cv:
            self.phase, self.deadline = phase, deadline
            self.seq += 1
            self.idle = 0
            self.cv.notify_all()

    def report_idle(self):
        with self.cv:
            self.idle += 1
            self.cv.notify_all()

    def leave(self):
        with self.cv:
            self.n -= 1
            self.cv.notify_all()

    def wait_next(self, seen):
        with self.cv:
            while self.seq == seen:
                self.cv.wait(1.0)
            return self.phase, self.seq

    def wait_idle(self, timeout):
        end = time.monotonic() + timeout
        with self.cv:
            while self.idle < self.n:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.cv.wait(min(left, 1.0))
            return True


class Ctx:
    __slots__ = ("t0", "t1", "servers", "op", "i", "batch")


class Client(threading.Thread):
    proto = None
    NS, NC = 40, 8  # string keys, counter keys per client
    ALONE = ()      # ops sent in a batch of their own

    def __init__(self, cid, port, pool_servers, faults, ctl, opts, sink, shared=None):
        super().__init__(name="%s-%d" % (self.kind_name(), cid), daemon=True)
        self.shared = shared      # Queues (lists pushed and popped by several clients) or None
        self.cid, self.port, self.pool_servers = cid, port, pool_servers
        self.faults, self.ctl, self.opts, self.sink = faults, ctl, opts, sink
        self.rng = random.Random(opts.seed * 1000 + cid)
        tag = b"soak:%s%02d:" % (b"r" if self.proto == "redis" else b"m", cid)
        self.skeys = [Key(tag + b"s%03d" % i, "s") for i in range(self.NS)]
        self.ckeys = [Key(tag + b"c%02d" % i, "c") for i in range(self.NC)]
        self.keys = self.skeys + self.ckeys
        self.seen_kill = dict(faults.kill_gen)
        self.c = collections.Counter()
        self.ops = collections.Counter()
        self.errmsgs = collections.Counter()
        self.wire = None
        self.batch_no = 0
        self.final = False
        self.crash = None

    @classmethod
    def kind_name(cls):
        return cls.proto

    # -- model helpers
    def servers_of(self, keys):
        if self.opts.eject:
            return self.pool_servers
        out = set()
        for k in keys:
            if k.home is None:
                return self.pool_servers
            out.update(k.home)
        return out

    def quiet(self, ctx):
        return not self.faults.near(ctx.servers, ctx.t0, ctx.t1)

    def stale_ok(self):
        return self.opts.eject and self.faults.ever(self.pool_servers)

    def sync_kills(self):
        gen = self.faults.kill_gen
        if gen == self.seen_kill:
            return
        for name, g in list(gen.items()):
            if self.seen_kill.get(name) != g:
                self.seen_kill[name] = g
                for k in self.keys:
                    if k.home is None or name in k.home:
                        k.known = False

    def wrong(self, ctx, what, key=None, expected=None, got=None, note=""):
        self.c["wrong"] += 1
        rec = {
            "client": self.name, "op": ctx.op[0], "keys": [k.name.decode("latin1") for k in ctx.op[1]],
            "batch": ctx.batch, "pos": ctx.i, "what": what,
            "key": key.name.decode("latin1") if key is not None else None,
            "expected": describe(expected, 400), "got": describe(got, 400), "note": note,
            "request": describe(ctx.op[3], 300), "sent_at": round(ctx.t0 - self.opts.t_start, 3),
            "reply_at": round(ctx.t1 - self.opts.t_start, 3), "servers": sorted(ctx.servers),
            "fault_near": not self.quiet(ctx),
        }
        self.sink.wrong(rec)
        if key is not None:
            key.known = False

    def error_reply(self, ctx, msg, write_keys):
        self.c["errors"] += 1
        self.errmsgs[msg[:80]] += 1
        if self.final:
            self.c["final_errors"] += 1
        if self.quiet(ctx):
            self.c["errors_outside"] += 1
            self.sink.outside({"client": self.name, "op": ctx.op[0],
                               "keys": [k.name.decode("latin1") for k in ctx.op[1]],
                               "error": msg.decode("latin1", "replace"),
                               "sent_at": round(ctx.t0 - self.opts.t_start, 3),
                               "reply_at": round(ctx.t1 - self.opts.t_start, 3),
                               "servers": sorted(ctx.servers)})
        for k in write_keys:
            k.known = False

    def check_value(self, ctx, key, got, what="value"):
        """Compare a read value with the model (learning it when the key is unknown)."""
        if key.known:
            if got == key.val:
                return
            ok, why = plausible(key, got)
            if ok and self.stale_ok():
                self.c["stale"] += 1
                key.known = False
            else:
                self.wrong(ctx, what, key, key.val, got, why or "differs from the model")
                return
        else:
            ok, why = plausible(key, got)
            if not ok:
                self.wrong(ctx, what + " (key unknown)", key, "a value of this key", got, why)
                return
        if self.quiet(ctx):
            key.val, key.known = got, True
            self.c["relearned"] += 1

    def wrote(self, ctx, keys, newval):
        """A write succeeded: newval(key) gives the key's new value, or None when unknowable."""
        q = self.quiet(ctx)
        for k in keys:
            if k.known or q:
                v = newval(k)
                if v is False:
                    k.known = False
                else:
                    k.val, k.known = v, True

    def count_check(self, ctx, keys, got, what):
        """DEL / EXISTS count over distinct keys."""
        lo = sum(1 for k in keys if k.known and k.val is not None)
        hi = lo + sum(1 for k in keys if not k.known)
        if not isinstance(got, int) or isinstance(got, bool):
            raise Desync(self.wrong(ctx, what + ": not an integer", None, "%d..%d" % (lo, hi), got))
        if lo <= got <= hi:
            return True
        if self.stale_ok() and 0 <= got <= len(keys):
            self.c["stale"] += 1
            for k in keys:
                k.known = False
            return True
        self.wrong(ctx, what + " count", None, "%d..%d" % (lo, hi), got,
                   "known present: %s" % [k.name.decode() for k in keys if k.known and k.val is not None])
        for k in keys:
            k.known = False
        return False

    # -- the loop
    def connect(self):
        for attempt in range(50):
            try:
                self.wire = Wire(self.port)
                return
            except OSError:
                if time.monotonic() > self.ctl.deadline + 30:
                    break
                time.sleep(0.1)
        raise RuntimeError("cannot connect to keymux port %d" % self.port)

    def drop(self):
        if self.wire is not None:
            self.wire.close()
            self.wire = None

    def run(self):
        try:
            self.connect()
            self.run_ops(self.init_ops())
            self.ctl.report_idle()
            seen = 0
            while True:
                phase, seen = self.ctl.wait_next(seen)
                if phase == "traffic":
                    while self.ctl.seq == seen and time.monotonic() < self.ctl.deadline:
                        self.run_ops(self.make_batch())
                elif phase == "final":
                    self.final = True
                    keys = list(self.keys)
                    for i in range(0, len(keys), 12):
                        self.run_ops([self.read_op(keys[i:i + 12])])
                    self.final = False
                elif phase == "exit":
                    break
                self.ctl.report_idle()
        except Exception:
            self.crash = traceback.format_exc()
            self.ctl.leave()
        finally:
            self.drop()

    def run_ops(self, ops):
        if not ops:
            return
        if self.wire is None:
            self.connect()
        self.batch_no += 1
        ctx = Ctx()
        ctx.batch = self.batch_no
        ctx.t0 = time.monotonic()
        done, sent = 0, False
        try:
            self.wire.send(b"".join(op[3] for op in ops))
            sent = True
            self.c["sent"] += len(ops)
            for i, op in enumerate(ops):
                ctx.op, ctx.i = op, i
                ctx.servers = self.servers_of(op[1])
                rep = self.read_reply(op)
                ctx.t1 = time.monotonic()
                self.sync_kills()
                self.c["checked"] += 1
                if self.final:
                    self.c["final_checked"] += 1
                self.ops[op[0]] += 1
                w0 = self.c["wrong"]
                self.check(ctx, op, rep)
                if self.final and self.c["wrong"] != w0:
                    self.c["final_wrong"] += 1
                done = i + 1
        except (socket.timeout, EOFError, ConnectionError, OSError, ProtoError, Desync) as e:
            ctx.t1 = time.monotonic()
            self.sync_kills()
            if isinstance(e, socket.timeout):
                self.c["stalls"] += 1
                self.sink.outside({"client": self.name, "stall": "no progress in %.0f s" % CLIENT_TIMEOUT,
                                   "while": "sending" if sent is False else "reading reply %d of %d" % (done + 1, len(ops)),
                                   "op": ops[done][0], "request": describe(ops[done][3], 200),
                                   "servers": sorted(self.servers_of(ops[done][1])),
                                   "sent_at": round(ctx.t0 - self.opts.t_start, 3),
                                   "unparsed": describe(bytes(self.wire.buf[self.wire.pos:]), 300)})
            elif isinstance(e, ProtoError):
                ctx.op, ctx.i = ops[done], done
                self.wrong(ctx, "malformed reply", None, None, None, str(e))
            elif isinstance(e, (EOFError, ConnectionError, OSError)):
                self.c["disconnects"] += 1
                ctx.servers = self.servers_of([k for op in ops[done:] for k in op[1]])
                if self.quiet(ctx):
                    self.c["disconnects_outside"] += 1
                    self.sink.outside({"client": self.name, "disconnect": repr(e),
                                       "sent_at": round(ctx.t0 - self.opts.t_start, 3),
                                       "at": round(ctx.t1 - self.opts.t_start, 3)})
            for op in ops[done:]:
                if op[2]:
                    for k in op[1]:
                        k.known = False
            self.unanswered(ops[done:], ctx.t1)
            self.drop()

    def unanswered(self, ops, t):
        """ops got no reply (the connection was dropped): nothing more to learn by default."""

    def rand_keys(self, pool, lo, hi):
        return self.rng.sample(pool, self.rng.randint(lo, min(hi, len(pool))))

    def make_batch(self):
        depth = 1 if self.rng.random() < 0.35 else self.rng.randint(2, 16)
        ops, size = [], 0
        for _ in range(depth):
            op = self.make_op()
            if op[0] in self.ALONE:  # it reads a reply before sending the rest of itself
                if not ops:
                    return [op]
                break
            ops.append(op)
            size += len(op[3])
            if size > 256 * 1024:
                break
        return ops

    def stats(self):
        return {"counts": dict(self.c), "ops": dict(self.ops), "errmsgs": dict(self.errmsgs),
                "crash": self.crash}


def resp_cmd(*args):
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


class RedisClient(Client):
    proto = "redis"
    NT = 2              # transaction groups per client: a string and two counters on one server
    ALONE = ("WATCH",)  # WATCH k; GET k, then MULTI; SET k <read + 1>; EXEC on what it read

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.groups = []
        if getattr(self.opts, "sessions_apart", False):  # nothing pipelined around a transaction
            self.ALONE = ("WATCH", "MULTI")
        if self.opts.sessions:
            for g in range(self.NT):
                tag = b"soak:r%02d:{r%02dt%d}:" % (self.cid, self.cid, g)  # hash_tag "{}"
                self.groups.append([Key(tag + b"s", "s"), Key(tag + b"c0", "c"), Key(tag + b"c1", "c")])
        self.keys += [k for g in self.groups for k in g]  # plain traffic reads and deletes them too

    # op = (name, keys, is_write, wire bytes, extra)
    def init_ops(self):
        ops = []
        for k in self.skeys + [g[0] for g in self.groups]:
            v = k.seg(self.rng)
            ops.append(("SET", [k], True, resp_cmd(b"SET", k.name, v), v))
        for k in self.ckeys + [c for g in self.groups for c in g[1:]]:
            ops.append(("SET", [k], True, resp_cmd(b"SET", k.name, b"0"), b"0"))
        return ops

    def txn_op(self):
        """MULTI; 1-4 of SET/INCR/GET on one group's keys (one server); EXEC."""
        rng = self.rng
        g = rng.choice(self.groups)
        subs, wire = [], [resp_cmd(b"MULTI")]
        for _ in range(rng.randint(1, 4)):
            x = rng.random()
            if x < 0.35:
                k = g[0]
                v = k.seg(rng)
                subs.append(("SET", k, v))
                wire.append(resp_cmd(b"SET", k.name, v))
            elif x < 0.70:
                k = rng.choice(g[1:])
                subs.append(("INCR", k, None))
                wire.append(resp_cmd(b"INCR", k.name))
            else:
                k = rng.choice(g)
                subs.append(("GET", k, None))
                wire.append(resp_cmd(b"GET", k.name))
        wire.append(resp_cmd(b"EXEC"))
        keys = list({id(k): k for _, k, _ in subs}.values())
        return ("MULTI", keys, True, b"".join(wire), subs)

    def watch_op(self):
        k = self.rng.choice(self.rng.choice(self.groups)[1:])
        return ("WATCH", [k], True, resp_cmd(b"WATCH", k.name) + resp_cmd(b"GET", k.name), None)

    def push_op(self):
        q = self.rng.choice(self.shared.queues)
        v = self.shared.new_value(q, self.name, self.servers_of([q]))
        verb = b"RPUSH" if self.rng.random() < 0.5 else b"LPUSH"
        return ("PUSH", [q], True, resp_cmd(verb, q.name, v), v)

    def read_op(self, keys):
        return ("MGET", keys, False, resp_cmd(b"MGET", *[k.name for k in keys]), None)

    def make_op(self):
        rng = self.rng
        if self.groups and rng.random() < 0.12:
            r = rng.random()
            if r < 0.45:
                return self.txn_op()
            if r < 0.65:
                return self.watch_op()
            if self.shared is not None:
                return self.push_op()
        r = rng.random()
        if r < 0.22:
            k = rng.choice(self.keys)
            return ("GET", [k], False, resp_cmd(b"GET", k.name), None)
        if r < 0.38:
            k = rng.choice(self.skeys)
            v = k.seg(rng)
            return ("SET", [k], True, resp_cmd(b"SET", k.name, v), v)
        if r < 0.41:
            k = rng.choice(self.ckeys)
            v = b"%d" % rng.randint(0, 1000000)
            return ("SET", [k], True, resp_cmd(b"SET", k.name, v), v)
        if r < 0.50:
            k = rng.choice(self.skeys)
            if k.known and k.val is not None and len(k.val) > 65536:
                v = k.seg(rng)
                return ("SET", [k], True, resp_cmd(b"SET", k.name, v), v)
            s = k.seg(rng)
            return ("APPEND", [k], True, resp_cmd(b"APPEND", k.name, s), s)
        if r < 0.62:
            k = rng.choice(self.ckeys)
            return ("INCR", [k], True, resp_cmd(b"INCR", k.name), None)
        if r < 0.74:
            ks = self.rand_keys(self.keys, 2, 10)
            return self.read_op(ks)
        if r < 0.82:
            ks = self.rand_keys(self.skeys, 2, 6)
            vals = [k.seg(rng) for k in ks]
            args = [b"MSET"]
            for k, v in zip(ks, vals):
                args += [k.name, v]
            return ("MSET", ks, True, resp_cmd(*args), vals)
        if r < 0.90:
            ks = self.rand_keys(self.keys, 1, 4)
            return ("DEL", ks, True, resp_cmd(b"DEL", *[k.name for k in ks]), None)
        ks = self.rand_keys(self.keys, 1, 4)
        return ("EXISTS", ks, False, resp_cmd(b"EXISTS", *[k.name for k in ks]), None)

    def read_reply(self, op):
        if op[0] == "MULTI":
            return [self.wire.resp() for _ in range(len(op[4]) + 2)]
        if op[0] == "WATCH":
            return self.read_watch(op)
        return self.wire.resp()

    def read_watch(self, op):
        """Up to 3 tries of WATCH k; GET k; MULTI; SET k <GET + 1>; EXEC while EXEC is nil
        (UNWATCH instead of the transaction when WATCH or GET did not answer a counter)."""
        k, tries = op[1][0], []
        for n in range(3):
            if n:
                self.wire.send(op[3])
            t = {"watch": self.wire.resp(), "get": self.wire.resp()}
            got = t["get"]
            if not isinstance(t["watch"], Err) and (got is None or (
                    type(got) is bytes and got.isdigit() and len(got) <= 18)):
                t["new"] = b"%d" % (int(got or b"0") + 1)
                self.wire.send(resp_cmd(b"MULTI") + resp_cmd(b"SET", k.name, t["new"]) + resp_cmd(b"EXEC"))
                t["txn"] = [self.wire.resp() for _ in range(3)]
            else:
                self.wire.send(resp_cmd(b"UNWATCH"))
                t["unwatch"] = self.wire.resp()
            tries.append(t)
            if "txn" not in t or t["txn"][2] is not None:
                break
        return tries

    def simple(self, ctx, rep, want, what, key=None):
        """+want, or an error (allowed in a fault window): True when it was an error."""
        if isinstance(rep, Err):
            self.error_reply(ctx, rep.msg, [])
            return True
        if not isinstance(rep, Simple) or rep != want:
            raise Desync(self.wrong(ctx, what, key, b"+" + want, rep))
        return False

    def check_txn(self, ctx, op, reps):
        """The replies of MULTI, the queued commands and EXEC. An EXEC array applied every
        command at once, in order: each element is checked against the model and updates it.
        EXECABORT: nothing ran. Any other error on EXEC: it may have run (keys unknown)."""
        subs = op[4]
        self.c["txn"] += 1
        refused = self.simple(ctx, reps[0], b"OK", "MULTI reply")
        for (name, k, _), q in zip(subs, reps[1:-1]):
            refused |= self.simple(ctx, q, b"QUEUED", "reply to %s queued in MULTI" % name, k)
        ex = reps[-1]
        if isinstance(ex, Err):
            if ex.msg.startswith(b"EXECABORT"):
                self.c["txn_aborted"] += 1
                self.error_reply(ctx, ex.msg, [])
            else:
                self.c["txn_errors"] += 1
                self.error_reply(ctx, ex.msg, op[1])  # also after a refused command: a
            return                                     # timed-out connection fails them all
        if not isinstance(ex, list) or len(ex) != len(subs):
            raise Desync(self.wrong(ctx, "EXEC reply", None, "an array of %d" % len(subs), ex,
                                    "nil without WATCH" if ex is None else ""))
        if refused:
            self.wrong(ctx, "EXEC ran a transaction with a refused command", None, "-EXECABORT", ex)
            for k in op[1]:
                k.known = False
            return
        self.c["txn_ok"] += 1
        for (name, k, extra), rep in zip(subs, ex):
            if isinstance(rep, Err):
                self.wrong(ctx, "error inside EXEC's array for %s" % name, k, None, rep)
                continue
            self.check(ctx, (name, [k], name != "GET", b"", extra), rep)

    def check_watch(self, ctx, op, tries):
        k = op[1][0]
        for t in tries:
            self.c["watch"] += 1
            self.simple(ctx, t["watch"], b"OK", "WATCH reply", k)
            self.check(ctx, ("GET", [k], False, b"", None), t["get"])
            if "unwatch" in t:
                self.c["watch_skipped"] += 1
                self.simple(ctx, t["unwatch"], b"OK", "UNWATCH reply", k)
                continue
            m, q, ex = t["txn"]
            refused = self.simple(ctx, m, b"OK", "MULTI reply", k)
            refused |= self.simple(ctx, q, b"QUEUED", "reply to SET queued in MULTI", k)
            if ex is None:  # the WATCH saw a write, or was lost with its connection: nothing ran
                self.c["watch_nil"] += 1
                if self.quiet(ctx):
                    self.wrong(ctx, "EXEC nil (WATCH conflict) with no fault and no other writer", k,
                               [b"OK"], ex)
                continue
            if isinstance(ex, Err):
                if ex.msg.startswith(b"EXECABORT"):
                    self.c["watch_aborted"] += 1
                    self.error_reply(ctx, ex.msg, [])
                else:
                    self.c["watch_errors"] += 1
                    self.error_reply(ctx, ex.msg, [k])
                continue
            if ex != [b"OK"] or not isinstance(ex[0], Simple):
                raise Desync(self.wrong(ctx, "EXEC reply after WATCH", k, [b"OK"], ex))
            if refused:
                self.wrong(ctx, "EXEC ran a transaction with a refused command", k, "-EXECABORT", ex)
                continue
            self.c["watch_ok"] += 1
            self.wrote(ctx, [k], lambda _: t["new"])  # WATCH held: k was what GET read until EXEC

    def check_push(self, ctx, op, rep):
        if isinstance(rep, Err):
            self.c["push_errors"] += 1  # may or may not be in the list
            self.error_reply(ctx, rep.msg, [])
            return
        if not isinstance(rep, int) or isinstance(rep, bool) or rep < 1:
            raise Desync(self.wrong(ctx, "push reply", None, "a list length >= 1", rep))
        self.c["push_ok"] += 1
        self.shared.confirm(op[4])

    def check(self, ctx, op, rep):
        name, keys, is_write, _, extra = op
        if name == "MULTI":
            return self.check_txn(ctx, op, rep)
        if name == "WATCH":
            return self.check_watch(ctx, op, rep)
        if name == "PUSH":
            return self.check_push(ctx, op, rep)
        if isinstance(rep, Err):
            self.error_reply(ctx, rep.msg, keys if is_write else [])
            return
        if name == "GET":
            if rep is not None and not isinstance(rep, bytes) or isinstance(rep, Simple):
                raise Desync(self.wrong(ctx, "GET reply type", keys[0], keys[0].val, rep))
            self.check_value(ctx, keys[0], rep)
        elif name == "MGET":
            if not isinstance(rep, list) or len(rep) != len(keys):
                raise Desync(self.wrong(ctx, "MGET reply shape", None, "%d bulks" % len(keys), rep))
            for k, v in zip(keys, rep):
                if v is not None and (not isinstance(v, bytes) or isinstance(v, Simple)):
                    self.wrong(ctx, "MGET element type", k, k.val, v)
                    continue
                self.check_value(ctx, k, v, "MGET element")
        elif name in ("SET", "MSET"):
            if rep != b"OK" or not isinstance(rep, Simple):
                raise Desync(self.wrong(ctx, name + " reply", None, "+OK", rep))
            vals = dict(zip([id(k) for k in keys], [extra] if name == "SET" else extra))
            self.wrote(ctx, keys, lambda k: vals[id(k)])
        elif name == "APPEND":
            k = keys[0]
            if not isinstance(rep, int) or isinstance(rep, bool):
                raise Desync(self.wrong(ctx, "APPEND reply type", k, "integer", rep))
            if k.known:
                want = len(k.val or b"") + len(extra)
                if rep != want:
                    if self.stale_ok():
                        self.c["stale"] += 1
                        k.known = False
                    else:
                        self.wrong(ctx, "APPEND length", k, want, rep, "model value %s" % describe(k.val))
                    return
                k.val = (k.val or b"") + extra
            elif rep < len(extra):
                self.wrong(ctx, "APPEND length (key unknown)", k, ">= %d" % len(extra), rep)
        elif name == "INCR":
            k = keys[0]
            if not isinstance(rep, int) or isinstance(rep, bool):
                raise Desync(self.wrong(ctx, "INCR reply type", k, "integer", rep))
            if k.known:
                want = int(k.val or b"0") + 1
                if rep != want:
                    if self.stale_ok():
                        self.c["stale"] += 1
                        k.known = False
                    else:
                        self.wrong(ctx, "INCR result", k, want, rep)
                    return
                k.val = b"%d" % rep
            elif self.quiet(ctx):
                k.val, k.known = b"%d" % rep, True
        elif name in ("DEL", "EXISTS"):
            if self.count_check(ctx, keys, rep, name) and name == "DEL":
                self.wrote(ctx, keys, lambda k: None)
            elif name == "DEL":
                for k in keys:
                    k.known = False


BLPOP_TIMEOUT = 1  # s


class Queues:
    """Lists that Redis clients push unique values to and QueueClients pop with BLPOP: every
    value pushed is recorded before it is sent, so a popped value that was never pushed, or
    that was pushed to another list, or popped twice, is caught at once; at the end every
    push that was answered with a length is either popped or still in its list, unless its
    server was killed since, or a BLPOP on that list lost its reply since."""

    N = 3

    def __init__(self, faults):
        self.faults = faults
        self.lock = threading.Lock()
        self.queues = [Key(b"soak:{q%d}:list" % i, "l") for i in range(self.N)]
        self.homes = [Key(b"soak:{q%d}:home" % i, "s") for i in range(self.N)]  # placement
        self.vals = {}      # value -> [list name, t sent, {server: kill_gen}, answered]
        self.popped = {}    # value -> list name
        self.lost = collections.defaultdict(list)  # list name -> times a BLPOP lost its reply
        self.seq = 0

    def new_value(self, q, who, servers):
        with self.lock:
            self.seq += 1
            v = b"<%s|%s|%d>" % (q.name, who.encode(), self.seq)
            gen = self.faults.kill_gen
            self.vals[v] = [q.name, time.monotonic(), {n: gen[n] for n in servers}, False]
            return v

    def confirm(self, v):
        with self.lock:
            self.vals[v][3] = True

    def pop(self, qname, v):
        """None when v may be popped from qname now, else why not."""
        with self.lock:
            rec = self.vals.get(v)
            if rec is None:
                return "a value never pushed"
            if rec[0] != qname:
                return "a value pushed to %s" % rec[0].decode("latin1")
            if v in self.popped:
                return "a value popped before"
            self.popped[v] = qname
            return None

    def pop_lost(self, qname, t):
        with self.lock:
            self.lost[qname].append(t)

    def settle(self, remaining):
        """remaining: list name -> values left in it at the end. (counts, problems)."""
        problems, left = [], set()
        gen = self.faults.kill_gen
        for qname, vals in remaining.items():
            for v in vals:
                rec = self.vals.get(v)
                if rec is None or rec[0] != qname:
                    problems.append({"what": "left in %s: %s" % (qname.decode("latin1"), "a value never pushed"
                                     if rec is None else "a value pushed to " + rec[0].decode("latin1")),
                                     "got": describe(v)})
                elif v in self.popped:
                    problems.append({"what": "popped and still in the list", "got": describe(v)})
                elif v in left:
                    problems.append({"what": "twice in the list", "got": describe(v)})
                left.add(v)
        c = collections.Counter()
        for v, (qname, t, kills, answered) in self.vals.items():
            found = v in self.popped or v in left
            if not answered:
                c["unanswered_found" if found else "unanswered_missing"] += 1
            elif found:
                c["found"] += 1
            elif any(gen[n] != g for n, g in kills.items()):
                c["lost_to_kill"] += 1
            elif any(x >= t for x in self.lost.get(qname, ())):
                c["lost_with_a_blpop_reply"] += 1
            else:
                problems.append({"what": "a push answered with a length is neither popped nor in the list",
                                 "got": describe(v)})
        c["left_in_lists"] = len(left)
        c["pushed"] = len(self.vals)
        c["popped"] = len(self.popped)
        return dict(c), problems


class QueueClient(Client):
    """BLPOP with a 1 s timeout on one of the Queues' lists, again and again."""
    proto = "redis"
    NS, NC = 0, 0

    @classmethod
    def kind_name(cls):
        return "blpop"

    def init_ops(self):
        return []

    def make_batch(self):
        q = self.rng.choice(self.shared.queues)
        return [("BLPOP", [q], False, resp_cmd(b"BLPOP", q.name, b"%d" % BLPOP_TIMEOUT), None)]

    def read_reply(self, op):
        return self.wire.resp()

    def unanswered(self, ops, t):
        for op in ops:
            self.shared.pop_lost(op[1][0].name, t)

    def check(self, ctx, op, rep):
        q = op[1][0]
        if isinstance(rep, Err):
            self.c["blpop_errors"] += 1
            self.shared.pop_lost(q.name, ctx.t1)  # it may have popped a value on the server
            self.error_reply(ctx, rep.msg, [])
            return
        if rep is None:
            self.c["blpop_timeouts"] += 1
            if ctx.t1 - ctx.t0 < BLPOP_TIMEOUT * 0.9:  # a lower bound: a slow machine only adds
                self.wrong(ctx, "BLPOP nil before its timeout", None, "nil after >= %d s" % BLPOP_TIMEOUT,
                           rep, "after %.3f s" % (ctx.t1 - ctx.t0))
            return
        if (not isinstance(rep, list) or len(rep) != 2 or type(rep[0]) is not bytes
                or type(rep[1]) is not bytes):
            raise Desync(self.wrong(ctx, "BLPOP reply shape", None, "[key, value]", rep))
        if rep[0] != q.name:
            self.wrong(ctx, "BLPOP popped from a key not asked", None, q.name, rep[0])
        why = self.shared.pop(q.name, rep[1])
        if why is not None:
            self.wrong(ctx, "BLPOP value: " + why, None, None, rep[1])
        self.c["blpop_pops"] += 1


class McClient(Client):
    proto = "memcached"

    def _set(self, k, v, verb=b"set"):
        flags = 0 if verb == b"append" else k.flags
        return b"%s %s %d 0 %d\r\n%s\r\n" % (verb, k.name, flags, len(v), v)

    def init_ops(self):
        ops = []
        for k in self.skeys:
            v = k.seg(self.rng)
            ops.append(("set", [k], True, self._set(k, v), v))
        for k in self.ckeys:
            ops.append(("set", [k], True, self._set(k, b"0"), b"0"))
        return ops

    def read_op(self, keys):
        return ("get", keys, False, b"get " + b" ".join(k.name for k in keys) + b"\r\n", None)

    def make_op(self):
        rng, r = self.rng, self.rng.random()
        if r < 0.22:
            return self.read_op([rng.choice(self.keys)])
        if r < 0.36:
            return self.read_op(self.rand_keys(self.keys, 2, 10))
        if r < 0.54:
            k = rng.choice(self.skeys)
            v = k.seg(rng)
            return ("set", [k], True, self._set(k, v), v)
        if r < 0.60:
            k = rng.choice(self.ckeys)
            v = b"%d" % rng.randint(0, 1000000)
            return ("set", [k], True, self._set(k, v), v)
        if r < 0.70:
            k = rng.choice(self.skeys)
            if k.known and k.val is not None and len(k.val) > 65536:
                v = k.seg(rng)
                return ("set", [k], True, self._set(k, v), v)
            s = k.seg(rng)
            return ("append", [k], True, self._set(k, s, b"append"), s)
        if r < 0.85:
            k = rng.choice(self.ckeys)
            return ("incr", [k], True, b"incr %s 1\r\n" % k.name, None)
        k = rng.choice(self.keys)
        return ("delete", [k], True, b"delete %s\r\n" % k.name, None)

    def read_reply(self, op):
        if op[0] == "get":
            return self.wire.mc_values()
        return self.wire.mc_line()

    def check(self, ctx, op, rep):
        name, keys, is_write, _, extra = op
        if isinstance(rep, Err):
            self.error_reply(ctx, rep.msg, keys if is_write else [])
            return
        k = keys[0]
        if name == "get":
            byname = {kk.name: kk for kk in keys}
            got, last = {}, -1
            order = {kk.name: i for i, kk in enumerate(keys)}
            for item_key, flags, data in rep:
                kk = byname.get(item_key)
                if kk is None:
                    self.wrong(ctx, "get: item for a key not asked", None, None, data,
                               "item key %r" % item_key)
                    continue
                if item_key in got:
                    self.wrong(ctx, "get: key returned twice", kk, None, data)
                    continue
                if order[item_key] < last:
                    self.wrong(ctx, "get: items out of key order", kk, None, data,
                               "keys %s" % [i[0] for i in rep])
                last = max(last, order[item_key])
                if flags != kk.flags:
                    self.wrong(ctx, "get: flags", kk, kk.flags, flags)
                got[item_key] = data
            for kk in keys:
                self.check_value(ctx, kk, got.get(kk.name), "get item" if len(keys) > 1 else "value")
        elif name == "set":
            if rep != b"STORED":
                raise Desync(self.wrong(ctx, "set reply", k, b"STORED", rep))
            self.wrote(ctx, keys, lambda kk: extra)
        elif name == "append":
            if rep not in (b"STORED", b"NOT_STORED"):
                raise Desync(self.wrong(ctx, "append reply", k, b"STORED|NOT_STORED", rep))
            if k.known:
                want = b"NOT_STORED" if k.val is None else b"STORED"
                if rep != want:
                    if self.stale_ok():
                        self.c["stale"] += 1
                        k.known = False
                    else:
                        self.wrong(ctx, "append reply", k, want, rep, "model %s" % describe(k.val))
                    return
                if k.val is not None:
                    k.val = k.val + extra
            elif rep == b"NOT_STORED" and self.quiet(ctx):
                k.val, k.known = None, True
        elif name == "incr":
            if rep != b"NOT_FOUND" and not rep.isdigit():
                raise Desync(self.wrong(ctx, "incr reply", k, "number|NOT_FOUND", rep))
            newv = None if rep == b"NOT_FOUND" else b"%d" % int(rep)
            if k.known:
                want = None if k.val is None else b"%d" % (int(k.val) + 1)
                if newv != want:
                    if self.stale_ok():
                        self.c["stale"] += 1
                        k.known = False
                    else:
                        self.wrong(ctx, "incr result", k, want, newv)
                    return
                k.val = newv
            elif self.quiet(ctx):
                k.val, k.known = newv, True
        elif name == "delete":
            if rep not in (b"DELETED", b"NOT_FOUND"):
                raise Desync(self.wrong(ctx, "delete reply", k, b"DELETED|NOT_FOUND", rep))
            if k.known:
                want = b"NOT_FOUND" if k.val is None else b"DELETED"
                if rep != want:
                    if self.stale_ok():
                        self.c["stale"] += 1
                    else:
                        self.wrong(ctx, "delete reply", k, want, rep, "model %s" % describe(k.val))
                        return
            if k.known or self.quiet(ctx):
                k.val, k.known = None, True


# ---------------------------------------------------------------------------
# reports

class Sink:
    def __init__(self, rundir):
        self.lock = threading.Lock()
        self.wrong_f = open(os.path.join(rundir, "wrong.log"), "a")
        self.outside_f = open(os.path.join(rundir, "errors_outside.log"), "a")
        self.wrong_samples, self.outside_samples = [], []
        self.nwrong = 0

    def wrong(self, rec):
        with self.lock:
            self.nwrong += 1
            self.wrong_f.write(json.dumps(rec) + "\n")
            self.wrong_f.flush()
            if len(self.wrong_samples) < 20:
                self.wrong_samples.append(rec)
            if self.nwrong <= 5:
                print("WRONG: %s" % json.dumps(rec), file=sys.stderr, flush=True)

    def outside(self, rec):
        with self.lock:
            self.outside_f.write(json.dumps(rec) + "\n")
            self.outside_f.flush()
            if len(self.outside_samples) < 20:
                self.outside_samples.append(rec)

    def close(self):
        self.wrong_f.close()
        self.outside_f.close()


def proc_mem(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        return rss, len(os.listdir("/proc/%d/fd" % pid))
    except (OSError, StopIteration):
        return None, None


def stats_port(port):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.settimeout(2)
        data = b""
        while len(data) < 1 << 20:
            c = s.recv(65536)
            if not c:
                break
            data += c
        s.close()
        return json.loads(data.decode())
    except (OSError, ValueError) as e:
        return {"unavailable": str(e)}


# ---------------------------------------------------------------------------
# keymux

def write_conf(path, ports, redis_be, mc_be, opts, with_mc):
    def pool(name, listen, is_redis, bes):
        lines = ["%s:" % name,
                 "  listen: 127.0.0.1:%d" % listen,
                 "  redis: %s" % ("true" if is_redis else "false"),
                 "  hash: fnv1a_64",
                 ] + (['  hash_tag: "{}"'] if is_redis else []) + [
                 "  distribution: ketama",
                 "  timeout: %d" % opts.timeout,
                 "  auto_eject_hosts: %s" % ("true" if opts.eject else "false"),
                 "  server_retry_timeout: 1000",
                 "  server_failure_limit: 1",
                 "  server_connections: %d" % opts.server_connections,
                 "  servers:"]
        lines += ["    - %s:1" % b.addr for b in bes]
        return "\n".join(lines) + "\n"
    text = pool("soak_redis", ports["redis_listen"], True, redis_be)
    if with_mc:
        text += pool("soak_mc", ports["mc_listen"], False, mc_be)
    with open(path, "w") as f:
        f.write(text)


def start_keymux(binary, conf, ports, rundir, verbose, mbuf=None, workers=1):
    err = open(os.path.join(rundir, "keymux.stderr"), "ab")

    def allow_core():
        try:
            soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
            resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
        except (ValueError, OSError):
            pass
    p = subprocess.Popen([binary, "-c", conf, "-s", str(ports["stats"]), "-a", "127.0.0.1",
                          "-o", os.path.join(rundir, "keymux.log"), "-v", str(verbose)]
                         + (["-m", str(mbuf)] if mbuf else []) + ["-w", str(workers)],
                         stdout=err, stderr=err, stdin=subprocess.DEVNULL, cwd=rundir,
                         start_new_session=True, preexec_fn=allow_core)
    err.close()
    PROCS.append(p)
    return p


def keymux_text(rundir):
    out = ""
    for n in ("keymux.stderr", "keymux.log"):
        try:
            with open(os.path.join(rundir, n), "rb") as f:
                out += f.read()[-200000:].decode("utf-8", "replace")
        except OSError:
            pass
    return out


def log_alerts(rundir, limit=20):
    """Lines of keymux's stderr and whole log that speak of a crash or a broken invariant."""
    out, n = [], 0
    for name in ("keymux.stderr", "keymux.log"):
        try:
            with open(os.path.join(rundir, name), "rb") as f:
                for raw in f:
                    line = raw.decode("utf-8", "replace").rstrip("\n")
                    if LOG_ALERT.search(line):
                        n += 1
                        if len(out) < limit:
                            out.append("%s: %s" % (name, line[:300]))
        except OSError:
            pass
    return out, n


MC_REFUSED = re.compile(r"memcached pools are not available|memcached.*not (yet )?(available|supported)", re.I)
LOG_ALERT = re.compile(r"assert|abort|segmentation|core dumped|AddressSanitizer|UndefinedBehavior|"
                       r"runtime error|out of memory|panic|fatal|Sanitizer", re.I)


# ---------------------------------------------------------------------------
# faults

def fault_loop(backends, faults, stop, deadline, rng, record, base, kinds):
    try:
        fault_steps(backends, faults, stop, deadline, rng, record, base, kinds)
    except Exception:
        record.append({"error": traceback.format_exc()})


def fault_steps(backends, faults, stop, deadline, rng, record, base, kinds):
    n = 0

    def nap(sec):
        end = min(time.monotonic() + sec, deadline)
        while time.monotonic() < end and not stop.is_set():
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))

    while not stop.is_set() and time.monotonic() < deadline - 4:
        b = backends[n % len(backends)]
        kind = kinds[(n + n // len(backends)) % len(kinds)]  # every backend meets every kind
        n += 1
        t0 = time.monotonic()
        faults.begin(b.name, kind)
        try:
            if kind == "kill":
                b.kill9()
                nap(rng.uniform(0.5, 2.0))
                b.start()
            elif kind == "stop":
                b.signal(signal.SIGSTOP)
                nap(rng.uniform(1.5, 4.0))
                b.signal(signal.SIGCONT)
            else:
                end = time.monotonic() + rng.uniform(2.0, 4.0)
                while time.monotonic() < end and not stop.is_set():
                    b.signal(signal.SIGSTOP)
                    time.sleep(rng.uniform(0.1, 0.3))
                    b.signal(signal.SIGCONT)
                    time.sleep(rng.uniform(0.1, 0.3))
        finally:
            if b.alive():
                b.signal(signal.SIGCONT)
            else:
                b.start()
            faults.end(b.name)
        record.append({"backend": b.name, "kind": kind, "at": round(t0 - base, 3),
                       "seconds": round(time.monotonic() - t0, 3)})
        nap(rng.uniform(2.0, 4.0))


def learn_placement(clients, redis_be, mc_be):
    """Ask every backend directly which of the clients' keys it holds."""
    where = collections.defaultdict(list)
    for c in clients:
        if not c.keys:
            continue
        bes = redis_be if c.proto == "redis" else mc_be
        for b in bes:
            w = Wire(b.port)
            try:
                if c.proto == "redis":
                    w.send(b"".join(resp_cmd(b"EXISTS", k.name) for k in c.keys))
                    for k in c.keys:
                        if w.resp() == 1:
                            where[k.name].append(b.name)
                else:
                    w.send(b"get " + b" ".join(k.name for k in c.keys) + b"\r\n")
                    rep = w.mc_values()
                    for name, _, _ in rep:
                        where[name].append(b.name)
            finally:
                w.close()
    bad, per = [], collections.Counter()
    for c in clients:
        for k in c.keys:
            homes = where.get(k.name, [])
            if len(homes) == 1:
                k.home = set(homes)
                per[homes[0]] += 1
            else:
                bad.append((k.name.decode(), homes))
    return dict(per), bad


def backend_exists(b, name):
    w = Wire(b.port)
    try:
        w.send(resp_cmd(b"EXISTS", name))
        return w.resp() == 1
    finally:
        w.close()


# ---------------------------------------------------------------------------
# main

def main():
    ap = argparse.ArgumentParser(description="keymux fault soak")
    ap.add_argument("--duration", type=float, default=600, help="seconds of traffic under faults (600)")
    ap.add_argument("--clients", type=int, default=32, help="clients, half Redis half memcached (32)")
    ap.add_argument("--eject", action="store_true",
                    help="auto_eject_hosts: true (default false: every reply checked exactly)")
    ap.add_argument("--timeout", type=int, default=500, help="keymux pool timeout in ms (500)")
    ap.add_argument("--server-connections", type=int, default=1)
    ap.add_argument("--mbuf-size", type=int, default=None, help="keymux -m (its default)")
    ap.add_argument("--workers", type=int, default=int(os.environ.get("KEYMUX_WORKERS") or 1),
                    help="keymux -w (KEYMUX_WORKERS, else 1)")
    ap.add_argument("--warmup", type=float, default=8, help="seconds of traffic before faults (8)")
    ap.add_argument("--settle", type=float, default=4, help="idle seconds before each RSS/fd sample (4)")
    ap.add_argument("--rss-slack-kb", type=int, default=1024, help="allowed RSS growth beyond 10%% (1024)")
    ap.add_argument("--fd-slack", type=int, default=4, help="allowed fd growth beyond 10%% (4)")
    ap.add_argument("--keymux", default=os.path.join(ROOT, "build", "keymux"))
    ap.add_argument("--verbose", type=int, default=5, help="keymux -v level (5)")
    ap.add_argument("--no-faults", action="store_true", help="traffic only (a baseline)")
    ap.add_argument("--faults", default="kill,stop,slow", help="fault kinds to cycle through (kill,stop,slow)")
    ap.add_argument("--protocols", default="redis,memcached", help="client protocols (redis,memcached)")
    ap.add_argument("--max-value", type=int, default=40000, help="largest value segment in bytes (40000)")
    ap.add_argument("--consumers", type=int, default=4, help="BLPOP clients on the shared lists (4)")
    ap.add_argument("--no-sessions", dest="sessions", action="store_false",
                    help="no MULTI/EXEC, WATCH, pushes or BLPOP (a proxy without them, e.g. twemproxy)")
    ap.add_argument("--sessions-apart", action="store_true",
                    help="MULTI/EXEC in batches of their own, nothing pipelined before or after it")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--results", default=os.path.join(HERE, "results"))
    opts = ap.parse_args()
    MAX_VALUE[0] = max(1, opts.max_value)
    opts.fault_kinds = [k for k in opts.faults.split(",") if k]
    if not opts.fault_kinds or set(opts.fault_kinds) - {"kill", "stop", "slow"}:
        ap.error("--faults takes kill, stop, slow")
    opts.protos = set(p for p in opts.protocols.split(",") if p)
    if not opts.protos or opts.protos - {"redis", "memcached"}:
        ap.error("--protocols takes redis, memcached")
    if opts.seed is None:
        opts.seed = int(time.time()) % 100000
    opts.t_start = time.monotonic()
    grace = opts.timeout / 1000.0 + 1.0

    stamp = time.strftime("%Y%m%d-%H%M%S")
    rundir = os.path.join(opts.results, "run-%s-%d" % (stamp, os.getpid()))
    os.makedirs(rundir, exist_ok=True)

    def on_term(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_term)

    summary = {"started": stamp, "rundir": rundir, "seed": opts.seed,
               "config": {"duration_s": opts.duration, "clients": opts.clients, "timeout_ms": opts.timeout,
                          "auto_eject_hosts": opts.eject, "server_retry_timeout_ms": 1000,
                          "server_failure_limit": 1, "server_connections": opts.server_connections,
                          "grace_s": grace, "faults": [] if opts.no_faults else opts.fault_kinds,
                          "protocols": sorted(opts.protos), "max_value": opts.max_value,
                          "sessions": opts.sessions, "sessions_apart": opts.sessions_apart, "consumers": opts.consumers if opts.sessions else 0,
                          "mbuf_size": opts.mbuf_size}}
    failed = []
    status = 2
    try:
        status = run(opts, rundir, grace, summary, failed)
    except KeyboardInterrupt as e:
        summary["interrupted"] = str(e) or "Ctrl-C"
        failed.append("interrupted")
        status = 1
    except Exception:
        summary["soak_error"] = traceback.format_exc()
        print(summary["soak_error"], file=sys.stderr)
        failed.append("soak error")
        status = 2
    finally:
        cleanup_all()
    summary["failed_checks"] = failed
    summary["verdict"] = "PASS" if status == 0 and not failed else "FAIL"
    os.makedirs(opts.results, exist_ok=True)
    for path in (os.path.join(rundir, "summary.json"), os.path.join(opts.results, "latest.json")):
        with open(path, "w") as f:
            json.dump(summary, f, indent=2, sort_keys=True)
            f.write("\n")
    print_report(summary)
    return status if status else (1 if failed else 0)


def run(opts, rundir, grace, summary, failed):
    binary = os.path.join(rundir, "keymux")
    shutil.copy2(opts.keymux, binary)  # a rebuild during the soak must not change what runs
    st = os.stat(opts.keymux)
    import hashlib
    with open(binary, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    summary["keymux_binary"] = {"path": opts.keymux, "sha256_16": digest,
                                "mtime": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(st.st_mtime))}
    try:
        summary["git_head"] = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                             capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass

    pl = pick_ports(8)
    ports = {"redis_listen": pl[0], "mc_listen": pl[1], "stats": pl[2]}
    redis_be = [Backend("redis", i, pl[3 + i], rundir) for i in range(3)]
    mc_be = [Backend("memcached", i, pl[6 + i], rundir) for i in range(2)]
    summary["ports"] = dict(ports, **{b.name: b.port for b in redis_be + mc_be})
    for b in redis_be + mc_be:
        b.start()

    conf = os.path.join(rundir, "keymux.yml")
    write_conf(conf, ports, redis_be, mc_be, opts, True)
    km = start_keymux(binary, conf, ports, rundir, opts.verbose, opts.mbuf_size,
                          opts.workers)
    with_mc = True
    ok = wait_port(ports["redis_listen"], 10, km) and wait_port(ports["mc_listen"], 5, km)
    if not ok:
        time.sleep(0.3)
        text = keymux_text(rundir)
        if km.poll() is not None and MC_REFUSED.search(text):
            with_mc = False
            summary["memcached"] = "unavailable in this build"
            summary["memcached_refusal"] = MC_REFUSED.search(text).group(0)
            print("memcached: unavailable in this build (keymux refused the pool: %s)"
                  % text.strip().splitlines()[-1], file=sys.stderr)
            write_conf(conf, ports, redis_be, mc_be, opts, False)
            km = start_keymux(binary, conf, ports, rundir, opts.verbose, opts.mbuf_size,
                          opts.workers)
            if not wait_port(ports["redis_listen"], 10, km):
                raise RuntimeError("keymux did not start:\n" + keymux_text(rundir)[-2000:])
        else:
            raise RuntimeError("keymux did not start (exit %s):\n%s" % (km.poll(), text[-2000:]))
    else:
        summary["memcached"] = "ok"
    summary["keymux_pid"] = km.pid

    use_r, use_m = "redis" in opts.protos, "memcached" in opts.protos and with_mc
    backends = (redis_be if use_r else []) + (mc_be if use_m else [])
    faults = Faults([b.name for b in redis_be + mc_be], grace)
    nr = opts.clients - opts.clients // 2 if use_r else 0  # without memcached the Redis half runs alone
    nm = opts.clients // 2 if use_m else 0
    if not use_r and use_m:
        nm = opts.clients
    elif use_r and "memcached" not in opts.protos:
        nr = opts.clients
    rset = {b.name for b in redis_be}
    shared = Queues(faults) if use_r and opts.sessions else None
    nq = opts.consumers if shared is not None else 0
    if shared is not None:
        w = Wire(ports["redis_listen"])
        try:
            w.send(b"".join(resp_cmd(b"SET", k.name, b"x") for k in shared.homes))
            if [w.resp() for _ in shared.homes] != [b"OK"] * len(shared.homes):
                raise RuntimeError("could not write the lists' placement keys")
        finally:
            w.close()
    ctl = Control(nr + nm + nq)
    sink = Sink(rundir)
    clients = []
    for i in range(nr):
        clients.append(RedisClient(i, ports["redis_listen"], rset, faults, ctl, opts, sink, shared))
    for i in range(nq):
        clients.append(QueueClient(i, ports["redis_listen"], rset, faults, ctl, opts, sink, shared))
    for i in range(nm):
        clients.append(McClient(i, ports["mc_listen"], {b.name for b in mc_be}, faults, ctl, opts, sink))

    print("soak: %d redis + %d memcached + %d BLPOP clients, %s s, eject=%s, run dir %s"
          % (nr, nm, nq, opts.duration, opts.eject, rundir), file=sys.stderr, flush=True)
    for c in clients:
        c.start()
    if not ctl.wait_idle(120):
        raise RuntimeError("clients did not finish their first writes")
    placement, unplaced = learn_placement(clients, redis_be, mc_be if with_mc else [])
    if shared is not None:
        for q, h in zip(shared.queues, shared.homes):
            homes = [b.name for b in redis_be if backend_exists(b, h.name)]
            if len(homes) == 1:
                q.home = set(homes)
                placement["lists:" + homes[0]] = placement.get("lists:" + homes[0], 0) + 1
            else:
                unplaced.append((h.name.decode(), homes))
    summary["placement"] = placement
    if unplaced:
        summary["placement_anomalies"] = unplaced[:20]
        failed.append("placement: %d keys not on exactly one backend after the first writes" % len(unplaced))

    # warm-up without faults, then the start sample
    ctl.set("traffic", time.monotonic() + opts.warmup)
    time.sleep(opts.warmup)
    ctl.set("idle")
    ctl.wait_idle(60)
    time.sleep(opts.settle)
    rss0, fd0 = proc_mem(km.pid)
    summary["keymux_start"] = {"rss_kb": rss0, "fds": fd0}

    # the soak
    stop = threading.Event()
    deadline = time.monotonic() + opts.duration
    series, fault_rec = [], []
    ctl.set("traffic", deadline)
    ft = None
    if not opts.no_faults:
        ft = threading.Thread(target=fault_loop, name="faults", daemon=True,
                              args=(backends, faults, stop, deadline, random.Random(opts.seed), fault_rec, opts.t_start,
                                    opts.fault_kinds))
        ft.start()
    t_soak = time.monotonic()
    crashed = False
    next_sample = time.monotonic()
    while time.monotonic() < deadline:
        if km.poll() is not None:
            crashed = True
            break
        if time.monotonic() >= next_sample:
            r, f = proc_mem(km.pid)
            series.append({"t": round(time.monotonic() - t_soak, 1), "rss_kb": r, "fds": f,
                           "sent": sum(c.c["sent"] for c in clients)})
            next_sample += 10
        time.sleep(0.25)
    stop.set()
    if ft is not None:
        ft.join(30)
    soak_s = time.monotonic() - t_soak
    for b in backends:  # every backend running again
        if b.alive():
            b.signal(signal.SIGCONT)
        else:
            b.start()
        faults.end(b.name)
    ctl.set("idle")
    idle_ok = ctl.wait_idle(60)

    # final read of every key, once quiet (twice: the first pass re-learns unknown keys)
    if not crashed and idle_ok:
        time.sleep(grace + 0.5)
        for _ in range(2):
            ctl.set("final")
            ctl.wait_idle(60)
        time.sleep(opts.settle)
    rss1, fd1 = proc_mem(km.pid)
    summary["keymux_end"] = {"rss_kb": rss1, "fds": fd1}
    list_problems = []
    if shared is not None and not crashed and idle_ok:  # what is left in the lists, from the backends
        left = {q.name: [] for q in shared.queues}
        for b in redis_be:
            w = Wire(b.port)
            try:
                w.send(b"".join(resp_cmd(b"LRANGE", q.name, b"0", b"-1") for q in shared.queues))
                for q in shared.queues:
                    left[q.name] += w.resp()
            finally:
                w.close()
        summary["lists"], list_problems = shared.settle(left)
        for pr in list_problems:
            sink.wrong(dict(pr, client="lists at the end"))
    ctl.set("exit")
    for c in clients:
        c.join(15)
    time.sleep(1.5)
    rss2, fd2 = proc_mem(km.pid)
    summary["keymux_after_disconnect"] = {"rss_kb": rss2, "fds": fd2}
    summary["keymux_series"] = series
    summary["stats_port"] = stats_port(ports["stats"]) if km.poll() is None else None

    # keymux's end
    alive = km.poll() is None
    summary["keymux_alive_at_end"] = alive
    exit_code = stop_proc(km, 10)
    summary["keymux_exit_after_sigterm"] = exit_code
    time.sleep(0.2)
    alerts, nalerts = log_alerts(rundir)
    try:
        summary["keymux_log_bytes"] = os.path.getsize(os.path.join(rundir, "keymux.log"))
    except OSError:
        pass
    cores = [n for n in os.listdir(rundir) if n.startswith("core")]
    summary["keymux_log_alerts"] = alerts
    summary["keymux_log_alert_count"] = nalerts
    summary["core_files"] = cores
    summary["keymux_crashes"] = int(crashed or not alive or (exit_code is not None and exit_code < 0))

    # numbers
    tot, by = collections.Counter(), {}
    ops, errmsgs = collections.Counter(), collections.Counter()
    crashes = []
    for c in clients:
        tot.update(c.c)
        by.setdefault(c.proto, collections.Counter()).update(c.c)
        ops.update({"%s %s" % (c.proto, k): v for k, v in c.ops.items()})
        errmsgs.update({m.decode("latin1"): v for m, v in c.errmsgs.items()})
        if c.crash:
            crashes.append({"client": c.name, "trace": c.crash})
    sink.close()
    tot["wrong"] += len(list_problems)
    summary.update({
        "transactions": {k: tot[k] for k in ("txn", "txn_ok", "txn_aborted", "txn_errors", "watch", "watch_ok",
                                             "watch_nil", "watch_aborted", "watch_errors", "watch_skipped")},
        "blocking": dict({k: tot[k] for k in ("push_ok", "push_errors", "blpop_pops", "blpop_timeouts",
                                              "blpop_errors")}, lists_at_end=summary.get("lists")),
        "soak_seconds": round(soak_s, 1),
        "requests_sent": tot["sent"], "replies_checked": tot["checked"],
        "wrong_replies": tot["wrong"], "error_replies": tot["errors"],
        "errors_outside_fault_windows": tot["errors_outside"],
        "disconnects": tot["disconnects"], "disconnects_outside_fault_windows": tot["disconnects_outside"],
        "stalls": tot["stalls"], "stale_reads_eject": tot["stale"], "relearned": tot["relearned"],
        "final_check": {"replies": tot["final_checked"], "wrong": tot["final_wrong"], "errors": tot["final_errors"]},
        "by_protocol": {p: dict(v) for p, v in by.items()},
        "ops": dict(sorted(ops.items())),
        "error_messages": dict(errmsgs.most_common(15)),
        "faults": {"count": len(fault_rec),
                   "by_kind": dict(collections.Counter(r["kind"] for r in fault_rec)),
                   "by_backend": dict(collections.Counter(r["backend"] for r in fault_rec)),
                   "restarts": {b.name: b.starts - 1 for b in backends},
                   "list": fault_rec},
        "wrong_samples": sink.wrong_samples, "outside_samples": sink.outside_samples,
        "client_crashes": crashes,
        "throughput_rps": round(tot["checked"] / soak_s, 1) if soak_s > 0 else None,
    })

    # checks
    def check(cond, what):
        if not cond:
            failed.append(what)
    check(tot["wrong"] == 0, "wrong replies: %d (see %s/wrong.log)" % (tot["wrong"], rundir))
    check(tot["errors_outside"] == 0, "error replies outside fault windows: %d" % tot["errors_outside"])
    check(tot["disconnects_outside"] == 0, "disconnects outside fault windows: %d" % tot["disconnects_outside"])
    check(tot["stalls"] == 0, "requests without a reply for %.0f s: %d" % (CLIENT_TIMEOUT, tot["stalls"]))
    check(not crashed and alive, "keymux died during the soak (exit %s)" % km.returncode)
    check(exit_code == 0, "keymux exit status after SIGTERM: %s" % exit_code)
    check(not alerts, "keymux log/stderr alerts: %s" % alerts[:3])
    check(not cores, "core files: %s" % cores)
    check(not crashes, "soak client threads crashed: %d" % len(crashes))
    check(idle_ok, "clients did not stop in time")
    check(tot["checked"] > 0, "no replies checked")
    if rss0 and rss1:
        check(rss1 <= max(rss0 * 1.10, rss0 + opts.rss_slack_kb),
              "keymux RSS grew: %d kB -> %d kB" % (rss0, rss1))
    else:
        failed.append("keymux RSS unreadable")
    if fd0 and fd1:
        check(fd1 <= max(fd0 * 1.10, fd0 + opts.fd_slack), "keymux fds grew: %d -> %d" % (fd0, fd1))
    if not with_mc:
        summary["note"] = "memcached: unavailable in this build"
    return 1 if failed else 0


def print_report(s):
    def g(k, d="-"):
        return s.get(k, d)
    print("\n== keymux soak (%s) ==" % ("auto_eject_hosts: true" if s["config"]["auto_eject_hosts"]
                                       else "auto_eject_hosts: false"))
    print("memcached: %s" % g("memcached"))
    print("soak seconds %s, faults %s, requests sent %s, replies checked %s (%s/s)" % (
        g("soak_seconds"), s.get("faults", {}).get("by_kind", "-"), g("requests_sent"),
        g("replies_checked"), g("throughput_rps")))
    print("wrong replies %s | error replies %s (outside fault windows %s) | disconnects %s (outside %s) | "
          "stalls %s | stale (eject) %s" % (
              g("wrong_replies"), g("error_replies"), g("errors_outside_fault_windows"), g("disconnects"),
              g("disconnects_outside_fault_windows"), g("stalls"), g("stale_reads_eject")))
    print("final check %s" % g("final_check"))
    t, b = s.get("transactions"), s.get("blocking")
    if t and t["txn"] + t["watch"]:
        print("transactions: MULTI/EXEC %d (ok %d, EXECABORT %d, other errors %d) | WATCH tries %d (ok %d, "
              "nil %d, EXECABORT %d, errors %d, no counter read %d)" % (
                  t["txn"], t["txn_ok"], t["txn_aborted"], t["txn_errors"], t["watch"], t["watch_ok"],
                  t["watch_nil"], t["watch_aborted"], t["watch_errors"], t["watch_skipped"]))
    if b and b.get("lists_at_end"):
        e = b["lists_at_end"]
        print("blocking: pushes ok %d (errors %d) | BLPOP pops %d, timeouts %d, errors %d | at the end: "
              "left in lists %d, pushes lost to a kill %d, lost with a BLPOP reply %d, unanswered pushes "
              "found %d / missing %d" % (
                  b["push_ok"], b["push_errors"], b["blpop_pops"], b["blpop_timeouts"], b["blpop_errors"],
                  e.get("left_in_lists", 0), e.get("lost_to_kill", 0), e.get("lost_with_a_blpop_reply", 0),
                  e.get("unanswered_found", 0), e.get("unanswered_missing", 0)))
    print("keymux crashes %s, exit after SIGTERM %s, RSS/fds start %s end %s after-disconnect %s" % (
        g("keymux_crashes"), g("keymux_exit_after_sigterm"), g("keymux_start"), g("keymux_end"),
        g("keymux_after_disconnect")))
    if s.get("error_messages"):
        print("error messages: %s" % s["error_messages"])
    print("VERDICT: %s%s" % (s["verdict"], "" if not s["failed_checks"] else " -- " + "; ".join(s["failed_checks"])))
    print("details: %s/summary.json" % s["rundir"])


if __name__ == "__main__":
    sys.exit(main())
