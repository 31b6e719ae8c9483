/*
 * log.c - leveled and rate-limited logging to stderr / the journal.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int max_level = LOG_INFO;
static int journal = -1;

void log_init(int max_priority)
{
	max_level = max_priority;
	journal = getenv("JOURNAL_STREAM") != NULL;
}

int log_get_level(void)
{
	return max_level;
}

static const char *prio_name(int priority)
{
	switch (priority) {
	case LOG_EMERG: case LOG_ALERT: case LOG_CRIT: case LOG_ERR:
		return "error";
	case LOG_WARNING: return "warning";
	case LOG_NOTICE: case LOG_INFO: return "info";
	default: return "debug";
	}
}

static void log_vmsg(int priority, const char *suffix, const char *fmt, va_list ap)
{
	if (priority > max_level)
		return;
	if (journal < 0)
		journal = getenv("JOURNAL_STREAM") != NULL;
	if (journal)
		fprintf(stderr, "<%d>", priority);
	else
		fprintf(stderr, "spinewatchd: %s: ", prio_name(priority));
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "%s\n", suffix ? suffix : "");
}

void log_msg(int priority, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(priority, NULL, fmt, ap);
	va_end(ap);
}

void log_rl(struct log_ratelimit *rl, int priority, const char *fmt, ...)
{
	int64_t now = clock_mono_ms();
	char suffix[64] = "";
	va_list ap;

	rl->total++;
	if (rl->window_start_ms == 0 || now - rl->window_start_ms >= LOG_RL_WINDOW_MS) {
		rl->window_start_ms = now;
		rl->in_window = 0;
	}
	if (rl->in_window >= LOG_RL_BURST) {
		rl->suppressed++;
		return;
	}
	rl->in_window++;
	if (rl->suppressed)
		snprintf(suffix, sizeof(suffix), " (%llu similar messages suppressed)",
			 (unsigned long long)rl->suppressed);
	rl->suppressed = 0;
	va_start(ap, fmt);
	log_vmsg(priority, suffix, fmt, ap);
	va_end(ap);
}

static int64_t clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_mono_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

int64_t clock_epoch_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}
