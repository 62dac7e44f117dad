/* src/proto/redis_stream.h: XREAD and XREADGROUP as the proxy plans them: their keys after
 * the STREAMS option, and whether a BLOCK option makes them blocking commands. */
#ifndef KM_REDIS_STREAM_H
#define KM_REDIS_STREAM_H

#include "proto/msg.h"
#include "proto/proto.h"
#include "proto/resp_cmd.h"

#include <stdbool.h>
#include <stdint.h>

/* What the options of an XREAD or XREADGROUP request say, as redis_stream_scan() reads them. */
struct redis_streams {
    uint32_t first;     /* word index of the first key (the word after STREAMS) */
    uint32_t nkeys;     /* keys from there on; as many IDs follow them */
    bool block;         /* a BLOCK option with a valid timeout (BLOCK 0 included) */
    const char *err;    /* the reply Redis gives to the options, without the '-'; NULL: none */
};

/*
 * Walk the option words of m (an XREAD, or an XREADGROUP when group, whose word count
 * passed its arity) in Redis 7.0's order: BLOCK <ms>, COUNT <n>, GROUP <g> <c> (XREADGROUP
 * only), NOACK (XREADGROUP only), up to STREAMS, after which half the words are keys and
 * half IDs. On an option Redis refuses (an unknown word, a timeout or count that is not an
 * integer, a negative timeout, STREAMS missing or followed by an odd count, XREADGROUP
 * without GROUP) out->err is Redis's text for the first of them, as Redis checks them in
 * that order. Reads at most a few bytes of each word; allocates nothing.
 */
void redis_stream_scan(const struct msg *m, bool group, struct redis_streams *out);

/*
 * Plan a command of policy STREAMS whose word count passed its arity: its keys (one
 * server: PLAN_SINGLE, or PLAN_SAMESRV for several), blocking with BLOCK (a client's
 * request only), or Redis's error reply for its options. KM_OK or KM_ERROR (no memory).
 */
int redis_stream_plan(struct msg *m, const struct resp_cmd *c, const struct proto_ctx *ctx);

#endif
