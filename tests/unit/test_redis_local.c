/* tests/unit/test_redis_local.c: the Redis commands the proxy answers itself (src/proto/redis_local.c): HELLO, CLIENT, SELECT, COMMAND, INFO and a refused MULTI, byte for byte, over requests cut into small reads. */
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
#include "proto/redis_local.h"
#include "redis_client.h"

/*
 * The session plays one client (redis_client.h): each complete request is planned at once
 * with proto_redis.req_plan, as the proxy's client does. The
 * replies of local plans are gathered in order into `out`; forwarded ones are noted as
 * "<fwd>" (their plan is checked, nothing is sent anywhere). Expected bytes were read
 * from redis-server 7.0.15 where Redis has the command (HELLO, CLIENT, COMMAND INFO) and
 * from Redis 7.2's source for CLIENT SETINFO; the rest are keymux's own texts.
 */

struct sess {
    struct redis_client c;    /* its bp, mc, reader, session and ctx */
    struct proto_self self;   /* what self_fn reports, when ctx.self is set */
    char out[65536];
    size_t nout;
    uint32_t nplans;
    uint8_t plans[64];        /* plan of each request, in order */
};

static void
self_fn(const void *arg, struct proto_self *out)
{
    *out = ((const struct sess *)arg)->self;
}

