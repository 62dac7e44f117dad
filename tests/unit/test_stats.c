/* tests/unit/test_stats.c: the stats JSON (nutcracker 0.5.0's text, escaping, values summed over
 * the workers) and -D, over a fake proxy of two workers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/common.h"
#include "pool/pool.h"
#include "proxy/proxy.h"
#include "stats/stats.h"

/* ------------------------------------------------------------------------
 * A minimal strict JSON reader: objects, strings (all escapes, \u00XX..\u007F
 * decoded to one byte), integers. Enough for the stats document, and it rejects
 * anything malformed, duplicate keys included. */

enum jtype { J_OBJ, J_STR, J_INT };

struct jval {
    enum jtype t;
    char *s;              /* J_STR: decoded bytes (NUL-terminated), slen bytes */
    size_t slen;
    long long i;          /* J_INT */
    size_t n;             /* J_OBJ: members */
    char **keys;          /* decoded keys, in document order */
    size_t *klens;
    struct jval **vals;
};

struct jparse {
    const char *p, *end;
};

static void
jfree(struct jval *v)
{
    if (v == NULL)
        return;
    for (size_t k = 0; k < v->n; k++) {
        free(v->keys[k]);
        jfree(v->vals[k]);
    }
    free(v->keys);
    free(v->klens);
    free(v->vals);
    free(v->s);
    free(v);
}

static void
jws(struct jparse *jp)
{
    while (jp->p < jp->end && (*jp->p == ' ' || *jp->p == '\n' || *jp->p == '\t' || *jp->p == '\r'))
        jp->p++;
}

static int
jhex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A string at jp->p (the opening quote); malloc'd bytes in *out, length in *len. */
static int
jstring(struct jparse *jp, char **out, size_t *len)
{
    if (jp->p >= jp->end || *jp->p != '"')
        return -1;
    jp->p++;
    char *buf = malloc((size_t)(jp->end - jp->p) + 1);
    size_t n = 0;
    while (jp->p < jp->end && *jp->p != '"') {
        unsigned char c = (unsigned char)*jp->p++;
        if (c < 0x20)
            goto bad;
        if (c != '\\') {
            buf[n++] = (char)c;
            continue;
        }
        if (jp->p >= jp->end)
            goto bad;
        c = (unsigned char)*jp->p++;
        switch (c) {
        case '"': case '\\': case '/': buf[n++] = (char)c; break;
        case 'b': buf[n++] = '\b'; break;
        case 'f': buf[n++] = '\f'; break;
        case 'n': buf[n++] = '\n'; break;
        case 'r': buf[n++] = '\r'; break;
        case 't': buf[n++] = '\t'; break;
        case 'u': {
            if (jp->end - jp->p < 4)
                goto bad;
            int v = 0;
            for (int k = 0; k < 4; k++) {
                int h = jhex(jp->p[k]);
                if (h < 0)
                    goto bad;
                v = v * 16 + h;
            }
            jp->p += 4;
            if (v >= 0x80)      /* not needed by the document under test */
                goto bad;
            buf[n++] = (char)v;
            break;
        }
        default:
            goto bad;
        }
    }
    if (jp->p >= jp->end)
        goto bad;
    jp->p++;
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
bad:
    free(buf);
    return -1;
}

static struct jval *jvalue(struct jparse *jp);

