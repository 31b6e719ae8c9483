/*
 * test_profiles.c - unit tests for protocol/spine_profile.c. Decodes every
 * test vector of spine-sensor-profile.md (the ```vectors block, read from
 * the document itself so the spec and the decoder cannot drift apart), then
 * checks length handling, NULL safety, sequence loss counting and names.
 *
 * Usage: test_profiles [path/to/spine-sensor-profile.md]
 * (default: protocol/spine-sensor-profile.md, relative to the repo root)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "spine_profile.h"
#include "spec_text.h"

#define DEFAULT_SPEC "protocol/spine-sensor-profile.md"
#define MIN_VECTORS 15
#define MAX_PAYLOAD 64
#define MAX_FIELDS 16

static const char *spec_path = DEFAULT_SPEC;

struct field {
	char key[32];
	char value[32];
};

struct vector {
	int line;
	char chr[16];                 /* posture, crack, microbit */
	uint8_t bytes[MAX_PAYLOAD];
	size_t len;
	struct field fields[MAX_FIELDS];
	size_t nfields;
	const char *error;            /* the error=... value, or NULL */
};

static void copy_token(char *dst, size_t size, const char *tok, int line)
{
	if (strlen(tok) >= size)
		fail_msg("vector line %d: token \"%s\" too long", line, tok);
	strcpy(dst, tok);
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
	copy_token(v->chr, sizeof(v->chr), tok, line);

	while ((tok = strtok_r(NULL, " \t", &save))) {
		if (!after_arrow) {
			int hi, lo;

			if (strcmp(tok, "=>") == 0) {
				after_arrow = 1;
				continue;
			}
			hi = hex_digit(tok[0]);
			lo = hi < 0 ? -1 : hex_digit(tok[1]);
			if (hi < 0 || lo < 0 || tok[2] != '\0')
				fail_msg("vector line %d: bad hex byte \"%s\"", line, tok);
			if (v->len >= MAX_PAYLOAD)
				fail_msg("vector line %d: payload too long", line);
			v->bytes[v->len++] = (uint8_t)(hi << 4 | lo);
		} else {
			char *eq = strchr(tok, '=');
			struct field *f;

			if (!eq || eq == tok || eq[1] == '\0')
				fail_msg("vector line %d: \"%s\" is not key=value", line, tok);
			if (v->nfields >= MAX_FIELDS)
				fail_msg("vector line %d: too many fields", line);
			*eq = '\0';
			f = &v->fields[v->nfields++];
			copy_token(f->key, sizeof(f->key), tok, line);
			copy_token(f->value, sizeof(f->value), eq + 1, line);
			if (strcmp(f->key, "error") == 0)
				v->error = f->value;
		}
	}
	if (!after_arrow)
		fail_msg("vector line %d has no \"=>\"", line);
	if (v->nfields == 0)
		fail_msg("vector line %d expects nothing", line);
	if (v->error && v->nfields != 1)
		fail_msg("vector line %d mixes error= with fields", line);
}

static long long parse_int(const struct vector *v, const struct field *f)
{
	char *end;
	long long n;

	errno = 0;
	n = strtoll(f->value, &end, 10);
	if (errno || end == f->value || *end != '\0')
		fail_msg("vector line %d: %s=%s is not an integer", v->line, f->key,
			 f->value);
	return n;
}

static void check_int(const struct vector *v, const struct field *f, long long got)
{
	long long want = parse_int(v, f);

	if (got != want)
		fail_msg("vector line %d (%s): %s decoded as %lld, want %lld",
			 v->line, v->chr, f->key, got, want);
}

static void unknown_field(const struct vector *v, const struct field *f)
{
	fail_msg("vector line %d: %s has no field \"%s\"", v->line, v->chr, f->key);
}

/*
 * Decodes from a heap copy of exactly len bytes, so that ASan catches a
 * decoder reading past the payload.
 */
