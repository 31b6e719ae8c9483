/*
 * test_thingy52.c - unit tests for protocol/thingy52.c (Thingy:52 Gravity
 * Vector and Motion Configuration) and protocol/microbit.c (micro:bit
 * Accelerometer Period). Runs every vector of thingy52-motion.md (its
 * ```vectors block) and of the ```microbit-period-vectors block of
 * spine-sensor-profile.md, read from the documents themselves so that the
 * specs and the codecs cannot drift apart; then checks lengths, NULL
 * safety, float edge cases, config validation and encoding, the rate helper
 * and the period helpers directly.
 *
 * Vector lines: <kind> <inputs> => <outputs>, where an input or output token
 * is either a hex byte ("0a") or key=value; error=<name> stands alone.
 *
 * Usage: test_thingy52 [thingy52-motion.md [spine-sensor-profile.md]]
 * (defaults relative to the repo root)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "microbit.h"
#include "spine_profile.h"
#include "thingy52.h"
#include "spec_text.h"

#define DEFAULT_THINGY_SPEC  "protocol/thingy52-motion.md"
#define DEFAULT_PROFILE_SPEC "protocol/spine-sensor-profile.md"
#define MAX_BYTES 64
#define MAX_FIELDS 16

static const char *thingy_spec = DEFAULT_THINGY_SPEC;
static const char *profile_spec = DEFAULT_PROFILE_SPEC;

/* ---- vector parsing ---------------------------------------------------- */

struct field {
	char key[32];
	char value[32];
};

struct bytes {
	uint8_t b[MAX_BYTES];
	size_t len;
};

struct vector {
	int line;
	char kind[16];
	struct bytes in, out;             /* hex before / after "=>" */
	struct field params[MAX_FIELDS];  /* key=value before "=>" */
	size_t nparams;
	struct field fields[MAX_FIELDS];  /* key=value after "=>" */
	size_t nfields;
	const char *error;                /* error=... value, or NULL */
};

static void copy_token(char *dst, size_t size, const char *tok, int line)
{
	if (strlen(tok) >= size)
		fail_msg("vector line %d: token \"%s\" too long", line, tok);
	strcpy(dst, tok);
}

static void add_field(struct field *arr, size_t *n, char *tok, int line)
{
	char *eq = strchr(tok, '=');

	if (!eq || eq == tok || eq[1] == '\0')
		fail_msg("vector line %d: \"%s\" is neither a hex byte nor key=value", line, tok);
	if (*n >= MAX_FIELDS)
		fail_msg("vector line %d: too many key=value tokens", line);
	*eq = '\0';
	copy_token(arr[*n].key, sizeof(arr[*n].key), tok, line);
	copy_token(arr[*n].value, sizeof(arr[*n].value), eq + 1, line);
	(*n)++;
}

static int add_hex(struct bytes *b, const char *tok, int line)
{
	int hi = hex_digit(tok[0]);
	int lo = hi < 0 ? -1 : hex_digit(tok[1]);

	if (hi < 0 || lo < 0 || tok[2] != '\0')
		return 0;
	if (b->len >= MAX_BYTES)
		fail_msg("vector line %d: too many bytes", line);
	b->b[b->len++] = (uint8_t)(hi << 4 | lo);
	return 1;
}

/* Parses one vector line (modified in place by strtok_r). */
static void parse_vector(char *text, int line, struct vector *v)
{
	char *save = NULL, *tok;
	int after_arrow = 0;

	memset(v, 0, sizeof(*v));
	v->line = line;
	tok = strtok_r(text, " \t", &save);
	if (!tok)
		fail_msg("vector line %d is empty", line);
	copy_token(v->kind, sizeof(v->kind), tok, line);

	while ((tok = strtok_r(NULL, " \t", &save))) {
		if (!after_arrow && strcmp(tok, "=>") == 0) {
			after_arrow = 1;
			continue;
		}
		if (add_hex(after_arrow ? &v->out : &v->in, tok, line))
			continue;
		if (after_arrow)
			add_field(v->fields, &v->nfields, tok, line);
		else
			add_field(v->params, &v->nparams, tok, line);
	}
	if (!after_arrow)
		fail_msg("vector line %d has no \"=>\"", line);
	if (v->nfields == 0 && v->out.len == 0)
		fail_msg("vector line %d expects nothing", line);
	for (size_t i = 0; i < v->nfields; i++)
		if (strcmp(v->fields[i].key, "error") == 0)
			v->error = v->fields[i].value;
	if (v->error && (v->nfields != 1 || v->out.len))
		fail_msg("vector line %d mixes error= with other results", line);
}

