/* membw.c: the machine's memory read bandwidth, the yardstick for batch-1 low-bit
 * matmuls (their time is bounded below by reading the packed weights once).
 *
 *   cc -O3 -march=native -pthread bench/membw.c -o membw && ./membw [threads] [MiB]
 *
 * Each of `threads` threads sums its slice of a buffer (default 512 MiB, far beyond
 * the last-level cache) with 32-byte vector loads (slices start 64-byte aligned); the best of 7 passes is reported as one
 * JSON line {"threads": T, "mib": N, "gbps": X} (GB = 1e9 bytes). bench/bench.js
 * builds and runs it to put the low-bit rows' effective weight bandwidth beside it.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct slice {
  const uint64_t *p;
  size_t n;
  uint64_t sum;
};

/* 32-byte vectors (GCC/Clang vector extension): wide loads on any target */
typedef uint64_t v4u64 __attribute__((vector_size(32)));

static void *read_slice(void *arg) {
  struct slice *s = arg;
  /* four independent vector sums keep several cache lines in flight */
  v4u64 a = {0}, b = {0}, c = {0}, d = {0};
  size_t i = 0;
  const v4u64 *v = (const v4u64 *)s->p;
  size_t nv = s->n / 4;
  for (; i + 4 <= nv; i += 4) {
    a += v[i];
    b += v[i + 1];
    c += v[i + 2];
    d += v[i + 3];
  }
  for (; i < nv; i++) a += v[i];
  v4u64 t = a + b + c + d;
  uint64_t sum = t[0] + t[1] + t[2] + t[3];
  for (size_t k = nv * 4; k < s->n; k++) sum += s->p[k];
  s->sum = sum;
  return NULL;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 1;
  long mib = argc > 2 ? atol(argv[2]) : 512;
  if (threads < 1 || threads > 256 || mib < 1 || mib > 65536) {
    fprintf(stderr, "usage: membw [threads 1..256] [MiB 1..65536]\n");
    return 2;
  }
  size_t bytes = (size_t)mib << 20, n = bytes / sizeof(uint64_t);
  uint64_t *buf = aligned_alloc(64, bytes);
  if (!buf) {
    fprintf(stderr, "membw: cannot allocate %ld MiB\n", mib);
    return 1;
  }
  for (size_t i = 0; i < n; i++) buf[i] = i; /* touch every page before timing */
  struct slice sl[256];
  pthread_t th[256];
  double best = 1e30;
  uint64_t check = 0;
  for (int pass = 0; pass < 7; pass++) {
    double t0 = now_s();
    for (int t = 0; t < threads; t++) {
      /* slice bounds on 8-element (64-byte) boundaries, so vector loads stay aligned */
      size_t lo = n / 8 * (size_t)t / (size_t)threads * 8;
      size_t hi = t + 1 == threads ? n : n / 8 * (size_t)(t + 1) / (size_t)threads * 8;
      sl[t] = (struct slice){buf + lo, hi - lo, 0};
      if (pthread_create(&th[t], NULL, read_slice, &sl[t]) != 0) {
        fprintf(stderr, "membw: cannot start a thread\n");
        return 1;
      }
    }
    for (int t = 0; t < threads; t++) {
      pthread_join(th[t], NULL);
      check += sl[t].sum;
    }
    double dt = now_s() - t0;
    if (dt < best) best = dt;
  }
  /* the sums are printed so that the reads cannot be optimized away */
  printf("{\"threads\": %d, \"mib\": %ld, \"gbps\": %.2f, \"checksum\": %llu}\n", threads, mib,
         (double)bytes / best / 1e9, (unsigned long long)(check & 0xffff));
  free(buf);
  return 0;
}
