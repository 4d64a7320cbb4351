/* cpu_check.c: refuse to run code built for CPU features this machine lacks,
 * with a message saying what to do, instead of dying later with SIGILL.
 * Feature names are LLVM's; names we do not know are not checked. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "runtime/lbrt_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

struct x86_caps {
  unsigned l1c, l1d, l7b, l7c, l7d, l7_1a, e1c;
  bool os_avx, os_avx512;
};

static void x86_caps_get(struct x86_caps *c) {
  unsigned a, b, cc, d, max;
  memset(c, 0, sizeof *c);
  max = (unsigned)__get_cpuid_max(0, NULL);
  if (max >= 1 && __get_cpuid(1, &a, &b, &cc, &d)) {
    c->l1c = cc;
    c->l1d = d;
  }
  if (max >= 7) {
    __cpuid_count(7, 0, a, b, cc, d);
    c->l7b = b;
    c->l7c = cc;
    c->l7d = d;
    if (a >= 1) {
      __cpuid_count(7, 1, a, b, cc, d);
      c->l7_1a = a;
    }
  }
  if ((unsigned)__get_cpuid_max(0x80000000, NULL) >= 0x80000001u &&
      __get_cpuid(0x80000001, &a, &b, &cc, &d))
    c->e1c = cc;
  /* The OS must save the wider registers on context switch (XCR0), else
   * using them faults even though cpuid advertises them. */
  if (c->l1c & (1u << 27)) { /* OSXSAVE */
    unsigned lo, hi;
    __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    c->os_avx = (lo & 0x6) == 0x6;        /* XMM | YMM */
    c->os_avx512 = (lo & 0xe6) == 0xe6;   /* + opmask, ZMM_Hi256, Hi16_ZMM */
  }
}

enum { L1C, L1D, L7B, L7C, L7D, L7_1A, E1C };
enum { NEED_NONE, NEED_AVX, NEED_AVX512 };
static const struct {
  const char *name;
  unsigned char reg, bit, os;
} x86_features[] = {
    {"sse", L1D, 25, NEED_NONE},          {"sse2", L1D, 26, NEED_NONE},
    {"sse3", L1C, 0, NEED_NONE},          {"pclmul", L1C, 1, NEED_NONE},
    {"ssse3", L1C, 9, NEED_NONE},         {"fma", L1C, 12, NEED_AVX},
    {"cx16", L1C, 13, NEED_NONE},         {"sse4.1", L1C, 19, NEED_NONE},
    {"sse4.2", L1C, 20, NEED_NONE},       {"movbe", L1C, 22, NEED_NONE},
    {"popcnt", L1C, 23, NEED_NONE},       {"aes", L1C, 25, NEED_NONE},
    {"avx", L1C, 28, NEED_AVX},           {"f16c", L1C, 29, NEED_AVX},
    {"bmi", L7B, 3, NEED_NONE},           {"avx2", L7B, 5, NEED_AVX},
    {"bmi2", L7B, 8, NEED_NONE},          {"avx512f", L7B, 16, NEED_AVX512},
    {"avx512dq", L7B, 17, NEED_AVX512},   {"avx512ifma", L7B, 21, NEED_AVX512},
    {"avx512cd", L7B, 28, NEED_AVX512},   {"sha", L7B, 29, NEED_NONE},
    {"avx512bw", L7B, 30, NEED_AVX512},   {"avx512vl", L7B, 31, NEED_AVX512},
    {"avx512vbmi", L7C, 1, NEED_AVX512},  {"avx512vbmi2", L7C, 6, NEED_AVX512},
    {"gfni", L7C, 8, NEED_NONE},          {"vaes", L7C, 9, NEED_AVX},
    {"vpclmulqdq", L7C, 10, NEED_AVX},    {"avx512vnni", L7C, 11, NEED_AVX512},
    {"avx512bitalg", L7C, 12, NEED_AVX512}, {"avx512vpopcntdq", L7C, 14, NEED_AVX512},
    {"avx512fp16", L7D, 23, NEED_AVX512}, {"avxvnni", L7_1A, 4, NEED_AVX},
    {"avx512bf16", L7_1A, 5, NEED_AVX512}, {"lzcnt", E1C, 5, NEED_NONE},
    {"sse4a", E1C, 6, NEED_NONE},
};

