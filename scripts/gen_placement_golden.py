#!/usr/bin/python3
"""scripts/gen_placement_golden.py: record where nutcracker 0.5.0 places keys.

Starts real backends (redis-server, memcached) and Debian's nutcracker, writes
a fixed set of keys through nutcracker for each configuration below, then asks
every backend directly which keys it holds. The result is the placement golden
table tests/data/placement_golden.txt that tests/unit/test_route.c checks
keymux's routing against, row by row.

Run: /usr/bin/python3 scripts/gen_placement_golden.py [-o OUT]

Addresses: redis on 127.0.0.2:42001-42008, memcached on 127.0.0.2:42011-42014,
memcached and (later) redis on 127.0.0.2-127.0.0.5:11211, nutcracker on
127.0.0.2:42100 with its stats port on 42200. (127.0.0.2, not 127.0.0.1: other
programs' outgoing connections from 127.0.0.1 may hold ports of this range.)
Every process this script starts is stopped by its pid before it exits.

Table format (line based, '#' starts a comment):
    config NAME           starts a block
    proto redis|memcache
    hash NAME             twemproxy hash name
    dist NAME             ketama | modula
    tag HEX|-             hash_tag bytes in hex, '-' when none
    server SPEC           'host:port:weight [name]' as in the YAML, config order
    down I                server I was ejected (auto_eject_hosts) when the keys were placed
    k HEX|- I             key bytes in hex ('-' = empty key) -> server index
    end
"""

import argparse
import hashlib
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HASHES = ["one_at_a_time", "md5", "crc16", "crc32", "crc32a", "fnv1_64",
          "fnv1a_64", "fnv1_32", "fnv1a_32", "hsieh", "murmur", "jenkins"]

H = "127.0.0.2"            # every server on a 42xxx port binds here
PROXY_PORT = 42100
STATS_PORT = 42200
REDIS_PORTS = list(range(42001, 42009))
MC_PORTS = list(range(42011, 42015))
ALT_HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
DEAD_PORT = 42009          # nothing listens here: a server that fails and is ejected

DEADLINE = time.monotonic() + 540   # the whole run is bounded


def check_deadline():
    if time.monotonic() > DEADLINE:
        raise SystemExit("gen_placement_golden: time budget exhausted")


# --------------------------------------------------------------------------
# processes

