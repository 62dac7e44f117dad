/* tests/unit/test_redis_keyspace.c: SCAN's cursor over the servers of a pool (src/proto/redis_keyspace.c): parsing, encoding, the request and reply rewritten byte for byte, and the plans of DBSIZE, KEYS, FLUSHALL and FLUSHDB. */
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
#include "proto/redis_keyspace.h"

#define S52 (UINT64_C(1) << 52)

static bool
parse(const char *s, uint64_t *v)
{
    return redis_scan_cursor_parse((const uint8_t *)s, strlen(s), v);
}

static void
test_cursor_parse(void **state)
{
    uint64_t v = 7;

    (void)state;
    assert_true(parse("0", &v) && v == 0);
    assert_true(parse("000", &v) && v == 0);
    assert_true(parse("0042", &v) && v == 42);
    assert_true(parse("4503599627370496", &v) && v == S52);
    assert_true(parse("18446744073709551615", &v) && v == UINT64_MAX);
    static const char *const bad[] = {
        "", "-1", "+1", " 1", "1 ", "1a", "0x10", "1.5", "18446744073709551616",
        "99999999999999999999", "184467440737095516150",
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(bad); i++) {
        v = 7;
        if (parse(bad[i], &v))
            fail_msg("'%s' taken as a cursor", bad[i]);
        assert_int_equal(v, 7);
    }
}

static void
test_cursor_next(void **state)
{
    uint64_t v = 1;

    (void)state;
    assert_int_equal(redis_scan_cursor(0, 0), 0);
    assert_int_equal(redis_scan_cursor(2, 9), 2 * S52 + 9);
    assert_int_equal(redis_scan_cursor(2047, REDIS_SCAN_MASK), INT64_MAX);
    /* a server with more to come keeps its index */
    assert_true(redis_scan_next(1, 3, 5, &v) && v == S52 + 5);
    assert_true(redis_scan_next(0, 3, REDIS_SCAN_MASK, &v) && v == REDIS_SCAN_MASK);
    /* a server done: the next one's start, 0 after the last */
    assert_true(redis_scan_next(0, 3, 0, &v) && v == S52);
    assert_true(redis_scan_next(1, 3, 0, &v) && v == 2 * S52);
    assert_true(redis_scan_next(2, 3, 0, &v) && v == 0);
    assert_true(redis_scan_next(0, 1, 0, &v) && v == 0);
    assert_true(redis_scan_next(2047, 2048, 0, &v) && v == 0);
    /* a server cursor wider than 52 bits is refused, never cut */
    v = 1;
    assert_false(redis_scan_next(0, 3, REDIS_SCAN_MASK + 1, &v));
    assert_false(redis_scan_next(2, 3, UINT64_MAX, &v));
    assert_int_equal(v, 1);
}

/* ---- the request and the reply through the protocol --------------------------------- */

/* One client and one server connection, each a reader over 512-byte segments fed a few
 * bytes at a time, so that words cross segment ends. */
struct world {
    struct bufpool bp;
    struct msgcache mc;
    struct reader_env env;
    struct reader cl, sv;
    struct proto_ctx ctx;
    struct msg *req;          /* the last request parsed (planned) */
    struct msg *frag;         /* the fragment whose reply the server side reads */
    char wire[4096];          /* a message's out, as written */
};

static int
w_setup(void **state)
{
    struct world *w = calloc(1, sizeof(*w));

    assert_non_null(w);
    bufpool_init(&w->bp, BUF_MIN_SIZE, 8);
    msgcache_init(&w->mc, 8);
    w->env.pr = &proto_redis;
    w->env.max_request = UINT64_MAX;
    w->env.mc = &w->mc;
    reader_init(&w->cl);
    reader_req_start(&w->cl, &w->env);
    reader_init(&w->sv);
    w->ctx.bp = &w->bp;
    w->ctx.mc = &w->mc;
    w->ctx.nservers = 3;
    *state = w;
    return 0;
}

