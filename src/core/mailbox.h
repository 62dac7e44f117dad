/* src/core/mailbox.h: a thread's inbox: small fixed records through a non-blocking pipe.
 *
 * Another thread posts a record (a client descriptor to take over, a wake-up, the order
 * to stop); the owner watches mb->rfd in its event loop and drains it. A record is one
 * write(2) of fewer than PIPE_BUF bytes, so records from several threads never mix, and
 * posting never blocks: a full pipe is reported to the poster, who decides.
 */
#ifndef KM_MAILBOX_H
#define KM_MAILBOX_H

#include <stdint.h>

enum mail_kind {
    MAIL_WAKE = 1,             /* look at what was published (nothing else to do) */
    MAIL_CLIENT,               /* take over client descriptor fd of the pool whose state id
                                  is `arg` */
    MAIL_STOP,                 /* leave the loop */
};

struct mail {
    uint32_t kind;             /* enum mail_kind */
    int32_t fd;                /* MAIL_CLIENT: the descriptor, now the owner's */
    uint64_t arg;              /* MAIL_CLIENT: the pool's state id (it stays the same
                                  across a reload that keeps the pool) */
};

struct mailbox {
    int rfd;                   /* the owner reads (and watches) this end */
    int wfd;                   /* posters write this end */
};

/* Open the pipe (both ends non-blocking, close-on-exec). 0 or -errno. */
int mailbox_open(struct mailbox *mb);
void mailbox_close(struct mailbox *mb);
/* Post one record from any thread: 0, -EAGAIN when the pipe is full, or -errno. */
int mailbox_post(struct mailbox *mb, const struct mail *m);
/* Owner: the next record, 1; 0 when none is waiting; -errno on failure. */
int mailbox_take(struct mailbox *mb, struct mail *m);

#endif
