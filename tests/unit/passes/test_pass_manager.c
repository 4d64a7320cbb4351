/* Unit tests for passes/pass_manager.c */
#include "helpers.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

/* x -> identity -> relu -> (unused exp) ; returns relu */
static struct lb_graph *small_graph(void) {
  struct lb_graph *g = lb_graph_new("small");
  struct lb_type t = TY(F32, 2, 4);
  struct lb_value *x = input(g, "x", t);
  struct lb_value *i = op1(g, LB_OP_IDENTITY, "i", t, 1, x);
  struct lb_value *r = op1(g, LB_OP_RELU, "r", t, 1, i);
  op1(g, LB_OP_EXP, "unused", t, 1, r);
  lb_graph_add_output(g, r);
  return g;
}

static char *read_all(FILE *f) {
  fflush(f);
  long n = ftell(f);
  rewind(f);
  char *s = calloc((size_t)n + 1, 1);
  assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
  return s;
}

static void lookup_and_table(void **state) {
  (void)state;
  assert_true(lb_n_passes >= 7);
  assert_non_null(lb_pass_find("fold-constants"));
  assert_ptr_equal(lb_pass_find("fold-constants")->run, lb_pass_fold_constants);
  assert_null(lb_pass_find("fold_constants"));
  assert_null(lb_pass_find(NULL));
}

static void unknown_pass_is_usage_error(void **state) {
  (void)state;
  struct lb_graph *g = small_graph();
  struct lb_diag d;
  lb_diag_init(&d, NULL);
  assert_int_equal(lb_pass_manager_run(g, "dce,frobnicate", NULL, &d), LB_ERR_USAGE);
  assert_non_null(strstr(d.text, "unknown pass 'frobnicate'"));
  assert_non_null(strstr(d.text, "plan-memory"));
  assert_int_equal(g->n_nodes, 3); /* nothing ran */
  lb_diag_free(&d);
  lb_graph_free(g);
}

/* Arguments: keys are checked against the pass's list; braces hide commas. */
static void pass_arguments(void **state) {
  (void)state;
  struct lb_graph *g = small_graph();
  struct lb_diag d;
  lb_diag_init(&d, NULL);
  assert_int_equal(lb_pass_manager_run(g, "dce{frob=1 x=2}", NULL, &d), LB_ERR_USAGE);
  assert_non_null(strstr(d.text, "pass 'dce' has no argument 'frob' (it takes: none)"));
  lb_diag_free(&d);
  lb_diag_init(&d, NULL);
  assert_int_equal(lb_pass_manager_run(g, "dce{frob", NULL, &d), LB_ERR_USAGE);
  assert_non_null(strstr(d.text, "missing '}'"));
  lb_diag_free(&d);
  lb_diag_init(&d, NULL);
  assert_int_equal(lb_pass_manager_run(g, "dce{novalue}", NULL, &d), LB_ERR_USAGE);
  assert_non_null(strstr(d.text, "is not key=value"));
  assert_int_equal(g->n_nodes, 3); /* nothing ran */
  lb_diag_free(&d);
  lb_diag_init(&d, NULL);
  assert_int_equal(lb_pass_manager_run(g, "simplify{}, dce{ }", NULL, &d), LB_OK);
  assert_int_equal(g->n_nodes, 1);
  lb_diag_free(&d);
  lb_graph_free(g);
}

static void empty_and_running(void **state) {
  (void)state;
  struct lb_graph *g = small_graph();
  struct lb_diag d;
  lb_diag_init(&d, NULL);
  assert_int_equal(lb_pass_manager_run(g, "", NULL, &d), LB_OK);
  assert_int_equal(g->n_nodes, 3);
  assert_int_equal(lb_pass_manager_run(g, "simplify, dce", NULL, &d), LB_OK);
  assert_int_equal(g->n_nodes, 1);
  lb_diag_free(&d);
  lb_graph_free(g);
}

