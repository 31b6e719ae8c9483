/*
 * malloc_count.c - an LD_PRELOAD library for tests/bench/idle.py: counts the
 * process's malloc/calloc/realloc calls (and frees) into a file it maps shared,
 * so the benchmark reads live counters while the daemon runs (allocations per
 * event on the hot path). Single-threaded daemon: plain increments.
 *
 *   MALLOC_COUNT_FILE=/tmp/x LD_PRELOAD=build/bench/malloc_count.so spinewatchd ...
 *   file: four little-endian uint64 - mallocs (incl. calloc, realloc, memalign), frees,
 *   bytes asked for, reallocs
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static uint64_t dummy[4];
static volatile uint64_t *counts = dummy;

__attribute__((constructor)) static void mc_init(void)
{
	const char *path = getenv("MALLOC_COUNT_FILE");
	void *m;
	int fd;

	if (!path)
		return;
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (ftruncate(fd, 4096) == 0) {
		m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m != MAP_FAILED)
			counts = m;
	}
	close(fd);
}

void *malloc(size_t n)
{
	counts[0]++;
	counts[2] += n;
	return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
	counts[0]++;
	counts[2] += a * b;
	return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
	counts[0]++;
	counts[2] += n;
	counts[3]++;
	return __libc_realloc(p, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
	void *p;

	counts[0]++;
	counts[2] += n;
	p = __libc_memalign(align, n);
	if (!p)
		return 12; /* ENOMEM */
	*out = p;
	return 0;
}

void *aligned_alloc(size_t align, size_t n)
{
	counts[0]++;
	counts[2] += n;
	return __libc_memalign(align, n);
}

void free(void *p)
{
	if (p)
		counts[1]++;
	__libc_free(p);
}
