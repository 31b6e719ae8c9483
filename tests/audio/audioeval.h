/*
 * audioeval.h - scoring the audio crack detector against audiogen's labels:
 * runs the detector over a stream frame by frame (as the daemon does),
 * matches its crack reports to the labels and counts, per crack kind (pop,
 * click, grind), true positives, false positives and misses, and the CPU
 * time the detector took.
 *
 * Matching: a report of kind K matches the first unmatched label of K's
 * classes (pop: AG_POP and AG_BURST; click; grind) whose span, widened by
 * 50 ms before and 150 ms after, holds the report's onset. Anything else of
 * kind K is a false positive for K (on a distractor, on silence, a second
 * report for one label, the wrong kind); a label of K's classes left
 * unmatched is a miss.
 */
#ifndef SW_AUDIOEVAL_H
#define SW_AUDIOEVAL_H

#include <stddef.h>
#include <stdint.h>

#include "audiogen.h"

struct ae_counts {
	unsigned tp, fp, fn;
};

struct ae_result {
	struct ae_counts kind[3];   /* enum spine_crack_kind: pop, click, grind */
	unsigned fp_on[AG_CLASSES]; /* false positives by the segment they fell in */
	double cpu_s;               /* detector CPU time */
	double audio_s;             /* audio length */
};

/* Runs the detector over pcm[n] (in 256-sample frames) and scores it. */
void ae_run(const int16_t *pcm, size_t n, const struct ag_label *labels, size_t nlabels,
	    struct ae_result *res);

double ae_precision(const struct ae_counts *c);
double ae_recall(const struct ae_counts *c);
double ae_f1(const struct ae_counts *c);

#endif
