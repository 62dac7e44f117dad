/* src/proto/memcache.c: the memcached text and meta protocol behind struct proto: planning
 * requests, splitting multi-key retrievals, merging their values in the client's key order,
 * and closing quiet meta requests with "mn" so that every request gets a reply to pair.
 *
 *   client: get a b c d\r\n            (a, c on server 0; b, d on server 1)
 *   frag 0: get a c\r\n    -> VALUE a ...  END        reply tokens: the VALUE items
 *   frag 1: get b d\r\n    -> VALUE d ...  END        (b is missing)
 *   merge:  VALUE a, VALUE d (b absent), VALUE c  ... in key order, walking each fragment's
 *           items with a cursor, then one END
 *
 *   client: mg foo v q\r\n
 *   server: mg foo v q\r\nmn\r\n   -> [VA 3\r\nbar\r\n] MN\r\n ; the client gets what precedes MN
 *
 * Classic "noreply" requests go out unchanged and the core does not wait for them (m->noreply);
 * version is routed like a key (the word "version" itself) so that a live server answers it;
 * quit, mn and verbosity are answered here, stats with the proxy's own figures, and flush_all
 * goes to every server (memcache_admin.c says what each answers and why). A request that
 * starts with the binary protocol's magic byte gets no reply: its connection is closed.
 * Requests and the replies the proxy sees are counted as memcached counts them (stats).
 */
#include "proto/proto.h"
#include "proto/mc.h"
#include "proto/memcache_admin.h"

#include "core/common.h"

#include <stdio.h>
#include <string.h>

static const char MN_LINE[] = "mn\r\n";

static void
memc_req_init(union parser *p)
{
    mc_req_init(&p->mq);
}

static void
memc_req_limits(union parser *p, const struct proto_limits *l)
{
    p->mq.max_value = l->max_value;
}

static int
memc_req_feed(union parser *p, const uint8_t *buf, size_t n, size_t *used, struct ptok *t)
{
    struct mc_tok key;
    int ev = mc_req_feed(&p->mq, buf, n, used, &key);

    switch (ev) {
    case MC_EV_KEY:
        memset(t, 0, sizeof(*t));
        t->pos = key.pos;
        t->len = key.len;
        return PEV_TOKEN;
    case MC_EV_DONE:
        return PEV_DONE;
    case MC_EV_AGAIN:
        return PEV_AGAIN;
    default:
        return PEV_ERROR;
    }
}

static uint64_t
memc_req_len(const union parser *p)
{
    return mc_req_msglen(&p->mq);
}

static bool
memc_req_discarding(const union parser *p)
{
    return p->mq.swallowing;
}

/* The tokenizer's reason is memcached's own reply line. A client that asked for no reply
 * (classic noreply) gets none, as from memcached: the empty reason says so to bad_request. */
static const char *
memc_req_err(const union parser *p, bool *recoverable)
{
    *recoverable = p->mq.recoverable;
    if (p->mq.recoverable && p->mq.noreply)
        return "";
    return p->mq.err != NULL ? p->mq.err : "ERROR";
}

/* Answer m here with the n bytes at text (n may be 0: nothing is written back). */
static int
plan_reply(struct msg *m, uint8_t plan, const char *text, bool is_error,
           const struct proto_ctx *ctx)
{
    m->plan = plan;
    m->rsp = proto_reply_bytes(ctx, text, strlen(text));
    if (m->rsp == NULL)
        return KM_ERROR;
    m->rsp->is_error = is_error;
    m->rsp->type = MC_RSP_LINE;
    m->done = true;
    return KM_OK;
}

/* The single key of m picks its server. */
static int
plan_single(struct msg *m, const struct proto_ctx *ctx)
{
    if (m->ntok == 0)
        return plan_reply(m, PLAN_ERROR, "ERROR\r\n", true, ctx);
    m->plan = PLAN_SINGLE;
    m->key_first = 0;
    m->key_last = 0;
    m->key_step = 1;
    return KM_OK;
}

/* version has no key: route it by its own word, so that some live server answers. */
static int
plan_version(struct msg *m, const struct mc_req_parser *q, const struct proto_ctx *ctx)
{
    struct buf *b = m->raw.b;
    uint64_t off = m->raw.off + q->cmd_pos;
    struct tok t;

    while (off >= b->len && b->next != NULL) {
        off -= b->len;
        b = b->next;
    }
    memset(&t, 0, sizeof(t));
    t.b = b;
    t.off = (uint32_t)off;
    t.len = 7;   /* "version" */
    t.kpos = q->cmd_pos;
    if (msg_tok_push(m, &t) != KM_OK)
        return KM_ERROR;
    return plan_single(m, ctx);
}

