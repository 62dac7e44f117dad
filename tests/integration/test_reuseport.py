"""twemproxy's `reuseport` pool key: true sets SO_REUSEPORT on the pool's listener, so
another socket with the option may listen on the same address (and the kernel spreads
connections over both); false (the default) leaves it off, as before, with one worker
(several workers always set it, each listening with a socket of its own). `-t` accepts
the key and refuses a value that is not a boolean."""

import errno
import socket

import pytest

from conftest import KEYMUX_BIN, pool_yaml
from helpers import PORTS, nworkers, run_bounded


def _bind_beside(port):
    """Listen on 127.0.0.1:port with SO_REUSEPORT; 0 or the errno of the bind."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(("127.0.0.1", port))
        s.listen(1)
        return 0
    except OSError as e:
        return e.errno
    finally:
        s.close()


@pytest.mark.parametrize("value,shared", [("true", True), ("false", False), (None, False)],
                         ids=["true", "false", "default"])
def test_reuseport_listener(redis_factory, proxy_factory, value, shared):
    opts = {} if value is None else {"reuseport": value == "true"}
    p = proxy_factory(redis_factory(1), **opts)
    rc = _bind_beside(p.port)
    # several workers listen on the address with a socket each: SO_REUSEPORT whatever
    # the key says (documented)
    if shared or nworkers() > 1:
        assert rc == 0, "a second SO_REUSEPORT socket could not listen: %s" % errno.errorcode.get(rc)
    else:
        assert rc == errno.EADDRINUSE, "bind beside the listener: %s" % errno.errorcode.get(rc, rc)
    with p.client() as c:
        assert c.call("SET", "rp:k", "v") == b"OK"
        assert c.call("GET", "rp:k") == b"v"


def test_reuseport_test_conf(tmp_path):
    port = PORTS.get()
    good = tmp_path / "good.yml"
    good.write_text(pool_yaml("alpha", port, ["127.0.0.1:%d" % PORTS.get()], reuseport=True))
    r = run_bounded([KEYMUX_BIN, "-t", "-c", str(good)], 10)
    assert r.returncode == 0, r.stderr
    bad = tmp_path / "bad.yml"
    bad.write_text(pool_yaml("alpha", port, ["127.0.0.1:%d" % PORTS.get()], reuseport="maybe"))
    r = run_bounded([KEYMUX_BIN, "-t", "-c", str(bad)], 10)
    assert r.returncode == 1
    assert b"reuseport" in r.stderr and b"maybe" in r.stderr, r.stderr
