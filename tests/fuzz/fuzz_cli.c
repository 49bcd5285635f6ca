/* fuzz_cli.c — libFuzzer target: the `shoal topo` and `shoal stress`
 * option parsers on arbitrary argument vectors (the input split at NUL
 * bytes; its first byte picks the command). A parse either goes on with
 * values inside their ranges or returns an exit status. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "stress.h"

#define MAX_ARGS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *buf, *argv[MAX_ARGS + 2];
  int argc = 1, rc;
  size_t i, start;
  if (size < 1)
    return 0;
  if ((buf = malloc(size + 1)) == NULL)
    return 0;
  memcpy(buf, data + 1, size - 1);
  buf[size - 1] = '\0';
  argv[0] = data[0] & 1 ? "shoal stress" : "shoal topo";
  for (i = 0, start = 0; i < size && argc <= MAX_ARGS; i++) {
    if (buf[i] == '\0') {
      argv[argc++] = buf + start;
      start = i + 1;
    }
  }
  argv[argc] = NULL;
  if (data[0] & 1) {
    st_args a;
    rc = st_parse_args(argc, argv, &a);
    if (rc == 0 && (a.sessions < 1 || a.tps < 1 || a.tps > 1000 ||
                    a.idle_pct > 100 || a.batch > 256))
      abort();
  } else {
    topo_args a;
    rc = topo_parse_args(argc, argv, &a);
    if (rc == 0 && (a.workers > SHOAL_WORKERS_MAX ||
                    (a.synthetic != NULL && a.xml != NULL)))
      abort();
  }
  if (rc != 0 && rc != -1 && rc != CLI_USAGE)
    abort();
  free(buf);
  return 0;
}
