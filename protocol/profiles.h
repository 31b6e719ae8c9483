/*
 * profiles.h - the table of GATT sensor profiles spinewatch speaks: for each,
 * the service UUID it advertises (if any), the advertising-name pattern that
 * identifies it when it advertises no service, the GATT service that
 * confirms it once resolved, and the role of each characteristic we use.
 * The BlueZ client asks this table what a device or characteristic is;
 * nothing here does I/O.
 */
#ifndef SW_PROFILES_H
#define SW_PROFILES_H

#include <stdbool.h>

enum sw_profile {
	SW_PROFILE_NONE = 0,
	SW_PROFILE_SPINE,
	SW_PROFILE_MICROBIT,
	SW_PROFILE_THINGY52,
	SW_PROFILE_COUNT,
};

#define SW_PROFILE_BIT(p) (1u << (p))
#define SW_PROFILES_ALL (SW_PROFILE_BIT(SW_PROFILE_SPINE) | SW_PROFILE_BIT(SW_PROFILE_MICROBIT) | \
			 SW_PROFILE_BIT(SW_PROFILE_THINGY52))

enum sw_char_role {
	SW_CHAR_NONE = 0,
	SW_CHAR_SPINE_POSTURE,    /* notify: posture samples */
	SW_CHAR_SPINE_CRACK,      /* notify: cracks */
	SW_CHAR_MICROBIT_ACCEL,   /* notify: accelerometer data */
	SW_CHAR_MICROBIT_PERIOD,  /* read/write: accelerometer period */
	SW_CHAR_THINGY_GRAVITY,   /* notify: gravity vector */
	SW_CHAR_THINGY_CONFIG,    /* read/write: motion configuration */
	SW_CHAR_THINGY_MIC,       /* notify: microphone audio (ADPCM frames) */
	SW_CHAR_THINGY_SOUND_CONFIG, /* read/write: sound configuration */
};

struct sw_profile_info {
	const char *name;             /* as in the feed: "spinewatch", ... */
	const char *label;            /* for people: "Spine Sensor", ... */
	const char *advertised_uuid;  /* in advertisements, or NULL */
	const char *name_prefix;      /* advertising-name prefix, or NULL */
	const char *service_uuid;     /* GATT service that confirms it */
	const char *service_uuid2;    /* another one that does, or NULL */
};

/* NULL for SW_PROFILE_NONE or out of range */
const struct sw_profile_info *sw_profile_info(enum sw_profile p);
const char *sw_profile_name(enum sw_profile p);   /* "" for none */
/* by feed name; SW_PROFILE_NONE if unknown */
enum sw_profile sw_profile_by_name(const char *name);

/* The profile whose advertised or GATT service this UUID is (case-insensitive). */
enum sw_profile sw_profile_for_service_uuid(const char *uuid);
/* The profile whose advertising-name pattern matches (NULL-safe). */
enum sw_profile sw_profile_for_name(const char *name);

/* A characteristic's role and the profile it belongs to. */
enum sw_char_role sw_char_role_for_uuid(const char *uuid);
enum sw_profile sw_char_role_profile(enum sw_char_role r);
/* Roles we subscribe to (notifications carrying samples or events). */
bool sw_char_role_notifies(enum sw_char_role r);
/* Roles whose data is a posture sample / cracks (reports, or the audio
 * they are heard in). */
bool sw_char_role_is_posture(enum sw_char_role r);
bool sw_char_role_is_crack(enum sw_char_role r);

#endif
