/*
 * test_mqtt_topics.c - unit tests for protocol/mqtt_topics.c: names and
 * prefixes, the topics of events (hostile ones included), the alerts
 * payload, Home Assistant discovery configs, and every `mqtt` example in
 * protocol/mqtt.md checked against what the code builds.
 *
 * Usage: test_mqtt_topics [path/to/mqtt.md]
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "mqtt_topics.h"

static const char *doc = "protocol/mqtt.md";

static void names(struct mqtt_names *n)
{
	char err[200];

	assert_int_equal(mqtt_names_init(n, "clinic-hub", "", "homeassistant", err, sizeof(err)), 0);
}

static void test_names(void **state)
{
	struct mqtt_names n;
	char err[200];

	(void)state;
	assert_int_equal(mqtt_names_init(&n, "room 2.local/x#", "", "", err, sizeof(err)), 0);
	assert_string_equal(n.hub, "room_2_local_x_");
	assert_string_equal(n.prefix, "spinewatch/room_2_local_x_");
	assert_string_equal(n.discovery, "");
	assert_int_equal(mqtt_names_init(&n, "", "clinic/room-2//", "ha/", err, sizeof(err)), 0);
	assert_string_equal(n.hub, "spinewatch");
	assert_string_equal(n.prefix, "clinic/room-2");
	assert_string_equal(n.discovery, "ha");
	assert_int_equal(mqtt_names_init(&n, "h", "a/#", "", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "'a/#' is not a topic prefix"));
	assert_int_equal(mqtt_names_init(&n, "h", "a/+/b", "", err, sizeof(err)), -1);
	assert_int_equal(mqtt_names_init(&n, "h", "$SYS/x", "", err, sizeof(err)), -1);
	assert_int_equal(mqtt_names_init(&n, "h", "", "home#", err, sizeof(err)), -1);
	assert_false(mqtt_prefix_valid(""));
	assert_false(mqtt_prefix_valid(NULL));
	assert_true(mqtt_prefix_valid("spinewatch/a b"));
	{
		char longp[400];

		memset(longp, 'a', sizeof(longp) - 1);
		longp[sizeof(longp) - 1] = '\0';
		assert_int_equal(mqtt_names_init(&n, "h", longp, "", err, sizeof(err)), -1);
		assert_int_equal(mqtt_names_init(&n, longp, "", "", err, sizeof(err)), 0);
		assert_int_equal(strlen(n.hub), MQTT_HUB_MAX - 1);
	}
}

static void test_node_and_topic(void **state)
{
	struct mqtt_names n;
	char node[MQTT_NODE_LEN], topic[MQTT_TOPIC_MAX];

	(void)state;
	names(&n);
	mqtt_node("C0:FF:EE:00:00:02", node);
	assert_string_equal(node, "c0ffee000002");
	mqtt_node("", node);
	assert_string_equal(node, "hub");
	mqtt_node(NULL, node);
	assert_string_equal(node, "hub");
	mqtt_node("C0:FF:EE:00:00:0#", node);
	assert_string_equal(node, "other");
	mqtt_node("C0:FF:EE:00:00:02:", node);
	assert_string_equal(node, "other");
	assert_int_equal(mqtt_topic(&n, NULL, MQTT_LEAF_STATUS, topic, sizeof(topic)), 0);
	assert_string_equal(topic, "spinewatch/clinic-hub/status");
	assert_int_equal(mqtt_topic(&n, "c0ffee000002", "event/crack", topic, sizeof(topic)), 0);
	assert_string_equal(topic, "spinewatch/clinic-hub/c0ffee000002/event/crack");
	assert_int_equal(mqtt_topic(&n, "c0ffee000002", "event/crack", topic, 20), -1);
}

static const char *crack =
	"{\"type\":\"event\",\"seq\":43,\"ts\":1,\"sensor\":\"C0:FF:EE:00:00:02\",\"kind\":\"crack\","
	"\"crack\":\"pop\",\"intensity\":80,\"duration_ms\":120,\"count\":4}";

static void test_event_pubs(void **state)
{
	struct mqtt_names n;
	struct mqtt_event_info info;
	struct mqtt_pub p[MQTT_EVENT_PUBS];
	const char *raised = "{\"type\":\"event\",\"seq\":7,\"ts\":1,\"sensor\":\"\",\"kind\":\"alert\","
			     "\"id\":1,\"rule\":\"no-break\",\"state\":\"acknowledged\"}";
	const char *cleared = "{\"type\":\"event\",\"seq\":8,\"ts\":1,\"sensor\":\"\",\"kind\":\"alert\","
			      "\"id\":1,\"rule\":\"no-break\",\"state\":\"cleared\"}";

	(void)state;
	names(&n);
	assert_int_equal(mqtt_event_pubs(&n, crack, strlen(crack), &info, p), 1);
	assert_string_equal(p[0].topic, "spinewatch/clinic-hub/c0ffee000002/event/crack");
	assert_ptr_equal(p[0].payload, crack);
	assert_int_equal(p[0].len, strlen(crack));
	assert_int_equal(p[0].qos, 1);
	assert_false(p[0].retain);
	assert_int_equal(info.seq, 43);
	assert_string_equal(info.sensor, "C0:FF:EE:00:00:02");
	assert_string_equal(info.kind, "crack");

	assert_int_equal(mqtt_event_pubs(&n, raised, strlen(raised), &info, p), 2);
	assert_string_equal(p[0].topic, "spinewatch/clinic-hub/hub/event/alert");
	assert_string_equal(p[1].topic, "spinewatch/clinic-hub/hub/alert/no-break");
	assert_true(p[1].retain);
	assert_int_equal(p[1].qos, 1);
	assert_ptr_equal(p[1].payload, raised);
	assert_true(info.alert_active);
	assert_int_equal(mqtt_event_pubs(&n, cleared, strlen(cleared), &info, p), 2);
	assert_false(info.alert_active);
	assert_true(p[1].retain);
	assert_int_equal(p[1].len, 0);   /* removes the retained alert */
}

