/* src/core/nameset.h: a set of byte strings (pub/sub channels and patterns of one client),
 * each with a small number beside it (the server it was subscribed on).
 *
 * Open addressing with linear probing; a removal shifts the entries after it back, so
 * there are no tombstones and a lookup stops at the first empty slot. The table doubles
 * at 3/4 full and never shrinks below what it held at its fullest, which for one client's
 * subscriptions is what it asked for; nameset_free gives it all back. Names are copied in.
 */
#ifndef KM_NAMESET_H
#define KM_NAMESET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nameset_entry {
    uint64_t hash;           /* 0: the slot is empty (a real hash of 0 is stored as 1) */
    uint8_t *name;           /* a heap copy */
    uint32_t len;
    uint32_t val;            /* the caller's number */
};

struct nameset {
    struct nameset_entry *slots;
    uint32_t cap;            /* slots: 0 or a power of two */
    uint32_t n;              /* entries */
};

/* Add name (len bytes) with val; 1 when added, 0 when it was there (its val is left as it
 * was), -1 when out of memory. */
int nameset_add(struct nameset *s, const uint8_t *name, size_t len, uint32_t val);
/* The entry of name, or NULL. */
const struct nameset_entry *nameset_find(const struct nameset *s, const uint8_t *name, size_t len);
/* Remove name; true when it was there (*val then holds its number, when val is not NULL). */
bool nameset_del(struct nameset *s, const uint8_t *name, size_t len, uint32_t *val);
/* Release every entry and the table. */
void nameset_free(struct nameset *s);

#endif
