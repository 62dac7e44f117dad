"""The README's first command: `make run` (scripts/run.sh) starts redis-server and
memcached backends and keymux on conf/keymux.yml, both pools answer, and stopping it
stops every process it started."""
import os
import signal
import socket
import subprocess
import time

from helpers import RespConn, wait_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEYMUX_BIN = os.environ.get("KEYMUX_BIN", os.path.join(ROOT, "build", "keymux"))


def _pids_of(pattern):
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


def test_run_script_serves_both_pools_and_cleans_up(tmp_path):
    before = _pids_of("redis-server 127.0.0.1:638[01]") | _pids_of("memcached -l 127.0.0.1 -p 1121[23]")
    assert not before, "ports of the example config are taken by other processes: %s" % before
    log = open(tmp_path / "run.log", "w")
    proc = subprocess.Popen(["sh", "scripts/run.sh", KEYMUX_BIN], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert wait_port(22121, timeout=15, proc=proc), open(tmp_path / "run.log").read()
        assert wait_port(22122, timeout=15, proc=proc), open(tmp_path / "run.log").read()
        with RespConn(22121, timeout=5) as c:
            assert c.call("SET", "run-key", "v") == b"OK"
            assert c.call("GET", "run-key") == b"v"
        with socket.create_connection(("127.0.0.1", 22122), timeout=5) as s:
            s.sendall(b"set run-key 0 0 1\r\nx\r\nget run-key\r\n")
            buf = b""
            deadline = time.monotonic() + 5
            while not buf.endswith(b"END\r\n") and time.monotonic() < deadline:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
            assert buf == b"STORED\r\nVALUE run-key 0 1\r\nx\r\nEND\r\n", buf
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    deadline = time.monotonic() + 10
    left = None
    while time.monotonic() < deadline:
        left = _pids_of("redis-server 127.0.0.1:638[01]") | _pids_of("memcached -l 127.0.0.1 -p 1121[23]")
        if not left:
            break
        time.sleep(0.2)
    assert not left, "backends left running: %s" % left
