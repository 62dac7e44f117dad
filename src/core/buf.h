/* src/core/buf.h: fixed-size reference-counted segments, spans over them, and input chains.
 *
 *   bufpool (one per worker)          a connection's input chain
 *   +-------------+                   head            pb (parse)        tail
 *   | free list   |--> [seg][seg]     [seg: full]---->[seg: full]----->[seg: len<size]
 *   | scratch seg |                    ^hoff: start of the message being parsed
 *   +-------------+
 *
 * A segment holds `size` bytes (-m). Everything that needs bytes to stay alive holds a
 * reference on each segment it covers: the chain holds one on every segment from head to
 * tail; a parsed message holds its raw span; an output span (a slice to be written)
 * holds its own. When the count drops to zero the segment goes back to the free list,
 * or to the system once the list is at its bound, so memory returns after a burst.
 * Segments of one chain are linked by `next`, which is set once and never changed, so a
 * span may run across segments: every segment but the last of a chain is full.
 */
#ifndef KM_BUF_H
#define KM_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct bufpool;

struct buf {
    struct buf *next;        /* following segment of the same stream, or NULL */
    struct bufpool *pool;    /* where the segment returns */
    uint32_t refs;           /* holders: chain, messages, spans */
    uint32_t len;            /* bytes of data[] in use */
    uint8_t data[];          /* pool->size bytes */
};

struct bufpool {
    uint32_t size;           /* data bytes per segment */
    uint32_t nfree;          /* segments on the free list */
    uint32_t max_free;       /* bound of the free list */
    struct buf *free;        /* free list, linked by next */
    struct buf *scratch;     /* current segment for small fresh bytes (one ref held) */
    uint64_t nlive;          /* segments allocated from the system and not yet freed */
    uint64_t nreleased;      /* segments given back to the system, ever */
    uint32_t low;            /* fewest idle segments since the last bufpool_trim */
};

/* `len` bytes that start at b->data[off] and run on through b->next. */
struct span {
    struct buf *b;
    uint32_t off;
    uint64_t len;
};

#define BUF_MIN_SIZE 512u
#define BUF_MAX_SIZE (16u * 1024 * 1024)

/* Bytes of segments handed out and not yet back in the pool. */
static inline uint64_t
bufpool_held(const struct bufpool *p)
{
    return (p->nlive - p->nfree) * (uint64_t)p->size;
}

/* Set up a pool of segments of `size` data bytes keeping at most max_free idle ones. */
void bufpool_init(struct bufpool *p, uint32_t size, uint32_t max_free);
/* Free every idle segment and the scratch segment. Segments still referenced elsewhere
 * are the holders' to release; nlive tells how many are left. */
void bufpool_destroy(struct bufpool *p);

/* Give back to the system the idle segments that were not needed since the last call
 * (the free list's low-water mark): after a burst the list shrinks to what steady
 * traffic uses. Call it periodically. Returns how many segments were freed. */
uint32_t bufpool_trim(struct bufpool *p);

/* A segment with refs = 1, len = 0, next = NULL; NULL when out of memory. */
struct buf *buf_get(struct bufpool *p);

static inline void
buf_ref(struct buf *b)
{
    b->refs++;
}

/* Drop one reference; the last one returns the segment to its pool. */
void buf_unref(struct buf *b);

/* Reserve n (<= 256) fresh bytes in the pool's scratch segment and describe them in *out,
 * which holds one reference (release it with span_release). Returns where to write the
 * bytes, or NULL when out of memory. Small replies and fragment headers live here, many
 * to a segment. */
uint8_t *buf_scratch(struct bufpool *p, size_t n, struct span *out);

/* Take / drop one reference on every segment the span covers. */
void span_hold(const struct span *s);
void span_release(struct span *s);

/* Copy at most n bytes of the span starting `skip` bytes into it; returns bytes copied. */
size_t span_copy(const struct span *s, uint64_t skip, void *dst, size_t n);

/* Fill iov[0..max) with the span's bytes from `skip` on, merging a piece with the
 * previous iov entry when they are adjacent in memory. *niov is the number of entries in
 * use (updated); returns the bytes described. */
uint64_t span_iov(const struct span *s, uint64_t skip, struct iovec *iov, int max, int *niov);

/* Input side of a connection: see the picture above. */
struct chain {
    struct buf *head;        /* oldest segment still needed; NULL when empty */
    struct buf *tail;        /* segment being read into */
    struct buf *pb;          /* segment of the parse position */
    uint32_t hoff;           /* offset in head of the first byte still needed */
    uint32_t poff;           /* parse position in pb */
    uint64_t head_abs;       /* stream offset of head->data[0] */
    uint64_t pabs;           /* stream offset of the parse position */
    uint64_t end_abs;        /* stream offset just past the last byte read */
};

/* Make room to read: returns the free bytes at the tail (linking a fresh segment when the
 * tail is full or the chain empty), or NULL when out of memory. */
uint8_t *chain_space(struct chain *c, struct bufpool *p, size_t *room);
/* Account n bytes just written at the tail. */
void chain_commit(struct chain *c, size_t n);
/* Bytes read and not yet parsed, from the parse position, in the current segment. */
static inline size_t
chain_unparsed_here(const struct chain *c)
{
    return c->pb == NULL ? 0 : c->pb->len - c->poff;
}
/* Advance the parse position by n bytes within pb, then step to pb->next if pb is done. */
void chain_advance(struct chain *c, size_t n);
/* Map a stream offset in [head_abs + hoff, end_abs) to a segment and offset, walking from
 * the cursor (*b, *b_abs) forward; the cursor is updated so that increasing offsets cost
 * linear time in total. Start a cursor at (c->head, c->head_abs). */
void chain_locate(struct buf **b, uint64_t *b_abs, uint64_t abs, uint32_t *off);
/* Everything before the parse position is no longer needed by the chain: drop its
 * references on the segments before pb. */
void chain_consume(struct chain *c);
/* Drop every segment of the chain (references held by messages keep theirs alive). */
void chain_release(struct chain *c);
/* True when every byte read has been parsed and consumed. */
static inline int
chain_drained(const struct chain *c)
{
    return c->head == NULL || (c->head == c->pb && c->hoff == c->poff && c->pabs == c->end_abs);
}

#endif
