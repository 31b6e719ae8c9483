/* tests/bench/ws_swarm.c - latency.py's WebSocket clients in C: one process, one epoll loop,
 * N raw client connections to 127.0.0.1. It owns what latency.py's Python Client did (the
 * handshake, frame parsing, pongs, the hello/gap/event bookkeeping, the sampled clients'
 * arrival times), so that a sampled client's frame does not wait for one Python process to
 * parse 100,000 frames/s. No library beyond libc.
 *
 * Driven by latency.py, one command a line on stdin, one reply line on stdout each:
 *   connect PORT PATH N floor|daemon  -> "connected OK"   N clients in waves of 200, each wave
 *                                        until every client has its hello (floor: the 101) or
 *                                        failed; replaces any earlier set. Up to 10 sampled.
 *   reset                             -> "ok"             zero cracks, gaps, disorder, samples
 *   wait-count EXPECT QUIET_S TIMEOUT_S -> "drained 1|0"  until every open client has EXPECT
 *                                        cracks (1), or none came for QUIET_S s / TIMEOUT_S (0)
 *   report                            -> one JSON line: {"clients":[[events,cracks,gaps,
 *                                        disorder,"state",last_rx,hello,[[arrival,key],
 *                                        ...]],...]} (hello null until it came)
 *   cpu                               -> "cpu SECONDS"    own user + system CPU (getrusage)
 *   drop                              -> "ok"             close every client
 *   quit                              -> exit 0 (so does EOF)
 * Between commands the loop keeps reading the clients. Per event: seq must be last + 1 (else
 * disorder). daemon mode: an event with "kind":"crack" is a crack; a sampled client keeps
 * (arrival, duration_ms). floor mode (floor_ws): every event is a crack, the key is "t".
 * Arrival: CLOCK_MONOTONIC (Python's time.monotonic()) taken once per read().
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#define WAVE 200
#define NSAMPLE 10
#define READ_CHUNK 65536
#define MAX_FRAME (16u << 20)
#define CONNECT_TIMEOUT 60.0
#define STDIN_ID UINT64_MAX

enum state { CONNECTING, UPGRADING, OPEN, REFUSED, CLOSED };
static const char *const state_name[] = { "connecting", "upgrading", "open", "refused",
					  "closed" };

struct stamp {
	double t, key;
};

struct client {
	int fd;
	enum state state;
	int sample, has_last, has_hello;
	long long hello, last;
	long events, cracks, gaps, disorder;
	double last_rx;
	unsigned char *carry;           /* an incomplete frame (or response) left from a read */
	size_t carry_len, carry_cap;
	struct stamp *stamps;
	size_t nstamps, stamps_cap;
};

static struct client *cl;
static long ncl;
static int floor_mode;
static int ep = -1;
static unsigned char *scratch;
static size_t scratch_cap;
static char request[512];
static size_t request_len;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);

	if (!q) {
		fprintf(stderr, "ws_swarm: out of memory\n");
		exit(2);
	}
	return q;
}

static void unwatch(struct client *c, enum state s)
{
	c->state = s;
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
}

/* The decimal integer right after key in [p, end); 0 if there is none. */
static int int_after(const unsigned char *p, const unsigned char *end, const char *key,
		     long long *out)
{
	size_t kl = strlen(key);
	const unsigned char *k = memmem(p, (size_t)(end - p), key, kl);
	long long v = 0;
	int neg = 0, digits = 0;

	if (!k)
		return 0;
	k += kl;
	if (k < end && *k == '-') {
		neg = 1;
		k++;
	}
	for (; k < end && *k >= '0' && *k <= '9' && digits < 19; k++, digits++)
		v = v * 10 + (*k - '0');
	*out = neg ? -v : v;
	return digits > 0;
}

static int float_after(const unsigned char *p, const unsigned char *end, const char *key,
		       double *out)
{
	size_t kl = strlen(key), n = 0;
	const unsigned char *k = memmem(p, (size_t)(end - p), key, kl);
	char tmp[48], *e;

	if (!k)
		return 0;
	for (k += kl; k < end && n < sizeof(tmp) - 1 && *k != ',' && *k != '}'; k++)
		tmp[n++] = (char)*k;
	tmp[n] = 0;
	*out = strtod(tmp, &e);
	return e != tmp;
}

