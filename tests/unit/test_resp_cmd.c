/* tests/unit/test_resp_cmd.c: command table: lookup, arity, key positions, numkeys errors. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include "core/common.h"
#include "proto/resp_cmd.h"

/*
 * Expected arities, key positions and error texts below were read from redis-server
 * 7.0.15 (COMMAND INFO, COMMAND GETKEYS, and the errors it replies to the same requests);
 * tests/check_resp_cmd.py repeats that comparison for the whole table against a live server.
 */

static const struct resp_cmd *
lookup(const char *s)
{
    return resp_cmd_lookup((const uint8_t *)s, strlen(s));
}

/* The table is strictly sorted (lookup is a binary search), ids match positions, names agree. */
static void
test_table_consistent(void **state)
{
    (void)state;
    assert_true(RESP_CMD_COUNT > 150);
    for (unsigned i = 0; i < RESP_CMD_COUNT; i++) {
        const struct resp_cmd *c = resp_cmd_by_id(i);
        char lower[RESP_CMD_NAME_MAX + 1];
        char msg[128];

        assert_int_equal(c->id, i);
        assert_int_equal(c->len, strlen(c->name));
        assert_true(c->len > 0 && c->len <= RESP_CMD_NAME_MAX);
        if (i > 0 && strcmp(resp_cmd_by_id(i - 1)->name, c->name) >= 0)
            fail_msg("table not sorted at %s after %s", c->name, resp_cmd_by_id(i - 1)->name);
        for (size_t k = 0; k <= c->len; k++) {
            char ch = c->name[k];

            assert_false(ch >= 'a' && ch <= 'z');
            lower[k] = (char)(ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch);
        }
        snprintf(msg, sizeof(msg), "ERR wrong number of arguments for '%s' command", lower);
        assert_string_equal(c->arity_err, msg);
        assert_ptr_equal(lookup(c->name), c);
        assert_ptr_equal(lookup(lower), c);
        assert_true(c->arity != 0);
        assert_true(c->policy <= RESP_P_PUBSUB);
        /* every entry at its smallest word count has a key range inside the request */
        if (c->numkeys_at == 0) {
            uint64_t n = (uint64_t)(c->arity > 0 ? c->arity : -c->arity);
            uint64_t first, last, step;
            const char *err = NULL;

            if (!resp_cmd_arity_ok(c, n))
                n++;            /* key value pair commands need whole pairs */
            assert_true(resp_cmd_arity_ok(c, n));
            assert_int_equal(resp_cmd_keys(c, n, 0, &first, &last, &step, &err), KM_OK);
            if (c->policy == RESP_P_LOCAL || c->policy == RESP_P_KEYSPACE || c->first_key == 0) {
                /* STREAMS: the planner finds the keys in the words (redis_stream.c) */
                assert_true(c->policy == RESP_P_LOCAL || c->policy == RESP_P_KEYSPACE ||
                            c->policy == RESP_P_SESSION || c->policy == RESP_P_STREAMS ||
                            c->policy == RESP_P_PUBSUB);
                assert_int_equal(first, 0);
            } else {
                assert_true(first >= 1 && first <= last && last < n && step >= 1);
            }
        } else {
            assert_true(c->policy == RESP_P_SAMESRV || c->policy == RESP_P_BLOCK);
            assert_true(c->numkeys_at == 1 || c->numkeys_at == 2);
        }
    }
}

static void
test_lookup_case_insensitive(void **state)
{
    static const char *const names[] = { "get", "GET", "Get", "gEt", "mget", "MGet",
                                         "zunionstore", "ZunionStore", "eval_ro", "EVAL_RO",
                                         "georadiusbymember_ro", "GEORADIUSBYMEMBER_RO" };

    (void)state;
    for (size_t i = 0; i < KM_ARRAY_LEN(names); i++) {
        const struct resp_cmd *c = lookup(names[i]);

        assert_non_null(c);
        assert_int_equal(strlen(c->name), strlen(names[i]));
        assert_int_equal(strncasecmp(c->name, names[i], c->len), 0);
    }
    assert_int_equal(lookup("get")->id, RESP_CMD_GET);
    assert_int_equal(lookup("Mget")->id, RESP_CMD_MGET);
    assert_int_equal(lookup("ping")->policy, RESP_P_LOCAL);
    /* the length decides, not a terminator */
    assert_ptr_equal(resp_cmd_lookup((const uint8_t *)"GETDEL", 3), lookup("GET"));
}

