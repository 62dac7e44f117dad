#!/usr/bin/python3
"""tests/check_resp_cmd.py: compare keymux's Redis command table with a live redis-server 7.

Usage: /usr/bin/python3 tests/check_resp_cmd.py [--port N] [--cc CC]

Starts its own redis-server (port 42651 unless --port; --external uses a running one),
builds src/proto/resp_cmd.c into a temporary shared object and, through ctypes, checks
for every table entry:
  * the command exists in Redis, with the same arity (XGROUP/XINFO: their keyed
    subcommands) and the same legacy key triple, or for numkeys commands the same
    key specs (numkeys word, and the fixed destination key before it);
  * resp_cmd_keys() on a sample request names exactly the keys COMMAND GETKEYS names;
  * for numkeys commands, the error text resp_cmd_keys() gives for numkeys x, -1, 0 and
    too many equals the error Redis replies to the same request;
  * for XREAD and XREADGROUP (policy STREAMS, planned by src/proto/redis_stream.c from the
    words themselves), that Redis's key spec is the rule the planner follows: the first
    half of the words after the STREAMS keyword, and COMMAND GETKEYS agrees on a sample;
and that every keyed Redis command of the data-type groups is either in the table or in
the deliberately-absent list below. Exits non-zero on any difference.
"""
import argparse
import ctypes
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Keyed data commands keymux does not proxy, on purpose (multi-db, debugging).
ABSENT = {
    "migrate", "move", "object", "pfdebug", "pfselftest",
}
POLICY_STREAMS = 9   # enum resp_policy: RESP_P_STREAMS
DATA_GROUPS = {"string", "bitmap", "generic", "geo", "hash", "hyperloglog", "list", "set",
               "sorted-set", "stream", "scripting"}


class Resp:
    """A minimal RESP2 client that keeps replies exact (errors as text, not exceptions)."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""

    def cmd(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)
        return self._read()

    def _line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError
            self.buf += d
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _read(self):
        line = self._line()
        t, rest = chr(line[0]), line[1:]
        if t == "+":
            return rest.decode()
        if t == "-":
            return Error(rest.decode())
        if t == ":":
            return int(rest)
        if t == "$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self.buf += self.s.recv(65536)
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data.decode("latin1")
        if t == "*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise ValueError("unexpected reply type %r" % t)


class Error(str):
    pass


class Cmd(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("arity_err", ctypes.c_char_p),
                ("arity", ctypes.c_int16), ("first_key", ctypes.c_int16),
                ("last_key", ctypes.c_int16), ("step", ctypes.c_int16),
                ("policy", ctypes.c_uint8), ("numkeys_at", ctypes.c_uint8),
                ("id", ctypes.c_uint8), ("len", ctypes.c_uint8)]


def build_lib(cc, tmp):
    so = os.path.join(tmp, "libresp_cmd.so")
    subprocess.check_call([cc, "-std=gnu11", "-O1", "-shared", "-fPIC", "-I", os.path.join(ROOT, "src"),
                           "-o", so, os.path.join(ROOT, "src/proto/resp_cmd.c"),
                           os.path.join(ROOT, "src/core/common.c")])
    lib = ctypes.CDLL(so)
    lib.resp_cmd_by_id.restype = ctypes.POINTER(Cmd)
    lib.resp_cmd_by_id.argtypes = [ctypes.c_uint]
    lib.resp_cmd_lookup.restype = ctypes.POINTER(Cmd)
    lib.resp_cmd_lookup.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    lib.resp_cmd_keys.restype = ctypes.c_int
    lib.resp_cmd_keys.argtypes = [ctypes.POINTER(Cmd), ctypes.c_uint64, ctypes.c_int64,
                                  ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_uint64),
                                  ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_char_p)]
    lib.resp_cmd_extra_key.restype = ctypes.c_uint64
    lib.resp_cmd_extra_key.argtypes = [ctypes.POINTER(Cmd)]
    return lib


def count_entries():
    n = 0
    with open(os.path.join(ROOT, "src/proto/resp_cmd.def")) as f:
        for line in f:
            if line.startswith("RESP_CMD_X("):
                n += 1
    return n


def c_keys(lib, c, words, numkeys):
    first, last, step = ctypes.c_uint64(), ctypes.c_uint64(), ctypes.c_uint64()
    err = ctypes.c_char_p()
    rc = lib.resp_cmd_keys(ctypes.byref(c), len(words), numkeys, ctypes.byref(first),
                           ctypes.byref(last), ctypes.byref(step), ctypes.byref(err))
    if rc != 0:
        return Error(err.value.decode())
    keys = []
    extra = lib.resp_cmd_extra_key(ctypes.byref(c))
    if extra:
        keys.append(words[extra])
    if first.value:
        keys += [words[k] for k in range(first.value, last.value + 1, step.value)]
    return keys


def parse_numkeys(s):
    """resp_parse_int64's grammar (Redis string2ll); None = not an integer."""
    if s == "0":
        return 0
    t = s[1:] if s.startswith("-") else s
    if not t or not t.isdigit() or t[0] == "0":
        return None
    v = int(s)
    return v if -2**63 <= v < 2**63 else None


