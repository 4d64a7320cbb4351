/* threads.c: the runtime's thread pool behind lbrt_parallel_for.
 *
 * Kernels call lbrt_parallel_for hundreds of times per inference, so a call
 * must cost little: no allocation, no lock on the fast path. The caller
 * publishes a job by bumping a generation in one atomic state word
 *
 *   state = generation << 32 | nchunks << 16 | next_chunk
 *
 * and every thread, the caller included, claims chunks with a CAS on it.
 * Because the CAS checks the generation and the chunk bounds in one word, a
 * worker that wakes late for an old job can never claim a chunk of a newer
 * one: its CAS fails. The job fields (fn, ctx, n) it read before a successful
 * CAS are those of its generation, since a job's fields are only rewritten
 * after all its chunks (including the one just claimed) are done.
 *
 * Idle workers spin briefly (consecutive kernels follow each other within
 * microseconds), then sleep on a condvar. Sleep/wake handshakes use seq_cst
 * store-then-load pairs on both sides, so no wakeup is lost.
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "runtime/lbrt_internal.h"

#define SPIN_PAUSES 4000 /* busy-wait rounds before yielding */
#define SPIN_YIELDS 64   /* sched_yield rounds before sleeping */

struct pool {
  int nthreads; /* including the caller */
  int nworkers; /* threads actually started */
  pthread_t workers[LBRT_MAX_THREADS];
  uint32_t generation; /* only touched by the thread holding `busy` */

  _Atomic uint64_t state;
  _Atomic(lbrt_task_fn) fn;
  _Atomic(void *) ctx;
  _Atomic int64_t n;
  _Atomic int64_t remaining; /* chunks not finished yet */

  _Atomic int busy; /* a parallel_for owns the pool */
  _Atomic int stop;
  _Atomic int sleepers;       /* workers in (or entering) work_cv wait */
  _Atomic int caller_waiting; /* caller in (or entering) done_cv wait */
  pthread_mutex_t mu;
  pthread_cond_t work_cv, done_cv;
};

static struct pool g_pool = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .work_cv = PTHREAD_COND_INITIALIZER,
    .done_cv = PTHREAD_COND_INITIALIZER,
};
static _Atomic int g_pool_up; /* workers running */

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

static inline uint32_t st_gen(uint64_t s) { return (uint32_t)(s >> 32); }
static inline uint32_t st_nchunks(uint64_t s) { return (uint32_t)(s >> 16) & 0xffff; }
static inline uint32_t st_next(uint64_t s) { return (uint32_t)s & 0xffff; }

/* Chunk i of nch over [0, n): sizes differ by at most one. */
static void chunk_range(int64_t n, int64_t nch, int64_t i, int64_t *b, int64_t *e) {
  int64_t base = n / nch, rem = n % nch;
  *b = i * base + (i < rem ? i : rem);
  *e = *b + base + (i < rem ? 1 : 0);
}

/* Claims and runs chunks of generation gen until none are left. */
static void run_chunks(struct pool *p, uint32_t gen) {
  uint64_t s = atomic_load_explicit(&p->state, memory_order_acquire);
  for (;;) {
    if (st_gen(s) != gen || st_next(s) >= st_nchunks(s)) return;
    /* Read before the claim; only trusted if the CAS below succeeds. */
    lbrt_task_fn fn = atomic_load_explicit(&p->fn, memory_order_relaxed);
    void *ctx = atomic_load_explicit(&p->ctx, memory_order_relaxed);
    int64_t n = atomic_load_explicit(&p->n, memory_order_relaxed);
    if (!atomic_compare_exchange_weak_explicit(&p->state, &s, s + 1, memory_order_acq_rel,
                                               memory_order_acquire))
      continue;
    int64_t b, e;
    chunk_range(n, st_nchunks(s), st_next(s), &b, &e);
    fn(ctx, b, e);
    if (atomic_fetch_sub_explicit(&p->remaining, 1, memory_order_seq_cst) == 1 &&
        atomic_load_explicit(&p->caller_waiting, memory_order_seq_cst)) {
      pthread_mutex_lock(&p->mu);
      pthread_cond_signal(&p->done_cv);
      pthread_mutex_unlock(&p->mu);
    }
    s = atomic_load_explicit(&p->state, memory_order_acquire);
  }
}

static bool job_changed(struct pool *p, uint32_t seen) {
  return atomic_load_explicit(&p->stop, memory_order_seq_cst) ||
         st_gen(atomic_load_explicit(&p->state, memory_order_seq_cst)) != seen;
}

