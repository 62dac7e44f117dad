/* src/route/route.c: hash_tag + hash + distribution (ketama, modula, random) -> server index. */
#include "route/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/common.h"

/*
 * Placement must be bit-identical with twemproxy 0.5.0, so that users switch
 * without moving data. What it does, as established against the real
 * nutcracker (tests/data/placement_golden.txt):
 *
 *   order   twemproxy sorts a pool's servers by name when it loads the config
 *           (shorter name first, then bytewise; the name is the ketama
 *           identity) and builds in that order. Modula slots and ketama ties
 *           follow it; indices handed back are still config order.
 *   ketama  Each live server gets 4 * floor(w/W * 160/4 * L + 1e-10) points,
 *           computed in single precision (w its weight, W the total weight of
 *           the live servers, L the number of live servers). Point group i
 *           (i = 0, 1, ...) is the MD5 digest of "<name>-<i>", read as four
 *           little-endian 32-bit points. A key goes to the owner of the first
 *           point >= its hash, wrapping to the first point; equal points keep
 *           build order (name order, then point order).
 *   modula  Each live server fills `weight` consecutive slots, in name
 *           order; a key goes to slot hash % slots.
 *   random  Uniform over the live servers, weights ignored.
 */

#define KETAMA_POINTS_PER_SERVER 160
#define KETAMA_POINTS_PER_DIGEST 4
#define MODULA_MAX_SLOTS         (1u << 24)   /* refuse absurd weight sums */

static const char *const dist_names[DIST_COUNT] = {
    [DIST_KETAMA] = "ketama",
    [DIST_MODULA] = "modula",
    [DIST_RANDOM] = "random",
};

int
dist_from_name(const char *name, size_t len)
{
    return km_name_index(dist_names, DIST_COUNT, name, len);
}

const char *
dist_name(enum dist_type type)
{
    if ((unsigned)type >= DIST_COUNT) {
        return NULL;
    }
    return dist_names[type];
}

/* splitmix64 finalizer: spreads a weak seed over all 64 bits. */
static uint64_t
route_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint64_t
route_seed_value(uint64_t seed)
{
    uint64_t x = route_mix64(seed);
    return x != 0 ? x : 0x9e3779b97f4a7c15ull;
}

void
route_seed(struct route *r, uint64_t seed)
{
    r->rand_state = route_seed_value(seed);
}

int
route_init(struct route *r, enum hash_type hash, enum dist_type dist, const char *hash_tag)
{
    memset(r, 0, sizeof(*r));
    if ((unsigned)hash >= HASH_COUNT || (unsigned)dist >= DIST_COUNT) {
        return KM_ERROR;
    }
    if (hash_tag != NULL) {
        if (strlen(hash_tag) != 2) {
            return KM_ERROR;
        }
        r->tagged = true;
        r->tag[0] = (uint8_t)hash_tag[0];
        r->tag[1] = (uint8_t)hash_tag[1];
    }
    r->hash = hash;
    r->dist = dist;
    route_seed(r, ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)r);
    return KM_OK;
}

void
route_free(struct route *r)
{
    free(r->point);
    free(r->slot_server);
    r->point = NULL;
    r->slot_server = NULL;
    r->nslot = 0;
    r->nlive = 0;
    r->nserver = 0;
}

uint32_t
route_live(const struct route *r)
{
    return r->nlive;
}

/* twemproxy's string_compare on server names: length first, then bytes. */
static int
route_name_cmp(const struct route_server *a, const struct route_server *b)
{
    if (a->name_len != b->name_len) {
        return a->name_len < b->name_len ? -1 : 1;
    }
    return a->name_len == 0 ? 0 : memcmp(a->name, b->name, a->name_len);
}

/*
 * The order twemproxy builds in: servers sorted by name. An insertion sort
 * (stable, no allocation beyond perm); pools have few servers and this runs
 * only on (re)build.
 */
static void
route_name_order(const struct route_server *servers, uint32_t n, uint32_t *perm)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t j = i;

        while (j > 0 && route_name_cmp(&servers[perm[j - 1]], &servers[i]) > 0) {
            perm[j] = perm[j - 1];
            j--;
        }
        perm[j] = i;
    }
}

/*
 * Points for one live server: twemproxy's float expression, kept in single
 * precision step by step (x86-64 evaluates float in float), so that weight
 * shares land on the same side of each integer as they do there.
 */
