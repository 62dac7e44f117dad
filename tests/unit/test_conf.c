/* tests/unit/test_conf.c: the config loader against hand-written expectations and twemproxy 0.5.0's verdicts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/conf.h"
#include "core/common.h"
#include "route/hash.h"
#include "route/route.h"

#ifndef KM_TEST_DATA
#error "KM_TEST_DATA must name tests/data"
#endif

/*
 * Where the expectations come from: the defaults are twemproxy's documented
 * ones (compat.md: hash fnv1a_64, distribution ketama, timeout forever,
 * backlog 512, server_connections 1, server_retry_timeout 30000,
 * server_failure_limit 2, the rest off/0). Every config in the "valid" table
 * was run through `nutcracker -t` (0.5.0) and accepted, except the three whose
 * comment says nutcracker refuses them (brackets in listen, flow style, "---");
 * every config in the "invalid" table was rejected by it, except those marked
 * KEYMUX-ONLY, where nutcracker accepts a value that cannot work.
 * The ident column (ring name) follows twemproxy's conf_add_server: the name,
 * else host:port as written, host alone for port 11211, "/path:" for unix.
 */

/* ------------------------------------------------------------- dump helpers */

static const char *
hash_label(int h)
{
    static const char *const names[HASH_COUNT] = {
        [HASH_ONE_AT_A_TIME] = "one_at_a_time", [HASH_MD5] = "md5", [HASH_CRC16] = "crc16",
        [HASH_CRC32] = "crc32", [HASH_CRC32A] = "crc32a", [HASH_FNV1_64] = "fnv1_64",
        [HASH_FNV1A_64] = "fnv1a_64", [HASH_FNV1_32] = "fnv1_32", [HASH_FNV1A_32] = "fnv1a_32",
        [HASH_HSIEH] = "hsieh", [HASH_MURMUR] = "murmur", [HASH_JENKINS] = "jenkins",
    };
    return h >= 0 && h < HASH_COUNT ? names[h] : "?";
}

static const char *
dist_label(int d)
{
    switch (d) {
    case DIST_KETAMA: return "ketama";
    case DIST_MODULA: return "modula";
    case DIST_RANDOM: return "random";
    default: return "?";
    }
}

#define S(x) ((x) != NULL ? (x) : "-")

/* One line per pool and one per server, every field, in a fixed order. */
static void
dump_conf(const struct conf *c, char *buf, size_t size)
{
    size_t o = 0;
    uint32_t i, j;

    buf[0] = '\0';
    for (i = 0; i < c->npools && o < size; i++) {
        const struct conf_pool *p = &c->pools[i];
        char mode[16];

        if (p->listen.mode < 0) {
            snprintf(mode, sizeof(mode), "-1");
        } else {
            snprintf(mode, sizeof(mode), "0%o", (unsigned)p->listen.mode);
        }
        o += (size_t)snprintf(buf + o, size - o,
            "%s listen=%s host=%s port=%d path=%s mode=%s hash=%s dist=%s tag=%s "
            "timeout=%lld backlog=%d cc=%u redis=%d keepalive=%d auth=%s db=%d "
            "preconnect=%d eject=%d sconn=%u retry=%lld limit=%u\n",
            p->name, p->listen.text, S(p->listen.host), p->listen.port, S(p->listen.path), mode,
            hash_label(p->hash), dist_label(p->distribution), p->hash_tag,
            (long long)p->timeout, p->backlog, p->client_connections, p->redis,
            p->tcpkeepalive, S(p->redis_auth), p->redis_db, p->preconnect,
            p->auto_eject_hosts, p->server_connections,
            (long long)p->server_retry_timeout, p->server_failure_limit);
        for (j = 0; j < p->nservers && o < size; j++) {
            const struct conf_server *s = &p->servers[j];
            size_t ilen;
            const char *id = conf_server_ident(s, &ilen);

            o += (size_t)snprintf(buf + o, size - o,
                "  [%s] host=%s port=%d path=%s w=%u name=%s ident=%.*s\n",
                s->text, S(s->host), s->port, S(s->path), s->weight, S(s->name),
                (int)ilen, id);
        }
    }
}

#define DEFAULTS_TAIL "tag= timeout=-1 backlog=512 cc=0 redis=0 keepalive=0 auth=- db=0 " \
                      "preconnect=0 eject=0 sconn=1 retry=30000 limit=2\n"

/* --------------------------------------------------------------- valid cases */

#define H_SERVERS "  servers:\n    - h:1:1\n"

struct valid_case {
    const char *label;
    const char *yaml;
    const char *expect;   /* dump_conf output */
};

