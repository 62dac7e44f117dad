/* src/proto/memcache_admin.h: memcached's commands about the server rather than a key (stats, flush_all) and the counters stats shows, for memcache.c. */
#ifndef KM_MEMCACHE_ADMIN_H
#define KM_MEMCACHE_ADMIN_H

#include "proto/mc.h"
#include "proto/msg.h"
#include "proto/proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A request's cmd is its enum mc_cmd, plus this bit when it is a quiet meta request that
 * goes out followed by "mn" (so its reply, absent or not, ends with "MN"). */
#define MEMC_QUIET 0x100u
#define MEMC_CMD(c) ((enum mc_cmd)((c) & 0xffu))

/* The reply to the stats request m (tokenized by q), NUL-terminated in buf[0..cap), which
 * must hold MEMC_STATS_MAX bytes; *is_error tells whether it is an error line. stats reset
 * starts the pool's counters over (ctx->counts_reset, else ctx->counts). Returns buf. */
#define MEMC_STATS_MAX 2048
const char *memc_stats_reply(char *buf, size_t cap, const struct msg *m,
                             const struct mc_req_parser *q, const struct proto_ctx *ctx,
                             bool *is_error);

/* All fragments of the flush_all parent (PLAN_ALL, one per server) are answered: give
 * parent->rsp "OK", or a SERVER_ERROR line naming each server that did not say OK and why.
 * KM_OK or KM_ERROR (no memory). */
int memc_merge_flush(struct msg *parent, const struct proto_ctx *ctx);

/* A request of command cmd asking for nkeys keys was planned: count it into c (NULL: not
 * counted) as memcached counts cmd_get, cmd_set, cmd_touch and cmd_flush. */
void memc_count_request(struct proto_counts *c, enum mc_cmd cmd, uint32_t nkeys);

/* Of a retrieval of command cmd, hits keys were found and misses were not. */
void memc_count_found(struct proto_counts *c, enum mc_cmd cmd, uint64_t hits, uint64_t misses);

/* proto_memcache.rsp_count: the hits and misses of a request sent whole (get/gets/gat/gats
 * with any number of keys, mg, touch), from its reply tokenizer's results. */
void memc_count_reply(struct proto_counts *c, const struct msg *req, const union parser *p);

#endif
