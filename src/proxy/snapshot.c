/* src/proxy/snapshot.c: building, holding and freeing a generation of the configuration. */
#include "proxy/snapshot.h"

#include "core/common.h"
#include "pool/pool.h"
#include "proxy/proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The pool of prev that p's config succeeds: the same name and the same protocol (a pool
 * that changes protocol is another pool: removed, then added). */
static const struct pool *
predecessor(const struct snapshot *prev, const struct conf_pool *cf)
{
    if (prev == NULL)
        return NULL;
    for (uint32_t i = 0; i < prev->npools; i++) {
        const struct pool *o = &prev->pools[i];
        if (strcmp(o->cf->name, cf->name) == 0 && o->cf->redis == cf->redis)
            return o;
    }
    return NULL;
}

struct snapshot *
snapshot_build(struct proxy *px, struct conf *cf, const struct snapshot *prev, uint64_t gen,
               char *err, size_t errlen)
{
    struct snapshot *s = calloc(1, sizeof(*s));
    uint32_t nw = px->nworkers;

    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        conf_free(cf);
        return NULL;
    }
    s->px = px;
    s->gen = gen;
    s->cf = *cf;
    memset(cf, 0, sizeof(*cf));
    s->nworkers = nw;
    atomic_init(&s->refs, 1);
    s->pools = calloc(s->cf.npools, sizeof(*s->pools));
    s->shared = calloc(s->cf.npools, sizeof(*s->shared));
    s->lfds = malloc((size_t)s->cf.npools * (nw > 0 ? nw : 1) * sizeof(*s->lfds));
    if (s->pools == NULL || s->shared == NULL || s->lfds == NULL) {
        snprintf(err, errlen, "out of memory");
        snapshot_free(s);
        return NULL;
    }
    for (uint32_t i = 0; i < s->cf.npools * nw; i++)
        s->lfds[i] = -1;
    for (uint32_t i = 0; i < s->cf.npools; i++) {
        const struct conf_pool *pc = &s->cf.pools[i];
        if (pool_init(&s->pools[i], i, pc, &px->pub, nw, predecessor(prev, pc),
                      (gen << 20) | i, err, errlen) != KM_OK) {
            snapshot_free(s);
            return NULL;
        }
        s->npools++;
        s->shared[i] = (struct shared_listener){ .px = px, .snap = s, .pidx = i, .fd = -1,
                                                 .spare_fd = -1 };
    }
    return s;
}

struct pool *
snapshot_successor(const struct snapshot *s, const struct pool *p)
{
    for (uint32_t i = 0; i < s->npools; i++) {
        if (s->pools[i].state == p->state)
            return &s->pools[i];
    }
    return NULL;
}

void
snapshot_get(struct snapshot *s)
{
    atomic_fetch_add(&s->refs, 1);
}

static void
snapshot_retired(struct pub_node *n)
{
    snapshot_free((struct snapshot *)n);
}

void
snapshot_put(struct snapshot *s)
{
    if (s != NULL && atomic_fetch_sub(&s->refs, 1) == 1)
        pub_retire(&s->px->pub, &s->node, snapshot_retired);
}

/* Free s alone (its reference to its successor is the caller's to drop). */
static void
free_one(struct snapshot *s)
{
    if (s->lfds != NULL) {
        for (uint32_t i = 0; i < s->cf.npools * s->nworkers; i++) {
            if (s->lfds[i] >= 0)
                close(s->lfds[i]);
        }
    }
    /* the main thread's sockets still open: a failed reload's new ones */
    for (uint32_t i = 0; s->shared != NULL && i < s->npools; i++)
        listener_close_shared(&s->shared[i]);
    for (uint32_t i = 0; i < s->npools; i++)
        pool_free(&s->pools[i]);
    free(s->pools);
    free(s->shared);
    free(s->lfds);
    conf_free(&s->cf);
    free(s);
}

/* Each generation holds its successor (s->succ), so that a pool of s that is still
 * draining can pass failures on to its successor's pool (pool.next). So when s goes,
 * its successor may go with it, at once and without a grace period of its own: a worker
 * can only be about to take a reference to a generation newer than the one it runs,
 * which holds, through this chain, every newer one; s being freed means no worker runs
 * s or anything older, so nobody can reach a successor whose last reference was s's.
 * Retiring each one instead would free one generation of the chain per reclaim, and a
 * quick run of reloads would pile up faster than the main thread's tick frees them. */
void
snapshot_free(struct snapshot *s)
{
    while (s != NULL) {
        struct snapshot *next = s->succ;
        free_one(s);
        s = next != NULL && atomic_fetch_sub(&next->refs, 1) == 1 ? next : NULL;
    }
}