static int
sess_setup(void **state)
{
    struct sess *s = calloc(1, sizeof(*s));

    assert_non_null(s);
    redis_client_init(&s->c, 42, 7);
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

/* A request: plan it, keep its reply's bytes (or "<fwd>"), give the message back. */
static int
on_request(void *arg, struct msg *m)
{
    struct sess *s = arg;

    assert_int_equal(proto_redis.req_plan(m, &s->c.rd.ps, &s->c.ctx), KM_OK);
    assert_true(s->nplans < KM_ARRAY_LEN(s->plans));
    s->plans[s->nplans++] = m->plan;
    if (m->plan == PLAN_LOCAL || m->plan == PLAN_ERROR) {
        assert_non_null(m->rsp);
        assert_true(m->done);
        assert_int_equal(m->rsp->is_error, m->plan == PLAN_ERROR);
        for (uint32_t i = 0; i < m->rsp->nout; i++) {
            const struct span *sp = &m->rsp->out[i];
            assert_true(s->nout + sp->len < sizeof(s->out));
            s->nout += span_copy(sp, 0, s->out + s->nout, (size_t)sp->len);
        }
    } else if (m->plan == PLAN_SESSION) {
        /* "<s:N>" (enum session_op), then the reply made here, if any (EXECABORT) */
        s->nout += (size_t)snprintf(s->out + s->nout, sizeof(s->out) - s->nout, "<s:%u>",
                                    (unsigned)m->sop);
        for (uint32_t i = 0; m->rsp != NULL && i < m->rsp->nout; i++) {
            const struct span *sp = &m->rsp->out[i];
            assert_true(s->nout + sp->len < sizeof(s->out));
            s->nout += span_copy(sp, 0, s->out + s->nout, (size_t)sp->len);
        }
    } else {
        assert_null(m->rsp);
        memcpy(s->out + s->nout, m->in_multi ? "<queued>" : "<fwd>", m->in_multi ? 8 : 5);
        s->nout += m->in_multi ? 8 : 5;
    }
    msg_put(&s->c.mc, m);
    return KM_OK;
}

static const struct reader_ops ops = { redis_client_no_reply, on_request, redis_client_bad };

/* Send the request of words ... (NULL-terminated); returns the replies so far from the
 * start of this call, NUL-terminated (valid until the next call). */
static const char *
call(struct sess *s, ...)
{
    size_t from = s->nout;
    va_list ap;

    va_start(ap, s);
    redis_client_vsend(&s->c, &ops, s, ap);
    va_end(ap);
    s->out[s->nout] = '\0';
    return s->out + from;
}

#define HELLO_REPLY(id)                                                                   \
    "*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n$5\r\nproto\r\n" \
    ":2\r\n$2\r\nid\r\n:" id "\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n"         \
    "$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"
#define NOAUTH_HELLO                                                                      \
    "-NOAUTH HELLO must be called with the client already authenticated, otherwise the "  \
    "HELLO AUTH <user> <pass> option can be used to authenticate the client and select "  \
    "the RESP protocol version at the same time\r\n"

static void
test_hello(void **state)
{
    struct sess *s = *state;

    assert_string_equal(call(s, "HELLO", NULL), HELLO_REPLY("42"));
    assert_string_equal(call(s, "hello", "2", NULL), HELLO_REPLY("42"));
    for (const char *const *v = (const char *const[]){ "3", "4", "1", "0", "-1", NULL }; *v; v++)
        assert_string_equal(call(s, "HELLO", *v, NULL), "-NOPROTO unsupported protocol version\r\n");
    for (const char *const *v = (const char *const[]){ "x", "02", "2 ", "", "99999999999999999999", NULL };
         *v; v++)
        assert_string_equal(call(s, "HELLO", *v, NULL),
                            "-ERR Protocol version is not an integer or out of range\r\n");
    assert_string_equal(call(s, "HELLO", "2", "FOO", NULL), "-ERR Syntax error in HELLO option 'FOO'\r\n");
    assert_string_equal(call(s, "HELLO", "2", "AUTH", "u", NULL),
                        "-ERR Syntax error in HELLO option 'AUTH'\r\n");
    assert_string_equal(call(s, "HELLO", "2", "SETNAME", NULL),
                        "-ERR Syntax error in HELLO option 'SETNAME'\r\n");
    /* an option shown in the error cannot break the reply's framing */
    assert_string_equal(call(s, "HELLO", "2", "X\r\n+OK 'q'", NULL),
                        "-ERR Syntax error in HELLO option 'X??+OK ?q?'\r\n");
    assert_string_equal(call(s, "HELLO", "2", "SETNAME", "a b", NULL),
                        "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
    assert_null(s->c.ps.name);
    /* no redis_auth: the default user takes any password, another user none */
    assert_string_equal(call(s, "HELLO", "2", "AUTH", "default", "any", "SETNAME", "app1", NULL),
                        HELLO_REPLY("42"));
    assert_string_equal(s->c.ps.name, "app1");
    assert_string_equal(call(s, "HELLO", "2", "AUTH", "bob", "any", NULL),
                        "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
}

static void
test_hello_auth(void **state)
{
    struct sess *s = *state;

    s->c.ctx.auth = "s3cret";
    s->c.ps.authed = false;
    assert_string_equal(call(s, "HELLO", NULL), NOAUTH_HELLO);
    assert_string_equal(call(s, "HELLO", "2", "SETNAME", "n", NULL), NOAUTH_HELLO);
    assert_null(s->c.ps.name);
    /* the version is checked before authentication, as in Redis */
    assert_string_equal(call(s, "HELLO", "3", NULL), "-NOPROTO unsupported protocol version\r\n");
    assert_string_equal(call(s, "HELLO", "2", "AUTH", "default", "bad", NULL),
                        "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    assert_string_equal(call(s, "HELLO", "2", "AUTH", "bob", "s3cret", NULL),
                        "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    assert_false(s->c.ps.authed);
    assert_string_equal(call(s, "CLIENT", "ID", NULL), "-NOAUTH Authentication required.\r\n");
    assert_string_equal(call(s, "HELLO", "2", "AUTH", "default", "s3cret", "SETNAME", "nm", NULL),
                        HELLO_REPLY("42"));
    assert_true(s->c.ps.authed);
    assert_string_equal(call(s, "CLIENT", "GETNAME", NULL), "$2\r\nnm\r\n");
    assert_string_equal(call(s, "GET", "k", NULL), "<fwd>");
    /* a failed HELLO AUTH leaves an authenticated client authenticated, as in Redis */
    call(s, "HELLO", "2", "AUTH", "default", "bad", NULL);
    assert_true(s->c.ps.authed);
}

static void
test_client(void **state)
{
    struct sess *s = *state;
    char name[REDIS_NAME_MAX + 2];

    assert_string_equal(call(s, "CLIENT", "ID", NULL), ":42\r\n");
    assert_string_equal(call(s, "CLIENT", "GETNAME", NULL), "$-1\r\n");
    assert_string_equal(call(s, "client", "setname", "web-1", NULL), "+OK\r\n");
    assert_string_equal(call(s, "CLIENT", "GETNAME", NULL), "$5\r\nweb-1\r\n");
    assert_string_equal(call(s, "CLIENT", "INFO", NULL),
                        "$42\r\nid=42 name=web-1 db=0 user=default resp=2\n\r\n");
    for (const char *const *v = (const char *const[]){ "a b", "a\nb", "\x7f", "tab\t", "\xc3\xa9", NULL };
         *v; v++)
        assert_string_equal(call(s, "CLIENT", "SETNAME", *v, NULL),
                            "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
    assert_string_equal(s->c.ps.name, "web-1");
    /* the longest name kept, and one byte more refused */
    memset(name, 'n', REDIS_NAME_MAX);
    name[REDIS_NAME_MAX] = '\0';
    assert_string_equal(call(s, "CLIENT", "SETNAME", name, NULL), "+OK\r\n");
    assert_string_equal(s->c.ps.name, name);
    name[REDIS_NAME_MAX] = 'n';
    name[REDIS_NAME_MAX + 1] = '\0';
    assert_string_equal(call(s, "CLIENT", "SETNAME", name, NULL),
                        "-ERR Client name too long: the proxy keeps names of at most 256 bytes\r\n");
    assert_int_equal(strlen(s->c.ps.name), REDIS_NAME_MAX);
    /* an empty name clears it */
    assert_string_equal(call(s, "CLIENT", "SETNAME", "", NULL), "+OK\r\n");
    assert_null(s->c.ps.name);
    assert_string_equal(call(s, "CLIENT", "GETNAME", NULL), "$-1\r\n");

    assert_string_equal(call(s, "CLIENT", "SETINFO", "LIB-NAME", "redis-py", NULL), "+OK\r\n");
    assert_string_equal(call(s, "CLIENT", "SETINFO", "lib-ver", "4.3.4", NULL), "+OK\r\n");
    assert_string_equal(call(s, "CLIENT", "SETINFO", "LIB-NAME", "", NULL), "+OK\r\n");
    assert_string_equal(call(s, "CLIENT", "SETINFO", "LIB-NAME", "x y", NULL),
                        "-ERR LIB-NAME cannot contain spaces, newlines or special characters.\r\n");
    assert_string_equal(call(s, "CLIENT", "SETINFO", "lib-ver", "1\n", NULL),
                        "-ERR lib-ver cannot contain spaces, newlines or special characters.\r\n");
    assert_string_equal(call(s, "CLIENT", "SETINFO", "foo", "x", NULL), "-ERR Unrecognized option 'foo'\r\n");
    assert_string_equal(call(s, "CLIENT", "SETINFO", "LIB-NAME", NULL),
                        "-ERR wrong number of arguments for 'client|setinfo' command\r\n");
    assert_string_equal(call(s, "CLIENT", "SETNAME", "a", "b", NULL),
                        "-ERR wrong number of arguments for 'client|setname' command\r\n");
    assert_string_equal(call(s, "CLIENT", "ID", "x", NULL),
                        "-ERR wrong number of arguments for 'client|id' command\r\n");
    assert_string_equal(call(s, "CLIENT", NULL), "-ERR wrong number of arguments for 'client' command\r\n");
    assert_string_equal(call(s, "CLIENT", "LIST", NULL), "-ERR CLIENT LIST is not supported by the proxy\r\n");
    assert_string_equal(call(s, "CLIENT", "KILL", "ID", "1", NULL),
                        "-ERR CLIENT KILL is not supported by the proxy\r\n");
    assert_string_equal(call(s, "CLIENT", "PAUSE", "10", NULL),
                        "-ERR CLIENT PAUSE is not supported by the proxy\r\n");
    assert_string_equal(call(s, "CLIENT", "MAINT_NOTIFICATIONS", "ON", NULL),
                        "-ERR unknown subcommand 'MAINT_NOTIFICATIONS'. Try CLIENT HELP.\r\n");
    assert_string_equal(call(s, "CLIENT", "a\r\nb", NULL), "-ERR unknown subcommand 'a??b'. Try CLIENT HELP.\r\n");
    for (uint32_t i = 0; i < s->nplans; i++)
        assert_true(s->plans[i] == PLAN_LOCAL || s->plans[i] == PLAN_ERROR);
}

static void
test_select_readonly(void **state)
{
    struct sess *s = *state;

    assert_string_equal(call(s, "SELECT", "0", NULL), "+OK\r\n");
    assert_string_equal(call(s, "SELECT", "3", NULL),
                        "-ERR SELECT is not allowed through the proxy: the pool's database is "
                        "chosen by redis_db\r\n");
    assert_string_equal(call(s, "SELECT", "x", NULL), "-ERR value is not an integer or out of range\r\n");
    assert_string_equal(call(s, "SELECT", "00", NULL), "-ERR value is not an integer or out of range\r\n");
    s->c.ctx.db = 3;
    assert_string_equal(call(s, "SELECT", "3", NULL), "+OK\r\n");
    assert_string_equal(call(s, "SELECT", "0", NULL), "+OK\r\n");
    assert_string_equal(call(s, "SELECT", "1", NULL),
                        "-ERR SELECT is not allowed through the proxy: the pool's database is "
                        "chosen by redis_db\r\n");
    assert_string_equal(call(s, "READONLY", NULL), "+OK\r\n");
    assert_string_equal(call(s, "READWRITE", NULL), "+OK\r\n");
    assert_string_equal(call(s, "READONLY", "x", NULL),
                        "-ERR wrong number of arguments for 'readonly' command\r\n");
}

#define EXECABORT "-EXECABORT Transaction discarded because of previous errors.\r\n"
#define S(op) "<s:" #op ">"

/* The session's state machine (redis_session.c): what is refused and with which text,
 * what marks the transaction, what is queued; where the requests go is the proxy's. */
static void
test_transaction_plans(void **state)
{
    struct sess *s = *state;

    assert_int_equal(SOP_MULTI, 1);
    assert_int_equal(SOP_EXEC, 2);
    assert_int_equal(SOP_EXECABORT, 3);
    assert_int_equal(SOP_DISCARD, 4);
    assert_int_equal(SOP_WATCH, 5);
    assert_int_equal(SOP_UNWATCH, 6);
    assert_int_equal(SOP_KEYLESS, 7);
    assert_string_equal(call(s, "EXEC", NULL), "-ERR EXEC without MULTI\r\n");
    assert_string_equal(call(s, "DISCARD", NULL), "-ERR DISCARD without MULTI\r\n");
    assert_string_equal(call(s, "UNWATCH", NULL), S(6));
    assert_string_equal(call(s, "WATCH", "a", "b", NULL), S(5));
    assert_true(s->c.ps.watching);
    assert_string_equal(call(s, "MULTI", NULL), S(1));
    assert_true(s->c.ps.multi);
    assert_false(s->c.ps.multi_bad);
    /* queued: keyed commands (a split one too), PING, ECHO, UNWATCH */
    assert_string_equal(call(s, "SET", "k", "1", NULL), "<queued>");
    assert_string_equal(call(s, "MGET", "a", "b", NULL), "<queued>");
    assert_string_equal(call(s, "PING", NULL), S(7));
    assert_string_equal(call(s, "ECHO", "x", NULL), S(7));
    assert_string_equal(call(s, "UNWATCH", NULL), S(7));
    /* refused without marking the transaction, as Redis does */
    assert_string_equal(call(s, "MULTI", NULL), "-ERR MULTI calls can not be nested\r\n");
    assert_string_equal(call(s, "WATCH", "k", NULL), "-ERR WATCH inside MULTI is not allowed\r\n");
    assert_false(s->c.ps.multi_bad);
    assert_string_equal(call(s, "EXEC", NULL), S(2));
    assert_false(s->c.ps.multi);
    assert_false(s->c.ps.watching);
    assert_string_equal(call(s, "GET", "k", NULL), "<fwd>");

    /* what marks it: an unknown command, a wrong word count, a local command */
    const char *bad[][4] = { { "NOSUCH", NULL }, { "GET", NULL }, { "CLIENT", "ID", NULL },
                             { "EXEC", "x", NULL } };
    for (size_t i = 0; i < KM_ARRAY_LEN(bad); i++) {
        assert_string_equal(call(s, "MULTI", NULL), S(1));
        const char *r = call(s, bad[i][0], bad[i][1], bad[i][2], NULL);
        assert_true(r[0] == '-');
        assert_true(s->c.ps.multi_bad);
        assert_string_equal(call(s, "SET", "k", "1", NULL), "<queued>");
        assert_string_equal(call(s, "EXEC", NULL), S(3) EXECABORT);
        assert_false(s->c.ps.multi);
        assert_false(s->c.ps.multi_bad);
    }
    assert_string_equal(call(s, "MULTI", NULL), S(1));
    assert_string_equal(call(s, "discard", NULL), S(4));
    assert_false(s->c.ps.multi);

    /* QUIT still closes inside; a blocking command is not blocking inside */
    call(s, "MULTI", NULL);
    assert_string_equal(call(s, "BLPOP", "q", "0", NULL), "<queued>");
    s->nplans = 0;
    assert_string_equal(call(s, "QUIT", NULL), "+OK\r\n");
    assert_int_equal(s->plans[0], PLAN_LOCAL);
}

/* Skip one RESP2 value at p[*at]; returns its element count for an array, else 0. */
static int64_t
skip_value(const char *p, size_t n, size_t *at)
{
    const char *nl = memchr(p + *at, '\n', n - *at);
    char type = p[*at];
    int64_t v;

    assert_non_null(nl);
    v = strtoll(p + *at + 1, NULL, 10);
    *at = (size_t)(nl - p) + 1;
    if (type == '$' && v >= 0)
        *at += (size_t)v + 2;
    if (type == '*') {
        for (int64_t i = 0; i < v; i++)
            skip_value(p, n, at);
        return v;
    }
    assert_true(type == '+' || type == '-' || type == ':' || type == '$');
    return 0;
}

static void
test_command(void **state)
{
    struct sess *s = *state;
    const char *r;
    char want[32];
    size_t at = 0, len;

    snprintf(want, sizeof(want), ":%d\r\n", (int)RESP_CMD_COUNT);
    assert_string_equal(call(s, "COMMAND", "COUNT", NULL), want);

    /* COMMAND: one 10-element entry per table entry, in table order */
    r = call(s, "COMMAND", NULL);
    len = strlen(r);
    assert_int_equal(skip_value(r, len, &at), RESP_CMD_COUNT);
    assert_int_equal(at, len);
    at = (size_t)(strchr(r, '\n') - r) + 1;
    for (unsigned id = 0; id < RESP_CMD_COUNT; id++) {
        const struct resp_cmd *c = resp_cmd_by_id(id);
        char name[64];
        size_t k;
        assert_int_equal(strncmp(r + at, "*10\r\n$", 6), 0);
        snprintf(name, sizeof(name), "*10\r\n$%u\r\n", c->len);
        k = strlen(name);
        assert_int_equal(strncmp(r + at, name, k), 0);
        assert_true(strncasecmp(r + at + k, c->name, c->len) == 0);
        assert_int_equal(skip_value(r, len, &at), 10);
    }

    assert_string_equal(call(s, "COMMAND", "INFO", "get", "nosuch", "EVAL", "zunionstore", NULL),
                        "*4\r\n"
                        "*10\r\n$3\r\nget\r\n:2\r\n*0\r\n:1\r\n:1\r\n:1\r\n*0\r\n*0\r\n*0\r\n*0\r\n"
                        "$-1\r\n"
                        "*10\r\n$4\r\neval\r\n:-3\r\n*1\r\n+movablekeys\r\n:0\r\n:0\r\n:0\r\n"
                        "*0\r\n*0\r\n*0\r\n*0\r\n"
                        "*10\r\n$11\r\nzunionstore\r\n:-4\r\n*1\r\n+movablekeys\r\n:1\r\n:1\r\n:1\r\n"
                        "*0\r\n*0\r\n*0\r\n*0\r\n");
    assert_string_equal(call(s, "COMMAND", "INFO", "mset", NULL),
                        "*1\r\n*10\r\n$4\r\nmset\r\n:-3\r\n*0\r\n:1\r\n:-1\r\n:2\r\n"
                        "*0\r\n*0\r\n*0\r\n*0\r\n");
    assert_string_equal(call(s, "COMMAND", "DOCS", "get", "nosuch", "ping", NULL),
                        "*4\r\n$3\r\nget\r\n*4\r\n$7\r\nsummary\r\n"
                        "$39\r\nForwarded to the server its key maps to\r\n$5\r\ngroup\r\n$6\r\nkeymux\r\n"
                        "$4\r\nping\r\n*4\r\n$7\r\nsummary\r\n$25\r\nAnswered by keymux itself\r\n"
                        "$5\r\ngroup\r\n$6\r\nkeymux\r\n");
    assert_string_equal(call(s, "COMMAND", "DOCS", "nosuch", NULL), "*0\r\n");
    r = call(s, "COMMAND", "DOCS", NULL);
    at = 0;
    assert_int_equal(skip_value(r, strlen(r), &at), 2 * RESP_CMD_COUNT);
    r = call(s, "COMMAND", "LIST", NULL);
    at = 0;
    assert_int_equal(skip_value(r, strlen(r), &at), RESP_CMD_COUNT);
    assert_int_equal(strncmp(r + strcspn(r, "\n") + 1, "$6\r\nappend\r\n", 12), 0);
    assert_string_equal(call(s, "COMMAND", "LIST", "FILTERBY", "PATTERN", "g*", NULL),
                        "-ERR COMMAND LIST FILTERBY is not supported by the proxy\r\n");
    assert_string_equal(call(s, "COMMAND", "GETKEYS", "GET", "k", NULL),
                        "-ERR COMMAND GETKEYS is not supported by the proxy\r\n");
    assert_string_equal(call(s, "COMMAND", "FOO", NULL), "-ERR unknown subcommand 'FOO'. Try COMMAND HELP.\r\n");
    assert_string_equal(call(s, "COMMAND", "COUNT", "x", NULL),
                        "-ERR wrong number of arguments for 'command|count' command\r\n");
}

/* The bulk string of an INFO reply, checked for its framing, copied to dst. */
static const char *
info_text(const char *r, char *dst, size_t cap)
{
    char *end;
    long n;

    assert_int_equal(r[0], '$');
    n = strtol(r + 1, &end, 10);
    assert_int_equal(strncmp(end, "\r\n", 2), 0);
    assert_int_equal(strlen(end + 2), (size_t)n + 2);
    assert_string_equal(end + 2 + n, "\r\n");
    assert_true((size_t)n < cap);
    memcpy(dst, end + 2, (size_t)n);
    dst[n] = '\0';
    return dst;
}

static void
test_info(void **state)
{
    struct sess *s = *state;
    char t[2048], t2[2048];

    /* no proxy around (ctx.self NULL): what the protocol knows */
    assert_string_equal(call(s, "INFO", NULL),
                        "$162\r\n# Server\r\nredis_version:7.0.0\r\nredis_mode:proxy\r\n"
                        "keymux_version:" KM_VERSION "\r\narch_bits:64\r\n\r\n# Clients\r\n\r\n"
                        "# Persistence\r\nloading:0\r\n\r\n# Stats\r\n\r\n# Proxy\r\n\r\n# Keyspace\r\n\r\n");
    s->self = (struct proto_self){ .pid = 4242, .uptime_s = 3 * 86400 + 5, .now_s = 1,
                                   .curr_connections = 7, .total_connections = 99,
                                   .pool_clients = 5, .workers = 1, .nservers = 4, .nlive = 3,
                                   .pool = "alpha beta\r\n", .config_gen = 3, .reloads = 2,
                                   .reload_failures = 1 };
    s->c.ctx.self = self_fn;
    s->c.ctx.self_arg = s;
    info_text(call(s, "INFO", NULL), t, sizeof(t));
    assert_non_null(strstr(t, "# Server\r\nredis_version:7.0.0\r\n"));
    assert_non_null(strstr(t, "\r\nprocess_id:4242\r\nuptime_in_seconds:259205\r\nuptime_in_days:3\r\n"));
    assert_non_null(strstr(t, "\r\n\r\n# Clients\r\nconnected_clients:5\r\n\r\n"));
    assert_non_null(strstr(t, "# Stats\r\ntotal_connections_received:99\r\n"));
    assert_non_null(strstr(t, "# Proxy\r\npool:alpha_beta__\r\nservers:4\r\nservers_live:3\r\n"
                              "workers:1\r\ncurr_connections:7\r\nconfig_generation:3\r\n"
                              "reloads:2\r\nreload_failures:1\r\n\r\n# Keyspace\r\n"));
    assert_string_equal(info_text(call(s, "INFO", "everything", NULL), t2, sizeof(t2)), t);
    assert_string_equal(info_text(call(s, "info", "ALL", NULL), t2, sizeof(t2)), t);
    assert_string_equal(call(s, "INFO", "clients", NULL), "$32\r\n# Clients\r\nconnected_clients:5\r\n\r\n");
    assert_string_equal(call(s, "INFO", "stats", "Clients", NULL),
                        "$74\r\n# Clients\r\nconnected_clients:5\r\n\r\n# Stats\r\n"
                        "total_connections_received:99\r\n\r\n");
    assert_string_equal(call(s, "INFO", "nosuch", NULL), "$0\r\n\r\n");
    assert_null(strstr(info_text(call(s, "INFO", "server", NULL), t2, sizeof(t2)), "# Clients"));
}

/* Every request cut into reads of 1, 2, 3, 5 and 700 bytes gives the same replies. */
static void
test_read_sizes(void **state)
{
    struct sess *s = *state;
    char first[2048];

    for (size_t i = 0; i < 5; i++) {
        s->c.step = (size_t[]){ 1, 2, 3, 5, 700 }[i];
        s->nout = 0;
        call(s, "CLIENT", "SETNAME", "a-rather-long-client-name-0123456789", NULL);
        call(s, "HELLO", "2", "SETNAME", "n2", NULL);
        call(s, "CLIENT", "GETNAME", NULL);
        call(s, "COMMAND", "INFO", "get", "set", NULL);
        call(s, "MULTI", NULL);
        call(s, "SET", "k", "v", NULL);
        call(s, "EXEC", NULL);
        if (i == 0)
            memcpy(first, s->out, s->nout + 1);
        else
            assert_string_equal(s->out, first);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hello, sess_setup, sess_teardown),
        cmocka_unit_test_setup_teardown(test_hello_auth, sess_setup, sess_teardown),
        cmocka_unit_test_setup_teardown(test_client, sess_setup, sess_teardown),
        cmocka_unit_test_setup_teardown(test_select_readonly, sess_setup, sess_teardown),
        cmocka_unit_test_setup_teardown(test_transaction_plans, sess_setup, sess_teardown),
        cmocka_unit_test_setup_teardown(test_command, sess_setup, sess_teardown),
        cmocka_unit_test_setup_teardown(test_info, sess_setup, sess_teardown),
        cmocka_unit_test_setup_teardown(test_read_sizes, sess_setup, sess_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
