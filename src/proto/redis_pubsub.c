/* src/proto/redis_pubsub.c: pub/sub commands planned, pushes recognised, confirmations made. */
#include "proto/redis_pubsub.h"

#include "core/common.h"
#include "proto/redis_local.h"

#include <stdio.h>
#include <string.h>

#define TEXT_SUBSCRIBED                                                                  \
    "ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET " \
    "are allowed in this context"

int
redis_pubsub_plan(struct msg *m, const struct resp_cmd *c, const struct proto_ctx *ctx)
{
    char text[128];

    if (c->id == RESP_CMD_PUBLISH) {
        m->plan = PLAN_SINGLE;
        m->key_first = m->key_last = 1;
        m->key_step = 1;
        m->channel = true;
        return KM_OK;
    }
    if (ctx->sess == NULL || ctx->sess->multi) {
        /* the subscription would begin at EXEC, on a connection shared by the transaction */
        snprintf(text, sizeof(text), "ERR %s inside MULTI is not supported by the proxy",
                 c->name);
        return redis_reply_error(m, text, ctx);
    }
    m->plan = PLAN_PUBSUB;
    switch (c->id) {
    case RESP_CMD_SUBSCRIBE:
        m->sop = SOP_SUBSCRIBE;
        break;
    case RESP_CMD_PSUBSCRIBE:
        m->sop = SOP_PSUBSCRIBE;
        break;
    case RESP_CMD_UNSUBSCRIBE:
        m->sop = SOP_UNSUBSCRIBE;
        break;
    default:
        m->sop = SOP_PUNSUBSCRIBE;
        break;
    }
    return KM_OK;
}

bool
redis_pubsub_subscribed(struct msg *m, const struct resp_cmd *c, const struct proto_ctx *ctx,
                        int *rc)
{
    char text[192];

    *rc = KM_OK;
    if (ctx->sess == NULL || !ctx->sess->subscribed || c->id == RESP_CMD_QUIT ||
        (c->policy == RESP_P_PUBSUB && c->id != RESP_CMD_PUBLISH))
        return false;
    if (c->id != RESP_CMD_PING) {
        char lname[RESP_CMD_NAME_MAX + 1];
        lname[redis_lower_name(c, lname)] = '\0';
        snprintf(text, sizeof(text), TEXT_SUBSCRIBED, lname);
        *rc = redis_reply_error(m, text, ctx);
        return true;
    }
    /* PING [arg]: ["pong", arg or ""] */
    struct msg *r = msg_get(ctx->mc);
    *rc = KM_ERROR;
    if (r == NULL)
        return true;
    m->plan = PLAN_LOCAL;
    m->done = true;
    m->rsp = r;
    static const char head[] = "*2\r\n$4\r\npong\r\n";
    if (msg_out_bytes(r, ctx->bp, head, sizeof(head) - 1) != KM_OK)
        return true;
    if (m->ntok < 2) {
        *rc = msg_out_bytes(r, ctx->bp, "$0\r\n\r\n", 6);
        return true;
    }
    *rc = redis_out_bulk(r, &m->tok[1], ctx);
    return true;
}

/* The data of bulk element t ("$<n>\r\n<data>\r\n"): its offset in the element and its
 * length. KM_ERROR when t is not a bulk string. */
static int
bulk_data(const struct tok *t, uint64_t *skip, uint64_t *len)
{
    char hdr[24];
    size_t n = msg_tok_copy(t, 0, hdr, t->len < sizeof(hdr) ? (size_t)t->len : sizeof(hdr));
    uint64_t v = 0;
    size_t i;

    if (t->type != '$' || n < 4 || hdr[0] != '$')
        return KM_ERROR;
    for (i = 1; i < n && hdr[i] >= '0' && hdr[i] <= '9'; i++)
        v = v * 10 + (uint64_t)(hdr[i] - '0');
    if (i == 1 || i + 1 >= n || hdr[i] != '\r' || hdr[i + 1] != '\n' || i + 2 + v + 2 != t->len)
        return KM_ERROR;
    *skip = i + 2;
    *len = v;
    return KM_OK;
}