static int
w_teardown(void **state)
{
    struct world *w = *state;

    if (w->req != NULL)
        msg_put(&w->mc, w->req);
    reader_release(&w->cl, &w->mc);
    reader_release(&w->sv, &w->mc);
    assert_int_equal(w->mc.nlive, 0);
    msgcache_destroy(&w->mc);
    bufpool_destroy(&w->bp);
    assert_int_equal(w->bp.nlive, 0);
    free(w);
    return 0;
}

static struct msg *
w_answers(void *arg)
{
    return ((struct world *)arg)->frag;
}

static int
w_done(void *arg, struct msg *m)
{
    struct world *w = arg;

    if (w->frag != NULL) {
        /* a reply: it answers the fragment (upstream.c's on_reply, for a fragment) */
        w->frag->rsp = m;
        w->frag->done = true;
        w->frag = NULL;
        return KM_OK;
    }
    if (w->req != NULL)
        msg_put(&w->mc, w->req);
    w->req = m;
    return proto_redis.req_plan(m, &w->cl.ps, &w->ctx);
}

static int
w_bad(void *arg, const char *why, bool recoverable)
{
    (void)arg;
    (void)recoverable;
    fail_msg("bad input: %s", why);
    return KM_ERROR;
}

static const struct reader_ops w_ops = { w_answers, w_done, w_bad };

static void
feed(struct world *w, struct reader *r, bool is_req, const char *bytes)
{
    size_t n = strlen(bytes);

    for (size_t off = 0; off < n;) {
        size_t room;
        uint8_t *p = chain_space(&r->in, &w->bp, &room);
        assert_non_null(p);
        size_t k = KM_MIN(KM_MIN((size_t)5, room), n - off);
        memcpy(p, bytes + off, k);
        chain_commit(&r->in, k);
        off += k;
        assert_int_equal(reader_parse(r, &w->env, is_req, &w_ops, w), KM_OK);
    }
}

/* m's out as one NUL-terminated string in w->wire. */
static const char *
wire(struct world *w, const struct msg *m)
{
    size_t n = 0;

    for (uint32_t i = 0; i < m->nout; i++) {
        assert_true(n + m->out[i].len < sizeof(w->wire));
        n += span_copy(&m->out[i], 0, w->wire + n, (size_t)m->out[i].len);
    }
    w->wire[n] = '\0';
    return w->wire;
}

/* Plan request `bytes`; for PLAN_INDEX make its fragment as forward.c does and return
 * what goes to the server. */
static const char *
request(struct world *w, const char *bytes)
{
    feed(w, &w->cl, true, bytes);
    assert_non_null(w->req);
    if (w->req->plan != PLAN_INDEX)
        return NULL;
    struct msg *m = w->req;
    assert_int_equal(msg_split_init(m, 1, 0), KM_OK);
    m->frags[0] = msg_get(&w->mc);
    assert_non_null(m->frags[0]);
    m->nfrag = 1;
    m->frags[0]->parent = m;
    assert_int_equal(proto_redis.frag(m->frags[0], m, NULL, 0, &w->ctx), KM_OK);
    msg_drop_input(m);
    return wire(w, m->frags[0]);
}

/* The server answers the fragment with `bytes`; the client's reply after the merge. */
static const char *
reply(struct world *w, const char *bytes)
{
    struct msg *m = w->req;

    w->frag = m->frags[0];
    feed(w, &w->sv, false, bytes);
    assert_null(w->frag);
    assert_null(m->rsp);
    assert_int_equal(proto_redis.merge(m, &w->ctx), KM_OK);
    assert_non_null(m->rsp);
    return wire(w, m->rsp);
}

/* The reply to a request answered on the spot. */
static const char *
answer(struct world *w)
{
    assert_true(w->req->plan == PLAN_ERROR || w->req->plan == PLAN_LOCAL);
    assert_non_null(w->req->rsp);
    return wire(w, w->req->rsp);
}

#define KEYS2 "*2\r\n$1\r\na\r\n$3\r\nbcd\r\n"