static long long parse_int(int line, const struct field *f)
{
	char *end;
	long long n;

	errno = 0;
	n = strtoll(f->value, &end, 10);
	if (errno || end == f->value || *end != '\0')
		fail_msg("vector line %d: %s=%s is not an integer", line, f->key, f->value);
	return n;
}

/* The integer parameter named key; fails if absent. */
static long long param(const struct vector *v, const char *key)
{
	for (size_t i = 0; i < v->nparams; i++)
		if (strcmp(v->params[i].key, key) == 0)
			return parse_int(v->line, &v->params[i]);
	fail_msg("vector line %d (%s): no %s= input", v->line, v->kind, key);
	return 0; /* not reached */
}

struct named_int {
	const char *key;
	long long value;
};

/* Every output field must be one of got[] and have its value. */
static void check_fields(const struct vector *v, const struct named_int *got, size_t n)
{
	for (size_t i = 0; i < v->nfields; i++) {
		const struct field *f = &v->fields[i];
		size_t j;

		for (j = 0; j < n; j++)
			if (strcmp(f->key, got[j].key) == 0)
				break;
		if (j == n)
			fail_msg("vector line %d: %s has no field \"%s\"", v->line, v->kind, f->key);
		if (parse_int(v->line, f) != got[j].value)
			fail_msg("vector line %d (%s): %s is %lld, want %s", v->line, v->kind,
				 f->key, got[j].value, f->value);
	}
}

static void check_out_bytes(const struct vector *v, const uint8_t *got, size_t len)
{
	if (v->out.len != len || memcmp(v->out.b, got, len) != 0) {
		char buf[3 * MAX_BYTES + 1] = "";

		for (size_t i = 0; i < len && i < MAX_BYTES; i++)
			sprintf(buf + 3 * i, "%02x ", got[i]);
		fail_msg("vector line %d (%s): produced %s", v->line, v->kind, buf);
	}
}

/* A heap copy of exactly the input bytes, so that ASan sees over-reads. */
static uint8_t *input_copy(const struct vector *v)
{
	uint8_t *buf = malloc(v->in.len ? v->in.len : 1);

	assert_non_null(buf);
	if (v->in.len)
		memcpy(buf, v->in.b, v->in.len);
	return buf;
}

static void expect_error(const struct vector *v, const char *got)
{
	if (!v->error)
		fail_msg("vector line %d (%s): failed with %s", v->line, v->kind, got);
	if (strcmp(got, v->error) != 0)
		fail_msg("vector line %d (%s): got %s, want error=%s", v->line, v->kind, got,
			 v->error);
}

/* ---- per-kind checks ----------------------------------------------------- */

static void run_gravity(const struct vector *v)
{
	uint8_t *buf = input_copy(v);
	struct spine_posture p;
	enum thingy52_err err;

	memset(&p, 0x55, sizeof(p));
	err = thingy52_gravity_decode(buf, v->in.len, &p);
	free(buf);
	if (err != THINGY52_OK || v->error) {
		expect_error(v, thingy52_err_name(err));
		return;
	}
	{
		const struct named_int got[] = { { "x", p.x }, { "y", p.y }, { "z", p.z } };

		assert_int_equal(p.seq, 0);
		check_fields(v, got, 3);
	}
}

static void config_fields(const struct thingy52_motion_config *c, struct named_int got[5])
{
	got[0] = (struct named_int){ "step_interval_ms", c->step_interval_ms };
	got[1] = (struct named_int){ "temp_interval_ms", c->temp_interval_ms };
	got[2] = (struct named_int){ "magnet_interval_ms", c->magnet_interval_ms };
	got[3] = (struct named_int){ "motion_freq_hz", c->motion_freq_hz };
	got[4] = (struct named_int){ "wake_on_motion", c->wake_on_motion };
}

