/* tests/unit/test_publish.c: publishing to readers and freeing after their safe points (core/publish),
 * alone and with reader threads racing a publisher; the thread mailbox (core/mailbox). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "core/common.h"
#include "core/mailbox.h"
#include "core/publish.h"

#define MAGIC 0x5eed5eedu

struct obj {
    struct pub_node node;     /* first: the node is the object */
    _Atomic uint32_t magic;   /* MAGIC while alive, 0 once freed (read by other threads) */
    uint64_t value;
    int *freed;               /* counts frees (single-threaded tests) */
};

static void
obj_free(struct pub_node *n)
{
    struct obj *o = (struct obj *)n;
    if (o->freed != NULL)
        (*o->freed)++;
    o->magic = 0;
    free(o);
}

static struct obj *
obj_new(uint64_t v, int *freed)
{
    struct obj *o = calloc(1, sizeof(*o));
    assert_non_null(o);
    o->magic = MAGIC;
    o->value = v;
    o->freed = freed;
    return o;
}

/* An object retired is freed only once every reader has passed a safe point after the
 * retirement; a reader that left is not waited for. */
static void
test_freed_after_every_reader(void **state)
{
    (void)state;
    struct pub_domain d;
    int freed = 0;

    assert_int_equal(pub_init(&d, 3), 0);
    pub_retire(&d, &obj_new(1, &freed)->node, obj_free);
    assert_int_equal(pub_reclaim(&d), 1);
    assert_int_equal(freed, 0);
    pub_quiescent(&d, 0);
    pub_quiescent(&d, 1);
    assert_int_equal(pub_reclaim(&d), 1);     /* reader 2 has not passed yet */
    assert_int_equal(freed, 0);
    pub_quiescent(&d, 2);
    assert_int_equal(pub_reclaim(&d), 0);
    assert_int_equal(freed, 1);

    /* a safe point before a retirement does not count for it */
    for (uint32_t r = 0; r < 3; r++)
        pub_quiescent(&d, r);
    pub_retire(&d, &obj_new(2, &freed)->node, obj_free);
    pub_retire(&d, &obj_new(3, &freed)->node, obj_free);
    assert_int_equal(pub_reclaim(&d), 2);
    pub_quiescent(&d, 0);
    pub_quiescent(&d, 1);
    pub_leave(&d, 2);                          /* its thread ended */
    assert_int_equal(pub_reclaim(&d), 0);
    assert_int_equal(freed, 3);

    /* what is still waiting when the domain goes is freed with it */
    pub_retire(&d, &obj_new(4, &freed)->node, obj_free);
    pub_destroy(&d);
    assert_int_equal(freed, 4);
}

/* Objects retired one after another go in order: an early one can be freed while a
 * later one still waits. */
static void
test_order(void **state)
{
    (void)state;
    struct pub_domain d;
    int freed = 0;

    assert_int_equal(pub_init(&d, 1), 0);
    pub_retire(&d, &obj_new(1, &freed)->node, obj_free);
    pub_quiescent(&d, 0);
    pub_retire(&d, &obj_new(2, &freed)->node, obj_free);
    assert_int_equal(pub_reclaim(&d), 1);
    assert_int_equal(freed, 1);
    pub_quiescent(&d, 0);
    assert_int_equal(pub_reclaim(&d), 0);
    assert_int_equal(freed, 2);
    pub_destroy(&d);
}

/* No domain: nothing else reads, the object goes at once. */
static void
test_no_domain(void **state)
{
    (void)state;
    int freed = 0;
    pub_retire(NULL, &obj_new(1, &freed)->node, obj_free);
    assert_int_equal(freed, 1);
}

/* Reader threads load the published pointer and read the object many times between
 * safe points while a publisher replaces it 20,000 times and reclaims as it goes:
 * a reader never sees a freed object nor a value going backwards. The objects come
 * from one array and "freeing" one only clears its magic, so its memory is never
 * handed out again and a read after the free sees the cleared magic. */
#define READERS 3
#define SWAPS 20000

struct race {
    struct pub_domain d;
    struct obj *objs;         /* SWAPS + 1, never reused */
    _Atomic(struct obj *) cur;
    _Atomic bool done;
    _Atomic uint64_t bad;
};

