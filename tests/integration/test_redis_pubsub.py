"""Redis pub/sub through the proxy: SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE, PUNSUBSCRIBE, PING
in subscribed mode, and PUBLISH, over a pool of three real redis-servers.

A channel lives on the server its name maps to (as a key would), a pattern on every
server. The cases compare raw bytes and redis-py's pubsub() with the same calls made
directly to a redis-server of its own; check that a message published through any
client reaches every subscriber of its channel, on whichever server the channel lives,
once, and in the order published on its channel; that two clients never see each other's subscriptions; that a lost
server ends a subscription with an error the client sees; that a subscriber that does
not read is closed at client_output_limit; that past max_pinned_connections SUBSCRIBE
gets an error; and that a reload that keeps the servers keeps the subscriptions."""

import os
import signal
import socket
import threading

import pytest
import redis

from helpers import RespConn, encode, nworkers, wait_for

NSERVERS = 3


@pytest.fixture(scope="module")
def ps(module_redis_factory, module_proxy_factory):
    backends = module_redis_factory(NSERVERS)
    direct = module_redis_factory(1)[0]
    proxy = module_proxy_factory(backends, label="pubsub", timeout=2000)
    return proxy, backends, direct


def channel_server(backends, name):
    """The backend that holds the subscription of channel name (asked of every server)."""
    found = []
    for i, b in enumerate(backends):
        with b.client() as c:
            if c.call("PUBSUB", "NUMSUB", name)[1] > 0:
                found.append(i)
    return found


def channels_per_server(proxy, backends, n, prefix="ch"):
    """n channels for each backend: subscribe a probe client to candidates and see where
    each one lands."""
    want = {i: [] for i in range(len(backends))}
    with proxy.client() as c:
        i = 0
        while any(len(v) < n for v in want.values()):
            name = "%d:%s" % (i, prefix)   # (fnv1a of names alike at the end clusters)
            c.send("SUBSCRIBE", name)
            c.read()
            at = channel_server(backends, name)
            assert len(at) == 1, (name, at)
            if len(want[at[0]]) < n:
                want[at[0]].append(name)
            i += 1
            assert i < 500, {k: len(v) for k, v in want.items()}
    # the probe's connection is gone: its subscriptions with it
    assert wait_for(lambda: all(
        b.redis().pubsub_numsub(*sum(want.values(), []))[0][1] == 0 for b in backends), 5)
    return want


def session(port, cmds):
    """Raw bytes a server (or the proxy) sends back for cmds, read until the last reply."""
    with RespConn(port) as c:
        for cmd in cmds:
            c.send(*cmd)
        return b"".join(c.read_raw() for _ in cmds_replies(cmds))


def cmds_replies(cmds):
    """One entry per reply cmds get: SUBSCRIBE a b answers twice, UNSUBSCRIBE with no
    argument here once (the cases keep at most one channel for it)."""
    out = []
    for cmd in cmds:
        n = len(cmd) - 1 if cmd[0] in ("SUBSCRIBE", "PSUBSCRIBE", "UNSUBSCRIBE",
                                       "PUNSUBSCRIBE") else 1
        out += [cmd] * max(n, 1)
    return out


SUBSCRIBED_MODE = [
    ("SUBSCRIBE", "a", "b", "a"),
    ("GET", "x"),
    ("PING",),
    ("PING", "hi"),
    ("MULTI",),
    ("UNSUBSCRIBE", "zz"),
    ("PSUBSCRIBE", "p*", "q?"),
    ("PUNSUBSCRIBE", "q?"),
    ("UNSUBSCRIBE", "b"),
    ("UNSUBSCRIBE",),
    ("PUNSUBSCRIBE",),
    ("UNSUBSCRIBE",),
    ("PUNSUBSCRIBE", "never"),
    ("PING",),
    ("SUBSCRIBE",),
    ("PUBLISH", "a", "m"),
]


def test_subscribed_mode_bytes_equal_direct(ps):
    proxy, _, direct = ps
    theirs = session(direct.port, SUBSCRIBED_MODE)
    mine = session(proxy.port, SUBSCRIBED_MODE)
    assert mine == theirs
    assert b"Can't execute 'get'" in mine and b"pong" in mine


