/*
 * fuzz_feed_command.c - libFuzzer target for the WebSocket feed's client
 * command parser, feed_parse_command() (protocol/feed_json.c; the commands
 * are in protocol/websocket-feed.md, "Client messages").
 *
 * Checks: an error has a code and a message; the tag is JSON and the reply
 * built from it echoes the command's "id" as the document promises; a parsed
 * command's fields are within their documented ranges; and a parsed command,
 * written back as JSON here, parses to the very same struct.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "feed_json.h"
#include "fuzz_feed_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *encode_command(const struct feed_command *c)
{
	json_t *o = json_object(), *a;
	size_t i;

	CHECK(o);
	if (strcmp(c->tag, "null"))   /* "null": the command had no id */
		json_object_set_new(o, "id", json_loads(c->tag, JSON_DECODE_ANY, NULL));
	switch (c->type) {
	case FEED_CMD_ACK:
		json_object_set_new(o, "type", json_string("ack"));
		json_object_set_new(o, "alert", json_integer((json_int_t)c->alert));
		break;
	case FEED_CMD_CALIBRATE:
		json_object_set_new(o, "type", json_string("calibrate"));
		json_object_set_new(o, "sensor", json_string(c->sensor));
		break;
	case FEED_CMD_STATS:
		json_object_set_new(o, "type", json_string("stats"));
		if (c->sensor[0])
			json_object_set_new(o, "sensor", json_string(c->sensor));
		break;
	case FEED_CMD_ANNOTATE:
		json_object_set_new(o, "type", json_string("annotate"));
		json_object_set_new(o, "event", json_integer((json_int_t)c->event));
		if (c->pain != FEED_SCALE_NONE)
			json_object_set_new(o, "pain", json_integer(c->pain));
		if (c->stiffness != FEED_SCALE_NONE)
			json_object_set_new(o, "stiffness", json_integer(c->stiffness));
		if (c->has_note)
			json_object_set_new(o, "note", json_string(c->note));
		break;
	case FEED_CMD_SUBSCRIBE:
		json_object_set_new(o, "type", json_string("subscribe"));
		if (c->has_since)
			json_object_set_new(o, "since", json_integer((json_int_t)c->since));
		if (c->filter.kinds) {
			a = json_array();
			for (i = 0; i < N_KINDS; i++)
				if (c->filter.kinds & feed_kind_bit(kind_names[i]))
					json_array_append_new(a, json_string(kind_names[i]));
			json_object_set_new(o, "kinds", a);
		}
		if (c->filter.n_sensors) {
			a = json_array();
			for (i = 0; i < c->filter.n_sensors; i++)
				json_array_append_new(a, json_string(c->filter.sensors[i]));
			json_object_set_new(o, "sensors", a);
		}
		break;
	case FEED_CMD_PING:
		json_object_set_new(o, "type", json_string("ping"));
		break;
	}
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const codes[] = { "bad-json", "bad-command", "unknown-command" };
	struct feed_command cmd, again;
	const char *code = NULL, *message = NULL;
	char reply[1024], *text;
	json_t *in, *id = NULL, *r, *t;
	int rc, n;
	size_t i;
	bool known_code = false;

	rc = feed_parse_command((const char *)data, size, &cmd, &code, &message);
	CHECK(rc == 0 || rc == -1);
	CHECK(memchr(cmd.tag, '\0', sizeof(cmd.tag)));

	/* the reply echoes the id: a string of up to 64 bytes or an integer */
	in = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (json_is_object(in)) {
		id = json_object_get(in, "id");
		if (!(json_is_string(id) && json_string_length(id) <= 64) && !json_is_integer(id))
			id = NULL;
	}
	n = feed_encode_reply(cmd.tag, rc == 0, rc == 0 ? "ok" : code, message, reply,
			      sizeof(reply));
	CHECK(n > 0 && (size_t)n < sizeof(reply));
	r = json_loadb(reply, (size_t)n, 0, NULL);
	CHECK(r);
	t = json_object_get(r, "id");
	CHECK(t);
	CHECK(id ? json_equal(t, id) : json_is_null(t));
	json_decref(r);
	json_decref(in);

	if (rc) {
		CHECK(code && message && *message);
		for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
			known_code |= !strcmp(code, codes[i]);
		CHECK(known_code);
		return 0;
	}

	switch (cmd.type) {
	case FEED_CMD_ACK:
		CHECK(cmd.alert >= 1);
		break;
	case FEED_CMD_CALIBRATE:
		CHECK(is_upper_address(cmd.sensor));
		break;
	case FEED_CMD_STATS:
		CHECK(!cmd.sensor[0] || is_upper_address(cmd.sensor));
		break;
	case FEED_CMD_ANNOTATE:
		CHECK(cmd.event >= 1);
		CHECK(cmd.pain == FEED_SCALE_NONE || (cmd.pain >= 0 && cmd.pain <= 10));
		CHECK(cmd.stiffness == FEED_SCALE_NONE || (cmd.stiffness >= 0 && cmd.stiffness <= 10));
		CHECK(cmd.pain != FEED_SCALE_NONE || cmd.stiffness != FEED_SCALE_NONE || cmd.has_note);
		CHECK(strlen(cmd.note) <= FEED_NOTE_MAX);
		CHECK(cmd.has_note || !cmd.note[0]);
		break;
	case FEED_CMD_SUBSCRIBE:
		check_filter(&cmd.filter);
		break;
	case FEED_CMD_PING:
		break;
	default:
		CHECK(0);
	}

	/* parse, write back, parse again: the same command */
	in = encode_command(&cmd);
	text = json_dumps(in, JSON_COMPACT);
	json_decref(in);
	CHECK(text);
	code = message = NULL;
	CHECK(feed_parse_command(text, strlen(text), &again, &code, &message) == 0);
	free(text);
	CHECK(!memcmp(&cmd, &again, sizeof(cmd)));
	return 0;
}
