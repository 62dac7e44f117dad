/* tests/unit/test_route.c: routing against nutcracker 0.5.0's observed placements, plus random, ejection and edges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/common.h"
#include "route/route.h"

#ifndef KM_TEST_DATA
#define KM_TEST_DATA "tests/data"
#endif

#define GOLDEN_PATH     KM_TEST_DATA "/placement_golden.txt"
#define GOLDEN_MAX_SRV  16
#define GOLDEN_MAX_KEY  512
#define GOLDEN_LINE     2048
#define GOLDEN_MAX_SHOW 10   /* mismatches printed per config */

/* How a golden run derives the ketama names (the second is a negative control). */
enum name_rule {
    NAME_TWEMPROXY,   /* configured name, else host:port, else host when port is 11211 */
    NAME_ALWAYS_PORT, /* configured name, else host:port even for 11211 */
};

/* One config block of the golden table while it is being read. */
struct golden_config {
    char name[128];                           /* config label */
    char hash[32];                            /* twemproxy hash name */
    char dist[32];                            /* twemproxy distribution name */
    char tag[3];                              /* hash_tag, "" when none */
    uint32_t nserver;                         /* servers so far */
    char ident[GOLDEN_MAX_SRV][160];          /* ketama name per server */
    bool port_11211[GOLDEN_MAX_SRV];          /* unnamed and on port 11211 */
    struct route_server srv[GOLDEN_MAX_SRV];  /* route_build input */
    struct route route;                       /* built at the first key */
    bool built;                               /* route is built */
};

/* Totals of one pass over the table. */
struct golden_result {
    uint32_t configs;          /* config blocks checked */
    uint32_t rows;             /* key rows checked */
    uint32_t mismatches;       /* rows where keymux disagreed */
    uint32_t rows_11211;       /* rows of configs with an unnamed 11211 server */
    uint32_t mismatches_11211; /* ... of which disagreed */
};

static int
hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/* Copy a table field, failing the test when it does not fit. */
static void
copy_field(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);

    if (n >= cap) {
        fail_msg("golden table: field too long: '%s'", src);
    }
    memcpy(dst, src, n + 1);
}

/* Decode hex (or "-" for the empty key) into out; returns the length or -1. */
static int
unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex);

    if (strcmp(hex, "-") == 0) {
        return 0;
    }
    if (n % 2 != 0 || n / 2 > cap) {
        return -1;
    }
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            return -1;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return (int)(n / 2);
}

/* "host:port:weight [name]" -> ketama identity and weight, per the rule. */
static void
golden_add_server(struct golden_config *c, const char *spec, enum name_rule rule)
{
    char host[128], name[128] = "";
    unsigned port, weight;
    uint32_t i = c->nserver;

    assert_true(i < GOLDEN_MAX_SRV);
    if (sscanf(spec, "%127[^:]:%u:%u %127s", host, &port, &weight, name) < 3) {
        fail_msg("golden table: bad server line '%s'", spec);
    }
    c->port_11211[i] = false;
    if (name[0] != '\0') {
        copy_field(c->ident[i], sizeof(c->ident[i]), name);
    } else if (port == 11211 && rule == NAME_TWEMPROXY) {
        copy_field(c->ident[i], sizeof(c->ident[i]), host);
        c->port_11211[i] = true;
    } else {
        snprintf(c->ident[i], sizeof(c->ident[i]), "%s:%u", host, port);
        c->port_11211[i] = port == 11211;
    }
    c->srv[i].name = c->ident[i];
    c->srv[i].name_len = strlen(c->ident[i]);
    c->srv[i].weight = weight;
    c->srv[i].live = true;
    c->nserver++;
}