static struct jval *
jobject(struct jparse *jp)
{
    struct jval *v = calloc(1, sizeof(*v));
    v->t = J_OBJ;
    jp->p++;   /* '{' */
    jws(jp);
    if (jp->p < jp->end && *jp->p == '}') {
        jp->p++;
        return v;
    }
    for (;;) {
        char *key;
        size_t klen;
        jws(jp);
        if (jstring(jp, &key, &klen) != 0)
            goto bad;
        for (size_t k = 0; k < v->n; k++) {
            if (v->klens[k] == klen && memcmp(v->keys[k], key, klen) == 0) {
                free(key);
                goto bad;   /* duplicate key */
            }
        }
        jws(jp);
        if (jp->p >= jp->end || *jp->p != ':') {
            free(key);
            goto bad;
        }
        jp->p++;
        struct jval *val = jvalue(jp);
        if (val == NULL) {
            free(key);
            goto bad;
        }
        v->keys = realloc(v->keys, (v->n + 1) * sizeof(*v->keys));
        v->klens = realloc(v->klens, (v->n + 1) * sizeof(*v->klens));
        v->vals = realloc(v->vals, (v->n + 1) * sizeof(*v->vals));
        v->keys[v->n] = key;
        v->klens[v->n] = klen;
        v->vals[v->n] = val;
        v->n++;
        jws(jp);
        if (jp->p < jp->end && *jp->p == ',') {
            jp->p++;
            continue;
        }
        if (jp->p < jp->end && *jp->p == '}') {
            jp->p++;
            return v;
        }
        goto bad;
    }
bad:
    jfree(v);
    return NULL;
}

static struct jval *
jvalue(struct jparse *jp)
{
    jws(jp);
    if (jp->p >= jp->end)
        return NULL;
    if (*jp->p == '{')
        return jobject(jp);
    if (*jp->p == '"') {
        struct jval *v = calloc(1, sizeof(*v));
        v->t = J_STR;
        if (jstring(jp, &v->s, &v->slen) != 0) {
            free(v);
            return NULL;
        }
        return v;
    }
    if (*jp->p == '-' || (*jp->p >= '0' && *jp->p <= '9')) {
        const char *q = jp->p;
        bool neg = *q == '-';
        if (neg)
            q++;
        if (q >= jp->end || *q < '0' || *q > '9' || (*q == '0' && q + 1 < jp->end &&
                                                      q[1] >= '0' && q[1] <= '9'))
            return NULL;
        long long x = 0;
        while (q < jp->end && *q >= '0' && *q <= '9')
            x = x * 10 + (*q++ - '0');
        jp->p = q;
        struct jval *v = calloc(1, sizeof(*v));
        v->t = J_INT;
        v->i = neg ? -x : x;
        return v;
    }
    return NULL;
}

/* The whole text as one JSON value (trailing whitespace allowed), or NULL. */
static struct jval *
jparse_all(const char *text, size_t len)
{
    struct jparse jp = { text, text + len };
    struct jval *v = jvalue(&jp);
    jws(&jp);
    if (v != NULL && jp.p != jp.end) {
        jfree(v);
        return NULL;
    }
    return v;
}

static struct jval *
jget(const struct jval *o, const char *key)
{
    if (o == NULL || o->t != J_OBJ)
        return NULL;
    for (size_t k = 0; k < o->n; k++)
        if (o->klens[k] == strlen(key) && memcmp(o->keys[k], key, o->klens[k]) == 0)
            return o->vals[k];
    return NULL;
}

static long long
jint(const struct jval *o, const char *key)
{
    const struct jval *v = jget(o, key);
    if (v == NULL || v->t != J_INT) {
        print_error("key '%s' missing or not an integer\n", key);
        fail();
    }
    return v->i;
}

/* The reader itself must reject what it should, or the checks below prove nothing. */
static void
test_reader_rejects_malformed(void **state)
{
    (void)state;
    static const char *bad[] = {
        "{\"a\":1,}", "{\"a\" 1}", "{\"a\":01}", "{\"a\":\"x\"", "{\"a\":\"\x01\"}",
        "{\"a\":1,\"a\":2}", "{\"a\":1}}", "{\"a\":\"\\q\"}", "{\"a\"\"b\":1}", "",
        "{\"we\"ird\": {}}",   /* nutcracker's unescaped quote in a pool name */
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(bad); i++) {
        struct jval *v = jparse_all(bad[i], strlen(bad[i]));
        if (v != NULL) {
            print_error("accepted malformed %s\n", bad[i]);
            jfree(v);
            fail();
        }
    }
    const char *good = "{\"a\": {\"b\\\"c\\\\\":-12, \"\\u0001\":\"x\\ny\"}}\n";
    struct jval *v = jparse_all(good, strlen(good));
    assert_non_null(v);
    assert_int_equal(jint(jget(v, "a"), "b\"c\\"), -12);
    assert_string_equal(jget(jget(v, "a"), "\x01")->s, "x\ny");
    jfree(v);
}

