"""Signals are logged as nutcracker logs them ("signal N (NAME) received, what it does"),
and a fatal signal leaves a trace: one line naming it and a backtrace in the log, then
the process dies of that same signal (so a core dump is still made). Each case sends the
signal to a running keymux whose log is a file."""

import os
import resource
import signal
import subprocess
import time

import pytest

import helpers
from conftest import Daemon, pool_yaml
from helpers import PORTS, wait_for




def _started(tmp_path, redis_factory, daemons, verbosity="5", core_limit=None):
    r = redis_factory(1)[0]
    port = PORTS.get()
    d = Daemon(tmp_path, pool_yaml("alpha", port, [r]), ["-v", verbosity])
    daemons.append(d)
    if core_limit is None:
        d.start()
    else:
        # no core file from the crash cases: a limit of 0 keeps the default action
        # (terminate with a core dump) without writing one
        with open(d.out, "ab") as out:
            d.proc = subprocess.Popen(
                d.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=d.dir,
                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0)))
        d.pid = d.proc.pid
    assert helpers.wait_port(port, 5, d.proc), d.log_text()
    assert wait_for(lambda: "started" in helpers.read_tail(d.log), 5), d.log_text()
    return d, port


def _log_has(d, text, timeout=5):
    return wait_for(lambda: text in helpers.read_tail(d.log, 100000), timeout)


@pytest.mark.parametrize("sig,line", [
    (signal.SIGHUP, "signal 1 (SIGHUP) received, reopening log file"),
    (signal.SIGTTIN, "signal 21 (SIGTTIN) received, log level raised to 6"),
    (signal.SIGTTOU, "signal 22 (SIGTTOU) received, log level lowered to 4"),
], ids=["SIGHUP", "SIGTTIN", "SIGTTOU"])
def test_signal_logged(tmp_path, redis_factory, daemons, sig, line):
    d, port = _started(tmp_path, redis_factory, daemons)
    d.proc.send_signal(sig)
    assert _log_has(d, line), d.log_text()
    assert d.alive()
    with helpers.RespConn(port, timeout=5) as c:
        assert c.call("PING") == b"PONG"


@pytest.mark.parametrize("sig,name", [(signal.SIGINT, "SIGINT"), (signal.SIGTERM, "SIGTERM")])
def test_exit_signal_logged(tmp_path, redis_factory, daemons, sig, name):
    d, _ = _started(tmp_path, redis_factory, daemons)
    d.proc.send_signal(sig)
    assert d.proc.wait(5) == 0
    assert "signal %d (%s) received, exiting" % (sig, name) in helpers.read_tail(d.log), \
        d.log_text()


@pytest.mark.parametrize("sig,name", [
    (signal.SIGSEGV, "SIGSEGV"), (signal.SIGBUS, "SIGBUS"),
    (signal.SIGFPE, "SIGFPE"), (signal.SIGABRT, "SIGABRT"),
])
def test_fatal_signal_leaves_a_trace(tmp_path, redis_factory, daemons, sig, name):
    d, port = _started(tmp_path, redis_factory, daemons, core_limit=0)
    with helpers.RespConn(port, timeout=5) as c:   # some work first, so the loop is warm
        assert c.call("SET", "sig:k", "v") == b"OK"
    d.proc.send_signal(sig)
    try:
        rc = d.proc.wait(5)
    except subprocess.TimeoutExpired:
        pytest.fail("keymux did not die within 5 s of %s\n%s" % (name, d.log_text()))
    assert rc == -sig, "exit status %s, not death by %s\n%s" % (rc, name, d.log_text())
    log = helpers.read_tail(d.log, 100000)
    head = "signal %d (%s) received, core dumping" % (sig, name)
    assert head in log, log
    trace = log.split(head, 1)[1].splitlines()[1:]
    frames = [ln for ln in trace if "[0x" in ln]
    # backtrace_symbols_fd: "binary(symbol+off)[0xaddr]", one per frame, the handler
    # itself and the event loop among them
    assert len(frames) >= 3, "no backtrace after the line:\n%s" % "\n".join(trace[:20])
    assert any(os.path.basename(d.argv[0]) in ln for ln in frames), frames
