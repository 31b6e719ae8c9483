/*
 * test_audio_cracks.c - unit tests for daemon/audio_cracks.c, the host's
 * crack detector for audio streams: on a fixed labelled set made at test time
 * by tests/audio/audiogen.c (seeded: pops and pop bursts, clicks, grinding,
 * typing, speech-like sound, footsteps and silence, through the Thingy:52
 * ADPCM framing) it fails if F1 drops below the targets (pop 0.95 at 10 dB
 * SNR and 0.85 at 0 dB, grind 0.85 at 10 dB); the reports' fields against
 * the labels; lost audio; hostile input and bounded memory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "audio_cracks.h"
#include "../audio/audioeval.h"
#include "../audio/audiogen.h"

#define SEED 20261202
#define PER_CLASS 10

/* One SNR over two event levels, summed. */
static void run_set(double snr, struct ae_result *sum)
{
	static const double levels[] = { -40.0, -20.0 };

	memset(sum, 0, sizeof(*sum));
	for (unsigned l = 0; l < 2; l++) {
		struct ag_config cfg = {
			.seed = SEED + l + (unsigned)snr * 10, .snr_db = snr, .level_dbfs = levels[l],
			.per_class = PER_CLASS, .adpcm = 1,
		};
		size_t n = ag_samples(&cfg), nl;
		int16_t *pcm = malloc(n * sizeof(*pcm));
		struct ag_label *labels = malloc(AG_CLASSES * PER_CLASS * sizeof(*labels));
		struct ae_result r;

		assert_non_null(pcm);
		assert_non_null(labels);
		nl = ag_make(&cfg, pcm, labels);
		assert_int_equal(nl, AG_CLASSES * PER_CLASS);
		ae_run(pcm, n, labels, nl, &r);
		for (int k = 0; k < 3; k++) {
			sum->kind[k].tp += r.kind[k].tp;
			sum->kind[k].fp += r.kind[k].fp;
			sum->kind[k].fn += r.kind[k].fn;
		}
		for (int c = 0; c < AG_CLASSES; c++)
			sum->fp_on[c] += r.fp_on[c];
		free(pcm);
		free(labels);
	}
	printf("  %g dB SNR: pop F1 %.3f (%u/%u/%u), click F1 %.3f, grind F1 %.3f (%u/%u/%u); "
	       "false positives on typing %u, speech %u, footsteps %u, silence %u\n", snr,
	       ae_f1(&sum->kind[SPINE_CRACK_POP]), sum->kind[0].tp, sum->kind[0].fp,
	       sum->kind[0].fn, ae_f1(&sum->kind[SPINE_CRACK_CLICK]),
	       ae_f1(&sum->kind[SPINE_CRACK_GRIND]), sum->kind[2].tp, sum->kind[2].fp,
	       sum->kind[2].fn, sum->fp_on[AG_TYPING], sum->fp_on[AG_SPEECH],
	       sum->fp_on[AG_FOOTSTEPS], sum->fp_on[AG_SILENCE]);
}

static void test_f1_at_10db(void **state)
{
	struct ae_result r;

	(void)state;
	run_set(10.0, &r);
	assert_true(r.kind[SPINE_CRACK_POP].tp >= 30);   /* the set has 40 pop labels */
	assert_true(ae_f1(&r.kind[SPINE_CRACK_POP]) >= 0.95);
	assert_true(ae_f1(&r.kind[SPINE_CRACK_GRIND]) >= 0.85);
	/* distractors: typing, speech and footsteps are not cracks */
	assert_true(r.fp_on[AG_TYPING] + r.fp_on[AG_SPEECH] + r.fp_on[AG_FOOTSTEPS] <= 2);
}

static void test_f1_at_0db(void **state)
{
	struct ae_result r;

	(void)state;
	run_set(0.0, &r);
	assert_true(ae_f1(&r.kind[SPINE_CRACK_POP]) >= 0.85);
}

