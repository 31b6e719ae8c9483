/*
 * thingy52_sound.h - codecs for the parts of the Nordic Thingy:52 Sound
 * Service that spinewatch uses (see thingy52-sound.md): the Microphone
 * notification (one frame of IMA/DVI ADPCM: a big-endian int16 predictor, a
 * step index, 128 bytes of 4-bit codes, first sample in the high nibble)
 * decoded into 256 signed 16-bit samples at 16 kHz, with a frame-continuity
 * check that counts lost frames; and the Sound Configuration characteristic
 * (speaker mode, microphone mode). Plain functions over bytes, no I/O, no
 * allocation.
 *
 * This file owns: the Thingy:52 Sound Service UUIDs, the microphone frame
 * layout, the IMA ADPCM step and index tables, enum thingy52_sound_err and
 * its names.
 */
#ifndef SW_THINGY52_SOUND_H
#define SW_THINGY52_SOUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define THINGY52_SOUND_SERVICE_UUID "ef680500-9b35-4933-9b10-52ffa9740042"
#define THINGY52_SOUND_CONFIG_UUID  "ef680501-9b35-4933-9b10-52ffa9740042"
#define THINGY52_MIC_UUID           "ef680504-9b35-4933-9b10-52ffa9740042"

#define THINGY52_MIC_RATE_HZ     16000
#define THINGY52_MIC_SAMPLES     256   /* samples per frame */
#define THINGY52_MIC_HEADER_LEN  3     /* int16 BE predictor, u8 step index */
#define THINGY52_MIC_FRAME_LEN   (THINGY52_MIC_HEADER_LEN + THINGY52_MIC_SAMPLES / 2) /* 131 */
#define THINGY52_MIC_MIN_MTU     (THINGY52_MIC_FRAME_LEN + 3)  /* ATT header: 134 */
#define THINGY52_ADPCM_INDEX_MAX 88

#define THINGY52_SOUND_CONFIG_LEN 2     /* u8 speaker mode, u8 microphone mode */
#define THINGY52_SPEAKER_MODE_MIN 1     /* 1 frequency, 2 8-bit PCM, 3 sample */
#define THINGY52_SPEAKER_MODE_MAX 3
#define THINGY52_MIC_MODE_ADPCM   1
#define THINGY52_MIC_MODE_SPL     2

enum thingy52_sound_err {
	THINGY52_SOUND_OK = 0,
	THINGY52_SOUND_ERR_LENGTH,        /* "length": not exactly the expected size */
	THINGY52_SOUND_ERR_STEP_INDEX,    /* "step_index": above 88 */
	THINGY52_SOUND_ERR_SPEAKER_MODE,  /* "speaker_mode": not 1-3 */
	THINGY52_SOUND_ERR_MIC_MODE,      /* "mic_mode": not 1-2 */
};

/* Sound Configuration (ef680501), fields in wire order. */
struct thingy52_sound_config {
	uint8_t speaker_mode;
	uint8_t mic_mode;
};

/*
 * One microphone stream's decoder state: where the previous frame left the
 * predictor, so that a frame whose header does not continue from it is
 * known to follow a lost one.
 */
struct thingy52_adpcm {
	bool have;            /* a frame was decoded since the last reset */
	int16_t predictor;    /* state after the previous frame */
	uint8_t index;
	uint64_t frames;      /* frames decoded */
	uint64_t discontinuities;  /* frames whose header did not continue the previous one */
};

void thingy52_adpcm_reset(struct thingy52_adpcm *st);

/*
 * Decodes one Microphone notification (exactly THINGY52_MIC_FRAME_LEN bytes)
 * into out[THINGY52_MIC_SAMPLES]. Each frame restarts the decoder from its
 * own header, so a lost frame costs only its own samples. When st is not
 * NULL and the header does not continue from where the previous frame left
 * the decoder, *lost (if not NULL) is set true and st->discontinuities
 * counted: at least one frame was lost in between (or the sensor restarted
 * its stream). Errors, in this order: LENGTH (or buf NULL), STEP_INDEX; on an
 * error nothing is written and st is untouched.
 */
enum thingy52_sound_err thingy52_mic_decode(struct thingy52_adpcm *st, const uint8_t *buf,
					    size_t len, int16_t out[THINGY52_MIC_SAMPLES],
					    bool *lost);

/*
 * The IMA ADPCM step: decodes one 4-bit code from (*pred, *index), updating
 * both. Exposed for the encoder in the tests and the simulator's spec.
 */
int16_t thingy52_adpcm_step(int16_t *pred, uint8_t *index, unsigned code);

/* Sound Configuration, exactly 2 bytes; *out filled when the length is right. */
enum thingy52_sound_err thingy52_sound_config_decode(const uint8_t *buf, size_t len,
						     struct thingy52_sound_config *out);
/* What spinewatch writes back: the speaker mode kept (1 if out of range), the
 * microphone in ADPCM mode. */
void thingy52_sound_config_for_adpcm(struct thingy52_sound_config *cfg);
/* Validates, then writes exactly 2 bytes; out untouched on error. */
enum thingy52_sound_err thingy52_sound_config_encode(const struct thingy52_sound_config *cfg,
						     uint8_t out[THINGY52_SOUND_CONFIG_LEN]);

/* "ok", "length", "step_index", "speaker_mode", "mic_mode"; "unknown" otherwise */
const char *thingy52_sound_err_name(enum thingy52_sound_err err);

#endif
