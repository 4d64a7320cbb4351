/* arena.c: bump allocation for IR objects, freed all at once with the graph. */
#include "ir/ir.h"

#include <stdlib.h>
#include <string.h>

struct lb_arena_chunk {
  struct lb_arena_chunk *next;
  size_t size, used;
  _Alignas(16) unsigned char data[];
};

enum { LB_ARENA_CHUNK = 64 * 1024 };

void *lb_arena_alloc(struct lb_arena *a, size_t size) {
  size = (size + 15) & ~(size_t)15;
  struct lb_arena_chunk *c = a->head;
  if (!c || c->size - c->used < size) {
    size_t cap = size > LB_ARENA_CHUNK ? size : LB_ARENA_CHUNK;
    c = malloc(sizeof *c + cap);
    if (!c) {
      fputs("lowbit: error: out of memory\n", stderr);
      abort();
    }
    c->size = cap;
    c->used = 0;
    c->next = a->head;
    a->head = c;
  }
  void *p = c->data + c->used;
  c->used += size;
  a->used_total += size;
  memset(p, 0, size);
  return p;
}

char *lb_arena_strndup(struct lb_arena *a, const char *s, size_t n) {
  char *p = lb_arena_alloc(a, n + 1);
  if (n) memcpy(p, s, n); /* s may be NULL when n is 0 (an empty protobuf string) */
  p[n] = 0;
  return p;
}

char *lb_arena_strdup(struct lb_arena *a, const char *s) {
  return lb_arena_strndup(a, s, strlen(s));
}

void lb_arena_free(struct lb_arena *a) {
  struct lb_arena_chunk *c = a->head;
  while (c) {
    struct lb_arena_chunk *next = c->next;
    free(c);
    c = next;
  }
  a->head = NULL;
  a->used_total = 0;
}
