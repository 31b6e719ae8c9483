/*
 * mqtt_config.h - the [mqtt] settings (see daemon/mqtt.h for what they
 * drive): their struct, defaults and the checks across them. Apart from
 * the publisher so that the settings code needs no MQTT client.
 */
#ifndef SW_MQTT_CONFIG_H
#define SW_MQTT_CONFIG_H

#include <stdbool.h>

#define MQTT_DEFAULT_PORT 1883
#define MQTT_DEFAULT_KEEPALIVE 60
#define MQTT_STR_MAX 256
#define MQTT_PATH_MAX 512

struct mqtt_config {
	bool enabled;
	char host[MQTT_STR_MAX];
	unsigned port;
	char client_id[MQTT_STR_MAX];      /* "": spinewatch-<hub> */
	char username[MQTT_STR_MAX];
	char password[MQTT_STR_MAX];
	char password_file[MQTT_PATH_MAX]; /* its first line is the password */
	char ca_file[MQTT_PATH_MAX];       /* set: TLS */
	char cert_file[MQTT_PATH_MAX];     /* with key_file: a client certificate */
	char key_file[MQTT_PATH_MAX];
	char topic_prefix[MQTT_STR_MAX];   /* "": spinewatch/<hub> */
	bool discovery;
	char discovery_prefix[MQTT_STR_MAX];
	unsigned keepalive;                /* seconds */
};

void mqtt_config_defaults(struct mqtt_config *c);
/* Cross-setting checks; NULL if fine. */
const char *mqtt_config_check(const struct mqtt_config *c);

#endif