/* Input that must not become a topic (or crash). */
static void test_hostile_events(void **state)
{
	static const char *bad[] = {
		"",
		"not json",
		"[1,2]",
		"{\"type\":\"posture\",\"seq\":1,\"sensor\":\"\",\"kind\":\"crack\"}",
		"{\"type\":\"event\",\"seq\":0,\"sensor\":\"\",\"kind\":\"crack\"}",
		"{\"type\":\"event\",\"seq\":-4,\"sensor\":\"\",\"kind\":\"crack\"}",
		"{\"type\":\"event\",\"seq\":\"1\",\"sensor\":\"\",\"kind\":\"crack\"}",
		"{\"type\":\"event\",\"seq\":1,\"kind\":\"crack\"}",
		"{\"type\":\"event\",\"seq\":1,\"sensor\":\"\",\"kind\":\"crack/#\"}",
		"{\"type\":\"event\",\"seq\":1,\"sensor\":\"\",\"kind\":\"+\"}",
		"{\"type\":\"event\",\"seq\":1,\"sensor\":\"\",\"kind\":\"\"}",
		"{\"type\":\"event\",\"seq\":1,\"sensor\":\"\",\"kind\":\"a-very-long-kind-name-here\"}",
		"{\"type\":\"event\",\"seq\":1,\"sensor\":\"\",\"kind\":\"Crack\"}",
		"{\"type\":\"event\",\"seq\":1,\"sensor\":\"\",\"kind\":\"alert\",\"rule\":\"x/#\","
		"\"state\":\"raised\"}",
		"{\"type\":\"event\",\"seq\":1,\"sensor\":\"\",\"kind\":\"alert\",\"rule\":\"x\"}",
		"{\"type\":\"event\",\"seq\":1,\"sensor\":\"0123456789012345678901234\",\"kind\":\"crack\"}",
	};
	struct mqtt_names n;
	struct mqtt_event_info info;
	struct mqtt_pub p[MQTT_EVENT_PUBS];
	const char *odd = "{\"type\":\"event\",\"seq\":1,\"sensor\":\"../+/#\",\"kind\":\"crack\"}";
	size_t i;

	(void)state;
	names(&n);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (mqtt_event_pubs(&n, bad[i], strlen(bad[i]), &info, p) != -1)
			fail_msg("accepted: %s", bad[i]);
	/* an odd sensor is not an address: node "other", never in the topic as it is */
	assert_int_equal(mqtt_event_pubs(&n, odd, strlen(odd), &info, p), 1);
	assert_string_equal(p[0].topic, "spinewatch/clinic-hub/other/event/crack");
}

static void test_alerts_payload(void **state)
{
	struct feed_alert_info a[3] = {
		{ 1, "sensor-lost", "C0:FF:EE:00:00:03", "warning", "raised", "Out of reach.", 5 },
		{ 2, "no-break", "", "info", "acknowledged", "Take a \"break\".", 6 },
		{ 3, "battery-low", "C0:FF:EE:00:00:03", "warning", "raised", "Charge it.", 7 },
	};
	size_t len;
	char *s = mqtt_alerts_payload(a, 3, "C0:FF:EE:00:00:03", &len);
	json_t *o;

	(void)state;
	assert_non_null(s);
	assert_int_equal(len, strlen(s));
	o = json_loads(s, 0, NULL);
	assert_true(json_is_array(o));
	assert_int_equal(json_array_size(o), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(o, 1), "id")), 3);
	json_decref(o);
	free(s);
	s = mqtt_alerts_payload(a, 3, "", &len);
	assert_string_equal(s, "[{\"id\":2,\"rule\":\"no-break\",\"sensor\":\"\",\"severity\":\"info\","
			    "\"state\":\"acknowledged\",\"message\":\"Take a \\\"break\\\".\","
			    "\"raised_ts\":6}]");
	free(s);
	s = mqtt_alerts_payload(a, 0, "", &len);
	assert_string_equal(s, "[]");
	free(s);
}