/* stats is answered here, with the proxy's figures (memcache_admin.c). */
static int
plan_stats(struct msg *m, const struct mc_req_parser *q, const struct proto_ctx *ctx)
{
    char text[MEMC_STATS_MAX];
    bool is_error;
    const char *reply = memc_stats_reply(text, sizeof(text), m, q, ctx, &is_error);

    return plan_reply(m, is_error ? PLAN_ERROR : PLAN_LOCAL, reply, is_error, ctx);
}

static int
memc_req_plan(struct msg *m, const union parser *p, const struct proto_ctx *ctx)
{
    const struct mc_req_parser *q = &p->mq;
    int rc;

    m->cmd = (uint16_t)q->cmd;
    if (!q->base64)   /* refused below */
        memc_count_request(ctx->counts, q->cmd, m->ntok);
    switch (q->cmd) {
    case MC_GET:
    case MC_GETS:
    case MC_GAT:
    case MC_GATS:
        if (m->ntok <= 1)
            return plan_single(m, ctx);
        m->plan = PLAN_SPLIT;
        m->merge = MERGE_VALUES;
        m->key_first = 0;
        m->key_last = m->ntok - 1;
        m->key_step = 1;
        return KM_OK;

    case MC_SET:
    case MC_ADD:
    case MC_REPLACE:
    case MC_APPEND:
    case MC_PREPEND:
    case MC_CAS:
    case MC_INCR:
    case MC_DECR:
    case MC_DELETE:
    case MC_TOUCH:
        m->noreply = q->noreply;
        return plan_single(m, ctx);

    case MC_MG:
    case MC_MS:
    case MC_MD:
    case MC_MA:
    case MC_ME:
        /* a base64 key would be placed by its encoding, not by the key memcached stores */
        if (q->base64)
            return plan_reply(m, PLAN_ERROR,
                              "CLIENT_ERROR base64 keys (b flag) are not supported by the proxy\r\n",
                              true, ctx);
        rc = plan_single(m, ctx);
        if (rc != KM_OK || m->plan != PLAN_SINGLE)
            return rc;
        if (q->quiet && q->cmd != MC_ME) {
            /* the server may stay silent: "mn" after it makes sure a reply comes */
            m->cmd |= MEMC_QUIET;
            if (msg_out_borrow(m, m->raw.b, m->raw.off, m->raw.len) != KM_OK ||
                msg_out_bytes(m, ctx->bp, MN_LINE, sizeof(MN_LINE) - 1) != KM_OK)
                return KM_ERROR;
        }
        return KM_OK;

    case MC_VERSION:
        return plan_version(m, q, ctx);

    case MC_QUIT:
        m->quit = true;
        return plan_reply(m, PLAN_LOCAL, "", false, ctx);

    case MC_MN:
        /* everything before it on this connection is answered first (the client FIFO) */
        return plan_reply(m, PLAN_LOCAL, "MN\r\n", false, ctx);

    case MC_VERBOSITY:
        /* memcached's level is its log's; the proxy's has its own flag (-v) */
        m->noreply = q->noreply;
        return plan_reply(m, PLAN_LOCAL, "OK\r\n", false, ctx);

    case MC_FLUSH_ALL:
        m->noreply = q->noreply;
        m->plan = PLAN_ALL;
        m->merge = MERGE_OK;
        return KM_OK;

    case MC_STATS:
        return plan_stats(m, q, ctx);

    default:
        return plan_reply(m, PLAN_ERROR, "ERROR\r\n", true, ctx);
    }
}

static void
memc_rsp_init(union parser *p, const struct msg *req, bool want_elems)
{
    (void)want_elems;
    mc_rsp_init(&p->ms, MEMC_CMD(req->cmd));
    p->ms.then_mn = (req->cmd & MEMC_QUIET) != 0;
}