/* Unsupported commands and junk names are unknown. */
static void
test_lookup_unknown(void **state)
{
    static const char *const names[] = {
        "MIGRATE", "MOVE", "OBJECT", "RANDOMKEY",
        "PUBSUB", "SSUBSCRIBE", "SUNSUBSCRIBE", "SPUBLISH",
        "SCRIPT", "FUNCTION",
        "CONFIG",
        "SHUTDOWN", "DEBUG", "MONITOR", "SLAVEOF", "REPLICAOF", "SAVE", "BGSAVE", "SWAPDB",
        "RESET", "MEMORY", "LATENCY", "SLOWLOG", "ACL", "CLUSTER", "PFDEBUG",
        "PFSELFTEST", "LASTSAVE", "TIME", "ROLE", "SYNC", "PSYNC", "FAILOVER",
        "GE", "GETX", "GET ", " GET", "G", "ZZZZZZ", "AAAA", "_", "EVAL_", "get_ro",
    };
    char big[64];

    (void)state;
    for (size_t i = 0; i < KM_ARRAY_LEN(names); i++) {
        if (lookup(names[i]) != NULL)
            fail_msg("'%s' should be unknown", names[i]);
    }
    assert_null(resp_cmd_lookup((const uint8_t *)"", 0));
    assert_null(resp_cmd_lookup((const uint8_t *)"GET\0", 4));
    assert_null(resp_cmd_lookup((const uint8_t *)"\0GET", 4));
    memset(big, 'A', sizeof(big));
    assert_null(resp_cmd_lookup((const uint8_t *)big, RESP_CMD_NAME_MAX));
    assert_null(resp_cmd_lookup((const uint8_t *)big, RESP_CMD_NAME_MAX + 1));
    assert_null(resp_cmd_lookup((const uint8_t *)big, sizeof(big)));
}

