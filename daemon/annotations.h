/*
 * annotations.h - the wearer's notes on events (pain 0-10, stiffness 0-10,
 * a short text; domain: "the wearer's own note on an event"). A client's
 * annotate command is checked against the event it names, still in the ring
 * or in the history database, and becomes a sequenced "annotation" event
 * that names it: every client sees it, it is replayed after a reconnect,
 * and it is kept with the events. A later annotation of the same event
 * replaces the earlier one for readers (the newest wins); both are kept.
 */
#ifndef SW_ANNOTATIONS_H
#define SW_ANNOTATIONS_H

#include <stdbool.h>

#include "feed_json.h"
#include "history.h"
#include "store.h"

/*
 * true with *result "ok" once the annotation event is in the store; false
 * with a stable code ("unknown-event", "not-annotatable", "internal") and a
 * message for people. h may be NULL (only events in the ring can be found).
 */
bool annotations_add(struct store *store, struct history *h, const struct feed_command *cmd,
		     const char **result, const char **code, const char **message);

#endif
