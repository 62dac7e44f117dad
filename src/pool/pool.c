/* src/pool/pool.c: pools and servers: address resolution, the published ring, failures and
 * ejection decided once for every worker. */
#include "pool/pool.h"

#include "core/clock.h"
#include "core/common.h"
#include "core/log.h"
#include "proto/proto.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

static int
resolve(struct server *s, char *err, size_t errlen)
{
    const struct conf_server *cf = s->cf;

    if (cf->path != NULL) {
        struct sockaddr_un *un = (struct sockaddr_un *)&s->addr;
        memset(un, 0, sizeof(*un));
        un->sun_family = AF_UNIX;
        if (strlen(cf->path) >= sizeof(un->sun_path)) {
            snprintf(err, errlen, "server '%s': unix path too long", cf->text);
            return KM_ERROR;
        }
        strcpy(un->sun_path, cf->path);
        s->addrlen = sizeof(*un);
        return KM_OK;
    }

    struct addrinfo hints, *res = NULL;
    char port[8];
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%d", cf->port);
    int rc = getaddrinfo(cf->host, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        snprintf(err, errlen, "server '%s': cannot resolve '%s': %s", cf->text, cf->host,
                 gai_strerror(rc));
        return KM_ERROR;
    }
    memcpy(&s->addr, res->ai_addr, res->ai_addrlen);
    s->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return KM_OK;
}

static void
ring_free(struct pub_node *n)
{
    struct ring *r = (struct ring *)n;   /* the node is the ring's first member */

    route_free(&r->route);
    free(r);
}

/* A ring over the servers not ejected now. Call with p->rebuild held (or before any
 * other thread runs). NULL when out of memory. */
static struct ring *
ring_make(struct pool *p)
{
    const struct conf_pool *cf = p->cf;
    struct ring *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    if (route_init(&r->route, (enum hash_type)cf->hash, (enum dist_type)cf->distribution,
                   cf->hash_tag[0] != '\0' ? cf->hash_tag : NULL) != KM_OK)
        goto fail;
    for (uint32_t i = 0; i < p->nservers; i++)
        p->rs[i].live = !atomic_load(&p->servers[i].h->ejected);
    if (route_build(&r->route, p->rs, p->nservers) != KM_OK)
        goto fail;
    return r;
fail:
    route_free(&r->route);
    free(r);
    return NULL;
}

/* Publish a ring that reflects the servers' health now; the old one waits for the
 * readers. With p->rebuild held, so that two threads changing the health at once
 * publish in order and the last ring built sees both changes. */
static void
ring_publish(struct pool *p)
{
    struct ring *r = ring_make(p);

    if (r == NULL) {
        log_error("pool %s: out of memory rebuilding the ring; keeping the old one", p->cf->name);
        return;
    }
    struct ring *old = atomic_exchange_explicit(&p->ring, r, memory_order_acq_rel);
    if (old != NULL)
        pub_retire(p->pub, &old->node, ring_free);
}

void
pool_server_state_put(struct server_state *st)
{
    if (st != NULL && atomic_fetch_sub(&st->refs, 1) == 1) {
        free(st->wst);
        free(st);
    }
}

static void
pool_state_put(struct pool_state *st)
{
    if (st != NULL && atomic_fetch_sub(&st->refs, 1) == 1) {
        free(st->wst);
        free(st);
    }
}

/* A fresh state block with counters for nworkers workers; NULL when out of memory. */
static void *
state_new(size_t size, size_t slot, uint32_t nworkers, void **wst)
{
    void *st = calloc(1, size);
    void *slots = aligned_alloc(64, (size_t)(nworkers > 0 ? nworkers : 1) * slot);

    if (st == NULL || slots == NULL) {
        free(st);
        free(slots);
        return NULL;
    }
    memset(slots, 0, (size_t)(nworkers > 0 ? nworkers : 1) * slot);
    *wst = slots;
    return st;
}