/* Commands the brief requires, with their policy. */
static void
test_lookup_required(void **state)
{
    static const struct {
        const char *name;
        int         policy;
    } req[] = {
        { "PING", RESP_P_LOCAL }, { "ECHO", RESP_P_LOCAL }, { "QUIT", RESP_P_LOCAL },
        { "AUTH", RESP_P_LOCAL }, { "SELECT", RESP_P_LOCAL },
        { "HELLO", RESP_P_LOCAL }, { "CLIENT", RESP_P_LOCAL }, { "COMMAND", RESP_P_LOCAL },
        { "INFO", RESP_P_LOCAL }, { "READONLY", RESP_P_LOCAL }, { "READWRITE", RESP_P_LOCAL },
        { "MULTI", RESP_P_SESSION }, { "EXEC", RESP_P_SESSION }, { "DISCARD", RESP_P_SESSION },
        { "UNWATCH", RESP_P_SESSION }, { "WATCH", RESP_P_SESSION },
        { "BLPOP", RESP_P_BLOCK }, { "BRPOP", RESP_P_BLOCK }, { "BRPOPLPUSH", RESP_P_BLOCK },
        { "BLMOVE", RESP_P_BLOCK }, { "BLMPOP", RESP_P_BLOCK }, { "BZPOPMIN", RESP_P_BLOCK },
        { "BZPOPMAX", RESP_P_BLOCK }, { "BZMPOP", RESP_P_BLOCK },
        { "SUBSCRIBE", RESP_P_PUBSUB }, { "PSUBSCRIBE", RESP_P_PUBSUB },
        { "UNSUBSCRIBE", RESP_P_PUBSUB }, { "PUNSUBSCRIBE", RESP_P_PUBSUB },
        { "PUBLISH", RESP_P_PUBSUB },
        { "SCAN", RESP_P_KEYSPACE }, { "DBSIZE", RESP_P_KEYSPACE }, { "KEYS", RESP_P_KEYSPACE },
        { "FLUSHALL", RESP_P_KEYSPACE }, { "FLUSHDB", RESP_P_KEYSPACE },
        { "MGET", RESP_P_MGET }, { "MSET", RESP_P_MSET },
        { "DEL", RESP_P_SUM }, { "UNLINK", RESP_P_SUM }, { "EXISTS", RESP_P_SUM },
        { "TOUCH", RESP_P_SUM },
        { "GET", RESP_P_SINGLE }, { "SET", RESP_P_SINGLE }, { "GETDEL", RESP_P_SINGLE },
        { "GETEX", RESP_P_SINGLE }, { "GETRANGE", RESP_P_SINGLE }, { "SETRANGE", RESP_P_SINGLE },
        { "LPOS", RESP_P_SINGLE }, { "SMISMEMBER", RESP_P_SINGLE },
        { "ZRANDMEMBER", RESP_P_SINGLE }, { "HRANDFIELD", RESP_P_SINGLE },
        { "ZMSCORE", RESP_P_SINGLE }, { "BITFIELD_RO", RESP_P_SINGLE },
        { "PFADD", RESP_P_SINGLE }, { "GEOADD", RESP_P_SINGLE }, { "GEORADIUS", RESP_P_SINGLE },
        { "EXPIRE", RESP_P_SINGLE }, { "PERSIST", RESP_P_SINGLE }, { "DUMP", RESP_P_SINGLE },
        { "RESTORE", RESP_P_SINGLE }, { "SORT", RESP_P_SINGLE }, { "TTL", RESP_P_SINGLE },
        { "TYPE", RESP_P_SINGLE }, { "HSET", RESP_P_SINGLE }, { "LPUSH", RESP_P_SINGLE },
        { "SADD", RESP_P_SINGLE }, { "ZADD", RESP_P_SINGLE },
        { "XADD", RESP_P_SINGLE }, { "XLEN", RESP_P_SINGLE }, { "XRANGE", RESP_P_SINGLE },
        { "XREVRANGE", RESP_P_SINGLE }, { "XDEL", RESP_P_SINGLE }, { "XTRIM", RESP_P_SINGLE },
        { "XACK", RESP_P_SINGLE }, { "XCLAIM", RESP_P_SINGLE }, { "XAUTOCLAIM", RESP_P_SINGLE },
        { "XPENDING", RESP_P_SINGLE }, { "XSETID", RESP_P_SINGLE }, { "XGROUP", RESP_P_SINGLE },
        { "XINFO", RESP_P_SINGLE },
        { "SDIFF", RESP_P_SAMESRV }, { "SINTER", RESP_P_SAMESRV }, { "SUNION", RESP_P_SAMESRV },
        { "SDIFFSTORE", RESP_P_SAMESRV }, { "SINTERSTORE", RESP_P_SAMESRV },
        { "SUNIONSTORE", RESP_P_SAMESRV }, { "SMOVE", RESP_P_SAMESRV },
        { "RPOPLPUSH", RESP_P_SAMESRV }, { "LMOVE", RESP_P_SAMESRV },
        { "PFMERGE", RESP_P_SAMESRV }, { "PFCOUNT", RESP_P_SAMESRV },
        { "ZUNIONSTORE", RESP_P_SAMESRV }, { "ZINTERSTORE", RESP_P_SAMESRV },
        { "ZDIFFSTORE", RESP_P_SAMESRV }, { "ZRANGESTORE", RESP_P_SAMESRV },
        { "ZUNION", RESP_P_SAMESRV }, { "ZINTER", RESP_P_SAMESRV }, { "ZDIFF", RESP_P_SAMESRV },
        { "ZINTERCARD", RESP_P_SAMESRV }, { "SINTERCARD", RESP_P_SAMESRV },
        { "LMPOP", RESP_P_SAMESRV }, { "ZMPOP", RESP_P_SAMESRV }, { "COPY", RESP_P_SAMESRV },
        { "EVAL", RESP_P_SAMESRV }, { "EVALSHA", RESP_P_SAMESRV }, { "EVAL_RO", RESP_P_SAMESRV },
        { "EVALSHA_RO", RESP_P_SAMESRV }, { "FCALL", RESP_P_SAMESRV },
        { "FCALL_RO", RESP_P_SAMESRV },
        { "RENAME", RESP_P_SAMESRV }, { "RENAMENX", RESP_P_SAMESRV },
        { "MSETNX", RESP_P_SAMESRV }, { "BITOP", RESP_P_SAMESRV },
    };

    (void)state;
    for (size_t i = 0; i < KM_ARRAY_LEN(req); i++) {
        const struct resp_cmd *c = lookup(req[i].name);

        if (c == NULL)
            fail_msg("'%s' missing", req[i].name);
        if (c->policy != req[i].policy)
            fail_msg("'%s' policy %d, want %d", req[i].name, c->policy, req[i].policy);
    }
    assert_int_equal(lookup("PING")->id, RESP_CMD_PING);
    assert_int_equal(lookup("ECHO")->id, RESP_CMD_ECHO);
    assert_int_equal(lookup("QUIT")->id, RESP_CMD_QUIT);
    assert_int_equal(lookup("AUTH")->id, RESP_CMD_AUTH);
    assert_int_equal(lookup("SELECT")->id, RESP_CMD_SELECT);
}

