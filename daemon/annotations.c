/*
 * annotations.c - checking an annotate command against the event it names
 * and turning it into an annotation event (see annotations.h).
 */
#include "annotations.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log.h"

/* The named event as JSON: from the ring, else from the database. NULL: not found. */
static json_t *find_event(struct store *store, struct history *h, uint64_t seq)
{
	const struct ring *r = store_events(store);
	uint64_t cursor = seq - 1;
	const unsigned char *data;
	size_t len;
	json_t *o = NULL;
	char *text;

	if (seq >= ring_oldest_seq(r) && ring_oldest_seq(r) && seq <= ring_last_seq(r) &&
	    ring_read(r, &cursor, &data, &len, NULL) == RING_DATA && cursor == seq)
		return json_loadb((const char *)data, len, 0, NULL);
	if (h && (text = history_event_json(h, seq))) {
		o = json_loads(text, 0, NULL);
		free(text);
	}
	return o;
}

bool annotations_add(struct store *store, struct history *h, const struct feed_command *cmd,
		     const char **result, const char **code, const char **message)
{
	json_t *target = find_event(store, h, cmd->event);
	const char *kind = json_string_value(json_object_get(target, "kind"));
	const char *sensor = json_string_value(json_object_get(target, "sensor"));
	struct feed_event ev;
	bool ok = false;

	if (!target || !kind) {
		*code = "unknown-event";
		*message = "no event with that seq is kept";
		goto out;
	}
	if (!strcmp(kind, "annotation")) {
		*code = "not-annotatable";
		*message = "annotate the event itself, not an annotation";
		goto out;
	}
	memset(&ev, 0, sizeof(ev));
	ev.kind = FEED_EV_ANNOTATION;
	ev.ts_ms = clock_epoch_ms();
	snprintf(ev.sensor, sizeof(ev.sensor), "%s", sensor ? sensor : "");
	ev.annotation.event = cmd->event;
	ev.annotation.of = kind;
	ev.annotation.pain = cmd->pain;
	ev.annotation.stiffness = cmd->stiffness;
	ev.annotation.note = cmd->has_note ? cmd->note : NULL;
	if (!store_add_event(store, &ev)) {
		*code = "internal";
		*message = "the annotation could not be stored";
		goto out;
	}
	log_info("annotation of event %llu (%s)", (unsigned long long)cmd->event, kind);
	*result = "ok";
	ok = true;
out:
	json_decref(target);
	return ok;
}