static void add_stamp(struct client *c, double t, double key)
{
	if (c->nstamps == c->stamps_cap) {
		c->stamps_cap = c->stamps_cap ? 2 * c->stamps_cap : 1024;
		c->stamps = xrealloc(c->stamps, c->stamps_cap * sizeof(*c->stamps));
	}
	c->stamps[c->nstamps].t = t;
	c->stamps[c->nstamps++].key = key;
}

static int starts(const unsigned char *p, size_t n, const char *s)
{
	size_t l = strlen(s);

	return n >= l && memcmp(p, s, l) == 0;
}

static void message(struct client *c, const unsigned char *p, size_t n, double t)
{
	const unsigned char *end = p + n;
	long long v;

	if (starts(p, n, "{\"type\":\"event\"")) {
		if (!int_after(p, end, "\"seq\":", &v))
			return;
		if (c->has_last && v != c->last + 1)
			c->disorder++;
		c->last = v;
		c->has_last = 1;
		c->events++;
		if (floor_mode) {
			double ts;

			c->cracks++;
			if (c->sample && float_after(p, end, "\"t\":", &ts))
				add_stamp(c, t, ts);
		} else if (memmem(p, n, "\"kind\":\"crack\"", 14)) {
			c->cracks++;
			if (c->sample && int_after(p, end, "\"duration_ms\":", &v))
				add_stamp(c, t, (double)v);
		}
	} else if (starts(p, n, "{\"type\":\"hello\"")) {
		if (int_after(p, end, "\"last_seq\":", &v)) {
			c->hello = c->last = v;
			c->has_hello = c->has_last = 1;
		}
	} else if (starts(p, n, "{\"type\":\"gap\"")) {
		c->gaps++;
		if (int_after(p, end, "\"to\":", &v)) {
			c->last = v;
			c->has_last = 1;
		}
	}
}

/* Parses the whole frames in p[0..n); returns the bytes used. */
static size_t frames(struct client *c, const unsigned char *p, size_t n, double t)
{
	size_t i = 0;

	while (n - i >= 2 && c->state == OPEN) {
		uint64_t len = p[i + 1] & 0x7F;
		size_t hdr = 2;
		unsigned op = p[i] & 0x0F;

		if (len == 126) {
			if (n - i < 4)
				break;
			len = (uint64_t)p[i + 2] << 8 | p[i + 3];
			hdr = 4;
		} else if (len == 127) {
			if (n - i < 10)
				break;
			len = 0;
			for (int k = 0; k < 8; k++)
				len = len << 8 | p[i + 2 + k];
			hdr = 10;
		}
		if (len > MAX_FRAME) {
			fprintf(stderr, "ws_swarm: frame of %llu bytes\n", (unsigned long long)len);
			unwatch(c, CLOSED);
			break;
		}
		if (n - i < hdr + len)
			break;
		const unsigned char *pl = p + i + hdr;

		i += hdr + (size_t)len;
		if (op == 0x8) {
			unwatch(c, CLOSED);
		} else if (op == 0x9) {
			unsigned char pong[6 + 125];

			if (len <= 125) {
				pong[0] = 0x8A;
				pong[1] = (unsigned char)(0x80 | len);
				memset(pong + 2, 0, 4);          /* mask 0: payload as is */
				memcpy(pong + 6, pl, (size_t)len);
				if (send(c->fd, pong, 6 + (size_t)len, MSG_NOSIGNAL) < 0)
					(void)0;                 /* a closing peer; the read says so */
			}
		} else if (op == 0x1) {
			message(c, pl, (size_t)len, t);
		}
	}
	return i;
}

