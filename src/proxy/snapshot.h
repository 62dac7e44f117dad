/* src/proxy/snapshot.h: one generation of the configuration: the pools built from it, and
 * the listening sockets opened for it, published to the workers whole.
 *
 *   main thread (startup, SIGUSR1)          workers, each at a safe point between events
 *   ------------------------------          -----------------------------------------
 *   load + check the file (as -t)
 *   build pools (a kept pool and its        see px->snap != w->snap: adopt it
 *     servers take over their state)          (proxy/adopt.c): the views of kept pools
 *   open the new listening sockets            and servers carry over, what was removed
 *   px->snap = new  ------ publish ------>    drains, then goes
 *   MAIL_WAKE to every worker
 *
 * A snapshot is reference counted: the main thread holds the current one, each worker
 * the one it has adopted, and each draining pool view of a worker the one its pool
 * belongs to. When the last reference goes, the snapshot is retired to the publication
 * domain (core/publish.h) and freed once every worker has passed a safe point.
 */
#ifndef KM_SNAPSHOT_H
#define KM_SNAPSHOT_H

#include "config/conf.h"
#include "core/publish.h"

#include <stdatomic.h>
#include <stdint.h>

struct pool;
struct proxy;
struct shared_listener;

struct snapshot {
    struct pub_node node;      /* for retiring it (first: the node is the snapshot) */
    struct proxy *px;
    uint64_t gen;              /* 1 at start, one more per reload */
    struct conf cf;            /* the configuration, owned */
    struct pool *pools;        /* built from cf, in config order */
    uint32_t npools;
    uint32_t nworkers;
    int *lfds;                 /* [pool * nworkers + worker]: a listening socket opened for
                                  this generation for that worker to take, -1 when none
                                  (the worker keeps its own, or the pool has none) */
    struct shared_listener *shared;   /* one per pool: the main thread's sockets */
    _Atomic uint32_t refs;
    struct snapshot *succ;     /* the snapshot that replaced this one (a reference) */
};

/* Build generation gen from cf (taken over: *cf is left empty) for nworkers workers; a
 * pool of prev with the same name and protocol hands its state over (pool_init). Nothing
 * is published and no socket opened. NULL with a message in err on failure. */
struct snapshot *snapshot_build(struct proxy *px, struct conf *cf, const struct snapshot *prev,
                                uint64_t gen, char *err, size_t errlen);
/* The pool of s that succeeds pool p of an older snapshot (the same state), or NULL. */
struct pool *snapshot_successor(const struct snapshot *s, const struct pool *p);
/* Take and drop a reference. The last drop retires s to the publication domain (any
 * thread; it is freed by proxy_tick once every worker has passed a safe point). */
void snapshot_get(struct snapshot *s);
void snapshot_put(struct snapshot *s);
/* Free s now: its pools, listening sockets not taken, configuration. Only when no worker
 * can reach it (at exit, or from the publication domain). */
void snapshot_free(struct snapshot *s);

#endif