class Procs:
    """Processes started by this script, stopped by pid."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.procs = []

    def start(self, argv, name):
        log = open(os.path.join(self.workdir, name + ".log"), "wb")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        log.close()
        self.procs.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self):
        for p in list(self.procs):
            self.stop(p)


def wait_port(host, port, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection((host, port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on %s:%d" % (host, port))


def start_server(procs, argv, name, host, port, tries=8):
    """Start a listening server; retry when its port is briefly taken (the
    kernel may hand out a port of our range as some connection's local port)."""
    for attempt in range(tries):
        p = procs.start(argv, name)
        try:
            wait_port(host, port)
            if p.poll() is None:
                return p
        except RuntimeError:
            pass
        procs.stop(p)
        time.sleep(2.0 * (attempt + 1))   # a TIME_WAIT socket lasts 60 s
    raise RuntimeError("cannot start %s on %s:%d" % (argv[0], host, port))


def start_redis(procs, host, port):
    return start_server(procs, ["redis-server", "--bind", host, "--port", str(port),
                                "--save", "", "--appendonly", "no", "--daemonize", "no",
                                "--protected-mode", "no"],
                        "redis-%s-%d" % (host, port), host, port)


def start_memcached(procs, host, port):
    return start_server(procs, ["memcached", "-u", "nobody", "-l", host, "-p", str(port),
                                "-U", "0", "-m", "16"],
                        "mc-%s-%d" % (host, port), host, port)


# --------------------------------------------------------------------------
# minimal clients (raw sockets, so any key bytes go through unchanged)

class Conn:
    def __init__(self, host, port):
        self.s = socket.create_connection((host, port), 5)
        self.s.settimeout(5)
        self.buf = b""

    def close(self):
        self.s.close()

    def send(self, data):
        self.s.sendall(data)

    def _fill(self):
        check_deadline()
        d = self.s.recv(65536)
        if not d:
            raise EOFError("connection closed")
        self.buf += d

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        i = self.buf.index(b"\r\n")
        out, self.buf = self.buf[:i], self.buf[i + 2:]
        return out

    def exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def resp_cmd(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def resp_read(c):
    t = c.line()
    kind, rest = t[:1], t[1:]
    if kind in (b"+", b"-", b":"):
        return (kind, rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return (kind, None)
        data = c.exact(n)
        c.exact(2)
        return (kind, data)
    if kind == b"*":
        n = int(rest)
        return (kind, [resp_read(c)[1] for _ in range(max(n, 0))])
    raise RuntimeError("bad RESP reply %r" % t)


def redis_set_all(port, keys, batch=64):
    """SET every key through the proxy; returns the keys that got an error."""
    c = Conn(H, port)
    failed = []
    try:
        for i in range(0, len(keys), batch):
            chunk = keys[i:i + batch]
            c.send(b"".join(resp_cmd("SET", k, b"v") for k in chunk))
            for k in chunk:
                kind, val = resp_read(c)
                if kind != b"+":
                    failed.append(k)
    finally:
        c.close()
    return failed


def redis_keys(host, port):
    c = Conn(host, port)
    try:
        c.send(resp_cmd("KEYS", "*"))
        kind, val = resp_read(c)
        assert kind == b"*", (kind, val)
        return set(val)
    finally:
        c.close()


def redis_flush(host, port):
    c = Conn(host, port)
    try:
        c.send(resp_cmd("FLUSHALL"))
        assert resp_read(c) == (b"+", b"OK")
    finally:
        c.close()


def mc_set_all(port, keys, batch=64):
    c = Conn(H, port)
    failed = []
    try:
        for i in range(0, len(keys), batch):
            chunk = keys[i:i + batch]
            c.send(b"".join(b"set %s 0 0 1\r\nv\r\n" % k for k in chunk))
            for k in chunk:
                if c.line() != b"STORED":
                    failed.append(k)
    finally:
        c.close()
    return failed


def mc_has(host, port, keys):
    c = Conn(host, port)
    found = set()
    try:
        for i in range(0, len(keys), 32):
            chunk = keys[i:i + 32]
            c.send(b"get " + b" ".join(chunk) + b"\r\n")
            while True:
                t = c.line()
                if t == b"END":
                    break
                parts = t.split(b" ")
                assert parts[0] == b"VALUE", t
                c.exact(int(parts[3]) + 2)
                found.add(parts[1])
    finally:
        c.close()
    return found


def mc_flush(host, port):
    c = Conn(host, port)
    try:
        c.send(b"flush_all\r\n")
        assert c.line() == b"OK"
    finally:
        c.close()


# --------------------------------------------------------------------------
# keys

def make_keys(memcache):
    rnd = random.Random(20240501 + memcache)
    keys = []
    special = [b"", b"a", b"b", b"foo", b"foobar", b"123456789", b"{}", b"{", b"}", b"}{",
               b"a{}b", b"{}{a}", b"{user1000}.following", b"{user1000}.followers",
               b"foo{bar}baz", b"foo{}{bar}", b"foo{{bar}}zap", b"{a}{b}", b"x}y{z",
               b"{abc", b"abc}", b"{{}}", b"{x}", b"pre{tag}", b"$a$b", b"a$$b", b"$tag$rest",
               b"ab\xff", b"abcdef\x80", b"\x80\x81\x82", b"\xff", b"\xfe\xfd\xfc\xfb",
               b"key\xe9\xe8\xe7", b"\xc3\xa9t\xc3\xa9", b"x" * 250, b"y" * 249, b"z" * 100]
    keys.extend(special)
    keys.extend(b"key:%d" % i for i in range(60))
    keys.extend(b"user:%d:profile" % rnd.randrange(10 ** 6) for _ in range(20))
    alnum = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-:.{}$"
    for _ in range(60):
        n = rnd.randrange(1, 41)
        keys.append(bytes(rnd.choice(alnum) for _ in range(n)))
    for _ in range(50):
        n = rnd.randrange(1, 33)
        if memcache:
            keys.append(bytes(rnd.choice(list(range(0x21, 0x7f)) + list(range(0x80, 0x100)))
                              for _ in range(n)))
        else:
            keys.append(bytes(rnd.randrange(256) for _ in range(n)))
    for _ in range(6):
        n = rnd.randrange(100, 251)
        keys.append(bytes(rnd.choice(alnum) for _ in range(n)))
    for i in range(16):   # tag-bearing keys with varied contents
        keys.append(b"obj:%d:{group%d}:field" % (i, i % 5))
    out, seen = [], set()
    for k in keys:
        if memcache and (k == b"" or any(b <= 0x20 or b == 0x7f for b in k) or len(k) > 250):
            continue
        if k not in seen:
            seen.add(k)
            out.append(k)
    return out


# --------------------------------------------------------------------------
# configurations

def cfg(name, proto, hash_, dist, servers, tag=None, dead=(), probe=None):
    return dict(name=name, proto=proto, hash=hash_, dist=dist, servers=servers, tag=tag,
                dead=list(dead), probe=probe)


def md5_probe_keys(ident, want=24, limit=300000):
    """Keys whose md5 key hash lands just below a point of the digest of `ident`
    (one ketama point group): they sit on that group's arcs, so they move if
    the group is missing. Used where twemproxy's single-precision point count
    drops a group that exact arithmetic would keep; the generator only picks
    the keys, the placement still comes from nutcracker."""
    d = hashlib.md5(ident.encode()).digest()
    points = [int.from_bytes(d[4 * i:4 * i + 4], "little") for i in range(4)]
    out = []
    for i in range(limit):
        k = b"probe:%d" % i
        h = int.from_bytes(hashlib.md5(k).digest()[:4], "little")
        if any(0 <= p - h < (1 << 32) // 4000 for p in points):
            out.append(k)
            if len(out) >= want:
                break
    return out


def srv(host, port, weight=1, name=None):
    s = "%s:%d:%d" % (host, port, weight)
    return s + (" " + name if name else "")


def configs_phase1():
    """Redis on H:4200x and memcached on H:4201x and 127.0.0.x:11211."""
    r4 = [srv(H, p) for p in REDIS_PORTS[:4]]
    rw = [srv(H, p, w) for p, w in zip(REDIS_PORTS, (1, 2, 3, 5))]
    names = ["alpha", "beta", "gamma", "delta"]
    rn = [srv(H, p, 1, n) for p, n in zip(REDIS_PORTS, names)]
    rnw = [srv(H, p, w, n) for p, w, n in zip(REDIS_PORTS, (2, 1, 4, 1),
                                                          ["cache-a", "cache-b", "s3", "node_4"])]
    out = []
    for h in HASHES:
        for d in ("ketama", "modula"):
            out.append(cfg("%s-%s-equal4" % (d, h), "redis", h, d, r4))
    for h in ("fnv1a_64", "md5", "murmur", "one_at_a_time", "crc16", "hsieh"):
        out.append(cfg("ketama-%s-w1235" % h, "redis", h, "ketama", rw))
    for h in ("fnv1a_64", "crc32a", "hsieh", "jenkins"):
        out.append(cfg("modula-%s-w1235" % h, "redis", h, "modula", rw))
    out.append(cfg("ketama-fnv1a_64-w1-1-1-100", "redis", "fnv1a_64", "ketama",
                   [srv(H, p, w) for p, w in zip(REDIS_PORTS, (1, 1, 1, 100))]))
    out.append(cfg("ketama-md5-w5-3-7-11-13-2", "redis", "md5", "ketama",
                   [srv(H, p, w) for p, w in zip(REDIS_PORTS, (3, 7, 11, 13, 2))]))
    # 5 servers 1,6,6,6,6: in single precision the first gets 28 points, not 32
    out.append(cfg("ketama-md5-w1-6-6-6-6", "redis", "md5", "ketama",
                   [srv(H, p, w) for p, w in zip(REDIS_PORTS, (1, 6, 6, 6, 6))],
                   probe=H + ":42001-7"))
    out.append(cfg("ketama-md5-w3-4-6-6-6", "redis", "md5", "ketama",
                   [srv(H, p, w) for p, w in zip(REDIS_PORTS, (3, 4, 6, 6, 6))],
                   probe=H + ":42001-23"))
    out.append(cfg("ketama-fnv1a_64-equal8", "redis", "fnv1a_64", "ketama",
                   [srv(H, p) for p in REDIS_PORTS]))
    out.append(cfg("modula-murmur-equal7", "redis", "murmur", "modula",
                   [srv(H, p) for p in REDIS_PORTS[:7]]))
    for h in ("fnv1a_64", "md5", "crc32a", "murmur"):
        out.append(cfg("ketama-%s-named" % h, "redis", h, "ketama", rn))
    out.append(cfg("ketama-fnv1a_64-named-weighted", "redis", "fnv1a_64", "ketama", rnw))
    out.append(cfg("modula-fnv1a_64-named", "redis", "fnv1a_64", "modula", rn))
    # twemproxy lays servers out sorted by name (length first): modula follows it
    out.append(cfg("modula-fnv1a_64-unsorted-weighted", "redis", "fnv1a_64", "modula",
                   [srv(H, p, w) for p, w in zip((42004, 42001, 42003, 42002),
                                                           (2, 1, 3, 1))]))
    odd = [srv(H, p, w, n) for p, w, n in zip(REDIS_PORTS, (1, 3, 2, 1),
                                                         ["a-long-name", "zz", "b", "mmm"])]
    out.append(cfg("modula-md5-named-lengths", "redis", "md5", "modula", odd))
    out.append(cfg("ketama-md5-named-lengths", "redis", "md5", "ketama", odd))
    out.append(cfg("modula-crc16-named-lengths-eject1", "redis", "crc16", "modula",
                   [odd[0], srv(H, DEAD_PORT, 3, "zz")] + odd[2:], dead=[1]))
    out.append(cfg("ketama-fnv1a_64-tag", "redis", "fnv1a_64", "ketama", r4, tag=b"{}"))
    out.append(cfg("ketama-murmur-tag", "redis", "murmur", "ketama", r4, tag=b"{}"))
    out.append(cfg("modula-crc32a-tag", "redis", "crc32a", "modula", r4, tag=b"{}"))
    out.append(cfg("ketama-md5-tag-dollar", "redis", "md5", "ketama", r4, tag=b"$$"))
    # ejection: one server never answers; with auto_eject_hosts it leaves the ring
    out.append(cfg("ketama-fnv1a_64-eject1", "redis", "fnv1a_64", "ketama",
                   [r4[0], srv(H, DEAD_PORT), r4[2], r4[3]], dead=[1]))
    out.append(cfg("ketama-md5-w1235-eject3", "redis", "md5", "ketama",
                   rw[:3] + [srv(H, DEAD_PORT, 5)], dead=[3]))
    out.append(cfg("ketama-murmur-named-eject0", "redis", "murmur", "ketama",
                   [srv(H, DEAD_PORT, 1, "alpha")] + rn[1:], dead=[0]))
    out.append(cfg("modula-fnv1a_64-w1235-eject0", "redis", "fnv1a_64", "modula",
                   [srv(H, DEAD_PORT, 1)] + rw[1:], dead=[0]))
    out.append(cfg("modula-murmur-eject2", "redis", "murmur", "modula",
                   [r4[0], r4[1], srv(H, DEAD_PORT), r4[3]], dead=[2]))
    # memcached: unnamed servers on 11211 (the port is left out of the ketama name)
    m11 = [srv(h, 11211) for h in ALT_HOSTS]
    for h in ("fnv1a_64", "md5", "jenkins", "one_at_a_time"):
        out.append(cfg("mc-ketama-%s-11211" % h, "memcache", h, "ketama", m11))
    out.append(cfg("mc-modula-fnv1a_64-11211", "memcache", "fnv1a_64", "modula", m11))
    out.append(cfg("mc-ketama-md5-11211-weighted", "memcache", "md5", "ketama",
                   [srv(h, 11211, w) for h, w in zip(ALT_HOSTS, (1, 2, 3, 5))]))
    out.append(cfg("mc-ketama-md5-11211-named", "memcache", "md5", "ketama",
                   [srv(h, 11211, 1, n) for h, n in zip(ALT_HOSTS, names)]))
    out.append(cfg("mc-ketama-fnv1a_64-42011", "memcache", "fnv1a_64", "ketama",
                   [srv(H, p) for p in MC_PORTS]))
    out.append(cfg("mc-ketama-md5-42011", "memcache", "md5", "ketama",
                   [srv(H, p) for p in MC_PORTS]))
    return out


def configs_phase2():
    """Redis on 127.0.0.x:11211 (does the port rule depend on the protocol?)."""
    r11 = [srv(h, 11211) for h in ALT_HOSTS]
    return [cfg("redis-ketama-fnv1a_64-11211", "redis", "fnv1a_64", "ketama", r11),
            cfg("redis-ketama-md5-11211", "redis", "md5", "ketama", r11),
            cfg("redis-ketama-murmur-11211-mixed", "redis", "murmur", "ketama",
                r11[:2] + [srv(H, REDIS_PORTS[0]), srv(H, REDIS_PORTS[1])]),
            cfg("redis-modula-fnv1a_64-11211-mixed", "redis", "fnv1a_64", "modula",
                [srv(H, 42002), r11[1], srv(H, 42001), r11[0]])]


# --------------------------------------------------------------------------

def yaml_conf(c):
    lines = ["pool:",
             "  listen: %s:%d" % (H, PROXY_PORT),
             "  hash: %s" % c["hash"],
             "  distribution: %s" % c["dist"],
             "  redis: %s" % ("true" if c["proto"] == "redis" else "false"),
             "  timeout: 2000",
             "  server_connections: 1"]
    if c["tag"]:
        lines.append('  hash_tag: "%s"' % c["tag"].decode())
    if c["dead"]:
        lines += ["  auto_eject_hosts: true",
                  "  server_failure_limit: 1",
                  "  server_retry_timeout: 600000"]
    lines.append("  servers:")
    lines += ["   - %s" % s for s in c["servers"]]
    return "\n".join(lines) + "\n"


def host_port(spec):
    addr = spec.split(" ")[0]
    host, port, _ = addr.split(":")
    return host, int(port)


def run_config(procs, workdir, c, keys):
    check_deadline()
    path = os.path.join(workdir, "nc.yml")
    with open(path, "w") as f:
        f.write(yaml_conf(c))
    backends = [host_port(s) for s in c["servers"]]
    live = [i for i in range(len(backends)) if i not in c["dead"]]
    redis = c["proto"] == "redis"
    for i in live:
        (redis_flush if redis else mc_flush)(*backends[i])
    nc = start_server(procs, ["nutcracker", "-c", path, "-s", str(STATS_PORT), "-a", H,
                              "-v", "4", "-o", os.path.join(workdir, "nc-%s.log" % c["name"])],
                      "nc-%s" % c["name"], H, PROXY_PORT)
    try:
        set_all = redis_set_all if redis else mc_set_all
        if c["dead"]:
            # first pass: keys that hit a dead server fail and get it ejected
            set_all(PROXY_PORT, keys)
            for i in live:
                (redis_flush if redis else mc_flush)(*backends[i])
        failed = set_all(PROXY_PORT, keys)
        if failed:
            raise RuntimeError("%s: %d keys failed, e.g. %r" % (c["name"], len(failed), failed[:3]))
    finally:
        procs.stop(nc)
    where = {}
    for i in live:
        held = redis_keys(*backends[i]) if redis else mc_has(*backends[i], keys)
        for k in held:
            if k in where:
                raise RuntimeError("%s: key %r on two servers" % (c["name"], k))
            where[k] = i
    missing = [k for k in keys if k not in where]
    if missing:
        raise RuntimeError("%s: %d keys not found on any server" % (c["name"], len(missing)))
    return where


def emit(out, c, keys, where):
    out.append("config %s" % c["name"])
    out.append("proto %s" % c["proto"])
    out.append("hash %s" % c["hash"])
    out.append("dist %s" % c["dist"])
    out.append("tag %s" % (c["tag"].hex() if c["tag"] else "-"))
    out += ["server %s" % s for s in c["servers"]]
    out += ["down %d" % i for i in c["dead"]]
    out += ["k %s %d" % (k.hex() if k else "-", where[k]) for k in keys]
    out.append("end")


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("-o", "--out", default=os.path.join(here, "..", "tests", "data",
                                                         "placement_golden.txt"))
    args = ap.parse_args()
    version = subprocess.run(["nutcracker", "-V"], capture_output=True, text=True)
    version = (version.stdout + version.stderr).strip().splitlines()[0]
    version = version.replace("This is ", "")
    workdir = tempfile.mkdtemp(prefix="km-golden-")
    procs = Procs(workdir)
    out = ["# keymux placement golden table: where %s put each key." % version,
           "# Generated by scripts/gen_placement_golden.py from real backends; do not edit.",
           "# Format: see that script's header."]
    rkeys, mkeys = make_keys(False), make_keys(True)
    try:
        for p in REDIS_PORTS:
            start_redis(procs, H, p)
        for p in MC_PORTS:
            start_memcached(procs, H, p)
        alt = [start_memcached(procs, h, 11211) for h in ALT_HOSTS]
        for c in configs_phase1():
            keys = rkeys if c["proto"] == "redis" else mkeys
            if c["probe"]:
                keys = keys + md5_probe_keys(c["probe"])
            emit(out, c, keys, run_config(procs, workdir, c, keys))
            print("ok", c["name"], file=sys.stderr)
        for p in alt:
            procs.stop(p)
        for h in ALT_HOSTS:
            start_redis(procs, h, 11211)
        for c in configs_phase2():
            emit(out, c, rkeys, run_config(procs, workdir, c, rkeys))
            print("ok", c["name"], file=sys.stderr)
    finally:
        procs.stop_all()
    shutil.rmtree(workdir, ignore_errors=True)   # kept for inspection when a run fails
    with open(args.out, "w") as f:
        f.write("\n".join(out) + "\n")
    print("wrote %s (%d lines)" % (os.path.normpath(args.out), len(out)), file=sys.stderr)


if __name__ == "__main__":
    main()
