"""Placement identical to twemproxy 0.5.0 for memcached pools, and nutcracker's configs
used unchanged: keys stored through nutcracker are found through keymux on the same
backends, and the other way round, each key on the same one server."""

import os

import pytest

from mcfix import mc4, mc4_alive, mc_env, mc_keymux_bin  # noqa: F401 (fixtures)
from mcfix import NUTCRACKER_BIN, PORTS, pool_yaml, server_line, uniq


def where(backends, keys):
    """For each key, the indices of the backends holding it (asked directly)."""
    conns = [b.raw() for b in backends]
    out = {}
    for k in keys:
        out[k] = [i for i, c in enumerate(conns)
                  if c.call(b"mg %s\r\n" % k, marker=b"\r\n").startswith(b"HD")]
    for c in conns:
        c.close()
    return out


def set_all(proxy, keys, tag):
    r = proxy.raw()
    r.send(b"".join(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(tag + k), tag + k) for k in keys))
    want = b"STORED\r\n" * len(keys)
    assert r.read(len(want), timeout=10) == want
    r.close()


def get_all(proxy, keys, tag):
    """Every key must come back through proxy with the value tag+key, in order."""
    r = proxy.raw()
    for i in range(0, len(keys), 50):
        chunk = keys[i:i + 50]
        want = b"".join(b"VALUE %s 0 %d\r\n%s\r\n" % (k, len(tag + k), tag + k) for k in chunk)
        want += b"END\r\n"
        assert r.call(b"get " + b" ".join(chunk) + b"\r\n", len(want)) == want
    r.close()


def check_same_placement(env, backends, conf_nut, conf_km, nut_port, km_port, keys,
                         same_file=False):
    if not os.access(NUTCRACKER_BIN, os.X_OK):
        pytest.fail("nutcracker (twemproxy 0.5.0) is needed at %s" % NUTCRACKER_BIN)
    nut = env.proxy(conf_nut, nut_port, nutcracker=True)
    set_all(nut, keys, b"N")
    placed = where(backends, keys)
    assert all(len(v) == 1 for v in placed.values())
    used = {v[0] for v in placed.values()}
    assert used == set(range(len(backends))), "keys should reach every server"
    if same_file:
        # the very file nutcracker read, listen address and all
        nut.stop()
        km = env.proxy(None, km_port, conf_path=nut.conf)
    else:
        km = env.proxy(conf_km, km_port)
    get_all(km, keys, b"N")
    # and back: what keymux stores lands where nutcracker put it
    set_all(km, keys, b"K")
    assert where(backends, keys) == placed
    if not same_file:
        get_all(nut, keys, b"K")


def test_placement_port_11211_and_config_unchanged(mc_env):
    # the ketama name of a server on port 11211 is its host alone
    hosts = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
    for h in hosts:
        if not _free(h, 11211):
            pytest.fail("%s:11211 is in use; this test needs it" % h)
    backends = [mc_env.memcached(h, 11211) for h in hosts]
    port = PORTS.get()
    conf = pool_yaml("gamma", port, [server_line(h, 11211) for h in hosts], preconnect="true")
    keys = [b"%d-%s" % (i, uniq("p11211")) for i in range(300)]
    check_same_placement(mc_env, backends, conf, None, port, port, keys, same_file=True)


def _free(host, port):
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


@pytest.mark.parametrize("opts,weights,names", [
    ({}, [1, 1, 1], None),
    ({"hash": "md5"}, [1, 2, 3], None),
    ({"hash": "murmur"}, [1, 1, 1], ["alpha", "beta", "gamma"]),
    ({"hash": "crc32a", "distribution": "modula"}, [2, 1, 1], None),
    ({"hash_tag": '"{}"'}, [1, 1, 1], None),
])
def test_placement_matches_nutcracker(mc_env, opts, weights, names):
    backends = [mc_env.memcached() for _ in range(3)]
    lines = [server_line(b.host, b.port, w, names[i] if names else None)
             for i, (b, w) in enumerate(zip(backends, weights))]
    nut_port, km_port = PORTS.get(), PORTS.get()
    conf_nut = pool_yaml("delta", nut_port, lines, **opts)
    conf_km = pool_yaml("delta", km_port, lines, **opts)
    if "hash_tag" in opts:
        keys = [b"{%d-group}-%s" % (i, uniq("tag")) for i in range(150)]
    else:
        keys = [b"%d-%s" % (i, uniq("pl")) for i in range(150)]
    check_same_placement(mc_env, backends, conf_nut, conf_km, nut_port, km_port, keys)
