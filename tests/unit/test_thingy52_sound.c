/*
 * test_thingy52_sound.c - unit tests for protocol/thingy52_sound.c (Thingy:52
 * Microphone ADPCM frames and Sound Configuration): every vector of
 * thingy52-sound.md (its ```vectors block, read from the document), the
 * frames sox encoded and decoded (tests/unit/vectors/thingy52_sound_sox.txt,
 * made by tests/audio/make_sox_vectors.py), frame continuity and loss
 * counting, and hostile bytes.
 *
 * Usage: test_thingy52_sound [thingy52-sound.md [sox vectors]]
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "thingy52_sound.h"
#include "spec_text.h"

static const char *spec_path = "protocol/thingy52-sound.md";
static const char *sox_path = "tests/unit/vectors/thingy52_sound_sox.txt";


/* "ab" or "abxN" -> bytes appended; false if the token is not one. */
static bool hex_token(const char *tok, uint8_t *out, size_t *len, size_t max)
{
	int hi = hex_digit(tok[0]), lo = hi < 0 ? -1 : hex_digit(tok[1]);
	long rep = 1;

	if (hi < 0 || lo < 0)
		return false;
	if (tok[2] == 'x')
		rep = strtol(tok + 3, NULL, 10);
	else if (tok[2])
		return false;
	while (rep-- > 0 && *len < max)
		out[(*len)++] = (uint8_t)(hi << 4 | lo);
	return true;
}

/* The value of key= among the tokens after "=>", or NULL. */
static const char *field(char *const *toks, int n, const char *key)
{
	size_t k = strlen(key);

	for (int i = 0; i < n; i++)
		if (!strncmp(toks[i], key, k) && toks[i][k] == '=')
			return toks[i] + k + 1;
	return NULL;
}

static void run_vector(char *line, int lineno, unsigned *count)
{
	char *toks[64], *save = NULL, *t;
	int n = 0, arrow = -1;
	uint8_t in[300];
	size_t len = 0;
	const char *err;

	for (t = strtok_r(line, " \t", &save); t && n < 64; t = strtok_r(NULL, " \t", &save)) {
		if (!strcmp(t, "=>"))
			arrow = n;
		toks[n++] = t;
	}
	if (n == 0)
		return;
	assert_true(arrow > 0);
	for (int i = 1; i < arrow; i++)
		assert_true(hex_token(toks[i], in, &len, sizeof(in)));
	err = field(toks + arrow + 1, n - arrow - 1, "error");
	if (!strcmp(toks[0], "mic")) {
		int16_t pcm[THINGY52_MIC_SAMPLES];
		enum thingy52_sound_err e = thingy52_mic_decode(NULL, len ? in : NULL, len, pcm, NULL);

		if (err) {
			assert_string_equal(thingy52_sound_err_name(e), err);
		} else {
			assert_int_equal(e, THINGY52_SOUND_OK);
			for (int i = arrow + 1; i < n; i++) {
				int idx, v;

				assert_int_equal(sscanf(toks[i], "s%d=%d", &idx, &v), 2);
				assert_true(idx >= 0 && idx < THINGY52_MIC_SAMPLES);
				if (pcm[idx] != v)
					fail_msg("line %d: s%d is %d, want %d", lineno, idx, pcm[idx], v);
			}
		}
	} else if (!strcmp(toks[0], "config")) {
		struct thingy52_sound_config c;
		enum thingy52_sound_err e = thingy52_sound_config_decode(in, len, &c);
		const char *w = field(toks + arrow + 1, n - arrow - 1, "write");
		uint8_t out[THINGY52_SOUND_CONFIG_LEN];
		char hex[8];

		assert_string_equal(thingy52_sound_err_name(e), err ? err : "ok");
		if (!err) {
			assert_int_equal(c.speaker_mode, atoi(field(toks + arrow + 1, n - arrow - 1,
								    "speaker_mode")));
			assert_int_equal(c.mic_mode, atoi(field(toks + arrow + 1, n - arrow - 1,
								"mic_mode")));
			/* a valid configuration encodes back to its bytes */
			assert_int_equal(thingy52_sound_config_encode(&c, out), THINGY52_SOUND_OK);
			assert_memory_equal(out, in, 2);
		}
		if (w) {
			thingy52_sound_config_for_adpcm(&c);
			assert_int_equal(thingy52_sound_config_encode(&c, out), THINGY52_SOUND_OK);
			snprintf(hex, sizeof(hex), "%02x%02x", out[0], out[1]);
			assert_string_equal(hex, w);
		}
	} else {
		fail_msg("line %d: unknown vector kind %s", lineno, toks[0]);
	}
	(*count)++;
}

