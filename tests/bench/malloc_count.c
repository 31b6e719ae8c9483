/*
 * tests/bench/malloc_count.c - an LD_PRELOAD shim that counts a process's
 * heap allocations (malloc, calloc, realloc, aligned allocations) and frees
 * into a small file it maps (path in $MALLOC_COUNT_FILE), so a benchmark can
 * read the counts of a running daemon before and after a burst of work
 * (tests/bench/allocs.py). glibc's own __libc_* entry points do the work.
 * Counts: 8 little-endian uint64 — allocations, frees, bytes allocated.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
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

static volatile uint64_t *counts;   /* [0] allocations, [1] frees, [2] bytes */

__attribute__((constructor)) static void setup(void)
{
	const char *path = getenv("MALLOC_COUNT_FILE");
	int fd;
	void *p;

	if (!path)
		return;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (ftruncate(fd, 64) == 0) {
		p = mmap(NULL, 64, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p != MAP_FAILED)
			counts = p;
	}
	close(fd);
}

static void count(int i, uint64_t n)
{
	if (counts)
		__atomic_fetch_add(&counts[i], n, __ATOMIC_RELAXED);
}

void *malloc(size_t n)
{
	count(0, 1);
	count(2, n);
	return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
	count(0, 1);
	count(2, a * b);
	return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
	count(0, 1);
	count(2, n);
	return __libc_realloc(p, n);
}

void *memalign(size_t al, size_t n)
{
	count(0, 1);
	count(2, n);
	return __libc_memalign(al, n);
}

int posix_memalign(void **out, size_t al, size_t n)
{
	void *p = memalign(al, n);

	if (!p)
		return 12;   /* ENOMEM */
	*out = p;
	return 0;
}

void *aligned_alloc(size_t al, size_t n)
{
	return memalign(al, n);
}

void free(void *p)
{
	if (p)
		count(1, 1);
	__libc_free(p);
}