static uint32_t
ketama_points(uint32_t weight, uint32_t total_weight, uint32_t nlive)
{
    float share = (float)weight / (float)total_weight;
    float scaled = share * KETAMA_POINTS_PER_SERVER / KETAMA_POINTS_PER_DIGEST * (float)nlive;
    float groups = (float)((double)scaled + 0.0000000001);

    /* groups >= 0, so truncation is floor */
    return (uint32_t)groups * KETAMA_POINTS_PER_DIGEST;
}

static int
ketama_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

/*
 * Build the continuum over the live servers into *point / *owner (npoint
 * entries). On KM_ERROR nothing is allocated.
 */
static int
ketama_build(const struct route_server *servers, const uint32_t *perm, uint32_t n,
             uint32_t nlive, uint32_t total_weight, uint32_t **point_out,
             uint32_t **owner_out, uint32_t *npoint_out)
{
    uint64_t npoint = 0;
    size_t max_name = 0;
    uint64_t *order = NULL;     /* (point << 32) | build sequence number */
    uint32_t *seq_owner = NULL; /* server index by build sequence number */
    uint32_t *point = NULL, *owner = NULL;
    char *ident = NULL;
    size_t ident_size;
    uint32_t seq = 0;

    for (uint32_t i = 0; i < n; i++) {
        if (servers[i].live) {
            npoint += ketama_points(servers[i].weight, total_weight, nlive);
            max_name = KM_MAX(max_name, servers[i].name_len);
        }
    }
    if (npoint == 0 || npoint > UINT32_MAX / 2 || max_name > INT32_MAX) {
        return KM_ERROR;
    }

    ident_size = max_name + sizeof("-4294967295");
    order = malloc(sizeof(*order) * npoint);
    seq_owner = malloc(sizeof(*seq_owner) * npoint);
    point = malloc(sizeof(*point) * npoint);
    owner = malloc(sizeof(*owner) * npoint);
    ident = malloc(ident_size);
    if (order == NULL || seq_owner == NULL || point == NULL || owner == NULL || ident == NULL) {
        goto fail;
    }

    for (uint32_t p = 0; p < n; p++) {
        uint32_t i = perm[p];
        const struct route_server *s = &servers[i];
        uint32_t groups;

        if (!s->live) {
            continue;
        }
        groups = ketama_points(s->weight, total_weight, nlive) / KETAMA_POINTS_PER_DIGEST;
        for (uint32_t g = 0; g < groups; g++) {
            uint8_t digest[16];
            int len = snprintf(ident, ident_size, "%.*s-%u", (int)s->name_len, s->name, g);

            ASSERT(len > 0 && (size_t)len < ident_size);
            hash_md5((const uint8_t *)ident, (size_t)len, digest);
            for (int k = 0; k < KETAMA_POINTS_PER_DIGEST; k++) {
                const uint8_t *d = digest + 4 * k;
                uint32_t value = (uint32_t)d[0] | ((uint32_t)d[1] << 8) |
                                 ((uint32_t)d[2] << 16) | ((uint32_t)d[3] << 24);

                order[seq] = ((uint64_t)value << 32) | seq;
                seq_owner[seq] = i;
                seq++;
            }
        }
    }
    ASSERT(seq == npoint);

    qsort(order, npoint, sizeof(*order), ketama_cmp);
    for (uint32_t j = 0; j < npoint; j++) {
        point[j] = (uint32_t)(order[j] >> 32);
        owner[j] = seq_owner[(uint32_t)order[j]];
    }

    free(order);
    free(seq_owner);
    free(ident);
    *point_out = point;
    *owner_out = owner;
    *npoint_out = (uint32_t)npoint;
    return KM_OK;

fail:
    free(order);
    free(seq_owner);
    free(point);
    free(owner);
    free(ident);
    return KM_ERROR;
}

/* Modula: `weight` slots per live server, in name order. */
static int
modula_build(const struct route_server *servers, const uint32_t *perm, uint32_t n,
             uint32_t total_weight, uint32_t **owner_out, uint32_t *nslot_out)
{
    uint32_t *owner;
    uint32_t slot = 0;

    if (total_weight == 0 || total_weight > MODULA_MAX_SLOTS) {
        return KM_ERROR;
    }
    owner = malloc(sizeof(*owner) * total_weight);
    if (owner == NULL) {
        return KM_ERROR;
    }
    for (uint32_t p = 0; p < n; p++) {
        uint32_t i = perm[p];

        if (!servers[i].live) {
            continue;
        }
        for (uint32_t w = 0; w < servers[i].weight; w++) {
            owner[slot++] = i;
        }
    }
    ASSERT(slot == total_weight);
    *owner_out = owner;
    *nslot_out = total_weight;
    return KM_OK;
}

