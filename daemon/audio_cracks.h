/*
 * audio_cracks.h - hearing cracks in a sound sensor's audio stream (16 kHz
 * mono, e.g. a Thingy:52 microphone): a streaming detector with fixed memory
 * and a bounded cost per sample, whose results are crack reports (pop, click
 * or grind with a level in dBFS, a duration, a pop count and a dominant
 * frequency) for the crack episode path (cracks.h). Pure logic: no I/O, no
 * clock, no allocation; time is the sample count.
 *
 * How it listens (after a DC blocker, -3 dB at about 20 Hz):
 *  - Transients (pops, clicks): the energy above 1 kHz in 2 ms windows,
 *    every 1 ms, against an adaptive noise floor (the mean of the windows
 *    that are not outliers, falling fast and rising slowly). A transient
 *    starts AUDIO_CRACKS_WEAK_DB above the floor and ends below
 *    AUDIO_CRACKS_OFF_DB; only one that peaks AUDIO_CRACKS_ON_DB above it can
 *    be a crack, a weaker one (a keystroke lost in the noise) only makes a
 *    cluster longer. Short ones (at most AUDIO_CRACKS_SHORT_MS) are
 *    classified from a 128-point spectrum of 8 ms from their onset: energy
 *    spread over 1-8 kHz is a pop, energy in a narrow peak a click.
 *  - Bursts and trains: transients less than AUDIO_CRACKS_QUIET_MS apart
 *    form a cluster. A cluster spanning at most AUDIO_CRACKS_BURST_MS of
 *    short transients is one crack: a pop (the pops summed) or a click. A
 *    longer cluster (typing, tapping, footsteps, speech) or one with a long
 *    transient (speech, rustle) is not a crack. So a crack is reported
 *    AUDIO_CRACKS_QUIET_MS after its last transient.
 *    A transient with little of its energy above 1 kHz (a footstep's thump,
 *    whose heel strike or ADPCM quantisation noise reaches the high band, a
 *    voiced syllable) is no crack, nor is a cluster it belongs to.
 *  - Grinding: the energy below 500 Hz in 32 ms windows every 8 ms, against
 *    its median and 95th percentile while nothing happens (the background
 *    below 500 Hz is anything but steady); windows well above both, with
 *    most of the excess energy below 500 Hz, make a segment (holes up to
 *    40 ms). A segment of 300 ms to 4 s that is not
 *    voiced (a periodicity check for 100-400 Hz: speech and hum are
 *    periodic, grinding is rough) is a grind, reported when it ends.
 *  - Lost audio (audio_cracks_gap()): the clock skips, and onsets are
 *    ignored for a few ms after it (the jump in the waveform is a click).
 */
#ifndef SW_AUDIO_CRACKS_H
#define SW_AUDIO_CRACKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spine_profile.h"

#define AUDIO_CRACKS_RATE_HZ 16000
#define AUDIO_CRACKS_ON_DB 6.0       /* a crack's transient peaks this far above the floor */
#define AUDIO_CRACKS_WEAK_DB 5.0     /* a weaker one still counts towards a train */
#define AUDIO_CRACKS_OFF_DB 2.0      /* transient end */
#define AUDIO_CRACKS_SHORT_MS 20     /* longest pop or click */
#define AUDIO_CRACKS_QUIET_MS 350    /* a cluster ends after this much quiet */
#define AUDIO_CRACKS_BURST_MS 250    /* the longest cluster that is one crack */
#define AUDIO_CRACKS_CLUSTER_MAX 16  /* transients in a cluster; more is a train */
#define AUDIO_CRACKS_GRIND_MIN_MS 300
#define AUDIO_CRACKS_GRIND_MAX_MS 4000
#define AUDIO_CRACKS_QUEUE_MAX 8     /* results held until audio_cracks_next() */

#define AUDIO_CRACKS_RING 1024       /* raw samples kept (64 ms) */
#define AUDIO_CRACKS_LF_RING 128     /* 500 Hz band decimated to 4 kHz (32 ms) */
#define AUDIO_CRACKS_FFT 256

struct audio_crack {
	uint64_t onset;              /* sample index of the onset */
	enum spine_crack_kind kind;
	double dbfs;                 /* pop, click: the loudest 2 ms; grind: the mean */
	unsigned duration_ms;
	unsigned count;              /* pops in a burst; 1 for a click or a grind */
	unsigned freq_hz;            /* dominant frequency */
};

