/* src/core/counter.h: counters written by one thread and read by others.
 *
 * A worker bumps its own counters on the request path; the stats port (another thread)
 * sums them. A counter is a relaxed atomic 64-bit word: its one writer adds with a plain
 * load and store (no locked instruction, so it costs what `x += n` costs), and readers
 * load it whole, never torn. The struct keeps `++` and `+=` from compiling, so that no
 * counter is bumped with a locked read-modify-write by mistake.
 */
#ifndef KM_COUNTER_H
#define KM_COUNTER_H

#include <stdatomic.h>
#include <stdint.h>

struct km_ctr {
    _Atomic uint64_t v;
};

/* Only the counter's owner (one thread) may add or subtract. */
static inline void
ctr_add(struct km_ctr *c, uint64_t n)
{
    atomic_store_explicit(&c->v, atomic_load_explicit(&c->v, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline void
ctr_sub(struct km_ctr *c, uint64_t n)
{
    atomic_store_explicit(&c->v, atomic_load_explicit(&c->v, memory_order_relaxed) - n,
                          memory_order_relaxed);
}

static inline void
ctr_set(struct km_ctr *c, uint64_t v)
{
    atomic_store_explicit(&c->v, v, memory_order_relaxed);
}

/* Any thread may read. */
static inline uint64_t
ctr_get(const struct km_ctr *c)
{
    return atomic_load_explicit(&((struct km_ctr *)c)->v, memory_order_relaxed);
}

#endif
