/* tests/unit/test_slab.c: fixed-size objects in mapped chunks: zeroed, aligned, distinct,
 * reused after free, and chunks going back to the system when they empty. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/slab.h"

#define OBJ 216
#define MANY 5000

static void
test_objects_zeroed_aligned_distinct(void **state)
{
    struct slab s;
    uint8_t *p[64];

    (void)state;
    slab_init(&s, OBJ);
    assert_true(s.per_chunk >= 200);
    for (int i = 0; i < 64; i++) {
        p[i] = slab_alloc(&s);
        assert_non_null(p[i]);
        assert_int_equal((uintptr_t)p[i] % 8, 0);
        for (size_t k = 0; k < OBJ; k++)
            assert_int_equal(p[i][k], 0);
        memset(p[i], 0xa0 + i % 16, OBJ);     /* the whole object is writable */
    }
    /* no two objects overlap */
    for (int i = 0; i < 64; i++)
        for (int j = i + 1; j < 64; j++)
            assert_true(p[i] + OBJ <= p[j] || p[j] + OBJ <= p[i]);
    for (int i = 0; i < 64; i++)
        for (size_t k = 0; k < OBJ; k++)
            assert_int_equal(p[i][k], 0xa0 + i % 16);
    assert_int_equal(s.nlive, 64);
    assert_int_equal(s.nchunks, 1);

    /* a freed slot is handed out again, zeroed */
    uint8_t *again;
    slab_free(&s, p[10]);
    again = slab_alloc(&s);
    assert_ptr_equal(again, p[10]);
    for (size_t k = 0; k < OBJ; k++)
        assert_int_equal(again[k], 0);
    for (int i = 0; i < 64; i++)
        slab_free(&s, p[i]);
    assert_int_equal(s.nlive, 0);
    slab_destroy(&s);
    assert_int_equal(s.nchunks, 0);
}

static void
test_chunks_return_when_empty(void **state)
{
    struct slab s;
    void **p = calloc(MANY, sizeof(*p));

    (void)state;
    assert_non_null(p);
    slab_init(&s, OBJ);
    for (int i = 0; i < MANY; i++) {
        p[i] = slab_alloc(&s);
        assert_non_null(p[i]);
    }
    uint32_t need = (MANY + s.per_chunk - 1) / s.per_chunk;
    assert_int_equal(s.nchunks, need);

    /* free every other object: no chunk empties, none goes back */
    for (int i = 0; i < MANY; i += 2)
        slab_free(&s, p[i]);
    assert_int_equal(s.nchunks, need);
    /* new objects fill the holes before any new chunk is mapped */
    for (int i = 0; i < MANY; i += 2) {
        p[i] = slab_alloc(&s);
        assert_non_null(p[i]);
    }
    assert_int_equal(s.nchunks, need);

    /* all freed: one empty chunk is kept as the spare, the rest are unmapped */
    for (int i = MANY - 1; i >= 0; i--)
        slab_free(&s, p[i]);
    assert_int_equal(s.nlive, 0);
    assert_int_equal(s.nchunks, 1);
    slab_trim(&s);
    assert_int_equal(s.nchunks, 0);

    /* and the slab works again afterwards */
    p[0] = slab_alloc(&s);
    assert_non_null(p[0]);
    assert_int_equal(s.nchunks, 1);
    slab_free(&s, p[0]);
    slab_destroy(&s);
    assert_int_equal(s.nchunks, 0);
    free(p);
}

static void
test_destroy_with_objects_out(void **state)
{
    struct slab s;

    (void)state;
    slab_init(&s, 64);
    for (uint32_t i = 0; i < 3 * s.per_chunk + 5; i++)   /* full chunks and a partial one */
        assert_non_null(slab_alloc(&s));
    assert_int_equal(s.nchunks, 4);
    slab_destroy(&s);
    assert_int_equal(s.nchunks, 0);
    assert_int_equal(s.nlive, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_objects_zeroed_aligned_distinct),
        cmocka_unit_test(test_chunks_return_when_empty),
        cmocka_unit_test(test_destroy_with_objects_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
