/* tests/unit/test_redis_pubsub.c: pub/sub as the protocol plans it (src/proto/redis_pubsub.c):
 * the plans of SUBSCRIBE, PUBLISH and the rest, subscribed mode's refusals and PING, the
 * pushes of a server recognised with their channel, and the confirmations made here. */
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
#include "proto/redis_pubsub.h"

/* A reader over small segments fed a few bytes at a time (words cross segment ends), and
 * the last message it made: a request (planned) or a reply (parsed with its elements). */
struct rig {
    struct bufpool bp;
    struct msgcache mc;
    struct reader_env env;
    struct reader rd;
    struct proto_ctx ctx;
    struct proto_session sess;
    struct msg listen;        /* what a subscription connection's replies answer */
    struct msg *last;
    char out[1024];
};

static int
rig_setup(void **state)
{
    struct rig *r = calloc(1, sizeof(*r));

    assert_non_null(r);
    bufpool_init(&r->bp, BUF_MIN_SIZE, 8);
    msgcache_init(&r->mc, 8);
    r->env.pr = &proto_redis;
    r->env.max_request = UINT64_MAX;
    r->env.mc = &r->mc;
    reader_init(&r->rd);
    reader_req_start(&r->rd, &r->env);
    r->ctx.bp = &r->bp;
    r->ctx.mc = &r->mc;
    r->ctx.sess = &r->sess;
    r->sess.authed = 1;
    r->listen.elems = true;
    *state = r;
    return 0;
}

static int
rig_teardown(void **state)
{
    struct rig *r = *state;

    if (r->last != NULL)
        msg_put(&r->mc, r->last);
    reader_release(&r->rd, &r->mc);
    assert_int_equal(r->mc.nlive, 0);
    msgcache_destroy(&r->mc);
    bufpool_destroy(&r->bp);
    assert_int_equal(r->bp.nlive, 0);
    free(r);
    return 0;
}

static bool replies;   /* the rig reads replies (a server's side) rather than requests */

static struct msg *
rig_answers(void *arg)
{
    return &((struct rig *)arg)->listen;
}

static int
rig_done(void *arg, struct msg *m)
{
    struct rig *r = arg;

    if (r->last != NULL)
        msg_put(&r->mc, r->last);
    r->last = m;
    return replies ? KM_OK : proto_redis.req_plan(m, &r->rd.ps, &r->ctx);
}

static int
rig_bad(void *arg, const char *why, bool recoverable)
{
    (void)arg;
    (void)recoverable;
    fail_msg("bad input: %s", why);
    return KM_ERROR;
}

static const struct reader_ops rig_ops = { rig_answers, rig_done, rig_bad };

static struct msg *
feed(struct rig *r, bool reply, const char *bytes)
{
    size_t n = strlen(bytes);

    replies = reply;
    for (size_t off = 0; off < n;) {
        size_t room;
        uint8_t *p = chain_space(&r->rd.in, &r->bp, &room);
        assert_non_null(p);
        size_t k = KM_MIN(KM_MIN((size_t)3, room), n - off);
        memcpy(p, bytes + off, k);
        chain_commit(&r->rd.in, k);
        off += k;
        assert_int_equal(reader_parse(&r->rd, &r->env, !reply, &rig_ops, r), KM_OK);
    }
    assert_non_null(r->last);
    return r->last;
}

/* m's out as a string. */
static const char *
out(struct rig *r, const struct msg *m)
{
    size_t n = 0;

    for (uint32_t i = 0; i < m->nout; i++) {
        assert_true(n + m->out[i].len < sizeof(r->out));
        n += span_copy(&m->out[i], 0, r->out + n, (size_t)m->out[i].len);
    }
    r->out[n] = '\0';
    return r->out;
}