static const struct valid_case valid_cases[] = {
    { "defaults",
      "alpha:\n"
      "  listen: 127.0.0.1:22121\n"
      "  servers:\n"
      "    - 127.0.0.1:11211:1\n",
      "alpha listen=127.0.0.1:22121 host=127.0.0.1 port=22121 path=- mode=-1 hash=fnv1a_64 dist=ketama "
      DEFAULTS_TAIL
      "  [127.0.0.1:11211:1] host=127.0.0.1 port=11211 path=- w=1 name=- ident=127.0.0.1\n" },

    { "every key set",
      "alpha:\n"
      "  listen: 0.0.0.0:6000\n"
      "  hash: murmur\n"
      "  hash_tag: \"{}\"\n"
      "  distribution: random\n"
      "  timeout: 0\n"
      "  backlog: 1024\n"
      "  client_connections: 100\n"
      "  redis: true\n"
      "  tcpkeepalive: true\n"
      "  redis_auth: \"s3cret pass\"\n"
      "  redis_db: 15\n"
      "  preconnect: true\n"
      "  auto_eject_hosts: true\n"
      "  server_connections: 4\n"
      "  server_retry_timeout: 0\n"
      "  server_failure_limit: 0\n"
      "  servers:\n"
      "    - redis-1.local:6379:10 primary\n",
      "alpha listen=0.0.0.0:6000 host=0.0.0.0 port=6000 path=- mode=-1 hash=murmur dist=random tag={} "
      "timeout=0 backlog=1024 cc=100 redis=1 keepalive=1 auth=s3cret pass db=15 preconnect=1 eject=1 "
      "sconn=4 retry=0 limit=0\n"
      "  [redis-1.local:6379:10 primary] host=redis-1.local port=6379 path=- w=10 name=primary ident=primary\n" },

    { "seed example gintama",
      "gintama:\n"
      "  listen: 192.168.100.68:22124\n"
      "  hash: fnv1a_64\n"
      "  distribution: ketama\n"
      "  timeout: 100\n"
      "  redis: true\n"
      "  auto_eject_hosts: true\n"
      "  server_retry_timeout: 2000\n"
      "  server_failure_limit: 1\n"
      "  servers:\n"
      "    - 192.168.100.68:6379:1\n"
      "    - 192.168.100.68:6380:1\n"
      "    - 192.168.100.68:6381:1\n"
      "    - 192.168.100.69:6379:1\n"
      "    - 192.168.100.69:6380:1\n"
      "    - 192.168.100.69:6381:1\n",
      "gintama listen=192.168.100.68:22124 host=192.168.100.68 port=22124 path=- mode=-1 hash=fnv1a_64 "
      "dist=ketama tag= timeout=100 backlog=512 cc=0 redis=1 keepalive=0 auth=- db=0 preconnect=0 "
      "eject=1 sconn=1 retry=2000 limit=1\n"
      "  [192.168.100.68:6379:1] host=192.168.100.68 port=6379 path=- w=1 name=- ident=192.168.100.68:6379\n"
      "  [192.168.100.68:6380:1] host=192.168.100.68 port=6380 path=- w=1 name=- ident=192.168.100.68:6380\n"
      "  [192.168.100.68:6381:1] host=192.168.100.68 port=6381 path=- w=1 name=- ident=192.168.100.68:6381\n"
      "  [192.168.100.69:6379:1] host=192.168.100.69 port=6379 path=- w=1 name=- ident=192.168.100.69:6379\n"
      "  [192.168.100.69:6380:1] host=192.168.100.69 port=6380 path=- w=1 name=- ident=192.168.100.69:6380\n"
      "  [192.168.100.69:6381:1] host=192.168.100.69 port=6381 path=- w=1 name=- ident=192.168.100.69:6381\n" },

    { "unix listen with mode, unix servers",
      "alpha:\n"
      "  listen: /tmp/k.sock 0666\n"
      "  servers:\n"
      "    - /tmp/r1.sock:1\n"
      "    - /tmp/r2.sock:3 two\n"
      "beta:\n"
      "  listen: /tmp/k2.sock\n"
      "  servers:\n"
      "    - /tmp/r1.sock:1\n",
      "alpha listen=/tmp/k.sock 0666 host=- port=0 path=/tmp/k.sock mode=0666 hash=fnv1a_64 dist=ketama "
      DEFAULTS_TAIL
      "  [/tmp/r1.sock:1] host=- port=0 path=/tmp/r1.sock w=1 name=- ident=/tmp/r1.sock:\n"
      "  [/tmp/r2.sock:3 two] host=- port=0 path=/tmp/r2.sock w=3 name=two ident=two\n"
      "beta listen=/tmp/k2.sock host=- port=0 path=/tmp/k2.sock mode=-1 hash=fnv1a_64 dist=ketama "
      DEFAULTS_TAIL
      "  [/tmp/r1.sock:1] host=- port=0 path=/tmp/r1.sock w=1 name=- ident=/tmp/r1.sock:\n" },

    { "unix mode without leading zero, and 0",
      "alpha:\n"
      "  listen: /tmp/k.sock 600\n"
      "  servers:\n"
      "    - 127.0.0.1:6379:1\n"
      "beta:\n"
      "  listen: /tmp/k3.sock 0\n"
      "  servers:\n"
      "    - 127.0.0.1:6379:1\n",
      "alpha listen=/tmp/k.sock 600 host=- port=0 path=/tmp/k.sock mode=0600 hash=fnv1a_64 dist=ketama "
      DEFAULTS_TAIL
      "  [127.0.0.1:6379:1] host=127.0.0.1 port=6379 path=- w=1 name=- ident=127.0.0.1:6379\n"
      "beta listen=/tmp/k3.sock 0 host=- port=0 path=/tmp/k3.sock mode=00 hash=fnv1a_64 dist=ketama "
      DEFAULTS_TAIL
      "  [127.0.0.1:6379:1] host=127.0.0.1 port=6379 path=- w=1 name=- ident=127.0.0.1:6379\n" },

    /* nutcracker refuses "[::1]:22121" as listen (it resolves "[::1]");
     * keymux takes both forms, the bracket one being what compat.md promises. */
    { "IPv6 with and without brackets",
      "alpha:\n"
      "  listen: \"[::1]:22121\"\n"
      "  servers:\n"
      "    - \"::1:6379:1\"\n"
      "    - \"[fe80::1%lo]:6380:2\"\n"
      "beta:\n"
      "  listen: \"::1:22122\"\n"
      "  servers:\n"
      "    - \"[::1]:11211:1\"\n"
      "    - \"::ffff:127.0.0.1:11211:1 mapped\"\n",
      "alpha listen=[::1]:22121 host=::1 port=22121 path=- mode=-1 hash=fnv1a_64 dist=ketama "
      DEFAULTS_TAIL
      "  [::1:6379:1] host=::1 port=6379 path=- w=1 name=- ident=::1:6379\n"
      "  [[fe80::1%lo]:6380:2] host=fe80::1%lo port=6380 path=- w=2 name=- ident=[fe80::1%lo]:6380\n"
      "beta listen=::1:22122 host=::1 port=22122 path=- mode=-1 hash=fnv1a_64 dist=ketama "
      DEFAULTS_TAIL
      "  [[::1]:11211:1] host=::1 port=11211 path=- w=1 name=- ident=[::1]\n"
      "  [::ffff:127.0.0.1:11211:1 mapped] host=::ffff:127.0.0.1 port=11211 path=- w=1 name=mapped ident=mapped\n" },

    /* leading zeros are decimal, as nutcracker's atoi reads them; the ident
     * keeps the text as written, as twemproxy's does */
    { "leading zeros, quoted bool, range limits",
      "alpha:\n"
      "  listen: localhost:022121\n"
      "  redis: 'true'\n"
      "  preconnect: \"false\"\n"
      "  timeout: 2147483647\n"
      "  backlog: 0\n"
      "  redis_db: 0100\n"
      "  server_connections: 2147483647\n"
      "  servers:\n"
      "    - 127.0.0.1:06379:01\n"
      "    - 127.0.0.1:6380:2147483647\n",
      "alpha listen=localhost:022121 host=localhost port=22121 path=- mode=-1 hash=fnv1a_64 dist=ketama "
      "tag= timeout=2147483647 backlog=0 cc=0 redis=1 keepalive=0 auth=- db=100 preconnect=0 eject=0 "
      "sconn=2147483647 retry=30000 limit=2\n"
      "  [127.0.0.1:06379:01] host=127.0.0.1 port=6379 path=- w=1 name=- ident=127.0.0.1:06379\n"
      "  [127.0.0.1:6380:2147483647] host=127.0.0.1 port=6380 path=- w=2147483647 name=- ident=127.0.0.1:6380\n" },

    /* same address twice is fine when the names differ (nutcracker agrees);
     * a name may contain colons */
    { "named servers sharing an address",
      "alpha:\n"
      "  listen: 127.1:22121\n"
      "  servers:\n"
      "    - 127.0.0.1:6379:1 a\n"
      "    - 127.0.0.1:6379:1 b:c\n"
      "    - my_host:6379:1\n",
      "alpha listen=127.1:22121 host=127.1 port=22121 path=- mode=-1 hash=fnv1a_64 dist=ketama "
      DEFAULTS_TAIL
      "  [127.0.0.1:6379:1 a] host=127.0.0.1 port=6379 path=- w=1 name=a ident=a\n"
      "  [127.0.0.1:6379:1 b:c] host=127.0.0.1 port=6379 path=- w=1 name=b:c ident=b:c\n"
      "  [my_host:6379:1] host=my_host port=6379 path=- w=1 name=- ident=my_host:6379\n" },

    /* every hash and distribution name (twemproxy's spelling) */
    { "hash and distribution names",
      "p1:\n  listen: 127.0.0.1:1\n  hash: one_at_a_time\n  distribution: modula\n" H_SERVERS
      "p2:\n  listen: 127.0.0.1:2\n  hash: md5\n" H_SERVERS
      "p3:\n  listen: 127.0.0.1:3\n  hash: crc16\n" H_SERVERS
      "p4:\n  listen: 127.0.0.1:4\n  hash: crc32\n" H_SERVERS
      "p5:\n  listen: 127.0.0.1:5\n  hash: crc32a\n" H_SERVERS
      "p6:\n  listen: 127.0.0.1:6\n  hash: fnv1_64\n" H_SERVERS
      "p7:\n  listen: 127.0.0.1:7\n  hash: fnv1_32\n" H_SERVERS
      "p8:\n  listen: 127.0.0.1:8\n  hash: fnv1a_32\n" H_SERVERS
      "p9:\n  listen: 127.0.0.1:9\n  hash: hsieh\n" H_SERVERS
      "pa:\n  listen: 127.0.0.1:10\n  hash: jenkins\n  distribution: ketama\n" H_SERVERS,
      "p1 listen=127.0.0.1:1 host=127.0.0.1 port=1 path=- mode=-1 hash=one_at_a_time dist=modula " DEFAULTS_TAIL
      "  [h:1:1] host=h port=1 path=- w=1 name=- ident=h:1\n"
      "p2 listen=127.0.0.1:2 host=127.0.0.1 port=2 path=- mode=-1 hash=md5 dist=ketama " DEFAULTS_TAIL
      "  [h:1:1] host=h port=1 path=- w=1 name=- ident=h:1\n"
      "p3 listen=127.0.0.1:3 host=127.0.0.1 port=3 path=- mode=-1 hash=crc16 dist=ketama " DEFAULTS_TAIL
      "  [h:1:1] host=h port=1 path=- w=1 name=- ident=h:1\n"
      "p4 listen=127.0.0.1:4 host=127.0.0.1 port=4 path=- mode=-1 hash=crc32 dist=ketama " DEFAULTS_TAIL
      "  [h:1:1] host=h port=1 path=- w=1 name=- ident=h:1\n"
      "p5 listen=127.0.0.1:5 host=127.0.0.1 port=5 path=- mode=-1 hash=crc32a dist=ketama " DEFAULTS_TAIL
      "  [h:1:1] host=h port=1 path=- w=1 name=- ident=h:1\n"
      "p6 listen=127.0.0.1:6 host=127.0.0.1 port=6 path=- mode=-1 hash=fnv1_64 dist=ketama " DEFAULTS_TAIL
      "  [h:1:1] host=h port=1 path=- w=1 name=- ident=h:1\n"
      "p7 listen=127.0.0.1:7 host=127.0.0.1 port=7 path=- mode=-1 hash=fnv1_32 dist=ketama " DEFAULTS_TAIL
      "  [h:1:1] host=h port=1 path=- w=1 name=- ident=h:1\n"
      "p8 listen=127.0.0.1:8 host=127.0.0.1 port=8 path=- mode=-1 hash=fnv1a_32 dist=ketama " DEFAULTS_TAIL
      "  [h:1:1] host=h port=1 path=- w=1 name=- ident=h:1\n"
      "p9 listen=127.0.0.1:9 host=127.0.0.1 port=9 path=- mode=-1 hash=hsieh dist=ketama " DEFAULTS_TAIL
      "  [h:1:1] host=h port=1 path=- w=1 name=- ident=h:1\n"
      "pa listen=127.0.0.1:10 host=127.0.0.1 port=10 path=- mode=-1 hash=jenkins dist=ketama " DEFAULTS_TAIL
      "  [h:1:1] host=h port=1 path=- w=1 name=- ident=h:1\n" },

    /* CRLF line ends, a BOM, comments, "---" and "..." markers (nutcracker
     * refuses the markers; keymux reads any block or flow YAML of this shape) */
    { "CRLF, BOM, comments, document markers",
      "\xef\xbb\xbf# comment\r\n---\r\nalpha:   # pool\r\n  listen: 127.0.0.1:22121\r\n"
      "  hash_tag: \"\xc3\xa9\"\r\n  servers:\r\n\r\n    - 127.0.0.1:6380:1  # first\r\n...\r\n",
      "alpha listen=127.0.0.1:22121 host=127.0.0.1 port=22121 path=- mode=-1 hash=fnv1a_64 dist=ketama "
      "tag=\xc3\xa9 timeout=-1 backlog=512 cc=0 redis=0 keepalive=0 auth=- db=0 preconnect=0 eject=0 "
      "sconn=1 retry=30000 limit=2\n"
      "  [127.0.0.1:6380:1] host=127.0.0.1 port=6380 path=- w=1 name=- ident=127.0.0.1:6380\n" },

    /* flow style (nutcracker refuses it; it means the same as block style) */
    { "flow style",
      "alpha: {listen: 127.0.0.1:22121, redis: true, servers: [127.0.0.1:6380:1, '/tmp/r.sock:2 r']}\n",
      "alpha listen=127.0.0.1:22121 host=127.0.0.1 port=22121 path=- mode=-1 hash=fnv1a_64 dist=ketama "
      "tag= timeout=-1 backlog=512 cc=0 redis=1 keepalive=0 auth=- db=0 preconnect=0 eject=0 "
      "sconn=1 retry=30000 limit=2\n"
      "  [127.0.0.1:6380:1] host=127.0.0.1 port=6380 path=- w=1 name=- ident=127.0.0.1:6380\n"
      "  [/tmp/r.sock:2 r] host=- port=0 path=/tmp/r.sock w=2 name=r ident=r\n" },

    /* same port on another address, and a hostname: not a clash at config time */
    { "listen on one port, different addresses",
      "a:\n  listen: 127.0.0.1:22121\n" H_SERVERS
      "b:\n  listen: 127.0.0.2:22121\n" H_SERVERS
      "c:\n  listen: localhost:22121\n" H_SERVERS,
      "a listen=127.0.0.1:22121 host=127.0.0.1 port=22121 path=- mode=-1 hash=fnv1a_64 dist=ketama " DEFAULTS_TAIL
      "  [h:1:1] host=h port=1 path=- w=1 name=- ident=h:1\n"
      "b listen=127.0.0.2:22121 host=127.0.0.2 port=22121 path=- mode=-1 hash=fnv1a_64 dist=ketama " DEFAULTS_TAIL
      "  [h:1:1] host=h port=1 path=- w=1 name=- ident=h:1\n"
      "c listen=localhost:22121 host=localhost port=22121 path=- mode=-1 hash=fnv1a_64 dist=ketama " DEFAULTS_TAIL
      "  [h:1:1] host=h port=1 path=- w=1 name=- ident=h:1\n" },
};