static void
golden_build(struct golden_config *c)
{
    int hash = hash_from_name(c->hash, strlen(c->hash));
    int dist = dist_from_name(c->dist, strlen(c->dist));

    if (hash < 0 || dist < 0) {
        fail_msg("golden config %s: unknown hash '%s' or dist '%s'", c->name, c->hash, c->dist);
    }
    assert_int_equal(route_init(&c->route, (enum hash_type)hash, (enum dist_type)dist,
                                c->tag[0] != '\0' ? c->tag : NULL), KM_OK);
    assert_int_equal(route_build(&c->route, c->srv, c->nserver), KM_OK);
    c->built = true;
}

/* Check every row of the golden table; prints each disagreement (bounded per config). */
static void
golden_run(enum name_rule rule, bool verbose, struct golden_result *res)
{
    FILE *f = fopen(GOLDEN_PATH, "r");
    char line[GOLDEN_LINE];
    struct golden_config *c = calloc(1, sizeof(*c));
    bool in_config = false, has_11211 = false;
    uint32_t shown = 0;
    uint8_t key[GOLDEN_MAX_KEY];

    memset(res, 0, sizeof(*res));
    if (f == NULL) {
        fail_msg("cannot open %s", GOLDEN_PATH);
    }
    assert_non_null(c);

    while (fgets(line, sizeof(line), f) != NULL) {
        char word[16], arg[GOLDEN_LINE];
        size_t n = strlen(line);

        if (n > 0 && line[n - 1] != '\n' && !feof(f)) {
            fail_msg("golden table: line too long");
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
            line[--n] = '\0';
        }
        if (n == 0 || line[0] == '#') {
            continue;
        }
        arg[0] = '\0';
        if (sscanf(line, "%15s %2047[^\n]", word, arg) < 1) {
            continue;
        }

        if (strcmp(word, "config") == 0) {
            assert_false(in_config);
            memset(c, 0, sizeof(*c));
            copy_field(c->name, sizeof(c->name), arg);
            in_config = true;
            has_11211 = false;
            shown = 0;
        } else if (!in_config) {
            fail_msg("golden table: '%s' outside a config", line);
        } else if (strcmp(word, "proto") == 0) {
            /* placement does not depend on the protocol */
        } else if (strcmp(word, "hash") == 0) {
            copy_field(c->hash, sizeof(c->hash), arg);
        } else if (strcmp(word, "dist") == 0) {
            copy_field(c->dist, sizeof(c->dist), arg);
        } else if (strcmp(word, "tag") == 0) {
            if (strcmp(arg, "-") != 0) {
                assert_int_equal(unhex(arg, (uint8_t *)c->tag, 2), 2);
                c->tag[2] = '\0';
            }
        } else if (strcmp(word, "server") == 0) {
            golden_add_server(c, arg, rule);
            has_11211 = has_11211 || c->port_11211[c->nserver - 1];
        } else if (strcmp(word, "down") == 0) {
            unsigned idx = (unsigned)atoi(arg);

            assert_true(idx < c->nserver);
            c->srv[idx].live = false;
        } else if (strcmp(word, "k") == 0) {
            char hex[GOLDEN_LINE];
            int want, got, len;

            if (sscanf(arg, "%2047s %d", hex, &want) != 2) {
                fail_msg("golden config %s: bad row '%s'", c->name, line);
            }
            len = unhex(hex, key, sizeof(key));
            if (len < 0) {
                fail_msg("golden config %s: bad key hex '%s'", c->name, hex);
            }
            if (!c->built) {
                golden_build(c);
            }
            got = route_key(&c->route, key, (size_t)len);
            res->rows++;
            res->rows_11211 += has_11211;
            if (got != want) {
                res->mismatches++;
                res->mismatches_11211 += has_11211;
                if (verbose && shown++ < GOLDEN_MAX_SHOW) {
                    fprintf(stderr, "config %s: key %s: nutcracker server %d, keymux server %d\n",
                            c->name, hex, want, got);
                }
            }
        } else if (strcmp(word, "end") == 0) {
            if (c->built) {
                route_free(&c->route);
            }
            in_config = false;
            res->configs++;
        } else {
            fail_msg("golden table: unknown line '%s'", line);
        }
    }
    assert_false(in_config);
    fclose(f);
    free(c);
}