static void
test_plans(void **state)
{
    struct rig *r = *state;
    struct msg *m;

    m = feed(r, false, "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n$1\r\nb\r\n");
    assert_int_equal(m->plan, PLAN_PUBSUB);
    assert_int_equal(m->sop, SOP_SUBSCRIBE);
    assert_int_equal(m->ntok, 3);
    m = feed(r, false, "*2\r\n$10\r\nPSUBSCRIBE\r\n$2\r\np*\r\n");
    assert_int_equal(m->sop, SOP_PSUBSCRIBE);
    m = feed(r, false, "*1\r\n$11\r\nUNSUBSCRIBE\r\n");
    assert_int_equal(m->sop, SOP_UNSUBSCRIBE);
    m = feed(r, false, "*1\r\n$12\r\npunsubscribe\r\n");
    assert_int_equal(m->sop, SOP_PUNSUBSCRIBE);
    /* PUBLISH routes by its channel, as a key */
    m = feed(r, false, "*3\r\n$7\r\nPUBLISH\r\n$4\r\nnews\r\n$2\r\nhi\r\n");
    assert_int_equal(m->plan, PLAN_SINGLE);
    assert_true(m->channel);
    assert_int_equal(m->key_first, 1);
    assert_int_equal(m->key_last, 1);
    /* the arity of Redis */
    m = feed(r, false, "*1\r\n$9\r\nSUBSCRIBE\r\n");
    assert_int_equal(m->plan, PLAN_ERROR);
    assert_string_equal(out(r, m->rsp), "-ERR wrong number of arguments for 'subscribe' command\r\n");
    /* inside MULTI: PUBLISH is queued as a keyed command, a subscription refused */
    r->sess.multi = 1;
    m = feed(r, false, "*3\r\n$7\r\nPUBLISH\r\n$4\r\nnews\r\n$2\r\nhi\r\n");
    assert_int_equal(m->plan, PLAN_SINGLE);
    assert_true(m->in_multi);
    m = feed(r, false, "*2\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n");
    assert_int_equal(m->plan, PLAN_ERROR);
    assert_string_equal(out(r, m->rsp), "-ERR SUBSCRIBE inside MULTI is not supported by the proxy\r\n");
    assert_true(r->sess.multi_bad);
}