static void test_spec_vectors(void **state)
{
	char *doc = read_file(spec_path), *p, *end, *line, *save = NULL;
	unsigned count = 0;
	int lineno = 0;

	(void)state;
	assert_non_null(doc);
	p = strstr(doc, "```vectors\n");
	assert_non_null(p);
	p += strlen("```vectors\n");
	end = strstr(p, "```");
	assert_non_null(end);
	*end = '\0';
	for (line = strtok_r(p, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		run_vector(line, ++lineno, &count);
	assert_true(count >= 15);
	free(doc);
}

/* Every sox frame decodes to exactly what sox decoded. */
static void test_sox_vectors(void **state)
{
	char *doc = read_file(sox_path), *line, *save = NULL;
	uint8_t frame[THINGY52_MIC_FRAME_LEN];
	int16_t pcm[THINGY52_MIC_SAMPLES];
	char name[64] = "";
	unsigned frames = 0;
	bool have = false;

	(void)state;
	assert_non_null(doc);
	for (line = strtok_r(doc, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "frame ", 6)) {
			char *hex = strchr(line + 6, ' ');
			size_t i;

			assert_non_null(hex);
			snprintf(name, sizeof(name), "%.*s", (int)(hex - line - 6), line + 6);
			hex++;
			assert_int_equal(strlen(hex), 2 * THINGY52_MIC_FRAME_LEN);
			for (i = 0; i < THINGY52_MIC_FRAME_LEN; i++)
				frame[i] = (uint8_t)(hex_digit(hex[2 * i]) << 4 | hex_digit(hex[2 * i + 1]));
			assert_int_equal(thingy52_mic_decode(NULL, frame, sizeof(frame), pcm, NULL),
					 THINGY52_SOUND_OK);
			have = true;
		} else if (!strncmp(line, "pcm ", 4)) {
			char *p = line + 4, *q;
			int i;

			assert_true(have);
			for (i = 0; i < THINGY52_MIC_SAMPLES; i++) {
				long v = strtol(p, &q, 10);

				assert_true(q != p);
				if (v != pcm[i])
					fail_msg("sox frame %s: sample %d is %d, sox says %ld", name, i,
						 pcm[i], v);
				p = q;
			}
			frames++;
			have = false;
		}
	}
	assert_true(frames >= 16);
	free(doc);
}

/* Encode with the reference encoder's decisions (quantise the difference to
 * the code whose reconstruction is nearest), so continuity can be tested on
 * our own stream. */
static void encode_frame(int16_t *pred, uint8_t *index, const int16_t *pcm, uint8_t *out)
{
	out[0] = (uint8_t)((uint16_t)*pred >> 8);
	out[1] = (uint8_t)((uint16_t)*pred & 0xff);
	out[2] = *index;
	for (int i = 0; i < THINGY52_MIC_SAMPLES; i++) {
		unsigned best = 0;
		int bestd = 1 << 30;

		for (unsigned c = 0; c < 16; c++) {
			int16_t p = *pred;
			uint8_t ix = *index;
			int d = abs(thingy52_adpcm_step(&p, &ix, c) - pcm[i]);

			if (d < bestd) {
				bestd = d;
				best = c;
			}
		}
		thingy52_adpcm_step(pred, index, best);
		if (i % 2 == 0)
			out[3 + i / 2] = (uint8_t)(best << 4);
		else
			out[3 + i / 2] |= (uint8_t)best;
	}
}

static void test_continuity_and_loss(void **state)
{
	struct thingy52_adpcm st;
	uint8_t frames[6][THINGY52_MIC_FRAME_LEN];
	int16_t pcm[THINGY52_MIC_SAMPLES], out[THINGY52_MIC_SAMPLES];
	int16_t pred = 0;
	uint8_t index = 0;
	bool lost;
	uint32_t rng = 12345;

	(void)state;
	for (int f = 0; f < 6; f++) {
		for (int i = 0; i < THINGY52_MIC_SAMPLES; i++) {
			rng = rng * 1103515245u + 12345u;
			pcm[i] = (int16_t)(((int)(rng >> 16) & 0x3fff) - 0x2000);
		}
		encode_frame(&pred, &index, pcm, frames[f]);
	}
	thingy52_adpcm_reset(&st);
	for (int f = 0; f < 3; f++) {
		assert_int_equal(thingy52_mic_decode(&st, frames[f], THINGY52_MIC_FRAME_LEN, out, &lost),
				 THINGY52_SOUND_OK);
		assert_false(lost);
	}
	/* frame 3 lost: frame 4 does not continue frame 2 */
	assert_int_equal(thingy52_mic_decode(&st, frames[4], THINGY52_MIC_FRAME_LEN, out, &lost),
			 THINGY52_SOUND_OK);
	assert_true(lost);
	assert_int_equal(st.discontinuities, 1);
	assert_int_equal(thingy52_mic_decode(&st, frames[5], THINGY52_MIC_FRAME_LEN, out, &lost),
			 THINGY52_SOUND_OK);
	assert_false(lost);
	assert_int_equal(st.frames, 5);
	/* a bad frame changes nothing and is not a loss by itself */
	frames[0][2] = 89;
	assert_int_equal(thingy52_mic_decode(&st, frames[0], THINGY52_MIC_FRAME_LEN, out, &lost),
			 THINGY52_SOUND_ERR_STEP_INDEX);
	assert_false(lost);
	assert_int_equal(st.frames, 5);
	assert_int_equal(st.discontinuities, 1);
	/* after a reset the first frame is never a loss */
	thingy52_adpcm_reset(&st);
	assert_int_equal(thingy52_mic_decode(&st, frames[2], THINGY52_MIC_FRAME_LEN, out, &lost),
			 THINGY52_SOUND_OK);
	assert_false(lost);
}

/* Any bytes of any length: an error or 256 samples, never a crash. */
static void test_hostile(void **state)
{
	uint8_t buf[300];
	int16_t out[THINGY52_MIC_SAMPLES];
	struct thingy52_adpcm st;
	uint32_t rng = 99;
	unsigned ok = 0, bad_index = 0;

	(void)state;
	thingy52_adpcm_reset(&st);
	for (int n = 0; n < 2000; n++) {
		size_t len = n % 7 ? THINGY52_MIC_FRAME_LEN : (size_t)(n % 300);

		for (size_t i = 0; i < sizeof(buf); i++) {
			rng = rng * 1664525u + 1013904223u;
			buf[i] = (uint8_t)(rng >> 24);
		}
		switch (thingy52_mic_decode(&st, buf, len, out, NULL)) {
		case THINGY52_SOUND_OK: ok++; break;
		case THINGY52_SOUND_ERR_STEP_INDEX: bad_index++; break;
		case THINGY52_SOUND_ERR_LENGTH: assert_int_not_equal(len, THINGY52_MIC_FRAME_LEN); break;
		default: fail();
		}
	}
	assert_true(ok > 0 && bad_index > 0);
	assert_string_equal(thingy52_sound_err_name((enum thingy52_sound_err)77), "unknown");
	/* an out-of-range index passed to the step itself is clamped, not read past */
	{
		int16_t p = 0;
		uint8_t ix = 200;

		thingy52_adpcm_step(&p, &ix, 7);
		assert_true(ix <= THINGY52_ADPCM_INDEX_MAX);
	}
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_vectors),
		cmocka_unit_test(test_sox_vectors),
		cmocka_unit_test(test_continuity_and_loss),
		cmocka_unit_test(test_hostile),
	};

	if (argc > 1)
		spec_path = argv[1];
	if (argc > 2)
		sox_path = argv[2];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