static void
test_valid(void **state)
{
    static char got[16384];
    size_t i;

    for (i = 0; i < KM_ARRAY_LEN(valid_cases); i++) {
        const struct valid_case *vc = &valid_cases[i];
        struct conf c;
        char err[512];
        int rc;

        print_message("valid: %s\n", vc->label);
        rc = conf_load_string(vc->yaml, strlen(vc->yaml), &c, err, sizeof(err));
        if (rc != KM_OK) {
            print_error("unexpected error: %s\n", err);
        }
        assert_int_equal(rc, KM_OK);
        dump_conf(&c, got, sizeof(got));
        assert_string_equal(got, vc->expect);
        conf_free(&c);
        assert_null(c.pools);
        assert_int_equal(c.npools, 0);
        conf_free(&c); /* twice is harmless */
    }
}

/* ------------------------------------------------------------- invalid cases */

struct invalid_case {
    const char *label;
    const char *yaml;
    const char *want[4];  /* substrings the message must contain */
};

#define POOL(body) "alpha:\n  listen: 127.0.0.1:22121\n" body
#define SRV "  servers:\n    - 127.0.0.1:6380:1\n"
#define LISTEN(v) "alpha:\n  listen: " v "\n" SRV
#define SERVER(v) POOL("  redis: true\n  servers:\n    - " v "\n")