def test_publish_reaches_subscriber_on_every_server(ps):
    proxy, backends, _ = ps
    chans = channels_per_server(proxy, backends, 2)
    names = sum(chans.values(), [])
    sub = proxy.redis().pubsub()
    sub.subscribe(*names)
    for _ in names:
        m = sub.get_message(timeout=5)
        assert m["type"] == "subscribe"
    # each channel subscribed on the server it maps to, and only there
    for i, b in enumerate(backends):
        counts = dict(b.redis().pubsub_numsub(*names))
        for n in names:
            assert counts[n.encode()] == (1 if n in chans[i] else 0), (i, n)
    pub = proxy.redis()
    sent = []
    for k in range(5):
        for n in names:
            body = "%s #%d" % (n, k)
            assert pub.publish(n, body) == 1   # the one subscriber, counted by its server
            sent.append((n, body))
    got = []
    while len(got) < len(sent):
        m = sub.get_message(timeout=5)
        assert m is not None, "missing messages after %r" % got[-3:]
        got.append((m["channel"].decode(), m["data"].decode()))
    # every message, once, each channel's in the order published (channels on two
    # servers come over two connections: their order between them is not kept)
    assert sorted(got) == sorted(sent)
    for n in names:
        assert [g for g in got if g[0] == n] == [x for x in sent if x[0] == n]
    assert sub.get_message(timeout=0.2) is None
    # published straight to a channel's server, it reaches the subscriber too
    n = chans[1][0]
    assert backends[1].redis().publish(n, "direct") == 1
    m = sub.get_message(timeout=5)
    assert (m["channel"], m["data"]) == (n.encode(), b"direct")
    sub.close()


def test_pattern_gets_each_message_once(ps):
    proxy, backends, _ = ps
    sub = proxy.redis().pubsub()
    sub.psubscribe("news.*")
    assert sub.get_message(timeout=5)["type"] == "psubscribe"
    # the pattern is on every server
    assert wait_for(lambda: all(b.redis().pubsub_numpat() == 1 for b in backends), 5)
    pub = proxy.redis()
    names = ["news.%d" % i for i in range(40)]
    for n in names:
        assert pub.publish(n, n + "!") == 1
    assert pub.publish("weather.1", "x") == 0
    got = []
    while len(got) < len(names):
        m = sub.get_message(timeout=5)
        assert m is not None, got
        assert m["type"] == "pmessage" and m["pattern"] == b"news.*"
        got.append(m["channel"].decode())
    assert sorted(got) == sorted(names) and len(set(got)) == len(names)
    assert sub.get_message(timeout=0.3) is None
    sub.close()
    assert wait_for(lambda: all(b.redis().pubsub_numpat() == 0 for b in backends), 5)


def pubsub_trace(r, other):
    """What redis-py's pubsub() reports for one scripted run; other publishes."""
    p = r.pubsub()
    out = []

    def drain(n):
        for _ in range(n):
            m = p.get_message(timeout=5)
            assert m is not None, out
            out.append({k: m[k] for k in ("type", "pattern", "channel", "data")})

    p.subscribe("alpha", "beta")
    drain(2)
    p.psubscribe("al*")
    drain(1)
    other.publish("alpha", "1")
    drain(2)   # message and pmessage (one server: this order)
    other.publish("beta", "2")
    drain(1)
    p.unsubscribe("alpha")
    drain(1)
    other.publish("alpha", "3")   # only the pattern now
    drain(1)
    p.punsubscribe()
    drain(1)
    p.unsubscribe()
    drain(1)
    p.close()
    return out


def test_redis_py_pubsub_matches_direct(ps):
    proxy, backends, direct = ps
    theirs = pubsub_trace(direct.redis(), direct.redis())
    mine = pubsub_trace(proxy.redis(), proxy.redis())
    assert mine == theirs


