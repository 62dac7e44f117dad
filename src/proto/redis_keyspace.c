/* src/proto/redis_keyspace.c: SCAN over every server of a pool, DBSIZE summed, FLUSHALL/FLUSHDB behind allow_flush, KEYS refused. */
/*
 * A key lives on one server of the pool, so a walk of the keyspace is a walk of each
 * server in turn, in config order. SCAN goes to the one server its cursor names
 * (PLAN_INDEX) with that server's own cursor in place of the client's, and the reply's
 * cursor is made the client's again: the same server while it has more, the next one's
 * start when it says 0, and 0 only after the last. As long as the keys do not change, a
 * full scan returns each key once, since each server's scan does. A server that is down
 * answers with the usual error; the client may send the same cursor again.
 *
 * KEYS is not forwarded: it blocks a server for as long as it walks all its keys, and
 * through the proxy it would do so on every server. FLUSHALL and FLUSHDB empty every
 * server at once, so a pool has to say allow_flush: true for them to go anywhere.
 *
 * Pure, like the rest of src/proto: no sockets; the pool's size and allow_flush come in
 * through the proto_ctx.
 */
#include "proto/redis_keyspace.h"

#include "core/common.h"
#include "proto/redis_local.h"

#include <stdio.h>
#include <string.h>

#define TEXT_KEYS \
    "ERR KEYS is not supported by the proxy (it blocks every server); use SCAN"
#define TEXT_SCAN_POOL "ERR SCAN through the proxy serves pools of at most 2048 servers"
#define TEXT_SCAN_BIG "ERR a server's SCAN cursor is too large for the proxy's cursor"
#define TEXT_SCAN_SHAPE "ERR unexpected reply from a server to SCAN"

_Static_assert(REDIS_SCAN_MAX_SERVERS == 2048, "TEXT_SCAN_POOL says 2048");

bool
redis_scan_cursor_parse(const uint8_t *s, size_t n, uint64_t *v)
{
    return km_u64_parse((const char *)s, n, v);
}

uint64_t
redis_scan_cursor(uint32_t idx, uint64_t scur)
{
    return ((uint64_t)idx << REDIS_SCAN_SHIFT) | (scur & REDIS_SCAN_MASK);
}

bool
redis_scan_next(uint32_t idx, uint32_t nservers, uint64_t scur, uint64_t *out)
{
    if (scur > REDIS_SCAN_MASK)
        return false;
    if (scur != 0)
        *out = redis_scan_cursor(idx, scur);
    else
        *out = idx + 1 < nservers ? redis_scan_cursor(idx + 1, 0) : 0;
    return true;
}

/* The cursor word of a SCAN request (word 1). Leading zeros and all, a cursor is at most
 * 20 digits long in practice; longer words are refused without a look. */
static bool
tok_cursor(const struct tok *t, uint64_t *v)
{
    uint8_t buf[24];

    if (t->len > sizeof(buf))
        return false;
    size_t n = msg_tok_copy(t, 0, buf, (size_t)t->len);
    return n == t->len && redis_scan_cursor_parse(buf, n, v);
}

static int
plan_scan(struct msg *m, const struct proto_ctx *ctx)
{
    uint64_t cursor;

    if (ctx->nservers > REDIS_SCAN_MAX_SERVERS)
        return redis_reply_error(m, TEXT_SCAN_POOL, ctx);
    if (!tok_cursor(&m->tok[1], &cursor) || (cursor >> REDIS_SCAN_SHIFT) >= ctx->nservers)
        return redis_reply_error(m, REDIS_TEXT_BAD_CURSOR, ctx);
    m->plan = PLAN_INDEX;
    m->merge = MERGE_SCAN;
    m->server = (int32_t)(cursor >> REDIS_SCAN_SHIFT);
    return KM_OK;
}