static const struct invalid_case invalid_cases[] = {
    /* YAML and structure */
    { "empty text", "", { "no pools" } },
    { "only a comment", "# nothing\n", { "no pools" } },
    { "bad YAML: unterminated quote", "alpha:\n  listen: \"127.0.0.1:22121\n",
      { "invalid YAML", "line 3", "column 1" } },
    { "bad YAML: indentation", "alpha:\n  listen: 127.0.0.1:22121\n  servers:\n   - a:1:1\n  - b:1:1\n",
      { "invalid YAML", "line 5", "column 3" } },
    { "bad YAML: tab indent", "alpha:\n  listen: 127.0.0.1:22121\n\tservers:\n",
      { "invalid YAML", "line 3" } },
    { "bad UTF-8", "alpha:\n  listen: 127.0.0.1:22121\n  servers: [\"\xff\xfe:1:1\"]\n",
      { "invalid YAML" } },
    { "root is a list", "- a\n- b\n", { "top level", "a list" } },
    { "root is a scalar", "foo\n", { "top level", "'foo'" } },
    { "pool is a scalar", "alpha: foo\n", { "pool 'alpha'", "mapping", "'foo'" } },
    { "pool is empty", "alpha:\n", { "pool 'alpha'", "mapping", "nothing" } },
    { "empty pool name", "\"\":\n  listen: 127.0.0.1:22121\n" SRV, { "empty pool name" } },
    { "pool twice", LISTEN("127.0.0.1:22121") "alpha:\n  listen: 127.0.0.1:22122\n" SRV,
      { "pool 'alpha'", "twice", "line 5" } },
    { "two documents", LISTEN("127.0.0.1:22121") "---\nbeta:\n  listen: 127.0.0.1:22122\n" SRV,
      { "more than one YAML document" } },
    { "alias", "alpha:\n  listen: &l 127.0.0.1:22121\n  servers: [*l]\n", { "pool 'alpha'", "alias" } },
    { "unknown key", POOL("  foo: bar\n" SRV), { "pool 'alpha'", "unknown key 'foo'" } },
    { "key case matters", POOL("  Hash: md5\n" SRV), { "pool 'alpha'", "unknown key 'Hash'" } },
    { "list for a scalar", POOL("  hash:\n    - md5\n" SRV), { "pool 'alpha'", "key 'hash'", "a list" } },
    { "mapping for a scalar", POOL("  timeout: {a: 1}\n" SRV), { "pool 'alpha'", "key 'timeout'", "a mapping" } },
    { "scalar for servers", POOL("  servers: 127.0.0.1:6380:1\n"),
      { "pool 'alpha'", "key 'servers'", "expected a list", "'127.0.0.1:6380:1'" } },
    { "null servers", POOL("  servers:\n"), { "pool 'alpha'", "key 'servers'", "nothing" } },
    { "empty server list", POOL("  servers: []\n"), { "pool 'alpha'", "key 'servers'", "empty list" } },
    { "nested list in servers", POOL("  servers:\n    - - 127.0.0.1:6380:1\n"),
      { "pool 'alpha'", "key 'servers'", "a list" } },
    { "mapping in servers", POOL("  servers:\n    - {a: b}\n"),
      { "pool 'alpha'", "key 'servers'", "a mapping" } },
    { "mapping as a key", POOL("  ? [a]\n  : b\n" SRV), { "pool 'alpha'", "expected a key", "a list" } },

    /* keys given twice */
    { "hash twice", POOL("  hash: md5\n  hash: crc32\n" SRV), { "pool 'alpha'", "key 'hash'", "twice", "'crc32'" } },
    { "listen twice", POOL("  listen: 127.0.0.1:22122\n" SRV),
      { "pool 'alpha'", "key 'listen'", "twice", "'127.0.0.1:22122'" } },
    { "servers twice", POOL(SRV "  servers:\n    - 127.0.0.1:6381:1\n"),
      { "pool 'alpha'", "key 'servers'", "twice", "'127.0.0.1:6381:1'" } },
    { "redis twice", POOL("  redis: true\n  redis: false\n" SRV), { "pool 'alpha'", "key 'redis'", "twice", "'false'" } },
    { "redis_auth twice", POOL("  redis: true\n  redis_auth: a\n  redis_auth: b\n" SRV),
      { "pool 'alpha'", "key 'redis_auth'", "twice", "'b'" } },

    /* names */
    { "unknown hash", POOL("  hash: fnv9\n" SRV), { "pool 'alpha'", "key 'hash'", "'fnv9'", "fnv1a_64" } },
    { "hash case", POOL("  hash: MD5\n" SRV), { "pool 'alpha'", "key 'hash'", "'MD5'" } },
    { "unknown distribution", POOL("  distribution: vnode\n" SRV),
      { "pool 'alpha'", "key 'distribution'", "'vnode'", "ketama" } },
    { "distribution case", POOL("  distribution: Ketama\n" SRV), { "pool 'alpha'", "key 'distribution'", "'Ketama'" } },

    /* numbers: nutcracker takes decimal digits only, up to INT_MAX */
    { "timeout -1", POOL("  timeout: -1\n" SRV), { "pool 'alpha'", "key 'timeout'", "'-1'" } },
    { "timeout float", POOL("  timeout: 1.5\n" SRV), { "pool 'alpha'", "key 'timeout'", "'1.5'" } },
    { "timeout hex", POOL("  timeout: 0x10\n" SRV), { "pool 'alpha'", "key 'timeout'", "'0x10'" } },
    { "timeout plus", POOL("  timeout: +5\n" SRV), { "pool 'alpha'", "key 'timeout'", "'+5'" } },
    { "timeout space", POOL("  timeout: ' 5'\n" SRV), { "pool 'alpha'", "key 'timeout'", "' 5'" } },
    { "timeout empty", POOL("  timeout:\n" SRV), { "pool 'alpha'", "key 'timeout'", "''" } },
    { "timeout 2^31", POOL("  timeout: 2147483648\n" SRV), { "pool 'alpha'", "key 'timeout'", "'2147483648'", "range" } },
    /* KEYMUX-ONLY: nutcracker's atoi wraps these to a positive int and accepts them */
    { "timeout 2^32+100", POOL("  timeout: 4294967396\n" SRV), { "pool 'alpha'", "key 'timeout'", "'4294967396'" } },
    { "timeout 20 digits", POOL("  timeout: 99999999999999999999\n" SRV),
      { "pool 'alpha'", "key 'timeout'", "'99999999999999999999'" } },
    { "backlog word", POOL("  backlog: many\n" SRV), { "pool 'alpha'", "key 'backlog'", "'many'" } },
    { "client_connections negative", POOL("  client_connections: -5\n" SRV),
      { "pool 'alpha'", "key 'client_connections'", "'-5'" } },
    { "server_connections 0", POOL("  server_connections: 0\n" SRV),
      { "pool 'alpha'", "key 'server_connections'", "'0'" } },
    { "server_retry_timeout word", POOL("  server_retry_timeout: 30s\n" SRV),
      { "pool 'alpha'", "key 'server_retry_timeout'", "'30s'" } },
    { "server_failure_limit negative", POOL("  server_failure_limit: -1\n" SRV),
      { "pool 'alpha'", "key 'server_failure_limit'", "'-1'" } },
    { "redis_db negative", POOL("  redis: true\n  redis_db: -1\n" SRV), { "pool 'alpha'", "key 'redis_db'", "'-1'" } },

    /* booleans: exactly true or false */
    { "bool yes", POOL("  redis: yes\n" SRV), { "pool 'alpha'", "key 'redis'", "'yes'" } },
    { "bool True", POOL("  preconnect: True\n" SRV), { "pool 'alpha'", "key 'preconnect'", "'True'" } },
    { "bool 1", POOL("  auto_eject_hosts: 1\n" SRV), { "pool 'alpha'", "key 'auto_eject_hosts'", "'1'" } },
    { "bool on", POOL("  tcpkeepalive: on\n" SRV), { "pool 'alpha'", "key 'tcpkeepalive'", "'on'" } },

    /* strings */
    { "hash_tag one char", POOL("  hash_tag: '{'\n" SRV), { "pool 'alpha'", "key 'hash_tag'", "'{'" } },
    { "hash_tag three chars", POOL("  hash_tag: '{}}'\n" SRV), { "pool 'alpha'", "key 'hash_tag'", "'{}}'" } },
    { "hash_tag empty", POOL("  hash_tag: ''\n" SRV), { "pool 'alpha'", "key 'hash_tag'", "''" } },
    /* KEYMUX-ONLY: nutcracker takes a tag with a NUL byte */
    { "hash_tag NUL", POOL("  hash_tag: \"\\0}\"\n" SRV), { "pool 'alpha'", "key 'hash_tag'", "'\\x00}'", "NUL" } },
    { "redis_auth without redis", POOL("  redis_auth: secret\n" SRV),
      { "pool 'alpha'", "key 'redis_auth'", "redis: true" } },
    { "redis_auth empty", POOL("  redis: true\n  redis_auth: ''\n" SRV), { "pool 'alpha'", "key 'redis_auth'", "empty" } },
    { "allow_flush without redis", POOL("  allow_flush: false\n" SRV),
      { "pool 'alpha'", "key 'allow_flush'", "redis: true" } },
    { "allow_flush yes", POOL("  redis: true\n  allow_flush: yes\n" SRV),
      { "pool 'alpha'", "key 'allow_flush'", "'yes'", "not a boolean" } },
    { "allow_flush twice", POOL("  redis: true\n  allow_flush: true\n  allow_flush: false\n" SRV),
      { "pool 'alpha'", "key 'allow_flush'", "twice", "'false'" } },

    /* listen */
    { "listen missing", "alpha:\n" SRV, { "pool 'alpha'", "key 'listen'", "missing" } },
    { "listen empty", LISTEN("''"), { "pool 'alpha'", "key 'listen'", "empty" } },
    { "listen no port", LISTEN("127.0.0.1"), { "pool 'alpha'", "key 'listen'", "'127.0.0.1'" } },
    { "listen port 0", LISTEN("127.0.0.1:0"), { "pool 'alpha'", "key 'listen'", "'0'", "'127.0.0.1:0'" } },
    { "listen port 65536", LISTEN("127.0.0.1:65536"), { "pool 'alpha'", "key 'listen'", "'65536'" } },
    { "listen port word", LISTEN("127.0.0.1:http"), { "pool 'alpha'", "key 'listen'", "'http'" } },
    { "listen trailing space", LISTEN("'127.0.0.1:22121 '"), { "pool 'alpha'", "key 'listen'", "'127.0.0.1:22121 '" } },
    { "listen no host", LISTEN("':22121'"), { "pool 'alpha'", "key 'listen'", "':22121'" } },
    { "listen bad IPv4", LISTEN("999.1.1.1:22121"), { "pool 'alpha'", "key 'listen'", "'999.1.1.1'" } },
    { "listen bad IPv6", LISTEN("'1::2::3:22121'"), { "pool 'alpha'", "key 'listen'", "'1::2::3'" } },
    { "listen unclosed bracket", LISTEN("'[::1:22121'"), { "pool 'alpha'", "key 'listen'", "'[::1:22121'" } },
    { "listen relative path", LISTEN("k.sock"), { "pool 'alpha'", "key 'listen'", "'k.sock'" } },
    { "listen mode above 0777", LISTEN("/tmp/k.sock 01777"), { "pool 'alpha'", "key 'listen'", "'01777'" } },
    { "listen mode negative", LISTEN("/tmp/k.sock -1"), { "pool 'alpha'", "key 'listen'", "'-1'" } },
    /* KEYMUX-ONLY: nutcracker's strtol stops at the first bad digit and
     * creates the socket with mode 0; and it takes "/" and a path ending
     * in a space */
    { "listen mode not octal", LISTEN("/tmp/k.sock 0999"), { "pool 'alpha'", "key 'listen'", "'0999'" } },
    { "listen mode word", LISTEN("/tmp/k.sock rw"), { "pool 'alpha'", "key 'listen'", "'rw'" } },
    { "listen mode missing", LISTEN("'/tmp/k.sock 0666 '"), { "pool 'alpha'", "key 'listen'", "'/tmp/k.sock 0666 '" } },
    { "listen path with two spaces", LISTEN("'/tmp/k.sock  0666'"), { "pool 'alpha'", "key 'listen'", "'/tmp/k.sock  0666'" } },
    { "listen root dir", LISTEN("/"), { "pool 'alpha'", "key 'listen'", "'/'" } },
    { "listen path too long",
      LISTEN("/tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock"),
      { "pool 'alpha'", "key 'listen'", "'/tmp/aaaa", "107" } },
    { "listen same as earlier pool", LISTEN("127.0.0.1:22121") "beta:\n  listen: 127.0.0.1:22121\n" SRV,
      { "pool 'beta'", "key 'listen'", "'127.0.0.1:22121'", "pool 'alpha'" } },
    /* KEYMUX-ONLY: nutcracker compares the text only, then fails at bind */
    { "listen wildcard clash", LISTEN("127.0.0.1:22121") "beta:\n  listen: 0.0.0.0:22121\n" SRV,
      { "pool 'beta'", "key 'listen'", "'0.0.0.0:22121'", "pool 'alpha'" } },
    { "listen IPv6 clash", LISTEN("'[::1]:22121'") "beta:\n  listen: '::1:22121'\n" SRV,
      { "pool 'beta'", "key 'listen'", "'::1:22121'", "pool 'alpha'" } },
    { "listen same unix path", LISTEN("/tmp/k.sock") "beta:\n  listen: /tmp/k.sock 0600\n" SRV,
      { "pool 'beta'", "key 'listen'", "'/tmp/k.sock 0600'", "pool 'alpha'" } },

    /* servers */
    { "servers missing", "alpha:\n  listen: 127.0.0.1:22121\n", { "pool 'alpha'", "key 'servers'", "missing" } },
    { "server empty", SERVER("''"), { "pool 'alpha'", "key 'servers'", "empty" } },
    { "server no weight", SERVER("127.0.0.1:6380"), { "pool 'alpha'", "key 'servers'", "'127.0.0.1:6380'" } },
    { "server weight 0", SERVER("127.0.0.1:6380:0"), { "pool 'alpha'", "key 'servers'", "'0'", "'127.0.0.1:6380:0'" } },
    { "server weight -1", SERVER("127.0.0.1:6380:-1"), { "pool 'alpha'", "key 'servers'", "'-1'" } },
    { "server weight 2^31", SERVER("127.0.0.1:6380:2147483648"), { "pool 'alpha'", "key 'servers'", "'2147483648'" } },
    { "server port 0", SERVER("127.0.0.1:0:1"), { "pool 'alpha'", "key 'servers'", "'0'", "'127.0.0.1:0:1'" } },
    { "server port 65536", SERVER("127.0.0.1:65536:1"), { "pool 'alpha'", "key 'servers'", "'65536'" } },
    { "server only a port", SERVER("6380"), { "pool 'alpha'", "key 'servers'", "'6380'" } },
    { "server name with space", SERVER("'127.0.0.1:6380:1 web 1'"), { "pool 'alpha'", "key 'servers'", "'127.0.0.1:6380:1 web 1'" } },
    { "server two spaces before name", SERVER("'127.0.0.1:6380:1  web1'"), { "pool 'alpha'", "key 'servers'", "'127.0.0.1:6380:1  web1'" } },
    { "unix server without weight", SERVER("/tmp/r.sock"), { "pool 'alpha'", "key 'servers'", "'/tmp/r.sock'" } },
    { "unix server with a port", SERVER("/tmp/r.sock:6379:1"), { "pool 'alpha'", "key 'servers'", "'/tmp/r.sock:6379:1'" } },
    { "unix server relative", SERVER("r.sock:1"), { "pool 'alpha'", "key 'servers'", "'r.sock:1'" } },
    /* KEYMUX-ONLY: nutcracker resolves servers lazily and accepts these */
    { "server empty host", SERVER("':6380:1'"), { "pool 'alpha'", "key 'servers'", "':6380:1'" } },
    { "server bad IPv4", SERVER("999.1.1.1:6380:1"), { "pool 'alpha'", "key 'servers'", "'999.1.1.1'" } },
    { "server empty name", SERVER("'127.0.0.1:6380:1 '"), { "pool 'alpha'", "key 'servers'", "'127.0.0.1:6380:1 '" } },
    { "server control char", SERVER("\"127.0.0.1:6380:1 a\\tb\""), { "pool 'alpha'", "key 'servers'", "'127.0.0.1:6380:1 a\\x09b'" } },
    /* duplicates, by the ring name */
    { "duplicate server names", POOL("  servers:\n    - 127.0.0.1:6380:1 a\n    - 127.0.0.1:6381:1 a\n"),
      { "pool 'alpha'", "key 'servers'", "'a'", "'127.0.0.1:6381:1 a'" } },
    { "duplicate unnamed address", POOL("  servers:\n    - 127.0.0.1:6380:1\n    - 127.0.0.1:6380:2\n"),
      { "pool 'alpha'", "key 'servers'", "'127.0.0.1:6380'", "'127.0.0.1:6380:2'" } },
    { "name equal to an unnamed address", POOL("  servers:\n    - 127.0.0.1:6380:1 127.0.0.1:6381\n    - 127.0.0.1:6381:1\n"),
      { "pool 'alpha'", "key 'servers'", "'127.0.0.1:6381'" } },
    { "port 11211 ring name is the host", POOL("  servers:\n    - 127.0.0.1:11211:1\n    - 127.0.0.1:6380:1 127.0.0.1\n"),
      { "pool 'alpha'", "key 'servers'", "same name '127.0.0.1'" } },
    { "unix ring name keeps the colon", POOL("  servers:\n    - /tmp/r.sock:1\n    - '/tmp/x.sock:1 /tmp/r.sock:'\n"),
      { "pool 'alpha'", "key 'servers'", "same name '/tmp/r.sock:'" } },
    { "error in second pool", LISTEN("127.0.0.1:22121") "beta:\n  listen: 127.0.0.1:22122\n  hash: sha1\n" SRV,
      { "pool 'beta'", "key 'hash'", "'sha1'", "line 7" } },
};