static void run_config(const struct vector *v)
{
	uint8_t *buf = input_copy(v);
	struct thingy52_motion_config c;
	struct named_int got[5];
	uint8_t enc[THINGY52_MOTION_CONFIG_LEN];
	enum thingy52_err err;

	err = thingy52_motion_config_decode(buf, v->in.len, &c);
	free(buf);
	if (err != THINGY52_OK || v->error) {
		expect_error(v, thingy52_err_name(err));
		return;
	}
	config_fields(&c, got);
	check_fields(v, got, 5);
	/* a valid configuration encodes back to the bytes it came from */
	assert_int_equal(thingy52_motion_config_encode(&c, enc), THINGY52_OK);
	assert_int_equal(v->in.len, sizeof(enc));
	assert_memory_equal(enc, v->in.b, sizeof(enc));
}

static void run_rate(const struct vector *v)
{
	uint8_t *buf = input_copy(v);
	long long period = param(v, "period_ms");
	struct thingy52_motion_config c;
	uint8_t enc[THINGY52_MOTION_CONFIG_LEN];
	enum thingy52_err err;
	unsigned hz;

	assert_true(period >= 0);
	err = thingy52_motion_config_decode(buf, v->in.len, &c);
	free(buf);
	if (err != THINGY52_OK || v->error) {
		expect_error(v, thingy52_err_name(err));
		return;
	}
	hz = thingy52_config_set_rate(&c, (unsigned)period);
	assert_int_equal(hz, c.motion_freq_hz);
	err = thingy52_motion_config_encode(&c, enc);
	if (err != THINGY52_OK)
		fail_msg("vector line %d: encode failed with %s", v->line, thingy52_err_name(err));
	check_out_bytes(v, enc, sizeof(enc));
	{
		const struct named_int got[] = { { "motion_freq_hz", hz } };

		check_fields(v, got, 1);
	}
}

static void run_period(const struct vector *v)
{
	uint8_t *buf = input_copy(v);
	uint16_t ms = 0xbeef;
	enum spine_err err;

	err = microbit_period_decode(buf, v->in.len, &ms);
	free(buf);
	if (err != SPINE_OK || v->error) {
		expect_error(v, spine_err_name(err));
		return;
	}
	{
		const struct named_int got[] = { { "period_ms", ms } };

		check_fields(v, got, 1);
	}
}

static void run_request(const struct vector *v)
{
	long long period = param(v, "period_ms");
	uint8_t out[MICROBIT_ACCEL_PERIOD_LEN];
	uint16_t written;

	if (v->in.len)
		fail_msg("vector line %d: request takes no input bytes", v->line);
	assert_true(period >= 0);
	written = microbit_period_encode((unsigned)period, out);
	check_out_bytes(v, out, sizeof(out));
	assert_int_equal(written, out[0] | out[1] << 8);
	{
		/* the device chooses from what was written */
		const struct named_int got[] = {
			{ "chosen_ms", microbit_period_nearest(written) },
		};

		check_fields(v, got, 1);
	}
}

struct kind_runner {
	const char *kind;
	void (*run)(const struct vector *v);
};

/*
 * Runs the first block fenced as ```<fence> in path with runners; returns the
 * number of vectors, and counts errors and kinds seen.
 */
static int run_block(const char *path, const char *fence, const struct kind_runner *runners,
		     size_t nrunners, int *nerr, unsigned *kinds_seen)
{
	char *doc, *p, *end;
	char open[64];
	int line = 1, nvec = 0, in_block = 0, closed = 0;

	snprintf(open, sizeof(open), "```%s", fence);
	doc = read_file(path);
	if (!doc)
		fail_msg("cannot read %s: %s", path, strerror(errno));
	*nerr = 0;
	*kinds_seen = 0;
	for (p = doc; *p && !closed; p = end, line++) {
		char *text = p;
		size_t n;
		struct vector v;
		size_t k;

		end = strchr(p, '\n');
		if (end)
			*end++ = '\0';
		else
			end = p + strlen(p);
		n = strlen(text);
		if (n && text[n - 1] == '\r')
			text[n - 1] = '\0';

		if (!in_block) {
			in_block = strcmp(text, open) == 0;
			continue;
		}
		if (strncmp(text, "```", 3) == 0) {
			closed = 1;
			break;
		}
		if (strspn(text, " \t") == strlen(text))
			continue;
		parse_vector(text, line, &v);
		for (k = 0; k < nrunners; k++)
			if (strcmp(v.kind, runners[k].kind) == 0)
				break;
		if (k == nrunners)
			fail_msg("%s line %d: unknown kind \"%s\"", path, line, v.kind);
		runners[k].run(&v);
		*kinds_seen |= 1u << k;
		nvec++;
		*nerr += v.error != NULL;
	}
	free(doc);
	if (!in_block)
		fail_msg("%s has no %s block", path, open);
	if (!closed)
		fail_msg("%s: the %s block is not closed", path, open);
	print_message("ran %d vectors from %s %s (%d errors)\n", nvec, path, open, *nerr);
	return nvec;
}