static struct pool_state *
pool_state_new(uint32_t nworkers)
{
    void *wst;
    struct pool_state *st = state_new(sizeof(*st), sizeof(struct pool_stats_slot), nworkers, &wst);

    if (st == NULL)
        return NULL;
    st->wst = wst;
    st->nworkers = nworkers;
    atomic_init(&st->refs, 1);
    return st;
}

static struct server_state *
server_state_new(uint32_t nworkers)
{
    void *wst;
    struct server_state *st = state_new(sizeof(*st), sizeof(struct server_stats_slot), nworkers,
                                        &wst);

    if (st == NULL)
        return NULL;
    st->wst = wst;
    st->nworkers = nworkers;
    atomic_init(&st->refs, 1);
    return st;
}

/* The server of prev that s (of the pool being built) succeeds: the same name and the
 * same address. NULL when there is none. */
static const struct server *
predecessor(const struct pool *prev, const struct server *s)
{
    if (prev == NULL)
        return NULL;
    for (uint32_t i = 0; i < prev->nservers; i++) {
        const struct server *o = &prev->servers[i];
        if (strcmp(o->ident, s->ident) == 0 && o->addrlen == s->addrlen &&
            memcmp(&o->addr, &s->addr, s->addrlen) == 0)
            return o;
    }
    return NULL;
}

struct server *
pool_server_of(const struct pool *p, const struct server_state *st)
{
    for (uint32_t i = 0; i < p->nservers; i++) {
        if (p->servers[i].state == st)
            return &p->servers[i];
    }
    return NULL;
}

struct server_state *
pool_server_state_get(struct server *s)
{
    atomic_fetch_add(&s->state->refs, 1);
    return s->state;
}

int
pool_init(struct pool *p, uint32_t idx, const struct conf_pool *cf, struct pub_domain *pub,
          uint32_t nworkers, const struct pool *prev, uint64_t state_id, char *err,
          size_t errlen)
{
    memset(p, 0, sizeof(*p));
    p->idx = idx;
    p->cf = cf;
    p->pub = pub;
    p->proto = cf->redis ? &proto_redis : &proto_memcache;
    atomic_init(&p->ring, NULL);
    atomic_init(&p->next, NULL);
    if (pthread_mutex_init(&p->rebuild, NULL) != 0) {
        snprintf(err, errlen, "pool '%s': cannot make a lock", cf->name);
        return KM_ERROR;
    }
    p->rebuild_ready = true;
    if (prev != NULL) {
        p->state = prev->state;
        atomic_fetch_add(&p->state->refs, 1);
    } else if ((p->state = pool_state_new(nworkers)) == NULL) {
        goto nomem;
    } else {
        p->state->id = state_id;
    }
    p->nservers = cf->nservers;
    p->limits.max_bulk = (uint64_t)cf->max_bulk_length;
    p->limits.max_args = (uint64_t)cf->max_multibulk_length;
    p->limits.max_value = (uint64_t)cf->max_value_size;
    p->servers = calloc(cf->nservers, sizeof(*p->servers));
    p->rs = calloc(cf->nservers, sizeof(*p->rs));
    if (p->servers == NULL || p->rs == NULL)
        goto nomem;

    for (uint32_t i = 0; i < cf->nservers; i++) {
        struct server *s = &p->servers[i];
        size_t n;
        const char *id = conf_server_ident(&cf->servers[i], &n);

        s->pool = p;
        s->idx = i;
        s->cf = &cf->servers[i];
        s->ident = strndup(id, n);
        if (s->ident == NULL)
            goto nomem;
        p->rs[i].name = s->ident;
        p->rs[i].name_len = n;
        p->rs[i].weight = cf->servers[i].weight;
        if (resolve(s, err, errlen) != KM_OK) {
            char tmp[256];
            snprintf(tmp, sizeof(tmp), "pool '%s': %s", cf->name, err);
            snprintf(err, errlen, "%s", tmp);
            pool_free(p);
            return KM_ERROR;
        }
        const struct server *o = predecessor(prev, s);
        if (o != NULL) {
            s->state = o->state;
            atomic_fetch_add(&s->state->refs, 1);
        } else if ((s->state = server_state_new(nworkers)) == NULL) {
            goto nomem;
        }
        s->h = &s->state->h;
    }
    struct ring *r = ring_make(p);
    if (r == NULL)
        goto nomem;
    atomic_store(&p->ring, r);
    return KM_OK;

nomem:
    snprintf(err, errlen, "pool '%s': out of memory", cf->name);
    pool_free(p);
    return KM_ERROR;
}