/* ------------------------------------------------------------------------
 * A fake proxy: pools and servers in memory with the state blocks where two workers'
 * counters live, no sockets. */

#define MAX_POOLS   4
#define MAX_SERVERS 8
#define NWORKERS    2

struct fake {
    struct proxy px;
    struct worker w[NWORKERS];
    struct pool pools[MAX_POOLS];
    struct conf_pool cf[MAX_POOLS];
    struct pool_state pst[MAX_POOLS];
    struct pool_stats_slot pslots[MAX_POOLS][NWORKERS];
    struct server srv[MAX_POOLS][MAX_SERVERS];
    struct server_state sst[MAX_POOLS][MAX_SERVERS];
    struct server_stats_slot sslots[MAX_POOLS][MAX_SERVERS][NWORKERS];
};

/* Give pool i the servers srv[0..n), each with its state st[j] and counters
 * slots[j * NWORKERS ...]. */
static void
fake_servers(struct fake *f, uint32_t i, struct server *srv, struct server_state *st,
             struct server_stats_slot *slots, uint32_t n)
{
    f->pools[i].servers = srv;
    f->pools[i].nservers = n;
    for (uint32_t j = 0; j < n; j++) {
        srv[j].pool = &f->pools[i];
        srv[j].idx = j;
        srv[j].state = &st[j];
        srv[j].h = &st[j].h;
        st[j].nworkers = NWORKERS;
        st[j].wst = &slots[(size_t)j * NWORKERS];
    }
}

static void
fake_init(struct fake *f, uint32_t npools, const char *const *pool_names,
          const uint32_t *nservers, const char *const *const *idents)
{
    memset(f, 0, sizeof(*f));
    f->px.pools = f->pools;
    f->px.npools = npools;
    f->px.workers = f->w;
    f->px.nworkers = NWORKERS;
    for (uint32_t k = 0; k < NWORKERS; k++) {
        f->w[k].id = k;
        f->w[k].px = &f->px;
    }
    for (uint32_t i = 0; i < npools; i++) {
        f->cf[i].name = (char *)pool_names[i];
        f->pools[i].idx = i;
        f->pools[i].cf = &f->cf[i];
        f->pools[i].state = &f->pst[i];
        f->pst[i].nworkers = NWORKERS;
        f->pst[i].wst = f->pslots[i];
        fake_servers(f, i, f->srv[i], f->sst[i], &f->sslots[i][0][0], nservers[i]);
        for (uint32_t j = 0; j < nservers[i]; j++)
            f->srv[i][j].ident = (char *)idents[i][j];
    }
}

static char *
json_of(struct fake *f, time_t started, time_t now, size_t *len)
{
    char *js = stats_json_at(&f->px, started, now, len);
    assert_non_null(js);
    assert_int_equal(strlen(js), *len);
    return js;
}

/* Replace the "source":"<hostname>" value with "H" so expected text is host-independent. */
static void
mask_source(char *js)
{
    char *p = strstr(js, "\"source\":\"");
    assert_non_null(p);
    p += strlen("\"source\":\"");
    char *q = strchr(p, '"');
    assert_non_null(q);
    *p = 'H';
    memmove(p + 1, q, strlen(q) + 1);
}

#define SRV_ZERO "{\"server_eof\":0, \"server_err\":0, \"server_timedout\":0, " \
    "\"server_connections\":0, \"server_ejected_at\":0, \"requests\":0, \"request_bytes\":0, " \
    "\"responses\":0, \"response_bytes\":0, \"in_queue\":0, \"in_queue_bytes\":0, " \
    "\"out_queue\":0, \"out_queue_bytes\":0}"
#define POOL_ZERO "\"client_eof\":0, \"client_err\":0, \"client_connections\":0, " \
    "\"server_ejects\":0, \"forward_error\":0, \"fragments\":0, "

