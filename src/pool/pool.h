/* src/pool/pool.h: a server pool built from its config, shared by every worker.
 *
 * A pool and its servers are immutable once built (config, protocol, resolved addresses,
 * names), except for what all workers must agree on, which is shared here and changed
 * only as this header says:
 *
 *   pool->ring          the routing over the live servers: an immutable build, published
 *                       by pointer (core/publish.h); replaced whole when a server leaves
 *                       or rejoins, under pool->rebuild, never on the request path
 *   state->h            a server's health: consecutive failures counted by every
 *                       worker, the ejection decided once (atomics); its retry time and
 *                       its return decided by the main thread's probe (proxy/probe.c)
 *   state->nclients     the pool's clients, against client_connections (atomic)
 *   state->server_ejects  the ejections so far (atomic)
 *   state->counts_base  the protocol counters' sum at the last memcached `stats reset`
 *                       (each counter an atomic word, stored by the worker that got it)
 *   state->wst[i]       worker i's counters for the pool or server: only worker i
 *                       writes them (core/counter.h), the stats port sums them
 *
 * That state lives in its own block (struct pool_state, struct server_state), which a
 * reload hands from a pool or server to its successor of the same name, so that what a
 * pool has counted, its clients against the limit and its servers' health go on
 * across the reload; a block is freed with the last pool or server that holds it.
 *
 * What a worker keeps per pool and per server (its connections, its listener, its
 * split scratch) is the worker's own: see struct wpool and struct wserver in
 * proxy/proxy.h.
 */
#ifndef KM_POOL_H
#define KM_POOL_H

#include "config/conf.h"
#include "core/counter.h"
#include "core/hist.h"
#include "core/publish.h"
#include "proto/proto.h"
#include "route/route.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct proto;
struct pool;

/* Counters of one server in one worker, named as twemproxy's stats. */
struct server_stats {
    struct km_ctr server_eof, server_err, server_timedout;
    struct km_ctr requests, request_bytes, responses, response_bytes;
    struct km_ctr in_queue, in_queue_bytes;     /* queued for the server, not yet written */
    struct km_ctr out_queue, out_queue_bytes;   /* written, awaiting the reply */
    struct km_ctr connections;                  /* open connections of this worker */
    struct km_hist latency;                     /* request written -> its reply read */
};

/* Counters of one pool in one worker. */
struct pool_stats {
    struct km_ctr client_eof, client_err, forward_error, fragments;
    struct km_hist latency;        /* request read -> its reply written to the client */
    struct proto_counts counts;    /* bumped by the protocol (memcached stats, INFO) */
};

/* One worker's counters, alone on their cache lines. */
struct server_stats_slot {
    struct server_stats st;
} __attribute__((aligned(64)));

struct pool_stats_slot {
    struct pool_stats st;
} __attribute__((aligned(64)));

/* A server's health, the same for every worker. */
struct server_health {
    _Atomic uint32_t failures;     /* consecutive failures, any worker's */
    _Atomic bool ejected;          /* out of the ring */
    _Atomic uint64_t retry_at_ms;  /* monotonic ms when an ejected server is probed again */
    _Atomic int64_t ejected_at_us; /* unix time in us of the last ejection, 0 = never */
    /* the probes of the ejected server (proxy/probe.c): only the main thread writes
     * them, the stats and metrics readers load them (relaxed) */
    _Atomic uint64_t probes;         /* started */
    _Atomic uint64_t probe_failures; /* refused, reset, a wrong answer or none in time */
};

/* What a server carries across a reload (see the top of this file). */
struct server_state {
    _Atomic uint32_t refs;         /* servers holding it */
    struct server_health h;
    uint32_t nworkers;
    struct server_stats_slot *wst; /* one per worker */
};

/* What a pool carries across a reload. */
struct pool_state {
    uint64_t id;                   /* unique for the life of the process */
    _Atomic uint32_t refs;         /* pools holding it */
    _Atomic uint32_t nclients;     /* client connections open, all workers */
    _Atomic uint32_t npinned;      /* pinned server connections held by clients, all
                                      workers: bounded by max_pinned_connections (each
                                      worker keeps a few idle ones besides, see
                                      proxy/session.c) */
    _Atomic uint64_t server_ejects;
    struct proto_counts counts_base;   /* the protocol counters at the last `stats reset` */
    uint32_t nworkers;
    struct pool_stats_slot *wst;   /* one per worker */
};

struct server {
    struct pool *pool;             /* owner */
    uint32_t idx;                  /* position in config order */
    char *ident;                   /* ketama identity and stats key */
    const struct conf_server *cf;  /* its config line */
    struct sockaddr_storage addr;  /* resolved address */
    socklen_t addrlen;             /* 0 until resolved */
    struct server_state *state;    /* health and counters, shared with its successor */
    struct server_health *h;       /* &state->h */
};