/* The proof: every key lands where nutcracker 0.5.0 put it. */
static void
test_golden_placement(void **state)
{
    struct golden_result res;

    (void)state;
    golden_run(NAME_TWEMPROXY, true, &res);
    fprintf(stderr, "golden: %u configs, %u rows, %u mismatches\n", res.configs, res.rows,
            res.mismatches);
    /* the table must really be there: 12 hashes x 2 distributions and more */
    assert_true(res.configs >= 24);
    assert_true(res.rows >= 24 * 200);
    assert_true(res.rows_11211 > 0);
    assert_int_equal(res.mismatches, 0);
}

/* Negative control: keeping ":11211" in the ketama name must disagree with nutcracker. */
static void
test_golden_port_11211_rule_is_observed(void **state)
{
    struct golden_result res;

    (void)state;
    golden_run(NAME_ALWAYS_PORT, false, &res);
    assert_true(res.rows_11211 > 0);
    assert_true(res.mismatches_11211 > res.rows_11211 / 4);
}

static void
servers_init(struct route_server *s, uint32_t n, char names[][32], const uint32_t *weights)
{
    for (uint32_t i = 0; i < n; i++) {
        snprintf(names[i], 32, "10.0.0.%u:6379", i + 1);
        s[i].name = names[i];
        s[i].name_len = strlen(names[i]);
        s[i].weight = weights != NULL ? weights[i] : 1;
        s[i].live = true;
    }
}

static void
test_random_live_only_and_spread(void **state)
{
    struct route r;
    struct route_server s[5];
    char names[5][32];
    uint32_t count[5] = { 0 };
    const uint32_t draws = 30000;
    const uint32_t weights[5] = { 1, 100, 1, 7, 1 };   /* random ignores weights */

    (void)state;
    servers_init(s, 5, names, weights);
    s[1].live = false;
    s[3].live = false;
    assert_int_equal(route_init(&r, HASH_FNV1A_64, DIST_RANDOM, NULL), KM_OK);
    route_seed(&r, 12345);
    assert_int_equal(route_build(&r, s, 5), KM_OK);
    assert_int_equal(route_live(&r), 3);
    for (uint32_t i = 0; i < draws; i++) {
        int idx = route_key(&r, (const uint8_t *)"same-key", 8);

        assert_true(idx >= 0 && idx < 5);
        count[idx]++;
    }
    assert_int_equal(count[1], 0);
    assert_int_equal(count[3], 0);
    for (int i = 0; i < 5; i += 2) {
        /* each live server near a third: 10000 +- 8 sigma */
        if (count[i] < 9300 || count[i] > 10700) {
            fail_msg("random: server %d got %u of %u", i, count[i], draws);
        }
    }
    route_free(&r);
}

static void
test_random_seed_repeatable(void **state)
{
    struct route a, b;
    struct route_server s[4];
    char names[4][32];
    int differ = 0;

    (void)state;
    servers_init(s, 4, names, NULL);
    assert_int_equal(route_init(&a, HASH_MD5, DIST_RANDOM, NULL), KM_OK);
    assert_int_equal(route_init(&b, HASH_MD5, DIST_RANDOM, NULL), KM_OK);
    route_seed(&a, 7);
    route_seed(&b, 7);
    assert_int_equal(route_build(&a, s, 4), KM_OK);
    assert_int_equal(route_build(&b, s, 4), KM_OK);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(route_key(&a, NULL, 0), route_key(&b, NULL, 0));
    }
    route_seed(&b, 8);
    for (int i = 0; i < 1000; i++) {
        differ += route_key(&a, NULL, 0) != route_key(&b, NULL, 0);
    }
    assert_true(differ > 100);
    route_free(&a);
    route_free(&b);
}

