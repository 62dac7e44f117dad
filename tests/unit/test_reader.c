/* tests/unit/test_reader.c: the reader (src/proto/reader.c): bytes read into a chain of small segments in reads of every size become messages holding their own bytes, and bad input, oversize requests, stray replies and an owner that stops are reported as the proxy's connections expect. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/common.h"
#include "proto/reader.h"

/*
 * The rig plays a connection: it reads its input into the reader's chain `step` bytes at a
 * time (never more than chain_space offers, so messages run across the 512-byte segments)
 * and calls reader_parse after each read. Its callbacks record what the reader hands over.
 * At the end every message is given back and every segment must return to the pool.
 */

#define MAX_MSGS 64

struct rig {
    struct bufpool bp;
    struct msgcache mc;
    struct proto_limits lim;
    struct reader_env env;
    struct reader rd;
    struct msg *got[MAX_MSGS];
    uint32_t ngot;
    uint32_t nbad;
    const char *why;          /* the last bad input's reason */
    bool recoverable;
    int done_rc;              /* what done() answers */
    struct msg *asked;        /* reply side: the request the next reply answers */
};

static int
rig_setup(void **state)
{
    struct rig *r = calloc(1, sizeof(*r));

    assert_non_null(r);
    bufpool_init(&r->bp, BUF_MIN_SIZE, 8);
    msgcache_init(&r->mc, 8);
    r->env.pr = &proto_redis;
    r->env.lim = NULL;
    r->env.max_request = UINT64_MAX;
    r->env.mc = &r->mc;
    reader_init(&r->rd);
    *state = r;
    return 0;
}

static int
rig_teardown(void **state)
{
    struct rig *r = *state;

    for (uint32_t i = 0; i < r->ngot; i++)
        msg_put(&r->mc, r->got[i]);
    if (r->asked != NULL)
        msg_put(&r->mc, r->asked);
    reader_release(&r->rd, &r->mc);
    assert_int_equal(r->mc.nlive, 0);
    msgcache_destroy(&r->mc);
    bufpool_destroy(&r->bp);
    assert_int_equal(r->bp.nlive, 0);
    free(r);
    return 0;
}

static struct msg *
answers(void *arg)
{
    return ((struct rig *)arg)->asked;
}

static int
done(void *arg, struct msg *m)
{
    struct rig *r = arg;

    assert_true(r->ngot < MAX_MSGS);
    r->got[r->ngot++] = m;
    return r->done_rc;
}

static int
bad(void *arg, const char *why, bool recoverable)
{
    struct rig *r = arg;

    r->nbad++;
    r->why = why;
    r->recoverable = recoverable;
    return KM_OK;
}

static const struct reader_ops ops = { answers, done, bad };

/* Read in[0..n) in reads of `step` bytes, parsing after each; the last parse's result. */
static int
feed(struct rig *r, const char *in, size_t n, size_t step, bool is_req)
{
    int rc = KM_OK;

    for (size_t off = 0; off < n && rc == KM_OK;) {
        size_t room;
        uint8_t *p = chain_space(&r->rd.in, &r->bp, &room);
        assert_non_null(p);
        size_t k = KM_MIN(KM_MIN(step, room), n - off);
        memcpy(p, in + off, k);
        chain_commit(&r->rd.in, k);
        off += k;
        rc = reader_parse(&r->rd, &r->env, is_req, &ops, r);
    }
    return rc;
}

/* m's raw span holds exactly want. */
static void
assert_raw(const struct msg *m, const char *want)
{
    size_t n = strlen(want);
    char *got = malloc(n + 1);

    assert_non_null(got);
    assert_int_equal(m->raw.len, n);
    assert_int_equal(span_copy(&m->raw, 0, got, n), n);
    assert_memory_equal(got, want, n);
    free(got);
}