/* One build of a pool's routing, published whole through pool->ring. */
struct ring {
    struct pub_node node;          /* for retiring it (first: the node is the ring) */
    struct route route;            /* key -> server index over the servers live in it */
};

struct pool {
    uint32_t idx;                  /* position in config order */
    const struct conf_pool *cf;    /* its config (owned by the caller's struct conf) */
    const struct proto *proto;     /* redis or memcache */
    struct proto_limits limits;    /* from max_bulk_length, max_multibulk_length, max_value_size */
    struct server *servers;
    uint32_t nservers;
    struct route_server *rs;       /* routing input (names, weights), read under rebuild */
    _Atomic(struct ring *) ring;   /* the current routing (see the top of this file) */
    pthread_mutex_t rebuild;       /* one ring build at a time */
    struct pub_domain *pub;        /* where replaced rings wait for the readers; NULL: one thread */
    struct pool_state *state;      /* clients, ejections and counters, shared with its
                                      successor */
    _Atomic(struct pool *) next;   /* the pool a reload put in its place, NULL while current */
    bool rebuild_ready;            /* the lock was made */
};

/* Build a pool from its config: servers resolved (hostnames looked up now), routing built,
 * with counters for nworkers workers. pub is where replaced rings are retired (NULL when
 * only one thread ever routes). prev, when not NULL, is the pool this one replaces (a
 * reload): the new pool takes over its state, and each server whose name and address
 * are the same as one of prev's takes over that server's (see the top of this file), so
 * its health, and a ring that leaves out the servers prev had ejected, carry over.
 * A new pool state gets the id state_id. KM_OK, or KM_ERROR with a message in err. */
int pool_init(struct pool *p, uint32_t idx, const struct conf_pool *cf, struct pub_domain *pub,
              uint32_t nworkers, const struct pool *prev, uint64_t state_id, char *err,
              size_t errlen);
/* The server of p that carries the state s, or NULL (s was not handed over to p). */
struct server *pool_server_of(const struct pool *p, const struct server_state *s);
/* Take a reference to s's state block, so that it outlives s's pool (a reload may free
 * the pool); give it back with pool_server_state_put, the last of which frees the block.
 * Any thread. */
struct server_state *pool_server_state_get(struct server *s);
void pool_server_state_put(struct server_state *st);
/* Worker w's counters of pool p and of its server s. */
static inline struct pool_stats *
pool_wstats(const struct pool *p, uint32_t w)
{
    return &p->state->wst[w].st;
}

static inline struct server_stats *
server_wstats(const struct server *s, uint32_t w)
{
    return &s->state->wst[w].st;
}
/* Release the pool; no worker may use it any more. Its state blocks go with the last
 * pool and servers that hold them. */
void pool_free(struct pool *p);
/* A reload put succ in old's place: failures counted on old's servers go to succ's
 * (pool_server_failed), and succ's ring is built again from the health as it is now,
 * so a server old ejected while succ was being built is left out. */
void pool_supersede(struct pool *old, struct pool *succ);

/* The server index for a key, or -1 when no server is live. Any thread: the ring is
 * loaded once and not kept; *rand is the caller's own random-distribution state (see
 * route_key_r). An ejected server stays out of it however late its retry time is: only
 * a probe brings it back (pool_server_rejoin). */
int pool_route(struct pool *p, uint64_t *rand, const uint8_t *key, size_t len);

/* The servers in the ring now (an instant's answer). */
uint32_t pool_nlive(struct pool *p);

/* A request to server s failed (connect refused, EOF, error, timeout). Counts a failure,
 * any worker's; with auto_eject_hosts, at server_failure_limit the server leaves the
 * ring (one thread decides and publishes); it is probed once server_retry_timeout has
 * passed. now_ms is monotonic. */
void pool_server_failed(struct pool *p, struct server *s, uint64_t now_ms);
/* A reply came from s: its failure count starts over. Cheap when it is already 0 (a
 * load, no store), as it is on every reply of a healthy server. */
static inline void
pool_server_ok(struct server *s)
{
    if (atomic_load_explicit(&s->h->failures, memory_order_relaxed) != 0)
        atomic_store_explicit(&s->h->failures, 0, memory_order_relaxed);
}
/* The probe of ejected server s answered as a healthy server does: its failures start
 * over and a ring with it is published (under p->rebuild). Nothing when s is no longer
 * ejected. Main thread (proxy/probe.c). */
void pool_server_rejoin(struct pool *p, struct server *s);
/* The probe of ejected server s failed: it stays out, and is probed again once
 * server_retry_timeout has passed from now_ms (monotonic). Main thread. */
void pool_server_retry_later(struct pool *p, struct server *s, uint64_t now_ms);

#endif