static void
test_invalid(void **state)
{
    size_t i, k;

    for (i = 0; i < KM_ARRAY_LEN(invalid_cases); i++) {
        const struct invalid_case *ic = &invalid_cases[i];
        struct conf c;
        char err[1024];
        int rc;

        print_message("invalid: %s\n", ic->label);
        memset(err, 'x', sizeof(err));
        rc = conf_load_string(ic->yaml, strlen(ic->yaml), &c, err, sizeof(err));
        assert_int_equal(rc, KM_ERROR);
        assert_null(c.pools);
        assert_int_equal(c.npools, 0);
        assert_non_null(memchr(err, '\0', sizeof(err)));
        assert_null(strchr(err, '\n'));
        for (k = 0; k < KM_ARRAY_LEN(ic->want) && ic->want[k] != NULL; k++) {
            if (strstr(err, ic->want[k]) == NULL) {
                print_error("message \"%s\" lacks \"%s\"\n", err, ic->want[k]);
            }
            assert_non_null(strstr(err, ic->want[k]));
        }
    }
}

/* ------------------------------------------------------------- files */

static void
test_example_file(void **state)
{
    static char got[8192];
    struct conf c;
    char err[512];
    int rc;

    rc = conf_load_file(KM_TEST_DATA "/../../conf/keymux.yml", &c, err, sizeof(err));
    if (rc != KM_OK) {
        print_error("conf/keymux.yml: %s\n", err);
    }
    assert_int_equal(rc, KM_OK);
    dump_conf(&c, got, sizeof(got));
    assert_string_equal(got,
        "alpha listen=127.0.0.1:22121 host=127.0.0.1 port=22121 path=- mode=-1 hash=fnv1a_64 "
        "dist=ketama tag={} timeout=400 backlog=512 cc=0 redis=1 keepalive=0 auth=- db=0 "
        "preconnect=0 eject=1 sconn=1 retry=30000 limit=2\n"
        "  [127.0.0.1:6380:1] host=127.0.0.1 port=6380 path=- w=1 name=- ident=127.0.0.1:6380\n"
        "  [127.0.0.1:6381:1] host=127.0.0.1 port=6381 path=- w=1 name=- ident=127.0.0.1:6381\n"
        "beta listen=127.0.0.1:22122 host=127.0.0.1 port=22122 path=- mode=-1 hash=fnv1a_64 "
        "dist=ketama tag= timeout=400 backlog=512 cc=0 redis=0 keepalive=0 auth=- db=0 "
        "preconnect=0 eject=1 sconn=1 retry=30000 limit=2\n"
        "  [127.0.0.1:11212:1] host=127.0.0.1 port=11212 path=- w=1 name=- ident=127.0.0.1:11212\n"
        "  [127.0.0.1:11213:1] host=127.0.0.1 port=11213 path=- w=1 name=- ident=127.0.0.1:11213\n");
    conf_free(&c);
}