static int
memc_rsp_feed(union parser *p, const uint8_t *buf, size_t n, size_t *used, struct ptok *t)
{
    struct mc_elem el;
    int ev = mc_rsp_feed(&p->ms, buf, n, used, &el);

    switch (ev) {
    case MC_EV_KEY:
        memset(t, 0, sizeof(*t));
        t->pos = el.pos;
        t->len = el.len;
        t->kpos = el.key.pos - el.pos;
        t->klen = el.key.len;
        return PEV_TOKEN;
    case MC_EV_DONE:
        return PEV_DONE;
    case MC_EV_AGAIN:
        return PEV_AGAIN;
    default:
        return PEV_ERROR;
    }
}

static uint64_t
memc_rsp_len(const union parser *p)
{
    return mc_rsp_msglen(&p->ms);
}

static const char *
memc_rsp_err(const union parser *p)
{
    return p->ms.err != NULL ? p->ms.err : "bad reply";
}

/* type: enum mc_rsp_kind; ival: offset of the reply's last line (where an error line that
 * ends a retrieval starts). The reply to a quiet request keeps only what precedes its MN. */
static void
memc_rsp_done(struct msg *rsp, const union parser *p)
{
    const struct mc_rsp_parser *rs = &p->ms;

    rsp->type = (uint8_t)rs->kind;
    rsp->is_error = rs->is_error;
    rsp->ival = (int64_t)rs->end_pos;
    if (rs->then_mn && rs->body_len < rsp->raw.len) {
        struct span body = { rsp->raw.b, rsp->raw.off, rs->body_len };
        span_hold(&body);
        span_release(&rsp->raw);
        rsp->raw = body;
    }
}

static int
memc_frag(struct msg *f, const struct msg *parent, const uint32_t *keys, uint32_t n,
          const struct proto_ctx *ctx)
{
    const struct tok *first = &parent->tok[parent->key_first];

    /* "get ", "gats 100 ": everything before the first key, as the client wrote it */
    if (msg_out_borrow(f, parent->raw.b, parent->raw.off, first->kpos) != KM_OK)
        return KM_ERROR;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = parent->key_first + keys[i] * parent->key_step;
        const struct tok *t = &parent->tok[k];
        bool last = i + 1 == n;

        if (!last && k < parent->key_last) {
            /* a space follows every key but the line's last: borrow it too */
            if (msg_out_borrow(f, t->b, t->off, t->len + 1) != KM_OK)
                return KM_ERROR;
            continue;
        }
        if (msg_out_borrow(f, t->b, t->off, t->len) != KM_OK ||
            msg_out_bytes(f, ctx->bp, last ? "\r\n" : " ", last ? 2 : 1) != KM_OK)
            return KM_ERROR;
    }
    return KM_OK;
}

/* Make rsp the line "<code> <reason>\r\n" (code NULL: SERVER_ERROR). */
static int
memc_error(struct msg *rsp, const char *code, const char *reason, const struct proto_ctx *ctx)
{
    char buf[512];
    int n = snprintf(buf, sizeof(buf), "%s %s\r\n", code != NULL ? code : "SERVER_ERROR", reason);

    if (n < 0)
        return KM_ERROR;
    if ((size_t)n >= sizeof(buf)) {
        n = (int)sizeof(buf) - 1;
        buf[n - 2] = '\r';
        buf[n - 1] = '\n';
    }
    rsp->is_error = true;
    rsp->type = MC_RSP_LINE;
    return msg_out_bytes(rsp, ctx->bp, buf, (size_t)n);
}

/* Borrow len bytes of span s starting `skip` bytes into it. */
static int
borrow_sub(struct msg *m, const struct span *s, uint64_t skip, uint64_t len)
{
    struct buf *b = s->b;
    uint64_t off = s->off + skip;

    while (b != NULL && off >= b->len && b->next != NULL) {
        off -= b->len;
        b = b->next;
    }
    return msg_out_borrow(m, b, (uint32_t)off, len);
}

/* A fragment's reply answers for the whole request (an error): its error line. */
static int
merge_pass(struct msg *parent, const struct msg *frsp, const struct proto_ctx *ctx)
{
    struct msg *r = msg_get(ctx->mc);

    if (r == NULL)
        return KM_ERROR;
    parent->rsp = r;
    r->is_error = frsp->is_error;
    r->type = frsp->type;
    if (frsp->nout > 0) {
        /* made here (a failed server): its out holds the line */
        for (uint32_t i = 0; i < frsp->nout; i++) {
            struct span s = frsp->out[i];
            span_hold(&s);
            if (msg_out_push(r, &s) != KM_OK)
                return KM_ERROR;
        }
        return KM_OK;
    }
    /* from the server: the line that ended it, without the items before it */
    uint64_t at = (uint64_t)frsp->ival;
    if (at > frsp->raw.len)
        at = 0;
    return borrow_sub(r, &frsp->raw, at, frsp->raw.len - at);
}

