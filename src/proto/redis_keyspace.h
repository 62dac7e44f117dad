/* src/proto/redis_keyspace.h: commands about a pool's whole keyspace (SCAN, DBSIZE, KEYS, FLUSHALL, FLUSHDB) and SCAN's cursor over all servers. */
#ifndef KM_REDIS_KEYSPACE_H
#define KM_REDIS_KEYSPACE_H

#include "proto/msg.h"
#include "proto/proto.h"
#include "proto/resp_cmd.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The cursor a client sees holds the server index in bits 52..62 and that server's own
 * cursor in bits 0..51. Bit 63 stays clear, so that clients keeping cursors in a signed
 * 64-bit integer (Java, Lua) get them back intact. A Redis cursor is an index into the
 * server's hash table (reversed bits), so 52 bits are a table of 2^52 buckets, far past
 * any server's memory; a server cursor beyond them is refused, never cut.
 */
#define REDIS_SCAN_SHIFT 52
#define REDIS_SCAN_MASK ((UINT64_C(1) << REDIS_SCAN_SHIFT) - 1)
#define REDIS_SCAN_MAX_SERVERS (1u << (63 - REDIS_SCAN_SHIFT))

/* Redis's reply to a cursor that is not one. */
#define REDIS_TEXT_BAD_CURSOR "ERR invalid cursor"

/* s[0..n) as a cursor: decimal digits only (leading zeros allowed, as Redis's strtoul
 * takes them), within 64 bits. False for anything else, the empty string included. */
bool redis_scan_cursor_parse(const uint8_t *s, size_t n, uint64_t *v);

/* The client cursor for server idx at its own cursor scur. */
uint64_t redis_scan_cursor(uint32_t idx, uint64_t scur);

/* Server idx of a pool of nservers answered with its cursor scur: the cursor the client
 * gets (the next server's start once scur is 0, and 0 after the last). False when scur
 * does not fit in REDIS_SCAN_MASK. */
bool redis_scan_next(uint32_t idx, uint32_t nservers, uint64_t scur, uint64_t *out);

/*
 * Plan a command of policy KEYSPACE whose word count passed its arity:
 *   SCAN      PLAN_INDEX to the server its cursor names (m->server), MERGE_SCAN; a bad
 *             cursor or an index past ctx->nservers gets REDIS_TEXT_BAD_CURSOR
 *   DBSIZE    PLAN_ALL, MERGE_SUM
 *   FLUSHALL, FLUSHDB   PLAN_ALL, MERGE_OK when ctx->allow_flush, else an error reply
 *   KEYS      an error reply pointing to SCAN (it would block every server)
 * KM_OK, or KM_ERROR when out of memory.
 */
int redis_keyspace_plan(struct msg *m, const struct resp_cmd *c, const struct proto_ctx *ctx);

/* Fill f->out with the SCAN request of parent for its server: the client's words with the
 * server's own cursor in place of the client's. KM_OK or KM_ERROR. */
int redis_scan_frag(struct msg *f, const struct msg *parent, const struct proto_ctx *ctx);

/* The server's reply to parent's fragment is not an error: give parent->rsp the client's
 * reply, the server's keys after the client's cursor (redis_scan_next); a reply of another
 * shape, or a cursor too large, gets an error reply. KM_OK or KM_ERROR. */
int redis_scan_merge(struct msg *parent, const struct proto_ctx *ctx);

/* Append request word t to f->out with its framing ("$3\r\nfoo\r\n"), borrowing the
 * client's bytes (redis.c). KM_OK or KM_ERROR. */
int redis_frag_arg(struct msg *f, const struct tok *t, const struct proto_ctx *ctx);

#endif
