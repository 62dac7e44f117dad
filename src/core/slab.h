/* src/core/slab.h: fixed-size objects carved from chunks mapped apart from the heap.
 *
 * Long-lived small objects that come and go in bursts (client connections) are kept out
 * of malloc's heap, where each one would sit next to some small allocation of another
 * library that outlives it (libevent keeps a few bytes per descriptor for ever) and pin
 * its page after it is freed. A chunk is returned to the system as soon as its last
 * object is freed (one empty chunk is kept for the next burst), so after thousands of
 * clients leave, what they used goes back. Pages of a chunk are touched only as objects
 * are handed out.
 *
 *   chunk (SLAB_CHUNK bytes, mmap)
 *   +--------+------------------+------------------+-----+-----------------+
 *   | header | [chunk*][object] | [chunk*][object] | ... | never used yet  |
 *   +--------+------------------+------------------+-----+-----------------+
 */
#ifndef KM_SLAB_H
#define KM_SLAB_H

#include <stddef.h>
#include <stdint.h>

#define SLAB_CHUNK (64u * 1024)

struct slab_chunk;

struct slab {
    size_t objsize;              /* bytes asked for per object */
    size_t stride;               /* bytes per slot: chunk pointer + object, 8-aligned */
    uint32_t per_chunk;          /* slots in one chunk */
    struct slab_chunk *partial;  /* chunks with a free slot, most recently freed into first */
    struct slab_chunk *full;     /* chunks with every slot out */
    struct slab_chunk *spare;    /* one empty chunk kept for reuse */
    uint64_t nlive;              /* objects handed out and not freed */
    uint32_t nchunks;            /* chunks mapped, the spare included */
};

/* Objects of objsize bytes (at most a quarter of a chunk), 8-byte aligned. */
void slab_init(struct slab *s, size_t objsize);
/* Unmap every chunk; objects still out go with them. */
void slab_destroy(struct slab *s);
/* A zeroed object, or NULL when the system has no memory. */
void *slab_alloc(struct slab *s);
/* Give p (from slab_alloc on s) back; its chunk goes back to the system once empty. */
void slab_free(struct slab *s, void *p);
/* Unmap the spare chunk. */
void slab_trim(struct slab *s);

#endif