static void
test_example_dir(void **state)
{
    static const char *const files[] = {
        "unix_socket.yml", "weights_and_names.yml", "hash_tag.yml",
    };
    char path[512], err[512];
    size_t i;

    for (i = 0; i < KM_ARRAY_LEN(files); i++) {
        struct conf c;
        int rc;

        snprintf(path, sizeof(path), "%s/../../conf/examples/%s", KM_TEST_DATA, files[i]);
        rc = conf_load_file(path, &c, err, sizeof(err));
        if (rc != KM_OK) {
            print_error("%s: %s\n", path, err);
        }
        assert_int_equal(rc, KM_OK);
        assert_int_equal(c.npools, 2);
        conf_free(&c);
    }
}

static void
test_missing_file(void **state)
{
    struct conf c;
    char err[512];

    assert_int_equal(conf_load_file(KM_TEST_DATA "/no/such/file.yml", &c, err, sizeof(err)), KM_ERROR);
    assert_non_null(strstr(err, "no/such/file.yml"));
    assert_non_null(strstr(err, "No such file"));
    assert_int_equal(c.npools, 0);
}

/* ------------------------------------------------------------- robustness */

/* An error buffer that is missing or tiny is never overrun. */
static void
test_small_error_buffer(void **state)
{
    static const char text[] = POOL("  hash: fnv9\n" SRV);
    char err[8];
    struct conf c;
    size_t n;

    assert_int_equal(conf_load_string(text, strlen(text), &c, NULL, 0), KM_ERROR);
    assert_int_equal(conf_load_string(text, strlen(text), &c, err, 0), KM_ERROR);
    for (n = 1; n <= sizeof(err); n++) {
        memset(err, 'x', sizeof(err));
        assert_int_equal(conf_load_string(text, strlen(text), &c, err, n), KM_ERROR);
        assert_int_equal(strlen(err), n - 1);
        assert_memory_equal(err, "pool 'alpha'", n - 1);
    }
}

