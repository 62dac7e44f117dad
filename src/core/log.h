/* src/core/log.h: leveled logging to stderr or a file, reopenable for logrotate. */
#ifndef KM_LOG_H
#define KM_LOG_H

#include <stdarg.h>

/* Levels as twemproxy numbers them (-v 0..11). */
enum log_level {
    LOG_EMERG = 0, LOG_ALERT, LOG_CRIT, LOG_ERR, LOG_WARN, LOG_NOTICE,
    LOG_INFO, LOG_DEBUG, LOG_VERB, LOG_VVERB, LOG_VVVERB, LOG_PVERB
};

/* Open the log at path (NULL or "" = stderr) with the given level. 0 or -errno. */
int log_init(int level, const char *path);
/* Reopen the log file after rotation (SIGHUP); stderr is left alone. 0 or -errno. */
int log_reopen(void);
void log_level_up(void);
void log_level_down(void);
int log_get_level(void);
void log_close(void);
/* The descriptor lines are written to (stderr or the log file); it stays the same for the
 * life of the process after log_init, across reopens. */
int log_fd(void);

/* Write one line with a timestamp; cheap no-op below the current level. */
void log_write(int level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int log_enabled(int level);

#define log_at(lvl, ...)                                                   \
    do {                                                                   \
        if (log_enabled(lvl))                                              \
            log_write(lvl, __FILE__, __LINE__, __VA_ARGS__);               \
    } while (0)
#define log_error(...)  log_at(LOG_ERR, __VA_ARGS__)
#define log_warn(...)   log_at(LOG_WARN, __VA_ARGS__)
#define log_notice(...) log_at(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)   log_at(LOG_INFO, __VA_ARGS__)
#define log_debug(...)  log_at(LOG_DEBUG, __VA_ARGS__)
/* A notice written whatever the level (as nutcracker writes the signals it receives):
 * for lines an operator caused and must see, such as a signal lowering the level. */
#define log_always(...) log_write(LOG_NOTICE, __FILE__, __LINE__, __VA_ARGS__)

#endif
