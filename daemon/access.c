/*
 * access.c - access tokens, roles, Host and Origin checks (see access.h).
 */
#include "access.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

void access_config_default(struct access_config *c)
{
	memset(c, 0, sizeof(*c));
	c->loopback = ACCESS_CONTROL;
}

int access_role_parse(const char *s)
{
	if (!strcmp(s, "read"))
		return ACCESS_READ;
	if (!strcmp(s, "control"))
		return ACCESS_CONTROL;
	if (!strcmp(s, "none"))
		return ACCESS_NONE;
	return -1;
}

const char *access_role_name(enum access_role r)
{
	switch (r) {
	case ACCESS_NONE: return "none";
	case ACCESS_READ: return "read";
	case ACCESS_CONTROL: return "control";
	}
	return NULL;
}

static bool token_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

/* Next blank-separated word of [*p, end): its start and length; 0 at the end. */
static size_t next_word(const char **p, const char *end, const char **word)
{
	const char *s = *p;

	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	*word = s;
	while (s < end && *s != ' ' && *s != '\t')
		s++;
	*p = s;
	return (size_t)(s - *word);
}

int access_parse_tokens(struct access *a, const char *text, size_t len, char *err, size_t errlen)
{
	const char *p = text, *end = text + len;
	unsigned line = 0;

	a->n_tokens = 0;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p)), *w, *lp;
		size_t n, i;
		struct access_token *t;
		char role[16];

		if (!eol)
			eol = end;
		line++;
		lp = p;
		p = eol + 1;
		if (eol > lp && eol[-1] == '\r')
			eol--;
		n = next_word(&lp, eol, &w);
		if (!n || *w == '#')
			continue;
		if (n < ACCESS_TOKEN_MIN || n > ACCESS_TOKEN_MAX) {
			snprintf(err, errlen, "line %u: a token is %d to %d characters long", line,
				 ACCESS_TOKEN_MIN, ACCESS_TOKEN_MAX);
			return -1;
		}
		for (i = 0; i < n; i++) {
			if (!token_char(w[i])) {
				snprintf(err, errlen, "line %u: a token is made of A-Z a-z 0-9 - . _ ~",
					 line);
				return -1;
			}
		}
		if (a->n_tokens == ACCESS_TOKENS_MAX) {
			snprintf(err, errlen, "line %u: more than %d tokens", line, ACCESS_TOKENS_MAX);
			return -1;
		}
		if (access_find_token(a, w, n)) {
			snprintf(err, errlen, "line %u: the same token twice", line);
			return -1;
		}
		t = &a->tokens[a->n_tokens];
		memset(t, 0, sizeof(*t));
		memcpy(t->secret, w, n);
		t->role = ACCESS_READ;
		n = next_word(&lp, eol, &w);
		if (n) {
			int r = -1;

			if (n < sizeof(role)) {
				memcpy(role, w, n);
				role[n] = '\0';
				r = access_role_parse(role);
			}
			if (r != ACCESS_READ && r != ACCESS_CONTROL) {
				snprintf(err, errlen, "line %u: the role is read or control", line);
				return -1;
			}
			t->role = (enum access_role)r;
			while (lp < eol && (*lp == ' ' || *lp == '\t'))
				lp++;
			n = (size_t)(eol - lp);
			if (n > ACCESS_LABEL_MAX)
				n = ACCESS_LABEL_MAX;
			for (i = 0; i < n; i++)   /* labels go to logs: printable ASCII only */
				t->label[i] = lp[i] >= ' ' && lp[i] < 0x7f ? lp[i] : '?';
		}
		if (!t->label[0])
			snprintf(t->label, sizeof(t->label), "token on line %u", line);
		a->n_tokens++;
	}
	return 0;
}

static int read_token_file(struct access *a, const char *path, char *err, size_t errlen)
{
	char buf[ACCESS_TOKENS_MAX * (ACCESS_TOKEN_MAX + ACCESS_LABEL_MAX + 16) + 4096], why[160];
	struct stat st;
	ssize_t n;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0) {
		snprintf(err, errlen, "cannot open the token file %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "the token file %s is not a regular file", path);
		close(fd);
		return -1;
	}
	if (st.st_mode & (S_IROTH | S_IWOTH)) {
		snprintf(err, errlen, "the token file %s can be read or written by everyone "
			 "(mode %03o): chmod o-rw it", path, (unsigned)(st.st_mode & 0777));
		close(fd);
		return -1;
	}
	while ((n = read(fd, buf + len, sizeof(buf) - len)) > 0) {
		len += (size_t)n;
		if (len == sizeof(buf)) {
			snprintf(err, errlen, "the token file %s is too large", path);
			close(fd);
			return -1;
		}
	}
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "cannot read the token file %s: %s", path, strerror(errno));
		return -1;
	}
	if (access_parse_tokens(a, buf, len, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s: %s", path, why);
		return -1;
	}
	return 0;
}

int access_init(struct access *a, const struct access_config *cfg, char *err, size_t errlen)
{
	memset(a, 0, sizeof(*a));
	a->cfg = *cfg;
	if (gethostname(a->hostname, sizeof(a->hostname) - 1) < 0)
		a->hostname[0] = '\0';
	if (cfg->token_file[0] && read_token_file(a, cfg->token_file, err, errlen) < 0)
		return -1;
	return 0;
}