/* Readable: one read (after any carried bytes), then the response or frames. */
static void on_read(struct client *c)
{
	size_t have = c->carry_len, used = 0;
	ssize_t r;
	double t;

	if (scratch_cap < have + READ_CHUNK) {
		scratch_cap = have + READ_CHUNK;
		scratch = xrealloc(scratch, scratch_cap);
	}
	if (have)
		memcpy(scratch, c->carry, have);
	r = read(c->fd, scratch + have, scratch_cap - have);
	t = now();
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		unwatch(c, c->state == UPGRADING ? REFUSED : CLOSED);
		return;
	}
	have += (size_t)r;
	if (c->state == UPGRADING) {
		const unsigned char *e = memmem(scratch, have, "\r\n\r\n", 4);

		if (!e) {
			if (have > 16384) {
				unwatch(c, REFUSED);
				return;
			}
			goto keep;
		}
		if (!starts(scratch, have, "HTTP/1.1 101")) {
			unwatch(c, REFUSED);
			return;
		}
		used = (size_t)(e - scratch) + 4;
		c->state = OPEN;
		if (floor_mode) {
			c->has_hello = 1;
			c->hello = 0;
		}
	}
	c->last_rx = t;
	used += frames(c, scratch + used, have - used, t);
keep:
	c->carry_len = have - used;
	if (c->carry_len > c->carry_cap) {
		c->carry_cap = c->carry_len;
		c->carry = xrealloc(c->carry, c->carry_cap);
	}
	if (c->carry_len)
		memmove(c->carry, scratch + used, c->carry_len);
}

static void on_event(struct client *c, uint32_t ev)
{
	if (c->state == CONNECTING) {
		int err = 0;
		socklen_t l = sizeof(err);
		struct epoll_event e = { .events = EPOLLIN, .data.u64 = (uint64_t)(c - cl) };

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0 || err ||
		    send(c->fd, request, request_len, MSG_NOSIGNAL) != (ssize_t)request_len) {
			unwatch(c, REFUSED);
			return;
		}
		c->state = UPGRADING;
		epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
		return;
	}
	if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))
		on_read(c);
}

/* One epoll_wait (up to timeout_ms) and its events; returns 1 if stdin is readable. */
static int step(int timeout_ms)
{
	struct epoll_event evs[256];
	int n = epoll_wait(ep, evs, 256, timeout_ms), in = 0;

	for (int i = 0; i < n; i++) {
		if (evs[i].data.u64 == STDIN_ID)
			in = 1;
		else if (evs[i].data.u64 < (uint64_t)ncl)
			on_event(&cl[evs[i].data.u64], evs[i].events);
	}
	return in;
}

static void drop(void)
{
	for (long i = 0; i < ncl; i++) {
		close(cl[i].fd);
		free(cl[i].carry);
		free(cl[i].stamps);
	}
	free(cl);
	cl = NULL;
	ncl = 0;
}

static void raise_nofile(long want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)want) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (rlim_t)want ?
			      (rlim_t)want : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void make_request(int port, const char *path)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char raw[18];
	char key[25];
	int k = 0;

	for (int i = 0; i < 16; i++)
		raw[i] = (unsigned char)(rand() & 0xFF);
	raw[16] = raw[17] = 0;
	for (int i = 0; i < 18; i += 3) {
		unsigned v = (unsigned)raw[i] << 16 | (unsigned)raw[i + 1] << 8 | raw[i + 2];

		key[k++] = b64[v >> 18 & 63];
		key[k++] = b64[v >> 12 & 63];
		key[k++] = b64[v >> 6 & 63];
		key[k++] = b64[v & 63];
	}
	key[22] = key[23] = '=';        /* 16 bytes: 22 digits and "==" */
	key[24] = 0;
	request_len = (size_t)snprintf(request, sizeof(request),
		"GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
		"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: spinewatch.v1\r\n\r\n",
		path, port, key);
	if (request_len >= sizeof(request))
		request_len = sizeof(request) - 1;
}

static int settled(long from, long to)
{
	for (long i = from; i < to; i++)
		if (!cl[i].has_hello && cl[i].state != REFUSED && cl[i].state != CLOSED)
			return 0;
	return 1;
}

