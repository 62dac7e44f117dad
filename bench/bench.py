#!/usr/bin/python3
"""bench/bench.py: keymux against nutcracker 0.5.0, side by side, on the same backends,
config and -m: throughput, proxy CPU per request, peak RSS, latency and memory.

Usage (normally through `make bench`):

    /usr/bin/python3 bench/bench.py --keymux build/keymux --loader build/bench/kmload

Environment: BENCH_QUICK=1 for a short smoke run (~2 minutes); BENCH_PIN=0 to leave
the processes unpinned; BENCH_ONLY=a,b to run only the named sections
(throughput, fixed, memory, idle) or workload ids; BENCH_WORKERS=N runs keymux with
-w N (default 1).

Everything listens on 127.0.0.1, ports 25000-25999. Every process this script starts
is stopped by its own PID; every load run is bounded in count and in time. Results
are printed as a table and written to bench/results/latest.json. The targets are
printed as PASS / MISS (N/A when keymux could not run the workload): they are
measured, never tuned or asserted here.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")

PORT_LO, PORT_HI = 25000, 25999
REDIS_PORTS = [25001, 25002, 25003, 25004]
MC_PORTS = [25011, 25012]
STATS_PORT = {"keymux": 25990, "nutcracker": 25991}
LISTEN_BASE = {"keymux": 25100, "nutcracker": 25500}   # each proxy start takes the next
LISTEN_SPAN = 390

KINDS = ("keymux", "nutcracker")
KEYSPACE = 10000
BURST_CLIENTS = 10000
IDLE_CLIENTS = 10000
PACED_RATE = 5000

QUICK = dict(rounds=2, paced_s=2.0, paced_rounds=2, lat_s=2.0, lat_rounds=2, big_reps=5,
             mem_rounds=1, idle_rounds=1, budget_s=420, scale=0.25)
FULL = dict(rounds=4, paced_s=5.0, paced_rounds=4, lat_s=2.0, lat_rounds=6, big_reps=21,
            mem_rounds=1, idle_rounds=2, budget_s=1200, scale=1.0)


def v32(n):
    return "x" * n


# Workloads driven through both proxies, A B A B. n is the full-mode request count
# (quick mode scales it). cpu: target of keymux/nutcracker CPU per request;
# tput: target of keymux/nutcracker throughput.
WORKLOADS = [
    dict(id="get32_p1", title="GET 32 B, depth 1", tool="rb", clients=50, pipe=1, n=150000,
         cmd=["GET", "k32:__rand_int__"], cpu=0.7, tput=1.0),
    dict(id="get32_p16", title="GET 32 B, depth 16", tool="rb", clients=50, pipe=16, n=1200000,
         cmd=["GET", "k32:__rand_int__"], cpu=0.5, tput=1.5),
    dict(id="set32_p1", title="SET 32 B, depth 1", tool="rb", clients=50, pipe=1, n=150000,
         cmd=["SET", "k32:__rand_int__", v32(32)], cpu=0.7, tput=1.0),
    dict(id="set32_p16", title="SET 32 B, depth 16", tool="rb", clients=50, pipe=16, n=1000000,
         cmd=["SET", "k32:__rand_int__", v32(32)], cpu=0.5, tput=1.0),
    dict(id="get4k_p1", title="GET 4 KB, depth 1", tool="rb", clients=50, pipe=1, n=120000,
         cmd=["GET", "k4k:__rand_int__"], cpu=0.7, tput=1.0),
    dict(id="get4k_p16", title="GET 4 KB, depth 16", tool="rb", clients=50, pipe=16, n=400000,
         cmd=["GET", "k4k:__rand_int__"], cpu=0.5, tput=1.5),
    dict(id="set4k_p1", title="SET 4 KB, depth 1", tool="rb", clients=50, pipe=1, n=120000,
         cmd=["SET", "k4k:__rand_int__", v32(4096)], cpu=0.7, tput=1.0),
    dict(id="set4k_p16", title="SET 4 KB, depth 16", tool="rb", clients=50, pipe=16, n=300000,
         cmd=["SET", "k4k:__rand_int__", v32(4096)], cpu=0.5, tput=1.0),
    dict(id="mset10", title="MSET 10 keys x 32 B", tool="rb", clients=50, pipe=1, n=60000,
         cmd=["MSET"] + ["k32:__rand_int__", v32(32)] * 10, cpu=0.5, tput=1.0),
    dict(id="mget10", title="MGET 10 keys x 32 B", tool="rb", clients=50, pipe=1, n=60000,
         cmd=["MGET"] + ["k32:__rand_int__"] * 10, cpu=0.5, tput=1.0),
    dict(id="get32_c1000", title="GET 32 B, 1000 clients", tool="rb", clients=1000, pipe=1,
         n=150000, cmd=["GET", "k32:__rand_int__"], cpu=0.7, tput=1.0),
    dict(id="mc_get", title="memcached get 32 B", tool="kl", proto="mc", op="get", keys=1,
         clients=50, pipe=1, n=120000, cpu=0.7, tput=1.0),
    dict(id="mc_set", title="memcached set 32 B", tool="kl", proto="mc", op="set", keys=1,
         clients=50, pipe=1, n=120000, cpu=0.7, tput=1.0),
    dict(id="mc_get10", title="memcached get 10 keys", tool="kl", proto="mc", op="mget",
         keys=10, clients=50, pipe=1, n=60000, cpu=0.5, tput=1.0),
]


# ----------------------------------------------------------------------------- helpers


class Budget(Exception):
    pass


def log(msg):
    sys.stderr.write("[bench %6.1fs] %s\n" % (time.monotonic() - T0, msg))
    sys.stderr.flush()


T0 = time.monotonic()


def read_tail(path, n=2000):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - n))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def proc_cpu_ticks(pid):
    """utime + stime of every thread of pid, in clock ticks (/proc/PID/stat fields 14, 15)."""
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    rest = s[s.rindex(")") + 2:].split()
    return int(rest[11]) + int(rest[12])


def proc_sched_ns(pid):
    """Time on CPU of every thread of pid in ns (/proc/PID/task/*/schedstat, first field):
    a finer cross-check of the tick-based utime + stime."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def proc_status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def proc_nfds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def wait_port(port, proc, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(0.3)
        try:
            s.connect(("127.0.0.1", port))
            return True
        except OSError:
            time.sleep(0.02)
        finally:
            s.close()
    return False


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def cpulist(cpus):
    return ",".join(str(c) for c in cpus)


# ----------------------------------------------------------------------------- processes


class Procs:
    """Every process the benchmark starts; stop() and stop_all() signal only their PIDs."""

    def __init__(self):
        self.live = []

    def start(self, argv, cpus, **kw):
        if cpus:
            argv = ["taskset", "-c", cpulist(cpus)] + argv   # taskset execs: same PID
        p = subprocess.Popen(argv, **kw)
        self.live.append(p)
        return p

    def stop(self, p, timeout=5.0):
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                try:
                    p.wait(timeout)
                except subprocess.TimeoutExpired:
                    pass
            except ProcessLookupError:
                pass
        if p in self.live:
            self.live.remove(p)
        return p.returncode

    def stop_all(self):
        for p in list(reversed(self.live)):
            self.stop(p)


def run_bounded(argv, timeout, cpus=None, input_bytes=None):
    """Run argv to completion within timeout seconds (killed by PID past it).
    Returns (returncode or None on timeout, stdout text, stderr text)."""
    if cpus:
        argv = ["taskset", "-c", cpulist(cpus)] + argv
    p = subprocess.Popen(argv, stdin=subprocess.PIPE if input_bytes is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(input_bytes, timeout=timeout)
        return p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return None, out.decode("utf-8", "replace"), err.decode("utf-8", "replace") + "\n[timed out]"


# ----------------------------------------------------------------------------- the bench


class Proxy:
    """One keymux or nutcracker process with its own config file and log."""

    def __init__(self, bench, kind, proto, mbuf):
        self.bench = bench
        self.kind = kind
        self.proto = proto
        self.mbuf = mbuf
        self.port = bench.next_port(kind)
        self.proc = None
        self.error = None
        self.log = os.path.join(bench.tmp, "%s-%d.log" % (kind, self.port))
        self.conf = os.path.join(bench.tmp, "%s-%d.yml" % (kind, self.port))
        with open(self.conf, "w") as f:
            f.write(bench.config_text(proto, self.port))

    @property
    def pid(self):
        return self.proc.pid

    def start(self):
        binary = self.bench.binaries[self.kind]
        argv = [binary, "-c", self.conf, "-s", str(STATS_PORT[self.kind]), "-a", "127.0.0.1",
                "-m", str(self.mbuf), "-o", self.log]
        if self.kind == "keymux":
            argv += ["-w", os.environ.get("BENCH_WORKERS", "1")]
        self.proc = self.bench.procs.start(argv, self.bench.proxy_cpus,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_port(self.port, self.proc, 10.0):
            rc = self.proc.poll()
            self.bench.procs.stop(self.proc)
            tail = read_tail(self.log, 600).strip().splitlines()
            self.error = "%s refused to start (exit %s): %s" % (
                self.kind, rc, tail[-1] if tail else "no log")
            self.proc = None
            return False
        return True

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def cpu(self):
        return proc_cpu_ticks(self.pid)

    def sched_ns(self):
        return proc_sched_ns(self.pid)

    def rss_kb(self):
        return proc_status_kb(self.pid, "VmRSS")

    def hwm_kb(self):
        return proc_status_kb(self.pid, "VmHWM")

    def stop(self, what=""):
        if self.proc is not None:
            rc = self.bench.procs.stop(self.proc)
            if rc not in (0, -signal.SIGTERM):
                self.bench.problem("%s %s: exit status %s at stop" % (what, self.kind, rc))
            self.scan_log(what)

    def scan_log(self, what):
        """Report log lines that look like trouble (errors, failed accepts, asserts)."""
        words = ("error", "fail", "assert", "abort", "panic", "too many", "refused", "reset")
        bad = [ln.strip() for ln in read_tail(self.log, 1 << 20).splitlines()
               if any(w in ln.lower() for w in words)]
        if bad:
            self.bench.problem("%s: %s log has %d suspicious line(s), first: %s" % (
                what or "run", self.kind, len(bad), bad[0][:200]))

    def crash_note(self):
        return "%s (pid %d) exited with %s; log tail: %s" % (
            self.kind, self.proc.pid, self.proc.returncode, read_tail(self.log, 800).strip())


class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
        self.s = dict(QUICK if self.quick else FULL)
        only = os.environ.get("BENCH_ONLY", "")
        self.only = set(x.strip() for x in only.split(",") if x.strip())
        self.binaries = {"keymux": os.path.abspath(args.keymux), "nutcracker": args.nutcracker}
        self.loader = os.path.abspath(args.loader)
        self.procs = Procs()
        self.tmp = tempfile.mkdtemp(prefix="keymux-bench.")
        self.port_next = dict(LISTEN_BASE)
        self.problems = []
        self.deadline = time.monotonic() + self.s["budget_s"]
        cpus = sorted(os.sched_getaffinity(0))
        pin = os.environ.get("BENCH_PIN", "1") not in ("0", "")
        if pin and len(cpus) >= 2:
            self.proxy_cpus = [cpus[-1]]
            self.load_cpus = cpus[:-1]
        else:
            self.proxy_cpus = None
            self.load_cpus = None
        self.nofile = self.raise_nofile()
        self.burst_clients = min(BURST_CLIENTS, self.nofile - 200)
        self.idle_clients = min(IDLE_CLIENTS, self.nofile - 200)
        self.results = dict(
            date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            mode="quick" if self.quick else "full",
            machine=self.machine(),
            settings=dict(self.s, keyspace=KEYSPACE, paced_rate=PACED_RATE,
                          burst_clients=self.burst_clients, idle_clients=self.idle_clients,
                          nofile=self.nofile, proxy_cpus=self.proxy_cpus,
                          load_cpus=self.load_cpus, clk_tck=CLK_TCK),
            versions=self.versions(),
            workloads=[], fixed_rate=None, latency=None, big_mget=None,
            memory_burst=[], idle=[], targets=[], problems=self.problems)

    # -- environment

    @staticmethod
    def raise_nofile():
        """ulimit -n 65536 for us and for every child (proxies, loaders); as a plain
        user without a high enough hard limit, the hard limit."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 65536
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
        except (ValueError, OSError):
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
            except (ValueError, OSError):
                pass
        return resource.getrlimit(resource.RLIMIT_NOFILE)[0]

    @staticmethod
    def machine():
        model = ""
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        model = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        mem_kb = None
        try:
            with open("/proc/meminfo") as f:
                mem_kb = int(f.readline().split()[1])
        except (OSError, ValueError, IndexError):
            pass
        return dict(cpus=len(os.sched_getaffinity(0)), cpu_model=model, kernel=platform.release(),
                    mem_mb=mem_kb // 1024 if mem_kb else None, hostname=platform.node())

    def versions(self):
        out = {}
        for name, argv in (("keymux", [self.binaries["keymux"], "-V"]),
                           ("nutcracker", [self.binaries["nutcracker"], "-V"]),
                           ("redis-server", ["redis-server", "--version"]),
                           ("memcached", ["memcached", "-V"])):
            try:
                rc, o, e = run_bounded(argv, 5)
                out[name] = (o + e).strip().splitlines()[0] if (o + e).strip() else "?"
            except OSError as exc:
                out[name] = "unavailable: %s" % exc
        try:   # read-only: which source the keymux binary was built from
            rc, o, _ = run_bounded(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], 5)
            rc2, o2, _ = run_bounded(["git", "-C", ROOT, "status", "--porcelain", "--", "src"], 5)
            if rc == 0:
                out["keymux_git"] = o.strip() + (" + uncommitted changes in src/" if o2.strip() else "")
        except OSError:
            pass
        return out

    def wanted(self, *names):
        return not self.only or any(n in self.only for n in names)

    def check_time(self, what):
        if time.monotonic() > self.deadline:
            raise Budget("time budget of %ds spent before %s" % (self.s["budget_s"], what))

    def next_port(self, kind):
        for _ in range(LISTEN_SPAN):
            p = self.port_next[kind]
            self.port_next[kind] += 1
            if self.port_next[kind] >= LISTEN_BASE[kind] + LISTEN_SPAN:
                self.port_next[kind] = LISTEN_BASE[kind]
            if port_free(p):
                return p
        raise RuntimeError("no free listen port for %s" % kind)

    def problem(self, text):
        log("PROBLEM: " + text)
        if text not in self.problems:
            self.problems.append(text)

    def config_text(self, proto, port):
        """The pool both proxies run; only the listen port differs."""
        servers = REDIS_PORTS if proto == "redis" else MC_PORTS
        lines = ["bench:",
                 "  listen: 127.0.0.1:%d" % port,
                 "  redis: %s" % ("true" if proto == "redis" else "false"),
                 "  hash: fnv1a_64",
                 "  distribution: ketama",
                 "  backlog: 4096",
                 "  auto_eject_hosts: false",
                 "  server_connections: 1",
                 "  servers:"]
        for i, p in enumerate(servers):
            lines.append("    - 127.0.0.1:%d:1 s%d" % (p, i + 1))
        return "\n".join(lines) + "\n"

    # -- backends

    def start_backends(self):
        fixed = REDIS_PORTS + MC_PORTS + list(STATS_PORT.values())
        busy = [p for p in fixed if not port_free(p)]
        if busy:
            raise RuntimeError("ports in use: %s (the bench needs 25000-25999)" % busy)
        self.backends = []
        for p in REDIS_PORTS:
            argv = ["redis-server", "--port", str(p), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", self.tmp, "--daemonize", "no",
                    "--logfile", os.path.join(self.tmp, "redis-%d.log" % p)]
            self.backends.append(self.procs.start(argv, self.load_cpus,
                                                  stdout=subprocess.DEVNULL,
                                                  stderr=subprocess.DEVNULL))
        for p in MC_PORTS:
            argv = ["memcached", "-l", "127.0.0.1", "-p", str(p), "-U", "0", "-m", "256",
                    "-c", "4096", "-t", "1"]
            if os.geteuid() == 0:
                argv += ["-u", "root"]
            self.backends.append(self.procs.start(argv, self.load_cpus,
                                                  stdout=subprocess.DEVNULL,
                                                  stderr=subprocess.DEVNULL))
        for p, proc in zip(REDIS_PORTS + MC_PORTS, self.backends):
            if not wait_port(p, proc, 10.0):
                raise RuntimeError("backend on port %d did not start" % p)
        log("backends up: redis %s, memcached %s" % (REDIS_PORTS, MC_PORTS))

    def preload(self):
        """Every key the workloads read, written directly into every backend, so a key is
        found whichever server a proxy routes it to and a direct run finds it too."""
        for p in REDIS_PORTS:
            for prefix, vsize in (("k32:", 32), ("k4k:", 4096), ("k1k:", 1024)):
                r = self.kmload(["--port", str(p), "--op", "set", "--seq", "--requests",
                                 str(KEYSPACE), "--keyspace", str(KEYSPACE), "--conns", "1",
                                 "--pipeline", "128", "--prefix", prefix, "--vsize", str(vsize)], 60)
                if r is None or r["ok"] != KEYSPACE:
                    raise RuntimeError("preload of redis %d failed: %s" % (p, r))
        for p in MC_PORTS:
            r = self.kmload(["--proto", "mc", "--port", str(p), "--op", "set", "--seq",
                             "--requests", str(KEYSPACE), "--keyspace", str(KEYSPACE),
                             "--conns", "1", "--pipeline", "128", "--prefix", "k32:",
                             "--vsize", "32"], 60)
            if r is None or r["ok"] != KEYSPACE:
                raise RuntimeError("preload of memcached %d failed: %s" % (p, r))
        log("preloaded %d keys of 32 B, 1 KB and 4 KB into every backend" % KEYSPACE)

    # -- load tools

    def kmload(self, args, timeout, cpus="load"):
        cpus = self.load_cpus if cpus == "load" else cpus
        argv = [self.loader, "--timeout", str(max(1, timeout - 5))] + args
        rc, out, err = run_bounded(argv, timeout, cpus)
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        if not lines:
            self.problem("kmload %s: no result (exit %s): %s" % (" ".join(args), rc, err.strip()[-300:]))
            return None
        return json.loads(lines[-1])

    def redis_benchmark(self, port, w, n):
        argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", str(w["clients"]),
                "-n", str(n), "-P", str(w["pipe"]), "-r", str(KEYSPACE), "--csv"] + w["cmd"]
        rc, out, err = run_bounded(argv, 180, self.load_cpus)
        rps = None
        for line in out.splitlines():
            if line.startswith('"') and not line.startswith('"test"'):
                try:
                    rps = float(line.split('","')[1].strip('"'))
                except (IndexError, ValueError):
                    pass
        errors = [ln.strip() for ln in (out + "\n" + err).splitlines()
                  if ("rror" in ln or "timed out" in ln) and "CONFIG" not in ln]
        ok = rc == 0 and rps is not None and not errors
        return dict(rps=rps, ok=ok, rc=rc, errors=errors[:3])

    def tool_run(self, proxy_port, w, n):
        """One run of workload w against proxy_port: dict(rps, ok, errors)."""
        if w["tool"] == "rb":
            return self.redis_benchmark(proxy_port, w, n)
        args = ["--proto", w["proto"], "--port", str(proxy_port), "--op", w["op"],
                "--keys", str(w["keys"]), "--conns", str(w["clients"]), "--pipeline",
                str(w["pipe"]), "--requests", str(n), "--keyspace", str(KEYSPACE),
                "--prefix", "k32:", "--vsize", "32"]
        if w["op"] != "set":
            args.append("--check")
        r = self.kmload(args, 180)
        if r is None:
            return dict(rps=None, ok=False, rc=None, errors=["kmload gave no result"])
        bad = r["errors"] + r["wrong"] + r["conn_errors"] + r["misses"]
        errs = []
        if bad or r["timed_out"]:
            errs.append("errors %d wrong %d conn_errors %d misses %d timed_out %s: %s" % (
                r["errors"], r["wrong"], r["conn_errors"], r["misses"], r["timed_out"],
                r["first_error"]))
        return dict(rps=r["rps"] if r["replies"] == n else None, ok=not errs, rc=0, errors=errs)

    # -- sections

    def start_pair(self, proto, mbuf=16384):
        pair = {}
        for kind in KINDS:
            p = Proxy(self, kind, proto, mbuf)
            p.start()
            pair[kind] = p
        return pair

    def stop_pair(self, pair, what=""):
        for p in pair.values():
            p.stop(what)

    def throughput(self):
        for w in WORKLOADS:
            if not self.wanted("throughput", w["id"]):
                continue
            self.check_time(w["id"])
            self.results["workloads"].append(self.one_workload(w))

    def backend_cpu(self):
        """CPU ticks of all backends so far: what the servers spend on the proxy's requests."""
        return sum(proc_cpu_ticks(b.pid) for b in self.backends if b.poll() is None)

    def one_workload(self, w):
        n = max(2000, int(w["n"] * self.s["scale"]))
        n -= n % w["pipe"]
        proto = w.get("proto", "redis")
        pair = self.start_pair(proto)
        res = dict(id=w["id"], title=w["title"], requests=n, clients=w["clients"],
                   depth=w["pipe"], cpu_target=w["cpu"], tput_target=w["tput"])
        per = {k: dict(status="ok", rounds=[]) for k in KINDS}
        try:
            for kind, p in pair.items():
                if p.proc is None:
                    per[kind]["status"] = "unavailable"
                    per[kind]["reason"] = p.error
                    log("%s: %s unavailable: %s" % (w["id"], kind, p.error))
                    continue
                warm = self.tool_run(p.port, w, max(1000, (n // 10) - (n // 10) % w["pipe"]))
                if not warm["ok"]:
                    self.problem("%s warm-up through %s: %s" % (w["id"], kind, warm["errors"]))
            for rnd in range(self.s["rounds"]):
                for kind in KINDS:
                    p = pair[kind]
                    if per[kind]["status"] != "ok":
                        continue
                    c0 = p.cpu()
                    s0 = p.sched_ns()
                    b0 = self.backend_cpu()
                    t0 = time.monotonic()
                    r = self.tool_run(p.port, w, n)
                    wall = time.monotonic() - t0
                    if not p.alive():
                        per[kind]["status"] = "crashed"
                        per[kind]["reason"] = p.crash_note()
                        self.problem("%s round %d: %s" % (w["id"], rnd + 1, p.crash_note()))
                        continue
                    c1 = p.cpu()
                    s1 = p.sched_ns()
                    b1 = self.backend_cpu()
                    cpu_us = (c1 - c0) * 1e6 / CLK_TCK / n
                    if not r["ok"]:
                        self.problem("%s round %d through %s: rc %s, %s" % (
                            w["id"], rnd + 1, kind, r["rc"], "; ".join(r["errors"]) or "no result"))
                    per[kind]["rounds"].append(dict(rps=r["rps"], cpu_us_per_req=round(cpu_us, 3),
                                                    cpu_ticks=c1 - c0,
                                                    sched_us_per_req=round((s1 - s0) / 1e3 / n, 3),
                                                    backend_us_per_req=round(
                                                        (b1 - b0) * 1e6 / CLK_TCK / n, 3),
                                                    wall_s=round(wall, 3),
                                                    ok=r["ok"]))
                    log("%-12s round %d %-10s %10s req/s  %6.2f us CPU/req%s" % (
                        w["id"], rnd + 1, kind, "%.0f" % r["rps"] if r["rps"] else "-", cpu_us,
                        "" if r["ok"] else "  (errors)"))
            for kind in KINDS:
                p = pair[kind]
                d = per[kind]
                if d["status"] == "ok" or d["rounds"]:
                    d["rps"] = median([x["rps"] for x in d["rounds"]])
                    d["cpu_us_per_req"] = median([x["cpu_us_per_req"] for x in d["rounds"]])
                    d["sched_us_per_req"] = median([x["sched_us_per_req"] for x in d["rounds"]])
                    d["backend_us_per_req"] = median([x["backend_us_per_req"] for x in d["rounds"]])
                    if p.alive():
                        d["peak_rss_kb"] = p.hwm_kb()
        finally:
            self.stop_pair(pair, w["id"])
        res.update(per)
        res["ratio"] = dict(
            rps=ratio(per["keymux"].get("rps"), per["nutcracker"].get("rps")),
            cpu=ratio(per["keymux"].get("cpu_us_per_req"), per["nutcracker"].get("cpu_us_per_req")),
            rss=ratio(per["keymux"].get("peak_rss_kb"), per["nutcracker"].get("peak_rss_kb")))
        return res

    def paced_args(self, port, seconds):
        return ["--mode", "paced", "--port", str(port), "--rate", str(PACED_RATE), "--duration",
                str(seconds), "--conns", "4", "--op", "get", "--prefix", "k32:", "--vsize", "32",
                "--keyspace", str(KEYSPACE), "--check"]

    def fixed_rate(self):
        """CPU per request at a fixed 5k GET/s with both proxies loaded at the same time and
        pinned to the same CPUs; then added latency (proxy minus direct) at 5k GET/s, and
        the 10,000-key MGET. One pair of proxies serves all three."""
        self.check_time("fixed-rate tests")
        pair = self.start_pair("redis")
        try:
            for kind, p in pair.items():
                if p.proc is None:
                    self.problem("fixed-rate: %s" % p.error)
                    return
                self.kmload(["--port", str(p.port), "--op", "get", "--requests", "5000",
                             "--conns", "4", "--prefix", "k32:", "--vsize", "32"], 60)
            self.paced_cpu(pair)
            self.check_time("latency test")
            self.latency(pair)
            self.check_time("10,000-key MGET")
            self.big_mget(pair)
        finally:
            self.stop_pair(pair, "fixed-rate/latency/10k-MGET")

    def paced_cpu(self, pair):
        secs = self.s["paced_s"]
        rounds = []
        for rnd in range(self.s["paced_rounds"]):
            c0 = {k: pair[k].cpu() for k in KINDS}
            s0 = {k: pair[k].sched_ns() for k in KINDS}
            loaders = {}
            for k in KINDS:
                argv = [self.loader, "--timeout", str(secs + 20)] + self.paced_args(pair[k].port, secs)
                loaders[k] = self.procs.start(argv, self.load_cpus, stdout=subprocess.PIPE,
                                              stderr=subprocess.PIPE)
            outs = {}
            for k in KINDS:
                try:
                    o, e = loaders[k].communicate(timeout=secs + 30)
                except subprocess.TimeoutExpired:
                    self.procs.stop(loaders[k])
                    o, e = loaders[k].communicate()
                self.procs.stop(loaders[k])
                lines = [ln for ln in o.decode().splitlines() if ln.startswith("{")]
                outs[k] = json.loads(lines[-1]) if lines else None
            c1 = {k: pair[k].cpu() for k in KINDS}
            s1 = {k: pair[k].sched_ns() for k in KINDS}
            row = {}
            for k in KINDS:
                r = outs[k]
                if r is None or r["replies"] == 0:
                    self.problem("fixed-rate CPU round %d through %s: no result" % (rnd + 1, k))
                    continue
                if r["errors"] or r["wrong"] or r["misses"] or r["conn_errors"]:
                    self.problem("fixed-rate CPU round %d through %s: %s" % (rnd + 1, k, r["first_error"]))
                row[k] = dict(requests=r["replies"], cpu_ticks=c1[k] - c0[k],
                              cpu_us_per_req=round((c1[k] - c0[k]) * 1e6 / CLK_TCK / r["replies"], 3),
                              sched_us_per_req=round((s1[k] - s0[k]) / 1e3 / r["replies"], 3),
                              p50_us=r["p50_us"], p99_us=r["p99_us"])
            log("fixed-rate round %d: %s" % (rnd + 1, ", ".join(
                "%s %.2f us CPU/req" % (k, v["cpu_us_per_req"]) for k, v in row.items())))
            rounds.append(row)
        res = dict(rate=PACED_RATE, seconds=secs, rounds=rounds)
        for k in KINDS:
            res[k] = dict(cpu_us_per_req=median([r[k]["cpu_us_per_req"] for r in rounds if k in r]),
                          sched_us_per_req=median([r[k]["sched_us_per_req"] for r in rounds if k in r]))
        res["ratio"] = ratio(res["keymux"]["cpu_us_per_req"], res["nutcracker"]["cpu_us_per_req"])
        self.results["fixed_rate"] = res

    def latency(self, pair):
        secs = self.s["lat_s"]
        targets = [("direct", REDIS_PORTS[0])] + [(k, pair[k].port) for k in KINDS]
        rounds = []
        for rnd in range(self.s["lat_rounds"]):
            row = {}
            for name, port in targets:
                r = self.kmload(self.paced_args(port, secs), secs + 30)
                if r is None:
                    continue
                if r["errors"] or r["wrong"] or r["misses"] or r["conn_errors"]:
                    self.problem("latency round %d via %s: %s" % (rnd + 1, name, r["first_error"]))
                row[name] = dict(p50_us=r["p50_us"], p99_us=r["p99_us"], p999_us=r["p999_us"],
                                 replies=r["replies"])
            log("latency round %d: %s" % (rnd + 1, ", ".join(
                "%s p50 %.1f p99 %.1f us" % (k, v["p50_us"], v["p99_us"]) for k, v in row.items())))
            rounds.append(row)
        res = dict(rate=PACED_RATE, seconds=secs, rounds=rounds)
        for name, _ in targets:
            res[name] = dict(p50_us=rnd1(median([r[name]["p50_us"] for r in rounds if name in r])),
                             p99_us=rnd1(median([r[name]["p99_us"] for r in rounds if name in r])))
        for k in KINDS:
            for q in ("p50_us", "p99_us"):
                if res[k][q] is not None and res["direct"][q] is not None:
                    res[k]["added_" + q] = round(res[k][q] - res["direct"][q], 1)
        self.results["latency"] = res

    def big_mget(self, pair):
        reps = self.s["big_reps"]
        targets = [("direct", REDIS_PORTS[0])] + [(k, pair[k].port) for k in KINDS]
        args = ["--op", "mget", "--keys", str(KEYSPACE), "--keyspace", str(KEYSPACE), "--seq",
                "--conns", "1", "--pipeline", "1", "--prefix", "k32:", "--vsize", "32", "--check",
                "--lat-list"]
        times = {name: [] for name, _ in targets}
        for name, port in targets:   # one unmeasured request each
            self.kmload(["--port", str(port), "--requests", "1"] + args, 120)
        for rep in range(reps):   # direct, keymux, nutcracker, direct, ... so drift cancels
            for name, port in targets:
                r = self.kmload(["--port", str(port), "--requests", "1"] + args, 300)
                if r is None:
                    continue
                if r["errors"] or r["wrong"] or r["misses"] or r["conn_errors"] or r["replies"] != 1:
                    self.problem("10,000-key MGET via %s: %d of 1 replies, %s" % (
                        name, r["replies"], r["first_error"]))
                times[name] += r.get("lat_us", [])
        res = dict(keys=KEYSPACE, reps=reps)
        for name, _ in targets:
            res[name] = dict(median_us=median(times[name]), min_us=min(times[name]) if times[name] else None,
                             max_us=max(times[name]) if times[name] else None, n=len(times[name]))
        res["keymux_vs_direct"] = ratio(res["keymux"]["median_us"], res["direct"]["median_us"])
        res["nutcracker_vs_direct"] = ratio(res["nutcracker"]["median_us"], res["direct"]["median_us"])
        log("10,000-key MGET median: %s" % ", ".join(
            "%s %.0f us" % (n_, res[n_]["median_us"] or -1) for n_, _ in targets))
        self.results["big_mget"] = res

    def memory_burst(self):
        for mbuf in (16384, 512):
            for rnd in range(self.s["mem_rounds"]):
                row = dict(mbuf=mbuf, round=rnd + 1, clients=self.burst_clients)
                for kind in KINDS:
                    self.check_time("memory burst")
                    row[kind] = self.one_burst(kind, mbuf)
                k, n_ = row["keymux"], row["nutcracker"]
                row["peak_ratio"] = ratio(k.get("peak_kb"), n_.get("peak_kb"))
                self.results["memory_burst"].append(row)

    def one_burst(self, kind, mbuf):
        p = Proxy(self, kind, "redis", mbuf)
        if not p.start():
            self.problem("memory burst: %s" % p.error)
            return dict(status="unavailable", reason=p.error)
        try:
            self.kmload(["--port", str(p.port), "--op", "mget", "--keys", "10", "--requests", "10",
                         "--conns", "1", "--prefix", "k1k:", "--vsize", "1024"], 30)
            time.sleep(0.5)
            before = p.rss_kb()
            argv = [self.loader, "--timeout", "100", "--mode", "burst", "--port", str(p.port),
                    "--clients", str(self.burst_clients), "--op", "mget", "--keys", "10",
                    "--prefix", "k1k:", "--vsize", "1024", "--keyspace", str(KEYSPACE), "--check"]
            ld = self.procs.start(argv, self.load_cpus, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            sampled = before
            t_deadline = time.monotonic() + 110
            while ld.poll() is None and time.monotonic() < t_deadline:
                if p.alive():
                    sampled = max(sampled, p.rss_kb() or 0)
                time.sleep(0.01)
            if ld.poll() is None:
                self.procs.stop(ld)
            out, err = ld.communicate()
            self.procs.stop(ld)
            t_end = time.monotonic()
            if not p.alive():
                self.problem("memory burst -m %d: %s" % (mbuf, p.crash_note()))
                return dict(status="crashed", reason=p.crash_note())
            peak = p.hwm_kb()
            at_end = p.rss_kb()
            lines = [ln for ln in out.decode().splitlines() if ln.startswith("{")]
            r = json.loads(lines[-1]) if lines else None
            if r is None or r["errors"] or r["wrong"] or r["conn_errors"] or r["misses"] or \
                    r["replies"] != self.burst_clients:
                self.problem("memory burst -m %d through %s: %s" % (
                    mbuf, kind, r and ("%d/%d replies, errors %d wrong %d conn_errors %d: %s" % (
                        r["replies"], self.burst_clients, r["errors"], r["wrong"], r["conn_errors"],
                        r["first_error"])) or err.decode()[-300:]))
            series = []
            for i in range(1, 11):
                while time.monotonic() < t_end + i:
                    time.sleep(0.05)
                series.append(p.rss_kb())
            after = series[-1]
            growth = peak - before
            back = (peak - after) / growth * 100.0 if growth > 0 else None
            res = dict(status="ok", rss_before_kb=before, peak_kb=peak, sampled_peak_kb=sampled,
                       rss_at_end_kb=at_end, rss_10s_kb=after, given_back_pct=back,
                       rss_series_kb=series, burst_s=r["seconds"] if r else None,
                       replies=r["replies"] if r else None)
            log("burst -m %-5d %-10s before %6d KB peak %7d KB after 10 s %7d KB given back %s" % (
                mbuf, kind, before, peak, after, "%.0f%%" % back if back is not None else "-"))
            return res
        finally:
            p.stop("memory burst -m %d" % mbuf)

    def idle(self):
        for rnd in range(self.s["idle_rounds"]):
            row = dict(round=rnd + 1, clients=self.idle_clients)
            for kind in KINDS:
                self.check_time("idle clients")
                row[kind] = self.one_idle(kind)
            self.results["idle"].append(row)

    def one_idle(self, kind):
        p = Proxy(self, kind, "redis", 16384)
        if not p.start():
            self.problem("idle clients: %s" % p.error)
            return dict(status="unavailable", reason=p.error)
        ld = None
        try:
            self.kmload(["--port", str(p.port), "--op", "get", "--requests", "100", "--conns", "1",
                         "--prefix", "k32:", "--vsize", "32"], 30)
            time.sleep(0.5)
            before = p.rss_kb()
            fds0 = proc_nfds(p.pid)
            argv = [self.loader, "--timeout", "100", "--mode", "idle", "--port", str(p.port),
                    "--clients", str(self.idle_clients), "--duration", "60"]
            ld = self.procs.start(argv, self.load_cpus, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            ready = None
            deadline = time.monotonic() + 60
            buf = b""
            while time.monotonic() < deadline and ready is None and ld.poll() is None:
                rl, _, _ = select.select([ld.stdout], [], [], 0.2)
                if rl:
                    chunk = os.read(ld.stdout.fileno(), 4096)
                    if not chunk:
                        break
                    buf += chunk
                    if b"\n" in buf:
                        ready = json.loads(buf.split(b"\n")[0])
            if ready is None:
                self.problem("idle clients via %s: loader never reported ready" % kind)
                return dict(status="error")
            want = fds0 + ready["connected"]
            deadline = time.monotonic() + 30
            while proc_nfds(p.pid) < want and time.monotonic() < deadline and p.alive():
                time.sleep(0.1)
            time.sleep(1.0)
            if not p.alive():
                self.problem("idle clients: %s" % p.crash_note())
                return dict(status="crashed", reason=p.crash_note())
            fds = proc_nfds(p.pid)
            during = p.rss_kb()
            n = ready["connected"]
            per = (during - before) * 1024.0 / n if n else None
            if n != self.idle_clients or fds < want:
                self.problem("idle clients via %s: %d connected, proxy holds %d fds (want %d)" % (
                    kind, n, fds, want))
            log("idle %-10s %d clients: RSS %d -> %d KB = %.0f bytes/client" % (
                kind, n, before, during, per or -1))
            return dict(status="ok", connected=n, rss_before_kb=before, rss_idle_kb=during,
                        proxy_fds=fds, bytes_per_client=per)
        finally:
            if ld is not None:
                try:
                    ld.stdin.close()
                except OSError:
                    pass
                try:
                    ld.wait(30)
                except subprocess.TimeoutExpired:
                    pass
                self.procs.stop(ld)
            p.stop("idle clients")

    # -- targets and output

    def targets(self):
        t = []

        def add(name, measured, ok):
            t.append(dict(target=name, measured=measured,
                          status="N/A" if ok is None else ("PASS" if ok else "MISS")))

        for w in self.results["workloads"]:
            k, n = w["keymux"], w["nutcracker"]
            if k["status"] != "ok" or n["status"] != "ok":
                why = k.get("reason") if k["status"] != "ok" else n.get("reason")
                add("%s: CPU/req <= %.1fx nutcracker" % (w["title"], w["cpu_target"]),
                    "unavailable: %s" % why, None)
                add("%s: throughput >= %.1fx nutcracker" % (w["title"], w["tput_target"]),
                    "unavailable: %s" % why, None)
                continue
            rc, rr = w["ratio"]["cpu"], w["ratio"]["rps"]
            add("%s: CPU/req <= %.1fx nutcracker" % (w["title"], w["cpu_target"]),
                "%.2f vs %.2f us = %s" % (k["cpu_us_per_req"], n["cpu_us_per_req"], fx(rc)),
                rc is not None and rc <= w["cpu_target"])
            add("%s: throughput >= %.1fx nutcracker" % (w["title"], w["tput_target"]),
                "%s vs %s req/s = %s" % (fnum(k["rps"]), fnum(n["rps"]), fx(rr)),
                rr is not None and rr >= w["tput_target"])
        fr = self.results["fixed_rate"]
        if fr:
            add("GET at a fixed %d/s: CPU/req <= 0.7x nutcracker" % PACED_RATE,
                "%.2f vs %.2f us = %s" % (fr["keymux"]["cpu_us_per_req"] or 0,
                                          fr["nutcracker"]["cpu_us_per_req"] or 0, fx(fr["ratio"])),
                fr["ratio"] is not None and fr["ratio"] <= 0.7)
        lat = self.results["latency"]
        if lat:
            for q in ("p50_us", "p99_us"):
                a, b = lat["keymux"].get("added_" + q), lat["nutcracker"].get("added_" + q)
                add("added latency %s at %d GET/s <= nutcracker's" % (q[:3], PACED_RATE),
                    "%s vs %s us (direct %s us)" % (a, b, lat["direct"][q]),
                    a is not None and b is not None and a <= b)
        bm = self.results["big_mget"]
        if bm:
            r = bm["keymux_vs_direct"]
            add("10,000-key MGET over 4 servers <= 2x direct to one Redis",
                "%s vs %s us direct = %s (nutcracker %s us = %s)" % (
                    fnum(bm["keymux"]["median_us"]), fnum(bm["direct"]["median_us"]), fx(r),
                    fnum(bm["nutcracker"]["median_us"]), fx(bm["nutcracker_vs_direct"])),
                r is not None and r <= 2.0)
        for row in self.results["memory_burst"]:
            k, n = row["keymux"], row["nutcracker"]
            if k.get("status") != "ok" or n.get("status") != "ok":
                add("burst -m %d: peak RSS <= 0.5x nutcracker" % row["mbuf"], "unavailable", None)
                continue
            add("burst of %d clients, -m %d: peak RSS <= 0.5x nutcracker" % (row["clients"], row["mbuf"]),
                "%s vs %s KB = %s" % (k["peak_kb"], n["peak_kb"], fx(row["peak_ratio"])),
                row["peak_ratio"] is not None and row["peak_ratio"] <= 0.5)
            gb = k["given_back_pct"]
            add("burst -m %d: >= 90%% of the growth given back within 10 s" % row["mbuf"],
                "%s (peak %d KB, after 10 s %d KB, before %d KB; nutcracker %s)" % (
                    "%.0f%%" % gb if gb is not None else "-", k["peak_kb"], k["rss_10s_kb"],
                    k["rss_before_kb"],
                    "%.0f%%" % n["given_back_pct"] if n["given_back_pct"] is not None else "-"),
                gb is not None and gb >= 90.0)
        if self.results["idle"]:
            ks = [r["keymux"].get("bytes_per_client") for r in self.results["idle"]
                  if r["keymux"].get("status") == "ok"]
            ns = [r["nutcracker"].get("bytes_per_client") for r in self.results["idle"]
                  if r["nutcracker"].get("status") == "ok"]
            k, n = median(ks), median(ns)
            add("idle client <= 300 bytes", "%s bytes (nutcracker %s bytes)" % (
                fnum(k), fnum(n)), k is not None and k <= 300)
        self.results["targets"] = t

    def table(self):
        out = []
        mode = self.results["mode"]
        m = self.results["machine"]
        out.append("keymux vs nutcracker 0.5.0 (%s run, %s, %d CPUs, %s)" % (
            mode, self.results["date"], m["cpus"], m["cpu_model"]))
        out.append("proxies pinned to CPU %s, load and backends to %s; medians of %d rounds, "
                   "A B A B" % (self.proxy_cpus, self.load_cpus, self.s["rounds"]))
        out.append("")
        hdr = "%-26s %11s %11s %6s | %7s %7s %6s | %8s %8s %6s" % (
            "workload", "km req/s", "nc req/s", "ratio", "km us", "nc us", "ratio",
            "km RSS", "nc RSS", "ratio")
        out.append(hdr)
        out.append("%-26s %11s %11s %6s | %7s %7s %6s | %8s %8s %6s" % (
            "", "(median)", "", "", "CPU/req", "", "", "peak KB", "", ""))
        out.append("-" * len(hdr))
        for w in self.results["workloads"]:
            k, n = w["keymux"], w["nutcracker"]
            if k["status"] != "ok" and not k.get("rounds"):
                out.append("%-26s keymux %s: %s" % (w["title"], k["status"], k.get("reason", "")))
                if n.get("rps"):
                    out.append("%-26s %11s %11s %6s | %7s %7.2f %6s | %8s %8s %6s" % (
                        "", "-", fnum(n["rps"]), "-", "-", n["cpu_us_per_req"], "-", "-",
                        n.get("peak_rss_kb", "-"), "-"))
                continue
            out.append("%-26s %11s %11s %6s | %7s %7s %6s | %8s %8s %6s" % (
                w["title"], fnum(k.get("rps")), fnum(n.get("rps")), fx(w["ratio"]["rps"]),
                f2(k.get("cpu_us_per_req")), f2(n.get("cpu_us_per_req")), fx(w["ratio"]["cpu"]),
                k.get("peak_rss_kb", "-"), n.get("peak_rss_kb", "-"), fx(w["ratio"]["rss"])))
        fr = self.results["fixed_rate"]
        if fr:
            out.append("%-26s %11s %11s %6s | %7s %7s %6s |" % (
                "GET at fixed %d/s (both)" % PACED_RATE, "", "", "", f2(fr["keymux"]["cpu_us_per_req"]),
                f2(fr["nutcracker"]["cpu_us_per_req"]), fx(fr["ratio"])))
        out.append("")
        out.append("backends' CPU per request through each proxy (all redis-server and "
                   "memcached, us; medians):")
        for w in self.results["workloads"]:
            kb = w["keymux"].get("backend_us_per_req")
            nb = w["nutcracker"].get("backend_us_per_req")
            if kb is not None or nb is not None:
                out.append("  %-26s keymux %6s  nutcracker %6s  %s" % (
                    w["title"], f2(kb), f2(nb), fx(ratio(kb, nb))))
        lat = self.results["latency"]
        if lat:
            out.append("")
            out.append("GET latency at %d req/s (us): direct p50 %s p99 %s; keymux p50 %s p99 %s "
                       "(added %s / %s); nutcracker p50 %s p99 %s (added %s / %s)" % (
                           PACED_RATE, lat["direct"]["p50_us"], lat["direct"]["p99_us"],
                           lat["keymux"]["p50_us"], lat["keymux"]["p99_us"],
                           lat["keymux"].get("added_p50_us"), lat["keymux"].get("added_p99_us"),
                           lat["nutcracker"]["p50_us"], lat["nutcracker"]["p99_us"],
                           lat["nutcracker"].get("added_p50_us"), lat["nutcracker"].get("added_p99_us")))
        bm = self.results["big_mget"]
        if bm:
            out.append("10,000-key MGET (median of %d, us): direct %s, keymux %s (%s), nutcracker %s (%s)" % (
                bm["reps"], fnum(bm["direct"]["median_us"]), fnum(bm["keymux"]["median_us"]),
                fx(bm["keymux_vs_direct"]), fnum(bm["nutcracker"]["median_us"]),
                fx(bm["nutcracker_vs_direct"])))
        for row in self.results["memory_burst"]:
            parts = []
            for kind in KINDS:
                d = row[kind]
                if d.get("status") != "ok":
                    parts.append("%s %s" % (kind, d.get("status")))
                    continue
                parts.append("%s before %d peak %d after-10s %d KB (%s given back)" % (
                    kind, d["rss_before_kb"], d["peak_kb"], d["rss_10s_kb"],
                    "%.0f%%" % d["given_back_pct"] if d["given_back_pct"] is not None else "-"))
            out.append("burst %d clients x MGET 10 x 1 KB, -m %d: %s; peak ratio %s" % (
                row["clients"], row["mbuf"], "; ".join(parts), fx(row["peak_ratio"])))
        for row in self.results["idle"]:
            parts = []
            for kind in KINDS:
                d = row[kind]
                if d.get("status") != "ok":
                    parts.append("%s %s" % (kind, d.get("status")))
                    continue
                parts.append("%s %d -> %d KB = %.0f bytes/client" % (
                    kind, d["rss_before_kb"], d["rss_idle_kb"], d["bytes_per_client"]))
            out.append("%d idle clients: %s" % (row["clients"], "; ".join(parts)))
        out.append("")
        out.append("targets:")
        for t in self.results["targets"]:
            out.append("  %-4s %-62s %s" % (t["status"], t["target"], t["measured"]))
        if self.problems:
            out.append("")
            out.append("problems seen:")
            for p in self.problems:
                out.append("  - " + p)
        return "\n".join(out)

    def run(self):
        self.start_backends()
        self.preload()
        sections = [("throughput", self.throughput), ("fixed", self.fixed_rate),
                    ("memory", self.memory_burst), ("idle", self.idle)]
        for name, fn in sections:
            if name != "throughput" and not self.wanted(name):
                continue
            try:
                fn()
            except Budget as exc:
                self.problem(str(exc) + "; the rest was skipped")
                break


def rnd1(x):
    return None if x is None else round(x, 1)


def fnum(x):
    if x is None:
        return "-"
    return "%.0f" % x


def f2(x):
    return "-" if x is None else "%.2f" % x


def fx(x):
    return "-" if x is None else "%.2fx" % x


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keymux", default=os.path.join(ROOT, "build", "keymux"))
    ap.add_argument("--nutcracker", default="/usr/sbin/nutcracker")
    ap.add_argument("--loader", default=os.path.join(ROOT, "build", "bench", "kmload"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "latest.json"))
    args = ap.parse_args()
    for tool in ("redis-server", "redis-benchmark", "memcached", "taskset"):
        if shutil.which(tool) is None:
            sys.exit("bench: %s not found (run `make deps`)" % tool)
    for path in (args.keymux, args.nutcracker, args.loader):
        if not os.access(path, os.X_OK):
            sys.exit("bench: %s is not an executable" % path)

    bench = Bench(args)

    def on_signal(signum, frame):
        raise KeyboardInterrupt()

    signal.signal(signal.SIGTERM, on_signal)
    rc = 0
    try:
        log("%s run; proxies on CPUs %s, load on %s; RLIMIT_NOFILE %d; scratch %s" % (
            bench.results["mode"], bench.proxy_cpus, bench.load_cpus, bench.nofile, bench.tmp))
        bench.run()
    except KeyboardInterrupt:
        bench.problem("interrupted")
        rc = 130
    except RuntimeError as exc:
        bench.problem("aborted: %s" % exc)
        rc = 1
    finally:
        bench.procs.stop_all()
    bench.results["elapsed_s"] = round(time.monotonic() - T0, 1)
    bench.targets()
    text = bench.table()
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(bench.results, f, indent=1, sort_keys=False)
        f.write("\n")
    print("\nresults: %s (%.0f s)" % (args.out, bench.results["elapsed_s"]))
    if rc == 0:
        shutil.rmtree(bench.tmp, ignore_errors=True)
    else:
        print("scratch files kept in %s" % bench.tmp)
    return rc


if __name__ == "__main__":
    sys.exit(main())
