/* src/proto/redis.c: the Redis protocol behind struct proto: planning requests from the
 * command table, building fragments of split commands and merging their replies. */
#include "proto/proto.h"
#include "proto/redis_keyspace.h"
#include "proto/redis_local.h"
#include "proto/redis_pubsub.h"
#include "proto/redis_session.h"
#include "proto/redis_stream.h"
#include "proto/resp.h"
#include "proto/resp_cmd.h"

#include "core/common.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define NAME_MAX_LEN 32

static void
redis_req_init(union parser *p)
{
    resp_req_init(&p->rq);
}

static void
redis_req_limits(union parser *p, const struct proto_limits *l)
{
    p->rq.max_bulk = l->max_bulk;
    p->rq.max_args = l->max_args;
}

static int
redis_req_feed(union parser *p, const uint8_t *buf, size_t n, size_t *used, struct ptok *t)
{
    struct resp_arg a;
    int ev = resp_req_feed(&p->rq, buf, n, used, &a);

    switch (ev) {
    case RESP_EV_ARG:
        t->pos = a.pos - a.hdr;
        t->len = a.len;
        t->aux = a.hdr;
        return PEV_TOKEN;
    case RESP_EV_DONE:
        return PEV_DONE;
    case RESP_EV_AGAIN:
        return PEV_AGAIN;
    default:
        return PEV_ERROR;
    }
}

static uint64_t
redis_req_len(const union parser *p)
{
    return resp_req_msglen(&p->rq);
}

static const char *
redis_req_err(const union parser *p, bool *recoverable)
{
    *recoverable = false;
    return p->rq.err != NULL ? p->rq.err : "Protocol error";
}

static int
plan_error(struct msg *m, const char *text, const struct proto_ctx *ctx)
{
    return redis_reply_error(m, text, ctx);
}

static void
lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

static int
plan_request(struct msg *m, const struct proto_ctx *ctx, const struct resp_cmd **cmd)
{
    char name[NAME_MAX_LEN + 1];
    char shown[72];
    char text[160];
    const struct resp_cmd *c = NULL;
    uint64_t first, last, step;
    int64_t numkeys = -1;
    const char *err = NULL;

    if (m->ntok == 0) {
        m->plan = PLAN_DROP;
        m->done = true;
        return KM_OK;
    }
    if (m->tok[0].len <= NAME_MAX_LEN) {
        size_t n = msg_tok_copy(&m->tok[0], 0, name, NAME_MAX_LEN);
        c = resp_cmd_lookup((const uint8_t *)name, n);
    }
    /* with redis_auth, nothing but AUTH, HELLO (which may carry AUTH) and QUIT before a
     * successful AUTH */
    if (ctx->auth != NULL && ctx->sess != NULL && !ctx->sess->authed &&
        (c == NULL || (c->id != RESP_CMD_AUTH && c->id != RESP_CMD_HELLO &&
                       c->id != RESP_CMD_QUIT)))
        return plan_error(m, "NOAUTH Authentication required.", ctx);
    *cmd = c;
    if (c == NULL) {
        redis_printable(&m->tok[0], shown, 64);
        snprintf(text, sizeof(text), "ERR unsupported command '%s'", shown);
        return plan_error(m, text, ctx);
    }
    m->cmd = c->id;
    if (!resp_cmd_arity_ok(c, m->ntok))
        return plan_error(m, c->arity_err, ctx);
    int rc;
    if (redis_pubsub_subscribed(m, c, ctx, &rc))
        return rc;
    if (c->policy == RESP_P_PUBSUB)
        return redis_pubsub_plan(m, c, ctx);
    if (c->policy == RESP_P_SESSION)
        return redis_session_plan(m, c, ctx);
    if (c->policy == RESP_P_LOCAL) {
        if (ctx->sess != NULL && ctx->sess->multi && c->id != RESP_CMD_QUIT)
            return redis_session_local(m, c, ctx);
        return redis_local_plan(m, c, ctx);
    }
    if (c->policy == RESP_P_KEYSPACE) {
        /* it would run outside the server's transaction: refused there */
        if (ctx->sess != NULL && ctx->sess->multi)
            return redis_session_local(m, c, ctx);
        return redis_keyspace_plan(m, c, ctx);
    }
    if (c->policy == RESP_P_STREAMS)
        return redis_stream_plan(m, c, ctx);

    if (c->numkeys_at > 0 && c->numkeys_at < m->ntok) {
        if (msg_tok_int(&m->tok[c->numkeys_at], &numkeys) != KM_OK)
            numkeys = RESP_NUMKEYS_BAD;
    }
    if (resp_cmd_keys(c, m->ntok, numkeys, &first, &last, &step, &err) != KM_OK)
        return plan_error(m, err != NULL ? err : "ERR syntax error", ctx);
    if (first == 0) {
        redis_printable(&m->tok[0], shown, 64);
        lower(shown);
        snprintf(text, sizeof(text), "ERR '%s' without a key cannot be routed by the proxy", shown);
        return plan_error(m, text, ctx);
    }
    m->key_first = (uint32_t)first;
    m->key_last = (uint32_t)last;
    m->key_step = (uint32_t)step;
    m->key_extra = (uint32_t)resp_cmd_extra_key(c);

    switch (c->policy) {
    case RESP_P_SINGLE:
        m->plan = PLAN_SINGLE;
        break;
    case RESP_P_SAMESRV:
        m->plan = first == last && m->key_extra == 0 ? PLAN_SINGLE : PLAN_SAMESRV;
        break;
    case RESP_P_MGET:
        m->plan = PLAN_SPLIT;
        m->merge = MERGE_ARRAY;
        break;
    case RESP_P_MSET:
        m->plan = PLAN_SPLIT;
        m->merge = MERGE_OK;
        break;
    case RESP_P_SUM:
        m->plan = PLAN_SPLIT;
        m->merge = MERGE_SUM;
        break;
    case RESP_P_BLOCK:
        /* on a connection of its own, so that it blocks no other client (proxy/session.c) */
        m->plan = first == last ? PLAN_SINGLE : PLAN_SAMESRV;
        m->blocking = ctx->sess != NULL;
        break;
    default:
        return plan_error(m, "ERR unsupported command", ctx);
    }
    return KM_OK;
}

