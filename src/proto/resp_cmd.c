/* src/proto/resp_cmd.c: command table lookup, arity checks and key positions. */
#include "proto/resp_cmd.h"

#include <string.h>

#include "core/common.h"

/* The table, built from resp_cmd.def in its (sorted) order, so that table[id].id == id. */
static const struct resp_cmd resp_cmd_table[] = {
#define RESP_CMD_X(ID, lname, ar, first, last, st, pol, nk)                          \
    {                                                                                \
        .name = #ID,                                                                 \
        .arity_err = "ERR wrong number of arguments for '" #lname "' command",       \
        .arity = (ar), .first_key = (first), .last_key = (last), .step = (st),       \
        .policy = RESP_P_##pol, .numkeys_at = (nk), .id = RESP_CMD_##ID,             \
        .len = (uint8_t)(sizeof(#ID) - 1),                                           \
    },
#include "proto/resp_cmd.def"
#undef RESP_CMD_X
};

_Static_assert(KM_ARRAY_LEN(resp_cmd_table) == RESP_CMD_COUNT, "table and ids differ");
_Static_assert(RESP_CMD_COUNT <= 256, "ids must fit in uint8_t");

/* How a numkeys command words its errors (each family copies Redis 7.0's own text). */
struct resp_nk_rule {
    uint8_t     min;    /* smallest numkeys accepted (0 or 1) */
    uint8_t     tail;   /* words required after the keys (LMPOP's LEFT|RIGHT) */
    const char *bad;    /* numkeys is not an integer */
    const char *low;    /* numkeys < min */
    const char *many;   /* more keys than words */
};

#define RESP_NK_NOTINT "ERR value is not an integer or out of range"
#define RESP_NK_GT0    "ERR numkeys should be greater than 0"
#define RESP_NK_MANY   "ERR Number of keys can't be greater than number of args"
#define RESP_NK_SYNTAX "ERR syntax error"
#define RESP_NK_ZSET(lname) \
    { 1, 0, RESP_NK_NOTINT, "ERR at least 1 input key is needed for '" lname "' command", RESP_NK_SYNTAX }

/* The rule for a numkeys command; NULL for the others. */
static const struct resp_nk_rule *
resp_nk_rule(uint8_t id)
{
    static const struct resp_nk_rule eval = {
        0, 0, RESP_NK_NOTINT, "ERR Number of keys can't be negative", RESP_NK_MANY };
    static const struct resp_nk_rule fcall = {
        0, 0, "ERR Bad number of keys provided", "ERR Number of keys can't be negative", RESP_NK_MANY };
    static const struct resp_nk_rule sintercard = { 1, 0, RESP_NK_GT0, RESP_NK_GT0, RESP_NK_MANY };
    static const struct resp_nk_rule mpop = { 1, 1, RESP_NK_GT0, RESP_NK_GT0, RESP_NK_SYNTAX };
    static const struct resp_nk_rule zunionstore = RESP_NK_ZSET("zunionstore");
    static const struct resp_nk_rule zinterstore = RESP_NK_ZSET("zinterstore");
    static const struct resp_nk_rule zdiffstore = RESP_NK_ZSET("zdiffstore");
    static const struct resp_nk_rule zunion = RESP_NK_ZSET("zunion");
    static const struct resp_nk_rule zinter = RESP_NK_ZSET("zinter");
    static const struct resp_nk_rule zdiff = RESP_NK_ZSET("zdiff");
    static const struct resp_nk_rule zintercard = RESP_NK_ZSET("zintercard");

    switch (id) {
    case RESP_CMD_EVAL: case RESP_CMD_EVALSHA: case RESP_CMD_EVAL_RO: case RESP_CMD_EVALSHA_RO:
        return &eval;
    case RESP_CMD_FCALL: case RESP_CMD_FCALL_RO:
        return &fcall;
    case RESP_CMD_SINTERCARD:
        return &sintercard;
    case RESP_CMD_LMPOP: case RESP_CMD_ZMPOP: case RESP_CMD_BLMPOP: case RESP_CMD_BZMPOP:
        return &mpop;
    case RESP_CMD_ZUNIONSTORE:
        return &zunionstore;
    case RESP_CMD_ZINTERSTORE:
        return &zinterstore;
    case RESP_CMD_ZDIFFSTORE:
        return &zdiffstore;
    case RESP_CMD_ZUNION:
        return &zunion;
    case RESP_CMD_ZINTER:
        return &zinter;
    case RESP_CMD_ZDIFF:
        return &zdiff;
    case RESP_CMD_ZINTERCARD:
        return &zintercard;
    default:
        return NULL;
    }
}

/*
 * Binary search of the sorted table on an upper-cased copy of the name (at most
 * RESP_CMD_NAME_MAX bytes, so longer names are unknown at once). NULL when absent.
 */
const struct resp_cmd *
resp_cmd_lookup(const uint8_t *name, size_t len)
{
    char up[RESP_CMD_NAME_MAX];
    size_t lo = 0, hi = RESP_CMD_COUNT;

    if (len == 0 || len > sizeof(up))
        return NULL;
    for (size_t i = 0; i < len; i++) {
        uint8_t ch = name[i];

        up[i] = (char)(ch >= 'a' && ch <= 'z' ? ch - ('a' - 'A') : ch);
    }

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct resp_cmd *c = &resp_cmd_table[mid];
        size_t m = c->len < len ? c->len : len;
        int r = memcmp(c->name, up, m);

        if (r == 0)
            r = (int)c->len - (int)len;
        if (r == 0)
            return c;
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The entry for an id; the id must come from this table. */
const struct resp_cmd *
resp_cmd_by_id(unsigned id)
{
    ASSERT(id < RESP_CMD_COUNT);
    return &resp_cmd_table[id];
}

/* For pair-range commands (step > 1 up to the last word): whole groups of step words. */
bool
resp_cmd_pairs_ok(const struct resp_cmd *c, uint64_t nargs)
{
    int64_t lastw;

    if (c->step <= 1 || c->last_key >= 0 || c->first_key <= 0)
        return true;
    if (nargs > (uint64_t)INT64_MAX)
        return false;
    /* words first_key .. nargs + last_key must be whole groups of step */
    lastw = (int64_t)nargs + c->last_key;
    if (lastw < c->first_key)
        return false;
    return (lastw - c->first_key + 1) % c->step == 0;
}

/* Redis's arity rule, plus whole pairs for MSET-like commands (Redis answers both alike). */
bool
resp_cmd_arity_ok(const struct resp_cmd *c, uint64_t nargs)
{
    if (c->arity >= 0) {
        if (nargs != (uint64_t)c->arity)
            return false;
    } else if (nargs < (uint64_t)-(int64_t)c->arity) {
        return false;
    }
    return resp_cmd_pairs_ok(c, nargs);
}

/* The fixed key of a numkeys command outside its numkeys group (ZUNIONSTORE's dest), else 0. */
uint64_t
resp_cmd_extra_key(const struct resp_cmd *c)
{
    return c->numkeys_at != 0 && c->first_key > 0 ? (uint64_t)c->first_key : 0;
}

/*
 * Key range of a request (contract in resp_cmd.h). Numkeys errors use the texts of the
 * command's family in Redis 7.0, so the client sees what a direct connection would show.
 */
int
resp_cmd_keys(const struct resp_cmd *c, uint64_t nargs, int64_t numkeys,
              uint64_t *first, uint64_t *last, uint64_t *step, const char **err)
{
    const struct resp_nk_rule *rule;
    uint64_t room;

    *first = *last = *step = 0;
    if (!resp_cmd_arity_ok(c, nargs)) {
        *err = c->arity_err;
        return KM_ERROR;
    }

    if (c->numkeys_at == 0) {
        if (c->first_key <= 0)
            return KM_OK;
        *first = (uint64_t)c->first_key;
        *last = c->last_key < 0 ? nargs - (uint64_t)-(int64_t)c->last_key
                                : (uint64_t)c->last_key;
        *step = (uint64_t)c->step;
        /* arity guarantees the range; check anyway, as keys index into the request */
        ASSERT(*first <= *last && *last < nargs && *step > 0);
        /* end on a key: MSET's last word is a value */
        *last = *first + (*last - *first) / *step * *step;
        return KM_OK;
    }

    rule = resp_nk_rule(c->id);
    ASSERT(rule != NULL);
    if (numkeys == RESP_NUMKEYS_BAD) {
        *err = rule->bad;
        return KM_ERROR;
    }
    if (numkeys < (int64_t)rule->min) {
        *err = rule->low;
        return KM_ERROR;
    }
    /* words after numkeys that can hold keys (arity guarantees nargs > numkeys_at) */
    room = nargs - c->numkeys_at - 1;
    if ((uint64_t)numkeys > room || room - (uint64_t)numkeys < rule->tail) {
        *err = rule->many;
        return KM_ERROR;
    }
    if (numkeys == 0)
        return KM_OK;
    *first = (uint64_t)c->numkeys_at + 1;
    *last = (uint64_t)c->numkeys_at + (uint64_t)numkeys;
    *step = 1;
    return KM_OK;
}
