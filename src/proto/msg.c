/* src/proto/msg.c: message life cycle, token and output lists. */
#include "proto/msg.h"

#include "core/common.h"

#include <stdlib.h>
#include <string.h>

void
msgcache_init(struct msgcache *mc, uint32_t max_free)
{
    memset(mc, 0, sizeof(*mc));
    mc->max_free = max_free;
}

void
msgcache_destroy(struct msgcache *mc)
{
    while (mc->free != NULL) {
        struct msg *m = mc->free;
        mc->free = m->cnext;
        free(m);
    }
    mc->nfree = 0;
}

uint32_t
msgcache_trim(struct msgcache *mc)
{
    uint32_t n = mc->low;

    for (uint32_t i = 0; i < n && mc->free != NULL; i++) {
        struct msg *m = mc->free;
        mc->free = m->cnext;
        mc->nfree--;
        free(m);
    }
    mc->low = mc->nfree;
    return n;
}

struct msg *
msg_get(struct msgcache *mc)
{
    struct msg *m = mc->free;

    if (m != NULL) {
        mc->free = m->cnext;
        mc->nfree--;
        if (mc->nfree < mc->low)
            mc->low = mc->nfree;
    } else {
        m = malloc(sizeof(*m));
        if (m == NULL)
            return NULL;
    }
    memset(m, 0, offsetof(struct msg, tok_inline));
    m->tok = m->tok_inline;
    m->tokcap = MSG_TOK_INLINE;
    m->out = m->out_inline;
    m->outcap = MSG_OUT_INLINE;
    m->server = -1;
    mc->nlive++;
    return m;
}

void
msg_out_release(struct msg *m)
{
    for (uint32_t i = 0; i < m->nout; i++)
        span_release(&m->out[i]);
    m->nout = 0;
    m->outlen = 0;
    if (m->out != m->out_inline) {
        free(m->out);
        m->out = m->out_inline;
        m->outcap = MSG_OUT_INLINE;
    }
}

/* Release the parsed bytes and the tokens that point into them. */
static void
release_input(struct msg *m)
{
    if (m->raw.b != NULL)
        span_release(&m->raw);
    m->ntok = 0;
    if (m->tok != m->tok_inline) {
        free(m->tok);
        m->tok = m->tok_inline;
        m->tokcap = MSG_TOK_INLINE;
    }
}

void
msg_drop_input(struct msg *m)
{
    if (m->merge != MERGE_VALUES)
        release_input(m);
}

void
msg_put(struct msgcache *mc, struct msg *m)
{
    if (m->rsp != NULL)
        msg_put(mc, m->rsp);
    for (uint32_t i = 0; i < m->nfrag; i++) {
        if (m->frags[i] != NULL)
            msg_put(mc, m->frags[i]);
    }
    msg_split_free(m);
    msg_out_release(m);
    release_input(m);

    mc->nlive--;
    if (mc->nfree < mc->max_free) {
        m->cnext = mc->free;
        mc->free = m;
        mc->nfree++;
    } else {
        free(m);
    }
}

int
msg_split_init(struct msg *m, uint32_t maxfrag, uint32_t nkeys)
{
    m->frags = calloc(1, maxfrag * sizeof(*m->frags) + nkeys * sizeof(*m->keyfrag));
    if (m->frags == NULL)
        return KM_ERROR;
    m->keyfrag = (uint32_t *)(m->frags + maxfrag);
    return KM_OK;
}

void
msg_split_free(struct msg *m)
{
    free(m->frags);
    m->frags = NULL;
    m->keyfrag = NULL;
}

int
msg_split_all(struct msg *m, uint32_t n, struct msgcache *mc)
{
    if (msg_split_init(m, n, 0) != KM_OK)
        return KM_ERROR;
    for (uint32_t i = 0; i < n; i++) {
        struct msg *fr = msg_get(mc);
        if (fr == NULL || msg_out_borrow(fr, m->raw.b, m->raw.off, m->raw.len) != KM_OK) {
            if (fr != NULL)
                msg_put(mc, fr);
            for (uint32_t f = 0; f < m->nfrag; f++)
                msg_put(mc, m->frags[f]);
            m->nfrag = 0;
            msg_split_free(m);
            return KM_ERROR;
        }
        m->frags[i] = fr;
        m->nfrag = i + 1;
        fr->parent = m;
        fr->cmd = m->cmd;
        fr->noreply = m->noreply;
        fr->server = (int32_t)i;
    }
    return KM_OK;
}