/* Byte for byte the text nutcracker 0.5.0 printed on its stats port for the same four
 * pools, given in this config order:
 *   alpha: 127.0.0.1:26902:1, "127.0.0.1:26903:1 web1", 127.0.0.1:11211:1
 *   zeta:  127.0.0.1:2691:1, 127.0.0.1:26912:10, localhost:26913:1,
 *          "127.0.0.1:26914:1 bb", "127.0.0.1:26916:1 a"
 *   bb:    127.0.0.1:2691:1
 *   ab:    127.0.0.1:2691:1
 * with service, version, host and the top-level numbers replaced: same separators, same
 * key order, pools and servers sorted by name length, then bytes. */
static void
test_exact_text_as_nutcracker(void **state)
{
    (void)state;
    static const char *const names[] = { "alpha", "zeta", "bb", "ab" };
    static const uint32_t ns[] = { 3, 5, 1, 1 };
    static const char *const alpha[] = { "127.0.0.1:26902", "web1", "127.0.0.1" };
    static const char *const zeta[] = { "127.0.0.1:2691", "127.0.0.1:26912", "localhost:26913",
                                        "bb", "a" };
    static const char *const one[] = { "127.0.0.1:2691" };
    static const char *const *const idents[] = { alpha, zeta, one, one };
    struct fake f;
    size_t len;

    fake_init(&f, 4, names, ns, idents);
    f.px.nlisteners = 1;           /* counted once, as twemproxy counts its listener */
    ctr_set(&f.w[0].total_connections, 4);
    ctr_set(&f.w[1].total_connections, 2);
    ctr_set(&f.w[0].curr_connections, 1);
    ctr_set(&f.w[1].curr_connections, 1);
    char *js = json_of(&f, 1000, 1042, &len);
    mask_source(js);
    const char *want =
        "{\"service\":\"keymux\", \"source\":\"H\", \"version\":\"" KM_VERSION "\", "
        "\"uptime\":42, \"timestamp\":1042, \"total_connections\":7, \"curr_connections\":3, "
        "\"ab\": {" POOL_ZERO "\"127.0.0.1:2691\": " SRV_ZERO "},"
        "\"bb\": {" POOL_ZERO "\"127.0.0.1:2691\": " SRV_ZERO "},"
        "\"zeta\": {" POOL_ZERO
        "\"a\": " SRV_ZERO ",\"bb\": " SRV_ZERO ",\"127.0.0.1:2691\": " SRV_ZERO
        ",\"127.0.0.1:26912\": " SRV_ZERO ",\"localhost:26913\": " SRV_ZERO "},"
        "\"alpha\": {" POOL_ZERO
        "\"web1\": " SRV_ZERO ",\"127.0.0.1\": " SRV_ZERO ",\"127.0.0.1:26902\": " SRV_ZERO
        "}}\n";
    assert_string_equal(js, want);
    free(js);
}