static void printing_and_timing(void **state) {
  (void)state;
  struct lb_graph *g = small_graph();
  struct lb_diag d;
  lb_diag_init(&d, NULL);
  FILE *out = tmpfile();
  const char *after[] = {"dce", NULL};
  struct lb_pass_options opt = {.print_after = after, .print_before_all = true,
                                .time_passes = true, .print_out = out,
                                .dump_blobs = LB_PRINT_BLOBS_ELIDED};
  assert_int_equal(lb_pass_manager_run(g, "cse,dce", &opt, &d), LB_OK);
  char *s = read_all(out);
  assert_non_null(strstr(s, "# -- IR before cse --\n"));
  assert_non_null(strstr(s, "# -- IR before dce --\n"));
  assert_non_null(strstr(s, "# -- IR after dce --\n"));
  assert_null(strstr(s, "# -- IR after cse --"));
  assert_non_null(strstr(s, "Pass execution timing report"));
  assert_non_null(strstr(s, "Total"));
  free(s);
  fclose(out);

  /* --print-changed: only passes that changed something */
  out = tmpfile();
  struct lb_pass_options opt2 = {.print_changed = true, .print_out = out,
                                 .dump_blobs = LB_PRINT_BLOBS_ELIDED};
  assert_int_equal(lb_pass_manager_run(g, "cse,simplify,dce", &opt2, &d), LB_OK);
  s = read_all(out);
  assert_null(strstr(s, "after cse"));
  assert_non_null(strstr(s, "# -- IR after simplify --"));
  assert_null(strstr(s, "after dce")); /* dce ran earlier: nothing left to remove */
  free(s);
  fclose(out);
  lb_diag_free(&d);
  lb_graph_free(g);
}

static void dump_dir_files_parse_back(void **state) {
  (void)state;
  char dir[] = "/tmp/lb-passes-dump-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char sub[128];
  snprintf(sub, sizeof sub, "%s/a/b", dir);
  struct lb_graph *g = small_graph();
  struct lb_diag d;
  lb_diag_init(&d, NULL);
  struct lb_pass_options opt = {.dump_dir = sub, .dump_blobs = LB_PRINT_BLOBS_ELIDED};
  assert_int_equal(lb_pass_manager_run(g, "simplify,dce,dce", &opt, &d), LB_OK);
  const char *files[] = {"00-input.lbir", "01-simplify.lbir", "02-dce.lbir", "03-dce.lbir"};
  for (size_t i = 0; i < 4; i++) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", sub, files[i]);
    struct lb_graph *back = NULL;
    struct lb_diag pd;
    lb_diag_init(&pd, path);
    enum lb_status st = lb_graph_parse_file(path, &back, &pd);
    if (st != LB_OK) fail_msg("%s", pd.text ? pd.text : path);
    assert_int_equal(back->n_nodes, i == 0 ? 3 : i == 1 ? 2 : 1);
    lb_graph_free(back);
    lb_diag_free(&pd);
    unlink(path);
  }
  rmdir(sub);
  snprintf(sub, sizeof sub, "%s/a", dir);
  rmdir(sub);
  rmdir(dir);
  lb_diag_free(&d);
  lb_graph_free(g);
}

static void verify_each_names_the_pass(void **state) {
  (void)state;
  struct lb_graph *g = small_graph();
  /* break the graph: relu's output type no longer follows its input */
  lb_graph_find_value(g, "r")->type = TY(F32, 3, 3);
  struct lb_diag d;
  lb_diag_init(&d, NULL);
  struct lb_pass_options opt = {.verify_each = true, .dump_blobs = LB_PRINT_BLOBS_ELIDED};
  assert_int_not_equal(lb_pass_manager_run(g, "simplify,dce", &opt, &d), LB_OK);
  assert_non_null(d.text);
  assert_non_null(strstr(d.text, "verifier failed after pass 'simplify'"));
  lb_diag_free(&d);
  lb_graph_free(g);
}

static void pass_error_stops(void **state) {
  (void)state;
  struct lb_graph *g = small_graph();
  lb_graph_find_value(g, "i")->producer->op = LB_OP_MATMUL; /* matmul with one input */
  struct lb_diag d;
  lb_diag_init(&d, NULL);
  assert_int_not_equal(lb_pass_manager_run(g, "infer-shapes,simplify,dce", NULL, &d), LB_OK);
  assert_non_null(strstr(d.text, "while running pass 'infer-shapes'"));
  assert_int_equal(g->n_nodes, 3); /* dce never ran */
  lb_diag_free(&d);
  lb_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(lookup_and_table),
      cmocka_unit_test(unknown_pass_is_usage_error),
      cmocka_unit_test(empty_and_running),
      cmocka_unit_test(pass_arguments),
      cmocka_unit_test(printing_and_timing),
      cmocka_unit_test(dump_dir_files_parse_back),
      cmocka_unit_test(verify_each_names_the_pass),
      cmocka_unit_test(pass_error_stops),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