void
pool_free(struct pool *p)
{
    if (p->servers != NULL) {
        for (uint32_t i = 0; i < p->nservers; i++) {
            free(p->servers[i].ident);
            pool_server_state_put(p->servers[i].state);
        }
    }
    free(p->servers);
    free(p->rs);
    struct ring *r = atomic_exchange(&p->ring, NULL);
    if (r != NULL)
        ring_free(&r->node);
    if (p->rebuild_ready)
        pthread_mutex_destroy(&p->rebuild);
    p->rebuild_ready = false;
    pool_state_put(p->state);
    p->state = NULL;
    p->servers = NULL;
    p->rs = NULL;
}

void
pool_supersede(struct pool *old, struct pool *succ)
{
    atomic_store(&old->next, succ);
    /* a failure counted on old before the store above may have ejected a server after
     * succ's ring was built: build it again from the health as it is now */
    pthread_mutex_lock(&succ->rebuild);
    ring_publish(succ);
    pthread_mutex_unlock(&succ->rebuild);
}

int
pool_route(struct pool *p, uint64_t *rand, const uint8_t *key, size_t len)
{
    struct ring *r = atomic_load_explicit(&p->ring, memory_order_acquire);

    return route_key_r(&r->route, rand, key, len);
}

uint32_t
pool_nlive(struct pool *p)
{
    return route_live(&atomic_load_explicit(&p->ring, memory_order_acquire)->route);
}

void
pool_server_failed(struct pool *p, struct server *s, uint64_t now_ms)
{
    /* a request of a pool a reload replaced: its successor decides for the server */
    struct pool *succ = atomic_load(&p->next);
    if (succ != NULL) {
        struct server *ns = pool_server_of(succ, s->state);
        if (ns != NULL) {
            pool_server_failed(succ, ns, now_ms);
            return;
        }
    }

    struct server_health *h = s->h;
    uint32_t failures = atomic_fetch_add(&h->failures, 1) + 1;

    if (!p->cf->auto_eject_hosts || failures < p->cf->server_failure_limit ||
        atomic_load(&h->ejected))
        return;
    pthread_mutex_lock(&p->rebuild);
    /* the first thread past the limit ejects; the others find it done */
    if (!atomic_load(&h->ejected)) {
        atomic_store(&h->retry_at_ms, now_ms + (uint64_t)p->cf->server_retry_timeout);
        atomic_store(&h->ejected_at_us, km_now_us_wall());
        atomic_store(&h->ejected, true);
        atomic_fetch_add(&p->state->server_ejects, 1);
        log_warn("pool %s: ejecting server %s after %u failures, retry in %lld ms",
                 p->cf->name, s->ident, failures, (long long)p->cf->server_retry_timeout);
        ring_publish(p);
    }
    pthread_mutex_unlock(&p->rebuild);
}

void
pool_server_rejoin(struct pool *p, struct server *s)
{
    pthread_mutex_lock(&p->rebuild);
    if (atomic_load(&s->h->ejected)) {
        atomic_store(&s->h->failures, 0);
        atomic_store(&s->h->ejected, false);
        log_notice("pool %s: server %s back in the ring", p->cf->name, s->ident);
        ring_publish(p);
    }
    pthread_mutex_unlock(&p->rebuild);
}

void
pool_server_retry_later(struct pool *p, struct server *s, uint64_t now_ms)
{
    pthread_mutex_lock(&p->rebuild);
    atomic_store(&s->h->retry_at_ms, now_ms + (uint64_t)p->cf->server_retry_timeout);
    pthread_mutex_unlock(&p->rebuild);
}
