/*
 * audiogen.h - labelled synthetic audio for the audio crack detector's tests
 * and benchmark (16 kHz mono int16): pops, pop bursts, clicks, grinding,
 * typing, speech-like sound, footsteps and silence over a continuous
 * background (pink noise with a white floor), at a given signal-to-noise
 * ratio, deterministic for a seed; and an IMA ADPCM encoder so the stream
 * can pass through the Thingy:52 framing as a real one would.
 *
 * Levels: an event's level is the RMS over its active part (a pop's 5 ms, a
 * click's 6 ms, a keystroke's 5 ms, a footstep's 80 ms, a grind's or a
 * syllable's whole length) in dBFS; the background's RMS is level - SNR.
 */
#ifndef SW_AUDIOGEN_H
#define SW_AUDIOGEN_H

#include <stddef.h>
#include <stdint.h>

enum ag_class {
	AG_POP = 0,        /* one pop */
	AG_BURST,          /* 2-9 pops within 150 ms: one crack */
	AG_CLICK,
	AG_GRIND,
	AG_TYPING,
	AG_SPEECH,
	AG_FOOTSTEPS,
	AG_SILENCE,
	AG_CLASSES,
};

struct ag_label {
	enum ag_class cls;
	uint64_t start, end;   /* the event, samples */
	uint64_t seg_start, seg_end;  /* its segment */
	unsigned pops;         /* AG_POP 1, AG_BURST 2-9 */
};

struct ag_config {
	uint64_t seed;
	double snr_db;
	double level_dbfs;     /* events' level */
	unsigned per_class;    /* segments of each class */
	double segment_s;      /* length of a segment (default 2.5) */
	int adpcm;             /* pass through IMA ADPCM (Thingy framing) */
};

/* Samples a stream of cfg needs. */
size_t ag_samples(const struct ag_config *cfg);
/*
 * Fills pcm[ag_samples(cfg)] and labels[AG_CLASSES * per_class] (the
 * segments in a shuffled order); returns the number of labels.
 */
size_t ag_make(const struct ag_config *cfg, int16_t *pcm, struct ag_label *labels);

/* "pop", "burst", "click", ... */
const char *ag_class_name(enum ag_class c);

/*
 * IMA ADPCM encoding of one Thingy:52 frame (256 samples -> 131 bytes),
 * carrying the encoder state in *pred, *index.
 */
void ag_adpcm_encode_frame(int16_t *pred, uint8_t *index, const int16_t *pcm, uint8_t *out);

#endif
