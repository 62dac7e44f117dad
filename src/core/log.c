/* src/core/log.c: the logger. Process-wide by nature (one log file, changed by signals).
 * Threads: any thread may write a line; each line is one write(2) on a descriptor that
 * never changes after log_init (a reopen moves the new file onto it with dup2, which is
 * atomic), so lines are never interleaved mid-line and never lost to a closed descriptor.
 * The level is an atomic int: the main thread changes it (SIGTTIN/SIGTTOU), the others
 * read it with relaxed loads. log_init, log_reopen and log_close run on the main thread. */
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static struct {
    _Atomic int level;
    int fd;                    /* fixed after log_init */
    char *path;
} L = { LOG_NOTICE, STDERR_FILENO, NULL };

int
log_init(int level, const char *path)
{
    atomic_store_explicit(&L.level, level, memory_order_relaxed);
    if (path == NULL || path[0] == '\0') {
        L.fd = STDERR_FILENO;
        return 0;
    }
    L.path = strdup(path);
    if (L.path == NULL)
        return -ENOMEM;
    L.fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (L.fd < 0) {
        int err = errno;
        L.fd = STDERR_FILENO;
        return -err;
    }
    return 0;
}

int
log_reopen(void)
{
    if (L.path == NULL)
        return 0;
    int fd = open(L.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    if (L.fd == STDERR_FILENO) {
        L.fd = fd;
        return 0;
    }
    /* the new file takes the old descriptor's number: a writer never sees it closed */
    int rc = dup2(fd, L.fd) < 0 ? -errno : 0;
    close(fd);
    if (rc == 0)
        fcntl(L.fd, F_SETFD, FD_CLOEXEC);
    return rc;
}

void
log_close(void)
{
    if (L.fd != STDERR_FILENO)
        close(L.fd);
    L.fd = STDERR_FILENO;
    free(L.path);
    L.path = NULL;
}

int
log_fd(void)
{
    return L.fd;
}

static void
level_move(int by)
{
    int l = atomic_load_explicit(&L.level, memory_order_relaxed) + by;
    if (l >= LOG_EMERG && l <= LOG_PVERB)
        atomic_store_explicit(&L.level, l, memory_order_relaxed);
}

void log_level_up(void)    { level_move(1); }
void log_level_down(void)  { level_move(-1); }
int log_get_level(void)    { return atomic_load_explicit(&L.level, memory_order_relaxed); }
int log_enabled(int level) { return level <= atomic_load_explicit(&L.level, memory_order_relaxed); }

void
log_write(int level, const char *file, int line, const char *fmt, ...)
{
    char buf[1024];
    struct timeval tv;
    struct tm tm;
    int n;

    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    n = (int)strftime(buf, sizeof(buf), "[%Y-%m-%d %H:%M:%S", &tm);
    n += snprintf(buf + n, sizeof(buf) - (size_t)n, ".%03ld] %s:%d ",
                  (long)tv.tv_usec / 1000, file, line);
    if (n >= (int)sizeof(buf) - 2)
        n = (int)sizeof(buf) - 2;

    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += m;
    if (n > (int)sizeof(buf) - 2)
        n = (int)sizeof(buf) - 2;
    buf[n++] = '\n';
    (void)level;
    ssize_t w = write(L.fd, buf, (size_t)n);
    (void)w;
}