/* token i of m holds exactly want */
static void
assert_tok(const struct msg *m, uint32_t i, const char *want)
{
    char got[1200];
    size_t n = strlen(want);

    assert_true(i < m->ntok);
    assert_int_equal(m->tok[i].len, n);
    assert_int_equal(msg_tok_copy(&m->tok[i], 0, got, sizeof(got)), n);
    assert_memory_equal(got, want, n);
}

static void
test_requests_in_reads_of_every_size(void **state)
{
    struct rig *r = *state;
    char big[1001];
    char in[2048];

    /* a value longer than a segment, so that it spans three of them */
    memset(big, 'v', 1000);
    big[1000] = '\0';
    int n = snprintf(in, sizeof(in), "*2\r\n$3\r\nGET\r\n$3\r\nabc\r\n"
                     "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000\r\n%s\r\n"
                     "PING\r\n", big);
    assert_true(n > 0 && (size_t)n < sizeof(in));
    char set[1100];
    snprintf(set, sizeof(set), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000\r\n%s\r\n", big);

    for (size_t step = 1; step <= 600; step = step < 8 ? step + 1 : step * 3) {
        reader_release(&r->rd, &r->mc);
        reader_init(&r->rd);
        reader_req_start(&r->rd, &r->env);
        assert_int_equal(feed(r, in, (size_t)n, step, true), KM_OK);
        assert_int_equal(r->ngot, 3);
        assert_int_equal(r->nbad, 0);
        assert_raw(r->got[0], "*2\r\n$3\r\nGET\r\n$3\r\nabc\r\n");
        assert_int_equal(r->got[0]->ntok, 2);
        assert_tok(r->got[0], 0, "GET");
        assert_tok(r->got[0], 1, "abc");
        assert_raw(r->got[1], set);
        assert_int_equal(r->got[1]->ntok, 3);
        assert_tok(r->got[1], 2, big);
        assert_raw(r->got[2], "PING\r\n");
        assert_true(reader_idle(&r->rd, &r->env, true));
        for (uint32_t i = 0; i < r->ngot; i++)
            msg_put(&r->mc, r->got[i]);
        r->ngot = 0;
        /* what the chain still holds is its own: the messages are gone */
        chain_release(&r->rd.in);
        assert_int_equal(r->bp.nlive - r->bp.nfree, 0);
    }
}

static void
test_message_half_read_is_not_idle(void **state)
{
    struct rig *r = *state;
    const char *in = "*2\r\n$3\r\nGET\r\n$3\r\nab";

    reader_req_start(&r->rd, &r->env);
    assert_int_equal(feed(r, in, strlen(in), 5, true), KM_OK);
    assert_int_equal(r->ngot, 0);
    assert_false(reader_idle(&r->rd, &r->env, true));
    assert_int_equal(feed(r, "c\r\n", 3, 5, true), KM_OK);
    assert_int_equal(r->ngot, 1);
    assert_tok(r->got[0], 1, "abc");
    assert_true(reader_idle(&r->rd, &r->env, true));
}

static void
test_bad_redis_request_stops(void **state)
{
    struct rig *r = *state;
    const char *in = "*1\r\n$4\r\nPING\r\n*x\r\n*1\r\n$4\r\nPING\r\n";

    reader_req_start(&r->rd, &r->env);
    assert_int_equal(feed(r, in, strlen(in), strlen(in), true), KM_ERROR);
    assert_int_equal(r->ngot, 1);
    assert_int_equal(r->nbad, 1);
    assert_false(r->recoverable);
    assert_non_null(r->why);
}

static void
test_bad_memcached_line_is_skipped(void **state)
{
    struct rig *r = *state;
    const char *in = "get a\r\nbogus command\r\nget b c\r\n";

    r->env.pr = &proto_memcache;
    reader_req_start(&r->rd, &r->env);
    assert_int_equal(feed(r, in, strlen(in), 3, true), KM_OK);
    assert_int_equal(r->nbad, 1);
    assert_true(r->recoverable);
    assert_int_equal(r->ngot, 2);
    assert_raw(r->got[0], "get a\r\n");
    assert_raw(r->got[1], "get b c\r\n");
    assert_true(reader_idle(&r->rd, &r->env, true));
}

static void
test_request_over_max_request(void **state)
{
    struct rig *r = *state;
    /* the second request passes 30 bytes with its value still arriving: refused by the
     * bytes that came, not by the length it declares */
    const char *in = "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$40\r\n0123456789abcdef";

    r->env.max_request = 30;
    reader_req_start(&r->rd, &r->env);
    assert_int_equal(feed(r, in, strlen(in), 4, true), KM_ERROR);
    assert_int_equal(r->ngot, 1);
    assert_int_equal(r->nbad, 1);
    assert_false(r->recoverable);
    assert_string_equal(r->why, "Protocol error: request larger than max_request_size");
}

static void
test_limits_reach_the_tokenizer(void **state)
{
    struct rig *r = *state;
    const char *in = "*2\r\n$3\r\nGET\r\n$100\r\n";

    r->lim.max_bulk = 10;
    r->lim.max_args = 8;
    r->lim.max_value = 10;
    r->env.lim = &r->lim;
    reader_req_start(&r->rd, &r->env);
    assert_int_equal(feed(r, in, strlen(in), 64, true), KM_ERROR);
    assert_int_equal(r->ngot, 0);
    assert_int_equal(r->nbad, 1);
}

static void
test_owner_stops_the_reader(void **state)
{
    struct rig *r = *state;
    const char *in = "PING\r\nPING\r\n";

    r->done_rc = KM_ERROR;
    reader_req_start(&r->rd, &r->env);
    assert_int_equal(feed(r, in, strlen(in), strlen(in), true), KM_ERROR);
    /* one message handed over, the next left unparsed */
    assert_int_equal(r->ngot, 1);
    assert_true(r->rd.in.pabs < r->rd.in.end_abs);
}

static void
test_replies_need_a_request(void **state)
{
    struct rig *r = *state;

    assert_int_equal(feed(r, "+OK\r\n", 5, 5, false), KM_ERROR);
    assert_int_equal(r->nbad, 1);
    assert_string_equal(r->why, "unexpected data from server");
    assert_int_equal(r->ngot, 0);
}

static void
test_replies_and_kept_elements(void **state)
{
    struct rig *r = *state;
    struct msg *parent = msg_get(&r->mc);
    const char *in = "$3\r\nfoo\r\n*2\r\n$1\r\nx\r\n$-1\r\n";

    assert_non_null(parent);
    r->asked = msg_get(&r->mc);
    assert_non_null(r->asked);
    /* a plain request first: its reply keeps no elements */
    assert_int_equal(feed(r, in, 9, 2, false), KM_OK);
    assert_int_equal(r->ngot, 1);
    assert_raw(r->got[0], "$3\r\nfoo\r\n");
    assert_int_equal(r->got[0]->ntok, 0);
    assert_true(reader_idle(&r->rd, &r->env, false));
    /* then a fragment of an MGET: the array's elements are kept */
    parent->merge = MERGE_ARRAY;
    r->asked->parent = parent;
    assert_int_equal(feed(r, in + 9, strlen(in) - 9, 3, false), KM_OK);
    assert_int_equal(r->ngot, 2);
    assert_raw(r->got[1], "*2\r\n$1\r\nx\r\n$-1\r\n");
    assert_int_equal(r->got[1]->ntok, 2);
    r->asked->parent = NULL;
    msg_put(&r->mc, parent);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_requests_in_reads_of_every_size, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_message_half_read_is_not_idle, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_bad_redis_request_stops, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_bad_memcached_line_is_skipped, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_request_over_max_request, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_limits_reach_the_tokenizer, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_owner_stops_the_reader, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_replies_need_a_request, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_replies_and_kept_elements, rig_setup, rig_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