static int
redis_req_plan(struct msg *m, const union parser *p, const struct proto_ctx *ctx)
{
    bool in_multi = ctx->sess != NULL && ctx->sess->multi;
    const struct resp_cmd *c = NULL;
    int rc;

    (void)p;
    rc = plan_request(m, ctx, &c);
    if (rc != KM_OK || !in_multi)
        return rc;
    return redis_session_queued(m, c, ctx);
}

static void
redis_rsp_init(union parser *p, const struct msg *req, bool want_elems)
{
    (void)req;
    (void)want_elems;
    resp_rsp_init(&p->rs);
}

static int
redis_rsp_feed(union parser *p, const uint8_t *buf, size_t n, size_t *used, struct ptok *t)
{
    struct resp_elem e;
    int ev = resp_rsp_feed(&p->rs, buf, n, used, &e);

    switch (ev) {
    case RESP_EV_ARG:
        t->pos = e.pos;
        t->len = e.len;
        t->aux = 0;
        t->type = (uint32_t)(uint8_t)e.type;
        return PEV_TOKEN;
    case RESP_EV_DONE:
        return PEV_DONE;
    case RESP_EV_AGAIN:
        return PEV_AGAIN;
    default:
        return PEV_ERROR;
    }
}

static uint64_t
redis_rsp_len(const union parser *p)
{
    return resp_rsp_msglen(&p->rs);
}

static const char *
redis_rsp_err(const union parser *p)
{
    return p->rs.err != NULL ? p->rs.err : "Protocol error";
}

static void
redis_rsp_done(struct msg *rsp, const union parser *p)
{
    rsp->type = (uint8_t)p->rs.type;
    rsp->ival = p->rs.ival;
    rsp->is_error = p->rs.type == '-' || p->rs.type == '!';
}

/* Borrow a request token with its framing ("$3\r\nfoo\r\n"), or frame an inline one. */
int
redis_frag_arg(struct msg *f, const struct tok *t, const struct proto_ctx *ctx)
{
    char hdr[32];
    size_t n;

    if (t->aux > 0)
        return msg_out_borrow(f, t->b, t->off, t->aux + t->len + 2);
    n = redis_head(hdr, '$', t->len);
    if (msg_out_bytes(f, ctx->bp, hdr, n) != KM_OK)
        return KM_ERROR;
    if (t->len > 0 && msg_out_borrow(f, t->b, t->off, t->len) != KM_OK)
        return KM_ERROR;
    return msg_out_bytes(f, ctx->bp, "\r\n", 2);
}

