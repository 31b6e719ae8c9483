/*
 * audio_cracks.c - crack detection in a 16 kHz audio stream (see
 * audio_cracks.h): band energies through biquads, adaptive noise floors,
 * transient onsets classified by a small spectrum, clusters that separate
 * crack bursts from trains (typing, footsteps, speech), and low-frequency
 * segments checked for periodicity (grinding against speech). Everything
 * lives in the struct; per sample a few biquads, per 1 ms block a few
 * comparisons, per 16 ms frame at most one 256-point and four 128-point
 * FFTs and one short autocorrelation.
 */
#include "audio_cracks.h"

#include <math.h>
#include <string.h>

#define BLOCK 16                      /* 1 ms */
#define DC_POLE 0.992                 /* DC blocker: -3 dB at about 20 Hz */
#define GBLOCK 8                      /* 1 ms blocks in a grind block (8 ms) */
#define MS(n) ((uint64_t)(n) * (AUDIO_CRACKS_RATE_HZ / 1000))
#define FULL_SCALE2 (32768.0 * 32768.0)
#define WARM_BLOCKS 200               /* transient floor: 200 ms to learn */
#define GWARM_BLOCKS 50               /* grind floors: 400 ms */
#define CLASSIFY_PER_FRAME 4
#define CLICK_CONCENTRATION 0.45      /* of 1-8 kHz power within +-2 bins of the peak */
#define GRIND_ON_DB 4.0               /* above the median */
#define GRIND_P95_DB 2.0              /* above the 95th percentile */
#define QUANTILE_STEP_DB 0.2          /* per 8 ms block */
#define HF_SHARE 0.25                 /* of a transient's broadband excess, above 1 kHz */
#define GRIND_LF_SHARE 0.6            /* of the excess energy below 500 Hz */
#define GRIND_ACTIVE_SHARE 0.6
#define GRIND_HOLE_BLOCKS 6           /* 48 ms of quiet ends a segment */
#define VOICED_R 0.6
#define VOICED_SHARE 0.3

static double db_ratio(double db)
{
	return pow(10.0, db / 10.0);
}

static void biquad_set(struct audio_biquad *q, bool high, double f0)
{
	double w0 = 2.0 * M_PI * f0 / AUDIO_CRACKS_RATE_HZ, c = cos(w0);
	double alpha, a0;

	/* Butterworth (Q = 1/sqrt 2), after the Audio EQ Cookbook */
	alpha = sin(w0) * M_SQRT1_2;
	a0 = 1.0 + alpha;
	if (high) {
		q->b0 = (1.0 + c) / 2.0 / a0;
		q->b1 = -(1.0 + c) / a0;
	} else {
		q->b0 = (1.0 - c) / 2.0 / a0;
		q->b1 = (1.0 - c) / a0;
	}
	q->b2 = q->b0;
	q->a1 = -2.0 * c / a0;
	q->a2 = (1.0 - alpha) / a0;
	q->z1 = q->z2 = 0.0;
}

/* transposed direct form II */
static inline double biquad(struct audio_biquad *q, double x)
{
	double y = q->b0 * x + q->z1;

	q->z1 = q->b1 * x - q->a1 * y + q->z2;
	q->z2 = q->b2 * x - q->a2 * y;
	return y;
}

void audio_cracks_init(struct audio_cracks *d)
{
	memset(d, 0, sizeof(*d));
	biquad_set(&d->hp, true, 1000.0);
	biquad_set(&d->lp1, false, 500.0);
	biquad_set(&d->lp2, false, 500.0);
	for (unsigned k = 0; k < AUDIO_CRACKS_FFT / 2; k++) {
		d->cosv[k] = cos(2.0 * M_PI * k / AUDIO_CRACKS_FFT);
		d->sinv[k] = -sin(2.0 * M_PI * k / AUDIO_CRACKS_FFT);
	}
}

unsigned audio_cracks_intensity(double dbfs)
{
	double v = 100.0 + dbfs;

	if (!(v > 0.0))
		return 0;
	if (v > 100.0)
		return 100;
	return (unsigned)lround(v);
}

