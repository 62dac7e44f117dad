/* src/proto/reader.c: the tokenizer driven over a segment chain, message by message. */
#include "proto/reader.h"

#include "core/common.h"

void
reader_init(struct reader *r)
{
    r->in = (struct chain){ 0 };
    r->cur = NULL;
    r->cur_b = r->cur_sb = NULL;
    r->cur_b_abs = r->cur_start = 0;
    r->cur_soff = 0;
    r->fresh = true;
    r->keep_toks = false;
}

void
reader_req_start(struct reader *r, const struct reader_env *env)
{
    env->pr->req_init(&r->ps);
    if (env->lim != NULL && env->pr->req_limits != NULL)
        env->pr->req_limits(&r->ps, env->lim);
}

bool
reader_idle(const struct reader *r, const struct reader_env *env, bool is_req)
{
    return r->cur == NULL && r->in.pabs == r->in.end_abs &&
           (is_req ? env->pr->req_len(&r->ps) == 0 : r->fresh);
}

void
reader_release(struct reader *r, struct msgcache *mc)
{
    if (r->cur != NULL) {
        msg_put(mc, r->cur);
        r->cur = NULL;
    }
    chain_release(&r->in);
}

/* Start a message at the current event: its first byte is msglen bytes back. */
static int
begin_msg(struct reader *r, struct msgcache *mc, uint64_t msglen)
{
    struct msg *m = msg_get(mc);
    uint32_t off;

    if (m == NULL)
        return KM_ERROR;
    /* the chain still holds every byte of the message */
    ASSERT(msglen <= r->in.pabs - r->in.head_abs - r->in.hoff);
    r->cur = m;
    r->cur_start = r->in.pabs - msglen;
    r->cur_b = r->in.head;
    r->cur_b_abs = r->in.head_abs;
    chain_locate(&r->cur_b, &r->cur_b_abs, r->cur_start, &off);
    r->cur_sb = r->cur_b;
    r->cur_soff = off;
    return KM_OK;
}

/* At a reply boundary: set the tokenizer up for the request the next reply answers. */
static int
begin_reply(struct reader *r, const struct proto *pr, const struct reader_ops *ops, void *arg)
{
    struct msg *req = ops->answers(arg);

    if (req == NULL)
        return KM_ERROR;
    r->keep_toks = req->elems || (req->parent != NULL &&
                   (req->parent->merge == MERGE_ARRAY || req->parent->merge == MERGE_VALUES ||
                    req->parent->merge == MERGE_SCAN));
    pr->rsp_init(&r->ps, req, r->keep_toks);
    r->fresh = false;
    return KM_OK;
}

int
reader_parse(struct reader *r, const struct reader_env *env, bool is_req,
             const struct reader_ops *ops, void *arg)
{
    const struct proto *pr = env->pr;
    bool more = false;   /* a token was just reported: the end may follow with no new byte */

    while (more || r->in.pabs < r->in.end_abs) {
        struct ptok t;
        size_t used = 0;
        size_t n = r->in.pb->len - r->in.poff;
        const uint8_t *p = r->in.pb->data + r->in.poff;
        int ev;

        if (!is_req && r->fresh && begin_reply(r, pr, ops, arg) != KM_OK) {
            ops->bad(arg, "unexpected data from server", false);
            return KM_ERROR;
        }
        ev = is_req ? pr->req_feed(&r->ps, p, n, &used, &t)
                    : pr->rsp_feed(&r->ps, p, n, &used, &t);
        /* a tokenizer takes what it was given at most, and all of it when it wants more */
        ASSERT(used <= n);
        ASSERT(ev != PEV_AGAIN || used == n);
        chain_advance(&r->in, used);
        more = ev == PEV_TOKEN;
        if (ev == PEV_ERROR) {
            bool recoverable = false;
            const char *why = is_req ? pr->req_err(&r->ps, &recoverable) : pr->rsp_err(&r->ps);
            int rc = ops->bad(arg, why, recoverable);
            if (rc != KM_OK || !recoverable)
                return KM_ERROR;
            /* the bad line is consumed; carry on with the next request */
            if (r->cur != NULL) {
                msg_put(env->mc, r->cur);
                r->cur = NULL;
            }
            chain_consume(&r->in);
            reader_req_start(r, env);
            continue;
        }
        /* bytes of the message so far (all of it once DONE) */
        uint64_t msglen = is_req ? pr->req_len(&r->ps) : pr->rsp_len(&r->ps);
        if (is_req && msglen > env->max_request) {
            ops->bad(arg, "Protocol error: request larger than max_request_size", false);
            return KM_ERROR;
        }
        if (is_req && ev == PEV_AGAIN && pr->req_discarding != NULL && pr->req_discarding(&r->ps)) {
            /* refused bytes: nothing will point into them, so do not keep them */
            chain_consume(&r->in);
        }
        if (ev == PEV_AGAIN)
            continue;

        if (r->cur == NULL && begin_msg(r, env->mc, msglen) != KM_OK) {
            ops->bad(arg, "out of memory", false);
            return KM_ERROR;
        }
        struct msg *m = r->cur;
        if (ev == PEV_TOKEN) {
            if (is_req || r->keep_toks) {
                /* for requests kpos carries the token's offset in the message */
                struct tok tk = { NULL, 0, t.aux, t.len, is_req ? t.pos : t.kpos, t.klen, t.type };
                ASSERT(t.pos + t.len <= msglen);
                chain_locate(&r->cur_b, &r->cur_b_abs, r->cur_start + t.pos, &tk.off);
                tk.b = r->cur_b;
                if (msg_tok_push(m, &tk) != KM_OK) {
                    ops->bad(arg, "out of memory", false);
                    return KM_ERROR;
                }
            }
            continue;
        }
        m->raw.b = r->cur_sb;
        m->raw.off = r->cur_soff;
        m->raw.len = msglen;
        span_hold(&m->raw);
        chain_consume(&r->in);
        r->cur = NULL;
        if (!is_req) {
            pr->rsp_done(m, &r->ps);
            r->fresh = true;
        }
        /* done() may read the tokenizer's view of the request; reset it after */
        int rc = ops->done(arg, m);
        if (rc != KM_OK)
            return rc;
        if (is_req)
            reader_req_start(r, env);
    }
    return KM_OK;
}