static int
redis_frag(struct msg *f, const struct msg *parent, const uint32_t *keys, uint32_t n,
           const struct proto_ctx *ctx)
{
    char hdr[32];
    size_t len;

    if (parent->merge == MERGE_SCAN)
        return redis_scan_frag(f, parent, ctx);
    len = redis_head(hdr, '*', 1 + (uint64_t)n * parent->key_step);
    if (msg_out_bytes(f, ctx->bp, hdr, len) != KM_OK)
        return KM_ERROR;
    if (redis_frag_arg(f, &parent->tok[0], ctx) != KM_OK)
        return KM_ERROR;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t at = parent->key_first + keys[i] * parent->key_step;
        for (uint32_t j = 0; j < parent->key_step; j++) {
            if (redis_frag_arg(f, &parent->tok[at + j], ctx) != KM_OK)
                return KM_ERROR;
        }
    }
    return KM_OK;
}

/* Pass a fragment's reply through whole (an error, or an unexpected shape): the bytes a
 * server sent (raw), or those the proxy made for a failed fragment (out). */
static int
merge_pass(struct msg *parent, struct msg *frsp, const struct proto_ctx *ctx)
{
    struct msg *r = msg_get(ctx->mc);
    if (r == NULL)
        return KM_ERROR;
    parent->rsp = r;
    r->is_error = frsp->is_error;
    r->type = frsp->type;
    if (frsp->nout == 0)
        return msg_out_borrow(r, frsp->raw.b, frsp->raw.off, frsp->raw.len);
    for (uint32_t i = 0; i < frsp->nout; i++) {
        struct span s = frsp->out[i];
        span_hold(&s);
        if (msg_out_push(r, &s) != KM_OK)
            return KM_ERROR;
    }
    return KM_OK;
}

/* Answer a split request with an error line made here. */
static int
merge_error(struct msg *parent, const char *text, const struct proto_ctx *ctx)
{
    parent->rsp = NULL;
    return redis_reply_error(parent, text, ctx);
}

static int
redis_merge(struct msg *parent, const struct proto_ctx *ctx)
{
    uint32_t nkeys = 0;
    char hdr[32];
    size_t n;

    /* MGET: each fragment must answer one element per key it asked for; count them
     * (nfrag_done of each fragment serves as a counter, then as its cursor). Requests
     * sent to every server (DBSIZE) or to one by index (SCAN) have no keys. */
    if (parent->merge == MERGE_ARRAY) {
        nkeys = (parent->key_last - parent->key_first) / parent->key_step + 1;
        for (uint32_t i = 0; i < parent->nfrag; i++)
            parent->frags[i]->nfrag_done = 0;
        for (uint32_t k = 0; k < nkeys; k++)
            parent->frags[parent->keyfrag[k]]->nfrag_done++;
    }

    /* an error answers for the whole request; a reply of the wrong shape too, as an error */
    for (uint32_t i = 0; i < parent->nfrag; i++) {
        struct msg *fr = parent->frags[i]->rsp;
        bool ok;
        if (fr->is_error)
            return merge_pass(parent, fr, ctx);
        switch (parent->merge) {
        case MERGE_ARRAY:
            ok = fr->type == '*' && fr->ival >= 0 && fr->ntok == (uint64_t)fr->ival &&
                 fr->ntok == parent->frags[i]->nfrag_done;
            break;
        case MERGE_SUM:
            ok = fr->type == ':';
            break;
        case MERGE_SCAN:
            ok = true;   /* redis_scan_merge looks at its shape */
            break;
        default:
            ok = fr->type == '+';
            break;
        }
        if (!ok)
            return merge_error(parent, "ERR unexpected reply from a server to a split command", ctx);
    }
    if (parent->merge == MERGE_SCAN)
        return redis_scan_merge(parent, ctx);

    int64_t sum = 0;
    if (parent->merge == MERGE_SUM) {
        for (uint32_t i = 0; i < parent->nfrag; i++) {
            if (__builtin_add_overflow(sum, parent->frags[i]->rsp->ival, &sum))
                return merge_error(parent, "ERR counts from the servers overflow", ctx);
        }
    }

    struct msg *r = msg_get(ctx->mc);
    if (r == NULL)
        return KM_ERROR;
    parent->rsp = r;

    if (parent->merge == MERGE_SUM) {
        r->type = ':';
        r->ival = sum;
        /* counts of keys (DEL, EXISTS, TOUCH, UNLINK): never negative, but say so if so */
        n = sum >= 0 ? redis_head(hdr, ':', (uint64_t)sum)
                     : (size_t)snprintf(hdr, sizeof(hdr), ":%lld\r\n", (long long)sum);
        return msg_out_bytes(r, ctx->bp, hdr, n);
    }
    if (parent->merge == MERGE_OK) {
        r->type = '+';
        return msg_out_bytes(r, ctx->bp, "+OK\r\n", 5);
    }

    /* MERGE_ARRAY: elements in the client's key order; nfrag_done of each fragment
     * serves as its cursor from here on */
    for (uint32_t i = 0; i < parent->nfrag; i++)
        parent->frags[i]->nfrag_done = 0;
    r->type = '*';
    r->ival = nkeys;
    if (msg_out_bytes(r, ctx->bp, hdr, redis_head(hdr, '*', nkeys)) != KM_OK)
        return KM_ERROR;
    for (uint32_t k = 0; k < nkeys; k++) {
        struct msg *f = parent->frags[parent->keyfrag[k]];
        struct tok *e = &f->rsp->tok[f->nfrag_done++];
        if (msg_out_borrow(r, e->b, e->off, e->len) != KM_OK)
            return KM_ERROR;
    }
    return KM_OK;
}

