/* tests/unit/test_redis_stream.c: XREAD and XREADGROUP as the planner reads them (src/proto/redis_stream.c): the keys after STREAMS, BLOCK making them blocking, Redis's texts for refused options; and WAIT's plan (src/proto/redis_session.c). */
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
#include "proto/redis_stream.h"
#include "redis_client.h"

/*
 * One client (redis_client.h): each request is planned at once by proto_redis.req_plan,
 * as the proxy's client does, and its plan noted in `last`. Error texts were read from
 * redis-server 7.0.15.
 */
struct plan_seen {
    uint8_t plan;
    uint8_t sop;
    bool blocking;
    bool in_multi;
    uint32_t key_first, key_last, key_step;
    char err[256];            /* an error reply made here, without "\r\n"; "" when none */
};

struct sess {
    struct redis_client c;
    struct plan_seen last;
};

static int
sess_setup(void **state)
{
    struct sess *s = calloc(1, sizeof(*s));

    assert_non_null(s);
    redis_client_init(&s->c, 1, 3);
    *state = s;
    return 0;
}

static int
sess_teardown(void **state)
{
    struct sess *s = *state;

    redis_client_release(&s->c);
    free(s);
    return 0;
}

static int
on_request(void *arg, struct msg *m)
{
    struct sess *s = arg;
    struct plan_seen *p = &s->last;
    size_t n = 0;

    assert_int_equal(proto_redis.req_plan(m, &s->c.rd.ps, &s->c.ctx), KM_OK);
    memset(p, 0, sizeof(*p));
    p->plan = m->plan;
    p->sop = m->sop;
    p->blocking = m->blocking;
    p->in_multi = m->in_multi;
    p->key_first = m->key_first;
    p->key_last = m->key_last;
    p->key_step = m->key_step;
    if (m->plan == PLAN_ERROR) {
        assert_non_null(m->rsp);
        for (uint32_t i = 0; i < m->rsp->nout; i++) {
            assert_true(n + m->rsp->out[i].len < sizeof(p->err));
            n += span_copy(&m->rsp->out[i], 0, p->err + n, (size_t)m->rsp->out[i].len);
        }
        assert_true(n >= 3 && p->err[0] == '-' && memcmp(p->err + n - 2, "\r\n", 2) == 0);
        memmove(p->err, p->err + 1, n - 3);
        p->err[n - 3] = '\0';
    }
    msg_put(&s->c.mc, m);
    return KM_OK;
}

static const struct reader_ops ops = { redis_client_no_reply, on_request, redis_client_bad };

/* Send the request of words ... (NULL-terminated); its plan is s->last. */
static const struct plan_seen *
call(struct sess *s, ...)
{
    va_list ap;

    va_start(ap, s);
    redis_client_vsend(&s->c, &ops, s, ap);
    va_end(ap);
    return &s->last;
}

/* The plan has keys first..last (step 1), routed as one server, blocking or not. */
static void
assert_keys(const struct plan_seen *p, uint32_t first, uint32_t last, bool blocking)
{
    if (p->plan == PLAN_ERROR)
        fail_msg("refused: %s", p->err);
    assert_int_equal(p->plan, first == last ? PLAN_SINGLE : PLAN_SAMESRV);
    assert_int_equal(p->key_first, first);
    assert_int_equal(p->key_last, last);
    assert_int_equal(p->key_step, 1);
    assert_int_equal(p->blocking, blocking);
}

static void
assert_refused(const struct plan_seen *p, const char *text)
{
    assert_int_equal(p->plan, PLAN_ERROR);
    assert_string_equal(p->err, text);
    assert_false(p->blocking);
}

#define UNBALANCED \
    "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."

