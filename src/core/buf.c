/* src/core/buf.c: segment pool, spans and input chains (see buf.h for the picture). */
#include "core/buf.h"

#include "core/common.h"

#include <stdlib.h>
#include <string.h>

void
bufpool_init(struct bufpool *p, uint32_t size, uint32_t max_free)
{
    memset(p, 0, sizeof(*p));
    p->size = size;
    p->max_free = max_free;
}

void
bufpool_destroy(struct bufpool *p)
{
    if (p->scratch != NULL) {
        buf_unref(p->scratch);
        p->scratch = NULL;
    }
    while (p->free != NULL) {
        struct buf *b = p->free;
        p->free = b->next;
        free(b);
        p->nlive--;
    }
    p->nfree = 0;
}

uint32_t
bufpool_trim(struct bufpool *p)
{
    uint32_t n = p->low;

    for (uint32_t i = 0; i < n && p->free != NULL; i++) {
        struct buf *b = p->free;
        p->free = b->next;
        p->nfree--;
        free(b);
        p->nlive--;
        p->nreleased++;
    }
    p->low = p->nfree;
    return n;
}

struct buf *
buf_get(struct bufpool *p)
{
    struct buf *b = p->free;

    if (b != NULL) {
        p->free = b->next;
        p->nfree--;
        if (p->nfree < p->low)
            p->low = p->nfree;
    } else {
        b = malloc(sizeof(*b) + p->size);
        if (b == NULL)
            return NULL;
        b->pool = p;
        p->nlive++;
    }
    b->next = NULL;
    b->refs = 1;
    b->len = 0;
    return b;
}

void
buf_unref(struct buf *b)
{
    ASSERT(b->refs > 0);
    if (--b->refs > 0)
        return;

    struct bufpool *p = b->pool;
    if (p->nfree < p->max_free) {
        b->next = p->free;
        p->free = b;
        p->nfree++;
    } else {
        free(b);
        p->nlive--;
        p->nreleased++;
    }
}

uint8_t *
buf_scratch(struct bufpool *p, size_t n, struct span *out)
{
    ASSERT(n <= 256 && n <= p->size);
    struct buf *s = p->scratch;

    if (s == NULL || p->size - s->len < n) {
        struct buf *fresh = buf_get(p);
        if (fresh == NULL)
            return NULL;
        if (s != NULL)
            buf_unref(s);
        p->scratch = s = fresh;
    }
    out->b = s;
    out->off = s->len;
    out->len = n;
    s->len += (uint32_t)n;
    buf_ref(s);
    return s->data + out->off;
}

void
span_hold(const struct span *s)
{
    struct buf *b = s->b;
    uint64_t left = s->len;
    uint32_t off = s->off;

    if (left == 0) {
        if (b != NULL)
            buf_ref(b);
        return;
    }
    while (left > 0) {
        ASSERT(b != NULL);
        uint64_t here = b->len - off;
        buf_ref(b);
        if (here >= left)
            break;
        left -= here;
        b = b->next;
        off = 0;
    }
}

void
span_release(struct span *s)
{
    struct buf *b = s->b;
    uint64_t left = s->len;
    uint32_t off = s->off;

    if (b == NULL)
        return;
    if (left == 0) {
        buf_unref(b);
    }
    while (left > 0) {
        ASSERT(b != NULL);
        uint64_t here = b->len - off;
        struct buf *next = b->next;
        buf_unref(b);
        if (here >= left)
            break;
        left -= here;
        b = next;
        off = 0;
    }
    s->b = NULL;
    s->len = 0;
}

size_t
span_copy(const struct span *s, uint64_t skip, void *dst, size_t n)
{
    struct buf *b = s->b;
    uint32_t off = s->off;
    uint64_t left = s->len;
    size_t done = 0;

    if (skip >= left)
        return 0;
    left -= skip;
    /* find the segment holding byte `skip` */
    while (skip > 0) {
        uint64_t here = b->len - off;
        if (skip < here) {
            off += (uint32_t)skip;
            break;
        }
        skip -= here;
        b = b->next;
        off = 0;
    }
    while (done < n && left > 0) {
        uint64_t here = KM_MIN((uint64_t)(b->len - off), left);
        size_t take = (size_t)KM_MIN(here, (uint64_t)(n - done));
        memcpy((uint8_t *)dst + done, b->data + off, take);
        done += take;
        left -= take;
        if (take < here)
            break;
        b = b->next;
        off = 0;
    }
    return done;
}

uint64_t
span_iov(const struct span *s, uint64_t skip, struct iovec *iov, int max, int *niov)
{
    struct buf *b = s->b;
    uint32_t off = s->off;
    uint64_t left;
    uint64_t total = 0;
    int n = *niov;

    if (skip >= s->len)
        return 0;
    left = s->len - skip;
    while (skip > 0) {
        uint64_t here = b->len - off;
        if (skip < here) {
            off += (uint32_t)skip;
            break;
        }
        skip -= here;
        b = b->next;
        off = 0;
    }
    while (left > 0) {
        uint64_t here = KM_MIN((uint64_t)(b->len - off), left);
        uint8_t *p = b->data + off;
        if (n > 0 && (uint8_t *)iov[n - 1].iov_base + iov[n - 1].iov_len == p) {
            iov[n - 1].iov_len += here;
        } else {
            if (n == max)
                break;
            iov[n].iov_base = p;
            iov[n].iov_len = here;
            n++;
        }
        total += here;
        left -= here;
        b = b->next;
        off = 0;
    }
    *niov = n;
    return total;
}

uint8_t *
chain_space(struct chain *c, struct bufpool *p, size_t *room)
{
    struct buf *t = c->tail;

    if (t == NULL || t->len == p->size) {
        struct buf *b = buf_get(p);
        if (b == NULL)
            return NULL;
        if (t == NULL) {
            c->head = c->tail = c->pb = b;
            c->hoff = c->poff = 0;
            c->head_abs = c->pabs = c->end_abs;
        } else {
            t->next = b;
            c->tail = b;
            if (c->pb == t && c->poff == t->len) {
                c->pb = b;
                c->poff = 0;
            }
        }
        t = b;
    }
    *room = p->size - t->len;
    return t->data + t->len;
}

void
chain_commit(struct chain *c, size_t n)
{
    c->tail->len += (uint32_t)n;
    c->end_abs += n;
}

void
chain_advance(struct chain *c, size_t n)
{
    c->poff += (uint32_t)n;
    c->pabs += n;
    ASSERT(c->poff <= c->pb->len);
    if (c->poff == c->pb->len && c->pb->next != NULL) {
        c->pb = c->pb->next;
        c->poff = 0;
    }
}

void
chain_locate(struct buf **b, uint64_t *b_abs, uint64_t abs, uint32_t *off)
{
    struct buf *cur = *b;
    uint64_t base = *b_abs;

    ASSERT(abs >= base);
    while (abs - base >= cur->len && cur->next != NULL) {
        base += cur->len;
        cur = cur->next;
    }
    *b = cur;
    *b_abs = base;
    *off = (uint32_t)(abs - base);
}

void
chain_consume(struct chain *c)
{
    while (c->head != c->pb) {
        struct buf *next = c->head->next;
        c->head_abs += c->head->len;
        buf_unref(c->head);
        c->head = next;
    }
    c->hoff = c->poff;
}

void
chain_release(struct chain *c)
{
    struct buf *b = c->head;
    while (b != NULL) {
        struct buf *next = b->next;
        buf_unref(b);
        b = next;
    }
    c->head = c->tail = c->pb = NULL;
    c->hoff = c->poff = 0;
    c->head_abs = c->pabs = c->end_abs;
}