/* No live server -> -1 for every distribution; an empty build too. */
static void
test_no_live_server(void **state)
{
    struct route_server s[3];
    char names[3][32];

    (void)state;
    servers_init(s, 3, names, NULL);
    for (int d = 0; d < DIST_COUNT; d++) {
        struct route r;

        assert_int_equal(route_init(&r, HASH_FNV1A_64, (enum dist_type)d, NULL), KM_OK);
        assert_int_equal(route_key(&r, (const uint8_t *)"k", 1), -1);   /* never built */
        for (int i = 0; i < 3; i++) {
            s[i].live = false;
        }
        assert_int_equal(route_build(&r, s, 3), KM_OK);
        assert_int_equal(route_live(&r), 0);
        assert_int_equal(route_key(&r, (const uint8_t *)"k", 1), -1);
        s[2].live = true;   /* one comes back */
        assert_int_equal(route_build(&r, s, 3), KM_OK);
        assert_int_equal(route_key(&r, (const uint8_t *)"k", 1), 2);
        assert_int_equal(route_build(&r, NULL, 0), KM_OK);
        assert_int_equal(route_key(&r, (const uint8_t *)"k", 1), -1);
        route_free(&r);
    }
}

static void
test_single_server(void **state)
{
    struct route r;
    struct route_server s[1];
    char names[1][32];

    (void)state;
    servers_init(s, 1, names, NULL);
    for (int d = 0; d < DIST_COUNT; d++) {
        assert_int_equal(route_init(&r, HASH_CRC32, (enum dist_type)d, "{}"), KM_OK);
        assert_int_equal(route_build(&r, s, 1), KM_OK);
        assert_int_equal(route_key(&r, (const uint8_t *)"anything", 8), 0);
        assert_int_equal(route_key(&r, NULL, 0), 0);
        route_free(&r);
    }
}

/*
 * twemproxy's hash_tag rule: the first open byte, then the first close byte
 * after it, with at least one byte between; otherwise the whole key. The
 * empty key hashes to 0. (Checked end to end by the *-tag golden configs.)
 */
static void
test_hash_tag_rule(void **state)
{
    static const struct {
        const char *key;
        const char *hashed;   /* the bytes that must be hashed */
    } v[] = {
        { "{user1000}.following", "user1000" },
        { "foo{bar}baz", "bar" },
        { "{a}{b}", "a" },
        { "foo{{bar}}zap", "{bar" },
        { "x}y{z}", "z" },
        { "{}", "{}" },
        { "a{}b", "a{}b" },
        { "foo{}{bar}", "foo{}{bar}" },
        { "{abc", "{abc" },
        { "abc}", "abc}" },
        { "}{", "}{" },
        { "plain", "plain" },
    };
    struct route r;

    (void)state;
    assert_int_equal(route_init(&r, HASH_FNV1A_64, DIST_KETAMA, "{}"), KM_OK);
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        uint32_t got = route_hash(&r, (const uint8_t *)v[i].key, strlen(v[i].key));
        uint32_t want = hash_key(HASH_FNV1A_64, (const uint8_t *)v[i].hashed, strlen(v[i].hashed));

        if (got != want) {
            fail_msg("hash_tag: key '%s' should hash '%s': want 0x%08x got 0x%08x", v[i].key,
                     v[i].hashed, want, got);
        }
    }
    assert_int_equal(route_hash(&r, (const uint8_t *)"", 0), 0);
    route_free(&r);

    /* same open and close byte */
    assert_int_equal(route_init(&r, HASH_MD5, DIST_MODULA, "$$"), KM_OK);
    assert_int_equal(route_hash(&r, (const uint8_t *)"$tag$rest", 9),
                     hash_key(HASH_MD5, (const uint8_t *)"tag", 3));
    assert_int_equal(route_hash(&r, (const uint8_t *)"a$$b", 4),
                     hash_key(HASH_MD5, (const uint8_t *)"a$$b", 4));
    route_free(&r);

    /* no tag: whole key, and the empty key is still 0 */
    assert_int_equal(route_init(&r, HASH_FNV1A_64, DIST_MODULA, NULL), KM_OK);
    assert_int_equal(route_hash(&r, (const uint8_t *)"{a}", 3),
                     hash_key(HASH_FNV1A_64, (const uint8_t *)"{a}", 3));
    assert_int_equal(route_hash(&r, NULL, 0), 0);
    route_free(&r);
}