static const struct {
    const char *word;
    uint8_t len;
    uint8_t kind;
    uint8_t nelem;
} kinds[] = {
    { "message", 7, PUSH_MESSAGE, 3 },
    { "pmessage", 8, PUSH_PMESSAGE, 4 },
    { "subscribe", 9, PUSH_SUBSCRIBE, 3 },
    { "psubscribe", 10, PUSH_PSUBSCRIBE, 3 },
    { "unsubscribe", 11, PUSH_UNSUBSCRIBE, 3 },
    { "punsubscribe", 12, PUSH_PUNSUBSCRIBE, 3 },
};

enum push_kind
redis_push_kind(const struct msg *r, const struct tok **name, uint64_t *skip, uint64_t *len)
{
    char word[16];
    uint64_t s, n;

    if (r->type != '*' || r->ntok < 3 || bulk_data(&r->tok[0], &s, &n) != KM_OK ||
        n > sizeof(word))
        return PUSH_OTHER;
    msg_tok_copy(&r->tok[0], s, word, (size_t)n);
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (kinds[i].len != n || memcmp(kinds[i].word, word, n) != 0 || r->ntok != kinds[i].nelem)
            continue;
        /* UNSUBSCRIBE with nothing subscribed names no channel (a nil) */
        if (bulk_data(&r->tok[1], skip, len) != KM_OK) {
            if (kinds[i].kind != PUSH_UNSUBSCRIBE && kinds[i].kind != PUSH_PUNSUBSCRIBE)
                return PUSH_OTHER;
            *skip = *len = 0;
        }
        *name = &r->tok[1];
        return (enum push_kind)kinds[i].kind;
    }
    return PUSH_OTHER;
}

int
redis_push_confirm(struct msg *r, const char *kind, const uint8_t *p, size_t len,
                   uint64_t count, const struct proto_ctx *ctx)
{
    char hdr[64];
    size_t klen = strlen(kind), n;

    n = redis_head(hdr, '*', 3);
    n += redis_head(hdr + n, '$', klen);
    if (msg_out_bytes(r, ctx->bp, hdr, n) != KM_OK ||
        msg_out_bytes(r, ctx->bp, kind, klen) != KM_OK)
        return KM_ERROR;
    n = 0;
    hdr[n++] = '\r';
    hdr[n++] = '\n';
    if (p == NULL) {
        memcpy(hdr + n, "$-1\r\n", 5);
        n += 5;
    } else {
        n += redis_head(hdr + n, '$', len);
    }
    if (msg_out_bytes(r, ctx->bp, hdr, n) != KM_OK ||
        (p != NULL && len > 0 && msg_out_bytes(r, ctx->bp, p, len) != KM_OK))
        return KM_ERROR;
    n = 0;
    if (p != NULL) {
        hdr[n++] = '\r';
        hdr[n++] = '\n';
    }
    n += redis_head(hdr + n, ':', count);
    return msg_out_bytes(r, ctx->bp, hdr, n);
}

int
redis_cmd_head(struct msg *f, const char *word, uint64_t nargs, const struct proto_ctx *ctx)
{
    char hdr[64];
    size_t wlen = strlen(word);
    size_t n = redis_head(hdr, '*', nargs + 1);

    n += redis_head(hdr + n, '$', wlen);
    if (msg_out_bytes(f, ctx->bp, hdr, n) != KM_OK ||
        msg_out_bytes(f, ctx->bp, word, wlen) != KM_OK)
        return KM_ERROR;
    return msg_out_bytes(f, ctx->bp, "\r\n", 2);
}

int
redis_cmd_arg(struct msg *f, const uint8_t *p, size_t len, const struct proto_ctx *ctx)
{
    char hdr[32];

    if (msg_out_bytes(f, ctx->bp, hdr, redis_head(hdr, '$', len)) != KM_OK ||
        (len > 0 && msg_out_bytes(f, ctx->bp, p, len) != KM_OK))
        return KM_ERROR;
    return msg_out_bytes(f, ctx->bp, "\r\n", 2);
}