static void test_thingy_spec_vectors(void **state)
{
	static const struct kind_runner runners[] = {
		{ "gravity", run_gravity },
		{ "config", run_config },
		{ "rate", run_rate },
	};
	int nerr, n;
	unsigned kinds;

	(void)state;
	n = run_block(thingy_spec, "vectors", runners, 3, &nerr, &kinds);
	assert_true(n >= 30);
	assert_true(nerr > 0 && nerr < n);
	assert_int_equal(kinds, 7u);
}

static void test_microbit_period_vectors(void **state)
{
	static const struct kind_runner runners[] = {
		{ "period", run_period },
		{ "request", run_request },
	};
	int nerr, n;
	unsigned kinds;

	(void)state;
	n = run_block(profile_spec, "microbit-period-vectors", runners, 2, &nerr, &kinds);
	assert_true(n >= 10);
	assert_true(nerr > 0 && nerr < n);
	assert_int_equal(kinds, 3u);
}

/* ---- direct tests -------------------------------------------------------- */

static void put_float(uint8_t *p, float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(u >> (8 * i));
}

static enum thingy52_err gravity3(float x, float y, float z, struct spine_posture *p)
{
	uint8_t buf[THINGY52_GRAVITY_LEN];

	put_float(buf, x);
	put_float(buf + 4, y);
	put_float(buf + 8, z);
	return thingy52_gravity_decode(buf, sizeof(buf), p);
}

static void test_gravity_lengths(void **state)
{
	uint8_t full[32];
	struct spine_posture p;

	(void)state;
	memset(full, 0, sizeof(full));
	put_float(full + 8, 9.80665f);
	for (size_t len = 0; len <= sizeof(full); len++) {
		uint8_t *buf = malloc(len ? len : 1);
		enum thingy52_err err;

		assert_non_null(buf);
		memcpy(buf, full, len);
		err = thingy52_gravity_decode(buf, len, &p);
		free(buf);
		if (len == THINGY52_GRAVITY_LEN)
			assert_int_equal(err, THINGY52_OK);
		else
			assert_int_equal(err, THINGY52_ERR_LENGTH);
	}
	assert_int_equal(thingy52_gravity_decode(NULL, 0, &p), THINGY52_ERR_LENGTH);
	assert_int_equal(thingy52_gravity_decode(NULL, THINGY52_GRAVITY_LEN, &p),
			 THINGY52_ERR_LENGTH);
}

