/* src/proto/redis_local.h: the Redis commands keymux answers itself (handshakes, CLIENT, COMMAND, INFO). */
#ifndef KM_REDIS_LOCAL_H
#define KM_REDIS_LOCAL_H

#include "core/common.h"
#include "proto/msg.h"
#include "proto/proto.h"
#include "proto/resp_cmd.h"

#include <stddef.h>
#include <stdint.h>

/* Longest client name CLIENT SETNAME / HELLO SETNAME accept (Redis has no bound; the
 * proxy keeps a copy per client, so it has one). */
#define REDIS_NAME_MAX 256

/* "<type><n>\r\n" at dst (at most 23 bytes): an array or bulk header, or an integer. */
static inline size_t
redis_head(char *dst, char type, uint64_t n)
{
    size_t len;

    dst[0] = type;
    len = 1 + km_u64_dec(dst + 1, n);
    dst[len++] = '\r';
    dst[len++] = '\n';
    return len;
}

/*
 * Answer a command of policy LOCAL whose word count passed its arity: m->plan becomes
 * PLAN_LOCAL (or PLAN_ERROR for an error reply), m->rsp the reply made here, m->done true.
 * Reads and changes ctx->sess (name, authentication) when there is one.
 * Nothing is ever forwarded. KM_OK, or KM_ERROR when out of memory.
 */
int redis_local_plan(struct msg *m, const struct resp_cmd *c, const struct proto_ctx *ctx);

/* Append token t to r's out as a bulk string ("$<n>\r\n<data>\r\n"), borrowed. KM_OK or
 * KM_ERROR. */
int redis_out_bulk(struct msg *r, const struct tok *t, const struct proto_ctx *ctx);
/* c's name in lower case at dst (at least RESP_CMD_NAME_MAX bytes, not terminated), as
 * Redis prints it; returns its length. */
size_t redis_lower_name(const struct resp_cmd *c, char *dst);

/* Make m->rsp the error reply "-<text>\r\n" (text carries its code, e.g. "ERR ..."; the
 * line is cut to 319 bytes), m->done true, m->plan PLAN_ERROR. KM_OK or KM_ERROR (no memory). */
int redis_reply_error(struct msg *m, const char *text, const struct proto_ctx *ctx);

/* Token t for an error message: at most cap - 1 bytes, every byte that is not printable
 * or is a quote replaced by '?', NUL-terminated. */
void redis_printable(const struct tok *t, char *dst, size_t cap);

#endif