static void test_discovery(void **state)
{
	struct mqtt_names n, off;
	struct mqtt_discovery d[MQTT_ENTITIES];
	struct feed_sensor_info s = { .address = "C0:FF:EE:00:00:02", .name = NULL,
				      .profile = "spinewatch" };
	struct feed_sensor_info bad = { .address = "nope" };
	char err[200];
	int i, j, count;

	(void)state;
	names(&n);
	count = mqtt_discovery_configs(&n, &s, "0.1.0", d);
	assert_int_equal(count, MQTT_ENTITIES);
	for (i = 0; i < count; i++) {
		json_t *o = json_loads(d[i].payload, 0, NULL), *dev;
		const char *keys[] = { "name", "unique_id", "state_topic", "availability_topic",
				       "payload_available", "payload_not_available", "value_template" };
		size_t k;

		assert_non_null(o);
		assert_int_equal(d[i].len, strlen(d[i].payload));
		for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (!json_is_string(json_object_get(o, keys[k])))
				fail_msg("%s: no %s", d[i].topic, keys[k]);
		dev = json_object_get(o, "device");
		assert_true(json_is_array(json_object_get(dev, "identifiers")));
		/* no name advertised: the device is named by its address */
		assert_string_equal(json_string_value(json_object_get(dev, "name")),
				    "C0:FF:EE:00:00:02");
		assert_true(strncmp(d[i].topic, "homeassistant/", 14) == 0);
		assert_non_null(strstr(d[i].topic, "/spinewatch_clinic-hub_c0ffee000002_"));
		assert_non_null(strstr(d[i].topic, "/config"));
		for (j = 0; j < i; j++)
			assert_string_not_equal(d[i].topic, d[j].topic);
		json_decref(o);
	}
	mqtt_discovery_free(d, count);
	assert_int_equal(mqtt_discovery_configs(&n, &bad, "0.1.0", d), 0);
	assert_int_equal(mqtt_names_init(&off, "clinic-hub", "", "", err, sizeof(err)), 0);
	assert_int_equal(mqtt_discovery_configs(&off, &s, "0.1.0", d), 0);
}

/* ---- protocol/mqtt.md's examples ----------------------------------------- */

struct example {
	char topic[MQTT_TOPIC_MAX];
	int qos;
	bool retain;
	char *payload;
};

#define MAX_EXAMPLES 64
static struct example ex[MAX_EXAMPLES];
static int n_ex;

static void load_doc(void)
{
	FILE *f = fopen(doc, "r");
	char line[8192];
	int in = 0;

	assert_non_null(f);
	n_ex = 0;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!in && !strcmp(line, "```mqtt")) {
			in = 1;
			continue;
		}
		if (in == 1) {
			char retain[8];

			assert_true(n_ex < MAX_EXAMPLES);
			if (sscanf(line, "%255s qos=%d retain=%7s", ex[n_ex].topic, &ex[n_ex].qos,
				   retain) != 3)
				fail_msg("mqtt.md: bad example header '%s'", line);
			ex[n_ex].retain = !strcmp(retain, "yes");
			in = 2;
			continue;
		}
		if (in == 2) {
			ex[n_ex].payload = strdup(line);
			in = 3;
			continue;
		}
		if (in == 3) {
			if (strcmp(line, "```"))
				fail_msg("mqtt.md: an example is one topic line and one payload line");
			n_ex++;
			in = 0;
		}
	}
	fclose(f);
	assert_int_equal(in, 0);
	assert_true(n_ex >= 10);
}

static const struct example *documented(const char *topic, int qos, bool retain,
					const char *payload, size_t len)
{
	int i;

	for (i = 0; i < n_ex; i++)
		if (!strcmp(ex[i].topic, topic) && ex[i].qos == qos && ex[i].retain == retain &&
		    strlen(ex[i].payload) == len && !memcmp(ex[i].payload, payload, len))
			return &ex[i];
	return NULL;
}

static bool ends_with(const char *s, const char *tail)
{
	size_t a = strlen(s), b = strlen(tail);

	return a >= b && !strcmp(s + a - b, tail);
}

