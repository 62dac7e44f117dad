/* src/route/route.h: key -> server index for one pool (hash_tag, hash, ketama/modula/random). */
#ifndef KM_ROUTE_ROUTE_H
#define KM_ROUTE_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "route/hash.h"

enum dist_type { DIST_KETAMA, DIST_MODULA, DIST_RANDOM, DIST_COUNT };

/* Input to route_build: one per configured server, in config order. */
struct route_server {
    const char *name;   /* ketama identity: the configured name, else "host:port", or just
                           "host" when the port is 11211 (twemproxy's rule, any protocol) */
    size_t name_len;    /* bytes in name */
    uint32_t weight;    /* configured weight (twemproxy requires >= 1) */
    bool live;          /* false while ejected */
};

/*
 * One pool's routing. Immutable after route_build except rand_state, which
 * route_key advances for DIST_RANDOM. Owns its arrays; copy it only by
 * building another.
 */
struct route {
    enum hash_type hash;      /* key hash */
    enum dist_type dist;      /* distribution */
    bool tagged;              /* a hash_tag is configured */
    uint8_t tag[2];           /* hash_tag open and close bytes */
    uint32_t nserver;         /* servers given to the last route_build */
    uint32_t nlive;           /* of them live */
    uint32_t nslot;           /* entries in slot_server (and in point, for ketama) */
    uint32_t *point;          /* ketama: continuum point hashes, ascending; else NULL */
    uint32_t *slot_server;    /* server index of each point (ketama), weight repeat
                                 (modula) or live server (random) */
    uint64_t rand_state;      /* random: xorshift64* state, never 0 */
};

/* Names as in twemproxy's `distribution:`: "ketama", "modula", "random". -1 if unknown. */
int dist_from_name(const char *name, size_t len);

/* The name of type (static string), or NULL if out of range. */
const char *dist_name(enum dist_type type);

/*
 * Prepare r for route_build. hash_tag is NULL or a string of exactly two
 * bytes (open, close). Seeds the random state from the pid, the time and r's
 * address. KM_ERROR on a bad hash, dist or tag (r is then left empty but safe
 * to route_free). Owns nothing yet.
 */
int route_init(struct route *r, enum hash_type hash, enum dist_type dist, const char *hash_tag);

/* Reseed the random distribution (tests want repeatable runs). */
void route_seed(struct route *r, uint64_t seed);

/*
 * (Re)build r over servers[0..n): ketama continuum or modula/random table of
 * the live servers, exactly as twemproxy 0.5.0 builds them. Like twemproxy it
 * lays servers out in name order (shorter name first, then bytewise), which
 * decides modula placement; route_key still answers in config order. Names
 * should be unique, as twemproxy's config check demands. servers is only
 * read during the call (names are hashed, not kept). KM_OK, or KM_ERROR when
 * memory runs out or the sizes overflow, in which case r keeps its previous
 * build untouched.
 */
int route_build(struct route *r, const struct route_server *servers, uint32_t n);

/*
 * The server index (config order) for key[0..len), or -1 when no server is
 * live. Applies the hash_tag. O(log points) for ketama, O(1) otherwise; no
 * allocation. Advances r's own rand_state for DIST_RANDOM (so not for
 * concurrent use of one route from several threads: see route_key_r).
 */
int route_key(struct route *r, const uint8_t *key, size_t len);

/*
 * As route_key, with the random distribution's state kept by the caller
 * (*rand_state, never 0: seed it with route_seed_value): r is only read, so
 * several threads may route over one build at once, each with its own state.
 */
int route_key_r(const struct route *r, uint64_t *rand_state, const uint8_t *key, size_t len);

/* A random distribution state from seed (never 0), as route_seed makes it. */
uint64_t route_seed_value(uint64_t seed);

/*
 * The value twemproxy hands its distribution for key[0..len): the hash of the
 * hash_tag contents when the key holds the open byte, then later the close
 * byte, with at least one byte between them; else of the whole key. An
 * empty key hashes to 0.
 */
uint32_t route_hash(const struct route *r, const uint8_t *key, size_t len);

/* Live servers in the last build. */
uint32_t route_live(const struct route *r);

/* Release r's arrays; r may be route_init'ed again afterwards. */
void route_free(struct route *r);

#endif