/* Every value comes from its own field: distinct numbers everywhere. */
static void
test_values_map_to_fields(void **state)
{
    (void)state;
    static const char *const names[] = { "p" };
    static const uint32_t ns[] = { 2 };
    static const char *const srvs[] = { "s0", "s1" };
    static const char *const *const idents[] = { srvs };
    struct fake f;
    size_t len;

    fake_init(&f, 1, names, ns, idents);
    /* each figure split between the two workers, so a worker left out is caught */
    ctr_set(&f.w[0].total_connections, 12345678000ULL);
    ctr_set(&f.w[1].total_connections, 901);
    ctr_set(&f.w[0].curr_connections, 10);
    ctr_set(&f.w[1].curr_connections, 7);
    struct pool *p = &f.pools[0];
    const uint64_t pv[] = { 101, 102, 104, 105, 106 };   /* eof, err, ejects, fwd, frags */
    for (uint32_t k = 0; k < NWORKERS; k++) {
        struct pool_stats *st = pool_wstats(p, k);
        ctr_set(&st->client_eof, k == 0 ? pv[0] - 1 : 1);
        ctr_set(&st->client_err, k == 0 ? pv[1] - 2 : 2);
        ctr_set(&st->forward_error, k == 0 ? pv[3] - 5 : 5);
        ctr_set(&st->fragments, k == 0 ? pv[4] - 6 : 6);
    }
    atomic_store(&p->state->server_ejects, pv[2]);
    atomic_store(&p->state->nclients, 103);   /* the gauge is the count of open clients */
    for (uint32_t j = 0; j < 2; j++) {
        struct server *s = &f.srv[0][j];
        uint64_t b = 1000 * (j + 1);
        const uint64_t want[] = { b + 1, b + 2, b + 3, b + 4, 0, b + 6, b + 7, b + 8, b + 9,
                                  b + 10, b + 11, b + 12, b + 13 };
        for (uint32_t k = 0; k < NWORKERS; k++) {
            struct server_stats *st = server_wstats(s, k);
            /* worker 0 holds all but 1 of each, worker 1 the 1 */
            uint64_t one = k == 0 ? 0 : 1, rest = k == 0 ? 1 : 0;
            ctr_set(&st->server_eof, one + rest * (want[0] - 1));
            ctr_set(&st->server_err, one + rest * (want[1] - 1));
            ctr_set(&st->server_timedout, one + rest * (want[2] - 1));
            ctr_set(&st->connections, one + rest * (want[3] - 1));
            ctr_set(&st->requests, one + rest * (want[5] - 1));
            ctr_set(&st->request_bytes, one + rest * (want[6] - 1));
            ctr_set(&st->responses, one + rest * (want[7] - 1));
            ctr_set(&st->response_bytes, one + rest * (want[8] - 1));
            ctr_set(&st->in_queue, one + rest * (want[9] - 1));
            ctr_set(&st->in_queue_bytes, one + rest * (want[10] - 1));
            ctr_set(&st->out_queue, one + rest * (want[11] - 1));
            ctr_set(&st->out_queue_bytes, one + rest * (want[12] - 1));
        }
        atomic_store(&s->h->ejected_at_us, 1795825225123456LL + j);
    }
    char *js = json_of(&f, 50, 40, &len);
    struct jval *doc = jparse_all(js, len);
    if (doc == NULL) {
        print_error("not valid JSON: %s\n", js);
        fail();
    }
    assert_int_equal(jint(doc, "uptime"), 0);   /* clock went back: never negative */
    assert_int_equal(jint(doc, "timestamp"), 40);
    assert_int_equal(jint(doc, "total_connections"), 12345678901LL);
    assert_int_equal(jint(doc, "curr_connections"), 17);
    assert_string_equal(jget(doc, "service")->s, "keymux");
    assert_string_equal(jget(doc, "version")->s, KM_VERSION);
    char host[300] = "";
    gethostname(host, sizeof(host) - 1);
    assert_string_equal(jget(doc, "source")->s, host);
    assert_int_equal(doc->n, 8);

    struct jval *pj = jget(doc, "p");
    assert_non_null(pj);
    assert_int_equal(pj->n, 6 + 2);
    assert_int_equal(jint(pj, "client_eof"), 101);
    assert_int_equal(jint(pj, "client_err"), 102);
    assert_int_equal(jint(pj, "client_connections"), 103);
    assert_int_equal(jint(pj, "server_ejects"), 104);
    assert_int_equal(jint(pj, "forward_error"), 105);
    assert_int_equal(jint(pj, "fragments"), 106);

    static const char *const skeys[] = {
        "server_eof", "server_err", "server_timedout", "server_connections", NULL,
        "requests", "request_bytes", "responses", "response_bytes", "in_queue",
        "in_queue_bytes", "out_queue", "out_queue_bytes",
    };
    for (uint32_t j = 0; j < 2; j++) {
        struct jval *sj = jget(pj, srvs[j]);
        assert_non_null(sj);
        assert_int_equal(sj->n, 13);
        long long b = 1000 * (j + 1);
        for (size_t k = 0; k < KM_ARRAY_LEN(skeys); k++) {
            if (skeys[k] == NULL)
                continue;
            long long got = jint(sj, skeys[k]);
            long long want = b + (long long)k + 1;
            if (got != want) {
                print_error("server %s: %s = %lld, want %lld\n", srvs[j], skeys[k], got, want);
                fail();
            }
        }
        assert_int_equal(jint(sj, "server_ejected_at"), 1795825225123456LL + j);
    }
    jfree(doc);
    free(js);
}

