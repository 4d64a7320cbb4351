/* test_emit.c: ahead-of-time emission: .ll/.s/.o for x86-64 and aarch64, a static
 * library with its header, and (when the runtime archives are built) a static
 * executable run end to end on an .npy input. */
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cg_test.h"

#ifndef LB_BUILD_DIR
#define LB_BUILD_DIR "."
#endif

static char tmpdir[256];

static int setup(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof tmpdir, "/tmp/lb-cg-emit-XXXXXX");
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

/* y = gelu(x @ W + b); z = softmax(y) -- two outputs, one intermediate */
static struct lb_graph *small_model(void) {
  struct lb_graph *g = lb_graph_new("small");
  struct lb_value *x = input(g, "x", TY(F32, 2, 8));
  struct lb_value *ins[3] = {x, cconst(g, "w", TY(F32, 8, 5), -1, 1), cconst(g, "b", TY(F32, 5), -1, 1)};
  struct lb_node *mm = mk(g, LB_OP_FUSED_MATMUL, 3, ins, 1);
  lb_node_set_attr_string(g, mm, "act", "gelu");
  struct lb_diag d;
  lb_diag_init(&d, "t");
  assert_int_equal(lb_infer_node(g, mm, &d), LB_OK);
  struct lb_value *y = mm->outputs[0];
  struct lb_node *sm = mk(g, LB_OP_SOFTMAX, 1, &y, 1);
  lb_node_set_attr_int(g, sm, "axis", 1);
  assert_int_equal(lb_infer_node(g, sm, &d), LB_OK);
  struct lb_node *th = mk(g, LB_OP_TANH, 1, &y, 1);
  assert_int_equal(lb_infer_node(g, th, &d), LB_OK);
  lb_graph_add_output(g, sm->outputs[0]);
  lb_graph_add_output(g, x); /* a graph input as output: copied */
  lb_diag_free(&d);
  plan_simple(g);
  return g;
}

static bool file_starts_with(const char *path, const void *magic, size_t n) {
  FILE *f = fopen(path, "rb");
  if (!f) return false;
  unsigned char buf[16] = {0};
  size_t r = fread(buf, 1, n, f);
  fclose(f);
  return r == n && memcmp(buf, magic, n) == 0;
}

static void emit(struct lb_graph *g, const char *triple, enum lb_emit e, const char *name, enum lb_status want) {
  char out[512];
  snprintf(out, sizeof out, "%s/%s", tmpdir, name);
  struct lb_codegen_options o = {.target_triple = triple, .opt_level = 2, .emit = e, .output = out,
                                 .runtime_dir = LB_BUILD_DIR "/lib/lowbit"};
  struct lb_diag d;
  lb_diag_init(&d, "t");
  enum lb_status st = lb_codegen_compile(g, &o, &d);
  if (st != want) fprintf(stderr, "%s: %s\n", name, d.text ? d.text : "(no message)");
  assert_int_equal(st, want);
  lb_diag_free(&d);
  struct stat sb;
  assert_int_equal(stat(out, &sb) == 0, want == LB_OK);
}

static void test_emit_x86(void **state) {
  (void)state;
  struct lb_graph *g = small_model();
  emit(g, NULL, LB_EMIT_LLVM, "small.ll", LB_OK);
  emit(g, "x86_64-linux-gnu", LB_EMIT_ASM, "small.s", LB_OK);
  emit(g, "x86_64-linux-gnu", LB_EMIT_OBJ, "small.o", LB_OK);
  char p[512];
  snprintf(p, sizeof p, "%s/small.o", tmpdir);
  assert_true(file_starts_with(p, "\x7f" "ELF\x02", 5));
  unsigned char mach[2];
  FILE *f = fopen(p, "rb");
  assert_int_equal(fseek(f, 18, SEEK_SET), 0);
  assert_int_equal(fread(mach, 1, 2, f), 2);
  fclose(f);
  assert_int_equal(mach[0] | mach[1] << 8, 62); /* EM_X86_64 */
  lb_graph_free(g);
}

/* Kernel sharing (codegen.c): identical nodes share one LLVM function; nodes
 * that differ only in the data of a constant input (matmul weights are packed
 * at compile time) do not, unless the data is the same bytes. */
