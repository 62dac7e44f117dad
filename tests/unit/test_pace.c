/* tests/unit/test_pace.c: the pacer naps only while napping measures clearly cheaper per
 * reply, tries the other way every PACE_PROBE_EVERY epochs, waits for PACE_SETTLE busy
 * epochs before its first try, and blocks under light load. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/pace.h"

#define BUSY (PACE_MIN_REPLIES * 4)

/* One epoch of `replies` replies, costing block_ns or nap_ns of CPU each depending on
 * the way the pacer chose for it; returns the way it chooses for the next. */
static bool
epoch(struct pace *p, uint64_t block_ns, uint64_t nap_ns, uint64_t replies)
{
    uint64_t each = p->nap ? nap_ns : block_ns;
    return pace_epoch(p, each * replies, replies);
}

/* The busy epochs before the first try: the pacer blocks through them. */
static void
settle(struct pace *p, uint64_t block_ns, uint64_t nap_ns)
{
    for (unsigned i = 0; i + 1 < PACE_SETTLE; i++)
        assert_false(epoch(p, block_ns, nap_ns, BUSY));
}

static void
test_fixed_policies_ignore_measurements(void **state)
{
    struct pace p;

    (void)state;
    pace_init(&p, PACE_BLOCK);
    for (int i = 0; i < 100; i++)
        assert_false(epoch(&p, 10000, 1000, i % 2 ? BUSY : 0));
    pace_init(&p, PACE_NAP);
    assert_true(p.nap);
    for (int i = 0; i < 100; i++)
        assert_true(epoch(&p, 1000, 10000, i % 2 ? BUSY : 0));
}

static void
test_starts_blocking_and_light_load_never_naps(void **state)
{
    struct pace p;

    (void)state;
    pace_init(&p, PACE_AUTO);
    assert_false(p.nap);
    /* napping would be far cheaper, but there is too little traffic to trade latency */
    for (int i = 0; i < 100; i++)
        assert_false(epoch(&p, 10000, 1000, PACE_MIN_REPLIES - 1));
    assert_int_equal(p.cost[0], 0);
    assert_int_equal(p.cost[1], 0);
}

static void
test_naps_when_cheaper_and_keeps_checking(void **state)
{
    struct pace p;

    (void)state;
    pace_init(&p, PACE_AUTO);
    settle(&p, 10000, 6000);
    /* load has lasted: blocking measured, napping unknown, so it is tried now */
    assert_true(epoch(&p, 10000, 6000, BUSY));
    assert_true(p.probing);
    /* the try measured cheaper: the pacer stays napping */
    assert_true(epoch(&p, 10000, 6000, BUSY));
    assert_false(p.probing);
    assert_int_equal(p.cost[0], 10000);
    assert_int_equal(p.cost[1], 6000);
    /* after PACE_PROBE_EVERY epochs napping, blocking is tried again for one epoch */
    int blocked = 0;
    for (unsigned i = 0; i < (PACE_PROBE_EVERY + 1) * 4; i++)
        blocked += !epoch(&p, 10000, 6000, BUSY);
    assert_int_equal(blocked, 4);
}

static void
test_blocks_when_napping_is_dearer_or_barely_cheaper(void **state)
{
    struct pace p;
    /* napping 20% dearer; then 5% cheaper, inside the margin; then exactly at it */
    const uint64_t nap_cost[] = { 12000, 9500, 10000 * PACE_GAIN_PCT / 100 + 1 };

    (void)state;
    for (unsigned k = 0; k < sizeof(nap_cost) / sizeof(nap_cost[0]); k++) {
        pace_init(&p, PACE_AUTO);
        settle(&p, 10000, nap_cost[k]);
        int napped = 0;
        for (unsigned i = 0; i < (PACE_PROBE_EVERY + 1) * 4 + 1; i++)
            napped += epoch(&p, 10000, nap_cost[k], BUSY);
        /* only the tries: the first one and one every PACE_PROBE_EVERY epochs after */
        assert_int_equal(napped, 5);
    }
    /* at the margin it naps */
    pace_init(&p, PACE_AUTO);
    settle(&p, 10000, 10000 * PACE_GAIN_PCT / 100);
    epoch(&p, 10000, 10000 * PACE_GAIN_PCT / 100, BUSY);
    assert_true(epoch(&p, 10000, 10000 * PACE_GAIN_PCT / 100, BUSY));
    assert_false(p.probing);
}