static void
test_quote(void **state)
{
    char buf[CONF_QUOTE_SIZE];
    char longv[200];

    assert_string_equal(conf_quote(buf, sizeof(buf), "a\tb\x7f", 4), "'a\\x09b\\x7f'");
    assert_string_equal(conf_quote(buf, sizeof(buf), "", 0), "''");
    memset(longv, 'z', sizeof(longv));
    conf_quote(buf, sizeof(buf), longv, sizeof(longv));
    assert_int_equal(strlen(buf), 1 + 64 + 1 + 3);
    assert_string_equal(buf + 66, "...");
    /* a cut never splits a UTF-8 sequence: 63 ASCII bytes then "é" (2 bytes) */
    memset(longv, 'y', 63);
    memcpy(longv + 63, "\xc3\xa9zzzz", 6);
    conf_quote(buf, sizeof(buf), longv, 69);
    assert_string_equal(buf + 64, "'...");
    conf_quote(buf, 3, "abc", 3);
    assert_true(strlen(buf) <= 2);
}

/* Every prefix of a valid config: either it loads, or it is refused with a
 * message and nothing allocated (ASan's leak check watches the latter). */
static void
test_every_prefix(void **state)
{
    static const char text[] =
        "alpha:\n"
        "  listen: /tmp/k.sock 0666\n"
        "  hash: md5\n"
        "  hash_tag: \"{}\"\n"
        "  redis: true\n"
        "  redis_auth: pw\n"
        "  servers:\n"
        "    - 127.0.0.1:6380:1 a\n"
        "    - \"[::1]:6381:2\"\n"
        "beta: {listen: \"127.0.0.1:22122\", servers: [/tmp/m.sock:1]}\n";
    size_t n, ok = 0;

    for (n = 0; n <= sizeof(text) - 1; n++) {
        struct conf c;
        char err[512];
        int rc = conf_load_string(text, n, &c, err, sizeof(err));

        if (rc == KM_OK) {
            assert_true(c.npools >= 1);
            ok++;
            conf_free(&c);
        } else {
            assert_int_equal(rc, KM_ERROR);
            assert_true(err[0] != '\0');
            assert_null(c.pools);
        }
    }
    /* at least the whole text and the cut right after alpha's last server load */
    assert_true(ok >= 2);
    {
        struct conf c;
        assert_int_equal(conf_load_string(text, sizeof(text) - 1, &c, NULL, 0), KM_OK);
        assert_int_equal(c.npools, 2);
        conf_free(&c);
    }
}

