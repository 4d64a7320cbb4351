/* Tests of runtime/threads.c: coverage, chunk sizes, reuse, nesting, races. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/lbrt.h"

#define MAXN 5000

struct cover_ctx {
  _Atomic int hits[MAXN];
  _Atomic int calls;
  _Atomic int64_t min_len;
  int64_t n;
};

static void cover_fn(void *vctx, int64_t b, int64_t e) {
  struct cover_ctx *c = vctx;
  if (b < 0 || e > c->n || b >= e) fail_msg("bad range [%lld, %lld)", (long long)b, (long long)e);
  for (int64_t i = b; i < e; i++) atomic_fetch_add(&c->hits[i], 1);
  atomic_fetch_add(&c->calls, 1);
  int64_t len = e - b, cur = atomic_load(&c->min_len);
  while (len < cur && !atomic_compare_exchange_weak(&c->min_len, &cur, len)) {
  }
}

static struct cover_ctx g_cover;

/* Runs one parallel_for and checks every index ran once and chunk rules hold. */
static void check_cover(int64_t n, int64_t grain, int threads) {
  struct cover_ctx *c = &g_cover;
  memset(c, 0, sizeof *c);
  c->n = n;
  atomic_store(&c->min_len, INT64_MAX);
  lbrt_parallel_for(cover_fn, c, n, grain);
  for (int64_t i = 0; i < n; i++)
    if (atomic_load(&c->hits[i]) != 1)
      fail_msg("n=%lld grain=%lld threads=%d: index %lld ran %d times", (long long)n,
               (long long)grain, threads, (long long)i, atomic_load(&c->hits[i]));
  int calls = atomic_load(&c->calls);
  if (n <= 0) {
    assert_int_equal(calls, 0);
    return;
  }
  assert_true(calls >= 1 && calls <= threads);
  if (calls > 1) assert_true(atomic_load(&c->min_len) >= (grain < 1 ? 1 : grain));
}

static void test_serial_without_pool(void **state) {
  (void)state;
  lbrt_threads_shutdown();
  assert_int_equal(lbrt_threads_count(), 1);
  check_cover(1000, 1, 1);
  assert_int_equal(atomic_load(&g_cover.calls), 1);
  check_cover(0, 1, 1);
  check_cover(-5, 1, 1);
}

static void test_cover_many_shapes(void **state) {
  (void)state;
  static const int threads[] = {1, 2, 3, 4, 8};
  static const int64_t ns[] = {0, 1, 2, 3, 7, 8, 63, 64, 65, 100, 1000, 4999, MAXN};
  static const int64_t grains[] = {-1, 0, 1, 2, 3, 16, 100, 1000, 100000};
  for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
    int got = lbrt_threads_init(threads[t]);
    assert_int_equal(got, threads[t]);
    assert_int_equal(lbrt_threads_count(), threads[t]);
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
      for (size_t g = 0; g < sizeof grains / sizeof grains[0]; g++)
        check_cover(ns[i], grains[g], threads[t]);
  }
  lbrt_threads_shutdown();
}

struct sum_ctx {
  const int64_t *v;
  _Atomic int64_t sum;
};

static void sum_fn(void *vctx, int64_t b, int64_t e) {
  struct sum_ctx *c = vctx;
  int64_t s = 0;
  for (int64_t i = b; i < e; i++) s += c->v[i];
  atomic_fetch_add_explicit(&c->sum, s, memory_order_relaxed);
}

/* Many back-to-back calls (the per-kernel pattern): results always complete. */
static void test_many_calls(void **state) {
  (void)state;
  enum { N = 4096 };
  static int64_t v[N];
  int64_t want = 0;
  for (int i = 0; i < N; i++) want += v[i] = i * 7 - 3;
  for (int threads = 2; threads <= 4; threads++) {
    lbrt_threads_init(threads);
    for (int it = 0; it < 20000; it++) {
      int64_t n = 1 + it % N;
      int64_t w = 0;
      for (int64_t i = 0; i < n; i++) w += v[i];
      struct sum_ctx c = {.v = v};
      lbrt_parallel_for(sum_fn, &c, n, 1 + it % 37);
      if (atomic_load(&c.sum) != w) fail_msg("iteration %d: sum %lld, want %lld", it,
                                             (long long)atomic_load(&c.sum), (long long)w);
    }
    (void)want;
  }
  lbrt_threads_shutdown();
}

/* A nested call from inside fn must run (serially) instead of deadlocking. */
struct nest_ctx {
  _Atomic int64_t inner;
};
static void inner_fn(void *vctx, int64_t b, int64_t e) {
  struct nest_ctx *c = vctx;
  atomic_fetch_add(&c->inner, e - b);
}
static void outer_fn(void *vctx, int64_t b, int64_t e) {
  for (int64_t i = b; i < e; i++) lbrt_parallel_for(inner_fn, vctx, 10, 1);
}

static void test_nested(void **state) {
  (void)state;
  lbrt_threads_init(4);
  for (int it = 0; it < 200; it++) {
    struct nest_ctx c = {0};
    lbrt_parallel_for(outer_fn, &c, 16, 1);
    assert_int_equal(atomic_load(&c.inner), 160);
  }
  lbrt_threads_shutdown();
}

/* Two application threads sharing the pool: one gets it, the other runs serially. */
static void *app_thread(void *arg) {
  enum { N = 1000 };
  static int64_t v[N];
  for (int i = 0; i < N; i++) v[i] = 1;
  for (int it = 0; it < 3000; it++) {
    struct sum_ctx c = {.v = v};
    lbrt_parallel_for(sum_fn, &c, N, 10);
    if (atomic_load(&c.sum) != N) {
      *(int *)arg = 1;
      break;
    }
  }
  return NULL;
}

static void test_concurrent_callers(void **state) {
  (void)state;
  lbrt_threads_init(3);
  pthread_t th[3];
  int bad[3] = {0};
  for (int i = 0; i < 3; i++) assert_int_equal(pthread_create(&th[i], NULL, app_thread, &bad[i]), 0);
  for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < 3; i++) assert_int_equal(bad[i], 0);
  lbrt_threads_shutdown();
}

static void test_init_shutdown_cycles(void **state) {
  (void)state;
  for (int i = 0; i < 50; i++) {
    lbrt_threads_init(1 + i % 4);
    check_cover(100, 1, 1 + i % 4);
    if (i % 3) lbrt_threads_shutdown();
  }
  lbrt_threads_shutdown();
  lbrt_threads_shutdown(); /* twice is fine */
  int all = lbrt_threads_init(0);
  assert_int_equal(all, lbrt_threads_online_cores());
  assert_int_equal(lbrt_threads_init(100000), LBRT_MAX_THREADS);
  lbrt_threads_shutdown();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_serial_without_pool),
      cmocka_unit_test(test_cover_many_shapes),
      cmocka_unit_test(test_many_calls),
      cmocka_unit_test(test_nested),
      cmocka_unit_test(test_concurrent_callers),
      cmocka_unit_test(test_init_shutdown_cycles),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
