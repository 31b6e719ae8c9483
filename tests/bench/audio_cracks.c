/*
 * audio_cracks.c (benchmark) - how well the host hears cracks: generates
 * labelled audio (tests/audio/audiogen.c: pops and pop bursts, clicks,
 * grinding, typing, speech-like sound, footsteps, silence) at several
 * signal-to-noise ratios and event levels, passes it through the Thingy:52
 * ADPCM framing, runs the detector frame by frame and prints precision,
 * recall and F1 per crack kind and SNR, false positives by what they fell
 * on, and the detector's CPU per second of audio; then one JSON line with
 * the figures. It asserts nothing.
 *
 * Usage: bench_audio_cracks [--per-class N] [--seed S] [--snr a,b,...]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../audio/audioeval.h"
#include "../audio/audiogen.h"

static const double levels[] = { -45.0, -30.0, -15.0 };
#define NLEVELS (sizeof(levels) / sizeof(levels[0]))
#define MAX_SNR 8

int main(int argc, char **argv)
{
	double snrs[MAX_SNR] = { 20.0, 10.0, 5.0, 0.0 };
	unsigned nsnr = 4, per_class = 12, s, l, k, c;
	unsigned long long seed = 1;
	const char *kinds[3] = { "pop", "click", "grind" };
	struct ae_result tot[MAX_SNR];
	double cpu = 0.0, audio = 0.0;
	char json[4096];
	size_t jl = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--per-class") && i + 1 < argc) {
			per_class = (unsigned)atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			seed = strtoull(argv[++i], NULL, 10);
		} else if (!strcmp(argv[i], "--snr") && i + 1 < argc) {
			char *p = argv[++i], *e;

			for (nsnr = 0; nsnr < MAX_SNR && *p; p = *e ? e + 1 : e) {
				snrs[nsnr++] = strtod(p, &e);
				if (e == p)
					break;
			}
		} else {
			fprintf(stderr, "usage: %s [--per-class N] [--seed S] [--snr a,b,...]\n", argv[0]);
			return 2;
		}
	}
	if (!per_class || !nsnr)
		return 2;
	printf("Audio crack detection: %u segments of each class (pop, burst, click, grind, typing,\n"
	       "speech, footsteps, silence) per SNR and level (%g, %g, %g dBFS), seed %llu, ADPCM\n\n",
	       per_class, levels[0], levels[1], levels[2], seed);
	printf("%6s  %-6s %5s %5s %5s  %6s %6s %6s\n", "SNR", "kind", "TP", "FP", "FN",
	       "prec", "recall", "F1");
	for (s = 0; s < nsnr; s++) {
		memset(&tot[s], 0, sizeof(tot[s]));
		for (l = 0; l < NLEVELS; l++) {
			struct ag_config cfg = {
				.seed = seed * 1000 + s * 10 + l, .snr_db = snrs[s],
				.level_dbfs = levels[l], .per_class = per_class, .adpcm = 1,
			};
			size_t n = ag_samples(&cfg), nl;
			int16_t *pcm = malloc(n * sizeof(*pcm));
			struct ag_label *labels = malloc(AG_CLASSES * per_class * sizeof(*labels));
			struct ae_result r;

			if (!pcm || !labels)
				return 1;
			nl = ag_make(&cfg, pcm, labels);
			ae_run(pcm, n, labels, nl, &r);
			for (k = 0; k < 3; k++) {
				tot[s].kind[k].tp += r.kind[k].tp;
				tot[s].kind[k].fp += r.kind[k].fp;
				tot[s].kind[k].fn += r.kind[k].fn;
			}
			for (c = 0; c < AG_CLASSES; c++)
				tot[s].fp_on[c] += r.fp_on[c];
			tot[s].cpu_s += r.cpu_s;
			tot[s].audio_s += r.audio_s;
			free(pcm);
			free(labels);
		}
		for (k = 0; k < 3; k++)
			printf("%4g dB  %-6s %5u %5u %5u  %6.3f %6.3f %6.3f\n", snrs[s], kinds[k],
			       tot[s].kind[k].tp, tot[s].kind[k].fp, tot[s].kind[k].fn,
			       ae_precision(&tot[s].kind[k]), ae_recall(&tot[s].kind[k]),
			       ae_f1(&tot[s].kind[k]));
		printf("        false positives on:");
		for (c = 0; c < AG_CLASSES; c++)
			printf(" %s %u", ag_class_name((enum ag_class)c), tot[s].fp_on[c]);
		printf("\n");
		cpu += tot[s].cpu_s;
		audio += tot[s].audio_s;
	}
	printf("\nCPU: %.3f s for %.0f s of audio: %.4f%% of one core per stream\n", cpu, audio,
	       100.0 * cpu / audio);
	jl += (size_t)snprintf(json + jl, sizeof(json) - jl,
			       "{\"bench\":\"audio_cracks\",\"seed\":%llu,\"per_class\":%u,"
			       "\"audio_s\":%.1f,\"cpu_pct_per_stream\":%.5f,\"snr\":[", seed,
			       per_class, audio, 100.0 * cpu / audio);
	for (s = 0; s < nsnr && jl < sizeof(json); s++) {
		jl += (size_t)snprintf(json + jl, sizeof(json) - jl, "%s{\"snr_db\":%g", s ? "," : "",
				       snrs[s]);
		for (k = 0; k < 3 && jl < sizeof(json); k++)
			jl += (size_t)snprintf(json + jl, sizeof(json) - jl,
					       ",\"%s\":{\"tp\":%u,\"fp\":%u,\"fn\":%u,\"precision\":%.4f,"
					       "\"recall\":%.4f,\"f1\":%.4f}", kinds[k],
					       tot[s].kind[k].tp, tot[s].kind[k].fp, tot[s].kind[k].fn,
					       ae_precision(&tot[s].kind[k]), ae_recall(&tot[s].kind[k]),
					       ae_f1(&tot[s].kind[k]));
		if (jl < sizeof(json))
			jl += (size_t)snprintf(json + jl, sizeof(json) - jl, "}");
	}
	if (jl < sizeof(json))
		snprintf(json + jl, sizeof(json) - jl, "]}");
	printf("%s\n", json);
	return 0;
}