static enum spine_err decode(const struct vector *v, struct spine_posture *p,
			     struct spine_crack *c)
{
	uint8_t *buf = malloc(v->len ? v->len : 1);
	enum spine_err err;

	assert_non_null(buf);
	if (v->len)
		memcpy(buf, v->bytes, v->len);
	if (strcmp(v->chr, "posture") == 0) {
		err = spine_posture_decode(buf, v->len, p);
	} else if (strcmp(v->chr, "crack") == 0) {
		err = spine_crack_decode(buf, v->len, c);
	} else if (strcmp(v->chr, "microbit") == 0) {
		err = microbit_accel_decode(buf, v->len, p);
	} else {
		free(buf);
		fail_msg("vector line %d: unknown characteristic \"%s\"", v->line, v->chr);
		return SPINE_ERR_LENGTH; /* not reached */
	}
	free(buf);
	return err;
}

static void check_vector(const struct vector *v)
{
	struct spine_posture p;
	struct spine_crack c;
	enum spine_err err;

	memset(&p, 0, sizeof(p));
	memset(&c, 0, sizeof(c));
	err = decode(v, &p, &c);

	if (v->error) {
		if (err == SPINE_OK || strcmp(spine_err_name(err), v->error) != 0)
			fail_msg("vector line %d (%s): got %s, want error=%s", v->line,
				 v->chr, spine_err_name(err), v->error);
		return;
	}
	if (err != SPINE_OK)
		fail_msg("vector line %d (%s): decoding failed with %s", v->line,
			 v->chr, spine_err_name(err));

	for (size_t i = 0; i < v->nfields; i++) {
		const struct field *f = &v->fields[i];

		if (strcmp(v->chr, "crack") == 0) {
			if (strcmp(f->key, "seq") == 0) {
				check_int(v, f, c.seq);
			} else if (strcmp(f->key, "kind") == 0) {
				const char *name = spine_crack_kind_name(c.kind);

				if (!name || strcmp(name, f->value) != 0)
					fail_msg("vector line %d: kind decoded as %s, want %s",
						 v->line, name ? name : "(none)", f->value);
			} else if (strcmp(f->key, "intensity") == 0) {
				check_int(v, f, c.intensity);
			} else if (strcmp(f->key, "duration_ms") == 0) {
				check_int(v, f, c.duration_ms);
			} else if (strcmp(f->key, "count") == 0) {
				check_int(v, f, c.count);
			} else if (strcmp(f->key, "age_ms") == 0) {
				check_int(v, f, c.age_ms);
			} else {
				unknown_field(v, f);
			}
		} else {
			if (strcmp(f->key, "seq") == 0)
				check_int(v, f, p.seq);
			else if (strcmp(f->key, "x") == 0)
				check_int(v, f, p.x);
			else if (strcmp(f->key, "y") == 0)
				check_int(v, f, p.y);
			else if (strcmp(f->key, "z") == 0)
				check_int(v, f, p.z);
			else
				unknown_field(v, f);
		}
	}
}

static void test_spec_vectors(void **state)
{
	char *doc, *p, *end, *line_start;
	int line = 1, nvec = 0, nerr = 0, in_block = 0, closed = 0;
	int seen_posture = 0, seen_crack = 0, seen_microbit = 0;

	(void)state;
	doc = read_file(spec_path);
	if (!doc)
		fail_msg("cannot read %s: %s", spec_path, strerror(errno));

	for (p = doc; *p && !closed; p = end, line++) {
		struct vector v;

		line_start = p;
		end = strchr(p, '\n');
		if (end)
			*end++ = '\0';
		else
			end = p + strlen(p);
		{
			size_t n = strlen(line_start);

			if (n && line_start[n - 1] == '\r')
				line_start[n - 1] = '\0';
		}

		if (!in_block) {
			if (strcmp(line_start, "```vectors") == 0)
				in_block = 1;
			continue;
		}
		if (strncmp(line_start, "```", 3) == 0) {
			closed = 1;
			break;
		}
		if (strspn(line_start, " \t") == strlen(line_start))
			continue; /* blank line */

		parse_vector(line_start, line, &v);
		check_vector(&v);
		nvec++;
		nerr += v.error != NULL;
		seen_posture |= strcmp(v.chr, "posture") == 0;
		seen_crack |= strcmp(v.chr, "crack") == 0;
		seen_microbit |= strcmp(v.chr, "microbit") == 0;
	}
	free(doc);

	if (!in_block)
		fail_msg("%s has no ```vectors block", spec_path);
	if (!closed)
		fail_msg("%s: the ```vectors block is not closed", spec_path);
	if (nvec < MIN_VECTORS)
		fail_msg("%s: only %d vectors, want at least %d", spec_path, nvec,
			 MIN_VECTORS);
	assert_true(nerr > 0 && nerr < nvec);
	assert_true(seen_posture && seen_crack && seen_microbit);
	print_message("decoded %d vectors from %s (%d errors)\n", nvec, spec_path, nerr);
}