struct audio_biquad {
	double b0, b1, b2, a1, a2;
	double z1, z2;
};

struct audio_transient {
	uint64_t onset, end;         /* samples */
	double peak;                 /* loudest 2 ms, broadband, sum of squares */
	double hf_peak;              /* largest 2 ms energy above 1 kHz over the floor */
	bool long_;                  /* longer than AUDIO_CRACKS_SHORT_MS */
	bool lowfreq;                /* too little of it above 1 kHz */
	bool weak;                   /* peaked below AUDIO_CRACKS_ON_DB */
	bool click;                  /* narrow spectral peak */
	unsigned freq_hz;
};

struct audio_cracks_stats {
	uint64_t transients;         /* transients heard */
	uint64_t trains;             /* clusters that were not cracks */
	uint64_t voiced;             /* low-frequency segments refused as voiced */
	uint64_t lowfreq;            /* transients with too little energy above 1 kHz */
	uint64_t gaps;               /* audio_cracks_gap() calls */
	uint64_t overflow;           /* results lost: not drained */
	uint64_t reports;            /* results made */
};

struct audio_cracks {
	uint64_t pos;                /* samples seen (gaps included) */
	double dc_x, dc_y;           /* DC blocker state */
	struct audio_biquad hp, lp1, lp2;
	/* the current 1 ms block */
	unsigned bn;
	double b_hf, b_all, b_lf;
	double prev_hf, prev_all;    /* the previous block's energies */
	/* transients */
	double floor_hf;             /* per 2 ms window */
	double floor_a2;             /* the same, broadband */
	unsigned warm;               /* blocks seen while warming up */
	uint64_t blank_until;        /* no onsets before this sample */
	bool in_tr;
	struct audio_transient tr;
	unsigned below;              /* blocks below the end level */
	unsigned classified;         /* spectra taken in the current frame */
	uint64_t frame_start;
	/* clusters */
	struct audio_transient cl[AUDIO_CRACKS_CLUSTER_MAX];
	unsigned ncl;
	bool cl_overflow;
	uint64_t cl_last_end;
	/* grinding: 8 ms blocks */
	unsigned gn;                 /* 1 ms blocks in the 8 ms block */
	double g_lf, g_all;
	double h_lf[4], h_all[4];    /* the last 4 grind blocks: 32 ms windows */
	unsigned hn;
	double lmed_lf, lp95_lf, lmed_all;  /* quantiles of the 32 ms energies, dB */
	unsigned gwarm;
	bool in_g;
	uint64_t g_start, g_last_active;
	unsigned g_blocks, g_active, g_inactive_run;
	double g_energy;             /* broadband, over active blocks */
	unsigned g_frames, g_voiced;
	unsigned g_since_fft;
	double g_spec[AUDIO_CRACKS_FFT / 2 + 1];
	/* rings */
	float ring[AUDIO_CRACKS_RING];  /* after the DC blocker */
	double lf_ring[AUDIO_CRACKS_LF_RING];
	unsigned lf_pos, lf_phase;
	/* FFT tables and scratch */
	double cosv[AUDIO_CRACKS_FFT / 2], sinv[AUDIO_CRACKS_FFT / 2];
	double re[AUDIO_CRACKS_FFT], im[AUDIO_CRACKS_FFT];
	/* results */
	struct audio_crack queue[AUDIO_CRACKS_QUEUE_MAX];
	unsigned qhead, qlen;
	struct audio_cracks_stats stats;
};

void audio_cracks_init(struct audio_cracks *d);
/* n samples of audio, any n; results are queued. */
void audio_cracks_feed(struct audio_cracks *d, const int16_t *pcm, size_t n);
/* n samples were lost (a missing frame): the clock skips them. */
void audio_cracks_gap(struct audio_cracks *d, size_t n);
/* Ends what is open (a cluster, a grind) as if quiet followed: the end of a
 * stream, the sensor going away. */
void audio_cracks_flush(struct audio_cracks *d);
/* The oldest result; false when there is none. */
bool audio_cracks_next(struct audio_cracks *d, struct audio_crack *out);

/* A level in dBFS as a crack intensity 0-100: 100 + dBFS, clamped (0 dBFS,
 * full scale, is 100; -60 dBFS is 40). */
unsigned audio_cracks_intensity(double dbfs);

#endif
