#!/usr/bin/python3
"""fuzz/gen_corpus.py: writes the seed corpora under fuzz/corpus/<target>/.

Requests are written here; replies are captured from a real redis-server (7.x) and a
real memcached (1.6.x) that this script starts on 127.0.0.1 (ports 27000-27099) and stops
by PID. Configs are conf/*.yml and conf/examples/*.yml plus a few written here. Files
named crash-* (reproducers of findings) are never touched. Run from anywhere:

    /usr/bin/python3 fuzz/gen_corpus.py
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CORPUS = os.path.join(HERE, "corpus")
PORT_LO, PORT_HI = 27000, 27099
TIMEOUT = 5.0


def free_port():
    for port in range(PORT_LO, PORT_HI + 1):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        c = socket.socket()
        c.settimeout(0.2)
        try:
            c.connect(("127.0.0.1", port))
            c.close()
            continue
        except OSError:
            return port
    raise RuntimeError("no free port in %d-%d" % (PORT_LO, PORT_HI))


def wait_port(port, proc):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited with %s" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server on %d did not come up" % port)


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def resp_cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Reader:
    """Reads whole replies from a socket, with a deadline."""

    def __init__(self, sock):
        self.s = sock
        self.buf = b""

    def fill(self):
        chunk = self.s.recv(65536)
        if not chunk:
            raise RuntimeError("server closed the connection")
        self.buf += chunk

    def line(self, at):
        while True:
            i = self.buf.find(b"\r\n", at)
            if i >= 0:
                return i + 2
            self.fill()

    def need(self, n):
        while len(self.buf) < n:
            self.fill()

    def resp_end(self, at):
        """Offset just past the RESP value starting at `at`."""
        self.need(at + 1)
        t = self.buf[at:at + 1]
        end = self.line(at)
        body = self.buf[at + 1:end - 2]
        if t in b"+-:_,#(":
            return end
        n = int(body)
        if t in b"$!=":
            if n < 0:
                return end
            self.need(end + n + 2)
            return end + n + 2
        if t in b"*~>%|":
            if n < 0:
                return end
            count = n * 2 if t in b"%|" else n
            for _ in range(count):
                end = self.resp_end(end)
            if t == b"|":
                end = self.resp_end(end)   # the value the attribute annotates
            return end
        raise RuntimeError("unknown RESP type %r" % t)

    def take_resp(self):
        end = self.resp_end(0)
        out, self.buf = self.buf[:end], self.buf[end:]
        return out

    def take_mc(self, kind):
        """One memcached reply: kind 'multi' (VALUE/STAT ... END), 'meta' (VA has data), 'line'."""
        at = 0
        while True:
            end = self.line(at)
            line = self.buf[at:end]
            word = line.split(b" ", 1)[0].strip()
            if word in (b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR"):
                at = end
                break
            if kind == "multi":
                if word == b"VALUE":
                    n = int(line.split()[3])
                    self.need(end + n + 2)
                    at = end + n + 2
                    continue
                if word == b"STAT":
                    at = end
                    continue
                at = end
                break
            if kind == "meta" and word == b"VA":
                n = int(line.split()[1])
                self.need(end + n + 2)
                at = end + n + 2
                break
            at = end
            break
        out, self.buf = self.buf[:at], self.buf[at:]
        return out


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def clean(target):
    d = os.path.join(CORPUS, target)
    if os.path.isdir(d):
        for n in os.listdir(d):
            if not n.startswith("crash-"):
                os.unlink(os.path.join(d, n))


# ---------------------------------------------------------------- redis

REDIS_SESSIONS = [
    # (name, [commands]) ; each command a tuple of arguments
    ("get", [("SET", "foo", "bar"), ("GET", "foo"), ("GET", "nokey")]),
    ("mget", [("MSET", "a", "1", "b", "2", "{t}c", "3"), ("MGET", "a", "b", "{t}c", "missing")]),
    ("mset", [("MSET", "k1", "v1", "k2", "v2", "k3", "")]),
    ("del", [("SET", "d1", "x"), ("DEL", "d1", "d2", "d3"), ("UNLINK", "a", "b")]),
    ("exists", [("EXISTS", "foo", "foo", "nokey"), ("TOUCH", "foo", "a")]),
    ("incr", [("INCR", "ctr"), ("INCRBY", "ctr", "-9223372036854775807"), ("DECR", "ctr")]),
    ("list", [("RPUSH", "l", "x", "y", "z"), ("LRANGE", "l", "0", "-1"), ("LPOP", "l")]),
    ("hash", [("HSET", "h", "f1", "v1", "f2", "v2"), ("HGETALL", "h"), ("HMGET", "h", "f1", "nf")]),
    ("set", [("SADD", "s", "m1", "m2"), ("SMEMBERS", "s"), ("SINTER", "s", "s")]),
    ("zset", [("ZADD", "z", "1.5", "a", "2", "b"), ("ZRANGE", "z", "0", "-1", "WITHSCORES")]),
    ("errors", [("GET",), ("NOSUCHCOMMAND", "x"), ("LPUSH", "foo", "x"), ("INCR", "foo")]),
    ("ping", [("PING",), ("PING", "hello"), ("ECHO", "")]),
    ("big", [("SET", "big", "x" * 3000), ("GET", "big")]),
    ("binary", [("SET", b"\x00\r\n\xff", b"\r\n\r\n"), ("GET", b"\x00\r\n\xff")]),
    ("eval", [("EVAL", "return {1,2,{3,'x'},nil}", "0"), ("EVAL", "return redis.call('get', KEYS[1])", "1", "foo")]),
    ("nested", [("EVAL", "return {{1,{2,{3,{4}}}}, 'a'}", "0")]),
    ("strlen", [("APPEND", "ap", "xyz"), ("STRLEN", "ap"), ("GETRANGE", "ap", "0", "1")]),
    ("ttl", [("SETEX", "t", "100", "v"), ("TTL", "t"), ("PERSIST", "t")]),
]

REDIS_RESP3 = [
    ("resp3_map", [("HELLO", "3"), ("HGETALL", "h")]),
    ("resp3_set", [("HELLO", "3"), ("SMEMBERS", "s")]),
    ("resp3_double", [("HELLO", "3"), ("ZSCORE", "z", "a"), ("ZRANGE", "z", "0", "-1", "WITHSCORES")]),
    ("resp3_null", [("HELLO", "3"), ("GET", "nokey"), ("HGET", "h", "nf")]),
    ("resp3_debug", [("HELLO", "3")] + [("DEBUG", "PROTOCOL", t) for t in
                     ("string", "integer", "double", "bignum", "null", "array", "set", "map",
                      "attrib", "push", "verbatim", "true", "false")]),
    ("resp2_debug", [("DEBUG", "PROTOCOL", t) for t in
                     ("string", "integer", "double", "bignum", "null", "array", "set", "map",
                      "attrib", "verbatim", "true", "false")]),
    ("resp3_push", [("HELLO", "3"), ("SUBSCRIBE", "chan")]),
]


def redis_corpus():
    work = tempfile.mkdtemp(prefix="km-fuzz-redis-")
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", work,
                             "--enable-debug-command", "yes"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        clean("fuzz_resp_req")
        clean("fuzz_resp_rsp")
        for name, cmds in REDIS_SESSIONS + REDIS_RESP3:
            s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
            r = Reader(s)
            req = b"".join(resp_cmd(*c) for c in cmds)
            s.sendall(req)
            replies = [r.take_resp() for _ in cmds]
            s.close()
            write("fuzz_resp_req", name, req)
            write("fuzz_resp_rsp", name, b"".join(replies))
            write("fuzz_resp_rsp", name + "_last", replies[-1])
        # inline and odd-but-valid requests
        for name, data in [
            ("inline", b"PING\r\nGET foo\r\nSET k v\r\n"),
            ("inline_lf", b"get foo\n\n  mget  a\tb  \r\n"),
            ("empty", b"*0\r\n*-1\r\n\r\n*1\r\n$4\r\nPING\r\n"),
            ("zero_bulk", b"*2\r\n$3\r\nGET\r\n$0\r\n\r\n"),
            ("partial", b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nabc"),
            ("bad_dollar", b"*2\r\n$3\r\nGET\r\n:1\r\n"),
            ("bad_len", b"*2\r\n$3\r\nGET\r\n$-5\r\n"),
            ("quote", b"SET \"a b\" c\r\n"),
        ]:
            write("fuzz_resp_req", name, data)
        for name, data in [
            ("depth", b"*1\r\n" * 130 + b":1\r\n"),
            ("null_array", b"*-1\r\n$-1\r\n_\r\n"),
            ("attr_top", b"|1\r\n+key\r\n+val\r\n*2\r\n:1\r\n:2\r\n"),
            ("attr_elem", b"*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n$1\r\nx\r\n"),
        ]:
            write("fuzz_resp_rsp", name, data)
    finally:
        stop(proc)
        shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------- redis_msg

REDIS_LOCAL_STREAMS = [
    ("handshake", 0x05, [("HELLO",), ("HELLO", "3"), ("HELLO", "2", "AUTH", "default", "pw", "SETNAME", "n1"),
                         ("CLIENT", "SETNAME", "app"), ("CLIENT", "GETNAME"), ("CLIENT", "ID"),
                         ("CLIENT", "SETINFO", "LIB-NAME", "x"), ("CLIENT", "INFO"), ("CLIENT", "LIST"),
                         ("SELECT", "3"), ("READONLY",), ("INFO",), ("INFO", "server", "clients"),
                         ("COMMAND", "COUNT"), ("COMMAND", "INFO", "get", "nosuch"),
                         ("COMMAND", "DOCS", "mget"), ("COMMAND", "LIST")]),
    ("handshake_auth", 0x81, [("HELLO", "2"), ("HELLO", "2", "AUTH", "default", "bad"),
                              ("HELLO", "2", "AUTH", "default", "pw", "SETNAME", "n"), ("CLIENT", "GETNAME")]),
    ("multi", 0x11, [("MULTI",), ("SET", "a", "1"), ("MGET", "a", "b"), ("MULTI",), ("EXEC",), ("GET", "a"),
                     ("MULTI",), ("PING",), ("DISCARD",), ("EXEC",), ("UNWATCH",)]),
    ("command_all", 0x00, [("COMMAND",), ("COMMAND", "DOCS")]),
]


def redis_msg_corpus():
    clean("fuzz_redis_msg")
    streams = {
        "mget": [("MGET", "a", "b", "c", "d", "e", "f")],
        "mget_many": [("MGET",) + tuple("key:%d" % i for i in range(60))],
        "mset": [("MSET", "a", "1", "b", "2", "c", "3", "d", "4")],
        "msetnx": [("MSETNX", "a", "1", "b", "2")],
        "del": [("DEL", "a", "b", "c", "d")],
        "unlink": [("UNLINK", "x", "y", "z")],
        "exists": [("EXISTS", "a", "a", "b")],
        "touch": [("TOUCH", "p", "q", "r")],
        "mixed": [("GET", "a"), ("MGET", "a", "b"), ("PING",), ("ECHO", "hi"), ("DEL", "a", "b")],
        "samesrv": [("SINTER", "{t}a", "{t}b"), ("RPOPLPUSH", "a", "b"), ("SMOVE", "s1", "s2", "m")],
        "eval": [("EVAL", "return 1", "2", "k1", "k2", "arg"), ("EVALSHA", "abc", "1", "k")],
        "zunion": [("ZUNIONSTORE", "dst", "2", "z1", "z2", "WEIGHTS", "1", "2")],
        "local": [("PING", "x"), ("ECHO", ""), ("SELECT", "0"), ("SELECT", "1"), ("QUIT",)],
        "auth": [("AUTH", "pw"), ("MGET", "a", "b"), ("AUTH", "default", "pw"), ("AUTH", "no")],
        "errors": [("GET",), ("NOSUCH",), ("MSET", "a"), ("KEYS", "*"), ("EVAL", "x", "-1")],
        "bigval": [("MSET", "a", "x" * 700, "b", "y" * 1300)],
        "bigkeys": [("MGET", "k" * 600, "j" * 200, "i")],
    }
    # config byte: bits 0-1 = 0 odd segment size, bits 2-4 server count, 0x60 limits, 0x80 auth
    cfgs = [0x01, 0x05, 0x0d, 0x11, 0x00, 0x81, 0x61]
    i = 0
    for name, cmds in sorted(streams.items()):
        cfg = cfgs[i % len(cfgs)]
        i += 1
        if name == "auth":
            cfg = 0x81
        write("fuzz_redis_msg", name, bytes([cfg]) + b"".join(resp_cmd(*c) for c in cmds))
    # what keymux answers itself (client handshakes) and a refused MULTI, each with its cfg
    for name, cfg, cmds in REDIS_LOCAL_STREAMS:
        write("fuzz_redis_msg", name, bytes([cfg]) + b"".join(resp_cmd(*c) for c in cmds))
    write("fuzz_redis_msg", "inline", b"\x09MGET a b c d\r\nDEL a b\r\nMSET a 1 b 2\r\nPING\r\n")
    write("fuzz_redis_msg", "inline_small_seg", b"\x00" + b"MGET " + b" ".join(b"k%d" % i for i in range(150)) + b"\r\n")
    write("fuzz_redis_msg", "pipeline", b"\x15" + b"".join(resp_cmd("MGET", "a%d" % i, "b%d" % i) for i in range(20)))


# -------------------------------------------------------------- memcached

def mc_cmd_ids():
    """enum mc_cmd of src/proto/mc.h, name -> value (MC_GET -> 1 ...)."""
    text = open(os.path.join(ROOT, "src", "proto", "mc.h")).read()
    body = re.search(r"enum mc_cmd\s*\{(.*?)\}", text, re.S).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    names = [n.strip() for n in body.split(",") if n.strip()]
    return {n: i for i, n in enumerate(names)}


MC_SESSIONS = [
    # (name, enum name of the reply's command, request bytes, reply kind)
    ("set", "MC_SET", b"set foo 5 0 3\r\nbar\r\n", "line"),
    ("set_noreply", "MC_SET", b"set foo 0 0 3 noreply\r\nbar\r\n", None),
    ("add", "MC_ADD", b"add foo 0 0 1\r\nx\r\n", "line"),
    ("replace", "MC_REPLACE", b"replace nokey 0 0 1\r\nx\r\n", "line"),
    ("append", "MC_APPEND", b"append foo 0 0 2\r\nzz\r\n", "line"),
    ("prepend", "MC_PREPEND", b"prepend foo 0 0 2\r\naa\r\n", "line"),
    ("get", "MC_GET", b"get foo\r\n", "multi"),
    ("get_multi", "MC_GET", b"get foo nokey foo\r\n", "multi"),
    ("get_miss", "MC_GET", b"get nokey\r\n", "multi"),
    ("gets", "MC_GETS", b"gets foo\r\n", "multi"),
    ("gat", "MC_GAT", b"gat 100 foo nokey\r\n", "multi"),
    ("gats", "MC_GATS", b"gats 100 foo\r\n", "multi"),
    ("cas_bad", "MC_CAS", b"cas foo 0 0 1 1\r\ny\r\n", "line"),
    ("incr", "MC_INCR", b"set n 0 0 2\r\n10\r\nincr n 5\r\n", "line"),
    ("decr", "MC_DECR", b"decr n 100\r\n", "line"),
    ("incr_miss", "MC_INCR", b"incr nokey 1\r\n", "line"),
    ("incr_bad", "MC_INCR", b"incr foo 1\r\n", "line"),
    ("delete", "MC_DELETE", b"delete foo\r\n", "line"),
    ("delete_miss", "MC_DELETE", b"delete foo\r\n", "line"),
    ("touch", "MC_TOUCH", b"set t 0 0 1\r\nx\r\ntouch t 10\r\n", "line"),
    ("version", "MC_VERSION", b"version\r\n", "line"),
    ("verbosity", "MC_VERBOSITY", b"verbosity 1\r\n", "line"),
    ("flush_all", "MC_FLUSH_ALL", b"flush_all 0\r\n", "line"),
    ("stats", "MC_STATS", b"stats settings\r\n", "multi"),
    ("mg", "MC_MG", b"ms mk 3 T0\r\nabc\r\nmg mk v f t\r\n", "meta"),
    ("mg_hit_nov", "MC_MG", b"mg mk s k\r\n", "meta"),
    ("mg_miss", "MC_MG", b"mg nokey v\r\n", "meta"),
    ("ms", "MC_MS", b"ms mk2 2 F5\r\nhi\r\n", "meta"),
    ("md", "MC_MD", b"md mk2\r\n", "meta"),
    ("ma", "MC_MA", b"ms ctr 1\r\n5\r\nma ctr v\r\n", "meta"),
    ("ma_miss", "MC_MA", b"ma nokey\r\n", "meta"),
    ("mn", "MC_MN", b"mn\r\n", "line"),
    ("me", "MC_ME", b"me mk\r\n", "line"),
    ("error", "MC_GET", b"bogus\r\n", "line"),
    ("client_error", "MC_SET", b"set foo 0 0 x\r\n", "line"),
    ("too_large", "MC_SET", b"set big 0 0 2000000\r\n", "line"),
    ("key_too_long", "MC_GET", b"get " + b"k" * 251 + b"\r\n", "line"),
]


def mc_corpus():
    ids = mc_cmd_ids()
    port = free_port()
    argv = ["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "16"]
    if os.getuid() == 0:
        argv += ["-u", "nobody"]   # memcached refuses to run as root otherwise
    proc = subprocess.Popen(argv,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        clean("fuzz_mc_req")
        clean("fuzz_mc_rsp")
        s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        r = Reader(s)
        for name, cmd, req, kind in MC_SESSIONS:
            write("fuzz_mc_req", name, req)
            if kind is None:
                continue
            # a request with a leading set (incr, touch, mg ...) answers that first
            nreq = len(re.findall(rb"(?m)^(set|ms) ", req)) if req.count(b"\r\n") > 2 else 0
            s.sendall(req)
            if name == "too_large":
                # memcached swallows the declared block: feed it, then read the error
                s.sendall(b"x" * 2000002)
            for _ in range(nreq):
                r.take_mc("meta" if req.startswith(b"ms") else "line")
            reply = r.take_mc(kind)
            write("fuzz_mc_rsp", name, bytes([ids[cmd]]) + reply)
        s.close()
        write("fuzz_mc_req", "pipeline", b"".join(m[2] for m in MC_SESSIONS[:12]))
        write("fuzz_mc_req", "bad_chunk", b"set foo 0 0 3\r\nabcd\r\n")
        write("fuzz_mc_req", "quiet", b"mg a v q\r\nmg b v q\r\nmn\r\n")
        write("fuzz_mc_req", "base64", b"mg Zm9v b v\r\n")
        write("fuzz_mc_req", "lf_only", b"get a b\nset k 0 0 1\nx\r\n")
        write("fuzz_mc_req", "admin", b"stats\r\nstats reset\r\nstats items\r\nverbosity 1 noreply\r\n"
              b"flush_all 10 noreply\r\nflush_all x\r\nverbosity\r\n")
        write("fuzz_mc_req", "binary_after_text", b"get a\r\n\x80\x00\x00\x03\x00\x00\x00\x00")
        write("fuzz_mc_rsp", "values_pipe", bytes([ids["MC_GET"]]) +
              b"VALUE a 0 1\r\nx\r\nEND\r\nVALUE b 5 2 77\r\nyy\r\nEND\r\nEND\r\n")
        write("fuzz_mc_rsp", "server_error_mid", bytes([ids["MC_GETS"]]) +
              b"VALUE a 0 1 9\r\nx\r\nSERVER_ERROR out of memory\r\n")
    finally:
        stop(proc)


# ----------------------------------------------------------------- conf

CONF_EXTRA = {
    "minimal.yml": "alpha:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:11211:1\n",
    "redis_full.yml": """beta:
  listen: 0.0.0.0:22122
  hash: murmur
  hash_tag: "{}"
  distribution: modula
  timeout: 400
  backlog: 1024
  client_connections: 100
  redis: true
  redis_auth: secret
  redis_db: 2
  preconnect: true
  auto_eject_hosts: true
  server_retry_timeout: 2000
  server_failure_limit: 3
  server_connections: 2
  tcpkeepalive: true
  servers:
   - 127.0.0.1:6379:1 one
   - 127.0.0.1:6380:2 two