/* Each report against its label: kind, onset, count, level, duration. */
static void test_report_fields(void **state)
{
	struct ag_config cfg = { .seed = 5, .snr_db = 20.0, .level_dbfs = -20.0, .per_class = 3 };
	size_t n = ag_samples(&cfg), nl, i;
	int16_t *pcm = malloc(n * sizeof(*pcm));
	struct ag_label labels[AG_CLASSES * 3];
	struct audio_cracks *d = malloc(sizeof(*d));
	struct audio_crack c;
	unsigned seen[AG_CLASSES] = { 0 };

	(void)state;
	assert_non_null(pcm);
	assert_non_null(d);
	nl = ag_make(&cfg, pcm, labels);
	audio_cracks_init(d);
	for (size_t off = 0; off < n; off += 256) {
		audio_cracks_feed(d, pcm + off, n - off < 256 ? n - off : 256);
		while (audio_cracks_next(d, &c)) {
			for (i = 0; i < nl; i++)
				if (c.onset + 800 >= labels[i].start && c.onset <= labels[i].end + 2400)
					break;
			assert_true(i < nl);   /* nothing but the events at 20 dB */
			seen[labels[i].cls]++;
			switch (labels[i].cls) {
			case AG_POP:
			case AG_BURST:
				assert_int_equal(c.kind, SPINE_CRACK_POP);
				assert_true(c.count >= 1 && c.count <= labels[i].pops);
				/* the loudest 2 ms of a 5 ms pop at -20 dBFS RMS (bursts +-3 dB) */
				assert_true(c.dbfs > -24.0 && c.dbfs < -12.0);
				assert_true(c.duration_ms <= (labels[i].end - labels[i].start) / 16 + 10);
				assert_true(c.freq_hz >= 1000 && c.freq_hz < 8000);
				break;
			case AG_CLICK:
				assert_int_equal(c.kind, SPINE_CRACK_CLICK);
				assert_int_equal(c.count, 1);
				/* the synthetic clicks ring at 1.2-3.5 kHz */
				assert_true(c.freq_hz >= 1000 && c.freq_hz <= 3750);
				break;
			case AG_GRIND: {
				double want = (double)(labels[i].end - labels[i].start) / 16.0;

				assert_int_equal(c.kind, SPINE_CRACK_GRIND);
				assert_true(fabs((double)c.duration_ms - want) < 0.35 * want);
				assert_true(c.freq_hz < 500);
				assert_true(c.dbfs > -30.0 && c.dbfs < -14.0);
				break;
			}
			default:
				fail_msg("a %s report on %s", spine_crack_kind_name(c.kind),
					 ag_class_name(labels[i].cls));
			}
			assert_true(audio_cracks_intensity(c.dbfs) <= 100);
		}
	}
	assert_int_equal(seen[AG_POP] + seen[AG_BURST], 6);
	assert_int_equal(seen[AG_CLICK], 3);
	assert_int_equal(seen[AG_GRIND], 3);
	free(pcm);
	free(d);
}

static double tone_noise(uint32_t *rng, size_t i)
{
	*rng = *rng * 1664525u + 1013904223u;
	return 6000.0 * sin(2.0 * M_PI * 180.0 * (double)i / 16000.0) +
	       (double)((int32_t)(*rng >> 16) - 32768) / 200.0;
}

/* A lost frame makes the waveform jump; that is not a crack. */
static void test_gap(void **state)
{
	struct audio_cracks *d = malloc(sizeof(*d));
	int16_t frame[256];
	struct audio_crack c;
	uint32_t rng = 1;
	size_t i = 0;

	(void)state;
	assert_non_null(d);
	audio_cracks_init(d);
	for (int f = 0; f < 400; f++) {
		if (f % 50 == 25) {   /* a frame lost: its samples are never fed */
			audio_cracks_gap(d, 256);
			i += 256 + 37;   /* and the tone's phase jumps */
		}
		for (int k = 0; k < 256; k++)
			frame[k] = (int16_t)tone_noise(&rng, i++);
		audio_cracks_feed(d, frame, 256);
	}
	audio_cracks_flush(d);
	assert_false(audio_cracks_next(d, &c));
	assert_int_equal(d->stats.gaps, 8);
	assert_int_equal(d->pos, 400 * 256 + 8 * 256);
	free(d);
}

