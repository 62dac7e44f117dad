/* tests/unit/test_nameset.c: the set of byte strings (pub/sub channels of a client): add,
 * find, remove with the entries after it shifted back, against a plain list as the model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/nameset.h"

static void
test_add_find_del(void **state)
{
    struct nameset s = { 0 };

    (void)state;
    assert_null(nameset_find(&s, (const uint8_t *)"a", 1));
    assert_false(nameset_del(&s, (const uint8_t *)"a", 1, NULL));
    assert_int_equal(nameset_add(&s, (const uint8_t *)"news", 4, 3), 1);
    assert_int_equal(nameset_add(&s, (const uint8_t *)"news", 4, 9), 0);
    assert_int_equal(nameset_add(&s, (const uint8_t *)"", 0, 5), 1);   /* "" is a name too */
    assert_int_equal(s.n, 2);
    const struct nameset_entry *e = nameset_find(&s, (const uint8_t *)"news", 4);
    assert_non_null(e);
    assert_int_equal(e->val, 3);                     /* the first val stays */
    assert_null(nameset_find(&s, (const uint8_t *)"new", 3));
    assert_null(nameset_find(&s, (const uint8_t *)"news\0", 5));   /* binary-safe */
    uint32_t v = 0;
    assert_true(nameset_del(&s, (const uint8_t *)"news", 4, &v));
    assert_int_equal(v, 3);
    assert_null(nameset_find(&s, (const uint8_t *)"news", 4));
    assert_non_null(nameset_find(&s, (const uint8_t *)"", 0));
    assert_int_equal(s.n, 1);
    nameset_free(&s);
    assert_int_equal(s.n, 0);
    assert_null(s.slots);
}

#define NAMES 600
#define OPS 40000

/* Random adds and removals over a small name space (many collisions and wraps), each
 * checked against a list of what should be there. */
static void
test_matches_model(void **state)
{
    struct nameset s = { 0 };
    bool in[NAMES] = { false };
    uint32_t val[NAMES] = { 0 };
    uint32_t count = 0;
    uint64_t r = 88172645463325252ull;

    (void)state;
    for (int op = 0; op < OPS; op++) {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        uint32_t k = (uint32_t)(r % NAMES);
        char name[16];
        int n = snprintf(name, sizeof(name), "ch:%u", k);
        if ((r >> 32) % 3 != 0) {
            int rc = nameset_add(&s, (const uint8_t *)name, (size_t)n, (uint32_t)op);
            assert_int_equal(rc, in[k] ? 0 : 1);
            if (!in[k]) {
                in[k] = true;
                val[k] = (uint32_t)op;
                count++;
            }
        } else {
            uint32_t v = UINT32_MAX;
            assert_int_equal(nameset_del(&s, (const uint8_t *)name, (size_t)n, &v), in[k]);
            if (in[k]) {
                assert_int_equal(v, val[k]);
                in[k] = false;
                count--;
            }
        }
        assert_int_equal(s.n, count);
        if (op % 997 == 0) {
            for (uint32_t j = 0; j < NAMES; j++) {
                n = snprintf(name, sizeof(name), "ch:%u", j);
                const struct nameset_entry *e = nameset_find(&s, (const uint8_t *)name, (size_t)n);
                assert_int_equal(e != NULL, in[j]);
                if (e != NULL)
                    assert_int_equal(e->val, val[j]);
            }
        }
    }
    /* never fuller than 3/4 */
    assert_true((uint64_t)s.n * 4 <= (uint64_t)s.cap * 3);
    nameset_free(&s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_find_del),
        cmocka_unit_test(test_matches_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