static void
test_subscribed_mode(void **state)
{
    struct rig *r = *state;
    struct msg *m;

    r->sess.subscribed = 1;
    m = feed(r, false, "*2\r\n$3\r\nGET\r\n$1\r\nx\r\n");
    assert_int_equal(m->plan, PLAN_ERROR);
    assert_string_equal(out(r, m->rsp), "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / "
                        "(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n");
    m = feed(r, false, "*3\r\n$7\r\nPUBLISH\r\n$1\r\na\r\n$1\r\nb\r\n");
    assert_int_equal(m->plan, PLAN_ERROR);
    assert_non_null(strstr(out(r, m->rsp), "'publish'"));
    m = feed(r, false, "*1\r\n$4\r\nPING\r\n");
    assert_int_equal(m->plan, PLAN_LOCAL);
    assert_string_equal(out(r, m->rsp), "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    m = feed(r, false, "*2\r\n$4\r\nping\r\n$5\r\nhello\r\n");
    assert_string_equal(out(r, m->rsp), "*2\r\n$4\r\npong\r\n$5\r\nhello\r\n");
    m = feed(r, false, "PING there\r\n");   /* inline */
    assert_string_equal(out(r, m->rsp), "*2\r\n$4\r\npong\r\n$5\r\nthere\r\n");
    m = feed(r, false, "*2\r\n$9\r\nSUBSCRIBE\r\n$1\r\nb\r\n");
    assert_int_equal(m->plan, PLAN_PUBSUB);
    m = feed(r, false, "*1\r\n$4\r\nQUIT\r\n");
    assert_true(m->quit);
    /* an unknown command is unknown first, as Redis checks it */
    m = feed(r, false, "*1\r\n$3\r\nFOO\r\n");
    assert_non_null(strstr(out(r, m->rsp), "unsupported command"));
    /* out of subscribed mode, PING is PONG again */
    r->sess.subscribed = 0;
    m = feed(r, false, "*1\r\n$4\r\nPING\r\n");
    assert_string_equal(out(r, m->rsp), "+PONG\r\n");
}

static void
test_push_kinds(void **state)
{
    struct rig *r = *state;
    const struct tok *name = NULL;
    uint64_t skip = 0, len = 0;
    char buf[64];
    struct msg *m;

    m = feed(r, true, "*3\r\n$7\r\nmessage\r\n$11\r\nnews.sports\r\n$5\r\nhello\r\n");
    assert_int_equal(redis_push_kind(m, &name, &skip, &len), PUSH_MESSAGE);
    assert_int_equal(len, 11);
    assert_int_equal(msg_tok_copy(name, skip, buf, (size_t)len), 11);
    assert_memory_equal(buf, "news.sports", 11);
    m = feed(r, true, "*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$0\r\n\r\n");
    assert_int_equal(redis_push_kind(m, &name, &skip, &len), PUSH_PMESSAGE);
    assert_int_equal(msg_tok_copy(name, skip, buf, (size_t)len), 2);
    assert_memory_equal(buf, "n*", 2);
    m = feed(r, true, "*3\r\n$9\r\nsubscribe\r\n$0\r\n\r\n:1\r\n");
    assert_int_equal(redis_push_kind(m, &name, &skip, &len), PUSH_SUBSCRIBE);
    assert_int_equal(len, 0);
    m = feed(r, true, "*3\r\n$10\r\npsubscribe\r\n$1\r\np\r\n:3\r\n");
    assert_int_equal(redis_push_kind(m, &name, &skip, &len), PUSH_PSUBSCRIBE);
    m = feed(r, true, "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n");
    assert_int_equal(redis_push_kind(m, &name, &skip, &len), PUSH_UNSUBSCRIBE);
    m = feed(r, true, "*3\r\n$12\r\npunsubscribe\r\n$1\r\np\r\n:0\r\n");
    assert_int_equal(redis_push_kind(m, &name, &skip, &len), PUSH_PUNSUBSCRIBE);
    /* anything else is not a push */
    static const char *const other[] = {
        "+OK\r\n", "-ERR no\r\n", ":3\r\n", "$7\r\nmessage\r\n",
        "*2\r\n$7\r\nmessage\r\n$1\r\na\r\n",                          /* too short */
        "*4\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n",      /* too long */
        "*3\r\n$7\r\nMESSAGE\r\n$1\r\na\r\n$1\r\nb\r\n",                 /* case matters */
        "*3\r\n$4\r\npong\r\n$1\r\na\r\n$1\r\nb\r\n",
        "*3\r\n$7\r\nmessage\r\n$-1\r\n$1\r\nb\r\n",                     /* no channel */
        "*3\r\n$9\r\nsubscribe\r\n:1\r\n:1\r\n",
        "*3\r\n+message\r\n$1\r\na\r\n$1\r\nb\r\n",
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(other); i++) {
        m = feed(r, true, other[i]);
        if (redis_push_kind(m, &name, &skip, &len) != PUSH_OTHER)
            fail_msg("taken for a push: %s", other[i]);
    }
}

static void
test_confirmations_and_commands(void **state)
{
    struct rig *r = *state;
    struct msg *m = msg_get(&r->mc);

    assert_non_null(m);
    assert_int_equal(redis_push_confirm(m, "subscribe", (const uint8_t *)"ab", 2, 3, &r->ctx), KM_OK);
    assert_int_equal(redis_push_confirm(m, "unsubscribe", NULL, 0, 0, &r->ctx), KM_OK);
    assert_int_equal(redis_push_confirm(m, "psubscribe", (const uint8_t *)"", 0, 12, &r->ctx), KM_OK);
    assert_string_equal(out(r, m), "*3\r\n$9\r\nsubscribe\r\n$2\r\nab\r\n:3\r\n"
                                   "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n"
                                   "*3\r\n$10\r\npsubscribe\r\n$0\r\n\r\n:12\r\n");
    msg_put(&r->mc, m);
    m = msg_get(&r->mc);
    assert_non_null(m);
    assert_int_equal(redis_cmd_head(m, "SUBSCRIBE", 2, &r->ctx), KM_OK);
    assert_int_equal(redis_cmd_arg(m, (const uint8_t *)"x", 1, &r->ctx), KM_OK);
    assert_int_equal(redis_cmd_arg(m, (const uint8_t *)"a\r\nb", 4, &r->ctx), KM_OK);
    assert_string_equal(out(r, m), "*3\r\n$9\r\nSUBSCRIBE\r\n$1\r\nx\r\n$4\r\na\r\nb\r\n");
    msg_put(&r->mc, m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_plans, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_subscribed_mode, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_push_kinds, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_confirmations_and_commands, rig_setup, rig_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