static void
test_arity(void **state)
{
    static const struct {
        const char *name;
        uint64_t    nargs;
        bool        ok;
    } cases[] = {
        { "GET", 1, false }, { "GET", 2, true }, { "GET", 3, false },
        { "SET", 2, false }, { "SET", 3, true }, { "SET", 7, true },
        { "MGET", 1, false }, { "MGET", 2, true }, { "MGET", 1000, true },
        { "MSET", 1, false }, { "MSET", 2, false }, { "MSET", 3, true }, { "MSET", 4, false },
        { "MSET", 5, true }, { "MSET", 1001, true }, { "MSET", 1000, false },
        { "MSETNX", 3, true }, { "MSETNX", 4, false },
        { "DEL", 1, false }, { "DEL", 2, true }, { "DEL", 9, true },
        { "PING", 1, true }, { "PING", 2, true }, { "PING", 3, true },
        { "ECHO", 1, false }, { "ECHO", 2, true }, { "ECHO", 3, false },
        { "SELECT", 2, true }, { "SELECT", 3, false }, { "QUIT", 1, true }, { "AUTH", 1, false },
        { "AUTH", 2, true }, { "AUTH", 3, true },
        { "EVAL", 2, false }, { "EVAL", 3, true },
        { "ZUNIONSTORE", 3, false }, { "ZUNIONSTORE", 4, true },
        { "LMPOP", 3, false }, { "LMPOP", 4, true },
        { "BITOP", 3, false }, { "BITOP", 4, true },
        { "RENAME", 3, true }, { "RENAME", 4, false },
        { "XGROUP", 2, false }, { "XGROUP", 3, true }, { "XINFO", 3, true },
        { "LINSERT", 5, true }, { "LINSERT", 6, false },
        { "GEOSEARCHSTORE", 7, false }, { "GEOSEARCHSTORE", 8, true },
    };

    (void)state;
    for (size_t i = 0; i < KM_ARRAY_LEN(cases); i++) {
        const struct resp_cmd *c = lookup(cases[i].name);

        assert_non_null(c);
        if (resp_cmd_arity_ok(c, cases[i].nargs) != cases[i].ok)
            fail_msg("%s with %llu words: want %s", cases[i].name,
                     (unsigned long long)cases[i].nargs, cases[i].ok ? "ok" : "not ok");
    }
    assert_false(resp_cmd_pairs_ok(lookup("MSET"), 4));
    assert_true(resp_cmd_pairs_ok(lookup("MSET"), 5));
    assert_true(resp_cmd_pairs_ok(lookup("HSET"), 5));     /* not a pair-range command here */
    assert_string_equal(lookup("MSET")->arity_err,
                        "ERR wrong number of arguments for 'mset' command");
}