int
msg_tok_push(struct msg *m, const struct tok *t)
{
    if (m->ntok == m->tokcap) {
        uint32_t cap = m->tok == m->tok_inline ? MSG_GROW_FIRST : m->tokcap * 2;
        struct tok *n;
        if (m->tok == m->tok_inline) {
            n = malloc(cap * sizeof(*n));
            if (n != NULL)
                memcpy(n, m->tok, m->ntok * sizeof(*n));
        } else {
            n = realloc(m->tok, cap * sizeof(*n));
        }
        if (n == NULL)
            return KM_ERROR;
        m->tok = n;
        m->tokcap = cap;
    }
    m->tok[m->ntok++] = *t;
    return KM_OK;
}

int
msg_out_push(struct msg *m, struct span *s)
{
    if (m->nout == m->outcap) {
        uint32_t cap = m->out == m->out_inline ? MSG_GROW_FIRST : m->outcap * 2;
        struct span *n;
        if (m->out == m->out_inline) {
            n = malloc(cap * sizeof(*n));
            if (n != NULL)
                memcpy(n, m->out, m->nout * sizeof(*n));
        } else {
            n = realloc(m->out, cap * sizeof(*n));
        }
        if (n == NULL) {
            span_release(s);
            return KM_ERROR;
        }
        m->out = n;
        m->outcap = cap;
    }
    m->outlen += s->len;
    m->out[m->nout++] = *s;
    return KM_OK;
}

static int out_bytes_piece(struct msg *m, struct bufpool *bp, const void *p, size_t n);

int
msg_out_bytes(struct msg *m, struct bufpool *bp, const void *p, size_t n)
{
    while (n > 0) {
        size_t take = n < 256 ? n : 256;
        if (out_bytes_piece(m, bp, p, take) != KM_OK)
            return KM_ERROR;
        p = (const uint8_t *)p + take;
        n -= take;
    }
    return KM_OK;
}

static int
out_bytes_piece(struct msg *m, struct bufpool *bp, const void *p, size_t n)
{
    struct span s;
    uint8_t *dst;

    /* extend the previous fresh piece when it is the scratch segment's last */
    if (m->nout > 0) {
        struct span *last = &m->out[m->nout - 1];
        if (last->b == bp->scratch && last->off + last->len == bp->scratch->len &&
            bp->size - bp->scratch->len >= n && last->len + n <= 256) {
            memcpy(bp->scratch->data + bp->scratch->len, p, n);
            bp->scratch->len += (uint32_t)n;
            last->len += n;
            m->outlen += n;
            return KM_OK;
        }
    }
    dst = buf_scratch(bp, n, &s);
    if (dst == NULL)
        return KM_ERROR;
    memcpy(dst, p, n);
    return msg_out_push(m, &s);
}

int
msg_out_borrow(struct msg *m, struct buf *b, uint32_t off, uint64_t len)
{
    struct span s = { b, off, len };

    /* merge with the previous span when it ends right where this one starts */
    if (m->nout > 0) {
        struct span *last = &m->out[m->nout - 1];
        if (last->b == b && last->off + last->len == off && off + len <= b->len) {
            last->len += len;
            m->outlen += len;
            return KM_OK;
        }
    }
    span_hold(&s);
    return msg_out_push(m, &s);
}

size_t
msg_tok_copy(const struct tok *t, uint64_t skip, void *dst, size_t n)
{
    struct span s = { t->b, t->off, t->aux + t->len };
    return span_copy(&s, t->aux + skip, dst, n);
}

int
msg_tok_int(const struct tok *t, int64_t *v)
{
    char buf[24];
    size_t n;
    uint64_t acc;
    bool neg;

    if (t->len == 0 || t->len > 20)
        return KM_ERROR;
    n = msg_tok_copy(t, 0, buf, sizeof(buf));
    neg = buf[0] == '-';
    if (!km_u64_parse(buf + neg, n - neg, &acc))
        return KM_ERROR;
    if (!neg && acc > (uint64_t)INT64_MAX)
        return KM_ERROR;
    if (neg && acc > (uint64_t)INT64_MAX + 1)
        return KM_ERROR;
    *v = neg ? (int64_t)(0 - acc) : (int64_t)acc;
    return KM_OK;
}