/* With equal weights an ejection moves only the ejected server's keys (ketama). */
static void
test_ketama_ejection_moves_only_dead_keys(void **state)
{
    struct route before, after;
    struct route_server s[6];
    char names[6][32];
    uint32_t moved = 0;
    char key[32];

    (void)state;
    servers_init(s, 6, names, NULL);
    assert_int_equal(route_init(&before, HASH_MURMUR, DIST_KETAMA, NULL), KM_OK);
    assert_int_equal(route_init(&after, HASH_MURMUR, DIST_KETAMA, NULL), KM_OK);
    assert_int_equal(route_build(&before, s, 6), KM_OK);
    s[4].live = false;
    assert_int_equal(route_build(&after, s, 6), KM_OK);
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(key, sizeof(key), "k%d", i);
        int a = route_key(&before, (const uint8_t *)key, (size_t)n);
        int b = route_key(&after, (const uint8_t *)key, (size_t)n);

        assert_int_not_equal(b, 4);
        if (a != 4) {
            assert_int_equal(a, b);
        } else {
            moved++;
        }
    }
    assert_true(moved > 5000 / 6 / 2);   /* server 4 did own keys */
    route_free(&before);
    route_free(&after);
}

/* The ketama search against the definition: the first point at or past the key's hash,
 * or the first point when the hash is past the last. Any ring size, including those where
 * a halving search has odd remainders, and keys that hash past the last point. */
static void
test_ketama_search_is_first_point_at_or_past(void **state)
{
    struct route_server s[7];
    char names[7][32];
    char key[32];

    (void)state;
    servers_init(s, 7, names, NULL);
    for (uint32_t nsrv = 2; nsrv <= 7; nsrv++) {
        struct route r;
        uint32_t wrapped = 0;

        assert_int_equal(route_init(&r, HASH_FNV1A_64, DIST_KETAMA, NULL), KM_OK);
        assert_int_equal(route_build(&r, s, nsrv), KM_OK);
        assert_true(r.nslot >= nsrv);
        for (int i = 0; i < 5000; i++) {
            int n = snprintf(key, sizeof(key), "key:%d", i);
            uint32_t h = hash_key(HASH_FNV1A_64, (const uint8_t *)key, (size_t)n);
            uint32_t at = 0;

            while (at < r.nslot && r.point[at] < h)
                at++;
            assert_int_equal(route_key(&r, (const uint8_t *)key, (size_t)n),
                             (int)r.slot_server[at == r.nslot ? 0 : at]);
        }
        /* past the last point, on to the first: the 0.06% of hashes there are found by
         * looking (a bounded search) */
        for (int i = 0; i < 4000000 && wrapped < 5; i++) {
            int n = snprintf(key, sizeof(key), "wrap:%d", i);
            uint32_t h = hash_key(HASH_FNV1A_64, (const uint8_t *)key, (size_t)n);

            if (h > r.point[r.nslot - 1]) {
                assert_int_equal(route_key(&r, (const uint8_t *)key, (size_t)n),
                                 (int)r.slot_server[0]);
                wrapped++;
            }
        }
        assert_int_equal(wrapped, 5);
        route_free(&r);
    }
}