/* In-place radix-2 FFT of d->re/d->im, n a power of two up to AUDIO_CRACKS_FFT. */
static void fft(struct audio_cracks *d, unsigned n)
{
	unsigned i, j, len, stride;

	for (i = 1, j = 0; i < n; i++) {
		unsigned bit = n >> 1;

		for (; j & bit; bit >>= 1)
			j ^= bit;
		j ^= bit;
		if (i < j) {
			double t = d->re[i];

			d->re[i] = d->re[j];
			d->re[j] = t;
			t = d->im[i];
			d->im[i] = d->im[j];
			d->im[j] = t;
		}
	}
	for (len = 2; len <= n; len <<= 1) {
		stride = AUDIO_CRACKS_FFT / len;
		for (i = 0; i < n; i += len) {
			for (j = 0; j < len / 2; j++) {
				double wr = d->cosv[j * stride], wi = d->sinv[j * stride];
				double xr = d->re[i + j + len / 2], xi = d->im[i + j + len / 2];
				double tr = xr * wr - xi * wi, ti = xr * wi + xi * wr;

				d->re[i + j + len / 2] = d->re[i + j] - tr;
				d->im[i + j + len / 2] = d->im[i + j] - ti;
				d->re[i + j] += tr;
				d->im[i + j] += ti;
			}
		}
	}
}

static void push(struct audio_cracks *d, const struct audio_crack *c)
{
	d->stats.reports++;
	if (d->qlen == AUDIO_CRACKS_QUEUE_MAX) {
		d->stats.overflow++;
		return;
	}
	d->queue[(d->qhead + d->qlen++) % AUDIO_CRACKS_QUEUE_MAX] = *c;
}

bool audio_cracks_next(struct audio_cracks *d, struct audio_crack *out)
{
	if (!d->qlen)
		return false;
	*out = d->queue[d->qhead];
	d->qhead = (d->qhead + 1) % AUDIO_CRACKS_QUEUE_MAX;
	d->qlen--;
	return true;
}

static double dbfs(double sumsq, double samples)
{
	if (!(sumsq > 0.0) || samples <= 0.0)
		return -120.0;
	return 10.0 * log10(sumsq / samples / FULL_SCALE2);
}

/* ---- transients ---------------------------------------------------------- */

/* 8 ms from the onset (or the newest 8 ms): narrow peak (click) or spread (pop). */
static void classify(struct audio_cracks *d, struct audio_transient *t)
{
	const unsigned n = 128, lo = 8, hi = 63;   /* bins of 125 Hz: 1-8 kHz */
	uint64_t start = t->onset >= MS(1) ? t->onset - MS(1) : 0;
	double p[64], total = 0.0, near = 0.0;
	unsigned k, kmax = lo;

	if (start + n > d->pos)
		start = d->pos >= n ? d->pos - n : 0;
	for (k = 0; k < n; k++) {
		d->re[k] = d->ring[(start + k) % AUDIO_CRACKS_RING];
		d->im[k] = 0.0;
	}
	fft(d, n);
	for (k = lo; k <= hi; k++) {
		p[k] = d->re[k] * d->re[k] + d->im[k] * d->im[k];
		total += p[k];
		if (p[k] > p[kmax])
			kmax = k;
	}
	for (k = kmax >= lo + 2 ? kmax - 2 : lo; k <= kmax + 2 && k <= hi; k++)
		near += p[k];
	t->click = total > 0.0 && near / total > CLICK_CONCENTRATION;
	t->freq_hz = kmax * (AUDIO_CRACKS_RATE_HZ / n);
}

static void cluster_close(struct audio_cracks *d)
{
	struct audio_crack c;
	unsigned i, npop = 0, nclick = 0, loud = 0, first = d->ncl;
	uint64_t end = 0;
	bool train = d->cl_overflow;

	for (i = 0; i < d->ncl; i++) {
		const struct audio_transient *t = &d->cl[i];

		train |= t->long_ || t->lowfreq;
		if (t->weak)
			continue;
		if (first == d->ncl)
			first = i;
		npop += !t->click;
		nclick += t->click;
		if (t->end > end)
			end = t->end;
		if (t->peak > d->cl[loud].peak || d->cl[loud].weak)
			loud = i;
	}
	if (d->ncl && d->cl[d->ncl - 1].onset - d->cl[0].onset > MS(AUDIO_CRACKS_BURST_MS))
		train = true;
	if (train) {
		d->stats.trains++;
	} else if (first < d->ncl) {   /* not only weak ones */
		memset(&c, 0, sizeof(c));
		c.onset = d->cl[first].onset;
		c.kind = npop >= nclick ? SPINE_CRACK_POP : SPINE_CRACK_CLICK;
		c.dbfs = dbfs(d->cl[loud].peak, (double)MS(2));
		c.duration_ms = (unsigned)((end - c.onset) / MS(1));
		c.count = c.kind == SPINE_CRACK_POP ? npop + nclick : 1;
		c.freq_hz = d->cl[loud].freq_hz;
		push(d, &c);
	}
	d->ncl = 0;
	d->cl_overflow = false;
}