static void test_gravity_floats(void **state)
{
	struct spine_posture p, before;
	const float g = 9.80665f;

	(void)state;
	/* conversion and rounding */
	assert_int_equal(gravity3(0.0f, 0.0f, g, &p), THINGY52_OK);
	assert_int_equal(p.z, 1000);
	assert_int_equal(gravity3(-g / 2, g / 4, -0.0f, &p), THINGY52_OK);
	assert_int_equal(p.x, -500);
	assert_int_equal(p.y, 250);
	assert_int_equal(p.z, 0);
	assert_int_equal(gravity3(1e-40f, -1e-40f, g, &p), THINGY52_OK); /* subnormals */
	assert_int_equal(p.x, 0);
	assert_int_equal(p.y, 0);

	/* every non-finite value, on each axis */
	for (int axis = 0; axis < 3; axis++) {
		const float bad[] = { NAN, -NAN, INFINITY, -INFINITY };

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			float v[3] = { 0.0f, 0.0f, g };

			v[axis] = bad[i];
			memset(&p, 0x55, sizeof(p));
			before = p;
			assert_int_equal(gravity3(v[0], v[1], v[2], &p), THINGY52_ERR_NONFINITE);
			assert_memory_equal(&p, &before, sizeof(p)); /* untouched */
		}
	}
	/* a NaN is reported as such even next to an out-of-range axis */
	assert_int_equal(gravity3(1e30f, 0.0f, NAN, &p), THINGY52_ERR_NONFINITE);

	/* range: per axis and magnitude, both signs, huge values */
	assert_int_equal(gravity3(16.0f * g, 0.0f, 0.0f, &p), THINGY52_OK);
	assert_int_equal(p.x, 16000);
	assert_int_equal(gravity3(0.0f, 0.0f, -16.0f * g, &p), THINGY52_OK);
	assert_int_equal(p.z, -16000);
	assert_int_equal(gravity3(16.01f * g, 0.0f, 0.0f, &p), THINGY52_ERR_RANGE);
	assert_int_equal(gravity3(0.0f, -16.01f * g, 0.0f, &p), THINGY52_ERR_RANGE);
	assert_int_equal(gravity3(12.0f * g, 12.0f * g, 0.0f, &p), THINGY52_ERR_RANGE);
	assert_int_equal(gravity3(-10.0f * g, 10.0f * g, -10.0f * g, &p), THINGY52_ERR_RANGE);
	assert_int_equal(gravity3(9.0f * g, 9.0f * g, 9.0f * g, &p), THINGY52_OK);
	assert_int_equal(gravity3(3.4e38f, 0.0f, 0.0f, &p), THINGY52_ERR_RANGE);
	assert_int_equal(gravity3(0.0f, -3.4e38f, 0.0f, &p), THINGY52_ERR_RANGE);
	assert_int_equal(gravity3(3e9f, 3e9f, 3e9f, &p), THINGY52_ERR_RANGE);
}

/* Every bit pattern class decodes without UB (UBSan would abort). */
static void test_gravity_random_bits(void **state)
{
	uint64_t s = 0x1234567887654321u;
	int ok = 0, nonfinite = 0, range = 0;

	(void)state;
	for (int i = 0; i < 200000; i++) {
		uint8_t buf[THINGY52_GRAVITY_LEN];
		struct spine_posture p;
		enum thingy52_err err;

		for (size_t j = 0; j < sizeof(buf); j++) {
			s ^= s << 13;
			s ^= s >> 7;
			s ^= s << 17;
			buf[j] = (uint8_t)s;
		}
		/* bias half of the samples towards plausible exponents */
		if (i & 1)
			for (int a = 0; a < 3; a++)
				buf[4 * a + 3] = (uint8_t)((buf[4 * a + 3] & 0x80) | 0x3f);
		err = thingy52_gravity_decode(buf, sizeof(buf), &p);
		if (err == THINGY52_OK) {
			long long sq = (long long)p.x * p.x + (long long)p.y * p.y +
				       (long long)p.z * p.z;

			assert_true(sq <= 16000LL * 16000LL);
			ok++;
		} else if (err == THINGY52_ERR_NONFINITE) {
			nonfinite++;
		} else {
			assert_int_equal(err, THINGY52_ERR_RANGE);
			range++;
		}
	}
	assert_true(ok > 0 && nonfinite > 0 && range > 0);
}

static void test_config_clamp(void **state)
{
	/* the simulator's old default: a temperature interval above the firmware's range */
	static const uint8_t read[] = { 0x64, 0x00, 0x10, 0x27, 0xe8, 0x03, 0x3c, 0x00, 0x01 };
	struct thingy52_motion_config c;
	uint8_t out[THINGY52_MOTION_CONFIG_LEN];

	(void)state;
	assert_int_equal(thingy52_motion_config_decode(read, sizeof(read), &c),
			 THINGY52_ERR_TEMP_INTERVAL);
	assert_int_equal(thingy52_motion_config_clamp(&c), 1);
	assert_int_equal(c.temp_interval_ms, THINGY52_TEMP_INTERVAL_MAX);
	assert_int_equal(c.step_interval_ms, 100);
	assert_int_equal(c.magnet_interval_ms, 1000);
	assert_int_equal(c.motion_freq_hz, 60);
	assert_int_equal(thingy52_motion_config_validate(&c), THINGY52_OK);
	assert_int_equal(thingy52_motion_config_encode(&c, out), THINGY52_OK);
	assert_int_equal(thingy52_motion_config_clamp(&c), 0);   /* idempotent */
	/* every field out of range, both ways */
	c.step_interval_ms = 0;
	c.temp_interval_ms = 0;
	c.magnet_interval_ms = 65535;
	c.motion_freq_hz = 0;
	c.wake_on_motion = 7;
	assert_int_equal(thingy52_motion_config_clamp(&c), 5);
	assert_int_equal(c.step_interval_ms, THINGY52_STEP_INTERVAL_MIN);
	assert_int_equal(c.temp_interval_ms, THINGY52_TEMP_INTERVAL_MIN);
	assert_int_equal(c.magnet_interval_ms, THINGY52_MAGNET_INTERVAL_MAX);
	assert_int_equal(c.motion_freq_hz, THINGY52_MOTION_FREQ_MIN);
	assert_int_equal(c.wake_on_motion, THINGY52_WAKE_ON_MOTION_MAX);
	assert_int_equal(thingy52_motion_config_validate(&c), THINGY52_OK);
}