def test_clients_never_see_each_others_subscriptions(ps):
    proxy, backends, _ = ps
    a, b = proxy.client(), proxy.client()
    a.send("SUBSCRIBE", "only-a")
    assert a.read() == [b"subscribe", b"only-a", 1]
    b.send("SUBSCRIBE", "only-b")
    assert b.read() == [b"subscribe", b"only-b", 1]
    with proxy.client() as p:
        assert p.call("PUBLISH", "only-a", "for a") == 1
        assert p.call("PUBLISH", "only-b", "for b") == 1
    assert a.read() == [b"message", b"only-a", b"for a"]
    assert b.read() == [b"message", b"only-b", b"for b"]
    # a leaves subscribed mode: it is an ordinary client again, and hears nothing more
    a.send("UNSUBSCRIBE")
    assert a.read() == [b"unsubscribe", b"only-a", 0]
    assert a.call("SET", "k-a", "v") == b"OK"
    assert a.call("PING") == b"PONG"
    with proxy.client() as p:
        assert p.call("PUBLISH", "only-a", "late") == 0
        assert p.call("PUBLISH", "only-b", "again") == 1
    assert b.read() == [b"message", b"only-b", b"again"]
    assert a.call("GET", "k-a") == b"v"   # no message came before this reply
    # a new client subscribes on a fresh connection: nothing of a's or b's reaches it
    with proxy.client() as c:
        c.send("SUBSCRIBE", "only-c")
        assert c.read() == [b"subscribe", b"only-c", 1]
        with proxy.client() as p:
            p.call("PUBLISH", "only-b", "not for c")
            p.call("PUBLISH", "only-c", "for c")
        assert c.read() == [b"message", b"only-c", b"for c"]
    assert b.read() == [b"message", b"only-b", b"not for c"]
    a.close()
    b.close()
    # the subscription connections went with their clients
    assert wait_for(lambda: all(x.redis().pubsub_numsub("only-a", "only-b", "only-c") ==
                                [(b"only-a", 0), (b"only-b", 0), (b"only-c", 0)]
                                for x in backends), 5)


def test_subscribe_inside_multi_refused(ps):
    proxy, _, _ = ps
    with proxy.client() as c:
        assert c.call("MULTI") == b"OK"
        err = c.call("SUBSCRIBE", "x")
        assert "SUBSCRIBE inside MULTI" in str(err)
        assert "EXECABORT" in str(c.call("EXEC"))
        assert c.call("PING") == b"PONG"   # not subscribed


def test_random_distribution_publish_meets_subscription(redis_factory, proxy_factory):
    backends = redis_factory(NSERVERS)
    proxy = proxy_factory(backends, distribution="random", label="random")
    sub = proxy.redis().pubsub()
    names = ["%d:r" % i for i in range(30)]
    sub.subscribe(*names)
    for _ in names:
        assert sub.get_message(timeout=5)["type"] == "subscribe"
    # the channels spread over the servers, each on exactly one
    where = [channel_server(backends, n) for n in names]
    assert all(len(w) == 1 for w in where)
    assert len({w[0] for w in where}) > 1
    pub = proxy.redis()
    for rnd in range(3):
        for n in names:
            assert pub.publish(n, "%d" % rnd) == 1
    got = [sub.get_message(timeout=5) for _ in range(3 * len(names))]
    # each channel's messages in the order published (messages of channels on two
    # servers come over two connections: their order between them is not kept)
    per_channel = {}
    for m in got:
        per_channel.setdefault(m["channel"].decode(), []).append(m["data"].decode())
    assert per_channel == {n: ["0", "1", "2"] for n in names}
    assert sub.get_message(timeout=0.2) is None   # nothing more, nothing twice
    sub.close()


def test_lost_server_ends_subscription_with_error(redis_factory, proxy_factory):
    backends = redis_factory(NSERVERS)
    proxy = proxy_factory(backends, label="lost")
    chans = channels_per_server(proxy, backends, 1)
    c = proxy.client()
    c.send("SUBSCRIBE", chans[0][0], chans[2][0])
    c.read()
    c.read()
    backends[2].kill()
    err = c.read()
    assert isinstance(err, Exception) or "ERR" in repr(err), err
    assert "subscriptions ended" in str(err) and backends[2].addr in str(err), err
    c.expect_closed()
    assert "subscriptions end" in open(proxy.log_path).read()
    # the other servers' side is gone too, and the proxy serves on
    assert wait_for(lambda: backends[0].redis().pubsub_numsub(chans[0][0])[0][1] == 0, 5)
    backends[2].restart()
    sub = proxy.redis().pubsub()
    sub.subscribe(chans[2][0])
    assert sub.get_message(timeout=5)["type"] == "subscribe"
    assert proxy.redis().publish(chans[2][0], "back") == 1
    assert sub.get_message(timeout=5)["data"] == b"back"
    sub.close()


