/*
 * access.h - who may use spinewatchd's HTTP API, feed and commands: the
 * access tokens (read from a token file only the service may read), the role
 * each grants, the role of loopback peers without a token, and the checks
 * against DNS rebinding (Host) and cross-site WebSocket hijacking (Origin).
 * Pure decisions over strings; gate.h applies them to lws requests.
 *
 * Token file: one token per line, "TOKEN [ROLE] [LABEL...]"; ROLE is
 * `read` (the default) or `control`; blank lines and lines starting with #
 * are ignored. A token is 16 to 128 characters of A-Z a-z 0-9 - . _ ~ (safe
 * in a URL and a header). The file must not be readable or writable by
 * others (mode o-rwx), like an ssh key.
 */
#ifndef SW_ACCESS_H
#define SW_ACCESS_H

#include <stdbool.h>
#include <stddef.h>

#define ACCESS_TOKEN_MIN 16
#define ACCESS_TOKEN_MAX 128
#define ACCESS_TOKENS_MAX 64
#define ACCESS_LABEL_MAX 48
#define ACCESS_NAMES_MAX 512   /* bytes of the hosts and origins lists */

enum access_role {
	ACCESS_NONE = 0,      /* may load the dashboard's files, nothing else */
	ACCESS_READ = 1,      /* feed, HTTP API, metrics; subscribe, ping, stats */
	ACCESS_CONTROL = 2,   /* and commands that change state: ack, calibrate, annotate */
};

struct access_config {
	char token_file[512];        /* "" for none */
	enum access_role loopback;   /* what a loopback peer gets without a token */
	char hosts[ACCESS_NAMES_MAX];   /* more Host names to accept, comma/space separated */
	char origins[ACCESS_NAMES_MAX]; /* more Origins to accept ("https://name[:port]") */
};

void access_config_default(struct access_config *c);

/* "read", "control", "none" <-> role; -1 / NULL when unknown. */
int access_role_parse(const char *s);
const char *access_role_name(enum access_role r);

struct access_token {
	char secret[ACCESS_TOKEN_MAX + 1];
	enum access_role role;
	char label[ACCESS_LABEL_MAX + 1];   /* for logs; never the secret */
};

struct access {
	struct access_config cfg;
	struct access_token tokens[ACCESS_TOKENS_MAX];
	size_t n_tokens;
	char hostname[256];   /* this machine's name, accepted as a Host too */
};

/*
 * Parse token-file text into a (tokens replaced). 0, or -1 with "line N:
 * why" in err. Duplicate tokens, bad roles and bad tokens are errors.
 */
int access_parse_tokens(struct access *a, const char *text, size_t len, char *err, size_t errlen);

/*
 * Set a up from cfg: reads cfg->token_file (if set) after checking its mode.
 * 0, or -1 with a reason naming the file in err.
 */
int access_init(struct access *a, const struct access_config *cfg, char *err, size_t errlen);

/* The token's entry (compared in constant time per token), or NULL. */
const struct access_token *access_find_token(const struct access *a, const char *token,
					     size_t len);

/*
 * What a request gets. With a token: the token's role, or NONE with
 * *bad_token set when it is not one of ours (also from loopback: a wrong
 * token is a mistake worth reporting, not a reason to fall back). Without
 * one: cfg.loopback for loopback peers, NONE for the rest.
 */
enum access_role access_decide(const struct access *a, bool loopback_peer, const char *token,
			       size_t token_len, bool *bad_token);

/*
 * Host header check against DNS rebinding: the host part (port stripped)
 * must be an IP literal, "localhost" or a name under .localhost, this
 * machine's name (also with .local), or one of cfg.hosts. NULL/"" fails.
 */
bool access_host_ok(const struct access *a, const char *host);

/*
 * Origin check for WebSocket upgrades: no Origin (not a browser) is fine;
 * otherwise its host[:port] must equal host (the Host or :authority
 * header) or forwarded_host (X-Forwarded-Host, set by a reverse proxy; a
 * browser's WebSocket cannot set it), or the whole Origin must be one of
 * cfg.origins. "null" and schemes other than http/https fail.
 */
bool access_origin_ok(const struct access *a, const char *origin, const char *host,
		      const char *forwarded_host);

/* Is a listen host (as in [server] listen) a loopback address? */
bool access_listen_is_loopback(const char *host);

/* Can a server listening on listen_host run with a? NULL, or why not (for
 * people): beyond loopback, or with loopback = none, it needs tokens. */
const char *access_exposure_problem(const struct access *a, const char *listen_host);

#endif