def streams_rule_ok(info):
    """Whether Redis's key spec is: after the STREAMS keyword, the first half of the rest."""
    specs = info[8]
    if len(specs) != 1:
        return False
    d = dict(zip(specs[0][0::2], specs[0][1::2]))
    bs = dict(zip(d["begin_search"][0::2], d["begin_search"][1::2]))
    fk = dict(zip(d["find_keys"][0::2], d["find_keys"][1::2]))
    bspec = dict(zip(bs["spec"][0::2], bs["spec"][1::2]))
    fspec = dict(zip(fk["spec"][0::2], fk["spec"][1::2]))
    return (bs["type"] == "keyword" and bspec["keyword"] == "STREAMS" and fk["type"] == "range"
            and (fspec["lastkey"], fspec["keystep"], fspec["limit"]) == (-1, 1, 2))


def streams_sample(name):
    """An XREAD/XREADGROUP request with every option, and the keys the planner takes."""
    head = [name] + (["GROUP", "g", "c"] if name == "xreadgroup" else [])
    words = head + ["COUNT", "1", "BLOCK", "0", "STREAMS", "k1", "k2", "k3", "0", "0", "0"]
    return words, ["k1", "k2", "k3"]


def sample(name, c, nk):
    """A request for COMMAND GETKEYS, and for numkeys commands with numkeys word nk."""
    if name == "xgroup":
        return ["xgroup", "create", "k1", "g", "$"]
    if name == "xinfo":
        return ["xinfo", "consumers", "k1", "g"]
    if c.numkeys_at:
        head = [name] + (["0.1" if name in ("blmpop", "bzmpop") else "dst"]
                         if c.numkeys_at == 2 else [])
        if name.startswith("eval"):
            head = [name, "return 1"]
        elif name.startswith("fcall"):
            head = [name, "f"]
        tail = {"lmpop": ["LEFT"], "zmpop": ["MIN"], "blmpop": ["LEFT"],
                "bzmpop": ["MIN"]}.get(name, [])
        return head + [nk, "k1", "k2"] + tail
    n = abs(c.arity) if c.arity > 0 else abs(c.arity) + 2
    if c.step == 2 and (n - 1) % 2:
        n += 1
    return [name] + ["k%d" % i for i in range(1, n)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=42651)
    ap.add_argument("--external", action="store_true", help="use a running server on --port")
    ap.add_argument("--cc", default="cc")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="km_resp_cmd_")
    proc = None
    bad = []
    try:
        if not args.external:
            proc = subprocess.Popen(["redis-server", "--port", str(args.port), "--bind", "127.0.0.1",
                                     "--save", "", "--appendonly", "no", "--dir", tmp],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.time() + 10
            while True:
                try:
                    r = Resp(args.port)
                    r.cmd("PING")
                    break
                except OSError:
                    if time.time() > deadline:
                        raise
                    time.sleep(0.1)
        r = Resp(args.port)
        lib = build_lib(args.cc, tmp)
        entries = [lib.resp_cmd_by_id(i).contents for i in range(count_entries())]
        sha = r.cmd("SCRIPT", "LOAD", "return 1")
        r.cmd("FUNCTION", "LOAD", "REPLACE",
              "#!lua name=kmcheck\nredis.register_function{function_name='f', "
              "callback=function(k, a) return 1 end, flags={'no-writes'}}")

        docs = r.cmd("COMMAND", "DOCS")
        group = {docs[i]: dict(zip(docs[i + 1][0::2], docs[i + 1][1::2])).get("group")
                 for i in range(0, len(docs), 2)}
        names = set()
        for c in entries:
            name = c.name.decode().lower()
            names.add(name)
            info = r.cmd("COMMAND", "INFO", name)[0]
            if info is None:
                bad.append("%s: unknown to redis" % name)
                continue
            arity, first, last, step = info[1], info[3], info[4], info[5]
            if name in ("xgroup", "xinfo"):
                keyed = [s for s in info[9] if s[3] != 0]
                if any(s[3] != c.first_key or s[4] != c.last_key for s in keyed):
                    bad.append("%s: subcommand key positions differ" % name)
                if min(abs(s[1]) for s in keyed) < abs(c.arity) or c.arity > 0:
                    bad.append("%s: arity %d stricter than a subcommand" % (name, c.arity))
            elif arity != c.arity:
                bad.append("%s: arity %d, redis %d" % (name, c.arity, arity))
            if c.numkeys_at:
                specs = info[8]
                found_nk = None
                found_fixed = 0
                for s in specs:
                    d = dict(zip(s[0::2], s[1::2]))
                    bs = dict(zip(d["begin_search"][0::2], d["begin_search"][1::2]))
                    fk = dict(zip(d["find_keys"][0::2], d["find_keys"][1::2]))
                    bspec = dict(zip(bs["spec"][0::2], bs["spec"][1::2]))
                    fspec = dict(zip(fk["spec"][0::2], fk["spec"][1::2]))
                    if fk["type"] == "keynum":
                        found_nk = (bspec["index"] + fspec["keynumidx"],
                                    bspec["index"] + fspec["firstkey"])
                    elif fk["type"] == "range" and fspec["lastkey"] == 0:
                        found_fixed = bspec["index"]
                if found_nk != (c.numkeys_at, c.numkeys_at + 1):
                    bad.append("%s: numkeys spec %r, table %d" % (name, found_nk, c.numkeys_at))
                if found_fixed != (c.first_key if c.first_key > 0 else 0):
                    bad.append("%s: fixed key %d, table %d" % (name, found_fixed, c.first_key))
            elif name not in ("xgroup", "xinfo") and (first, last, step) != (c.first_key, c.last_key, c.step):
                bad.append("%s: keys %d,%d,%d, redis %d,%d,%d" % (
                    name, c.first_key, c.last_key, c.step, first, last, step))

            # keys of a sample request, against COMMAND GETKEYS
            if c.policy in (5, 6, 10) or (c.policy == 7 and c.first_key == 0):   # LOCAL, KEYSPACE, PUBSUB, keyless SESSION
                continue
            if c.policy == POLICY_STREAMS:
                words, mine = streams_sample(name)
                theirs = r.cmd("COMMAND", "GETKEYS", *words)
                if not streams_rule_ok(info) or mine != theirs:
                    bad.append("%s: key spec %r, keys of %r: keymux %r, redis %r" % (
                        name, info[8], words, mine, theirs))
                continue
            words = sample(name, c, "2")
            nk = parse_numkeys(words[c.numkeys_at]) if c.numkeys_at else 0
            mine = c_keys(lib, c, words, nk)
            theirs = r.cmd("COMMAND", "GETKEYS", *words)
            if isinstance(mine, Error) or mine != theirs:
                bad.append("%s: keys of %r: keymux %r, redis %r" % (name, words, mine, theirs))

            # numkeys errors, against what Redis replies to the same request
            if c.numkeys_at:
                for nkw in ("x", "-1", "0", "5", "00"):
                    words = sample(name, c, nkw)
                    if name.startswith("evalsha"):
                        words[1] = sha
                    v = parse_numkeys(nkw)
                    mine = c_keys(lib, c, words, -2**63 if v is None else v)
                    theirs = r.cmd(*words)
                    if isinstance(mine, Error) or isinstance(theirs, Error):
                        if not (isinstance(mine, Error) and isinstance(theirs, Error) and mine == theirs):
                            bad.append("%s numkeys %s: keymux %r, redis %r" % (name, nkw, mine, theirs))

        # coverage: every keyed command of the data groups is in the table or known absent
        for info in r.cmd("COMMAND"):
            name = info[0]
            if group.get(name) not in DATA_GROUPS or name in names or name in ABSENT:
                continue
            keyed = info[3] != 0 or "movablekeys" in info[2] or any(s[3] != 0 for s in (info[9] or []))
            if keyed:
                bad.append("%s: keyed redis command neither in the table nor in ABSENT" % name)
        for name in ABSENT:
            if lib.resp_cmd_lookup(name.encode(), len(name)):
                bad.append("%s: should be absent" % name)
        print("checked %d table entries against redis %s" % (
            len(entries), r.cmd("INFO", "server").split("redis_version:")[1].split()[0]))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)

    for b in bad:
        print("DIFF " + b)
    print("OK" if not bad else "%d differences" % len(bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
