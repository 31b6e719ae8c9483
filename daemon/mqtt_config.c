/*
 * mqtt_config.c - the [mqtt] settings' defaults and cross-checks (see mqtt_config.h).
 */
#include "mqtt_config.h"

#include <stdio.h>
#include <string.h>

#include "mqtt_topics.h"

void mqtt_config_defaults(struct mqtt_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->host, sizeof(c->host), "localhost");
	c->port = MQTT_DEFAULT_PORT;
	c->discovery = true;
	snprintf(c->discovery_prefix, sizeof(c->discovery_prefix), "homeassistant");
	c->keepalive = MQTT_DEFAULT_KEEPALIVE;
}

const char *mqtt_config_check(const struct mqtt_config *c)
{
	if (!c->enabled)
		return NULL;
	if (!c->host[0])
		return "[mqtt] host must be set when enabled";
	if (c->password[0] && c->password_file[0])
		return "[mqtt] password and password_file: set one of them";
	if ((c->password[0] || c->password_file[0]) && !c->username[0])
		return "[mqtt] a password needs a username";
	if (!c->cert_file[0] != !c->key_file[0])
		return "[mqtt] cert_file and key_file go together";
	if (c->cert_file[0] && !c->ca_file[0])
		return "[mqtt] a client certificate needs ca_file (TLS)";
	if (c->topic_prefix[0] && !mqtt_prefix_valid(c->topic_prefix))
		return "[mqtt] topic_prefix must not contain '+' or '#' or start with '$'";
	if (c->discovery_prefix[0] && !mqtt_prefix_valid(c->discovery_prefix))
		return "[mqtt] discovery_prefix must not contain '+' or '#' or start with '$'";
	return NULL;
}