int
redis_keyspace_plan(struct msg *m, const struct resp_cmd *c, const struct proto_ctx *ctx)
{
    char text[200];

    switch (c->id) {
    case RESP_CMD_SCAN:
        return plan_scan(m, ctx);
    case RESP_CMD_DBSIZE:
        m->plan = PLAN_ALL;
        m->merge = MERGE_SUM;
        return KM_OK;
    case RESP_CMD_FLUSHALL:
    case RESP_CMD_FLUSHDB:
        if (!ctx->allow_flush) {
            snprintf(text, sizeof(text), "ERR %s is refused by the proxy: it would empty every "
                     "server of the pool (the pool's allow_flush: true lets it through)", c->name);
            return redis_reply_error(m, text, ctx);
        }
        m->plan = PLAN_ALL;
        m->merge = MERGE_OK;
        return KM_OK;
    case RESP_CMD_KEYS:
        return redis_reply_error(m, TEXT_KEYS, ctx);
    default:
        return redis_reply_error(m, "ERR unsupported command", ctx);
    }
}

/* "$<n>\r\n<v>\r\n" at dst (at most 48 bytes); its length. */
static size_t
bulk_u64(char *dst, uint64_t v)
{
    char num[24];
    size_t d = km_u64_dec(num, v);
    size_t n = redis_head(dst, '$', d);

    memcpy(dst + n, num, d);
    n += d;
    dst[n++] = '\r';
    dst[n++] = '\n';
    return n;
}

int
redis_scan_frag(struct msg *f, const struct msg *parent, const struct proto_ctx *ctx)
{
    char hdr[64];
    uint64_t cursor;
    size_t n;

    /* the planner read the cursor already; read again, the parent holds no copy */
    if (parent->ntok < 2 || !tok_cursor(&parent->tok[1], &cursor))
        return KM_ERROR;
    n = redis_head(hdr, '*', parent->ntok);
    if (msg_out_bytes(f, ctx->bp, hdr, n) != KM_OK ||
        redis_frag_arg(f, &parent->tok[0], ctx) != KM_OK)
        return KM_ERROR;
    n = bulk_u64(hdr, cursor & REDIS_SCAN_MASK);
    if (msg_out_bytes(f, ctx->bp, hdr, n) != KM_OK)
        return KM_ERROR;
    for (uint32_t i = 2; i < parent->ntok; i++) {
        if (redis_frag_arg(f, &parent->tok[i], ctx) != KM_OK)
            return KM_ERROR;
    }
    return KM_OK;
}

/* The cursor in a reply's first element, a bulk string "$<n>\r\n<digits>\r\n" (its raw
 * bytes; the tokenizer checked the framing). False when it is not a cursor or longer than
 * any 64-bit one. */
static bool
elem_cursor(const struct tok *e, uint64_t *v)
{
    uint8_t buf[32];
    const uint8_t *crlf;

    if (e->type != '$' || e->len > sizeof(buf) || e->len < 5)
        return false;
    size_t n = msg_tok_copy(e, 0, buf, (size_t)e->len);
    if (n != e->len)
        return false;
    crlf = memchr(buf, '\n', n);
    if (crlf == NULL)
        return false;
    crlf++;
    return redis_scan_cursor_parse(crlf, (size_t)(buf + n - 2 - crlf), v);
}

int
redis_scan_merge(struct msg *parent, const struct proto_ctx *ctx)
{
    const struct msg *fr = parent->frags[0]->rsp;
    uint64_t scur, next;
    char hdr[64];
    struct msg *r;
    size_t n;

    if (parent->nfrag != 1 || parent->server < 0 || fr->type != '*' || fr->ival != 2 ||
        fr->ntok != 2 || fr->tok[1].type != '*' || !elem_cursor(&fr->tok[0], &scur))
        return redis_reply_error(parent, TEXT_SCAN_SHAPE, ctx);
    if (!redis_scan_next((uint32_t)parent->server, ctx->nservers, scur, &next))
        return redis_reply_error(parent, TEXT_SCAN_BIG, ctx);

    r = msg_get(ctx->mc);
    if (r == NULL)
        return KM_ERROR;
    parent->rsp = r;
    r->type = '*';
    r->ival = 2;
    memcpy(hdr, "*2\r\n", 4);
    n = 4 + bulk_u64(hdr + 4, next);
    if (msg_out_bytes(r, ctx->bp, hdr, n) != KM_OK)
        return KM_ERROR;
    /* the keys go back as the server sent them */
    return msg_out_borrow(r, fr->tok[1].b, fr->tok[1].off, fr->tok[1].len);
}