static void transient_end(struct audio_cracks *d, uint64_t end)
{
	struct audio_transient *t = &d->tr;

	d->in_tr = false;
	t->end = end > t->onset ? end : t->onset + MS(1);
	t->long_ = t->end - t->onset > MS(AUDIO_CRACKS_SHORT_MS);
	t->click = false;
	t->freq_hz = 0;
	/* mostly low-frequency energy: not a crack itself, but it keeps a
	 * cluster from being one (a syllable, a footstep) */
	t->lowfreq = t->hf_peak < HF_SHARE * (t->peak - d->floor_a2);
	d->stats.lowfreq += t->lowfreq;
	t->weak = t->hf_peak + d->floor_hf <= d->floor_hf * db_ratio(AUDIO_CRACKS_ON_DB);
	if (!t->long_ && !t->lowfreq && !t->weak && d->classified < CLASSIFY_PER_FRAME) {
		d->classified++;
		classify(d, t);
	}
	d->stats.transients++;
	if (d->ncl < AUDIO_CRACKS_CLUSTER_MAX)
		d->cl[d->ncl++] = *t;
	else
		d->cl_overflow = true;
	d->cl_last_end = t->end;
}

static void transient_block(struct audio_cracks *d)
{
	double e2 = d->b_hf + d->prev_hf, a2 = d->b_all + d->prev_all;
	double fl = d->floor_hf;

	if (d->warm < WARM_BLOCKS) {
		if (d->warm++ > 0) {   /* the first window has only one block */
			d->floor_hf += (e2 - d->floor_hf) / (double)d->warm;
			d->floor_a2 += (a2 - d->floor_a2) / (double)d->warm;
		}
		return;
	}
	if (!d->in_tr) {
		if (e2 > fl * db_ratio(AUDIO_CRACKS_WEAK_DB) && d->pos >= d->blank_until) {
			d->in_tr = true;
			memset(&d->tr, 0, sizeof(d->tr));
			/* did it start in the previous block? */
			d->tr.onset = d->pos - (d->prev_hf > d->b_hf * 0.25 ? MS(2) : MS(1));
			d->tr.peak = a2;
			d->tr.hf_peak = e2 - fl;
			d->below = 0;
			return;
		}
		if (d->pos < d->blank_until)
			return;
		/* the floor: the mean of ordinary windows, quick to fall */
		if (a2 < d->floor_a2 * 0.5)
			d->floor_a2 += (a2 - d->floor_a2) / 32.0;
		else if (a2 < d->floor_a2 * db_ratio(AUDIO_CRACKS_ON_DB))
			d->floor_a2 += (a2 - d->floor_a2) / 256.0;
		if (e2 < fl * 0.5)
			d->floor_hf += (e2 - fl) / 32.0;
		else
			d->floor_hf += (e2 - fl) / 256.0;
		if (d->floor_hf < 1.0)
			d->floor_hf = 1.0;
		return;
	}
	if (a2 > d->tr.peak)
		d->tr.peak = a2;
	if (e2 - fl > d->tr.hf_peak)
		d->tr.hf_peak = e2 - fl;
	if (e2 > fl)   /* a lasting rise of the noise is learnt, slowly */
		d->floor_hf += (e2 - fl) / 16384.0;
	if (e2 < fl * db_ratio(AUDIO_CRACKS_OFF_DB)) {
		if (++d->below >= 2)
			transient_end(d, d->pos - MS(2));
	} else {
		d->below = 0;
		if (d->pos - d->tr.onset > MS(2000))
			transient_end(d, d->pos);
	}
}

/* ---- grinding ------------------------------------------------------------ */