static void test_config(void **state)
{
	struct thingy52_motion_config c, d;
	uint8_t enc[THINGY52_MOTION_CONFIG_LEN], before[THINGY52_MOTION_CONFIG_LEN];
	static const uint8_t factory[] = { 0xe8, 0x03, 0xf4, 0x01, 0xf4, 0x01, 0x0a, 0x00, 0x01 };

	(void)state;
	thingy52_motion_config_default(&c);
	assert_int_equal(thingy52_motion_config_validate(&c), THINGY52_OK);
	assert_int_equal(thingy52_motion_config_encode(&c, enc), THINGY52_OK);
	assert_memory_equal(enc, factory, sizeof(factory));

	/* lengths, including ASan-visible exact heap copies */
	for (size_t len = 0; len <= 20; len++) {
		uint8_t *buf = malloc(len ? len : 1);
		enum thingy52_err err;

		assert_non_null(buf);
		memset(buf, 0, len);
		memcpy(buf, factory, len < sizeof(factory) ? len : sizeof(factory));
		err = thingy52_motion_config_decode(buf, len, &d);
		free(buf);
		assert_int_equal(err, len == THINGY52_MOTION_CONFIG_LEN ? THINGY52_OK
									: THINGY52_ERR_LENGTH);
	}
	assert_int_equal(thingy52_motion_config_decode(NULL, 9, &d), THINGY52_ERR_LENGTH);

	/* each bound, each field; encode refuses and leaves out alone */
	struct {
		uint16_t *field;
		unsigned min, max;
		enum thingy52_err err;
	} bounds[] = {
		{ &c.step_interval_ms, 100, 5000, THINGY52_ERR_STEP_INTERVAL },
		{ &c.temp_interval_ms, 100, 5000, THINGY52_ERR_TEMP_INTERVAL },
		{ &c.magnet_interval_ms, 100, 5000, THINGY52_ERR_MAGNET_INTERVAL },
		{ &c.motion_freq_hz, 1, 200, THINGY52_ERR_FREQUENCY },
	};
	for (size_t i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++) {
		thingy52_motion_config_default(&c);
		*bounds[i].field = (uint16_t)bounds[i].min;
		assert_int_equal(thingy52_motion_config_validate(&c), THINGY52_OK);
		*bounds[i].field = (uint16_t)bounds[i].max;
		assert_int_equal(thingy52_motion_config_validate(&c), THINGY52_OK);
		*bounds[i].field = (uint16_t)(bounds[i].min - 1);
		assert_int_equal(thingy52_motion_config_validate(&c), bounds[i].err);
		*bounds[i].field = (uint16_t)(bounds[i].max + 1);
		assert_int_equal(thingy52_motion_config_validate(&c), bounds[i].err);
		*bounds[i].field = 0xffff;
		memset(enc, 0xa5, sizeof(enc));
		memcpy(before, enc, sizeof(enc));
		assert_int_equal(thingy52_motion_config_encode(&c, enc), bounds[i].err);
		assert_memory_equal(enc, before, sizeof(enc));
	}
	thingy52_motion_config_default(&c);
	c.wake_on_motion = 0;
	assert_int_equal(thingy52_motion_config_validate(&c), THINGY52_OK);
	c.wake_on_motion = 2;
	assert_int_equal(thingy52_motion_config_validate(&c), THINGY52_ERR_WAKE_ON_MOTION);
	c.wake_on_motion = 255;
	assert_int_equal(thingy52_motion_config_encode(&c, enc), THINGY52_ERR_WAKE_ON_MOTION);

	/* decode fills *out even on a range error, so a caller can repair it */
	{
		const uint8_t bad[] = { 0xe8, 0x03, 0x10, 0x27, 0xf4, 0x01, 0x3c, 0x00, 0x01 };

		assert_int_equal(thingy52_motion_config_decode(bad, sizeof(bad), &d),
				 THINGY52_ERR_TEMP_INTERVAL);
		assert_int_equal(d.step_interval_ms, 1000);
		assert_int_equal(d.temp_interval_ms, 10000);
		assert_int_equal(d.magnet_interval_ms, 500);
		assert_int_equal(d.motion_freq_hz, 60);
		assert_int_equal(d.wake_on_motion, 1);
	}

	/* round trip over a grid of valid values */
	for (unsigned step = 100; step <= 5000; step += 700)
		for (unsigned hz = 1; hz <= 200; hz += 19) {
			c = (struct thingy52_motion_config){ (uint16_t)step, (uint16_t)(5100 - step),
							     (uint16_t)(step / 2 + 100), (uint16_t)hz,
							     (uint8_t)(hz & 1) };
			assert_int_equal(thingy52_motion_config_encode(&c, enc), THINGY52_OK);
			assert_int_equal(thingy52_motion_config_decode(enc, sizeof(enc), &d),
					 THINGY52_OK);
			assert_int_equal(d.step_interval_ms, c.step_interval_ms);
			assert_int_equal(d.temp_interval_ms, c.temp_interval_ms);
			assert_int_equal(d.magnet_interval_ms, c.magnet_interval_ms);
			assert_int_equal(d.motion_freq_hz, c.motion_freq_hz);
			assert_int_equal(d.wake_on_motion, c.wake_on_motion);
		}
}

