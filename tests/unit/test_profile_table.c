/*
 * test_profile_table.c - unit tests for protocol/profiles.c (which device
 * and characteristic is which profile) and the BlueZ client's adoption
 * settings (bluez_config_*: allow/deny lists, profile lists).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bluez.h"
#include "microbit.h"
#include "profiles.h"
#include "spine_profile.h"
#include "thingy52.h"
#include "thingy52_sound.h"

static void test_service_uuids(void **state)
{
	(void)state;
	assert_int_equal(sw_profile_for_service_uuid(SPINE_SERVICE_UUID), SW_PROFILE_SPINE);
	assert_int_equal(sw_profile_for_service_uuid("5370696E-0100-4177-A174-636857617463"),
			 SW_PROFILE_SPINE);
	assert_int_equal(sw_profile_for_service_uuid(MICROBIT_ACCEL_SERVICE_UUID), SW_PROFILE_MICROBIT);
	/* the Thingy advertises its configuration service; motion confirms it */
	assert_int_equal(sw_profile_for_service_uuid(THINGY52_CONFIG_SERVICE_UUID), SW_PROFILE_THINGY52);
	assert_int_equal(sw_profile_for_service_uuid(THINGY52_MOTION_SERVICE_UUID), SW_PROFILE_THINGY52);
	assert_int_equal(sw_profile_for_service_uuid(THINGY52_SOUND_SERVICE_UUID), SW_PROFILE_THINGY52);
	assert_int_equal(sw_profile_for_service_uuid("0000180f-0000-1000-8000-00805f9b34fb"),
			 SW_PROFILE_NONE);
	assert_int_equal(sw_profile_for_service_uuid(""), SW_PROFILE_NONE);
	assert_int_equal(sw_profile_for_service_uuid(NULL), SW_PROFILE_NONE);
}

static void test_names(void **state)
{
	(void)state;
	assert_int_equal(sw_profile_for_name("BBC micro:bit [zotiv]"), SW_PROFILE_MICROBIT);
	assert_int_equal(sw_profile_for_name("Thingy"), SW_PROFILE_THINGY52);
	assert_int_equal(sw_profile_for_name("BBC micro"), SW_PROFILE_NONE);
	assert_int_equal(sw_profile_for_name("my BBC micro:bit"), SW_PROFILE_NONE);
	assert_int_equal(sw_profile_for_name("Spine Clip"), SW_PROFILE_NONE);
	assert_int_equal(sw_profile_for_name(NULL), SW_PROFILE_NONE);
	/* the micro:bit advertises no service, so discovery must not filter by UUID */
	assert_null(sw_profile_info(SW_PROFILE_MICROBIT)->advertised_uuid);
	assert_non_null(sw_profile_info(SW_PROFILE_SPINE)->advertised_uuid);
	assert_null(sw_profile_info(SW_PROFILE_NONE));
	assert_null(sw_profile_info(SW_PROFILE_COUNT));
	assert_string_equal(sw_profile_name(SW_PROFILE_THINGY52), "thingy52");
	assert_string_equal(sw_profile_name(SW_PROFILE_NONE), "");
	assert_int_equal(sw_profile_by_name("microbit"), SW_PROFILE_MICROBIT);
	assert_int_equal(sw_profile_by_name("micro:bit"), SW_PROFILE_NONE);
}