static void test_doc_examples(void **state)
{
	struct mqtt_names n;
	struct feed_sensor_info sound = { .address = "C0:FF:EE:00:00:02", .name = "Spine Sound",
					  .profile = "spinewatch" };
	struct mqtt_discovery d[MQTT_ENTITIES];
	int i, j, count, disc = 0;

	(void)state;
	names(&n);
	load_doc();
	count = mqtt_discovery_configs(&n, &sound, "0.1.0", d);
	assert_int_equal(count, MQTT_ENTITIES);
	for (i = 0; i < n_ex; i++) {
		const struct example *e = &ex[i];
		json_t *o = json_loads(e->payload, JSON_DECODE_ANY, NULL);
		char node[MQTT_NODE_LEN], want[MQTT_TOPIC_MAX];

		if (strstr(e->topic, "/event/")) {
			struct mqtt_event_info info;
			struct mqtt_pub p[MQTT_EVENT_PUBS];
			int k, np = mqtt_event_pubs(&n, e->payload, strlen(e->payload), &info, p);

			assert_true(np >= 1);
			/* every publication of a documented event is documented */
			for (k = 0; k < np; k++)
				if (!documented(p[k].topic, p[k].qos, p[k].retain, p[k].payload, p[k].len))
					fail_msg("mqtt.md: %s (%s) is not shown", p[k].topic,
						 e->payload);
		} else if (strstr(e->topic, "/alert/")) {
			assert_true(e->qos == 1 && e->retain);
		} else if (!strncmp(e->topic, "homeassistant/", 14)) {
			for (j = 0; j < count; j++)
				if (!strcmp(d[j].topic, e->topic))
					break;
			if (j == count)
				fail_msg("mqtt.md: %s is not a config the code makes", e->topic);
			if (strcmp(d[j].payload, e->payload))
				fail_msg("mqtt.md: %s differs from the code's:\n%s", e->topic, d[j].payload);
			assert_true(e->qos == 1 && e->retain);
			disc++;
		} else if (ends_with(e->topic, "/alerts")) {
			/* the array of hello's alert objects, as the code encodes it */
			struct feed_alert_info a[8];
			size_t k, len;
			char *again;

			assert_true(json_is_array(o) && json_array_size(o) <= 8);
			for (k = 0; k < json_array_size(o); k++) {
				json_t *x = json_array_get(o, k);

				a[k] = (struct feed_alert_info){
					(uint64_t)json_integer_value(json_object_get(x, "id")),
					json_string_value(json_object_get(x, "rule")),
					json_string_value(json_object_get(x, "sensor")),
					json_string_value(json_object_get(x, "severity")),
					json_string_value(json_object_get(x, "state")),
					json_string_value(json_object_get(x, "message")),
					json_integer_value(json_object_get(x, "raised_ts")) };
				assert_non_null(a[k].sensor);
			}
			again = mqtt_alerts_payload(a, k, k ? a[0].sensor : "C0:FF:EE:00:00:01", &len);
			assert_string_equal(again, e->payload);
			free(again);
			assert_true(e->qos == 1 && e->retain);
		} else if (!strcmp(e->topic, "spinewatch/clinic-hub/status")) {
			assert_string_equal(e->payload, MQTT_ONLINE);
			assert_true(e->qos == 1 && e->retain);
		} else {
			/* state, posture, stats: the sensor's node and the leaf of its type */
			const char *type = json_string_value(json_object_get(o, "type"));
			const char *sensor = json_string_value(json_object_get(o, "sensor"));
			const char *leaf = type && !strcmp(type, "status") ? MQTT_LEAF_STATE :
					   type && !strcmp(type, "posture") ? MQTT_LEAF_POSTURE :
					   MQTT_LEAF_STATS;

			if (!type)   /* stats: no type; the sensor is the one in sensors[] */
				sensor = json_string_value(json_object_get(
					json_array_get(json_object_get(o, "sensors"), 0), "sensor"));
			assert_non_null(sensor);
			mqtt_node(sensor, node);
			assert_int_equal(mqtt_topic(&n, node, leaf, want, sizeof(want)), 0);
			assert_string_equal(e->topic, want);
			assert_int_equal(e->qos, strcmp(leaf, MQTT_LEAF_STATS) ? 0 : 1);
			assert_true(e->retain);
		}
		json_decref(o);
	}
	assert_int_equal(disc, MQTT_ENTITIES);   /* every entity is shown */
	mqtt_discovery_free(d, count);
	for (i = 0; i < n_ex; i++)
		free(ex[i].payload);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_node_and_topic),
		cmocka_unit_test(test_event_pubs),
		cmocka_unit_test(test_hostile_events),
		cmocka_unit_test(test_alerts_payload),
		cmocka_unit_test(test_discovery),
		cmocka_unit_test(test_doc_examples),
	};

	if (argc > 1)
		doc = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