/* Constant time in the candidate's length, whatever the secret. */
static bool same_secret(const char *secret, const char *cand, size_t len)
{
	size_t slen = strlen(secret), i;
	unsigned char d = (unsigned char)(slen != len);

	for (i = 0; i < len; i++)
		d |= (unsigned char)(cand[i] ^ (i < slen ? secret[i] : 0));
	return d == 0;
}

const struct access_token *access_find_token(const struct access *a, const char *token, size_t len)
{
	const struct access_token *hit = NULL;
	size_t i;

	if (!token || len < ACCESS_TOKEN_MIN || len > ACCESS_TOKEN_MAX)
		return NULL;
	for (i = 0; i < a->n_tokens; i++)   /* no early exit */
		if (same_secret(a->tokens[i].secret, token, len) && !hit)
			hit = &a->tokens[i];
	return hit;
}

enum access_role access_decide(const struct access *a, bool loopback_peer, const char *token,
			       size_t token_len, bool *bad_token)
{
	const struct access_token *t;

	*bad_token = false;
	if (token) {
		t = access_find_token(a, token, token_len);
		if (t)
			return t->role;
		*bad_token = true;
		return ACCESS_NONE;
	}
	return loopback_peer ? a->cfg.loopback : ACCESS_NONE;
}

/* Split "host[:port]" / "[v6][:port]" into the host (brackets dropped). */
static bool host_part(const char *hp, size_t hp_len, char *out, size_t cap)
{
	const char *h = hp, *e;
	size_t n;

	if (hp_len && hp[0] == '[') {
		e = memchr(hp, ']', hp_len);
		if (!e || (e + 1 < hp + hp_len && e[1] != ':'))
			return false;
		h = hp + 1;
		n = (size_t)(e - h);
	} else {
		e = memchr(hp, ':', hp_len);
		n = e ? (size_t)(e - hp) : hp_len;
		if (e && memchr(e + 1, ':', hp_len - n - 1))
			return false;   /* a bare IPv6 address is not a Host */
	}
	if (!n || n >= cap)
		return false;
	memcpy(out, h, n);
	out[n] = '\0';
	if (out[n - 1] == '.')   /* "localhost." is "localhost" */
		out[--n] = '\0';
	return n > 0;
}

/* Is name one of the comma/blank separated entries of list (case-insensitive)? */
static bool in_list(const char *list, const char *name, size_t len)
{
	const char *p = list;

	while (*p) {
		size_t n;

		p += strspn(p, ", \t");
		n = strcspn(p, ", \t");
		if (n && n == len && !strncasecmp(p, name, n))
			return true;
		p += n;
	}
	return false;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && !strcasecmp(s + a - b, suffix);
}

bool access_host_ok(const struct access *a, const char *host)
{
	char h[256];
	unsigned char addr[16];
	size_t hn = strlen(a->hostname);

	if (!host || !host_part(host, strlen(host), h, sizeof(h)))
		return false;
	if (inet_pton(AF_INET, h, addr) == 1 || inet_pton(AF_INET6, h, addr) == 1)
		return true;   /* rebinding needs a name: an address cannot be rebound */
	if (!strcasecmp(h, "localhost") || ends_with(h, ".localhost"))
		return true;
	if (hn && (!strcasecmp(h, a->hostname) ||
		   (!strncasecmp(h, a->hostname, hn) && !strcasecmp(h + hn, ".local"))))
		return true;
	return in_list(a->cfg.hosts, h, strlen(h));
}

bool access_origin_ok(const struct access *a, const char *origin, const char *host,
		      const char *forwarded_host)
{
	const char *p;
	size_t n;

	if (!origin || !*origin)
		return true;   /* not a browser */
	if (in_list(a->cfg.origins, origin, strlen(origin)))
		return true;
	if (!strncasecmp(origin, "http://", 7))
		p = origin + 7;
	else if (!strncasecmp(origin, "https://", 8))
		p = origin + 8;
	else
		return false;   /* "null", file:, extensions */
	n = strcspn(p, "/");
	if (p[n])
		return false;   /* an Origin has no path */
	if (host && n == strlen(host) && !strncasecmp(p, host, n))
		return true;
	if (forwarded_host && *forwarded_host) {
		size_t fn = strcspn(forwarded_host, ",");   /* the first proxy's */

		while (fn && forwarded_host[fn - 1] == ' ')
			fn--;
		if (n == fn && !strncasecmp(p, forwarded_host, n))
			return true;
	}
	return false;
}

bool access_listen_is_loopback(const char *host)
{
	struct in_addr v4;
	struct in6_addr v6;

	if (!strcasecmp(host, "localhost") || !strcmp(host, "lo"))
		return true;
	if (inet_pton(AF_INET, host, &v4) == 1)
		return (ntohl(v4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &v6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&v6);
	return false;
}

const char *access_exposure_problem(const struct access *a, const char *listen_host)
{
	if (a->n_tokens)
		return NULL;
	if (!access_listen_is_loopback(listen_host))
		return "listening beyond loopback needs access tokens: set [access] token_file "
		       "(see the README's Security section)";
	if (a->cfg.loopback == ACCESS_NONE)
		return "[access] loopback = none needs access tokens: set [access] token_file";
	return NULL;
}