static void test_char_roles(void **state)
{
	(void)state;
	assert_int_equal(sw_char_role_for_uuid(SPINE_POSTURE_UUID), SW_CHAR_SPINE_POSTURE);
	assert_int_equal(sw_char_role_for_uuid(SPINE_CRACK_UUID), SW_CHAR_SPINE_CRACK);
	assert_int_equal(sw_char_role_for_uuid(MICROBIT_ACCEL_DATA_UUID), SW_CHAR_MICROBIT_ACCEL);
	assert_int_equal(sw_char_role_for_uuid(MICROBIT_ACCEL_PERIOD_UUID), SW_CHAR_MICROBIT_PERIOD);
	assert_int_equal(sw_char_role_for_uuid(THINGY52_GRAVITY_UUID), SW_CHAR_THINGY_GRAVITY);
	assert_int_equal(sw_char_role_for_uuid(THINGY52_MOTION_CONFIG_UUID), SW_CHAR_THINGY_CONFIG);
	assert_int_equal(sw_char_role_for_uuid("ef68040b-9b35-4933-9b10-52ffa9740042"), SW_CHAR_NONE);
	assert_true(sw_char_role_notifies(SW_CHAR_THINGY_GRAVITY));
	assert_false(sw_char_role_notifies(SW_CHAR_THINGY_CONFIG));
	assert_false(sw_char_role_notifies(SW_CHAR_MICROBIT_PERIOD));
	assert_true(sw_char_role_is_crack(SW_CHAR_SPINE_CRACK));
	/* the Thingy's microphone: a sound role the host hears cracks in */
	assert_int_equal(sw_char_role_for_uuid(THINGY52_MIC_UUID), SW_CHAR_THINGY_MIC);
	assert_int_equal(sw_char_role_for_uuid("EF680504-9B35-4933-9B10-52FFA9740042"),
			 SW_CHAR_THINGY_MIC);
	assert_int_equal(sw_char_role_for_uuid(THINGY52_SOUND_CONFIG_UUID),
			 SW_CHAR_THINGY_SOUND_CONFIG);
	assert_int_equal(sw_char_role_profile(SW_CHAR_THINGY_MIC), SW_PROFILE_THINGY52);
	assert_true(sw_char_role_notifies(SW_CHAR_THINGY_MIC));
	assert_true(sw_char_role_is_crack(SW_CHAR_THINGY_MIC));
	assert_false(sw_char_role_is_posture(SW_CHAR_THINGY_MIC));
	assert_false(sw_char_role_notifies(SW_CHAR_THINGY_SOUND_CONFIG));
	assert_false(sw_char_role_is_posture(SW_CHAR_SPINE_CRACK));
	assert_int_equal(sw_char_role_profile(SW_CHAR_MICROBIT_PERIOD), SW_PROFILE_MICROBIT);
	assert_int_equal(sw_char_role_profile(SW_CHAR_NONE), SW_PROFILE_NONE);
}

static void test_config_lists(void **state)
{
	struct bluez_config c;
	int i;

	(void)state;
	bluez_config_defaults(&c);
	assert_int_equal(c.profiles, SW_PROFILES_ALL);
	assert_true(c.discovery);
	assert_true(c.acquire);
	assert_int_equal(bluez_config_allow(&c, "c0:ff:ee:00:00:0a"), 0);
	assert_string_equal(c.allow[0], "C0:FF:EE:00:00:0A");   /* normalised */
	assert_int_equal(bluez_config_allow(&c, "C0:FF:EE:00:00"), -1);
	assert_int_equal(bluez_config_allow(&c, "C0-FF-EE-00-00-01"), -1);
	assert_int_equal(bluez_config_allow(&c, "G0:FF:EE:00:00:01"), -1);
	assert_int_equal(bluez_config_deny(&c, "C0:FF:EE:00:00:01 "), -1);
	assert_int_equal(c.n_allow, 1);
	for (i = 1; i < BLUEZ_MAX_LISTED; i++)
		assert_int_equal(bluez_config_deny(&c, "C0:FF:EE:00:00:01"), 0);
	assert_int_equal(bluez_config_deny(&c, "C0:FF:EE:00:00:01"), 0);
	assert_int_equal(bluez_config_deny(&c, "C0:FF:EE:00:00:01"), -1);   /* full */
}

static void test_config_profiles(void **state)
{
	struct bluez_config c;

	(void)state;
	bluez_config_defaults(&c);
	assert_int_equal(bluez_config_profiles(&c, "spinewatch,thingy52"), 0);
	assert_int_equal(c.profiles, SW_PROFILE_BIT(SW_PROFILE_SPINE) | SW_PROFILE_BIT(SW_PROFILE_THINGY52));
	assert_int_equal(bluez_config_profiles(&c, "microbit"), 0);
	assert_int_equal(c.profiles, SW_PROFILE_BIT(SW_PROFILE_MICROBIT));
	assert_int_equal(bluez_config_profiles(&c, "microbit,fitbit"), -1);
	assert_int_equal(c.profiles, SW_PROFILE_BIT(SW_PROFILE_MICROBIT));   /* unchanged */
	assert_int_equal(bluez_config_profiles(&c, ""), -1);
	assert_int_equal(bluez_config_profiles(&c, ",,"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_service_uuids),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_char_roles),
		cmocka_unit_test(test_config_lists),
		cmocka_unit_test(test_config_profiles),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
