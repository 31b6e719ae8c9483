/*
 * mqtt_topics.c - MQTT topics, the alerts payload and Home Assistant
 * discovery configs (see mqtt_topics.h and protocol/mqtt.md).
 *
 * Everything that goes into a topic is checked or made safe here: the hub's
 * name is reduced to [A-Za-z0-9_-], a node is hex digits, and an event's
 * kind and an alert's rule must be lower-case words, so no payload can put
 * '/', '+' or '#' into a topic.
 */
#include "mqtt_topics.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(6))

bool mqtt_prefix_valid(const char *p)
{
	if (!p || !p[0] || p[0] == '$')
		return false;
	for (; *p; p++)
		if (*p == '+' || *p == '#')
			return false;
	return true;
}

int mqtt_names_init(struct mqtt_names *n, const char *hub, const char *prefix,
		    const char *discovery, char *err, size_t errlen)
{
	size_t i, len;

	memset(n, 0, sizeof(*n));
	for (i = 0; hub && hub[i] && i < sizeof(n->hub) - 1; i++)
		n->hub[i] = (isalnum((unsigned char)hub[i]) || hub[i] == '-' || hub[i] == '_') ?
			    hub[i] : '_';
	if (!n->hub[0])
		snprintf(n->hub, sizeof(n->hub), "spinewatch");
	if (prefix && prefix[0]) {
		len = strlen(prefix);
		while (len > 1 && prefix[len - 1] == '/')
			len--;
		if (len >= sizeof(n->prefix)) {
			snprintf(err, errlen, "the topic prefix is longer than %zu bytes",
				 sizeof(n->prefix) - 1);
			return -1;
		}
		memcpy(n->prefix, prefix, len);
		n->prefix[len] = '\0';
	} else {
		snprintf(n->prefix, sizeof(n->prefix), "spinewatch/%s", n->hub);
	}
	if (!mqtt_prefix_valid(n->prefix) || !strcmp(n->prefix, "/")) {
		snprintf(err, errlen, "'%s' is not a topic prefix (no '+', '#', not empty, not "
			 "starting with '$')", n->prefix);
		return -1;
	}
	if (discovery && discovery[0]) {
		len = strlen(discovery);
		while (len > 1 && discovery[len - 1] == '/')
			len--;
		if (len >= sizeof(n->discovery)) {
			snprintf(err, errlen, "the discovery prefix is longer than %zu bytes",
				 sizeof(n->discovery) - 1);
			return -1;
		}
		memcpy(n->discovery, discovery, len);
		n->discovery[len] = '\0';
		if (!mqtt_prefix_valid(n->discovery)) {
			snprintf(err, errlen, "'%s' is not a discovery prefix", n->discovery);
			return -1;
		}
	}
	return 0;
}

static bool is_address(const char *s)
{
	int i;

	for (i = 0; i < 17; i++) {
		if (i % 3 == 2) {
			if (s[i] != ':')
				return false;
		} else if (!isxdigit((unsigned char)s[i])) {
			return false;
		}
	}
	return s[17] == '\0';
}

void mqtt_node(const char *sensor, char out[MQTT_NODE_LEN])
{
	int i, j = 0;

	if (!sensor || !sensor[0]) {
		snprintf(out, MQTT_NODE_LEN, "%s", MQTT_NODE_HUB);
		return;
	}
	if (!is_address(sensor)) {
		snprintf(out, MQTT_NODE_LEN, "other");
		return;
	}
	for (i = 0; i < 17; i++)
		if (i % 3 != 2)
			out[j++] = (char)tolower((unsigned char)sensor[i]);
	out[j] = '\0';
}

int mqtt_topic(const struct mqtt_names *n, const char *node, const char *leaf, char *out,
	       size_t cap)
{
	int r = node ? snprintf(out, cap, "%s/%s/%s", n->prefix, node, leaf) :
		       snprintf(out, cap, "%s/%s", n->prefix, leaf);

	return r < 0 || (size_t)r >= cap ? -1 : 0;
}

/* a lower-case word of letters and '-' that fits in cap */
static bool copy_word(char *dst, size_t cap, const char *s)
{
	size_t i;

	if (!s || !s[0] || strlen(s) >= cap)
		return false;
	for (i = 0; s[i]; i++)
		if (!islower((unsigned char)s[i]) && s[i] != '-')
			return false;
	memcpy(dst, s, i + 1);
	return true;
}

