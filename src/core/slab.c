/* src/core/slab.c: fixed-size objects in mmap'd chunks (see slab.h). */
#include "core/slab.h"

#include "core/common.h"

#include <string.h>
#include <sys/mman.h>

#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS MAP_ANON
#endif

/* Under AddressSanitizer a free slot is poisoned, so a use after free is reported as it
 * would be for malloc'd memory. */
#if defined(__SANITIZE_ADDRESS__)
#define SLAB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLAB_ASAN 1
#endif
#endif
#ifdef SLAB_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

struct slab_chunk {
    struct slab_chunk *next, *prev;  /* on the partial or the full list */
    void *free;                      /* freed slots, linked through their first word */
    uint32_t used;                   /* objects out */
    uint32_t fresh;                  /* slots never handed out yet start here */
};

#define HDR_SIZE ((sizeof(struct slab_chunk) + 7) & ~(size_t)7)
/* Each slot starts with its chunk's address; the object follows, 8-aligned (what a
 * struct of pointers and 64-bit integers needs). */
#define SLOT_HDR 8u

void
slab_init(struct slab *s, size_t objsize)
{
    memset(s, 0, sizeof(*s));
    s->objsize = objsize;
    s->stride = (SLOT_HDR + objsize + 7) & ~(size_t)7;
    ASSERT(s->stride <= (SLAB_CHUNK - HDR_SIZE) / 4);
    s->per_chunk = (uint32_t)((SLAB_CHUNK - HDR_SIZE) / s->stride);
}

static void
list_add(struct slab_chunk **head, struct slab_chunk *c)
{
    c->prev = NULL;
    c->next = *head;
    if (*head != NULL)
        (*head)->prev = c;
    *head = c;
}

static void
list_del(struct slab_chunk **head, struct slab_chunk *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        *head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
}

static void
chunk_unmap(struct slab *s, struct slab_chunk *c)
{
    UNPOISON(c, SLAB_CHUNK);   /* the next mapping at this address starts clean */
    munmap(c, SLAB_CHUNK);
    s->nchunks--;
}

static struct slab_chunk *
chunk_new(struct slab *s)
{
    struct slab_chunk *c = s->spare;

    if (c != NULL) {
        s->spare = NULL;
    } else {
        void *p = mmap(NULL, SLAB_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
        if (p == MAP_FAILED)
            return NULL;
        c = p;
        s->nchunks++;
    }
    memset(c, 0, sizeof(*c));
    return c;
}

void *
slab_alloc(struct slab *s)
{
    struct slab_chunk *c = s->partial;
    uint8_t *slot;

    if (c == NULL) {
        c = chunk_new(s);
        if (c == NULL)
            return NULL;
        list_add(&s->partial, c);
    }
    if (c->free != NULL) {
        slot = c->free;
        memcpy(&c->free, slot, sizeof(void *));
    } else {
        slot = (uint8_t *)c + HDR_SIZE + (size_t)c->fresh * s->stride;
        c->fresh++;
    }
    c->used++;
    if (c->used == s->per_chunk) {
        list_del(&s->partial, c);
        list_add(&s->full, c);
    }
    memcpy(slot, &c, sizeof(c));
    s->nlive++;
    UNPOISON(slot + SLOT_HDR, s->objsize);
    memset(slot + SLOT_HDR, 0, s->objsize);
    return slot + SLOT_HDR;
}

void
slab_free(struct slab *s, void *p)
{
    uint8_t *slot;
    struct slab_chunk *c;

    if (p == NULL)
        return;
    slot = (uint8_t *)p - SLOT_HDR;
    POISON(p, s->objsize);
    memcpy(&c, slot, sizeof(c));
    memcpy(slot, &c->free, sizeof(void *));
    c->free = slot;
    s->nlive--;
    if (c->used-- == s->per_chunk) {
        list_del(&s->full, c);
        list_add(&s->partial, c);
    }
    if (c->used == 0) {
        list_del(&s->partial, c);
        if (s->spare == NULL)
            s->spare = c;
        else
            chunk_unmap(s, c);
    }
}

void
slab_trim(struct slab *s)
{
    if (s->spare != NULL) {
        chunk_unmap(s, s->spare);
        s->spare = NULL;
    }
}

void
slab_destroy(struct slab *s)
{
    struct slab_chunk **lists[] = { &s->partial, &s->full };

    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        while (*lists[i] != NULL) {
            struct slab_chunk *c = *lists[i];
            list_del(lists[i], c);
            chunk_unmap(s, c);
        }
    }
    slab_trim(s);
    s->nlive = 0;
}