""",
    "unix.yml": """gamma:
  listen: /tmp/keymux.sock 0666
  redis: true
  servers:
   - /tmp/redis.sock:1
   - /tmp/redis2.sock:1 named
""",
    "ipv6.yml": "d:\n  listen: '[::1]:22123'\n  distribution: random\n  hash: crc32a\n  servers:\n   - '[::1]:11211:1'\n   - 127.0.0.1:11212:3 x\n",
    "two_pools.yml": "a:\n  listen: 127.0.0.1:1\n  servers: [127.0.0.1:2:1]\nb:\n  listen: 127.0.0.1:3\n  hash: fnv1_32\n  servers: [127.0.0.1:4:1, 127.0.0.1:5:1]\n",
    "bad_hash.yml": "a:\n  listen: 127.0.0.1:1\n  hash: fnv9\n  servers:\n   - 127.0.0.1:2:1\n",
    "bad_port.yml": "a:\n  listen: 127.0.0.1:70000\n  servers:\n   - 127.0.0.1:2:1\n",
    "bad_weight.yml": "a:\n  listen: 127.0.0.1:1\n  servers:\n   - 127.0.0.1:2:0\n",
    "dup_key.yml": "a:\n  listen: 127.0.0.1:1\n  listen: 127.0.0.1:2\n  servers:\n   - 127.0.0.1:2:1\n",
    "anchors.yml": "base: &b\n  listen: 127.0.0.1:1\n  servers:\n   - 127.0.0.1:2:1\nother: *b\n",
    "flow.yml": "{a: {listen: '127.0.0.1:9', servers: ['127.0.0.1:2:1'], redis: yes}}\n",
    "no_servers.yml": "a:\n  listen: 127.0.0.1:1\n",
    "unknown_key.yml": "a:\n  listen: 127.0.0.1:1\n  color: red\n  servers:\n   - 127.0.0.1:2:1\n",
    "empty.yml": "",
    "tabs.yml": "a:\n\tlisten: 127.0.0.1:1\n",
    "bad_yaml.yml": "a: [\n  listen: 127.0.0.1:1\n",
}


def conf_corpus():
    clean("fuzz_conf")
    for d in (os.path.join(ROOT, "conf"), os.path.join(ROOT, "conf", "examples")):
        for n in sorted(os.listdir(d)):
            if n.endswith(".yml"):
                shutil.copy(os.path.join(d, n), os.path.join(CORPUS, "fuzz_conf", "conf_" + n))
    for n, text in CONF_EXTRA.items():
        write("fuzz_conf", n, text.encode())


def mc_msg_corpus():
    """Request streams for fuzz_mc_msg (composed: the target plays the servers)."""
    clean("fuzz_mc_msg")
    streams = {
        "multiget": b"get a b c d e f\r\ngets a bb ccc\r\ngat 10 x y z\r\ngats 0 p q\r\n",
        "multiget_many": b"get " + b" ".join(b"key:%d" % i for i in range(80)) + b"\r\n",
        "single": b"get a\r\nset a 0 0 1\r\nx\r\nadd b 1 2 2 noreply\r\nyy\r\nincr n 5\r\n"
                  b"delete a\r\ntouch a 10\r\nversion\r\n",
        "meta": b"mg a v k\r\nmg b v q\r\nms c 2 T0\r\nhi\r\nmd c q\r\nma n q\r\nme a\r\nmn\r\n",
        "admin": b"stats\r\nstats reset\r\nstats items\r\nstats bogus\r\nverbosity 1\r\n"
                 b"verbosity noreply\r\nflush_all\r\nflush_all 10 noreply\r\nflush_all x\r\n",
        "flush": b"flush_all\r\nflush_all 0\r\nflush_all noreply\r\n",
        "errors": b"bogus\r\nget\r\nset a x 0 1\r\nx\r\nmg Zm9v b v\r\nget a\x01b\r\n",
        "binary": b"get a b\r\n\x80\x00\x00\x03\x00\x00\x00\x00",
        "bad_chunk": b"set a 0 0 1\r\nxy\r\nget a\r\n",
        "quit": b"get a b\r\nquit\r\nget c\r\n",
        "too_large": b"set a 0 0 100\r\n" + b"v" * 100 + b"\r\nget a b\r\n",
    }
    # config byte: bits 0-1 = 0 odd segment size, bits 2-4 server count, 0x20 counters,
    # 0x40 the proxy's figures (0x60 both, and values over 64 bytes refused), 0x80 server names
    cfgs = [0xe1, 0x25, 0xa9, 0x0d, 0x60, 0x71, 0xf4]
    for i, (name, data) in enumerate(sorted(streams.items())):
        write("fuzz_mc_msg", name, bytes([cfgs[i % len(cfgs)]]) + data)


def main():
    os.makedirs(os.path.join(CORPUS, "fuzz_conf"), exist_ok=True)
    redis_corpus()
    redis_msg_corpus()
    mc_corpus()
    mc_msg_corpus()
    conf_corpus()
    for t in sorted(os.listdir(CORPUS)):
        print("%-16s %3d files" % (t, len(os.listdir(os.path.join(CORPUS, t)))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