def test_slow_subscriber_closed_at_output_limit(redis_factory, proxy_factory):
    backends = redis_factory(NSERVERS)
    proxy = proxy_factory(backends, label="slow", client_output_limit=256 * 1024)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", proxy.port))
    s.settimeout(10)
    s.sendall(encode("SUBSCRIBE", "firehose"))
    first = s.recv(100)
    assert first.startswith(b"*3\r\n$9\r\nsubscribe")
    body = "x" * 1024
    pub = proxy.redis()
    published = 0
    # the subscriber reads nothing; keymux must close it rather than hold it all
    for _ in range(4000):
        if pub.publish("firehose", body) == 0:
            break
        published += 1
    assert published < 4000, "the subscriber was never dropped"
    assert "client_output_limit" in open(proxy.log_path).read()
    # what it had been sent, then EOF: the connection is closed
    total = 0
    while True:
        try:
            chunk = s.recv(1 << 16)
        except ConnectionResetError:
            break
        if not chunk:
            break
        total += len(chunk)
    assert total < published * 1100
    s.close()
    assert pub.ping() is True


def test_subscribe_past_max_pinned_is_an_error(redis_factory, proxy_factory):
    backends = redis_factory(NSERVERS)
    proxy = proxy_factory(backends, label="limit", max_pinned_connections=2)
    with proxy.client() as c:
        # a pattern needs one connection per server: 3 > 2
        err = c.call("PSUBSCRIBE", "p*")
        assert "max_pinned_connections" in str(err), err
        assert c.call("PING") == b"PONG"   # still an ordinary client
        c.send("SUBSCRIBE", "one")
        assert c.read() == [b"subscribe", b"one", 1]
    with proxy.client() as c:
        assert c.call("PING") == b"PONG"


def test_reload_keeps_subscriptions_when_servers_stay(redis_factory, proxy_factory):
    backends = redis_factory(NSERVERS)
    proxy = proxy_factory(backends, label="reload")
    sub = proxy.redis().pubsub()
    sub.subscribe("stay")
    assert sub.get_message(timeout=5)["type"] == "subscribe"

    def reload(gen, text):
        with open(proxy.conf_path) as f:
            old = f.read()
        with open(proxy.conf_path, "w") as f:
            f.write(text(old))
        os.kill(proxy.proc.pid, signal.SIGUSR1)
        want = ["worker %d: configuration generation %d adopted" % (k, gen)
                for k in range(nworkers())]
        assert wait_for(lambda: all(w in open(proxy.log_path).read() for w in want), 10)

    # a reload that changes only the timeout: the subscription goes on
    reload(2, lambda t: t.replace("timeout: 5000", "timeout: 4000"))
    assert proxy.redis().publish("stay", "after") == 1
    m = sub.get_message(timeout=5)
    assert (m["channel"], m["data"]) == (b"stay", b"after")
    # a server added: channels may map elsewhere now, so the subscription ends, visibly
    extra = redis_factory(1)[0]
    reload(3, lambda t: t + "   - %s:1\n" % extra.addr)
    with pytest.raises((redis.ConnectionError, redis.ResponseError)):
        for _ in range(3):
            m = sub.get_message(timeout=5)
            if m is not None and isinstance(m.get("data"), Exception):
                raise m["data"]
    sub.close()
    sub = proxy.redis().pubsub()
    sub.subscribe("stay")
    assert sub.get_message(timeout=5)["type"] == "subscribe"
    assert proxy.redis().publish("stay", "again") == 1
    assert sub.get_message(timeout=5)["data"] == b"again"
    sub.close()


def test_many_subscribers_one_publisher(ps):
    proxy, backends, _ = ps
    subs = []
    for i in range(20):
        c = proxy.client()
        c.send("SUBSCRIBE", "fan", "own:%d" % i)
        assert c.read() == [b"subscribe", b"fan", 1]
        assert c.read() == [b"subscribe", b"own:%d" % i, 2]
        subs.append(c)
    errors = []

    def publish():
        try:
            with proxy.client() as p:
                for k in range(50):
                    assert p.call("PUBLISH", "fan", "m%d" % k) == 20
        except Exception as e:   # reported below
            errors.append(e)

    t = threading.Thread(target=publish)
    t.start()
    t.join(30)
    assert not t.is_alive() and not errors, errors
    for c in subs:
        for k in range(50):
            assert c.read() == [b"message", b"fan", b"m%d" % k]
        c.close()