/* The VALUE item `item` (a reply token) is for the request key `key`. */
static bool
item_is_for(const struct tok *item, const struct tok *key)
{
    uint8_t a[256], b[256];
    struct span s = { item->b, item->off, item->len };

    if (item->klen != key->len)
        return false;
    for (uint64_t done = 0; done < key->len; ) {
        size_t n = (size_t)KM_MIN(key->len - done, (uint64_t)sizeof(a));
        if (span_copy(&s, item->kpos + done, a, n) != n || msg_tok_copy(key, done, b, n) != n ||
            memcmp(a, b, n) != 0)
            return false;
        done += n;
    }
    return true;
}

static int
memc_merge(struct msg *parent, const struct proto_ctx *ctx)
{
    if (parent->merge == MERGE_OK)
        return memc_merge_flush(parent, ctx);

    uint32_t nkeys = (parent->key_last - parent->key_first) / parent->key_step + 1;
    uint32_t hits = 0;
    struct msg *r;

    for (uint32_t i = 0; i < parent->nfrag; i++) {
        const struct msg *fr = parent->frags[i]->rsp;
        if (fr == NULL) {
            r = msg_get(ctx->mc);
            if (r == NULL)
                return KM_ERROR;
            parent->rsp = r;
            return memc_error(r, NULL, "no reply from server", ctx);
        }
        if (fr->is_error || fr->type != MC_RSP_VALUE_END)
            return merge_pass(parent, fr, ctx);
    }

    r = msg_get(ctx->mc);
    if (r == NULL)
        return KM_ERROR;
    parent->rsp = r;
    r->type = MC_RSP_VALUE_END;

    /* each fragment's items come in its keys' order, the missing ones absent: walk them
     * with a cursor per fragment (its nfrag_done, unused otherwise) */
    for (uint32_t i = 0; i < parent->nfrag; i++)
        parent->frags[i]->nfrag_done = 0;
    for (uint32_t k = 0; k < nkeys; k++) {
        struct msg *f = parent->frags[parent->keyfrag[k]];
        const struct msg *fr = f->rsp;
        const struct tok *key = &parent->tok[parent->key_first + k * parent->key_step];

        if (f->nfrag_done >= fr->ntok)
            continue;
        const struct tok *it = &fr->tok[f->nfrag_done];
        if (!item_is_for(it, key))
            continue;
        f->nfrag_done++;
        hits++;
        if (msg_out_borrow(r, it->b, it->off, it->len) != KM_OK)
            return KM_ERROR;
    }
    memc_count_found(ctx->counts, MEMC_CMD(parent->cmd), hits, nkeys - hits);
    return msg_out_bytes(r, ctx->bp, "END\r\n", 5);
}

/* The tokenizer's reason is the whole reply line; the empty reason means none is owed, and
 * a binary-protocol client could read none (its connection is closed after nothing). */
static int
memc_bad_request(struct msg *rsp, const char *reason, const struct proto_ctx *ctx)
{
    rsp->is_error = true;
    rsp->type = MC_RSP_LINE;
    if (reason[0] == '\0' || strcmp(reason, mc_err_binary) == 0)
        return KM_OK;
    if (msg_out_bytes(rsp, ctx->bp, reason, strlen(reason)) != KM_OK)
        return KM_ERROR;
    return msg_out_bytes(rsp, ctx->bp, "\r\n", 2);
}

const struct proto proto_memcache = {
    .name = "memcache",
    .req_init = memc_req_init,
    .req_feed = memc_req_feed,
    .req_len = memc_req_len,
    .req_discarding = memc_req_discarding,
    .req_limits = memc_req_limits,
    .req_err = memc_req_err,
    .req_plan = memc_req_plan,
    .rsp_init = memc_rsp_init,
    .rsp_feed = memc_rsp_feed,
    .rsp_len = memc_rsp_len,
    .rsp_err = memc_rsp_err,
    .rsp_done = memc_rsp_done,
    .rsp_count = memc_count_reply,
    .frag = memc_frag,
    .merge = memc_merge,
    .error = memc_error,
    .conn_init = NULL,
    .bad_request = memc_bad_request,
};