/* Modula: weights are slot repeats in config order, dead servers hold none. */
static void
test_modula_slots(void **state)
{
    struct route r;
    struct route_server s[3];
    char names[3][32];
    const uint32_t weights[3] = { 2, 1, 3 };
    const uint32_t want[6] = { 0, 0, 1, 2, 2, 2 };
    const uint32_t want_dead1[5] = { 0, 0, 2, 2, 2 };

    (void)state;
    servers_init(s, 3, names, weights);
    assert_int_equal(route_init(&r, HASH_FNV1A_64, DIST_MODULA, NULL), KM_OK);
    assert_int_equal(route_build(&r, s, 3), KM_OK);
    assert_int_equal(r.nslot, 6);
    for (uint32_t i = 0; i < 6; i++) {
        assert_int_equal(r.slot_server[i], want[i]);
    }
    s[1].live = false;
    assert_int_equal(route_build(&r, s, 3), KM_OK);
    assert_int_equal(r.nslot, 5);
    for (uint32_t i = 0; i < 5; i++) {
        assert_int_equal(r.slot_server[i], want_dead1[i]);
    }
    route_free(&r);
}

/* A failed rebuild leaves the previous routing in place. */
static void
test_failed_build_keeps_old(void **state)
{
    struct route r;
    struct route_server s[2];
    char names[2][32];
    const uint32_t huge[2] = { 1u << 30, 1u << 30 };
    int before;

    (void)state;
    servers_init(s, 2, names, NULL);
    assert_int_equal(route_init(&r, HASH_FNV1A_64, DIST_MODULA, NULL), KM_OK);
    assert_int_equal(route_build(&r, s, 2), KM_OK);
    before = route_key(&r, (const uint8_t *)"x", 1);
    s[0].weight = huge[0];
    s[1].weight = huge[1];
    assert_int_equal(route_build(&r, s, 2), KM_ERROR);
    assert_int_equal(r.nslot, 2);
    assert_int_equal(route_key(&r, (const uint8_t *)"x", 1), before);
    route_free(&r);
}

static void
test_init_and_names(void **state)
{
    struct route r;

    (void)state;
    assert_int_equal(dist_from_name("ketama", 6), DIST_KETAMA);
    assert_int_equal(dist_from_name("modula", 6), DIST_MODULA);
    assert_int_equal(dist_from_name("random", 6), DIST_RANDOM);
    assert_int_equal(dist_from_name("Ketama", 6), -1);
    assert_int_equal(dist_from_name("vnode", 5), -1);
    assert_int_equal(dist_from_name("ketam", 5), -1);
    assert_string_equal(dist_name(DIST_MODULA), "modula");
    assert_null(dist_name(DIST_COUNT));
    assert_int_equal(route_init(&r, HASH_COUNT, DIST_KETAMA, NULL), KM_ERROR);
    route_free(&r);
    assert_int_equal(route_init(&r, HASH_MD5, DIST_COUNT, NULL), KM_ERROR);
    route_free(&r);
    assert_int_equal(route_init(&r, HASH_MD5, DIST_KETAMA, "{"), KM_ERROR);
    route_free(&r);
    assert_int_equal(route_init(&r, HASH_MD5, DIST_KETAMA, "{}}"), KM_ERROR);
    route_free(&r);
    assert_int_equal(route_init(&r, HASH_MD5, DIST_KETAMA, "{}"), KM_OK);
    route_free(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_placement),
        cmocka_unit_test(test_golden_port_11211_rule_is_observed),
        cmocka_unit_test(test_random_live_only_and_spread),
        cmocka_unit_test(test_random_seed_repeatable),
        cmocka_unit_test(test_no_live_server),
        cmocka_unit_test(test_single_server),
        cmocka_unit_test(test_hash_tag_rule),
        cmocka_unit_test(test_ketama_ejection_moves_only_dead_keys),
        cmocka_unit_test(test_ketama_search_is_first_point_at_or_past),
        cmocka_unit_test(test_modula_slots),
        cmocka_unit_test(test_failed_build_keeps_old),
        cmocka_unit_test(test_init_and_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
