/* src/core/crash.c: the fault handler: one log line and a backtrace, then the default action. */
#include "core/crash.h"

#include "core/common.h"
#include "core/log.h"

#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CRASH_FRAMES 64
#define CRASH_STACK  (64 * 1024)

static const struct {
    int sig;
    const char *name;
} crash_sigs[] = {
    { SIGSEGV, "SIGSEGV" },
    { SIGBUS,  "SIGBUS" },
    { SIGFPE,  "SIGFPE" },
    { SIGABRT, "SIGABRT" },
};

/* Append the decimal digits of v at dst; returns the length (async-signal-safe). */
static size_t
put_dec(char *dst, unsigned v)
{
    char tmp[12];
    size_t n = 0, len = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        dst[len++] = tmp[--n];
    return len;
}

static size_t
put_str(char *dst, const char *s)
{
    size_t n = strlen(s);
    memcpy(dst, s, n);
    return n;
}

static void
on_fault(int sig)
{
    void *frames[CRASH_FRAMES];
    const char *name = "?";
    char line[128];
    size_t n = 0;
    int fd = log_fd();
    int saved = errno;

    for (size_t i = 0; i < KM_ARRAY_LEN(crash_sigs); i++) {
        if (crash_sigs[i].sig == sig)
            name = crash_sigs[i].name;
    }
    n += put_str(line + n, "signal ");
    n += put_dec(line + n, (unsigned)sig);
    n += put_str(line + n, " (");
    n += put_str(line + n, name);
    n += put_str(line + n, ") received, core dumping; backtrace:\n");
    ssize_t w = write(fd, line, n);
    (void)w;
    int depth = backtrace(frames, CRASH_FRAMES);
    backtrace_symbols_fd(frames, depth, fd);
    /* SA_RESETHAND put the default action back: the same signal now ends the process
     * (a fault re-raises itself when the handler returns to the faulting instruction;
     * a signal sent by kill or raise does not, hence the raise) */
    errno = saved;
    raise(sig);
}

int
crash_init(void)
{
    static char stack[CRASH_STACK];
    void *warm[1];
    stack_t ss;
    struct sigaction sa;

    /* the first backtrace() loads the unwinder, which is not safe inside a handler */
    (void)backtrace(warm, 1);
    memset(&ss, 0, sizeof(ss));
    ss.ss_sp = stack;
    ss.ss_size = sizeof(stack);
    if (sigaltstack(&ss, NULL) != 0)
        return -errno;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_fault;
    sa.sa_flags = (int)(SA_RESETHAND | SA_ONSTACK | SA_NODEFER);
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < KM_ARRAY_LEN(crash_sigs); i++) {
        if (sigaction(crash_sigs[i].sig, &sa, NULL) != 0)
            return -errno;
    }
    return 0;
}

static _Thread_local void *thread_stack;

int
crash_thread_init(void)
{
    stack_t ss;

    thread_stack = malloc(CRASH_STACK);
    if (thread_stack == NULL)
        return -ENOMEM;
    memset(&ss, 0, sizeof(ss));
    ss.ss_sp = thread_stack;
    ss.ss_size = CRASH_STACK;
    if (sigaltstack(&ss, NULL) != 0) {
        int err = errno;
        free(thread_stack);
        thread_stack = NULL;
        return -err;
    }
    return 0;
}

void
crash_thread_done(void)
{
    stack_t ss;

    if (thread_stack == NULL)
        return;
    memset(&ss, 0, sizeof(ss));
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, NULL);
    free(thread_stack);
    thread_stack = NULL;
}