static void *worker_main(void *arg) {
  struct pool *p = arg;
  uint32_t seen = st_gen(atomic_load_explicit(&p->state, memory_order_acquire));
  for (;;) {
    bool ready = false;
    for (int i = 0; i < SPIN_PAUSES + SPIN_YIELDS && !ready; i++) {
      ready = job_changed(p, seen);
      if (i < SPIN_PAUSES)
        cpu_relax();
      else
        sched_yield();
    }
    if (!ready) {
      pthread_mutex_lock(&p->mu);
      atomic_fetch_add_explicit(&p->sleepers, 1, memory_order_seq_cst);
      while (!job_changed(p, seen)) pthread_cond_wait(&p->work_cv, &p->mu);
      atomic_fetch_sub_explicit(&p->sleepers, 1, memory_order_seq_cst);
      pthread_mutex_unlock(&p->mu);
    }
    if (atomic_load_explicit(&p->stop, memory_order_acquire)) return NULL;
    seen = st_gen(atomic_load_explicit(&p->state, memory_order_acquire));
    run_chunks(p, seen);
  }
}

int lbrt_threads_online_cores(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > LBRT_MAX_THREADS ? LBRT_MAX_THREADS : (int)n;
}

int lbrt_threads_init(int n) {
  struct pool *p = &g_pool;
  lbrt_threads_shutdown();
  if (n <= 0) n = lbrt_threads_online_cores();
  if (n > LBRT_MAX_THREADS) n = LBRT_MAX_THREADS;
  p->nthreads = 1;
  p->nworkers = 0;
  atomic_store(&p->stop, 0);
  if (n == 1) return 1;
  /* Workers take no signals: they stay with the main thread. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  for (int i = 0; i < n - 1; i++) {
    if (pthread_create(&p->workers[i], NULL, worker_main, p) != 0) break;
    p->nworkers++;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  p->nthreads = p->nworkers + 1;
  atomic_store(&g_pool_up, p->nworkers > 0);
  return p->nthreads;
}

void lbrt_threads_shutdown(void) {
  struct pool *p = &g_pool;
  if (!atomic_load(&g_pool_up)) return;
  atomic_store(&p->stop, 1);
  pthread_mutex_lock(&p->mu);
  pthread_cond_broadcast(&p->work_cv);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < p->nworkers; i++) pthread_join(p->workers[i], NULL);
  p->nworkers = 0;
  p->nthreads = 1;
  atomic_store(&g_pool_up, 0);
}

int lbrt_threads_count(void) { return atomic_load(&g_pool_up) ? g_pool.nthreads : 1; }

void lbrt_parallel_for(lbrt_task_fn fn, void *ctx, int64_t n, int64_t grain) {
  struct pool *p = &g_pool;
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  int expected = 0;
  /* Serial when there is no pool, too little work, or the pool is already
   * running a job (a nested call from inside fn, or another thread). */
  if (!atomic_load_explicit(&g_pool_up, memory_order_acquire) || n / grain < 2 ||
      !atomic_compare_exchange_strong(&p->busy, &expected, 1)) {
    fn(ctx, 0, n);
    return;
  }
  int64_t nch = n / grain < p->nthreads ? n / grain : p->nthreads;

  atomic_store_explicit(&p->fn, fn, memory_order_relaxed);
  atomic_store_explicit(&p->ctx, ctx, memory_order_relaxed);
  atomic_store_explicit(&p->n, n, memory_order_relaxed);
  atomic_store_explicit(&p->remaining, nch, memory_order_relaxed);
  uint32_t gen = ++p->generation;
  atomic_store_explicit(&p->state, (uint64_t)gen << 32 | (uint64_t)nch << 16,
                        memory_order_seq_cst);
  if (atomic_load_explicit(&p->sleepers, memory_order_seq_cst) > 0) {
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
  }

  run_chunks(p, gen);

  /* Wait for chunks other threads claimed. */
  for (int i = 0; atomic_load_explicit(&p->remaining, memory_order_acquire) != 0; i++) {
    if (i < SPIN_PAUSES) {
      cpu_relax();
    } else if (i < SPIN_PAUSES + SPIN_YIELDS) {
      sched_yield();
    } else {
      pthread_mutex_lock(&p->mu);
      atomic_store_explicit(&p->caller_waiting, 1, memory_order_seq_cst);
      while (atomic_load_explicit(&p->remaining, memory_order_seq_cst) != 0)
        pthread_cond_wait(&p->done_cv, &p->mu);
      atomic_store_explicit(&p->caller_waiting, 0, memory_order_relaxed);
      pthread_mutex_unlock(&p->mu);
      break;
    }
  }
  atomic_store_explicit(&p->busy, 0, memory_order_release);
}