static void
test_scan_rewrite(void **state)
{
    struct world *w = *state;

    /* server 0: the cursor goes as it is, MATCH/COUNT/TYPE with it, the name as written */
    assert_string_equal(request(w, "*8\r\n$4\r\nscan\r\n$2\r\n17\r\n$5\r\nMATCH\r\n$3\r\nk:*\r\n"
                                   "$5\r\nCOUNT\r\n$3\r\n100\r\n$4\r\nTYPE\r\n$4\r\nhash\r\n"),
                        "*8\r\n$4\r\nscan\r\n$2\r\n17\r\n$5\r\nMATCH\r\n$3\r\nk:*\r\n"
                        "$5\r\nCOUNT\r\n$3\r\n100\r\n$4\r\nTYPE\r\n$4\r\nhash\r\n");
    assert_int_equal(w->req->server, 0);
    assert_int_equal(w->req->merge, MERGE_SCAN);
    assert_string_equal(reply(w, "*2\r\n$2\r\n40\r\n" KEYS2), "*2\r\n$2\r\n40\r\n" KEYS2);

    /* server 1 (1 << 52 | 40): the server sees 40, and 0 back means server 2's start */
    assert_string_equal(request(w, "*2\r\n$4\r\nSCAN\r\n$16\r\n4503599627370536\r\n"),
                        "*2\r\n$4\r\nSCAN\r\n$2\r\n40\r\n");
    assert_int_equal(w->req->server, 1);
    assert_string_equal(reply(w, "*2\r\n$1\r\n0\r\n" KEYS2), "*2\r\n$16\r\n9007199254740992\r\n" KEYS2);

    /* server 1 again, with more to come */
    assert_string_equal(request(w, "*3\r\n$4\r\nSCAN\r\n$16\r\n4503599627370496\r\n$1\r\nx\r\n"),
                        "*3\r\n$4\r\nSCAN\r\n$1\r\n0\r\n$1\r\nx\r\n");
    assert_string_equal(reply(w, "*2\r\n$3\r\n123\r\n*0\r\n"), "*2\r\n$16\r\n4503599627370619\r\n*0\r\n");

    /* the last server: 0 back is the end of the walk; an inline request works too */
    assert_string_equal(request(w, "SCAN 9007199254740992 COUNT 5\r\n"),
                        "*4\r\n$4\r\nSCAN\r\n$1\r\n0\r\n$5\r\nCOUNT\r\n$1\r\n5\r\n");
    assert_string_equal(reply(w, "*2\r\n$1\r\n0\r\n" KEYS2), "*2\r\n$1\r\n0\r\n" KEYS2);
}

static void
test_scan_bad_replies(void **state)
{
    struct world *w = *state;

    request(w, "*2\r\n$4\r\nSCAN\r\n$1\r\n0\r\n");
    /* a server cursor that does not fit */
    assert_string_equal(reply(w, "*2\r\n$16\r\n4503599627370496\r\n" KEYS2),
                        "-ERR a server's SCAN cursor is too large for the proxy's cursor\r\n");
    assert_true(w->req->rsp->is_error);
    request(w, "*2\r\n$4\r\nSCAN\r\n$1\r\n0\r\n");
    assert_string_equal(reply(w, "*2\r\n$16\r\n4503599627370495\r\n*0\r\n"),
                        "*2\r\n$16\r\n4503599627370495\r\n*0\r\n");
    /* a server's error goes through as it is */
    request(w, "*2\r\n$4\r\nSCAN\r\n$1\r\n0\r\n");
    assert_string_equal(reply(w, "-ERR syntax error\r\n"), "-ERR syntax error\r\n");
    /* replies of another shape */
    static const char *const odd[] = {
        "+OK\r\n", ":1\r\n", "*1\r\n$1\r\n0\r\n", "*2\r\n:0\r\n*0\r\n", "*2\r\n$1\r\nx\r\n*0\r\n",
        "*2\r\n$1\r\n0\r\n$1\r\na\r\n", "*3\r\n$1\r\n0\r\n*0\r\n*0\r\n", "*2\r\n$0\r\n\r\n*0\r\n",
        "*2\r\n$21\r\n184467440737095516150\r\n*0\r\n", "*-1\r\n",
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(odd); i++) {
        request(w, "*2\r\n$4\r\nSCAN\r\n$1\r\n0\r\n");
        const char *got = reply(w, odd[i]);
        if (strcmp(got, "-ERR unexpected reply from a server to SCAN\r\n") != 0)
            fail_msg("reply %s: %s", odd[i], got);
    }
}

