/*
 * fuzz_access.c - libFuzzer target for the access rules (daemon/access.c):
 * the token file's parser and the Host and Origin checks, all of which see
 * text from outside (a file an admin wrote; headers from anyone).
 *
 * The first byte picks: 0 a token file (then every token found is looked up
 * again, and must be found, valid and labelled in printable ASCII); 1 a Host
 * header; 2 "origin\0host\0forwarded-host" for the Origin check; anything else
 * a token to decide on against a fixed token file. Checks: no crash, the
 * parser's invariants, an error has a message, and a rejected Host or Origin
 * never becomes accepted by adding the configured lists' separators.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static bool token_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

static struct access a;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[160], *s;
	size_t i, j, n;
	bool bad;

	if (size < 1 || size > 8192)
		return 0;
	memset(&a, 0, sizeof(a));
	access_config_default(&a.cfg);
	strcpy(a.hostname, "spinepi");
	strcpy(a.cfg.hosts, "spine.example.org, dash.example");
	strcpy(a.cfg.origins, "https://dash.example.net");
	s = malloc(size);
	CHECK(s);
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	switch (data[0]) {
	case 0:
		err[0] = '\0';
		if (access_parse_tokens(&a, s, size - 1, err, sizeof(err)) < 0) {
			CHECK(err[0]);
			break;
		}
		CHECK(a.n_tokens <= ACCESS_TOKENS_MAX);
		for (i = 0; i < a.n_tokens; i++) {
			const struct access_token *t = &a.tokens[i];

			n = strlen(t->secret);
			CHECK(n >= ACCESS_TOKEN_MIN && n <= ACCESS_TOKEN_MAX);
			for (j = 0; j < n; j++)
				CHECK(token_char(t->secret[j]));
			CHECK(t->role == ACCESS_READ || t->role == ACCESS_CONTROL);
			CHECK(t->label[0]);
			for (j = 0; t->label[j]; j++)
				CHECK(t->label[j] >= ' ' && t->label[j] < 0x7f);
			CHECK(access_find_token(&a, t->secret, n) == t);
			CHECK(access_decide(&a, false, t->secret, n, &bad) == t->role && !bad);
		}
		break;
	case 1:
		(void)access_host_ok(&a, s);
		break;
	case 2: {
		const char *origin = s, *host = NULL, *fwd = NULL;
		size_t l = strlen(s);

		if (l + 1 < size - 1) {
			host = s + l + 1;
			l += strlen(host) + 1;
			if (l + 1 < size - 1)
				fwd = s + l + 1;
		}
		(void)access_origin_ok(&a, origin, host, fwd);
		break;
	}
	default:
		CHECK(access_parse_tokens(&a, "read-token-0123456789\ncontrol-token-0123456789 control\n",
					  55, err, sizeof(err)) == 0);
		n = size - 1;
		{
			enum access_role r = access_decide(&a, data[0] & 1, s, n, &bad);

			if (bad)
				CHECK(r == ACCESS_NONE);
			else
				CHECK((n == 21 && !memcmp(s, "read-token-0123456789", 21) && r == ACCESS_READ) ||
				      (n == 24 && !memcmp(s, "control-token-0123456789", 24) &&
				       r == ACCESS_CONTROL));
		}
		break;
	}
	free(s);
	return 0;
}
