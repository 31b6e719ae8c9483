/*
 * audiogen.c - labelled synthetic audio (see audiogen.h). Deterministic:
 * one xorshift generator seeded from the configuration drives everything.
 */
#include "audiogen.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "thingy52_sound.h"

#define RATE 16000.0

struct rng {
	uint64_t s;
};

static uint64_t next(struct rng *r)
{
	/* splitmix64 */
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double uni(struct rng *r)            /* [0, 1) */
{
	return (double)(next(r) >> 11) / 9007199254740992.0;
}

static double range(struct rng *r, double lo, double hi)
{
	return lo + (hi - lo) * uni(r);
}

static double gauss(struct rng *r)
{
	double u = uni(r), v = uni(r);

	if (u < 1e-300)
		u = 1e-300;
	return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

static size_t ms(double v)
{
	return (size_t)(v * RATE / 1000.0);
}

/* Scale x[0..n) so that its RMS is level (dBFS of a full-scale sine-free
 * square: 1.0 = 32768). */
static void normalise(double *x, size_t n, double level_dbfs)
{
	double sum = 0.0, want = 32768.0 * pow(10.0, level_dbfs / 20.0), g;
	size_t i;

	for (i = 0; i < n; i++)
		sum += x[i] * x[i];
	if (sum <= 0.0)
		return;
	g = want / sqrt(sum / (double)n);
	for (i = 0; i < n; i++)
		x[i] *= g;
}

struct lp2 {
	double b0, b1, b2, a1, a2, z1, z2;
};

static void lp2_init(struct lp2 *q, double f0, bool high)
{
	double w0 = 2.0 * M_PI * f0 / RATE, c = cos(w0), alpha = sin(w0) * M_SQRT1_2;
	double a0 = 1.0 + alpha;

	q->b0 = (high ? (1.0 + c) : (1.0 - c)) / 2.0 / a0;
	q->b1 = (high ? -(1.0 + c) : (1.0 - c)) / a0;
	q->b2 = q->b0;
	q->a1 = -2.0 * c / a0;
	q->a2 = (1.0 - alpha) / a0;
	q->z1 = q->z2 = 0.0;
}

static double lp2(struct lp2 *q, double x)
{
	double y = q->b0 * x + q->z1;

	q->z1 = q->b1 * x - q->a1 * y + q->z2;
	q->z2 = q->b2 * x - q->a2 * y;
	return y;
}

/* ---- events: each adds into sig from s0 and returns its length ---------- */

#define SCRATCH (16000 * 3)

static size_t pop(struct rng *r, double *sig, double level, double *tmp)
{
	size_t n = ms(5), i;
	double tau = range(r, 0.8, 1.4) * RATE / 1000.0, tilt = range(r, -0.5, 0.5), prev = 0.0;

	for (i = 0; i < n; i++) {
		double w = gauss(r), env = (i < 5 ? (double)(i + 1) / 5.0 : 1.0) * exp(-(double)i / tau);

		tmp[i] = (w - tilt * prev) * env;
		prev = w;
	}
	normalise(tmp, n, level);
	for (i = 0; i < n; i++)
		sig[i] += tmp[i];
	return n;
}

static size_t click(struct rng *r, double *sig, double level, double *tmp)
{
	size_t n = ms(6), i;
	double f = range(r, 1200.0, 3500.0), tau = range(r, 1.2, 2.0) * RATE / 1000.0;
	double ph = range(r, 0.0, 2.0 * M_PI);

	for (i = 0; i < n; i++)
		tmp[i] = sin(2.0 * M_PI * f * (double)i / RATE + ph) * exp(-(double)i / tau) *
			 (i < 2 ? 0.5 : 1.0);
	normalise(tmp, n, level);
	for (i = 0; i < n; i++)
		sig[i] += tmp[i];
	return n;
}

static size_t grind(struct rng *r, double *sig, double level, double *tmp)
{
	size_t n = ms(range(r, 500.0, 1500.0)), i, fade = ms(30);
	double fr = range(r, 15.0, 40.0), rate = range(r, 200.0, 600.0) / RATE;
	struct lp2 a, b;

	lp2_init(&a, 350.0, false);
	lp2_init(&b, 350.0, false);
	for (i = 0; i < n; i++) {
		double t = (double)i / (double)n, x = gauss(r), env;

		if (uni(r) < rate)   /* the rough part: impulses */
			x += (uni(r) < 0.5 ? -1 : 1) * range(r, 3.0, 8.0);
		env = pow(sin(M_PI * t), 0.7) * (1.0 + 0.6 * sin(2.0 * M_PI * fr * (double)i / RATE));
		if (i < fade)
			env *= (double)i / (double)fade;
		tmp[i] = lp2(&b, lp2(&a, x)) * env;
	}
	normalise(tmp, n, level);
	for (i = 0; i < n; i++)
		sig[i] += tmp[i];
	return n;
}

static void keystroke(struct rng *r, double *sig, double level, double *tmp)
{
	size_t n = ms(5), i;
	double f = range(r, 2000.0, 5000.0), tau = RATE / 1000.0, taun = 0.7 * RATE / 1000.0;

	for (i = 0; i < n; i++)
		tmp[i] = sin(2.0 * M_PI * f * (double)i / RATE) * exp(-(double)i / tau) +
			 0.7 * gauss(r) * exp(-(double)i / taun);
	normalise(tmp, n, level);
	for (i = 0; i < n; i++)
		sig[i] += tmp[i];
}

static size_t typing(struct rng *r, double *sig, double level, double *tmp)
{
	size_t n = ms(1600), t = ms(20), end = 0;

	while (t + ms(110) < n) {
		size_t rel = t + ms(range(r, 50.0, 100.0));

		keystroke(r, sig + t, level + range(r, -3.0, 3.0), tmp);
		keystroke(r, sig + rel, level - 6.0 + range(r, -3.0, 3.0), tmp);
		end = rel + ms(5);
		t += ms(range(r, 120.0, 260.0));
	}
	return end;
}

static size_t speech(struct rng *r, double *sig, double level, double *tmp)
{
	size_t n = ms(1600), t = 0, end = 0, i;

	while (t + ms(240) < n) {
		size_t len = ms(range(r, 120.0, 220.0));
		double f0 = range(r, 100.0, 220.0), glide = range(r, -0.1, 0.1);
		double f1 = range(r, 300.0, 800.0), f2 = range(r, 900.0, 2200.0), ph = 0.0;

		if (uni(r) < 0.3) {   /* a fricative before the vowel */
			size_t fl = ms(range(r, 80.0, 140.0));
			double p1 = 0.0, p2 = 0.0;

			for (i = 0; i < fl; i++) {
				double w = gauss(r), d1 = w - p1, d2 = d1 - p2;

				p1 = w;
				p2 = d1;
				tmp[i] = d2 * sin(M_PI * (double)i / (double)fl);
			}
			normalise(tmp, fl, level - 6.0);
			for (i = 0; i < fl && t + i < n; i++)
				sig[t + i] += tmp[i];
			t += fl;
		}
		for (i = 0; i < len; i++) {
			double u = (double)i / (double)len, f = f0 * (1.0 + glide * u), x = 0.0;

			ph += 2.0 * M_PI * f / RATE;
			for (unsigned k = 1; k * f < 4000.0; k++) {
				double fk = k * f;
				double amp = (1.0 / (1.0 + pow((fk - f1) / 120.0, 2.0)) +
					      0.5 / (1.0 + pow((fk - f2) / 180.0, 2.0)) + 0.05) / k;

				x += amp * sin(k * ph);
			}
			tmp[i] = x * (0.5 - 0.5 * cos(2.0 * M_PI * u));
		}
		normalise(tmp, len, level + range(r, -3.0, 3.0));
		for (i = 0; i < len && t + i < n; i++)
			sig[t + i] += tmp[i];
		t += len;
		end = t;
		t += ms(range(r, 40.0, 120.0));
	}
	return end;
}

static size_t footsteps(struct rng *r, double *sig, double level, double *tmp)
{
	size_t n = ms(2000), t = ms(10), end = 0, i, len = ms(80);

	while (t + len < n) {
		double f = range(r, 40.0, 90.0), tau = 25.0 * RATE / 1000.0, taun = 15.0 * RATE / 1000.0;
		double lp = 0.0, a = exp(-2.0 * M_PI * 200.0 / RATE);

		for (i = 0; i < len; i++) {
			lp = a * lp + (1.0 - a) * gauss(r);
			tmp[i] = sin(2.0 * M_PI * f * (double)i / RATE) * exp(-(double)i / tau) +
				 3.0 * lp * exp(-(double)i / taun);
		}
		normalise(tmp, len, level + range(r, -3.0, 3.0));
		for (i = 0; i < len; i++)
			sig[t + i] += tmp[i];
		end = t + len;
		t += ms(range(r, 480.0, 600.0));
	}
	return end;
}

/* ---- the stream ------------------------------------------------------------ */

static size_t seg_len(const struct ag_config *cfg)
{
	return (size_t)((cfg->segment_s > 0 ? cfg->segment_s : 2.5) * RATE);
}

size_t ag_samples(const struct ag_config *cfg)
{
	return seg_len(cfg) * AG_CLASSES * cfg->per_class;
}

void ag_adpcm_encode_frame(int16_t *pred, uint8_t *index, const int16_t *pcm, uint8_t *out)
{
	out[0] = (uint8_t)((uint16_t)*pred >> 8);
	out[1] = (uint8_t)((uint16_t)*pred & 0xff);
	out[2] = *index;
	for (unsigned i = 0; i < THINGY52_MIC_SAMPLES; i++) {
		unsigned best = 0, c;
		long bestd = -1;

		/* the code whose reconstruction is nearest (what a careful encoder picks) */
		for (c = 0; c < 16; c++) {
			int16_t p = *pred;
			uint8_t ix = *index;
			long dd = labs((long)thingy52_adpcm_step(&p, &ix, c) - pcm[i]);

			if (bestd < 0 || dd < bestd) {
				bestd = dd;
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

size_t ag_make(const struct ag_config *cfg, int16_t *pcm, struct ag_label *labels)
{
	struct rng r = { cfg->seed * 0x2545f4914f6cdd1dULL + 1 };
	size_t seg = seg_len(cfg), total = ag_samples(cfg), nl = AG_CLASSES * cfg->per_class;
	double *sig = calloc(total, sizeof(double)), *tmp = calloc(SCRATCH, sizeof(double));
	double b0 = 0, b1 = 0, b2 = 0, sum = 0.0, want, g;
	size_t i;

	if (!sig || !tmp) {
		free(sig);
		free(tmp);
		return 0;
	}
	/* the background: pink noise (a 3-pole approximation) with a white floor */
	for (i = 0; i < total; i++) {
		double w = gauss(&r);

		b0 = 0.99765 * b0 + w * 0.0990460;
		b1 = 0.96300 * b1 + w * 0.2965164;
		b2 = 0.57000 * b2 + w * 1.0526913;
		sig[i] = b0 + b1 + b2 + w * 0.1848 + 0.35 * gauss(&r);
		sum += sig[i] * sig[i];
	}
	want = 32768.0 * pow(10.0, (cfg->level_dbfs - cfg->snr_db) / 20.0);
	g = sum > 0 ? want / sqrt(sum / (double)total) : 0.0;
	for (i = 0; i < total; i++)
		sig[i] *= g;
	/* the segments, each class per_class times, shuffled */
	for (i = 0; i < nl; i++)
		labels[i].cls = (enum ag_class)(i % AG_CLASSES);
	for (i = nl; i > 1; i--) {
		size_t j = next(&r) % i;
		enum ag_class t = labels[i - 1].cls;

		labels[i - 1].cls = labels[j].cls;
		labels[j].cls = t;
	}
	for (i = 0; i < nl; i++) {
		struct ag_label *l = &labels[i];
		size_t s0 = i * seg + ms(range(&r, 300.0, 700.0)), len = 0;
		double *at = sig + s0;

		l->seg_start = i * seg;
		l->seg_end = (i + 1) * seg;
		l->pops = 0;
		switch (l->cls) {
		case AG_POP:
			len = pop(&r, at, cfg->level_dbfs, tmp);
			l->pops = 1;
			break;
		case AG_BURST: {
			unsigned np = 2 + (unsigned)(next(&r) % 8), k;
			double spacing = fmin(25.0, 140.0 / (np - 1)), t = 0.0;

			for (k = 0; k < np; k++) {
				len = (size_t)ms(t) + pop(&r, at + ms(t),
							   cfg->level_dbfs + range(&r, -3.0, 3.0), tmp);
				t += range(&r, 6.0, spacing);
			}
			l->pops = np;
			break;
		}
		case AG_CLICK:
			len = click(&r, at, cfg->level_dbfs, tmp);
			break;
		case AG_GRIND:
			len = grind(&r, at, cfg->level_dbfs, tmp);
			break;
		case AG_TYPING:
			len = typing(&r, at, cfg->level_dbfs, tmp);
			break;
		case AG_SPEECH:
			len = speech(&r, at, cfg->level_dbfs, tmp);
			break;
		case AG_FOOTSTEPS:
			len = footsteps(&r, at, cfg->level_dbfs, tmp);
			break;
		default:
			len = 0;
			break;
		}
		l->start = s0;
		l->end = s0 + len;
	}
	for (i = 0; i < total; i++) {
		double v = round(sig[i]);

		pcm[i] = (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
	}
	if (cfg->adpcm) {
		int16_t pred = 0, out[THINGY52_MIC_SAMPLES];
		uint8_t index = 0, frame[THINGY52_MIC_FRAME_LEN];

		for (i = 0; i + THINGY52_MIC_SAMPLES <= total; i += THINGY52_MIC_SAMPLES) {
			ag_adpcm_encode_frame(&pred, &index, pcm + i, frame);
			if (thingy52_mic_decode(NULL, frame, sizeof(frame), out, NULL) == THINGY52_SOUND_OK)
				memcpy(pcm + i, out, sizeof(out));
		}
	}
	free(sig);
	free(tmp);
	return nl;
}

const char *ag_class_name(enum ag_class c)
{
	static const char *const names[AG_CLASSES] = {
		"pop", "burst", "click", "grind", "typing", "speech", "footsteps", "silence",
	};

	return (unsigned)c < AG_CLASSES ? names[c] : "?";
}