/* Random: one slot per live server. */
static int
random_build(const struct route_server *servers, uint32_t n, uint32_t nlive,
             uint32_t **owner_out, uint32_t *nslot_out)
{
    uint32_t *owner = malloc(sizeof(*owner) * nlive);
    uint32_t slot = 0;

    if (owner == NULL) {
        return KM_ERROR;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (servers[i].live) {
            owner[slot++] = i;
        }
    }
    *owner_out = owner;
    *nslot_out = nlive;
    return KM_OK;
}

int
route_build(struct route *r, const struct route_server *servers, uint32_t n)
{
    uint32_t nlive = 0;
    uint64_t total_weight = 0;
    uint32_t *point = NULL, *owner = NULL, *perm = NULL;
    uint32_t nslot = 0;
    int status = KM_OK;

    if (n > 0 && servers == NULL) {
        return KM_ERROR;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (servers[i].live) {
            nlive++;
            total_weight += servers[i].weight;
        }
    }
    if (total_weight > UINT32_MAX) {
        return KM_ERROR;
    }

    if (nlive > 0 && total_weight > 0) {
        perm = malloc(sizeof(*perm) * n);
        if (perm == NULL) {
            return KM_ERROR;
        }
        route_name_order(servers, n, perm);
        switch (r->dist) {
        case DIST_KETAMA:
            status = ketama_build(servers, perm, n, nlive, (uint32_t)total_weight, &point,
                                  &owner, &nslot);
            break;
        case DIST_MODULA:
            status = modula_build(servers, perm, n, (uint32_t)total_weight, &owner, &nslot);
            break;
        case DIST_RANDOM:
            status = random_build(servers, n, nlive, &owner, &nslot);
            break;
        default:
            status = KM_ERROR;
            break;
        }
        free(perm);
        if (status != KM_OK) {
            return KM_ERROR;
        }
    }

    free(r->point);
    free(r->slot_server);
    r->point = point;
    r->slot_server = owner;
    r->nslot = nslot;
    r->nlive = nlive;
    r->nserver = n;
    return KM_OK;
}

uint32_t
route_hash(const struct route *r, const uint8_t *key, size_t len)
{
    if (r->tagged && len > 0) {
        const uint8_t *open = memchr(key, r->tag[0], len);

        if (open != NULL) {
            const uint8_t *body = open + 1;
            const uint8_t *close = memchr(body, r->tag[1], len - (size_t)(body - key));

            if (close != NULL && close > body) {
                key = body;
                len = (size_t)(close - body);
            }
        }
    }
    if (len == 0) {
        return 0;
    }
    return hash_key(r->hash, key, len);
}

/* xorshift64*: cheap, state with the caller, good enough to spread load. */
static uint64_t
route_next_random(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dull;
}

int
route_key(struct route *r, const uint8_t *key, size_t len)
{
    return route_key_r(r, &r->rand_state, key, len);
}

int
route_key_r(const struct route *r, uint64_t *rand_state, const uint8_t *key, size_t len)
{
    uint32_t hash, idx;

    if (r->nslot == 0) {
        return -1;
    }
    if (r->nserver == 1) {
        return (int)r->slot_server[0];   /* twemproxy skips hashing for one server */
    }

    switch (r->dist) {
    case DIST_KETAMA: {
        /* the first point >= hash, past the last wrapping to the first: a search whose
         * steps are conditional moves, since a branch per step on a random hash is
         * mispredicted half the time */
        const uint32_t *base = r->point;
        uint32_t n = r->nslot;

        hash = route_hash(r, key, len);
        while (n > 1) {
            uint32_t half = n / 2;
            base = base[half] < hash ? base + half : base;
            n -= half;
        }
        idx = (uint32_t)(base - r->point) + (*base < hash);
        return (int)r->slot_server[idx == r->nslot ? 0 : idx];
    }

    case DIST_MODULA:
        hash = route_hash(r, key, len);
        return (int)r->slot_server[hash % r->nslot];

    case DIST_RANDOM:
        return (int)r->slot_server[route_next_random(rand_state) % r->nslot];

    default:
        break;
    }
    return -1;
}