static void test_set_rate(void **state)
{
	struct thingy52_motion_config c, ref;

	(void)state;
	thingy52_motion_config_default(&c);
	ref = c;
	assert_int_equal(thingy52_config_set_rate(&c, 80), 13);   /* 12.5 rounds up */
	assert_int_equal(c.motion_freq_hz, 13);
	/* the other fields are untouched */
	assert_int_equal(c.step_interval_ms, ref.step_interval_ms);
	assert_int_equal(c.temp_interval_ms, ref.temp_interval_ms);
	assert_int_equal(c.magnet_interval_ms, ref.magnet_interval_ms);
	assert_int_equal(c.wake_on_motion, ref.wake_on_motion);

	assert_int_equal(thingy52_config_set_rate(&c, 0), 200);
	assert_int_equal(thingy52_config_set_rate(&c, 1), 200);
	assert_int_equal(thingy52_config_set_rate(&c, 5), 200);
	assert_int_equal(thingy52_config_set_rate(&c, 6), 167);   /* 166.67 */
	assert_int_equal(thingy52_config_set_rate(&c, 9), 111);   /* 111.1 */
	assert_int_equal(thingy52_config_set_rate(&c, 16), 63);   /* 62.5 rounds up */
	assert_int_equal(thingy52_config_set_rate(&c, 33), 30);   /* 30.3 */
	assert_int_equal(thingy52_config_set_rate(&c, 200), 5);
	assert_int_equal(thingy52_config_set_rate(&c, 201), 5);   /* 4.98 -> clamped */
	assert_int_equal(thingy52_config_set_rate(&c, 60000), 5);
	assert_int_equal(thingy52_config_set_rate(&c, 4294967295u), 5);
	/* every period yields a frequency the firmware accepts, monotonically */
	{
		unsigned prev = 1000;

		for (unsigned period = 0; period <= 5000; period++) {
			unsigned hz = thingy52_config_set_rate(&c, period);

			assert_true(hz >= THINGY52_RATE_FREQ_MIN && hz <= THINGY52_MOTION_FREQ_MAX);
			assert_true(hz <= prev);
			assert_int_equal(thingy52_motion_config_validate(&c), THINGY52_OK);
			if (period >= 5 && period <= 200) /* not clamped: nearest integer */
				assert_true(fabs((double)hz - 1000.0 / period) <= 0.5);
			prev = hz;
		}
	}
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(thingy52_err_name(THINGY52_OK), "ok");
	assert_string_equal(thingy52_err_name(THINGY52_ERR_LENGTH), "length");
	assert_string_equal(thingy52_err_name(THINGY52_ERR_NONFINITE), "nonfinite");
	assert_string_equal(thingy52_err_name(THINGY52_ERR_RANGE), "range");
	assert_string_equal(thingy52_err_name(THINGY52_ERR_STEP_INTERVAL), "step_interval");
	assert_string_equal(thingy52_err_name(THINGY52_ERR_TEMP_INTERVAL), "temp_interval");
	assert_string_equal(thingy52_err_name(THINGY52_ERR_MAGNET_INTERVAL), "magnet_interval");
	assert_string_equal(thingy52_err_name(THINGY52_ERR_FREQUENCY), "frequency");
	assert_string_equal(thingy52_err_name(THINGY52_ERR_WAKE_ON_MOTION), "wake_on_motion");
	assert_string_equal(thingy52_err_name((enum thingy52_err)99), "unknown");
	/* UUIDs are lowercase, as BlueZ reports them */
	{
		const char *uuids[] = { THINGY52_CONFIG_SERVICE_UUID, THINGY52_MOTION_SERVICE_UUID,
					THINGY52_MOTION_CONFIG_UUID, THINGY52_GRAVITY_UUID,
					MICROBIT_ACCEL_PERIOD_UUID };

		for (size_t i = 0; i < sizeof(uuids) / sizeof(uuids[0]); i++) {
			assert_int_equal(strlen(uuids[i]), 36);
			for (const char *p = uuids[i]; *p; p++)
				assert_false(*p >= 'A' && *p <= 'Z');
		}
	}
}