int lbrt_cpu_has_feature(const char *name) {
  struct x86_caps caps; /* cpuid is cheap and this runs once at start: no cache */
  x86_caps_get(&caps);
  for (size_t i = 0; i < sizeof x86_features / sizeof x86_features[0]; i++) {
    if (strcmp(name, x86_features[i].name) != 0) continue;
    const unsigned regs[] = {caps.l1c, caps.l1d, caps.l7b, caps.l7c, caps.l7d, caps.l7_1a, caps.e1c};
    bool hw = regs[x86_features[i].reg] >> x86_features[i].bit & 1;
    bool os = x86_features[i].os == NEED_NONE ? true
              : x86_features[i].os == NEED_AVX ? caps.os_avx
                                               : caps.os_avx512;
    return hw && os;
  }
  return -1;
}

#elif defined(__aarch64__)
#include <sys/auxv.h>

/* Linux uapi hwcap bits (asm/hwcap.h), spelled out so old headers do. */
static const struct {
  const char *name;
  unsigned char hwcap2, bit;
} arm_features[] = {
    {"fp-armv8", 0, 0}, {"neon", 0, 1},     {"asimd", 0, 1},     {"aes", 0, 3},       {"sha2", 0, 6},
    {"crc", 0, 7},      {"lse", 0, 8},      {"fullfp16", 0, 9},  {"fp16", 0, 9},
    {"rdm", 0, 12},     {"rcpc", 0, 15},    {"dotprod", 0, 20},  {"sve", 0, 22},
    {"sve2", 1, 1},     {"i8mm", 1, 13},    {"bf16", 1, 14},
};

int lbrt_cpu_has_feature(const char *name) {
  for (size_t i = 0; i < sizeof arm_features / sizeof arm_features[0]; i++) {
    if (strcmp(name, arm_features[i].name) != 0) continue;
    unsigned long caps = getauxval(arm_features[i].hwcap2 ? AT_HWCAP2 : AT_HWCAP);
    return (int)(caps >> arm_features[i].bit & 1);
  }
  return -1;
}

#else
int lbrt_cpu_has_feature(const char *name) {
  (void)name;
  return -1;
}
#endif

/* Appends s to buf[0..cap) at *pos, ending in "..." when it does not fit. */
static void append(char *buf, size_t cap, size_t *pos, const char *s) {
  if (!buf || !cap || *pos >= cap) return;
  size_t n = strlen(s);
  if (*pos + n + 4 > cap) { /* leave room for "..." and NUL */
    if (*pos + 4 <= cap) memcpy(buf + *pos, "...", 4);
    *pos = cap;
    return;
  }
  memcpy(buf + *pos, s, n + 1);
  *pos += n;
}

int lbrt_cpu_missing_features(const char *features, lbrt_cpu_has_fn has, void *ud,
                              char *missing, size_t missinglen) {
  int count = 0;
  size_t pos = 0;
  if (missing && missinglen) missing[0] = '\0';
  if (!features) return 0;
  /* Names seen as missing, to report each once (list kept in `seen`). */
  char seen[1024] = ",";
  const char *p = features;
  while (*p) {
    const char *end = strchr(p, ',');
    if (!end) end = p + strlen(p);
    const char *a = p, *b = end;
    while (a < b && (*a == ' ' || *a == '\t')) a++;
    while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
    p = *end ? end + 1 : end;
    if (a < b && *a == '-') continue; /* explicitly disabled: nothing needed */
    if (a < b && *a == '+') a++;
    char name[64];
    if (a == b || (size_t)(b - a) >= sizeof name) continue;
    memcpy(name, a, (size_t)(b - a));
    name[b - a] = '\0';
    if (has(name, ud) != 0) continue; /* present, or unknown to us */
    char key[68];
    snprintf(key, sizeof key, ",%s,", name);
    if (strstr(seen, key)) continue;
    if (strlen(seen) + strlen(name) + 2 < sizeof seen) {
      strcat(seen, name);
      strcat(seen, ",");
    }
    if (count++) append(missing, missinglen, &pos, ", ");
    append(missing, missinglen, &pos, name);
  }
  return count;
}

static int has_this_cpu(const char *name, void *ud) {
  (void)ud;
  return lbrt_cpu_has_feature(name);
}

int lbrt_cpu_check(const struct lbrt_model_info *info, char *msg, size_t msglen) {
  char missing[512];
  if (lbrt_cpu_missing_features(info->features, has_this_cpu, NULL, missing, sizeof missing) == 0)
    return 0;
  if (msg && msglen)
    snprintf(msg, msglen,
             "this executable was built for CPU '%s' and needs %s, which this CPU lacks; "
             "recompile with --cpu generic or a matching --cpu",
             info->cpu ? info->cpu : "?", missing);
  return 1;
}