static void
test_xread_keys(void **state)
{
    struct sess *s = *state;

    /* the first half of what follows STREAMS */
    assert_keys(call(s, "XREAD", "STREAMS", "a", "0", NULL), 2, 2, false);
    assert_keys(call(s, "xread", "streams", "a", "b", "c", "0", "0", "0", NULL), 2, 4, false);
    assert_keys(call(s, "XREAD", "COUNT", "10", "STREAMS", "a", "b", "1-0", "$", NULL),
                4, 5, false);
    /* a key or ID named like an option is a key or an ID */
    assert_keys(call(s, "XREAD", "STREAMS", "STREAMS", "BLOCK", "0", "0", NULL), 2, 3, false);
    assert_keys(call(s, "XREAD", "STREAMS", "streams", "0", NULL), 2, 2, false);
    /* options repeat, as Redis takes them */
    assert_keys(call(s, "XREAD", "COUNT", "1", "COUNT", "-5", "STREAMS", "a", "0", NULL),
                6, 6, false);
    /* XREADGROUP: the group's and the consumer's names are not the keyword */
    assert_keys(call(s, "XREADGROUP", "GROUP", "STREAMS", "STREAMS", "STREAMS", "k", ">", NULL),
                5, 5, false);
    assert_keys(call(s, "XREADGROUP", "GROUP", "g", "c", "NOACK", "COUNT", "2", "STREAMS",
                     "a", "b", ">", ">", NULL), 8, 9, false);
    assert_keys(call(s, "xreadgroup", "noack", "group", "g", "c", "streams", "a", ">", NULL),
                6, 6, false);
}

static void
test_xread_block(void **state)
{
    struct sess *s = *state;

    assert_keys(call(s, "XREAD", "BLOCK", "0", "STREAMS", "a", "$", NULL), 4, 4, true);
    assert_keys(call(s, "XREAD", "block", "1500", "COUNT", "1", "STREAMS", "a", "b", "$", "$",
                     NULL), 6, 7, true);
    assert_keys(call(s, "XREAD", "COUNT", "1", "bLoCk", "9223372036854775807", "STREAMS", "a",
                     "0", NULL), 6, 6, true);
    assert_keys(call(s, "XREADGROUP", "GROUP", "g", "c", "BLOCK", "10", "NOACK", "STREAMS",
                     "a", ">", NULL), 8, 8, true);
    /* BLOCK past STREAMS is a key or an ID, not the option */
    assert_keys(call(s, "XREAD", "STREAMS", "BLOCK", "0", NULL), 2, 2, false);
    assert_keys(call(s, "XREAD", "COUNT", "5", "STREAMS", "a", "BLOCK", "0", "0", NULL),
                4, 5, false);
    /* a group named BLOCK is a name */
    assert_keys(call(s, "XREADGROUP", "GROUP", "BLOCK", "0", "STREAMS", "a", ">", NULL),
                5, 5, false);
    /* inside MULTI Redis does not block: queued, not blocking */
    call(s, "MULTI", NULL);
    const struct plan_seen *p = call(s, "XREAD", "BLOCK", "0", "STREAMS", "a", "$", NULL);
    assert_true(p->in_multi);
    assert_false(p->blocking);
    call(s, "DISCARD", NULL);
    assert_false(s->c.ps.multi);
    /* an internal request (no session) is never blocking */
    s->c.ctx.sess = NULL;
    assert_keys(call(s, "XREAD", "BLOCK", "0", "STREAMS", "a", "$", NULL), 4, 4, false);
    s->c.ctx.sess = &s->c.ps;
}

