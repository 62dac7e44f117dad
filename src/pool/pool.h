/* src/pool/pool.h: a server pool built from its config: servers, routing, ejection state. */
#ifndef KM_POOL_H
#define KM_POOL_H

#include "config/conf.h"
#include "proto/proto.h"
#include "route/route.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct proto;
struct upstream;
struct pool;
struct worker;

/* Counters of one server, named as twemproxy's stats. */
struct server_stats {
    uint64_t server_eof, server_err, server_timedout;
    uint64_t requests, request_bytes, responses, response_bytes;
    int64_t server_ejected_at;     /* unix time in us of the last ejection, 0 = never */
    uint64_t in_queue, in_queue_bytes;     /* queued for the server, not yet written */
    uint64_t out_queue, out_queue_bytes;   /* written, awaiting the reply */
};

struct server {
    struct pool *pool;             /* owner */
    uint32_t idx;                  /* position in config order */
    char *ident;                   /* ketama identity and stats key */
    const struct conf_server *cf;  /* its config line */
    struct sockaddr_storage addr;  /* resolved address */
    socklen_t addrlen;             /* 0 until resolved */
    struct upstream **conns;       /* up to server_connections live connections */
    uint32_t nconns;               /* slots in use */
    uint32_t next;                 /* round-robin cursor over conns */
    uint32_t failures;             /* consecutive failures */
    bool ejected;                  /* out of the ring */
    uint64_t retry_at_ms;          /* monotonic ms when an ejected server is tried again */
    struct server_stats st;
};

struct pool_stats {
    uint64_t client_eof, client_err, client_connections, server_ejects, forward_error, fragments;
    struct proto_counts counts;    /* bumped by the protocol (memcached stats, INFO) */
};

struct pool {
    uint32_t idx;                  /* position in config order */
    const struct conf_pool *cf;    /* its config (owned by the caller's struct conf) */
    const struct proto *proto;     /* redis or memcache */
    struct route route;            /* key -> server index over live servers */
    struct route_server *rs;       /* routing input, one per server */
    struct server *servers;
    uint32_t nservers;
    uint32_t nlive;                /* servers not ejected */
    int32_t *srvslot;              /* scratch for splitting: server -> fragment, -1 */
    uint32_t nclients;             /* client connections open */
    int lfd;                       /* listening socket, -1 when closed */
    void *lev;                     /* the listener's event */
    struct worker *w;              /* the worker serving this pool */
    struct pool_stats st;
    struct proto_limits limits;    /* from max_bulk_length, max_multibulk_length, max_value_size */
};

/* Build a pool from its config: servers resolved (hostnames looked up now), routing built.
 * KM_OK, or KM_ERROR with a message in err. */
int pool_init(struct pool *p, uint32_t idx, const struct conf_pool *cf, char *err, size_t errlen);
void pool_free(struct pool *p);

/* The server index for a key, or -1 when no server is live. */
int pool_route(struct pool *p, const uint8_t *key, size_t len);

/* A request to server s failed (connect refused, EOF, error, timeout). Counts a failure;
 * with auto_eject_hosts, at server_failure_limit the server leaves the ring until
 * server_retry_timeout passes. now_ms is monotonic. */
void pool_server_failed(struct pool *p, struct server *s, uint64_t now_ms);
/* A reply came from s: its failure count starts over. */
void pool_server_ok(struct pool *p, struct server *s);
/* Bring back ejected servers whose retry time has come; true when the ring changed. */
bool pool_retry_ejected(struct pool *p, uint64_t now_ms);

#endif
