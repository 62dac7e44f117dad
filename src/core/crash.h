/* src/core/crash.h: a trace in the log when the process dies of a fault, then the core dump. */
#ifndef KM_CRASH_H
#define KM_CRASH_H

/* Catch SIGSEGV, SIGBUS, SIGFPE and SIGABRT: on one, write a line naming the signal and a
 * backtrace to the log's descriptor (log_fd(), read when the signal comes, so a reopened
 * log is used), then die of the same signal with its default action, so that a core dump
 * is still made. The handler runs on its own stack, so a stack overflow is reported too,
 * and uses async-signal-safe calls only. Call once, from the main thread, before threads
 * are started. 0 or -errno. */
int crash_init(void);
/* In a thread started after crash_init: give it a signal stack of its own (the stack is
 * per thread), so that its stack overflow is reported too. 0 or -errno. */
int crash_thread_init(void);
/* At the end of such a thread: drop its signal stack. */
void crash_thread_done(void);

#endif