static void
test_xread_refused(void **state)
{
    struct sess *s = *state;

    assert_refused(call(s, "XREAD", "STREAMS", "a", NULL),
                   "ERR wrong number of arguments for 'xread' command");
    assert_refused(call(s, "XREADGROUP", "GROUP", "g", "c", "STREAMS", "a", NULL),
                   "ERR wrong number of arguments for 'xreadgroup' command");
    assert_refused(call(s, "XREAD", "STREAMS", "a", "b", "c", NULL), UNBALANCED);
    assert_refused(call(s, "XREAD", "BLOCK", "10", "STREAMS", "a", "b", "c", NULL), UNBALANCED);
    assert_refused(call(s, "XREADGROUP", "GROUP", "a", "b", "NOACK", "STREAMS", "k", NULL),
                   UNBALANCED);
    assert_refused(call(s, "XREAD", "COUNT", "1", "a", "0", NULL), "ERR syntax error");
    assert_refused(call(s, "XREAD", "foo", "STREAMS", "a", "0", NULL), "ERR syntax error");
    assert_refused(call(s, "XREAD", "BLOCK", "1", "2", "3", NULL), "ERR syntax error");
    assert_refused(call(s, "XREAD", "BLOCK", "1", "COUNT", "1", NULL), "ERR syntax error");
    assert_refused(call(s, "XREAD", "COUNT", "1", "STREAMS", NULL), "ERR syntax error");
    assert_refused(call(s, "XREAD", "COUNT", "1", "COUNT", NULL), "ERR syntax error");
    /* an option word longer than any option */
    assert_refused(call(s, "XREAD", "STREAMSX", "a", "0", NULL), "ERR syntax error");
    /* values, in the order Redis reads them: the first wrong one answers */
    assert_refused(call(s, "XREAD", "BLOCK", "abc", "STREAMS", "a", NULL),
                   "ERR timeout is not an integer or out of range");
    assert_refused(call(s, "XREAD", "BLOCK", "abc", "STREAMS", "a", "0", "1", NULL),
                   "ERR timeout is not an integer or out of range");
    assert_refused(call(s, "XREAD", "BLOCK", "0.5", "STREAMS", "a", "0", NULL),
                   "ERR timeout is not an integer or out of range");
    assert_refused(call(s, "XREAD", "BLOCK", "-1", "STREAMS", "a", "0", NULL),
                   "ERR timeout is negative");
    assert_refused(call(s, "XREAD", "COUNT", "x", "STREAMS", "a", "0", NULL),
                   "ERR value is not an integer or out of range");
    assert_refused(call(s, "XREAD", "GROUP", "g", "c", "STREAMS", "a", "0", NULL),
                   "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.");
    assert_refused(call(s, "XREAD", "COUNT", "1", "NOACK", NULL),
                   "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.");
    assert_refused(call(s, "XREADGROUP", "STREAMS", "a", "b", "c", "d", "e", "f", NULL),
                   "ERR Missing GROUP option for XREADGROUP");
    assert_refused(call(s, "XREADGROUP", "COUNT", "1", "NOACK", "STREAMS", "a", ">", NULL),
                   "ERR Missing GROUP option for XREADGROUP");
    /* refused inside MULTI: the transaction is marked, as Redis marks it */
    call(s, "MULTI", NULL);
    call(s, "XREAD", "STREAMS", "a", NULL);
    assert_true(s->c.ps.multi_bad);
    call(s, "DISCARD", NULL);
}

static void
test_wait_plan(void **state)
{
    struct sess *s = *state;
    const struct plan_seen *p;

    assert_int_equal(SOP_WAIT, SOP_KEYLESS + 1);
    p = call(s, "WAIT", "1", "1000", NULL);
    assert_int_equal(p->plan, PLAN_SESSION);
    assert_int_equal(p->sop, SOP_WAIT);
    assert_true(p->blocking);   /* the pool timeout does not cut it short */
    p = call(s, "wait", "0", "0", NULL);
    assert_int_equal(p->sop, SOP_WAIT);
    assert_refused(call(s, "WAIT", "1", NULL), "ERR wrong number of arguments for 'wait' command");
    /* inside MULTI it is queued: Redis answers it in EXEC at once */
    call(s, "MULTI", NULL);
    p = call(s, "WAIT", "1", "1000", NULL);
    assert_int_equal(p->plan, PLAN_SESSION);
    assert_int_equal(p->sop, SOP_KEYLESS);
    assert_false(p->blocking);
    assert_false(s->c.ps.multi_bad);
    call(s, "EXEC", NULL);
    assert_false(s->c.ps.multi);
}

/* The same requests read a byte at a time, and all at once. */
static void
test_read_sizes(void **state)
{
    struct sess *s = *state;

    for (size_t step = 1; step <= 4096; step *= 64) {
        s->c.step = step;
        assert_keys(call(s, "XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "a", "b", "$", "$",
                         NULL), 6, 7, true);
        assert_refused(call(s, "XREAD", "BLOCK", "-1", "STREAMS", "a", "0", NULL),
                       "ERR timeout is negative");
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_xread_keys, sess_setup, sess_teardown),
        cmocka_unit_test_setup_teardown(test_xread_block, sess_setup, sess_teardown),
        cmocka_unit_test_setup_teardown(test_xread_refused, sess_setup, sess_teardown),
        cmocka_unit_test_setup_teardown(test_wait_plan, sess_setup, sess_teardown),
        cmocka_unit_test_setup_teardown(test_read_sizes, sess_setup, sess_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
