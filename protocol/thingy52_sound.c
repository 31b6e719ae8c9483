/*
 * thingy52_sound.c - Nordic Thingy:52 Sound Service codecs: the Microphone
 * frame (IMA/DVI ADPCM, 256 samples, header-restarted, continuity check) and
 * the Sound Configuration. See thingy52-sound.md; tests/unit/test_thingy52_sound.c
 * checks its vectors and those made by sox (tests/unit/vectors/).
 */
#include "thingy52_sound.h"

#include <string.h>

/* The IMA ADPCM step sizes (IMA Digital Audio Focus and Technical Working
 * Group, recommended practice, 1992). */
static const int16_t step_table[THINGY52_ADPCM_INDEX_MAX + 1] = {
	7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 19, 21, 23, 25, 28, 31, 34, 37, 41, 45,
	50, 55, 60, 66, 73, 80, 88, 97, 107, 118, 130, 143, 157, 173, 190, 209, 230,
	253, 279, 307, 337, 371, 408, 449, 494, 544, 598, 658, 724, 796, 876, 963,
	1060, 1166, 1282, 1411, 1552, 1707, 1878, 2066, 2272, 2499, 2749, 3024, 3327,
	3660, 4026, 4428, 4871, 5358, 5894, 6484, 7132, 7845, 8630, 9493, 10442,
	11487, 12635, 13899, 15289, 16818, 18500, 20350, 22385, 24623, 27086, 29794,
	32767,
};

/* How the step index moves after each code's magnitude (bits 0-2). */
static const int8_t index_adjust[8] = { -1, -1, -1, -1, 2, 4, 6, 8 };

int16_t thingy52_adpcm_step(int16_t *pred, uint8_t *index, unsigned code)
{
	int32_t step = step_table[*index <= THINGY52_ADPCM_INDEX_MAX ? *index :
				  THINGY52_ADPCM_INDEX_MAX];
	/* the reference decoder's shift-and-add: step/8 + the code's bits of
	 * step, step/2, step/4 (each truncated), not (2c+1)*step/8 */
	int32_t diff = step >> 3;
	int32_t p = *pred;
	int idx = *index;

	if (code & 4)
		diff += step;
	if (code & 2)
		diff += step >> 1;
	if (code & 1)
		diff += step >> 2;
	p += (code & 8) ? -diff : diff;
	if (p > INT16_MAX)
		p = INT16_MAX;
	else if (p < INT16_MIN)
		p = INT16_MIN;
	idx += index_adjust[code & 7];
	if (idx < 0)
		idx = 0;
	else if (idx > THINGY52_ADPCM_INDEX_MAX)
		idx = THINGY52_ADPCM_INDEX_MAX;
	*pred = (int16_t)p;
	*index = (uint8_t)idx;
	return (int16_t)p;
}

void thingy52_adpcm_reset(struct thingy52_adpcm *st)
{
	memset(st, 0, sizeof(*st));
}

enum thingy52_sound_err thingy52_mic_decode(struct thingy52_adpcm *st, const uint8_t *buf,
					    size_t len, int16_t out[THINGY52_MIC_SAMPLES],
					    bool *lost)
{
	int16_t pred;
	uint8_t index;
	size_t i;

	if (lost)
		*lost = false;
	if (!buf || len != THINGY52_MIC_FRAME_LEN)
		return THINGY52_SOUND_ERR_LENGTH;
	pred = (int16_t)(uint16_t)((unsigned)buf[0] << 8 | buf[1]);
	index = buf[2];
	if (index > THINGY52_ADPCM_INDEX_MAX)
		return THINGY52_SOUND_ERR_STEP_INDEX;
	if (st) {
		if (st->have && (st->predictor != pred || st->index != index)) {
			st->discontinuities++;
			if (lost)
				*lost = true;
		}
	}
	for (i = 0; i < THINGY52_MIC_SAMPLES / 2; i++) {
		uint8_t b = buf[THINGY52_MIC_HEADER_LEN + i];

		out[2 * i] = thingy52_adpcm_step(&pred, &index, b >> 4);
		out[2 * i + 1] = thingy52_adpcm_step(&pred, &index, b & 0x0f);
	}
	if (st) {
		st->have = true;
		st->predictor = pred;
		st->index = index;
		st->frames++;
	}
	return THINGY52_SOUND_OK;
}

static enum thingy52_sound_err config_validate(const struct thingy52_sound_config *cfg)
{
	if (cfg->speaker_mode < THINGY52_SPEAKER_MODE_MIN ||
	    cfg->speaker_mode > THINGY52_SPEAKER_MODE_MAX)
		return THINGY52_SOUND_ERR_SPEAKER_MODE;
	if (cfg->mic_mode != THINGY52_MIC_MODE_ADPCM && cfg->mic_mode != THINGY52_MIC_MODE_SPL)
		return THINGY52_SOUND_ERR_MIC_MODE;
	return THINGY52_SOUND_OK;
}

enum thingy52_sound_err thingy52_sound_config_decode(const uint8_t *buf, size_t len,
						     struct thingy52_sound_config *out)
{
	if (!buf || len != THINGY52_SOUND_CONFIG_LEN)
		return THINGY52_SOUND_ERR_LENGTH;
	out->speaker_mode = buf[0];
	out->mic_mode = buf[1];
	return config_validate(out);
}

void thingy52_sound_config_for_adpcm(struct thingy52_sound_config *cfg)
{
	if (cfg->speaker_mode < THINGY52_SPEAKER_MODE_MIN ||
	    cfg->speaker_mode > THINGY52_SPEAKER_MODE_MAX)
		cfg->speaker_mode = THINGY52_SPEAKER_MODE_MIN;
	cfg->mic_mode = THINGY52_MIC_MODE_ADPCM;
}

enum thingy52_sound_err thingy52_sound_config_encode(const struct thingy52_sound_config *cfg,
						     uint8_t out[THINGY52_SOUND_CONFIG_LEN])
{
	enum thingy52_sound_err err = config_validate(cfg);

	if (err != THINGY52_SOUND_OK)
		return err;
	out[0] = cfg->speaker_mode;
	out[1] = cfg->mic_mode;
	return THINGY52_SOUND_OK;
}

const char *thingy52_sound_err_name(enum thingy52_sound_err err)
{
	switch (err) {
	case THINGY52_SOUND_OK: return "ok";
	case THINGY52_SOUND_ERR_LENGTH: return "length";
	case THINGY52_SOUND_ERR_STEP_INDEX: return "step_index";
	case THINGY52_SOUND_ERR_SPEAKER_MODE: return "speaker_mode";
	case THINGY52_SOUND_ERR_MIC_MODE: return "mic_mode";
	}
	return "unknown";
}