static long connect_clients(int port, const char *path, long n)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	long nsample = n < NSAMPLE ? n : NSAMPLE, ok = 0;
	double deadline = now() + CONNECT_TIMEOUT;

	drop();
	raise_nofile(n + 64);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	make_request(port, path);
	cl = calloc((size_t)(n > 0 ? n : 1), sizeof(*cl));
	if (!cl)
		return 0;
	while (ncl < n && now() < deadline) {
		long from = ncl, to = ncl + (n - ncl < WAVE ? n - ncl : WAVE);

		for (long i = from; i < to; i++) {
			struct client *c = &cl[i];
			struct epoll_event e = { .events = EPOLLOUT, .data.u64 = (uint64_t)i };

			c->state = CONNECTING;
			for (long k = 0; k < nsample; k++)      /* latency.py's picks */
				if ((long)((double)k * (double)n / (double)nsample) == i)
					c->sample = 1;
			c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			ncl = i + 1;
			if (c->fd < 0) {
				c->state = REFUSED;
				continue;
			}
			if ((connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
			     errno != EINPROGRESS) ||
			    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e) < 0)
				c->state = REFUSED;
		}
		while (!settled(from, to) && now() < deadline)
			step(10);
	}
	for (long i = 0; i < ncl; i++)
		ok += cl[i].has_hello;
	return ok;
}

static int wait_count(long expect, double quiet, double timeout)
{
	double t = now(), deadline = t + timeout, last_change = t;
	long last_total = -1;

	while (now() < deadline) {
		long total = 0, behind = 0;

		step(5);
		for (long i = 0; i < ncl; i++) {
			total += cl[i].cracks;
			behind += cl[i].cracks < expect && cl[i].state == OPEN;
		}
		if (!behind)
			return 1;
		if (total != last_total) {
			last_total = total;
			last_change = now();
		} else if (now() - last_change > quiet) {
			return 0;
		}
	}
	return 0;
}

static void report(void)
{
	printf("{\"clients\":[");
	for (long i = 0; i < ncl; i++) {
		struct client *c = &cl[i];

		printf("%s[%ld,%ld,%ld,%ld,\"%s\",%.9f,", i ? "," : "", c->events, c->cracks,
		       c->gaps, c->disorder, state_name[c->state], c->last_rx);
		if (c->has_hello)
			printf("%lld,[", c->hello);
		else
			printf("null,[");
		for (size_t k = 0; k < c->nstamps; k++)
			printf(floor_mode ? "%s[%.9f,%.9f]" : "%s[%.9f,%.0f]", k ? "," : "",
			       c->stamps[k].t, c->stamps[k].key);
		printf("]]");
	}
	printf("]}\n");
}

/* One command line; returns 0 on quit. */
static int command(char *line)
{
	char path[256], mode[16];
	int port;
	long n;
	double quiet, timeout;

	if (sscanf(line, "connect %d %255s %ld %15s", &port, path, &n, mode) == 4) {
		floor_mode = strcmp(mode, "floor") == 0;
		printf("connected %ld\n", connect_clients(port, path, n));
	} else if (strcmp(line, "reset") == 0) {
		for (long i = 0; i < ncl; i++) {
			cl[i].cracks = cl[i].gaps = cl[i].disorder = 0;
			cl[i].nstamps = 0;
		}
		printf("ok\n");
	} else if (sscanf(line, "wait-count %ld %lf %lf", &n, &quiet, &timeout) == 3) {
		printf("drained %d\n", wait_count(n, quiet, timeout));
	} else if (strcmp(line, "report") == 0) {
		report();
	} else if (strcmp(line, "cpu") == 0) {
		struct rusage ru;

		getrusage(RUSAGE_SELF, &ru);
		printf("cpu %.6f\n", (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
	} else if (strcmp(line, "drop") == 0) {
		drop();
		printf("ok\n");
	} else if (strcmp(line, "quit") == 0) {
		return 0;
	} else {
		printf("error unknown command\n");
	}
	fflush(stdout);
	return 1;
}

int main(void)
{
	struct epoll_event e = { .events = EPOLLIN, .data.u64 = STDIN_ID };
	char line[1024];
	size_t len = 0;

	srand((unsigned)getpid() ^ (unsigned)time(NULL));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, 0, &e) < 0) {
		perror("ws_swarm: epoll");
		return 2;
	}
	for (;;) {
		ssize_t r;
		char *nl;

		if (!step(-1))
			continue;
		r = read(0, line + len, sizeof(line) - 1 - len);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
		line[len] = 0;
		while ((nl = strchr(line, '\n'))) {
			*nl = 0;
			if (!command(line)) {
				drop();
				return 0;
			}
			len -= (size_t)(nl + 1 - line);
			memmove(line, nl + 1, len + 1);
		}
		if (len == sizeof(line) - 1)
			len = 0;                        /* an overlong line: dropped */
	}
	drop();
	return 0;
}
