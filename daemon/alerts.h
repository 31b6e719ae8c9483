/*
 * alerts.h - the alert engine: turns posture, break, crack, pattern and
 * sensor-health inputs into alerts with a lifecycle
 * raised -> acknowledged -> cleared, with cooldowns so nothing nags.
 *
 * Owns: the rules, their thresholds and defaults, alert ids, the wording of
 * alert messages, the set of active alerts. Pure: no I/O, no clock reads,
 * no logging (it only mallocs per sensor). Every call that can
 * change something takes the time as a struct alert_clock (monotonic ms for
 * durations, epoch ms for stamps); transitions go out synchronously through
 * the emit callback given to alerts_new().
 *
 * Time-driven changes (a slouch reaching its limit, a sensor lost long
 * enough, a cooldown ending, cracks ageing out of the hour, a pattern
 * expiring) happen in alerts_tick(); the caller arms one timer for
 * alerts_next_deadline() after every call and calls alerts_tick() when it
 * fires. No periodic wake-ups are needed. The monotonic time passed in must
 * never go backwards from one call to the next.
 *
 * Rules (name: condition; clearing; severity):
 *   slouch-long        a slouch has lasted slouch_long_ms (default 20 min:
 *                      well under the 30-min break reminder, long enough that
 *                      the live slouch event has had its chance);
 *                      cleared when the slouch ends.              info
 *   no-break           the breaks module says a break is due; cleared when
 *                      it says it is no longer due (a break).     info
 *   crack-rate         cracks in the last hour (sliding, 60 min) >= the
 *                      raise threshold T = min(crack_cap,
 *                      max(crack_floor, ceil(crack_factor x baseline))), or
 *                      T = crack_cap when there is no baseline yet (defaults
 *                      floor 6, factor 3.0, cap 20 per hour); cleared when
 *                      the hour's count falls to T/2 (integer) or less.
 *                      info, warning when the cap was reached
 *   grinding           a repeated-grinding pattern signal; active until
 *                      pattern_hold_ms (default 10 min) after the latest
 *                      signal.                                  warning
 *   self-manipulation  a self-manipulation pattern signal; like grinding.
 *                                                                  info
 *   sensor-lost        a sensor not streaming for sensor_lost_ms (default
 *                      60 s); cleared when it streams again.    warning
 *   battery-low        battery below battery_low_pct (default 15%); cleared
 *                      above battery_clear_pct (default 20%); in between
 *                      the previous state holds (hysteresis).      info
 *
 * Lifecycle, per rule and sensor (one active alert at most):
 *   - the condition becomes true, no active alert, not in cooldown: raised
 *     (a new id, ids start at 1 and increase by 1 per raised alert);
 *   - acknowledging (alerts_ack) marks it acknowledged; it stays active,
 *     and is not raised again, while the condition persists;
 *   - the condition ends: cleared (raised or acknowledged alike), and the
 *     rule+sensor enters cooldown for cooldown_ms[rule] (default 15 min);
 *   - a condition true while in cooldown raises a new alert at the moment
 *     the cooldown ends (now >= end) if it still holds then.
 * Messages are written for the wearer: they guide, never diagnose, and the
 * pain-like patterns (grinding, high crack rates) suggest a professional.
 *
 * Wiring sketch: the emit callback turns each transition into a feed
 * message kept in the ring, and on ALERT_RAISED also calls
 * alert_hook_run(). After every engine call, (re)arm one loop timer:
 *   d = alerts_next_deadline(e);
 *   d == ALERTS_NO_DEADLINE ? loop_timer_cancel(&t)
 *                           : loop_timer_start(&t, d - clock_mono_ms());
 * and call alerts_tick() when it fires. hello lists alerts_list_active().
 */
#ifndef SW_ALERTS_H
#define SW_ALERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ALERT_SENSOR_LEN 18          /* "AA:BB:CC:DD:EE:FF" + NUL; "" = global */
#define ALERT_MESSAGE_LEN 320
#define ALERTS_NO_DEADLINE INT64_MAX
#define ALERTS_CRACK_CAP_MAX 1000    /* upper bound for crack_cap */
#define ALERTS_NO_BASELINE (-1.0)
#define ALERTS_CRACK_WINDOW_MS (60 * 60 * 1000)

enum alert_rule {
	ALERT_SLOUCH_LONG,
	ALERT_NO_BREAK,
	ALERT_CRACK_RATE,
	ALERT_GRINDING,
	ALERT_SELF_MANIPULATION,
	ALERT_SENSOR_LOST,
	ALERT_BATTERY_LOW,
	ALERT_RULE_COUNT
};

enum alert_severity { ALERT_INFO, ALERT_WARNING };
enum alert_state { ALERT_RAISED, ALERT_ACKNOWLEDGED, ALERT_CLEARED };

/* "slouch-long", ...; NULL for an out-of-range value */
const char *alert_rule_name(enum alert_rule r);
/* the rule with that name, or -1 */
int alert_rule_from_name(const char *name);
const char *alert_severity_name(enum alert_severity s);   /* "info" | "warning" */
const char *alert_state_name(enum alert_state s);         /* "raised" | "acknowledged" | "cleared" */

struct alert {
	uint64_t id;
	enum alert_rule rule;
	char sensor[ALERT_SENSOR_LEN];   /* "" for a global alert */
	enum alert_severity severity;
	enum alert_state state;
	char message[ALERT_MESSAGE_LEN]; /* UTF-8, for people */
	int64_t raised_ts;               /* epoch ms */
	int64_t acked_ts;                /* epoch ms, 0 if not acknowledged */
	int64_t cleared_ts;              /* epoch ms, 0 while active */
};