static void
test_scan_bad_cursor(void **state)
{
    struct world *w = *state;
    static const char *const bad[] = {
        "x", "-1", "", "1.5", "13510798882111488",    /* 3 << 52: past the last of 3 servers */
        "9223372036854775808", "18446744073709551615", "18446744073709551616",
        "000000000000000000000000000000000",
    };
    char req[128];

    for (size_t i = 0; i < KM_ARRAY_LEN(bad); i++) {
        snprintf(req, sizeof(req), "*2\r\n$4\r\nSCAN\r\n$%zu\r\n%s\r\n", strlen(bad[i]), bad[i]);
        assert_null(request(w, req));
        assert_int_equal(w->req->plan, PLAN_ERROR);
        if (strcmp(answer(w), "-ERR invalid cursor\r\n") != 0)
            fail_msg("cursor '%s': %s", bad[i], w->wire);
    }
    assert_null(request(w, "*1\r\n$4\r\nSCAN\r\n"));
    assert_string_equal(answer(w), "-ERR wrong number of arguments for 'scan' command\r\n");
    /* with the pool unknown (no servers), no cursor names a server */
    w->ctx.nservers = 0;
    assert_null(request(w, "*2\r\n$4\r\nSCAN\r\n$1\r\n0\r\n"));
    assert_string_equal(answer(w), "-ERR invalid cursor\r\n");
    w->ctx.nservers = 2049;
    assert_null(request(w, "*2\r\n$4\r\nSCAN\r\n$1\r\n0\r\n"));
    assert_string_equal(answer(w), "-ERR SCAN through the proxy serves pools of at most 2048 servers\r\n");
}

static void
test_other_plans(void **state)
{
    struct world *w = *state;

    assert_null(request(w, "*1\r\n$6\r\nDBSIZE\r\n"));
    assert_int_equal(w->req->plan, PLAN_ALL);
    assert_int_equal(w->req->merge, MERGE_SUM);
    assert_null(request(w, "*2\r\n$4\r\nKEYS\r\n$1\r\n*\r\n"));
    assert_string_equal(answer(w),
                        "-ERR KEYS is not supported by the proxy (it blocks every server); use SCAN\r\n");
    assert_null(request(w, "*2\r\n$8\r\nflushall\r\n$5\r\nASYNC\r\n"));
    assert_string_equal(answer(w), "-ERR FLUSHALL is refused by the proxy: it would empty every server "
                                   "of the pool (the pool's allow_flush: true lets it through)\r\n");
    assert_null(request(w, "*1\r\n$7\r\nFLUSHDB\r\n"));
    assert_string_equal(answer(w), "-ERR FLUSHDB is refused by the proxy: it would empty every server "
                                   "of the pool (the pool's allow_flush: true lets it through)\r\n");
    w->ctx.allow_flush = true;
    assert_null(request(w, "*2\r\n$8\r\nFLUSHALL\r\n$4\r\nSYNC\r\n"));
    assert_int_equal(w->req->plan, PLAN_ALL);
    assert_int_equal(w->req->merge, MERGE_OK);
    assert_null(request(w, "*1\r\n$7\r\nFLUSHDB\r\n"));
    assert_int_equal(w->req->plan, PLAN_ALL);
    assert_int_equal(w->req->merge, MERGE_OK);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cursor_parse),
        cmocka_unit_test(test_cursor_next),
        cmocka_unit_test_setup_teardown(test_scan_rewrite, w_setup, w_teardown),
        cmocka_unit_test_setup_teardown(test_scan_bad_replies, w_setup, w_teardown),
        cmocka_unit_test_setup_teardown(test_scan_bad_cursor, w_setup, w_teardown),
        cmocka_unit_test_setup_teardown(test_other_plans, w_setup, w_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
