/* src/proxy/proxy.c: the process: the shared pools, the workers, their threads and listeners.
 *
 * Everything is built on the main thread before any worker thread starts (pools,
 * workers, their loops, listeners, preconnected server connections), so the start of
 * each thread orders all of it before the worker's first event. From then on a worker
 * touches only its own objects and what pool/pool.h says is shared; the main thread
 * keeps the signals, the stats port, shared listeners and the freeing of retired
 * objects (proxy_tick).
 */
#include "proxy/proxy.h"

#include "core/common.h"
#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int
proxy_init(struct proxy *px, const struct conf *cf, uint32_t nworkers, uint32_t mbuf_size,
           enum pace_policy pace, struct event_base *base, char *err, size_t errlen)
{
    memset(px, 0, sizeof(*px));
    px->base = base;
    px->started_s = (int64_t)time(NULL);
    atomic_init(&px->client_ids, 0);
    if (pub_init(&px->pub, nworkers) != 0) {
        snprintf(err, errlen, "out of memory");
        return KM_ERROR;
    }
    px->pub_ready = true;
    px->pools = calloc(cf->npools, sizeof(*px->pools));
    px->shared = calloc(cf->npools, sizeof(*px->shared));
    px->workers = calloc(nworkers, sizeof(*px->workers));
    if (px->pools == NULL || px->shared == NULL || px->workers == NULL) {
        snprintf(err, errlen, "out of memory");
        return KM_ERROR;
    }
    for (uint32_t i = 0; i < cf->npools; i++) {
        if (pool_init(&px->pools[i], i, &cf->pools[i], &px->pub, nworkers, NULL, err,
                      errlen) != KM_OK)
            return KM_ERROR;
        px->npools++;
        px->shared[i] = (struct shared_listener){ px, i, -1, NULL, -1, 0 };
    }
    for (uint32_t i = 0; i < nworkers; i++) {
        px->nworkers++;
        if (worker_init(&px->workers[i], px, i, mbuf_size, pace) != KM_OK) {
            snprintf(err, errlen, "cannot create the event loop of worker %u", i);
            return KM_ERROR;
        }
    }
    return KM_OK;
}

int
proxy_listen(struct proxy *px, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < px->npools; i++) {
        const struct conf_pool *cf = px->pools[i].cf;
        const char *how;
#ifdef SO_REUSEPORT
        bool per_worker = px->nworkers == 1 || cf->listen.path == NULL;
#else
        bool per_worker = px->nworkers == 1;
#endif
        if (per_worker) {
            for (uint32_t k = 0; k < px->nworkers; k++) {
                if (listener_open(&px->workers[k].pools[i], px->nworkers > 1, err, errlen) != KM_OK)
                    return KM_ERROR;
            }
            how = px->nworkers == 1 ? "" : ", a socket per worker";
        } else {
            if (listener_open_shared(&px->shared[i], err, errlen) != KM_OK)
                return KM_ERROR;
            how = ", one socket dealt to the workers";
        }
        px->nlisteners++;
        log_notice("pool %s: listening on %s (%s%s)", cf->name, cf->listen.text,
                   px->pools[i].proto->name, how);
    }
    for (uint32_t i = 0; i < px->npools; i++) {
        if (!px->pools[i].cf->preconnect)
            continue;
        for (uint32_t k = 0; k < px->nworkers; k++)
            upstream_preconnect(&px->workers[k].pools[i]);
    }
    return KM_OK;
}

int
proxy_start(struct proxy *px, char *err, size_t errlen)
{
    sigset_t all, old;
    int rc = 0;

    /* the signals keymux acts on go to the main thread: the workers block them */
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    sigdelset(&all, SIGABRT);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (uint32_t i = 0; i < px->nworkers; i++) {
        struct worker *w = &px->workers[i];
        rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc != 0) {
            snprintf(err, errlen, "cannot start worker %u: %s", i, strerror(rc));
            break;
        }
        w->running = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc == 0 ? KM_OK : KM_ERROR;
}

void
proxy_stop(struct proxy *px)
{
    const struct mail stop = { MAIL_STOP, -1, 0, 0 };

    for (uint32_t i = 0; i < px->npools && px->shared != NULL; i++)
        listener_close_shared(&px->shared[i]);
    for (uint32_t i = 0; i < px->nworkers; i++) {
        struct worker *w = &px->workers[i];
        if (!w->running)
            continue;
        /* a full mailbox drains within the worker's next wakeup */
        for (int tries = 0; mailbox_post(&w->mb, &stop) == -EAGAIN && tries < 5000; tries++) {
            struct timespec ts = { 0, 1000000 };
            nanosleep(&ts, NULL);
        }
    }
    for (uint32_t i = 0; i < px->nworkers; i++) {
        struct worker *w = &px->workers[i];
        if (!w->running)
            continue;
        pthread_join(w->thread, NULL);
        w->running = false;
    }
}

void
proxy_free(struct proxy *px)
{
    for (uint32_t i = 0; i < px->nworkers; i++) {
        struct worker *w = &px->workers[i];
        /* a worker that never ran still holds what proxy_listen gave it */
        for (uint32_t k = 0; w->pools != NULL && k < w->npools; k++)
            listener_close(&w->pools[k]);
        client_close_all(w);
        upstream_close_all(w);
        worker_free(w);
    }
    free(px->workers);
    px->workers = NULL;
    px->nworkers = 0;
    if (px->pub_ready)
        pub_destroy(&px->pub);   /* retired rings go: no reader is left */
    px->pub_ready = false;
    for (uint32_t i = 0; i < px->npools; i++)
        pool_free(&px->pools[i]);
    free(px->pools);
    free(px->shared);
    px->pools = NULL;
    px->shared = NULL;
    px->npools = 0;
}

void
proxy_tick(struct proxy *px)
{
    pub_reclaim(&px->pub);
}