/* The time of a call: monotonic ms (durations, deadlines), epoch ms (stamps). */
struct alert_clock {
	int64_t mono_ms;
	int64_t epoch_ms;
};

/* One transition: alert->state == state. Valid only during the callback. */
struct alert_transition {
	const struct alert *alert;
	enum alert_state state;
};
/* Called synchronously from the engine's calls; it must not call back into
 * the engine's mutating functions (alerts_ack, inputs, tick, free). */
typedef void (*alerts_emit_fn)(const struct alert_transition *t, void *user);

struct alerts_config {
	bool enabled[ALERT_RULE_COUNT];        /* all true */
	int64_t cooldown_ms[ALERT_RULE_COUNT]; /* 15 min each; 0..24 h */
	int64_t slouch_long_ms;                /* 20 min; 3 s..8 h */
	int64_t sensor_lost_ms;                /* 60 s; 1 s..24 h */
	int battery_low_pct;                   /* 15; 1..99 */
	int battery_clear_pct;                 /* 20; > low, <= 100 */
	unsigned crack_floor;                  /* 6 per hour; 1..crack_cap */
	double crack_factor;                   /* 3.0; 1..100 */
	unsigned crack_cap;                    /* 20 per hour; 1..ALERTS_CRACK_CAP_MAX */
	int64_t pattern_hold_ms;               /* 10 min; 1 s..24 h */
};

void alerts_config_default(struct alerts_config *c);
/* NULL if valid, else a static message starting with the bad setting's
 * field name ("slouch_long_ms: ..."; per-rule ones as
 * "cooldown_ms[slouch-long]: ..."). */
const char *alerts_config_check(const struct alerts_config *c);

struct alerts;

/* cfg must pass alerts_config_check() (NULL otherwise); copied. */
struct alerts *alerts_new(const struct alerts_config *cfg, alerts_emit_fn emit, void *user);
/* Frees everything; emits nothing. */
void alerts_free(struct alerts *e);
/* Replace the configuration (SIGHUP) and re-evaluate every rule at now:
 * alerts of rules now disabled are cleared. -1 if cfg is invalid. */
int alerts_reconfigure(struct alerts *e, const struct alerts_config *cfg, struct alert_clock now);

/*
 * Inputs. sensor is an address (or "" for global); -1 if it is NULL or
 * longer than ALERT_SENSOR_LEN - 1, or on allocation failure; 0 otherwise.
 */
/* A slouch began at since_mono_ms (its onset: pass now.mono_ms if unknown),
 * or ended (slouching false; since ignored). */
int alerts_slouch(struct alerts *e, struct alert_clock now, const char *sensor,
		  bool slouching, int64_t since_mono_ms);
/* The breaks module's "break due" state; sitting_ms (time since the last
 * break, 0 if unknown) goes into the message. */
int alerts_break_due(struct alerts *e, struct alert_clock now, const char *sensor,
		     bool due, int64_t sitting_ms);
/* The wearer's usual cracks per hour for the current hour of day, or
 * ALERTS_NO_BASELINE (any negative value); kept until changed. The caller
 * updates it when the hour changes. Re-evaluates the rule. */
int alerts_crack_baseline(struct alerts *e, struct alert_clock now, const char *sensor,
			  double per_hour);
/* One crack episode (a merged burst counts once). */
int alerts_crack(struct alerts *e, struct alert_clock now, const char *sensor);
/* A pattern signal: rule is ALERT_GRINDING or ALERT_SELF_MANIPULATION
 * (-1 for any other rule). */
int alerts_pattern(struct alerts *e, struct alert_clock now, const char *sensor,
		   enum alert_rule rule);
/* Link state: streaming true when data flows again, false when it stopped
 * (lost, gone, waiting: anything but streaming). The first false starts the
 * lost timer; further falls keep the original start. */
int alerts_sensor_streaming(struct alerts *e, struct alert_clock now, const char *sensor,
			    bool streaming);
/* Battery level 0..100; negative (unknown) is ignored. */
int alerts_battery(struct alerts *e, struct alert_clock now, const char *sensor, int percent);
/* Forget a sensor (removed from the configuration): its active alerts are
 * cleared (emitted) and its state freed. 0, or -1 if unknown. */
int alerts_forget_sensor(struct alerts *e, struct alert_clock now, const char *sensor);

/* Evaluate the time-driven parts of every rule at now. */
void alerts_tick(struct alerts *e, struct alert_clock now);
/* Monotonic ms at which alerts_tick() may change something, or
 * ALERTS_NO_DEADLINE. Depends only on the state, so ask after every call. */
int64_t alerts_next_deadline(const struct alerts *e);

enum alerts_ack_result {
	ALERTS_ACK_OK,            /* raised -> acknowledged (emitted) */
	ALERTS_ACK_ALREADY,       /* already acknowledged: nothing changes */
	ALERTS_ACK_CLEARED,       /* an id this run issued, already cleared */
	ALERTS_ACK_UNKNOWN,       /* never issued */
};
const char *alerts_ack_result_name(enum alerts_ack_result r); /* "ok", "already-acknowledged", "cleared", "unknown" */
enum alerts_ack_result alerts_ack(struct alerts *e, struct alert_clock now, uint64_t id);

/* Active (raised or acknowledged) alerts, oldest id first: copies up to cap
 * into out (out may be NULL when cap is 0) and returns how many there are. */
size_t alerts_list_active(const struct alerts *e, struct alert *out, size_t cap);
/* The active alert with that id, or NULL; valid until the next mutating call. */
const struct alert *alerts_find(const struct alerts *e, uint64_t id);

#endif
