/* tests/unit/redis_client.h: one Redis client for the planner's unit tests: requests made
 * from their words, read into a reader (512-byte segments, `step` bytes per read, so that
 * names and arguments cross segment ends) and handed to the test's reader_ops, which plan
 * them with proto_redis.req_plan as the proxy's client does. Include after cmocka.h. */
#ifndef KM_TEST_REDIS_CLIENT_H
#define KM_TEST_REDIS_CLIENT_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/common.h"
#include "proto/reader.h"

struct redis_client {
    struct bufpool bp;
    struct msgcache mc;
    struct reader_env env;
    struct reader rd;
    struct proto_session ps;
    struct proto_ctx ctx;    /* ctx.sess is &ps: a client's requests */
    size_t step;             /* bytes per read */
};

/* An authenticated client (session id `id`) reading `step` bytes at a time. */
static inline void
redis_client_init(struct redis_client *c, uint64_t id, size_t step)
{
    bufpool_init(&c->bp, BUF_MIN_SIZE, 8);
    msgcache_init(&c->mc, 8);
    c->env.pr = &proto_redis;
    c->env.max_request = UINT64_MAX;
    c->env.mc = &c->mc;
    reader_init(&c->rd);
    reader_req_start(&c->rd, &c->env);
    c->ps.id = id;
    c->ps.authed = true;
    c->ctx.bp = &c->bp;
    c->ctx.mc = &c->mc;
    c->ctx.sess = &c->ps;
    c->step = step;
}

/* Release all; every message and segment must be back. */
static inline void
redis_client_release(struct redis_client *c)
{
    reader_release(&c->rd, &c->mc);
    proto_session_clear(&c->ps);
    assert_null(c->ps.name);
    assert_int_equal(c->mc.nlive, 0);
    msgcache_destroy(&c->mc);
    bufpool_destroy(&c->bp);
    assert_int_equal(c->bp.nlive, 0);
}

/* One request in RESP from its words (NULL-terminated), appended to buf at *n. */
static inline void
redis_client_put(char *buf, size_t cap, size_t *n, const char *const *argv)
{
    size_t argc = 0;

    while (argv[argc] != NULL)
        argc++;
    *n += (size_t)snprintf(buf + *n, cap - *n, "*%zu\r\n", argc);
    for (size_t i = 0; i < argc; i++) {
        size_t len = strlen(argv[i]);
        *n += (size_t)snprintf(buf + *n, cap - *n, "$%zu\r\n", len);
        assert_true(*n + len + 2 < cap);
        memcpy(buf + *n, argv[i], len);
        *n += len;
        memcpy(buf + *n, "\r\n", 2);
        *n += 2;
    }
}

/* reader_ops callbacks for a client's side: no request of the proxy's own is owed a reply,
 * and input the reader refuses fails the test. */
static inline struct msg *
redis_client_no_reply(void *arg)
{
    (void)arg;
    return NULL;
}

static inline int
redis_client_bad(void *arg, const char *why, bool recoverable)
{
    (void)arg;
    (void)recoverable;
    fail_msg("bad request: %s", why);
    return KM_ERROR;
}

/* Send the request of the words in ap (NULL-terminated) through ops, with arg. */
static inline void
redis_client_vsend(struct redis_client *c, const struct reader_ops *ops, void *arg, va_list ap)
{
    const char *argv[32];
    size_t argc = 0, n = 0;
    char req[4096];

    while ((argv[argc] = va_arg(ap, const char *)) != NULL) {
        argc++;
        assert_true(argc < KM_ARRAY_LEN(argv));
    }
    redis_client_put(req, sizeof(req), &n, argv);
    for (size_t off = 0; off < n;) {
        size_t room;
        uint8_t *p = chain_space(&c->rd.in, &c->bp, &room);
        assert_non_null(p);
        size_t k = KM_MIN(KM_MIN(c->step, room), n - off);
        memcpy(p, req + off, k);
        chain_commit(&c->rd.in, k);
        off += k;
        assert_int_equal(reader_parse(&c->rd, &c->env, true, ops, arg), KM_OK);
    }
}

#endif