/* A well-formed payload of the given characteristic, 20 bytes long. */
static void valid_payload(uint8_t buf[20], int kind)
{
	static const uint8_t posture[] = { 1, 0x34, 0x12, 0x10, 0, 0x20, 0, 0xe8, 3 };
	static const uint8_t crack[] = { 1, 7, 0, 2, 50, 100, 0, 3, 10, 0 };

	memset(buf, 0xab, 20);
	if (kind == 0)
		memcpy(buf, posture, sizeof(posture));
	else if (kind == 1)
		memcpy(buf, crack, sizeof(crack));
}

static enum spine_err decode_kind(int kind, const uint8_t *buf, size_t len)
{
	struct spine_posture p;
	struct spine_crack c;

	if (kind == 0)
		return spine_posture_decode(buf, len, &p);
	if (kind == 1)
		return spine_crack_decode(buf, len, &c);
	return microbit_accel_decode(buf, len, &p);
}

static void test_short_lengths(void **state)
{
	static const size_t min_len[] = { SPINE_POSTURE_MIN_LEN, SPINE_CRACK_MIN_LEN,
					  MICROBIT_ACCEL_LEN };
	uint8_t full[20];

	(void)state;
	for (int kind = 0; kind < 3; kind++) {
		valid_payload(full, kind);
		for (size_t len = 0; len <= 20; len++) {
			/* heap copy of exactly len bytes: ASan sees over-reads */
			uint8_t *buf = malloc(len ? len : 1);
			enum spine_err err;
			int want_ok;

			assert_non_null(buf);
			memcpy(buf, full, len);
			err = decode_kind(kind, buf, len);
			free(buf);
			/* the micro:bit payload is exactly 6 bytes; ours are minimums */
			want_ok = kind == 2 ? len == MICROBIT_ACCEL_LEN : len >= min_len[kind];
			if (want_ok && err != SPINE_OK)
				fail_msg("kind %d len %zu: %s", kind, len, spine_err_name(err));
			if (!want_ok && err != SPINE_ERR_LENGTH)
				fail_msg("kind %d len %zu: %s, want length", kind, len,
					 spine_err_name(err));
		}
	}
}

