/* src/core/publish.c: retiring published objects and freeing them after every reader's safe point. */
#include "core/publish.h"

#include <errno.h>
#include <stdlib.h>

int
pub_init(struct pub_domain *d, uint32_t nreaders)
{
    atomic_init(&d->gen, 0);
    d->nreaders = nreaders;
    d->retired = NULL;
    d->tail = &d->retired;
    d->nretired = 0;
    d->readers = calloc(nreaders > 0 ? nreaders : 1, sizeof(*d->readers));
    if (d->readers == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < nreaders; i++)
        atomic_init(&d->readers[i].seen, 0);
    int rc = pthread_mutex_init(&d->lock, NULL);
    if (rc != 0) {
        free(d->readers);
        d->readers = NULL;
        return -rc;
    }
    return 0;
}

void
pub_destroy(struct pub_domain *d)
{
    if (d->readers == NULL)
        return;
    while (d->retired != NULL) {
        struct pub_node *n = d->retired;
        d->retired = n->next;
        if (d->retired == NULL)
            d->tail = &d->retired;   /* fn may retire more (a chain of objects) */
        n->fn(n);
    }
    d->tail = &d->retired;
    d->nretired = 0;
    pthread_mutex_destroy(&d->lock);
    free(d->readers);
    d->readers = NULL;
}

void
pub_retire(struct pub_domain *d, struct pub_node *n, void (*fn)(struct pub_node *))
{
    n->fn = fn;
    n->next = NULL;
    if (d == NULL) {
        fn(n);
        return;
    }
    pthread_mutex_lock(&d->lock);
    n->gen = atomic_fetch_add(&d->gen, 1) + 1;
    *d->tail = n;
    d->tail = &n->next;
    d->nretired++;
    pthread_mutex_unlock(&d->lock);
}

uint32_t
pub_reclaim(struct pub_domain *d)
{
    uint64_t low = UINT64_MAX;
    struct pub_node *done = NULL, **tail = &done;
    uint32_t left;

    for (uint32_t i = 0; i < d->nreaders; i++) {
        uint64_t s = atomic_load_explicit(&d->readers[i].seen, memory_order_acquire);
        if (s < low)
            low = s;
    }
    pthread_mutex_lock(&d->lock);
    while (d->retired != NULL && d->retired->gen <= low) {
        struct pub_node *n = d->retired;
        d->retired = n->next;
        if (d->retired == NULL)
            d->tail = &d->retired;
        d->nretired--;
        n->next = NULL;
        *tail = n;
        tail = &n->next;
    }
    left = d->nretired;
    pthread_mutex_unlock(&d->lock);
    while (done != NULL) {
        struct pub_node *n = done;
        done = n->next;
        n->fn(n);
        d->nfreed++;
    }
    return left;
}
