#!/usr/bin/python3
"""bench/scale.py: keymux at 1, 2, 4, 8 workers and nutcracker, on the same backends:
throughput, proxy CPU per request and scaling efficiency (throughput at N workers over
N times the throughput at 1).

Usage (normally through `make bench-scale`):

    /usr/bin/python3 bench/scale.py --keymux build/keymux --loader build/bench/kmload

The proxy is pinned to CPUs of its own (as many as it has workers, at most half of the
machine; nutcracker gets one), the load generators and the 4 redis-servers to the
others, one kmload process per load CPU. On a 2-core machine that is one core each:
there the question is what sharing costs (CPU per request at 2 workers against 1), on
16 cores how far the throughput goes. SCALE_QUICK=1 runs a smaller count;
SCALE_WORKERS=1,2,4 picks the worker counts; SCALE_KEYMUX_ARGS adds keymux flags
(e.g. "--pace block"). Every process is stopped by its own PID,
every run is bounded in count and time; results go to bench/results/scale-latest.json.
Targets are printed as PASS / MISS, measured, never asserted.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import (CLK_TCK, Procs, port_free, proc_cpu_ticks, run_bounded,  # noqa: E402
                   wait_port)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REDIS_PORTS = [25201, 25202, 25203, 25204]
LISTEN_PORT = 25210
STATS_PORT = 25211
KEYSPACE = 10000

WORKLOADS = [
    dict(id="get32_p16", title="GET 32 B, depth 16", op="get", keys=1, conns=256, pipe=16,
         n=4000000),
    dict(id="set32_c1000", title="SET 32 B, depth 1, 1000 clients", op="set", keys=1,
         conns=1000, pipe=1, n=600000),
    dict(id="mget10", title="MGET 10 keys x 32 B", op="mget", keys=10, conns=256, pipe=1,
         n=400000),
]


def log(msg):
    sys.stderr.write("[scale %6.1fs] %s\n" % (time.monotonic() - T0, msg))
    sys.stderr.flush()


T0 = time.monotonic()


class Scale:
    def __init__(self, args):
        self.args = args
        self.quick = os.environ.get("SCALE_QUICK", "") not in ("", "0")
        self.cpus = sorted(os.sched_getaffinity(0))
        want = os.environ.get("SCALE_WORKERS", "1,2,4,8")
        self.workers = [int(x) for x in want.split(",") if x.strip()]
        self.procs = Procs()
        self.tmp = tempfile.mkdtemp(prefix="keymux-scale.")
        self.results = dict(
            date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            mode="quick" if self.quick else "full", workers=self.workers,
            machine=dict(cpus=len(self.cpus), kernel=platform.release(),
                         hostname=platform.node(), cpu_model=self.cpu_model()),
            runs=[], targets=[], problems=[])

    @staticmethod
    def cpu_model():
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return ""

    def problem(self, text):
        log("PROBLEM: " + text)
        self.results["problems"].append(text)

    def split(self, nproxy):
        """(proxy CPUs, load CPUs) for a proxy that may use nproxy cores."""
        if len(self.cpus) < 2:
            return None, None
        p = max(1, min(nproxy, len(self.cpus) // 2))
        return self.cpus[-p:], self.cpus[:-p]

    def start_backends(self):
        busy = [p for p in REDIS_PORTS + [LISTEN_PORT, STATS_PORT] if not port_free(p)]
        if busy:
            raise RuntimeError("ports in use: %s" % busy)
        _, load = self.split(max(self.workers))
        self.backends = []
        for i, p in enumerate(REDIS_PORTS):
            argv = ["redis-server", "--port", str(p), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", self.tmp, "--daemonize", "no",
                    "--logfile", os.path.join(self.tmp, "redis-%d.log" % p)]
            cpus = [load[i % len(load)]] if load else None
            self.backends.append(self.procs.start(argv, cpus, stdout=subprocess.DEVNULL,
                                                  stderr=subprocess.DEVNULL))
        for p, proc in zip(REDIS_PORTS, self.backends):
            if not wait_port(p, proc, 10.0):
                raise RuntimeError("redis-server on %d did not start" % p)
        for p in REDIS_PORTS:
            r = self.kmload(["--port", str(p), "--op", "set", "--seq", "--requests",
                             str(KEYSPACE), "--keyspace", str(KEYSPACE), "--conns", "1",
                             "--pipeline", "128", "--prefix", "k32:", "--vsize", "32"],
                            60, None)
            if r is None or r["ok"] != KEYSPACE:
                raise RuntimeError("preload of redis %d failed: %s" % (p, r))

    def kmload(self, args, timeout, cpus):
        argv = [self.args.loader, "--timeout", str(max(1, timeout - 5))] + args
        rc, out, err = run_bounded(argv, timeout, cpus)
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        if not lines:
            self.problem("kmload %s: no result (exit %s): %s" % (" ".join(args), rc,
                                                                 err.strip()[-300:]))
            return None
        return json.loads(lines[-1])

    def config(self):
        lines = ["bench:", "  listen: 127.0.0.1:%d" % LISTEN_PORT, "  redis: true",
                 "  hash: fnv1a_64", "  distribution: ketama", "  backlog: 4096",
                 "  server_connections: 1", "  servers:"]
        lines += ["    - 127.0.0.1:%d:1 s%d" % (p, i + 1) for i, p in enumerate(REDIS_PORTS)]
        path = os.path.join(self.tmp, "scale.yml")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def start_proxy(self, kind, workers, cpus):
        conf = self.config()
        logf = os.path.join(self.tmp, "%s-w%d.log" % (kind, workers))
        binary = self.args.keymux if kind == "keymux" else self.args.nutcracker
        argv = [binary, "-c", conf, "-s", str(STATS_PORT), "-a", "127.0.0.1", "-o", logf]
        if kind == "keymux":
            argv += ["-w", str(workers)] + os.environ.get("SCALE_KEYMUX_ARGS", "").split()
        p = self.procs.start(argv, cpus, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_port(LISTEN_PORT, p, 10.0):
            self.procs.stop(p)
            self.problem("%s -w %d did not start" % (kind, workers))
            return None
        return p

    def load(self, w, n, load_cpus):
        """Run workload w for n requests spread over one kmload per load CPU; returns
        (replies, seconds of the slowest loader, problems)."""
        nload = max(1, len(load_cpus) if load_cpus else 1)
        per_n = n // nload
        per_n -= per_n % w["pipe"]
        per_c = max(1, w["conns"] // nload)
        procs = []
        for i in range(nload):
            args = [self.args.loader, "--timeout", "170", "--port", str(LISTEN_PORT),
                    "--op", w["op"], "--keys", str(w["keys"]), "--conns", str(per_c),
                    "--pipeline", str(w["pipe"]), "--requests", str(per_n),
                    "--keyspace", str(KEYSPACE), "--prefix", "k32:", "--vsize", "32"]
            if w["op"] != "set":
                args.append("--check")
            if load_cpus:
                args = ["taskset", "-c", str(load_cpus[i])] + args
            procs.append(subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        replies, secs, bad = 0, 0.0, []
        for p in procs:
            try:
                out, err = p.communicate(timeout=180)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
                bad.append("a loader timed out")
            lines = [ln for ln in out.decode().splitlines() if ln.startswith("{")]
            if not lines:
                bad.append("a loader gave no result: %s" % err.decode()[-200:])
                continue
            r = json.loads(lines[-1])
            replies += r["replies"]
            secs = max(secs, r["seconds"])
            if r["errors"] or r["wrong"] or r["conn_errors"] or r["misses"] or r["timed_out"]:
                bad.append("errors %d wrong %d conn_errors %d misses %d timed_out %s" % (
                    r["errors"], r["wrong"], r["conn_errors"], r["misses"], r["timed_out"]))
        return replies, secs, bad

    def one(self, w, kind, workers):
        pc, lc = self.split(workers if kind == "keymux" else 1)
        n = w["n"] // (4 if self.quick else 1)
        p = self.start_proxy(kind, workers, pc)
        row = dict(workload=w["id"], kind=kind, workers=workers, proxy_cpus=pc, load_cpus=lc)
        if p is None:
            row["status"] = "unavailable"
            return row
        try:
            self.load(w, max(1000, n // 20), lc)   # warm: connections, buffers
            t0 = proc_cpu_ticks(p.pid)
            replies, secs, bad = self.load(w, n, lc)
            ticks = proc_cpu_ticks(p.pid) - t0
        finally:
            self.procs.stop(p)
        row.update(requests=replies, seconds=round(secs, 3),
                   rps=round(replies / secs) if secs > 0 else None,
                   cpu_us=round(ticks * 1e6 / CLK_TCK / replies, 3) if replies else None,
                   status="ok" if not bad and replies > 0 else "bad", problems=bad)
        for b in bad:
            self.problem("%s %s -w %d: %s" % (w["id"], kind, workers, b))
        log("%-12s %-10s w=%d: %s req/s, %s us CPU/req (proxy CPUs %s)" % (
            w["id"], kind, workers, row["rps"], row["cpu_us"], pc))
        return row

    def run(self):
        self.start_backends()
        for w in WORKLOADS:
            for kind, workers in [("nutcracker", 1)] + [("keymux", k) for k in self.workers]:
                self.results["runs"].append(self.one(w, kind, workers))

    def get(self, wid, kind, workers):
        for r in self.results["runs"]:
            if r["workload"] == wid and r["kind"] == kind and r["workers"] == workers \
                    and r.get("status") == "ok":
                return r
        return None

    def targets(self):
        out = []
        big = len(self.cpus) >= 16
        for w in WORKLOADS:
            one = self.get(w["id"], "keymux", 1)
            for k in self.workers:
                r = self.get(w["id"], "keymux", k)
                if r is None or one is None:
                    continue
                r["efficiency"] = round(r["rps"] / (k * one["rps"]), 3)
                r["cpu_vs_1"] = round(r["cpu_us"] / one["cpu_us"], 3) if one["cpu_us"] else None
                nut = self.get(w["id"], "nutcracker", 1)
                r["vs_nutcracker"] = round(r["rps"] / nut["rps"], 3) if nut else None
        if big:
            r8 = self.get("get32_p16", "keymux", 8)
            nut = self.get("get32_p16", "nutcracker", 1)
            if r8 and nut:
                v = r8["rps"] / nut["rps"]
                out.append(("GET 32 B depth 16 at 8 workers >= 4x nutcracker", v >= 4.0,
                            "%.2fx" % v))
            for w in WORKLOADS:
                for k in (2, 4):
                    r = self.get(w["id"], "keymux", k)
                    if r and "efficiency" in r:
                        out.append(("%s efficiency at %d workers >= 0.8" % (w["id"], k),
                                    r["efficiency"] >= 0.8, "%.2f" % r["efficiency"]))
        else:
            for w in WORKLOADS:
                r = self.get(w["id"], "keymux", 2)
                if r and r.get("cpu_vs_1") is not None:
                    out.append(("%s CPU per request at 2 workers <= 1.1x of 1" % w["id"],
                                r["cpu_vs_1"] <= 1.1, "%.2fx" % r["cpu_vs_1"]))
        self.results["targets"] = [dict(target=t, met=m, measured=v) for t, m, v in out]

    def table(self):
        lines = ["keymux scaling, %s run, %d CPUs (%s)" % (
            self.results["mode"], len(self.cpus), self.results["machine"]["cpu_model"]), ""]
        hdr = "%-12s %-10s %3s %12s %11s %6s %6s %7s" % (
            "workload", "proxy", "w", "req/s", "us CPU/req", "eff", "cpu/1", "vs nut")
        lines += [hdr, "-" * len(hdr)]
        for r in self.results["runs"]:
            if r.get("status") != "ok":
                lines.append("%-12s %-10s %3d  %s" % (r["workload"], r["kind"], r["workers"],
                                                     r.get("status")))
                continue

            def f(key, fmt):
                return fmt % r[key] if r.get(key) is not None else "-"
            lines.append("%-12s %-10s %3d %12s %11s %6s %6s %7s" % (
                r["workload"], r["kind"], r["workers"], f("rps", "%d"), f("cpu_us", "%.2f"),
                f("efficiency", "%.2f"), f("cpu_vs_1", "%.2f"), f("vs_nutcracker", "%.2fx")))
        lines.append("")
        for t in self.results["targets"]:
            lines.append("%-4s %s: %s" % ("PASS" if t["met"] else "MISS", t["target"],
                                          t["measured"]))
        for p in self.results["problems"]:
            lines.append("problem: %s" % p)
        return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keymux", default=os.path.join(ROOT, "build", "keymux"))
    ap.add_argument("--loader", default=os.path.join(ROOT, "build", "bench", "kmload"))
    ap.add_argument("--nutcracker", default=shutil.which("nutcracker") or "/usr/sbin/nutcracker")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "scale-latest.json"))
    args = ap.parse_args()
    for path in (args.keymux, args.loader, args.nutcracker):
        if not os.access(path, os.X_OK):
            sys.exit("scale: %s is not an executable" % path)
    s = Scale(args)
    rc = 0
    try:
        log("%s run on %d CPUs, workers %s, scratch %s" % (s.results["mode"], len(s.cpus),
                                                          s.workers, s.tmp))
        s.run()
    except (RuntimeError, KeyboardInterrupt) as exc:
        s.problem("aborted: %s" % exc)
        rc = 1
    finally:
        s.procs.stop_all()
    s.results["elapsed_s"] = round(time.monotonic() - T0, 1)
    s.targets()
    print(s.table())
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(s.results, f, indent=1)
        f.write("\n")
    print("\nresults: %s (%.0f s)" % (args.out, s.results["elapsed_s"]))
    if rc == 0:
        shutil.rmtree(s.tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
