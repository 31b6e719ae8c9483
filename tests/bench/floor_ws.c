/* tests/bench/floor_ws.c - the floor for spinewatchd's WebSocket hop: a bare libwebsockets
 * server on loopback that fans messages out to N clients, one lws_write per message per
 * client (one per WRITEABLE callback), and does nothing else.
 *
 *   floor_ws --port P --clients N --rate R --count C [--size BYTES]
 *
 * Once N clients have upgraded (any path, subprotocol spinewatch.v1 or none) it prints
 * "go CPU" and makes C messages at R per second (on a 1 ms timer, as many as are due), each
 * a JSON text frame of about BYTES bytes (the size of a spinewatchd crack event):
 *   {"type":"event","seq":I,"t":CLOCK_MONOTONIC seconds,"pad":"..."}
 * A client more than RING messages behind skips ahead (counted). When every client has every
 * message it prints "done CPU SKIPPED" (CPU: getrusage user + system seconds). It runs until
 * SIGTERM. The tick (every 1/R s, at most 1000 a second) is a timerfd adopted into the lws
 * loop: with an lws_sul timer less than 1 ms away, lws 4.1.6 poll()s with a zero timeout
 * until it is due (a busy loop).
 */
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <time.h>

#define RING 65536
#define MAXLEN 1024

struct msg {
	unsigned char buf[LWS_PRE + MAXLEN];
	size_t len;
};

struct pss {
	struct pss *next;
	struct lws *wsi;
	long cursor;
};

static struct msg *ring;
static struct pss *clients;
static long nclients, want_clients, rate, count, generated, skipped;
static size_t size = 230;
static int started, done;
static double t_start;
static struct lws_context *ctx;
static lws_sorted_usec_list_t sul_start;
static int tfd = -1;
static volatile sig_atomic_t interrupted;
static const struct lws_protocols protocols[];

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void check_done(void)
{
	struct pss *p;

	if (done || !started || generated < count)
		return;
	for (p = clients; p; p = p->next)
		if (p->cursor < count)
			return;
	done = 1;
	printf("done %.6f %ld\n", cpu(), skipped);
	fflush(stdout);
}

static void make_msg(long i)
{
	struct msg *m = &ring[i % RING];
	char *s = (char *)m->buf + LWS_PRE;
	int n = snprintf(s, MAXLEN, "{\"type\":\"event\",\"seq\":%ld,\"t\":%.6f,\"pad\":\"", i + 1,
			 now());
	size_t len = (size_t)n;

	while (len + 2 < size && len + 2 < MAXLEN)
		s[len++] = 'x';
	s[len++] = '"';
	s[len++] = '}';
	m->len = len;
}

static void tick(void)
{
	long due;

	if (!started)
		return;
	due = (long)((now() - t_start) * (double)rate) + 1;
	if (due > count)
		due = count;
	if (due > generated) {
		while (generated < due)
			make_msg(generated++);
		lws_callback_on_writable_all_protocol(ctx, &protocols[0]);
	}
	if (generated >= count) {
		struct itimerspec off = { { 0, 0 }, { 0, 0 } };

		timerfd_settime(tfd, 0, &off, NULL);
	}
	check_done();
}

static void start(lws_sorted_usec_list_t *sul)
{
	(void)sul;
	started = 1;
	printf("go %.6f\n", cpu());
	fflush(stdout);
	t_start = now();
	tick();
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		    size_t len)
{
	struct pss *p = user, **pp;
	struct msg *m;

	(void)in;
	(void)len;
	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		p->wsi = wsi;
		p->cursor = generated;
		p->next = clients;
		clients = p;
		if (++nclients == want_clients && !started)
			lws_sul_schedule(ctx, 0, &sul_start, start, 200000);
		break;
	case LWS_CALLBACK_CLOSED:
		for (pp = &clients; *pp; pp = &(*pp)->next)
			if (*pp == p) {
				*pp = p->next;
				break;
			}
		nclients--;
		break;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (p->cursor >= generated)
			break;
		if (generated - p->cursor > RING) {
			skipped += generated - RING - p->cursor;
			p->cursor = generated - RING;
		}
		m = &ring[p->cursor % RING];
		if (lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT) < (int)m->len)
			return -1;
		p->cursor++;
		if (p->cursor < generated)
			lws_callback_on_writable(wsi);
		else
			check_done();
		break;
	default:
		break;
	}
	return 0;
}

static int timer_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
			  void *in, size_t len)
{
	uint64_t expirations;

	(void)wsi;
	(void)user;
	(void)in;
	(void)len;
	if (reason == LWS_CALLBACK_RAW_RX_FILE) {
		if (read(tfd, &expirations, sizeof(expirations)) < 0)
			return 0;
		tick();
	}
	return 0;
}

static const struct lws_protocols protocols[] = {
	{ "spinewatch.v1", callback, sizeof(struct pss), 4096, 0, NULL, 0 },
	{ "floor-timer", timer_callback, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static void on_term(int sig)
{
	(void)sig;
	interrupted = 1;
	if (ctx)
		lws_cancel_service(ctx);
}

int main(int argc, char **argv)
{
	struct lws_context_creation_info info;
	int i, port = 0;

	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--port"))
			port = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--clients"))
			want_clients = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--rate"))
			rate = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--count"))
			count = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--size"))
			size = (size_t)atol(argv[i + 1]);
	}
	if (port <= 0 || want_clients < 1 || rate < 1 || count < 1 || size < 64 || size > MAXLEN) {
		fprintf(stderr, "usage: %s --port P --clients N --rate R --count C [--size 64-1024]\n",
			argv[0]);
		return 2;
	}
	ring = calloc(RING, sizeof(*ring));
	if (!ring)
		return 1;
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	lws_set_log_level(LLL_ERR, NULL);
	memset(&info, 0, sizeof(info));
	info.port = port;
	info.iface = "127.0.0.1";
	info.protocols = protocols;
	ctx = lws_create_context(&info);
	if (!ctx) {
		fprintf(stderr, "floor_ws: cannot listen on port %d\n", port);
		return 1;
	}
	{
		/* one message a tick up to 1000/s, else every 1 ms as many as are due */
		long ns = rate < 1000 ? 1000000000L / rate : 1000000L;
		struct itimerspec its = { { ns / 1000000000L, ns % 1000000000L },
					  { ns / 1000000000L, ns % 1000000000L } };
		lws_sock_file_fd_type fdt;

		tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		fdt.filefd = tfd;
		if (tfd < 0 || timerfd_settime(tfd, 0, &its, NULL) < 0 ||
		    !lws_adopt_descriptor_vhost(lws_get_vhost_by_name(ctx, "default"),
						LWS_ADOPT_RAW_FILE_DESC, fdt, "floor-timer", NULL)) {
			fprintf(stderr, "floor_ws: cannot make the timer\n");
			return 1;
		}
	}
	printf("listening\n");
	fflush(stdout);
	while (!interrupted)
		if (lws_service(ctx, 0) < 0)
			break;
	lws_sul_schedule(ctx, 0, &sul_start, NULL, LWS_SET_TIMER_USEC_CANCEL);
	lws_context_destroy(ctx);
	free(ring);
	return 0;
}