/* Whatever comes in: full scale, square waves, silence then a blast, noise:
 * no crash, bounded results with valid fields. */
static void test_hostile_input(void **state)
{
	struct audio_cracks *d = malloc(sizeof(*d));
	int16_t buf[1000];
	struct audio_crack c;
	uint32_t rng = 7;
	unsigned reports = 0;

	(void)state;
	assert_non_null(d);
	/* memory is the struct, fixed */
	assert_true(sizeof(*d) < 64 * 1024);
	audio_cracks_init(d);
	for (int round = 0; round < 200; round++) {
		size_t n = (size_t)(round * 37 % 1000) + 1;

		for (size_t k = 0; k < n; k++) {
			rng = rng * 1664525u + 1013904223u;
			switch (round % 5) {
			case 0: buf[k] = 0; break;
			case 1: buf[k] = (k / 3) % 2 ? INT16_MAX : INT16_MIN; break;
			case 2: buf[k] = (int16_t)(rng >> 16); break;
			case 3: buf[k] = INT16_MIN; break;
			default: buf[k] = (int16_t)((rng >> 16) % 64); break;
			}
		}
		audio_cracks_feed(d, buf, n);
		if (round % 17 == 0)
			audio_cracks_gap(d, 256);
		while (audio_cracks_next(d, &c)) {
			reports++;
			assert_true(c.kind == SPINE_CRACK_POP || c.kind == SPINE_CRACK_CLICK ||
				    c.kind == SPINE_CRACK_GRIND);
			assert_true(c.count >= 1 && c.count <= AUDIO_CRACKS_CLUSTER_MAX);
			assert_true(c.dbfs <= 0.5 && isfinite(c.dbfs));
			assert_true(c.freq_hz <= 8000);
			assert_true(c.onset <= d->pos);
		}
	}
	audio_cracks_feed(d, NULL, 0);
	audio_cracks_flush(d);
	while (audio_cracks_next(d, &c))
		reports++;
	assert_true(d->stats.reports >= reports);
	assert_int_equal(audio_cracks_intensity(0.0), 100);
	assert_int_equal(audio_cracks_intensity(3.0), 100);
	assert_int_equal(audio_cracks_intensity(-60.0), 40);
	assert_int_equal(audio_cracks_intensity(-150.0), 0);
	assert_int_equal(audio_cracks_intensity(NAN), 0);
	free(d);
}

/* Results not drained are counted, never written past the queue. */
static void test_queue_overflow(void **state)
{
	struct audio_cracks *d = malloc(sizeof(*d));
	struct ag_config cfg = { .seed = 9, .snr_db = 20.0, .level_dbfs = -20.0, .per_class = 3 };
	size_t n = ag_samples(&cfg);
	int16_t *pcm = malloc(n * sizeof(*pcm));
	struct ag_label labels[AG_CLASSES * 3];
	struct audio_crack c;
	unsigned got = 0;

	(void)state;
	assert_non_null(d);
	assert_non_null(pcm);
	ag_make(&cfg, pcm, labels);
	audio_cracks_init(d);
	audio_cracks_feed(d, pcm, n);   /* 12 cracks, never drained until the end */
	audio_cracks_flush(d);
	while (audio_cracks_next(d, &c))
		got++;
	assert_int_equal(got, AUDIO_CRACKS_QUEUE_MAX);
	assert_int_equal(d->stats.overflow, d->stats.reports - AUDIO_CRACKS_QUEUE_MAX);
	free(pcm);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_f1_at_10db),
		cmocka_unit_test(test_f1_at_0db),
		cmocka_unit_test(test_report_fields),
		cmocka_unit_test(test_gap),
		cmocka_unit_test(test_hostile_input),
		cmocka_unit_test(test_queue_overflow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
