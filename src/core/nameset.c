/* src/core/nameset.c: a set of byte strings with linear probing and backward-shift removal. */
#include "core/nameset.h"

#include "core/common.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a; never 0 (0 marks an empty slot). */
static uint64_t
name_hash(const uint8_t *p, size_t n)
{
    uint64_t h = km_fnv1a64(p, n);

    return h != 0 ? h : 1;
}

/* The slot holding name, or the empty slot where it would go. */
static uint32_t
probe(const struct nameset *s, uint64_t h, const uint8_t *name, size_t len)
{
    uint32_t mask = s->cap - 1;
    uint32_t i = (uint32_t)h & mask;

    while (s->slots[i].hash != 0) {
        const struct nameset_entry *e = &s->slots[i];
        if (e->hash == h && e->len == len && memcmp(e->name, name, len) == 0)
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

static int
grow(struct nameset *s)
{
    uint32_t ncap = s->cap == 0 ? 8 : s->cap * 2;
    struct nameset_entry *ns = calloc(ncap, sizeof(*ns));

    if (ns == NULL || ncap < s->cap) {
        free(ns);
        return -1;
    }
    struct nameset old = *s;
    s->slots = ns;
    s->cap = ncap;
    for (uint32_t i = 0; i < old.cap; i++) {
        if (old.slots[i].hash != 0)
            s->slots[probe(s, old.slots[i].hash, old.slots[i].name, old.slots[i].len)] = old.slots[i];
    }
    free(old.slots);
    return 0;
}

int
nameset_add(struct nameset *s, const uint8_t *name, size_t len, uint32_t val)
{
    uint64_t h = name_hash(name, len);

    if (len > UINT32_MAX)
        return -1;
    if (s->cap > 0 && s->slots[probe(s, h, name, len)].hash != 0)
        return 0;
    if ((uint64_t)(s->n + 1) * 4 > (uint64_t)s->cap * 3 && grow(s) != 0)
        return -1;
    uint8_t *copy = malloc(len > 0 ? len : 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, name, len);
    s->slots[probe(s, h, name, len)] = (struct nameset_entry){ h, copy, (uint32_t)len, val };
    s->n++;
    return 1;
}

const struct nameset_entry *
nameset_find(const struct nameset *s, const uint8_t *name, size_t len)
{
    if (s->n == 0)
        return NULL;
    const struct nameset_entry *e = &s->slots[probe(s, name_hash(name, len), name, len)];
    return e->hash != 0 ? e : NULL;
}

bool
nameset_del(struct nameset *s, const uint8_t *name, size_t len, uint32_t *val)
{
    if (s->n == 0)
        return false;
    uint32_t mask = s->cap - 1;
    uint32_t i = probe(s, name_hash(name, len), name, len);
    if (s->slots[i].hash == 0)
        return false;
    if (val != NULL)
        *val = s->slots[i].val;
    free(s->slots[i].name);
    s->n--;
    /* shift back what follows until an empty slot or an entry already at its home */
    for (uint32_t j = (i + 1) & mask; s->slots[j].hash != 0; j = (j + 1) & mask) {
        uint32_t home = (uint32_t)s->slots[j].hash & mask;
        /* j's entry may move to i when its home is not in (i, j] (cyclically) */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays)
            continue;
        s->slots[i] = s->slots[j];
        i = j;
    }
    s->slots[i] = (struct nameset_entry){ 0 };
    return true;
}

void
nameset_free(struct nameset *s)
{
    for (uint32_t i = 0; i < s->cap; i++)
        free(s->slots[i].name);
    free(s->slots);
    *s = (struct nameset){ 0 };
}
