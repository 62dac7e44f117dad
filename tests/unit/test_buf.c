/* tests/unit/test_buf.c: segments, spans and input chains: references, walking across
 * segments, gathering into iovecs, and memory going back to the pool. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/common.h"
#include "proto/msg.h"

#define SEG 16

/* Append the bytes to the chain as a reader would, segment by segment. */
static void
feed(struct chain *c, struct bufpool *p, const char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        size_t room;
        uint8_t *dst = chain_space(c, p, &room);
        assert_non_null(dst);
        size_t take = n < room ? n : room;
        memcpy(dst, s, take);
        chain_commit(c, take);
        s += take;
        n -= take;
    }
}

static void
test_get_unref_free_list_bound(void **state)
{
    struct bufpool p;
    struct buf *b[8];

    (void)state;
    bufpool_init(&p, SEG, 2);
    for (int i = 0; i < 8; i++) {
        b[i] = buf_get(&p);
        assert_non_null(b[i]);
        assert_int_equal(b[i]->refs, 1);
        assert_int_equal(b[i]->len, 0);
        assert_int_equal(bufpool_held(&p), (uint64_t)(i + 1) * SEG);
    }
    assert_int_equal(p.nlive, 8);
    for (int i = 0; i < 8; i++)
        buf_unref(b[i]);
    /* only max_free stay; the rest went back to the system; idle ones are not held */
    assert_int_equal(p.nfree, 2);
    assert_int_equal(p.nlive, 2);
    assert_int_equal(bufpool_held(&p), 0);
    /* reuse comes from the free list */
    struct buf *again = buf_get(&p);
    assert_int_equal(p.nfree, 1);
    assert_int_equal(p.nlive, 2);
    assert_int_equal(bufpool_held(&p), SEG);
    buf_unref(again);
    bufpool_destroy(&p);
    assert_int_equal(p.nlive, 0);
}

static void
test_trim_gives_back_what_was_not_needed(void **state)
{
    struct bufpool p;
    struct buf *b[64];

    (void)state;
    bufpool_init(&p, SEG, 64);
    /* a burst: 64 segments out and back */
    for (int i = 0; i < 64; i++)
        b[i] = buf_get(&p);
    for (int i = 0; i < 64; i++)
        buf_unref(b[i]);
    assert_int_equal(p.nfree, 64);
    /* the burst drew the list down to 0: nothing is spare yet */
    assert_int_equal(bufpool_trim(&p), 0);
    assert_int_equal(p.nfree, 64);
    /* steady traffic of 8 at a time for a period: 56 were never needed */
    for (int i = 0; i < 8; i++)
        b[i] = buf_get(&p);
    for (int i = 0; i < 8; i++)
        buf_unref(b[i]);
    assert_int_equal(bufpool_trim(&p), 56);
    assert_int_equal(p.nfree, 8);
    assert_int_equal(p.nlive, 8);
    /* an idle period: the rest goes too */
    assert_int_equal(bufpool_trim(&p), 8);
    assert_int_equal(p.nlive, 0);
    bufpool_destroy(&p);
}

static void
test_span_across_segments(void **state)
{
    struct bufpool p;
    struct chain c;
    char out[64];

    (void)state;
    bufpool_init(&p, SEG, 4);
    memset(&c, 0, sizeof(c));
    feed(&c, &p, "0123456789abcdefGHIJKLMNOPQRSTUVwxyz");   /* 36 bytes: 3 segments */
    assert_ptr_not_equal(c.head, c.tail);
    assert_int_equal(c.end_abs, 36);

    struct span s = { c.head, 10, 20 };                      /* "abcdefGHIJKLMNOPQRST" */
    span_hold(&s);
    assert_int_equal(c.head->refs, 2);
    assert_int_equal(c.head->next->refs, 2);
    assert_int_equal(c.tail->refs, 1);                        /* not covered */

    memset(out, 0, sizeof(out));
    assert_int_equal(span_copy(&s, 0, out, sizeof(out)), 20);
    assert_string_equal(out, "abcdefGHIJKLMNOPQRST");
    memset(out, 0, sizeof(out));
    assert_int_equal(span_copy(&s, 7, out, 5), 5);
    assert_string_equal(out, "HIJKL");

    struct iovec iov[4];
    int niov = 0;
    assert_int_equal(span_iov(&s, 3, iov, 4, &niov), 17);
    assert_int_equal(niov, 2);
    assert_int_equal(iov[0].iov_len, 3);
    assert_memory_equal(iov[0].iov_base, "def", 3);
    assert_int_equal(iov[1].iov_len, 14);

    /* the chain lets go; the span keeps its two segments alive */
    chain_release(&c);
    assert_int_equal(p.nlive, 3);
    assert_int_equal(p.nfree, 1);
    memset(out, 0, sizeof(out));
    span_copy(&s, 0, out, sizeof(out));
    assert_string_equal(out, "abcdefGHIJKLMNOPQRST");
    span_release(&s);
    assert_int_equal(p.nfree, 3);
    bufpool_destroy(&p);
    assert_int_equal(p.nlive, 0);
}

static void
test_iov_merges_adjacent(void **state)
{
    struct bufpool p;
    struct chain c;
    struct iovec iov[4];
    int niov = 0;

    (void)state;
    bufpool_init(&p, SEG, 4);
    memset(&c, 0, sizeof(c));
    feed(&c, &p, "hello world");
    struct span a = { c.head, 0, 5 }, b = { c.head, 5, 6 };
    span_iov(&a, 0, iov, 4, &niov);
    span_iov(&b, 0, iov, 4, &niov);
    assert_int_equal(niov, 1);
    assert_int_equal(iov[0].iov_len, 11);
    /* a full iov array stops the walk and reports what fitted */
    niov = 0;
    struct span whole = { c.head, 0, 11 };
    assert_int_equal(span_iov(&whole, 0, iov, 0, &niov), 0);
    chain_release(&c);
    bufpool_destroy(&p);
}

