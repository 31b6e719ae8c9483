/*
 * log.h - spinewatchd's logging: leveled messages to stderr (with syslog
 * priority prefixes when stderr is the systemd journal), and rate-limited
 * logging for anything an outsider can trigger (bad payloads, spoofed
 * signals, hostile clients): a burst is logged, the rest only counted.
 */
#ifndef SW_LOG_H
#define SW_LOG_H

#include <stdint.h>
#include <syslog.h>

void log_init(int max_priority);      /* LOG_ERR .. LOG_DEBUG */
int log_get_level(void);
void log_msg(int priority, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* At most LOG_RL_BURST messages per LOG_RL_WINDOW_MS per limiter; the
 * number suppressed is reported with the next message let through. */
#define LOG_RL_BURST 5
#define LOG_RL_WINDOW_MS 60000

struct log_ratelimit {
	int64_t window_start_ms;
	unsigned in_window;
	uint64_t suppressed;
	uint64_t total;       /* every occurrence, logged or not */
};

void log_rl(struct log_ratelimit *rl, int priority, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* milliseconds: monotonic clock (for durations) and Unix epoch (for stamps) */
int64_t clock_mono_ms(void);
int64_t clock_epoch_ms(void);

#endif
