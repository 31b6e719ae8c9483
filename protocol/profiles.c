/*
 * profiles.c - the profile table (see profiles.h). UUIDs come from the
 * profile specs: spine-sensor-profile.md (ours and the micro:bit's),
 * thingy52-motion.md and thingy52-sound.md.
 */
#include "profiles.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "microbit.h"
#include "spine_profile.h"
#include "thingy52.h"
#include "thingy52_sound.h"

static const struct sw_profile_info profiles[SW_PROFILE_COUNT] = {
	[SW_PROFILE_SPINE] = {
		"spinewatch", "Spine Sensor", SPINE_SERVICE_UUID, NULL, SPINE_SERVICE_UUID, NULL,
	},
	/* a micro:bit advertises only its name, "BBC micro:bit [tezav]" */
	[SW_PROFILE_MICROBIT] = {
		"microbit", "BBC micro:bit", NULL, "BBC micro:bit", MICROBIT_ACCEL_SERVICE_UUID, NULL,
	},
	/* a Thingy:52 advertises its configuration service; its Motion Service
	 * makes it a posture sensor, its Sound Service a sound sensor */
	[SW_PROFILE_THINGY52] = {
		"thingy52", "Nordic Thingy:52", THINGY52_CONFIG_SERVICE_UUID, "Thingy", THINGY52_MOTION_SERVICE_UUID,
		THINGY52_SOUND_SERVICE_UUID,
	},
};

static const struct {
	const char *uuid;
	enum sw_char_role role;
	enum sw_profile profile;
} chars[] = {
	{ SPINE_POSTURE_UUID, SW_CHAR_SPINE_POSTURE, SW_PROFILE_SPINE },
	{ SPINE_CRACK_UUID, SW_CHAR_SPINE_CRACK, SW_PROFILE_SPINE },
	{ MICROBIT_ACCEL_DATA_UUID, SW_CHAR_MICROBIT_ACCEL, SW_PROFILE_MICROBIT },
	{ MICROBIT_ACCEL_PERIOD_UUID, SW_CHAR_MICROBIT_PERIOD, SW_PROFILE_MICROBIT },
	{ THINGY52_GRAVITY_UUID, SW_CHAR_THINGY_GRAVITY, SW_PROFILE_THINGY52 },
	{ THINGY52_MOTION_CONFIG_UUID, SW_CHAR_THINGY_CONFIG, SW_PROFILE_THINGY52 },
	{ THINGY52_MIC_UUID, SW_CHAR_THINGY_MIC, SW_PROFILE_THINGY52 },
	{ THINGY52_SOUND_CONFIG_UUID, SW_CHAR_THINGY_SOUND_CONFIG, SW_PROFILE_THINGY52 },
};

const struct sw_profile_info *sw_profile_info(enum sw_profile p)
{
	if (p <= SW_PROFILE_NONE || p >= SW_PROFILE_COUNT)
		return NULL;
	return &profiles[p];
}

const char *sw_profile_name(enum sw_profile p)
{
	const struct sw_profile_info *i = sw_profile_info(p);

	return i ? i->name : "";
}

enum sw_profile sw_profile_by_name(const char *name)
{
	int p;

	for (p = SW_PROFILE_NONE + 1; p < SW_PROFILE_COUNT; p++)
		if (name && !strcmp(name, profiles[p].name))
			return (enum sw_profile)p;
	return SW_PROFILE_NONE;
}

enum sw_profile sw_profile_for_service_uuid(const char *uuid)
{
	int p;

	if (!uuid)
		return SW_PROFILE_NONE;
	for (p = SW_PROFILE_NONE + 1; p < SW_PROFILE_COUNT; p++)
		if ((profiles[p].advertised_uuid && !strcasecmp(uuid, profiles[p].advertised_uuid)) ||
		    !strcasecmp(uuid, profiles[p].service_uuid) ||
		    (profiles[p].service_uuid2 && !strcasecmp(uuid, profiles[p].service_uuid2)))
			return (enum sw_profile)p;
	return SW_PROFILE_NONE;
}

enum sw_profile sw_profile_for_name(const char *name)
{
	int p;

	if (!name)
		return SW_PROFILE_NONE;
	for (p = SW_PROFILE_NONE + 1; p < SW_PROFILE_COUNT; p++)
		if (profiles[p].name_prefix &&
		    !strncmp(name, profiles[p].name_prefix, strlen(profiles[p].name_prefix)))
			return (enum sw_profile)p;
	return SW_PROFILE_NONE;
}

enum sw_char_role sw_char_role_for_uuid(const char *uuid)
{
	size_t i;

	for (i = 0; uuid && i < sizeof(chars) / sizeof(chars[0]); i++)
		if (!strcasecmp(uuid, chars[i].uuid))
			return chars[i].role;
	return SW_CHAR_NONE;
}

enum sw_profile sw_char_role_profile(enum sw_char_role r)
{
	size_t i;

	for (i = 0; i < sizeof(chars) / sizeof(chars[0]); i++)
		if (chars[i].role == r)
			return chars[i].profile;
	return SW_PROFILE_NONE;
}

bool sw_char_role_notifies(enum sw_char_role r)
{
	return sw_char_role_is_posture(r) || sw_char_role_is_crack(r);
}

bool sw_char_role_is_posture(enum sw_char_role r)
{
	return r == SW_CHAR_SPINE_POSTURE || r == SW_CHAR_MICROBIT_ACCEL ||
	       r == SW_CHAR_THINGY_GRAVITY;
}

bool sw_char_role_is_crack(enum sw_char_role r)
{
	return r == SW_CHAR_SPINE_CRACK || r == SW_CHAR_THINGY_MIC;
}