static void
test_follows_a_change_in_the_load(void **state)
{
    struct pace p;
    int napped = 0;

    (void)state;
    pace_init(&p, PACE_AUTO);
    settle(&p, 10000, 5000);
    for (int i = 0; i < 8; i++)
        epoch(&p, 10000, 5000, BUSY);
    assert_true(p.nap);
    assert_false(p.probing);
    /* the same traffic now costs more napping than blocking: after the next try of
     * blocking it blocks, napping again only for the tries */
    for (unsigned i = 0; i < (PACE_PROBE_EVERY + 1) * 2; i++)
        epoch(&p, 5000, 10000, BUSY);
    for (unsigned i = 0; i < PACE_PROBE_EVERY + 1; i++)
        napped += epoch(&p, 5000, 10000, BUSY);
    assert_int_equal(napped, 1);
}

static void
test_load_drop_while_napping(void **state)
{
    struct pace p;

    (void)state;
    pace_init(&p, PACE_AUTO);
    settle(&p, 10000, 5000);
    epoch(&p, 10000, 5000, BUSY);
    epoch(&p, 10000, 5000, BUSY);
    assert_true(p.nap);
    /* fewer replies while napping (its own cost in a closed loop) is measured, not reset */
    assert_true(epoch(&p, 10000, 5000, PACE_MIN_REPLIES / 2));
    assert_int_not_equal(p.cost[0], 0);
    /* traffic nearly gone: back to blocking, and what was learnt is dropped */
    assert_false(epoch(&p, 10000, 5000, PACE_MIN_REPLIES / 4 - 1));
    assert_int_equal(p.cost[0], 0);
    assert_int_equal(p.cost[1], 0);
    /* no replies at all */
    assert_false(epoch(&p, 10000, 5000, 0));
}

static void
test_short_burst_never_naps(void **state)
{
    struct pace p;

    (void)state;
    pace_init(&p, PACE_AUTO);
    /* bursts shorter than PACE_SETTLE epochs, with light epochs between them */
    for (int burst = 0; burst < 10; burst++) {
        settle(&p, 10000, 1000);
        assert_false(epoch(&p, 10000, 1000, PACE_MIN_REPLIES - 1));
    }
    assert_int_equal(p.cost[1], 0);
}

static void
test_policy_names(void **state)
{
    (void)state;
    assert_int_equal(pace_from_name("auto", 4), PACE_AUTO);
    assert_int_equal(pace_from_name("block", 5), PACE_BLOCK);
    assert_int_equal(pace_from_name("nap", 3), PACE_NAP);
    assert_int_equal(pace_from_name("", 0), -1);
    assert_int_equal(pace_from_name("Nap", 3), -1);
    assert_int_equal(pace_from_name("naps", 4), -1);
    assert_int_equal(pace_from_name("napping", 3), PACE_NAP);   /* only len bytes count */
    assert_int_equal(pace_from_name(NULL, 0), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_policies_ignore_measurements),
        cmocka_unit_test(test_starts_blocking_and_light_load_never_naps),
        cmocka_unit_test(test_naps_when_cheaper_and_keeps_checking),
        cmocka_unit_test(test_blocks_when_napping_is_dearer_or_barely_cheaper),
        cmocka_unit_test(test_follows_a_change_in_the_load),
        cmocka_unit_test(test_load_drop_while_napping),
        cmocka_unit_test(test_short_burst_never_naps),
        cmocka_unit_test(test_policy_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