struct reader_arg {
    struct race *r;
    uint32_t id;
};

static void *
reader(void *arg)
{
    struct reader_arg *a = arg;
    struct race *r = a->r;
    uint64_t last = 0;

    while (!atomic_load(&r->done)) {
        for (int i = 0; i < 64; i++) {
            struct obj *o = atomic_load_explicit(&r->cur, memory_order_acquire);
            uint32_t magic = atomic_load_explicit(&o->magic, memory_order_relaxed);
            if (magic != MAGIC || o->value < last)
                atomic_fetch_add(&r->bad, 1);
            last = o->value;
        }
        pub_quiescent(&r->d, a->id);
    }
    pub_leave(&r->d, a->id);
    return NULL;
}

static void
obj_bury(struct pub_node *n)
{
    atomic_store(&((struct obj *)n)->magic, 0);
}

static void
test_readers_race_a_publisher(void **state)
{
    (void)state;
    struct race r;
    pthread_t t[READERS];
    struct reader_arg args[READERS];

    assert_int_equal(pub_init(&r.d, READERS), 0);
    r.objs = calloc(SWAPS + 1, sizeof(*r.objs));
    assert_non_null(r.objs);
    for (uint64_t v = 0; v <= SWAPS; v++) {
        r.objs[v].magic = MAGIC;
        r.objs[v].value = v;
    }
    atomic_init(&r.cur, &r.objs[0]);
    atomic_init(&r.done, false);
    atomic_init(&r.bad, 0);
    for (uint32_t i = 0; i < READERS; i++) {
        args[i] = (struct reader_arg){ &r, i };
        assert_int_equal(pthread_create(&t[i], NULL, reader, &args[i]), 0);
    }
    uint32_t most_waiting = 0;
    for (uint64_t v = 1; v <= SWAPS; v++) {
        struct obj *old = atomic_exchange_explicit(&r.cur, &r.objs[v], memory_order_acq_rel);
        pub_retire(&r.d, &old->node, obj_bury);
        uint32_t left = pub_reclaim(&r.d);
        if (left > most_waiting)
            most_waiting = left;
    }
    atomic_store(&r.done, true);
    for (uint32_t i = 0; i < READERS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(pub_reclaim(&r.d), 0);   /* every reader left: all freed */
    assert_int_equal(atomic_load(&r.bad), 0);
    for (uint64_t v = 0; v < SWAPS; v++)
        assert_int_equal(r.objs[v].magic, 0);   /* every replaced one was freed */
    pub_destroy(&r.d);
    free(r.objs);
    print_message("      %d swaps, at most %u objects waiting for readers at once\n", SWAPS,
                  most_waiting);
}

/* The mailbox: records come out whole and in order; a full pipe says -EAGAIN. */
static void
test_mailbox(void **state)
{
    (void)state;
    struct mailbox mb;
    struct mail m;

    assert_int_equal(mailbox_open(&mb), 0);
    assert_int_equal(mailbox_take(&mb, &m), 0);
    for (int i = 0; i < 10; i++) {
        struct mail in = { MAIL_CLIENT, 100 + i, (uint64_t)i };
        assert_int_equal(mailbox_post(&mb, &in), 0);
    }
    for (int i = 0; i < 10; i++) {
        assert_int_equal(mailbox_take(&mb, &m), 1);
        assert_int_equal(m.kind, MAIL_CLIENT);
        assert_int_equal(m.fd, 100 + i);
        assert_int_equal(m.arg, (uint64_t)i);
    }
    assert_int_equal(mailbox_take(&mb, &m), 0);
    int posted = 0, rc;
    struct mail wake = { MAIL_WAKE, -1, 0 };
    while ((rc = mailbox_post(&mb, &wake)) == 0 && posted < 1000000)
        posted++;
    assert_int_equal(rc, -EAGAIN);
    assert_true(posted > 0);
    int taken = 0;
    while (mailbox_take(&mb, &m) == 1)
        taken++;
    assert_int_equal(taken, posted);
    mailbox_close(&mb);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_freed_after_every_reader),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_no_domain),
        cmocka_unit_test(test_readers_race_a_publisher),
        cmocka_unit_test(test_mailbox),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
