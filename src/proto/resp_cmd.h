/* src/proto/resp_cmd.h: the Redis command table: arity, key positions and split policy per command. */
#ifndef KM_RESP_CMD_H
#define KM_RESP_CMD_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* How the proxy spreads a command over the pool and builds the reply. */
enum resp_policy {
    RESP_P_SINGLE,    /* one key (first_key) decides the server */
    RESP_P_SAMESRV,   /* several keys, all must map to one server; forwarded to it, else error */
    RESP_P_MGET,      /* split per server, merge array replies in key order */
    RESP_P_MSET,      /* split per server (key value pairs), reply +OK when all OK */
    RESP_P_SUM,       /* split per server, integer replies summed (DEL UNLINK EXISTS TOUCH) */
    RESP_P_LOCAL,     /* answered by the proxy (redis_local.c): PING, HELLO, CLIENT, INFO, ... */
    RESP_P_KEYSPACE,  /* no key, about the whole keyspace (redis_keyspace.c): SCAN walks the
                         servers one by one, DBSIZE and FLUSHALL/FLUSHDB go to every server,
                         KEYS is refused */
    RESP_P_SESSION,   /* MULTI EXEC DISCARD WATCH UNWATCH WAIT: the client's session on a
                         pinned server connection (redis_session.c) */
    RESP_P_BLOCK,     /* a blocking command: keys on one server, run on a pinned connection */
    RESP_P_STREAMS,   /* XREAD XREADGROUP: the keys are the first half of the words after
                         the STREAMS option, all on one server; with a BLOCK option, a
                         blocking command (redis_stream.c) */
    RESP_P_PUBSUB,    /* SUBSCRIBE PSUBSCRIBE UNSUBSCRIBE PUNSUBSCRIBE PUBLISH (redis_pubsub.c):
                         a channel routes like a key, a pattern goes to every server */
};

/* One id per table entry, in table order: RESP_CMD_GET, RESP_CMD_MGET, ... */
enum resp_cmd_id {
#define RESP_CMD_X(ID, lname, arity, first, last, step, policy, numkeys_at) RESP_CMD_##ID,
#include "proto/resp_cmd.def"
#undef RESP_CMD_X
    RESP_CMD_COUNT
};

/* Longest command name in the table, in bytes; longer names are unknown without a look. */
#define RESP_CMD_NAME_MAX 32

/* numkeys value to pass to resp_cmd_keys() when the word is not an integer at all. */
#define RESP_NUMKEYS_BAD INT64_MIN

/* One command; read-only, lives in a static table. */
struct resp_cmd {
    const char *name;       /* upper case, e.g. "GET" */
    const char *arity_err;  /* Redis's reply text for a bad word count, e.g.
                               "ERR wrong number of arguments for 'get' command" */
    int16_t     arity;      /* n = exactly n words including the name, -n = at least n */
    int16_t     first_key;  /* word index of the first key, 0 = none (see numkeys_at) */
    int16_t     last_key;   /* word index of the last key; negative counts from the end */
    int16_t     step;       /* distance between keys; 2 for key value pairs */
    uint8_t     policy;     /* enum resp_policy */
    uint8_t     numkeys_at; /* word index of a numkeys argument, 0 = none; the keys are then
                               the numkeys words after it, and first_key..last_key name a
                               fixed key outside that group (ZUNIONSTORE's destination) or 0 */
    uint8_t     id;         /* enum resp_cmd_id */
    uint8_t     len;        /* strlen(name) */
};

/*
 * Find a command by name, case-insensitively. Returns NULL for a name that is unknown
 * or that keymux does not support (SUBSCRIBE, MIGRATE, ...).
 * The returned entry is static and read-only.
 */
const struct resp_cmd *resp_cmd_lookup(const uint8_t *name, size_t len);

/* The entry for an id (id < RESP_CMD_COUNT). */
const struct resp_cmd *resp_cmd_by_id(unsigned id);

/*
 * True when a request of nargs words (name included) has a word count the command accepts:
 * its arity, and for key value pair commands (MSET, MSETNX) whole pairs. When false, Redis
 * replies c->arity_err.
 */
bool resp_cmd_arity_ok(const struct resp_cmd *c, uint64_t nargs);

/* True unless the command takes key value pairs and nargs does not give whole pairs. */
bool resp_cmd_pairs_ok(const struct resp_cmd *c, uint64_t nargs);

/*
 * Key positions of a request of nargs words that passed resp_cmd_arity_ok(). For a
 * numkeys command pass the value of word c->numkeys_at as resp_parse_int64() read it
 * (negative allowed), or RESP_NUMKEYS_BAD when it is not an integer; otherwise it is
 * ignored. On KM_OK, *first..*last by *step (word indices, inclusive) are the keys, and
 * *last is itself a key (MSET a 1 b 2: 1..3 by 2). *first = 0 means the request has no
 * key (PING, or EVAL with numkeys 0); then *last = *step = 0: do not iterate. A numkeys
 * command may also have one fixed key outside this range: see resp_cmd_extra_key().
 * If the word count is wrong after all, KM_ERROR with c->arity_err. On KM_ERROR, *err is
 * the reply Redis would give, without the leading '-' (e.g. "ERR Number of keys can't be
 * greater than number of args"); the numkeys texts differ per command family, as in Redis.
 */
int resp_cmd_keys(const struct resp_cmd *c, uint64_t nargs, int64_t numkeys,
                  uint64_t *first, uint64_t *last, uint64_t *step, const char **err);

/*
 * Word index of a key that lies outside the range resp_cmd_keys() returns (the destination
 * of ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE, before their numkeys word), or 0 when none.
 * It counts as one more key for SAMESRV.
 */
uint64_t resp_cmd_extra_key(const struct resp_cmd *c);

#endif