/* Is the band below 500 Hz periodic at 100-400 Hz over the last 32 ms? */
static bool voiced(const struct audio_cracks *d)
{
	const unsigned n = AUDIO_CRACKS_LF_RING;
	double x[AUDIO_CRACKS_LF_RING], best = 0.0;
	unsigned i, lag;

	for (i = 0; i < n; i++)
		x[i] = d->lf_ring[(d->lf_pos + i) % n];
	for (lag = 10; lag <= 40; lag++) {
		double xy = 0.0, xx = 0.0, yy = 0.0, r;

		for (i = lag; i < n; i++) {
			xy += x[i] * x[i - lag];
			xx += x[i] * x[i];
			yy += x[i - lag] * x[i - lag];
		}
		r = xx > 0.0 && yy > 0.0 ? xy / sqrt(xx * yy) : 0.0;
		if (r > best)
			best = r;
	}
	return best > VOICED_R;
}

/* The power spectrum of the newest 16 ms, added to the segment's. */
static void grind_spectrum(struct audio_cracks *d)
{
	const unsigned n = AUDIO_CRACKS_FFT;
	unsigned k;

	for (k = 0; k < n; k++) {
		double w = 0.5 - 0.5 * cos(2.0 * M_PI * k / n);

		d->re[k] = w * d->ring[(d->pos - n + k) % AUDIO_CRACKS_RING];
		d->im[k] = 0.0;
	}
	fft(d, n);
	for (k = 0; k <= n / 2; k++)
		d->g_spec[k] += d->re[k] * d->re[k] + d->im[k] * d->im[k];
}

static void grind_end(struct audio_cracks *d)
{
	uint64_t dur = d->g_last_active - d->g_start;
	struct audio_crack c;
	unsigned k, kmax = 1;

	d->in_g = false;
	if (dur < MS(AUDIO_CRACKS_GRIND_MIN_MS) || dur > MS(AUDIO_CRACKS_GRIND_MAX_MS) ||
	    d->g_active < GRIND_ACTIVE_SHARE * d->g_blocks)
		return;
	if (d->g_frames && d->g_voiced > VOICED_SHARE * d->g_frames) {
		d->stats.voiced++;
		return;
	}
	for (k = 1; k <= AUDIO_CRACKS_FFT / 2; k++)
		if (d->g_spec[k] > d->g_spec[kmax])
			kmax = k;
	memset(&c, 0, sizeof(c));
	c.onset = d->g_start;
	c.kind = SPINE_CRACK_GRIND;
	c.dbfs = dbfs(d->g_energy, (double)d->g_active * MS(GBLOCK));
	c.duration_ms = (unsigned)(dur / MS(1));
	c.count = 1;
	c.freq_hz = kmax * AUDIO_CRACKS_RATE_HZ / AUDIO_CRACKS_FFT;
	push(d, &c);
}

/* Moves a quantile estimate (dB) towards the q-quantile of what it sees. */
static void quantile(double *est, double db, double q)
{
	*est += db > *est ? QUANTILE_STEP_DB * q : -QUANTILE_STEP_DB * (1.0 - q);
}

static double to_db(double e)
{
	return 10.0 * log10(e > 1.0 ? e : 1.0);
}