/* Names that need escaping come out as valid JSON that decodes to the same bytes. */
static void
test_names_escaped(void **state)
{
    (void)state;
    static const struct {
        const char *pool;
        const char *server;
    } cases[] = {
        { "we\"ird", "\"n\\\\a\"" },
        { "back\\slash", "tab\there" },
        { "nl\nand\rcr", "ctl\x01\x1f\x7f" },
        { "utf8-\xc3\xa9", "sp ace:1" },
        { "\"", "\\" },
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(cases); i++) {
        const char *const names[] = { cases[i].pool };
        const char *const srvs[] = { cases[i].server };
        const char *const *const idents[] = { srvs };
        const uint32_t ns[] = { 1 };
        struct fake f;
        size_t len;

        fake_init(&f, 1, names, ns, idents);
        char *js = json_of(&f, 0, 0, &len);
        if (strchr(cases[i].pool, 0xc3) == NULL) {
            /* plain ASCII names: no raw control byte may remain in the text */
            for (size_t k = 0; k < len - 1; k++) {
                if ((unsigned char)js[k] < 0x20) {
                    print_error("case %zu: raw byte 0x%02x at %zu in %s\n", i,
                                (unsigned char)js[k], k, js);
                    fail();
                }
            }
        }
        struct jval *doc = jparse_all(js, len);
        if (doc == NULL) {
            print_error("case %zu: not valid JSON: %s\n", i, js);
            fail();
        }
        struct jval *pj = jget(doc, cases[i].pool);
        if (pj == NULL || jget(pj, cases[i].server) == NULL) {
            print_error("case %zu: pool or server key not found after decoding: %s\n", i, js);
            fail();
        }
        assert_int_equal(jint(jget(pj, cases[i].server), "requests"), 0);
        jfree(doc);
        free(js);
    }
}

/* Server order: nutcracker's (length, then bytes), whatever the config order. */
static void
test_server_order(void **state)
{
    (void)state;
    static const struct {
        uint32_t n;
        const char *in[6];     /* config order */
        const char *out[6];    /* stats order */
    } cases[] = {
        /* seen from nutcracker 0.5.0 */
        { 4, { "127.0.0.1:26915", "127.0.0.1:26912", "b", "a" },
             { "a", "b", "127.0.0.1:26912", "127.0.0.1:26915" } },
        { 2, { "\"n\\\\a\"", "/tmp/statsw/x.sock:" }, { "\"n\\\\a\"", "/tmp/statsw/x.sock:" } },
        /* length before bytes; bytes compared unsigned */
        { 3, { "zz", "\xc3\xa9", "aaa" }, { "zz", "\xc3\xa9", "aaa" } },
        { 3, { "b\xc3", "b\x7f", "b0" }, { "b0", "b\x7f", "b\xc3" } },
        { 1, { "only" }, { "only" } },
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(cases); i++) {
        const char *const names[] = { "p" };
        const char *const *const idents[] = { cases[i].in };
        const uint32_t ns[] = { cases[i].n };
        struct fake f;
        size_t len;

        fake_init(&f, 1, names, ns, idents);
        char *js = json_of(&f, 0, 0, &len);
        struct jval *doc = jparse_all(js, len);
        assert_non_null(doc);
        struct jval *pj = jget(doc, "p");
        assert_non_null(pj);
        assert_int_equal(pj->n, 6 + cases[i].n);
        for (uint32_t k = 0; k < cases[i].n; k++) {
            if (strcmp(pj->keys[6 + k], cases[i].out[k]) != 0) {
                print_error("case %zu: position %u is '%s', want '%s'\n", i, k, pj->keys[6 + k],
                            cases[i].out[k]);
                fail();
            }
        }
        jfree(doc);
        free(js);
    }
}