/* Byte flips over a valid config never crash or leak. */
static void
test_byte_flips(void **state)
{
    static const char base[] =
        "alpha:\n  listen: 127.0.0.1:22121\n  timeout: 100\n  servers:\n"
        "    - 127.0.0.1:6380:1 a\n    - /tmp/r.sock:2\n";
    static const char flips[] = { '\0', ':', ' ', '-', '[', '{', '"', '\'', '\n', '\t', '&', '*', '!', '\xff', '#' };
    char text[sizeof(base)];
    size_t i, f, errors = 0;

    for (i = 0; i < sizeof(base) - 1; i++) {
        for (f = 0; f < sizeof(flips); f++) {
            struct conf c;
            char err[256];
            int rc;

            memcpy(text, base, sizeof(base));
            text[i] = flips[f];
            rc = conf_load_string(text, sizeof(base) - 1, &c, err, sizeof(err));
            if (rc == KM_OK) {
                conf_free(&c);
            } else {
                assert_true(err[0] != '\0');
                assert_null(c.pools);
                errors++;
            }
        }
    }
    assert_true(errors > 0);
}

/* Deep nesting is refused at the first level too deep, without recursion. */
static void
test_deep_nesting(void **state)
{
    const size_t depth = 100000;
    char *text = malloc(depth * 2 + 64);
    struct conf c;
    char err[256];
    size_t i, o = 0;

    assert_non_null(text);
    o += (size_t)sprintf(text, "alpha: ");
    for (i = 0; i < depth; i++) {
        text[o++] = '[';
    }
    for (i = 0; i < depth; i++) {
        text[o++] = ']';
    }
    text[o] = '\0';
    assert_int_equal(conf_load_string(text, o, &c, err, sizeof(err)), KM_ERROR);
    assert_non_null(strstr(err, "pool 'alpha'"));

    o = 0;
    for (i = 0; i < depth; i++) {
        text[o++] = '{';
    }
    assert_int_equal(conf_load_string(text, o, &c, err, sizeof(err)), KM_ERROR);
    free(text);
}

/* Many servers: duplicate detection stays fast and exact. */
static void
test_many_servers(void **state)
{
    const unsigned n = 20000;
    size_t size = 64 + (size_t)n * 40, o = 0;
    char *text = malloc(size);
    struct conf c;
    char err[512];
    unsigned i;

    assert_non_null(text);
    o += (size_t)snprintf(text + o, size - o, "alpha:\n  listen: 127.0.0.1:22121\n  servers:\n");
    for (i = 0; i < n; i++) {
        o += (size_t)snprintf(text + o, size - o, "    - 10.%u.%u.1:6379:1\n", i / 256, i % 256);
    }
    assert_int_equal(conf_load_string(text, o, &c, err, sizeof(err)), KM_OK);
    assert_int_equal(c.pools[0].nservers, n);
    assert_string_equal(c.pools[0].servers[n - 1].host, "10.78.31.1");
    conf_free(&c);
    /* the same address once more, at the end */
    o += (size_t)snprintf(text + o, size - o, "    - 10.0.7.1:6379:5\n");
    assert_int_equal(conf_load_string(text, o, &c, err, sizeof(err)), KM_ERROR);
    assert_non_null(strstr(err, "'10.0.7.1:6379'"));
    free(text);
}

/* allow_flush: false unless a redis pool says true. */
static void
test_allow_flush(void **state)
{
    static const struct {
        const char *text;
        bool want;
    } cases[] = {
        { POOL("  redis: true\n" SRV), false },
        { POOL("  redis: true\n  allow_flush: true\n" SRV), true },
        { POOL("  redis: true\n  allow_flush: false\n" SRV), false },
        { POOL("  redis: true\n  allow_flush: \"true\"\n" SRV), true },
        { POOL(SRV), false },
    };
    char err[256];

    (void)state;
    for (size_t i = 0; i < KM_ARRAY_LEN(cases); i++) {
        struct conf c;
        err[0] = '\0';
        if (conf_load_string(cases[i].text, strlen(cases[i].text), &c, err, sizeof(err)) != KM_OK)
            fail_msg("case %zu: %s", i, err);
        assert_int_equal(c.pools[0].allow_flush, cases[i].want);
        conf_free(&c);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_example_file),
        cmocka_unit_test(test_example_dir),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_small_error_buffer),
        cmocka_unit_test(test_quote),
        cmocka_unit_test(test_every_prefix),
        cmocka_unit_test(test_byte_flips),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_many_servers),
        cmocka_unit_test(test_allow_flush),
    };

    return cmocka_run_group_tests_name("conf", tests, NULL, NULL);
}