int mqtt_event_pubs(const struct mqtt_names *n, const char *json, size_t len,
		    struct mqtt_event_info *info, struct mqtt_pub out[MQTT_EVENT_PUBS])
{
	json_t *o = json_loadb(json, len, 0, NULL), *v;
	const char *type, *sensor, *state;
	char leaf[64];
	int count = -1;

	memset(info, 0, sizeof(*info));
	if (!json_is_object(o))
		goto out;
	type = json_string_value(json_object_get(o, "type"));
	v = json_object_get(o, "seq");
	if (!type || strcmp(type, "event") || !json_is_integer(v) || json_integer_value(v) < 1)
		goto out;
	info->seq = (uint64_t)json_integer_value(v);
	sensor = json_string_value(json_object_get(o, "sensor"));
	if (!sensor || strlen(sensor) >= sizeof(info->sensor))
		goto out;
	memcpy(info->sensor, sensor, strlen(sensor) + 1);
	mqtt_node(sensor, info->node);
	if (!copy_word(info->kind, sizeof(info->kind),
		       json_string_value(json_object_get(o, "kind"))))
		goto out;
	snprintf(leaf, sizeof(leaf), "event/%s", info->kind);
	if (mqtt_topic(n, info->node, leaf, out[0].topic, sizeof(out[0].topic)))
		goto out;
	out[0].payload = json;
	out[0].len = len;
	out[0].qos = 1;
	out[0].retain = false;
	count = 1;
	if (strcmp(info->kind, "alert"))
		goto out;
	state = json_string_value(json_object_get(o, "state"));
	if (!copy_word(info->rule, sizeof(info->rule),
		       json_string_value(json_object_get(o, "rule"))) || !state) {
		count = -1;
		goto out;
	}
	info->alert_active = strcmp(state, "cleared") != 0;
	snprintf(leaf, sizeof(leaf), "alert/%s", info->rule);
	if (mqtt_topic(n, info->node, leaf, out[1].topic, sizeof(out[1].topic))) {
		count = -1;
		goto out;
	}
	out[1].payload = info->alert_active ? json : "";
	out[1].len = info->alert_active ? len : 0;
	out[1].qos = 1;
	out[1].retain = true;
	count = 2;
out:
	json_decref(o);
	return count;
}

char *mqtt_alerts_payload(const struct feed_alert_info *a, size_t n, const char *sensor,
			  size_t *len)
{
	json_t *arr = json_array();
	char *out;
	size_t i;

	if (!arr)
		return NULL;
	for (i = 0; i < n; i++) {
		const char *s = a[i].sensor ? a[i].sensor : "";

		if (strcmp(s, sensor ? sensor : ""))
			continue;
		if (json_array_append_new(arr, json_pack(
			"{s:I, s:s, s:s, s:s, s:s, s:s, s:I}",
			"id", (json_int_t)a[i].id, "rule", a[i].rule ? a[i].rule : "",
			"sensor", s, "severity", a[i].severity ? a[i].severity : "info",
			"state", a[i].state ? a[i].state : "raised",
			"message", a[i].message ? a[i].message : "",
			"raised_ts", (json_int_t)a[i].raised_ts))) {
			json_decref(arr);
			return NULL;
		}
	}
	out = json_dumps(arr, DUMP_FLAGS);
	json_decref(arr);
	if (out && len)
		*len = strlen(out);
	return out;
}

/* ---- Home Assistant discovery ------------------------------------------- */

struct entity {
	const char *id, *component, *name, *leaf, *value_template;
	const char *device_class, *unit, *state_class, *category, *icon;
	bool attributes;   /* the state topic's array as attributes */
};

static const struct entity entities[MQTT_ENTITIES] = {
	{ "posture_angle", "sensor", "Posture angle", MQTT_LEAF_POSTURE,
	  "{{ value_json.angle }}", NULL, "\xc2\xb0", "measurement", NULL, "mdi:human-handsdown",
	  false },
	{ "slouching", "binary_sensor", "Slouching", MQTT_LEAF_POSTURE,
	  "{{ 'ON' if value_json.slouching else 'OFF' }}", NULL, NULL, NULL, NULL,
	  "mdi:seat-recline-extra", false },
	{ "cracks_today", "sensor", "Cracks today", MQTT_LEAF_STATS,
	  "{{ value_json.sensors[0].today.cracks if value_json.sensors else 0 }}", NULL, NULL,
	  "total_increasing", NULL, "mdi:counter", false },
	{ "last_crack", "sensor", "Last crack", "event/crack",
	  "{{ value_json.crack }}", "enum", NULL, NULL, NULL, "mdi:bone", false },
	{ "battery", "sensor", "Battery", MQTT_LEAF_STATE,
	  "{{ value_json.battery }}", "battery", "%", "measurement", "diagnostic", NULL, false },
	{ "signal", "sensor", "Signal", MQTT_LEAF_STATE,
	  "{{ value_json.rssi }}", "signal_strength", "dBm", "measurement", "diagnostic", NULL,
	  false },
	{ "link", "sensor", "Link", MQTT_LEAF_STATE,
	  "{{ value_json.state }}", NULL, NULL, NULL, "diagnostic", "mdi:bluetooth", false },
	{ "alerts", "sensor", "Active alerts", MQTT_LEAF_ALERTS,
	  "{{ value_json | count }}", NULL, NULL, "measurement", NULL, "mdi:alert-circle-outline",
	  true },
};

