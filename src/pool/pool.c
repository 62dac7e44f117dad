/* src/pool/pool.c: pools and servers: address resolution, routing, failure and ejection. */
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
rebuild(struct pool *p)
{
    p->nlive = 0;
    for (uint32_t i = 0; i < p->nservers; i++) {
        p->rs[i].live = !p->servers[i].ejected;
        p->nlive += p->rs[i].live;
    }
    if (route_build(&p->route, p->rs, p->nservers) != KM_OK)
        log_error("pool %s: out of memory rebuilding the ring; keeping the old one", p->cf->name);
}

int
pool_init(struct pool *p, uint32_t idx, const struct conf_pool *cf, char *err, size_t errlen)
{
    memset(p, 0, sizeof(*p));
    p->idx = idx;
    p->cf = cf;
    p->lfd = -1;
    p->proto = cf->redis ? &proto_redis : &proto_memcache;
    if (p->proto->req_feed == NULL) {
        snprintf(err, errlen, "pool '%s': memcached pools are not available in this build yet",
                 cf->name);
        return KM_ERROR;
    }
    p->nservers = cf->nservers;
    p->limits.max_bulk = (uint64_t)cf->max_bulk_length;
    p->limits.max_args = (uint64_t)cf->max_multibulk_length;
    p->limits.max_value = (uint64_t)cf->max_value_size;
    p->servers = calloc(cf->nservers, sizeof(*p->servers));
    p->rs = calloc(cf->nservers, sizeof(*p->rs));
    p->srvslot = malloc(cf->nservers * sizeof(*p->srvslot));
    if (p->servers == NULL || p->rs == NULL || p->srvslot == NULL)
        goto nomem;
    if (route_init(&p->route, (enum hash_type)cf->hash, (enum dist_type)cf->distribution,
                   cf->hash_tag[0] != '\0' ? cf->hash_tag : NULL) != KM_OK)
        goto nomem;

    for (uint32_t i = 0; i < cf->nservers; i++) {
        struct server *s = &p->servers[i];
        size_t n;
        const char *id = conf_server_ident(&cf->servers[i], &n);

        s->pool = p;
        s->idx = i;
        s->cf = &cf->servers[i];
        s->ident = strndup(id, n);
        s->conns = calloc(cf->server_connections, sizeof(*s->conns));
        if (s->ident == NULL || s->conns == NULL)
            goto nomem;
        p->rs[i].name = s->ident;
        p->rs[i].name_len = n;
        p->rs[i].weight = cf->servers[i].weight;
        p->srvslot[i] = -1;
        if (resolve(s, err, errlen) != KM_OK) {
            char tmp[256];
            snprintf(tmp, sizeof(tmp), "pool '%s': %s", cf->name, err);
            snprintf(err, errlen, "%s", tmp);
            pool_free(p);
            return KM_ERROR;
        }
    }
    rebuild(p);
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
            free(p->servers[i].conns);
        }
    }
    free(p->servers);
    free(p->rs);
    free(p->srvslot);
    route_free(&p->route);
    p->servers = NULL;
    p->rs = NULL;
    p->srvslot = NULL;
}

int
pool_route(struct pool *p, const uint8_t *key, size_t len)
{
    if (p->cf->auto_eject_hosts && p->nlive < p->nservers)
        pool_retry_ejected(p, km_now_ms());
    if (p->nlive == 0)
        return -1;
    return route_key(&p->route, key, len);
}

void
pool_server_failed(struct pool *p, struct server *s, uint64_t now_ms)
{
    s->failures++;
    if (!p->cf->auto_eject_hosts || s->ejected)
        return;
    if (s->failures >= p->cf->server_failure_limit) {
        s->ejected = true;
        s->retry_at_ms = now_ms + (uint64_t)p->cf->server_retry_timeout;
        s->st.server_ejected_at = km_now_us_wall();
        p->st.server_ejects++;
        log_warn("pool %s: ejecting server %s after %u failures, retry in %lld ms",
                 p->cf->name, s->ident, s->failures, (long long)p->cf->server_retry_timeout);
        rebuild(p);
    }
}

void
pool_server_ok(struct pool *p, struct server *s)
{
    (void)p;
    s->failures = 0;
}

bool
pool_retry_ejected(struct pool *p, uint64_t now_ms)
{
    bool changed = false;

    for (uint32_t i = 0; i < p->nservers; i++) {
        struct server *s = &p->servers[i];
        if (s->ejected && now_ms >= s->retry_at_ms) {
            s->ejected = false;
            s->failures = 0;
            changed = true;
            log_notice("pool %s: server %s back in the ring", p->cf->name, s->ident);
        }
    }
    if (changed)
        rebuild(p);
    return changed;
}