static int
redis_error(struct msg *rsp, const char *code, const char *reason, const struct proto_ctx *ctx)
{
    char buf[300];
    int n = snprintf(buf, sizeof(buf), "-%s %s\r\n", code != NULL ? code : "ERR", reason);

    if (n < 0 || (size_t)n >= sizeof(buf))
        return KM_ERROR;
    rsp->is_error = true;
    rsp->type = '-';
    return msg_out_bytes(rsp, ctx->bp, buf, (size_t)n);
}

static int
redis_conn_init(struct msg **out, int max, const char *auth, int db, const struct proto_ctx *ctx)
{
    char hdr[64];
    int n = 0, len;

    if (auth != NULL && n < max) {
        struct msg *m = msg_get(ctx->mc);
        if (m == NULL)
            goto fail;
        out[n++] = m;
        m->swallow = true;
        m->cmd = RESP_CMD_AUTH;
        len = snprintf(hdr, sizeof(hdr), "*2\r\n$4\r\nAUTH\r\n$%zu\r\n", strlen(auth));
        if (msg_out_bytes(m, ctx->bp, hdr, (size_t)len) != KM_OK ||
            msg_out_bytes(m, ctx->bp, auth, strlen(auth)) != KM_OK ||
            msg_out_bytes(m, ctx->bp, "\r\n", 2) != KM_OK)
            goto fail;
    }
    if (db != 0 && n < max) {
        char num[24];
        int nl = snprintf(num, sizeof(num), "%d", db);
        struct msg *m = msg_get(ctx->mc);
        if (m == NULL)
            goto fail;
        out[n++] = m;
        m->swallow = true;
        m->cmd = RESP_CMD_SELECT;
        len = snprintf(hdr, sizeof(hdr), "*2\r\n$6\r\nSELECT\r\n$%d\r\n%s\r\n", nl, num);
        if (msg_out_bytes(m, ctx->bp, hdr, (size_t)len) != KM_OK)
            goto fail;
    }
    return n;
fail:
    for (int i = 0; i < n; i++)
        msg_put(ctx->mc, out[i]);
    return -1;
}

static int
redis_bad_request(struct msg *rsp, const char *reason, const struct proto_ctx *ctx)
{
    return redis_error(rsp, NULL, reason, ctx);
}

const struct proto proto_redis = {
    .name = "redis",
    .req_init = redis_req_init,
    .req_feed = redis_req_feed,
    .req_len = redis_req_len,
    .req_err = redis_req_err,
    .req_plan = redis_req_plan,
    .rsp_init = redis_rsp_init,
    .rsp_feed = redis_rsp_feed,
    .rsp_len = redis_rsp_len,
    .rsp_err = redis_rsp_err,
    .rsp_done = redis_rsp_done,
    .frag = redis_frag,
    .merge = redis_merge,
    .error = redis_error,
    .bad_request = redis_bad_request,
    .conn_init = redis_conn_init,
    .req_limits = redis_req_limits,
};