static void test_microbit_period(void **state)
{
	static const unsigned supported[] = { 1, 2, 5, 10, 20, 80, 160, 640 };
	uint8_t out[MICROBIT_ACCEL_PERIOD_LEN];
	uint16_t ms;

	(void)state;
	/* every supported period is chosen as is; in between rounds up */
	for (size_t i = 0; i < sizeof(supported) / sizeof(supported[0]); i++) {
		assert_int_equal(microbit_period_nearest(supported[i]), supported[i]);
		if (i > 0 && supported[i] - supported[i - 1] > 1)
			assert_int_equal(microbit_period_nearest(supported[i - 1] + 1), supported[i]);
	}
	assert_int_equal(microbit_period_nearest(0), 1);
	assert_int_equal(microbit_period_nearest(21), 80);
	assert_int_equal(microbit_period_nearest(79), 80);
	assert_int_equal(microbit_period_nearest(641), 640);
	assert_int_equal(microbit_period_nearest(4294967295u), 640);
	for (unsigned req = 0; req <= 1000; req++) {
		unsigned got = microbit_period_nearest(req);
		int found = 0;

		for (size_t i = 0; i < sizeof(supported) / sizeof(supported[0]); i++)
			found |= supported[i] == got;
		assert_true(found);
		assert_true(got >= req || got == 640);
	}

	/* encode clamps, decode reverses it */
	assert_int_equal(microbit_period_encode(0, out), 1);
	assert_int_equal(microbit_period_encode(65535, out), 65535);
	assert_int_equal(microbit_period_encode(65536, out), 65535);
	for (unsigned req = 1; req <= 65535; req += 97) {
		assert_int_equal(microbit_period_encode(req, out), req);
		assert_int_equal(microbit_period_decode(out, sizeof(out), &ms), SPINE_OK);
		assert_int_equal(ms, req);
	}
	/* lengths and NULL */
	for (size_t len = 0; len <= 8; len++) {
		uint8_t *buf = calloc(len ? len : 1, 1);

		assert_non_null(buf);
		assert_int_equal(microbit_period_decode(buf, len, &ms),
				 len == MICROBIT_ACCEL_PERIOD_LEN ? SPINE_OK : SPINE_ERR_LENGTH);
		free(buf);
	}
	assert_int_equal(microbit_period_decode(NULL, 2, &ms), SPINE_ERR_LENGTH);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_thingy_spec_vectors),
		cmocka_unit_test(test_microbit_period_vectors),
		cmocka_unit_test(test_gravity_lengths),
		cmocka_unit_test(test_gravity_floats),
		cmocka_unit_test(test_gravity_random_bits),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_config_clamp),
		cmocka_unit_test(test_set_rate),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_microbit_period),
	};

	if (argc > 1)
		thingy_spec = argv[1];
	if (argc > 2)
		profile_spec = argv[2];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