static int count_defines(const char *path, const char *op) {
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char line[4096], pat[64];
  snprintf(pat, sizeof pat, ".%s.", op);
  int n = 0;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "define internal", 15) && strstr(line, "@share.k") && strstr(line, pat) &&
        !strstr(line, ".par"))
      n++;
  fclose(f);
  return n;
}

static void test_kernel_sharing(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("share");
  struct lb_diag d;
  lb_diag_init(&d, "t");
  struct lb_value *v = input(g, "x", TY(F32, 2, 8));
  for (int i = 0; i < 5; i++) { /* five identical relus */
    struct lb_node *r = mk(g, LB_OP_RELU, 1, &v, 1);
    assert_int_equal(lb_infer_node(g, r, &d), LB_OK);
    v = r->outputs[0];
  }
  struct lb_value *w1 = cconst(g, "w1", TY(F32, 8, 8), -1, 1);
  struct lb_value *w2 = cconst(g, "w2", TY(F32, 8, 8), -1, 1); /* other data */
  struct lb_type wt = TY(F32, 8, 8);
  struct lb_value *w1b = lb_graph_add_const(g, "w1b", &wt, lb_value_const_data(g, w1))->outputs[0];
  struct lb_value *ws[4] = {w1, w2, w1b, w1};
  for (int i = 0; i < 4; i++) {
    struct lb_value *ins[2] = {v, ws[i]};
    struct lb_node *m = mk(g, LB_OP_MATMUL, 2, ins, 1);
    assert_int_equal(lb_infer_node(g, m, &d), LB_OK);
    v = m->outputs[0];
  }
  lb_graph_add_output(g, v);
  lb_diag_free(&d);
  plan_simple(g);
  char out[512];
  snprintf(out, sizeof out, "%s/share.ll", tmpdir);
  struct lb_codegen_options o = {.opt_level = 0, .emit = LB_EMIT_LLVM, .output = out, .model_name = "share"};
  lb_diag_init(&d, "t");
  assert_int_equal(lb_codegen_compile(g, &o, &d), LB_OK);
  lb_diag_free(&d);
  assert_int_equal(count_defines(out, "relu"), 1);
  assert_int_equal(count_defines(out, lb_op_info[LB_OP_MATMUL].ir_name), 2); /* w1 (x3: same bytes), w2 */
  lb_graph_free(g);
}

static void test_emit_aarch64(void **state) {
  (void)state;
  struct lb_graph *g = small_model();
  emit(g, "aarch64-linux-gnu", LB_EMIT_OBJ, "small_a64.o", LB_OK);
  char p[512];
  snprintf(p, sizeof p, "%s/small_a64.o", tmpdir);
  FILE *f = fopen(p, "rb");
  unsigned char mach[2];
  assert_int_equal(fseek(f, 18, SEEK_SET), 0);
  assert_int_equal(fread(mach, 1, 2, f), 2);
  fclose(f);
  assert_int_equal(mach[0] | mach[1] << 8, 183); /* EM_AARCH64 */
  lb_graph_free(g);
}

static void test_emit_errors(void **state) {
  (void)state;
  struct lb_graph *g = small_model();
  emit(g, "riscv64-linux-gnu", LB_EMIT_OBJ, "bad.o", LB_ERR_UNSUPPORTED);
  /* an intermediate without a planned offset */
  g->nodes[g->n_nodes - 2]->outputs[0]->mem_offset = -1; /* fused matmul's y */
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i]->op == LB_OP_FUSED_MATMUL) g->nodes[i]->outputs[0]->mem_offset = -1;
  emit(g, NULL, LB_EMIT_OBJ, "noplan.o", LB_ERR_INVALID);
  /* elided weights */
  plan_simple(g);
  free(g->blobs[0].data);
  g->blobs[0].data = NULL;
  emit(g, NULL, LB_EMIT_OBJ, "elided.o", LB_ERR_INVALID);
  lb_graph_free(g);
}

static bool have_runtime(const char *triple) {
  char p[512];
  snprintf(p, sizeof p, "%s/lib/lowbit/%s/liblbrt_core.a", LB_BUILD_DIR, triple);
  return access(p, R_OK) == 0;
}

