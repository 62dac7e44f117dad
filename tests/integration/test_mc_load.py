"""libmemcached's memcslap (text protocol) through keymux: many threads, pipelined
connections, every operation must succeed."""

import subprocess

from mcfix import mc4, mc4_alive, mc_env, mc_keymux_bin  # noqa: F401 (fixtures)


def curr_items(backends):
    total = []
    for b in backends:
        r = b.raw()
        stats = r.call(b"stats\r\n", marker=b"END\r\n")
        r.close()
        for line in stats.split(b"\r\n"):
            if line.startswith(b"STAT curr_items "):
                total.append(int(line.split()[2]))
    return total


def run_slap(port, *extra):
    argv = ["memcslap", "--servers=127.0.0.1:%d" % port, "--concurrency=10",
            "--execute-number=2000"] + list(extra)
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    return p.returncode, out


def test_memcslap_text_protocol(mc4_alive):
    before = curr_items(mc4_alive.backends)
    rc, out = run_slap(mc4_alive.port)
    assert rc == 0, out
    assert "error" not in out.lower() and "fail" not in out.lower(), out
    assert "Time to set" in out, out
    # the sets went through the proxy, over every server
    after = curr_items(mc4_alive.backends)
    assert all(a > b for a, b in zip(after, before)), (before, after)
    for test in ("get", "mget"):
        rc, out = run_slap(mc4_alive.port, "--test=" + test)
        assert rc == 0, out
        assert "error" not in out.lower() and "fail" not in out.lower(), out
    assert mc4_alive.proxy.alive()
