/*
 * fuzz_thingy52_sound.c - libFuzzer target for the Thingy:52 Sound Service
 * codec (protocol/thingy52_sound.c) and the audio crack detector that hears
 * its samples (daemon/audio_cracks.c): the input, split into notifications
 * of the microphone's length (with the first byte choosing a shorter one now
 * and then), is decoded with one stream's continuity state; accepted frames
 * and lost ones go to the detector, whose reports must have valid fields.
 * The first 2 bytes also go through the Sound Configuration codec.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audio_cracks.h"
#include "thingy52_sound.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static struct audio_cracks det;   /* 14 KB: not on the stack */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct thingy52_adpcm st;
	struct thingy52_sound_config cfg;
	uint8_t out[THINGY52_SOUND_CONFIG_LEN];
	int16_t pcm[THINGY52_MIC_SAMPLES];
	struct audio_crack c;
	size_t off = 0;
	enum thingy52_sound_err e;

	e = thingy52_sound_config_decode(size >= 2 ? data : NULL, size >= 2 ? 2 : 0, &cfg);
	CHECK(strcmp(thingy52_sound_err_name(e), "unknown") != 0);
	if (e == THINGY52_SOUND_OK) {
		CHECK(thingy52_sound_config_encode(&cfg, out) == THINGY52_SOUND_OK);
		CHECK(!memcmp(out, data, 2));
	}
	if (e != THINGY52_SOUND_ERR_LENGTH) {
		thingy52_sound_config_for_adpcm(&cfg);
		CHECK(thingy52_sound_config_encode(&cfg, out) == THINGY52_SOUND_OK);
		CHECK(out[1] == THINGY52_MIC_MODE_ADPCM);
	}

	thingy52_adpcm_reset(&st);
	audio_cracks_init(&det);
	while (off < size) {
		size_t len = THINGY52_MIC_FRAME_LEN;
		bool lost;

		if (data[off] == 0xff)   /* now and then a wrong length */
			len = (size_t)(data[off] % 7) + 120;
		if (len > size - off)
			len = size - off;
		e = thingy52_mic_decode(&st, data + off, len, pcm, &lost);
		if (len != THINGY52_MIC_FRAME_LEN)
			CHECK(e == THINGY52_SOUND_ERR_LENGTH);
		else if (data[off + 2] > THINGY52_ADPCM_INDEX_MAX)
			CHECK(e == THINGY52_SOUND_ERR_STEP_INDEX);
		else
			CHECK(e == THINGY52_SOUND_OK);
		if (e == THINGY52_SOUND_OK) {
			CHECK(st.predictor == pcm[THINGY52_MIC_SAMPLES - 1]);
			if (lost)
				audio_cracks_gap(&det, THINGY52_MIC_SAMPLES);
			audio_cracks_feed(&det, pcm, THINGY52_MIC_SAMPLES);
		}
		while (audio_cracks_next(&det, &c)) {
			CHECK(c.kind == SPINE_CRACK_POP || c.kind == SPINE_CRACK_CLICK ||
			      c.kind == SPINE_CRACK_GRIND);
			CHECK(c.count >= 1 && c.count <= AUDIO_CRACKS_CLUSTER_MAX);
			CHECK(isfinite(c.dbfs) && c.dbfs <= 0.5);
			CHECK(c.onset <= det.pos && c.freq_hz <= 8000);
			CHECK(audio_cracks_intensity(c.dbfs) <= 100);
		}
		off += len;
	}
	audio_cracks_flush(&det);
	while (audio_cracks_next(&det, &c))
		CHECK(c.onset <= det.pos);
	CHECK(st.frames + st.discontinuities <= size / THINGY52_MIC_FRAME_LEN * 2 + 1);
	return 0;
}