static int set_str(json_t *o, const char *key, const char *value)
{
	return value ? json_object_set_new(o, key, json_string(value)) : 0;
}

static char *entity_config(const struct mqtt_names *n, const struct entity *e,
			   const struct feed_sensor_info *s, const char *node, const char *version)
{
	char state[MQTT_TOPIC_MAX], avail[MQTT_TOPIC_MAX], uid[160], dev_id[128], dev_name[160];
	json_t *o, *dev;
	char *out = NULL;
	int bad = 0;

	if (mqtt_topic(n, node, e->leaf, state, sizeof(state)) ||
	    mqtt_topic(n, NULL, MQTT_LEAF_STATUS, avail, sizeof(avail)))
		return NULL;
	snprintf(dev_id, sizeof(dev_id), "spinewatch_%s_%s", n->hub, node);
	snprintf(uid, sizeof(uid), "%s_%s", dev_id, e->id);
	snprintf(dev_name, sizeof(dev_name), "%s", s->name && s->name[0] ? s->name : s->address);
	dev = json_pack("{s:[s], s:s, s:s, s:s, s:s}", "identifiers", dev_id, "name", dev_name,
			"manufacturer", "spinewatch",
			"model", s->profile && s->profile[0] ? s->profile : "sensor",
			"sw_version", version ? version : "");
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:{s:s, s:s}}",
		      "name", e->name, "unique_id", uid, "state_topic", state,
		      "value_template", e->value_template, "availability_topic", avail,
		      "payload_available", MQTT_ONLINE, "payload_not_available", MQTT_OFFLINE,
		      "device", dev, "origin", "name", "spinewatch", "sw_version",
		      version ? version : "");
	if (!o)
		return NULL;
	bad |= set_str(o, "device_class", e->device_class);
	bad |= set_str(o, "unit_of_measurement", e->unit);
	bad |= set_str(o, "state_class", e->state_class);
	bad |= set_str(o, "entity_category", e->category);
	bad |= set_str(o, "icon", e->icon);
	if (!strcmp(e->component, "binary_sensor")) {
		bad |= set_str(o, "payload_on", "ON");
		bad |= set_str(o, "payload_off", "OFF");
	}
	if (e->device_class && !strcmp(e->device_class, "enum"))
		bad |= json_object_set_new(o, "options", json_pack("[s, s, s]", "pop", "click",
								   "grind"));
	if (e->attributes) {
		bad |= set_str(o, "json_attributes_topic", state);
		bad |= set_str(o, "json_attributes_template", "{{ {'alerts': value_json} | tojson }}");
	}
	if (!bad)
		out = json_dumps(o, DUMP_FLAGS);
	json_decref(o);
	return out;
}

int mqtt_discovery_configs(const struct mqtt_names *n, const struct feed_sensor_info *s,
			   const char *version, struct mqtt_discovery out[MQTT_ENTITIES])
{
	char node[MQTT_NODE_LEN];
	int i;

	if (!n->discovery[0] || !s->address || !is_address(s->address))
		return 0;
	mqtt_node(s->address, node);
	for (i = 0; i < MQTT_ENTITIES; i++) {
		const struct entity *e = &entities[i];
		int r = snprintf(out[i].topic, sizeof(out[i].topic), "%s/%s/spinewatch_%s_%s_%s/config",
				 n->discovery, e->component, n->hub, node, e->id);

		out[i].payload = r > 0 && (size_t)r < sizeof(out[i].topic) ?
				 entity_config(n, e, s, node, version) : NULL;
		if (!out[i].payload) {
			mqtt_discovery_free(out, i);
			return -1;
		}
		out[i].len = strlen(out[i].payload);
	}
	return MQTT_ENTITIES;
}

void mqtt_discovery_free(struct mqtt_discovery *d, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		free(d[i].payload);
		d[i].payload = NULL;
	}
}