static void
test_chain_locate_consume(void **state)
{
    struct bufpool p;
    struct chain c;
    struct buf *b;
    uint64_t babs;
    uint32_t off;

    (void)state;
    bufpool_init(&p, SEG, 8);
    memset(&c, 0, sizeof(c));
    feed(&c, &p, "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCC");
    b = c.head;
    babs = c.head_abs;
    chain_locate(&b, &babs, 5, &off);
    assert_ptr_equal(b, c.head);
    assert_int_equal(off, 5);
    chain_locate(&b, &babs, 16, &off);
    assert_ptr_equal(b, c.head->next);
    assert_int_equal(off, 0);
    chain_locate(&b, &babs, 35, &off);
    assert_ptr_equal(b, c.tail);
    assert_int_equal(off, 3);

    /* parse 20 bytes, consume: the first segment is dropped */
    chain_advance(&c, 16);
    chain_advance(&c, 4);
    assert_int_equal(c.pabs, 20);
    struct buf *second = c.head->next;
    chain_consume(&c);
    assert_ptr_equal(c.head, second);
    assert_int_equal(c.hoff, 4);
    assert_int_equal(c.head_abs, 16);
    assert_int_equal(p.nfree, 1);
    assert_false(chain_drained(&c));
    chain_advance(&c, 12);
    chain_advance(&c, 4);
    chain_consume(&c);
    assert_true(chain_drained(&c));
    chain_release(&c);
    assert_int_equal(p.nfree, 3);
    /* after release a new read starts a fresh segment at the same stream offset */
    feed(&c, &p, "x");
    assert_int_equal(c.head_abs, 36);
    assert_int_equal(c.end_abs, 37);
    chain_release(&c);
    bufpool_destroy(&p);
}

static void
test_scratch_and_msg_out(void **state)
{
    struct bufpool p;
    struct msgcache mc;

    (void)state;
    bufpool_init(&p, 512, 4);
    msgcache_init(&mc, 4);
    struct msg *m = msg_get(&mc);
    assert_non_null(m);
    /* consecutive fresh bytes extend one span */
    assert_int_equal(msg_out_bytes(m, &p, "*2\r\n", 4), 0);
    assert_int_equal(msg_out_bytes(m, &p, "$3\r\n", 4), 0);
    assert_int_equal(m->nout, 1);
    assert_int_equal(m->outlen, 8);
    /* many small pieces: the out array grows past its inline slots */
    for (int i = 0; i < 40; i++) {
        struct msg *other = msg_get(&mc);
        assert_int_equal(msg_out_bytes(other, &p, "x", 1), 0);   /* breaks adjacency */
        assert_int_equal(msg_out_bytes(m, &p, "ab", 2), 0);
        msg_put(&mc, other);
    }
    assert_int_equal(m->nout, 41);
    assert_int_equal(m->outlen, 88);
    msg_put(&mc, m);
    assert_int_equal(mc.nlive, 0);
    msgcache_destroy(&mc);
    bufpool_destroy(&p);
    assert_int_equal(p.nlive, 0);
}

static void
test_tok_int(void **state)
{
    struct bufpool p;
    struct chain c;
    int64_t v;

    (void)state;
    bufpool_init(&p, SEG, 4);
    memset(&c, 0, sizeof(c));
    feed(&c, &p, "$2\r\n42-9223372036854775808x9223372036854775808");
    struct tok t = { c.head, 0, 4, 2, 0, 0, 0 };
    assert_int_equal(msg_tok_int(&t, &v), 0);
    assert_int_equal(v, 42);
    struct tok neg = { c.head, 6, 0, 20, 0, 0, 0 };           /* spans two segments */
    assert_int_equal(msg_tok_int(&neg, &v), 0);
    assert_true(v == INT64_MIN);
    struct tok bad = { c.head->next, 10, 0, 1, 0, 0, 0 };      /* stream offset 26 */
    assert_int_equal(msg_tok_int(&bad, &v), -1);
    struct tok over = { c.head->next, 11, 0, 19, 0, 0, 0 };    /* 27, runs on */
    assert_int_equal(msg_tok_int(&over, &v), -1);
    chain_release(&c);
    bufpool_destroy(&p);
}

/* km_u64_dec writes what "%llu" writes, for the digit-count edges and the extremes. */
static void
test_u64_dec(void **state)
{
    static const uint64_t v[] = { 0, 1, 9, 10, 99, 100, 12345, 4294967295u, 4294967296u,
                                  999999999999999999u, 10000000000000000000u, UINT64_MAX };
    char got[24], want[24];

    (void)state;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        size_t n = km_u64_dec(got, v[i]);
        int w = snprintf(want, sizeof(want), "%llu", (unsigned long long)v[i]);

        assert_int_equal(n, (size_t)w);
        assert_memory_equal(got, want, n);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_unref_free_list_bound),
        cmocka_unit_test(test_trim_gives_back_what_was_not_needed),
        cmocka_unit_test(test_span_across_segments),
        cmocka_unit_test(test_iov_merges_adjacent),
        cmocka_unit_test(test_chain_locate_consume),
        cmocka_unit_test(test_scratch_and_msg_out),
        cmocka_unit_test(test_tok_int),
        cmocka_unit_test(test_u64_dec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
