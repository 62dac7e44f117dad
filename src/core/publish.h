/* src/core/publish.h: publishing immutable objects to the workers, and freeing the old ones.
 *
 * What every worker must see the same (a pool's ring after an ejection; later a whole
 * config, a Sentinel switch, a cluster slot map) is an immutable object that one thread
 * builds and publishes by storing its pointer (atomic, release); workers load the
 * pointer (acquire) where they use it and never keep it past the event they handle.
 * The object it replaced is retired here, and freed once every worker has passed a safe
 * point after the swap: a point between events, where it holds no published pointer
 * (quiescent-state reclamation):
 *
 *   publisher:  store(p, new) -> pub_retire(old): gen++, old waits with that gen
 *   worker i:   ... use *load(p) ... | safe point: seen[i] = gen | ... use *load(p) ...
 *   reclaim:    free every retired object whose gen <= min(seen[i])
 *
 * A worker that blocks in its poll passes a safe point at least once a second (its
 * tick), or at once when woken (pub_wake). Publishing takes a lock, never the readers:
 * their side is one load of gen and, when it moved, one store of their own word.
 */
#ifndef KM_PUBLISH_H
#define KM_PUBLISH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* The link an object that can be retired carries in itself, so that retiring never
 * allocates (it may happen when memory is short). */
struct pub_node {
    struct pub_node *next;
    void (*fn)(struct pub_node *);   /* frees the object the node is in */
    uint64_t gen;                    /* readers must have seen this gen */
};

/* One reader's word, alone on its cache line. */
struct pub_reader {
    _Atomic uint64_t seen;     /* gen at its last safe point */
    char pad[64 - sizeof(uint64_t)];
};

struct pub_domain {
    _Atomic uint64_t gen;      /* bumped by every retire */
    struct pub_reader *readers;
    uint32_t nreaders;
    pthread_mutex_t lock;      /* guards the retired list */
    struct pub_node *retired;  /* oldest first */
    struct pub_node **tail;
    uint32_t nretired;
    uint64_t nfreed;           /* objects freed so far (the reclaiming thread's alone) */
};

/* A domain for nreaders readers (numbered 0..nreaders-1), each at gen 0. 0 or -errno. */
int pub_init(struct pub_domain *d, uint32_t nreaders);
/* Free every retired object (no reader may be left) and the domain's own memory. */
void pub_destroy(struct pub_domain *d);
/* The object holding n is no longer reachable by new loads (its replacement is stored):
 * call fn(n), which frees it, once every reader has passed a safe point. Any thread, a
 * reader too. d NULL (no other thread reads it): fn(n) at once. */
void pub_retire(struct pub_domain *d, struct pub_node *n, void (*fn)(struct pub_node *));
/* Reader r is at a safe point: it holds no published pointer now. */
static inline void
pub_quiescent(struct pub_domain *d, uint32_t r)
{
    uint64_t g = atomic_load_explicit(&d->gen, memory_order_acquire);
    if (atomic_load_explicit(&d->readers[r].seen, memory_order_relaxed) != g)
        atomic_store_explicit(&d->readers[r].seen, g, memory_order_release);
}
/* Reader r reads no more (its thread ends): never wait for it again. */
static inline void
pub_leave(struct pub_domain *d, uint32_t r)
{
    atomic_store_explicit(&d->readers[r].seen, UINT64_MAX, memory_order_release);
}
/* Free what every reader has passed; returns how many objects are still waiting. */
uint32_t pub_reclaim(struct pub_domain *d);

#endif