/* Trailing bytes of a longer version 1 payload are ignored. */
static void test_trailing_bytes_ignored(void **state)
{
	uint8_t buf[20];
	struct spine_posture p, p0;
	struct spine_crack c, c0;

	(void)state;
	/* zeroed so that memory comparison is not fooled by padding */
	memset(&p, 0, sizeof(p));
	memset(&p0, 0, sizeof(p0));
	memset(&c, 0, sizeof(c));
	memset(&c0, 0, sizeof(c0));
	valid_payload(buf, 0);
	assert_int_equal(spine_posture_decode(buf, SPINE_POSTURE_MIN_LEN, &p0), SPINE_OK);
	assert_int_equal(spine_posture_decode(buf, sizeof(buf), &p), SPINE_OK);
	assert_int_equal(p.seq, 0x1234);
	assert_int_equal(p.x, 16);
	assert_int_equal(p.y, 32);
	assert_int_equal(p.z, 1000);
	assert_memory_equal(&p, &p0, sizeof(p));

	valid_payload(buf, 1);
	assert_int_equal(spine_crack_decode(buf, SPINE_CRACK_MIN_LEN, &c0), SPINE_OK);
	assert_int_equal(spine_crack_decode(buf, sizeof(buf), &c), SPINE_OK);
	assert_int_equal(c.seq, 7);
	assert_int_equal(c.kind, SPINE_CRACK_GRIND);
	assert_int_equal(c.intensity, 50);
	assert_int_equal(c.duration_ms, 100);
	assert_int_equal(c.count, 3);
	assert_int_equal(c.age_ms, 10);
	assert_memory_equal(&c, &c0, sizeof(c));
}

static void test_null_buffer(void **state)
{
	struct spine_posture p;
	struct spine_crack c;

	(void)state;
	assert_int_equal(spine_posture_decode(NULL, 0, &p), SPINE_ERR_LENGTH);
	assert_int_equal(spine_posture_decode(NULL, 20, &p), SPINE_ERR_LENGTH);
	assert_int_equal(spine_crack_decode(NULL, 0, &c), SPINE_ERR_LENGTH);
	assert_int_equal(spine_crack_decode(NULL, 20, &c), SPINE_ERR_LENGTH);
	assert_int_equal(microbit_accel_decode(NULL, 0, &p), SPINE_ERR_LENGTH);
	assert_int_equal(microbit_accel_decode(NULL, MICROBIT_ACCEL_LEN, &p),
			 SPINE_ERR_LENGTH);
}

static void test_seq_lost(void **state)
{
	(void)state;
	assert_int_equal(spine_seq_lost(10, 11), 0);     /* next in line */
	assert_int_equal(spine_seq_lost(10, 13), 2);
	assert_int_equal(spine_seq_lost(65535, 0), 0);   /* wrap */
	assert_int_equal(spine_seq_lost(65534, 1), 2);   /* lost across the wrap */
	assert_int_equal(spine_seq_lost(10, 10), 0);     /* duplicate */
	assert_int_equal(spine_seq_lost(1000, 10), 0);   /* big jump back: restart */
	assert_int_equal(spine_seq_lost(10, 9), 0);      /* one back */
	assert_int_equal(spine_seq_lost(0, 32768), 32767); /* largest counted */
	assert_int_equal(spine_seq_lost(0, 32769), 0);   /* too far: restart */
	assert_int_equal(spine_seq_lost(40000, 7000), 32535);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(spine_crack_kind_name(SPINE_CRACK_POP), "pop");
	assert_string_equal(spine_crack_kind_name(SPINE_CRACK_CLICK), "click");
	assert_string_equal(spine_crack_kind_name(SPINE_CRACK_GRIND), "grind");
	assert_null(spine_crack_kind_name((enum spine_crack_kind)3));
	assert_null(spine_crack_kind_name((enum spine_crack_kind)-1));

	assert_string_equal(spine_err_name(SPINE_OK), "ok");
	assert_string_equal(spine_err_name(SPINE_ERR_LENGTH), "length");
	assert_string_equal(spine_err_name(SPINE_ERR_VERSION), "version");
	assert_string_equal(spine_err_name(SPINE_ERR_KIND), "kind");
	assert_string_equal(spine_err_name(SPINE_ERR_INTENSITY), "intensity");
	assert_string_equal(spine_err_name(SPINE_ERR_COUNT), "count");
	assert_non_null(spine_err_name((enum spine_err)99));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_vectors),
		cmocka_unit_test(test_short_lengths),
		cmocka_unit_test(test_trailing_bytes_ignored),
		cmocka_unit_test(test_null_buffer),
		cmocka_unit_test(test_seq_lost),
		cmocka_unit_test(test_names),
	};

	if (argc > 1)
		spec_path = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