/* Byte for byte what nutcracker 0.5.0 -D prints after its header lines. */
static void
test_describe_as_nutcracker(void **state)
{
    (void)state;
    static const char want[] =
        "pool stats:\n"
        "  client_eof          \"# eof on client connections\"\n"
        "  client_err          \"# errors on client connections\"\n"
        "  client_connections  \"# active client connections\"\n"
        "  server_ejects       \"# times backend server was ejected\"\n"
        "  forward_error       \"# times we encountered a forwarding error\"\n"
        "  fragments           \"# fragments created from a multi-vector request\"\n"
        "\n"
        "server stats:\n"
        "  server_eof          \"# eof on server connections\"\n"
        "  server_err          \"# errors on server connections\"\n"
        "  server_timedout     \"# timeouts on server connections\"\n"
        "  server_connections  \"# active server connections\"\n"
        "  server_ejected_at   \"timestamp when server was ejected in usec since epoch\"\n"
        "  requests            \"# requests\"\n"
        "  request_bytes       \"total request bytes\"\n"
        "  responses           \"# responses\"\n"
        "  response_bytes      \"total response bytes\"\n"
        "  in_queue            \"# requests in incoming queue\"\n"
        "  in_queue_bytes      \"current request bytes in incoming queue\"\n"
        "  out_queue           \"# requests in outgoing queue\"\n"
        "  out_queue_bytes     \"current request bytes in outgoing queue\"\n";
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_non_null(out);
    stats_describe(out);
    fclose(out);
    assert_string_equal(buf, want);
    free(buf);
}

/* A pool of many long-named servers: the document grows past any fixed buffer. */
static void
test_large_document(void **state)
{
    (void)state;
    enum { N = 2000 };
    static char namebuf[N][64];
    static const char *srvs[N];
    static struct server servers[N];
    static struct server_state states[N];
    static struct server_stats_slot slots[N * NWORKERS];
    struct fake f;
    size_t len;
    static const char *const names[] = { "big" };
    static const uint32_t one[] = { 0 };
    static const char *const *const none[] = { NULL };

    fake_init(&f, 1, names, one, none);
    memset(states, 0, sizeof(states));
    memset(slots, 0, sizeof(slots));
    for (uint32_t j = 0; j < N; j++) {
        snprintf(namebuf[j], sizeof(namebuf[j]), "server-%04u-%s", N - 1 - j,
                 "padding-padding-padding");
        srvs[j] = namebuf[j];
        memset(&servers[j], 0, sizeof(servers[j]));
        servers[j].ident = namebuf[j];
    }
    fake_servers(&f, 0, servers, states, slots, N);
    for (uint32_t j = 0; j < N; j++)
        ctr_set(&server_wstats(&servers[j], 1)->requests, j);
    char *js = json_of(&f, 0, 0, &len);
    assert_true(len > (size_t)N * 250);   /* ~290 bytes per server */
    struct jval *doc = jparse_all(js, len);
    assert_non_null(doc);
    struct jval *pj = jget(doc, "big");
    assert_non_null(pj);
    assert_int_equal(pj->n, 6 + N);
    /* same length names: bytewise, so server-0000 (config last) comes first */
    assert_string_equal(pj->keys[6], srvs[N - 1]);
    assert_int_equal(jint(pj->vals[6], "requests"), N - 1);
    assert_int_equal(jint(jget(pj, srvs[5]), "requests"), 5);
    jfree(doc);
    free(js);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_rejects_malformed),
        cmocka_unit_test(test_exact_text_as_nutcracker),
        cmocka_unit_test(test_values_map_to_fields),
        cmocka_unit_test(test_names_escaped),
        cmocka_unit_test(test_server_order),
        cmocka_unit_test(test_describe_as_nutcracker),
        cmocka_unit_test(test_large_document),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