static void grind_block(struct audio_cracks *d)
{
	double lf = 0.0, all = 0.0, lf_db, all_db, med_lf, med_all;
	bool active;
	unsigned i;

	d->h_lf[d->hn % 4] = d->g_lf;
	d->h_all[d->hn % 4] = d->g_all;
	d->hn++;
	d->g_lf = d->g_all = 0.0;
	d->gn = 0;
	for (i = 0; i < 4; i++) {
		lf += d->h_lf[i];
		all += d->h_all[i];
	}
	lf_db = to_db(lf);
	all_db = to_db(all);
	if (d->gwarm < GWARM_BLOCKS) {
		/* a start: the mean of the first windows */
		d->gwarm++;
		d->lmed_lf += (lf_db - d->lmed_lf) / (double)d->gwarm;
		d->lmed_all += (all_db - d->lmed_all) / (double)d->gwarm;
		d->lp95_lf = d->lmed_lf + 3.0;
		return;
	}
	med_lf = pow(10.0, d->lmed_lf / 10.0);
	med_all = pow(10.0, d->lmed_all / 10.0);
	active = lf_db > d->lmed_lf + GRIND_ON_DB && lf_db > d->lp95_lf + GRIND_P95_DB &&
		 lf - med_lf >= GRIND_LF_SHARE * (all - med_all) && d->pos >= d->blank_until;
	if (!d->in_g) {
		if (active) {
			d->in_g = true;
			d->g_start = d->pos - MS(16);
			d->g_last_active = d->pos - MS(16);
			d->g_blocks = d->g_active = 1;
			d->g_inactive_run = 0;
			d->g_energy = d->h_all[(d->hn - 1) % 4];
			d->g_frames = d->g_voiced = 0;
			d->g_since_fft = 0;
			memset(d->g_spec, 0, sizeof(d->g_spec));
			return;
		}
		quantile(&d->lmed_lf, lf_db, 0.5);
		quantile(&d->lp95_lf, lf_db, 0.95);
		quantile(&d->lmed_all, all_db, 0.5);
		if (d->lp95_lf < d->lmed_lf)
			d->lp95_lf = d->lmed_lf;
		return;
	}
	d->g_blocks++;
	if (active) {
		d->g_active++;
		d->g_last_active = d->pos - MS(16);
		d->g_inactive_run = 0;
		d->g_energy += d->h_all[(d->hn - 1) % 4];
	} else {
		d->g_inactive_run++;
	}
	if (++d->g_since_fft >= 2) {   /* every 16 ms */
		d->g_since_fft = 0;
		d->g_frames++;
		d->g_voiced += voiced(d);
		grind_spectrum(d);
	}
	if (d->g_inactive_run >= GRIND_HOLE_BLOCKS) {
		grind_end(d);
	} else if (d->pos - d->g_start > MS(AUDIO_CRACKS_GRIND_MAX_MS)) {
		/* no grind lasts this long: the background changed; learn it anew */
		d->in_g = false;
		d->lmed_lf = lf_db;
		d->lp95_lf = lf_db + 3.0;
		d->lmed_all = all_db;
	}
}

/* ---- the stream ---------------------------------------------------------- */

static void block_end(struct audio_cracks *d)
{
	transient_block(d);
	d->prev_hf = d->b_hf;
	d->prev_all = d->b_all;
	d->g_lf += d->b_lf;
	d->g_all += d->b_all;
	d->b_hf = d->b_all = d->b_lf = 0.0;
	d->bn = 0;
	if (++d->gn == GBLOCK)
		grind_block(d);
	if (d->ncl && !d->in_tr && d->pos - d->cl_last_end >= MS(AUDIO_CRACKS_QUIET_MS))
		cluster_close(d);
	if (d->pos - d->frame_start >= MS(16)) {
		d->frame_start = d->pos;
		d->classified = 0;
	}
}

void audio_cracks_feed(struct audio_cracks *d, const int16_t *pcm, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		/* DC and rumble below ~20 Hz are no sound of a joint: blocked first */
		double x = pcm[i] - d->dc_x + DC_POLE * d->dc_y, h, l;

		d->dc_x = pcm[i];
		d->dc_y = x;

		d->ring[d->pos % AUDIO_CRACKS_RING] = (float)x;
		h = biquad(&d->hp, x);
		l = biquad(&d->lp2, biquad(&d->lp1, x));
		d->b_hf += h * h;
		d->b_all += x * x;
		d->b_lf += l * l;
		if (++d->lf_phase == 4) {
			d->lf_phase = 0;
			d->lf_ring[d->lf_pos] = l;
			d->lf_pos = (d->lf_pos + 1) % AUDIO_CRACKS_LF_RING;
		}
		d->pos++;
		if (++d->bn == BLOCK)
			block_end(d);
	}
}

void audio_cracks_gap(struct audio_cracks *d, size_t n)
{
	d->stats.gaps++;
	d->pos += n;
	/* the waveform jumps where the audio resumes: no onset for 4 ms */
	d->blank_until = d->pos + MS(4);
	if (d->in_tr)
		transient_end(d, d->pos - n);
}

void audio_cracks_flush(struct audio_cracks *d)
{
	if (d->in_tr)
		transient_end(d, d->pos);
	if (d->ncl)
		cluster_close(d);
	if (d->in_g)
		grind_end(d);
}
