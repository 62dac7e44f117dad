#!/usr/bin/python3
"""bench/reload_memory.py: what a long run of reloads leaves behind in keymux.

Usage (normally through `make bench-reload`):

    /usr/bin/python3 bench/reload_memory.py --keymux build/keymux [--reloads 1000]

One redis-server, one keymux whose file flips between two versions (a kept pool that
changes its servers and connection count, a second pool removed and another added),
SIGUSR1 after each flip, the next one only once INFO shows the last one taken. The
baseline is taken after a warm-up of 100 reloads and two seconds (two ticks of the main
thread, which frees old generations and hands their pages back); then --reloads more,
two seconds, and the figures again, in steps so that a trend shows. The target (issue:
"the fd count and RSS return to their baseline") is printed as PASS / MISS with the
measured figures, never asserted. Every process is stopped by its own PID; each wait is
bounded.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import helpers  # noqa: E402

RSS_SLACK_KIB = 1024    # "back to baseline": within one MiB


def conf(which, lport, bport, gport, rport, other):
    if which == "a":
        return ("alpha:\n  listen: 127.0.0.1:%d\n  redis: true\n  servers:\n   - 127.0.0.1:%d:1\n"
                "beta:\n  listen: 127.0.0.1:%d\n  redis: true\n  servers:\n   - 127.0.0.1:%d:1\n"
                % (lport, rport, bport, rport))
    return ("alpha:\n  listen: 127.0.0.1:%d\n  redis: true\n  server_connections: 2\n  servers:\n"
            "   - 127.0.0.1:%d:1\n   - 127.0.0.1:%d:1\n"
            "gamma:\n  listen: 127.0.0.1:%d\n  redis: true\n  servers:\n   - 127.0.0.1:%d:1\n"
            % (lport, rport, other, gport, rport))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keymux", required=True)
    ap.add_argument("--reloads", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=1)
    a = ap.parse_args()
    ports = helpers.PortAllocator()
    rport, lport, bport, gport, other, sport = (ports.get() for _ in range(6))
    work = tempfile.mkdtemp(prefix="km-reload-")
    path = os.path.join(work, "km.yml")

    def write(which):
        with open(path + ".new", "w") as f:
            f.write(conf(which, lport, bport, gport, rport, other))
        os.replace(path + ".new", path)

    redis = subprocess.Popen(["redis-server", "--port", str(rport), "--save", "",
                              "--appendonly", "no", "--dir", work], stdout=subprocess.DEVNULL)
    write("a")
    km = subprocess.Popen([a.keymux, "-c", path, "-s", str(sport), "-a", "127.0.0.1",
                           "-o", os.path.join(work, "km.log"), "-w", str(a.workers)])
    try:
        if not (helpers.wait_port(rport, 10) and helpers.wait_port(lport, 10, km)):
            sys.exit("bench-reload: keymux or redis-server did not start")
        c = helpers.RespConn(lport)
        done = 0

        def flip():
            nonlocal done
            write("b" if done % 2 == 0 else "a")
            os.kill(km.pid, signal.SIGUSR1)
            want = "reloads:%d\r\n" % (done + 1)
            deadline = time.monotonic() + 10
            while want not in c.call("INFO", "proxy").decode():
                if time.monotonic() > deadline:
                    sys.exit("bench-reload: reload %d not taken in 10 s" % (done + 1))
                time.sleep(0.002)
            done += 1

        for _ in range(100):
            flip()
        assert c.call("SET", "bench", "1") == b"OK"
        time.sleep(2.2)
        fds0, rss0 = len(os.listdir("/proc/%d/fd" % km.pid)), rss_kib(km.pid)
        print("baseline after %d reloads: %d fds, RSS %d KiB" % (done, fds0, rss0))
        step = max(1, a.reloads // 5)
        t0 = time.monotonic()
        left = a.reloads
        while left > 0:
            for _ in range(min(step, left)):
                flip()
            left -= min(step, left)
            time.sleep(2.2)
            print("after %5d more: %d fds, RSS %d KiB" % (
                done - 100, len(os.listdir("/proc/%d/fd" % km.pid)), rss_kib(km.pid)))
        secs = time.monotonic() - t0
        fds1, rss1 = len(os.listdir("/proc/%d/fd" % km.pid)), rss_kib(km.pid)
        assert c.call("GET", "bench") == b"1"
        print("%d reloads in %.1f s (%.2f ms each, waiting for each to be taken)"
              % (a.reloads, secs, 1000 * secs / a.reloads))
        print("fds: %d -> %d: %s" % (fds0, fds1, "PASS" if fds1 == fds0 else "MISS"))
        print("RSS: %d -> %d KiB (%+d): %s (target: within %d KiB)"
              % (rss0, rss1, rss1 - rss0, "PASS" if rss1 <= rss0 + RSS_SLACK_KIB else "MISS",
                 RSS_SLACK_KIB))
        c.close()
    finally:
        for p in (km, redis):
            p.send_signal(signal.SIGTERM)
        for p in (km, redis):
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
