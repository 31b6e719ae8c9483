/*
 * audioeval.c - runs the audio crack detector over a labelled stream and
 * scores it (see audioeval.h).
 */
#include "audioeval.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audio_cracks.h"

#define BEFORE (16000 / 1000 * 50)
#define AFTER (16000 / 1000 * 150)

static bool kind_of(enum ag_class c, enum spine_crack_kind k)
{
	switch (k) {
	case SPINE_CRACK_POP: return c == AG_POP || c == AG_BURST;
	case SPINE_CRACK_CLICK: return c == AG_CLICK;
	case SPINE_CRACK_GRIND: return c == AG_GRIND;
	}
	return false;
}

static void score(const struct audio_crack *c, const struct ag_label *labels, size_t nl,
		  bool *matched, struct ae_result *res)
{
	size_t i;

	if (getenv("AE_DEBUG"))
		fprintf(stderr, "report %s at %.3f s, %u ms, %.1f dBFS, %u Hz, count %u\n",
			spine_crack_kind_name(c->kind), (double)c->onset / 16000.0, c->duration_ms,
			c->dbfs, c->freq_hz, c->count);
	if ((unsigned)c->kind > SPINE_CRACK_GRIND)
		return;
	for (i = 0; i < nl; i++) {
		const struct ag_label *l = &labels[i];

		if (!matched[i] && kind_of(l->cls, c->kind) && c->onset + BEFORE >= l->start &&
		    c->onset <= l->end + AFTER) {
			matched[i] = true;
			res->kind[c->kind].tp++;
			return;
		}
	}
	res->kind[c->kind].fp++;
	for (i = 0; i < nl; i++)
		if (c->onset >= labels[i].seg_start && c->onset < labels[i].seg_end) {
			res->fp_on[labels[i].cls]++;
			if (getenv("AE_DEBUG"))
				fprintf(stderr, "  false positive on %s %.3f-%.3f s\n",
					ag_class_name(labels[i].cls), (double)labels[i].start / 16000.0,
					(double)labels[i].end / 16000.0);
		}
}

void ae_run(const int16_t *pcm, size_t n, const struct ag_label *labels, size_t nl,
	    struct ae_result *res)
{
	struct audio_cracks *d = malloc(sizeof(*d));
	bool *matched = calloc(nl ? nl : 1, sizeof(bool));
	struct audio_crack c;
	struct timespec t0, t1;
	size_t i;

	memset(res, 0, sizeof(*res));
	if (!d || !matched) {
		free(d);
		free(matched);
		return;
	}
	audio_cracks_init(d);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
	for (i = 0; i < n; i += 256) {
		audio_cracks_feed(d, pcm + i, n - i < 256 ? n - i : 256);
		while (audio_cracks_next(d, &c))
			score(&c, labels, nl, matched, res);
	}
	audio_cracks_flush(d);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
	while (audio_cracks_next(d, &c))
		score(&c, labels, nl, matched, res);
	if (getenv("AE_DEBUG"))
		for (i = 0; i < nl; i++)
			fprintf(stderr, "label %s %.3f-%.3f s%s\n", ag_class_name(labels[i].cls),
				(double)labels[i].start / 16000.0, (double)labels[i].end / 16000.0,
				matched[i] ? " matched" : "");
	for (i = 0; i < nl; i++)
		for (int k = 0; k <= SPINE_CRACK_GRIND; k++)
			if (!matched[i] && kind_of(labels[i].cls, (enum spine_crack_kind)k))
				res->kind[k].fn++;
	res->cpu_s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	res->audio_s = (double)n / 16000.0;
	free(d);
	free(matched);
}

double ae_precision(const struct ae_counts *c)
{
	return c->tp + c->fp ? (double)c->tp / (double)(c->tp + c->fp) : 1.0;
}

double ae_recall(const struct ae_counts *c)
{
	return c->tp + c->fn ? (double)c->tp / (double)(c->tp + c->fn) : 1.0;
}

double ae_f1(const struct ae_counts *c)
{
	double p = ae_precision(c), r = ae_recall(c);

	return p + r > 0 ? 2.0 * p * r / (p + r) : 0.0;
}