static void write_npy_f32(const char *path, const float *data, const int64_t *dims, int rank) {
  char hdr[128];
  int n = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
  for (int i = 0; i < rank; i++) n += snprintf(hdr + n, sizeof hdr - (size_t)n, "%lld,%s", (long long)dims[i], i + 1 < rank ? " " : "");
  n += snprintf(hdr + n, sizeof hdr - (size_t)n, "), }");
  int total = 10 + n + 1;
  int pad = (64 - total % 64) % 64;
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fwrite("\x93NUMPY\x01\x00", 1, 8, f);
  uint16_t hl = (uint16_t)(n + pad + 1);
  fwrite(&hl, 2, 1, f);
  fwrite(hdr, 1, (size_t)n, f);
  for (int i = 0; i < pad; i++) fputc(' ', f);
  fputc('\n', f);
  int64_t cnt = 1;
  for (int i = 0; i < rank; i++) cnt *= dims[i];
  fwrite(data, 4, (size_t)cnt, f);
  fclose(f);
}

static int run_cmd(char *const argv[]) {
  pid_t pid = fork();
  if (pid == 0) {
    execv(argv[0], argv);
    _exit(127);
  }
  int st;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_exe_end_to_end(void **state) {
  (void)state;
  if (!have_runtime("x86_64-linux-gnu")) {
    fprintf(stderr, "runtime archives not built: skipping the EXE test\n");
    skip();
  }
  struct lb_graph *g = small_model();
  emit(g, "x86_64-linux-gnu", LB_EMIT_EXE, "small", LB_OK);
  char exe[512], in[512], outdir[512];
  snprintf(exe, sizeof exe, "%s/small", tmpdir);
  snprintf(in, sizeof in, "%s/x.npy", tmpdir);
  snprintf(outdir, sizeof outdir, "%s/out", tmpdir);
  float x[16];
  for (int i = 0; i < 16; i++) x[i] = (float)i / 8.0f - 1.0f;
  write_npy_f32(in, x, (int64_t[]){2, 8}, 2);
  char *info[] = {exe, "--info", NULL};
  assert_int_equal(run_cmd(info), 0);
  char *run[] = {exe, in, "-o", outdir, "-q", NULL};
  assert_int_equal(run_cmd(run), 0);
  /* compare output 0 with the JIT */
  char o0[600];
  snprintf(o0, sizeof o0, "%s/output_0.npy", outdir);
  FILE *f = fopen(o0, "rb");
  assert_non_null(f);
  unsigned char head[10];
  assert_int_equal(fread(head, 1, 10, f), 10);
  int hl = head[8] | head[9] << 8;
  assert_int_equal(fseek(f, 10 + hl, SEEK_SET), 0);
  float y[10];
  assert_int_equal(fread(y, 4, 10, f), 10);
  fclose(f);
  struct lb_diag d;
  lb_diag_init(&d, "t");
  struct lb_jit *j;
  struct lb_codegen_options o = {.opt_level = 2, .model_name = "small"};
  assert_int_equal(lb_jit_compile(g, &o, &j, &d), LB_OK);
  float yj[10], xc[16];
  void *act = xalloc(lb_jit_activations_size(j));
  const void *ins[1] = {x};
  void *outs[2] = {yj, xc};
  assert_int_equal(lb_jit_run(j, ins, outs, act), 0);
  for (int i = 0; i < 10; i++) assert_true(fabs(y[i] - yj[i]) < 1e-6);
  for (int i = 0; i < 16; i++) assert_true(xc[i] == x[i]);
  free(act);
  lb_jit_free(j);
  lb_diag_free(&d);
  /* static library + header */
  emit(g, "x86_64-linux-gnu", LB_EMIT_LIB, "libsmall.a", LB_OK);
  char hdr[512];
  snprintf(hdr, sizeof hdr, "%s/small.h", tmpdir);
  assert_int_equal(access(hdr, R_OK), 0);
  if (have_runtime("aarch64-linux-gnu")) emit(g, "aarch64-linux-gnu", LB_EMIT_EXE, "small_a64", LB_OK);
  lb_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_emit_x86),
      cmocka_unit_test(test_emit_aarch64),
      cmocka_unit_test(test_emit_errors),
      cmocka_unit_test(test_kernel_sharing),
      cmocka_unit_test(test_exe_end_to_end),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
