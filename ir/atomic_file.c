/* atomic_file.c: write a file so that a failure never leaves a partial one.
 * The data goes to a fresh temporary file in the same folder (mkstemp), which
 * is renamed over the destination only once everything was written. */
#include "ir/ir.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

FILE *lb_atomic_open(const char *path, char **tmp_out, struct lb_diag *d) {
  size_t n = strlen(path) + 16;
  char *tmp = malloc(n);
  if (!tmp) abort();
  snprintf(tmp, n, "%s.tmp.XXXXXX", path);
  int fd = mkstemp(tmp);
  /* mkstemp makes the file 0600; the result should have the mode a plain
   * fopen would give it (0666 less the umask), as users expect of reports */
  mode_t mask = umask(0);
  umask(mask);
  if (fd >= 0 && fchmod(fd, 0666 & ~mask) != 0) {
    close(fd);
    unlink(tmp);
    fd = -1;
  }
  FILE *f = fd < 0 ? NULL : fdopen(fd, "wb");
  if (!f) {
    lb_diag_error(d, LB_ERR_IO, NULL, "cannot write '%s': %s", path, strerror(errno));
    if (fd >= 0) {
      close(fd);
      unlink(tmp);
    }
    free(tmp);
    return NULL;
  }
  *tmp_out = tmp;
  return f;
}

enum lb_status lb_atomic_commit(FILE *f, char *tmp, const char *path, struct lb_diag *d) {
  bool ok = fflush(f) == 0 && !ferror(f);
  int err = errno;
  ok = (fclose(f) == 0) && ok;
  if (ok && rename(tmp, path) != 0) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    lb_diag_error(d, LB_ERR_IO, NULL, "cannot write '%s': %s", path, strerror(err ? err : EIO));
    unlink(tmp);
  }
  free(tmp);
  return ok ? LB_OK : LB_ERR_IO;
}