/* One key-range expectation: a request of nargs words, with numkeys, gives first..last/step. */
struct keycase {
    const char *req;        /* for the failure message */
    const char *name;
    uint64_t    nargs;
    int64_t     numkeys;
    int         rc;
    uint64_t    first, last, step, extra;
    const char *err;
};

static void
test_keys(void **state)
{
    static const struct keycase cases[] = {
        /* plain ranges */
        { "GET k", "GET", 2, 0, KM_OK, 1, 1, 1, 0, NULL },
        { "MGET a b c", "MGET", 4, 0, KM_OK, 1, 3, 1, 0, NULL },
        { "MSET a 1 b 2 c 3", "MSET", 7, 0, KM_OK, 1, 5, 2, 0, NULL },
        { "MSETNX a 1 b 2", "MSETNX", 5, 0, KM_OK, 1, 3, 2, 0, NULL },
        { "DEL a b c", "DEL", 4, 0, KM_OK, 1, 3, 1, 0, NULL },
        { "BITOP AND d a b", "BITOP", 5, 0, KM_OK, 2, 4, 1, 0, NULL },
        { "RENAME a b", "RENAME", 3, 0, KM_OK, 1, 2, 1, 0, NULL },
        { "COPY a b REPLACE", "COPY", 4, 0, KM_OK, 1, 2, 1, 0, NULL },
        { "SMOVE a b m", "SMOVE", 4, 0, KM_OK, 1, 2, 1, 0, NULL },
        { "SINTERSTORE d a b", "SINTERSTORE", 4, 0, KM_OK, 1, 3, 1, 0, NULL },
        { "PFCOUNT a b", "PFCOUNT", 3, 0, KM_OK, 1, 2, 1, 0, NULL },
        { "GEOSEARCHSTORE d s FROMMEMBER m BYRADIUS 1 km", "GEOSEARCHSTORE", 8, 0, KM_OK,
          1, 2, 1, 0, NULL },
        { "XGROUP CREATE k g $", "XGROUP", 5, 0, KM_OK, 2, 2, 1, 0, NULL },
        { "XINFO CONSUMERS k g", "XINFO", 4, 0, KM_OK, 2, 2, 1, 0, NULL },
        { "XINFO STREAM k", "XINFO", 3, 0, KM_OK, 2, 2, 1, 0, NULL },
        { "PING", "PING", 1, 0, KM_OK, 0, 0, 0, 0, NULL },
        { "SELECT 0", "SELECT", 2, 0, KM_OK, 0, 0, 0, 0, NULL },
        { "MSET a 1 b", "MSET", 4, 0, KM_ERROR, 0, 0, 0, 0,
          "ERR wrong number of arguments for 'mset' command" },
        { "GET", "GET", 1, 0, KM_ERROR, 0, 0, 0, 0,
          "ERR wrong number of arguments for 'get' command" },

        /* numkeys at word 2 */
        { "EVAL s 2 a b c", "EVAL", 6, 2, KM_OK, 3, 4, 1, 0, NULL },
        { "EVAL s 3 a b c", "EVAL", 6, 3, KM_OK, 3, 5, 1, 0, NULL },
        { "EVAL s 0", "EVAL", 3, 0, KM_OK, 0, 0, 0, 0, NULL },
        { "EVAL s 0 x", "EVAL", 4, 0, KM_OK, 0, 0, 0, 0, NULL },
        { "EVAL s 2 a", "EVAL", 4, 2, KM_ERROR, 0, 0, 0, 0,
          "ERR Number of keys can't be greater than number of args" },
        { "EVAL s 5 a", "EVAL", 4, 5, KM_ERROR, 0, 0, 0, 0,
          "ERR Number of keys can't be greater than number of args" },
        { "EVAL s -1 a", "EVAL", 4, -1, KM_ERROR, 0, 0, 0, 0,
          "ERR Number of keys can't be negative" },
        { "EVAL s x a", "EVAL", 4, RESP_NUMKEYS_BAD, KM_ERROR, 0, 0, 0, 0,
          "ERR value is not an integer or out of range" },
        { "EVALSHA h 1 a", "EVALSHA", 4, 1, KM_OK, 3, 3, 1, 0, NULL },
        { "EVALSHA_RO h -1 a", "EVALSHA_RO", 4, -1, KM_ERROR, 0, 0, 0, 0,
          "ERR Number of keys can't be negative" },
        { "EVAL_RO s 1 a", "EVAL_RO", 4, 1, KM_OK, 3, 3, 1, 0, NULL },
        { "FCALL f 1 k a", "FCALL", 5, 1, KM_OK, 3, 3, 1, 0, NULL },
        { "FCALL f x a", "FCALL", 4, RESP_NUMKEYS_BAD, KM_ERROR, 0, 0, 0, 0,
          "ERR Bad number of keys provided" },
        { "FCALL_RO f 5 a", "FCALL_RO", 4, 5, KM_ERROR, 0, 0, 0, 0,
          "ERR Number of keys can't be greater than number of args" },
        { "ZUNIONSTORE d 2 a b WEIGHTS 1 2", "ZUNIONSTORE", 8, 2, KM_OK, 3, 4, 1, 1, NULL },
        { "ZUNIONSTORE d 1 a", "ZUNIONSTORE", 4, 1, KM_OK, 3, 3, 1, 1, NULL },
        { "ZUNIONSTORE d 0 a", "ZUNIONSTORE", 4, 0, KM_ERROR, 0, 0, 0, 1,
          "ERR at least 1 input key is needed for 'zunionstore' command" },
        { "ZUNIONSTORE d -1 a", "ZUNIONSTORE", 4, -1, KM_ERROR, 0, 0, 0, 1,
          "ERR at least 1 input key is needed for 'zunionstore' command" },
        { "ZUNIONSTORE d x a", "ZUNIONSTORE", 4, RESP_NUMKEYS_BAD, KM_ERROR, 0, 0, 0, 1,
          "ERR value is not an integer or out of range" },
        { "ZUNIONSTORE d 2 a", "ZUNIONSTORE", 4, 2, KM_ERROR, 0, 0, 0, 1, "ERR syntax error" },
        { "ZINTERSTORE d 0 a", "ZINTERSTORE", 4, 0, KM_ERROR, 0, 0, 0, 1,
          "ERR at least 1 input key is needed for 'zinterstore' command" },
        { "ZDIFFSTORE d 2 a b", "ZDIFFSTORE", 5, 2, KM_OK, 3, 4, 1, 1, NULL },

        /* numkeys at word 1 */
        { "ZUNION 2 a b WITHSCORES", "ZUNION", 5, 2, KM_OK, 2, 3, 1, 0, NULL },
        { "ZUNION 2 a", "ZUNION", 3, 2, KM_ERROR, 0, 0, 0, 0, "ERR syntax error" },
        { "ZINTER 0 a", "ZINTER", 3, 0, KM_ERROR, 0, 0, 0, 0,
          "ERR at least 1 input key is needed for 'zinter' command" },
        { "ZDIFF -1 a", "ZDIFF", 3, -1, KM_ERROR, 0, 0, 0, 0,
          "ERR at least 1 input key is needed for 'zdiff' command" },
        { "ZINTERCARD 2 a b", "ZINTERCARD", 4, 2, KM_OK, 2, 3, 1, 0, NULL },
        { "ZINTERCARD 2 a", "ZINTERCARD", 3, 2, KM_ERROR, 0, 0, 0, 0, "ERR syntax error" },
        { "SINTERCARD 2 a b LIMIT 1", "SINTERCARD", 6, 2, KM_OK, 2, 3, 1, 0, NULL },
        { "SINTERCARD 2 a", "SINTERCARD", 3, 2, KM_ERROR, 0, 0, 0, 0,
          "ERR Number of keys can't be greater than number of args" },
        { "SINTERCARD 0 a", "SINTERCARD", 3, 0, KM_ERROR, 0, 0, 0, 0,
          "ERR numkeys should be greater than 0" },
        { "SINTERCARD x a", "SINTERCARD", 3, RESP_NUMKEYS_BAD, KM_ERROR, 0, 0, 0, 0,
          "ERR numkeys should be greater than 0" },
        { "LMPOP 2 a b LEFT COUNT 2", "LMPOP", 7, 2, KM_OK, 2, 3, 1, 0, NULL },
        { "LMPOP 1 a LEFT", "LMPOP", 4, 1, KM_OK, 2, 2, 1, 0, NULL },
        { "LMPOP 2 a LEFT", "LMPOP", 4, 2, KM_ERROR, 0, 0, 0, 0, "ERR syntax error" },
        { "LMPOP 0 a LEFT", "LMPOP", 4, 0, KM_ERROR, 0, 0, 0, 0,
          "ERR numkeys should be greater than 0" },
        { "LMPOP x a LEFT", "LMPOP", 4, RESP_NUMKEYS_BAD, KM_ERROR, 0, 0, 0, 0,
          "ERR numkeys should be greater than 0" },
        { "ZMPOP 1 a MIN COUNT 3", "ZMPOP", 6, 1, KM_OK, 2, 2, 1, 0, NULL },
        { "ZMPOP 2 a MIN", "ZMPOP", 4, 2, KM_ERROR, 0, 0, 0, 0, "ERR syntax error" },
        { "ZMPOP -1 a MIN", "ZMPOP", 4, -1, KM_ERROR, 0, 0, 0, 0,
          "ERR numkeys should be greater than 0" },
        { "ZMPOP 9223372036854775807 a MIN", "ZMPOP", 4, INT64_MAX, KM_ERROR, 0, 0, 0, 0,
          "ERR syntax error" },
    };

    (void)state;
    for (size_t i = 0; i < KM_ARRAY_LEN(cases); i++) {
        const struct keycase *t = &cases[i];
        const struct resp_cmd *c = lookup(t->name);
        uint64_t first = 99, last = 99, step = 99;
        const char *err = NULL;
        int rc;

        assert_non_null(c);
        rc = resp_cmd_keys(c, t->nargs, t->numkeys, &first, &last, &step, &err);
        if (rc != t->rc)
            fail_msg("%s: rc %d, want %d (err %s)", t->req, rc, t->rc, err ? err : "-");
        if (rc == KM_OK) {
            if (first != t->first || last != t->last || step != t->step)
                fail_msg("%s: keys %llu..%llu/%llu, want %llu..%llu/%llu", t->req,
                         (unsigned long long)first, (unsigned long long)last,
                         (unsigned long long)step, (unsigned long long)t->first,
                         (unsigned long long)t->last, (unsigned long long)t->step);
        } else {
            assert_non_null(err);
            if (strcmp(err, t->err) != 0)
                fail_msg("%s: err '%s', want '%s'", t->req, err, t->err);
        }
        assert_int_equal(resp_cmd_extra_key(c), t->extra);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_consistent),
        cmocka_unit_test(test_lookup_case_insensitive),
        cmocka_unit_test(test_lookup_unknown),
        cmocka_unit_test(test_lookup_required),
        cmocka_unit_test(test_arity),
        cmocka_unit_test(test_keys),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
