/* fuzz_config.c — libFuzzer target: shoal_config_load on arbitrary file
 * contents, and shoal_config_load_string on the same bytes with a host
 * taking the keys outside shoal's sections, under AddressSanitizer and
 * UBSan. A load that fails must leave the configuration as it was and say
 * why. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shoal.h"

static char path[] = "/tmp/shoal-fuzz-config-XXXXXX";
static int fd = -1;

/* The host's keys: read whole, refused when the value starts with '!'. */
static int other(void *user, const char *section, const char *key,
                 const char *value, int line) {
  (void)user;
  if (strlen(section) + strlen(key) + strlen(value) > 1u << 20 || line < 1)
    abort();
  return value[0] == '!' ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  shoal_config cfg, before;
  char err[256];
  int rc;
  if (fd < 0 && (fd = mkstemp(path)) < 0)
    abort();
  if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
    abort();
  shoal_config_defaults(&cfg);
  cfg.max_sessions = 77; /* not a default: a partial apply would show */
  before = cfg;
  err[0] = '\0';
  rc = shoal_config_load(&cfg, path, err, sizeof err);
  if (rc != SHOAL_OK) {
    if (memcmp(&cfg, &before, sizeof cfg) != 0 || err[0] == '\0')
      abort(); /* a failed load changed something, or said nothing */
  }
  /* the same bytes as a string (up to the first NUL), shared with a host */
  {
    char *text = malloc(size + 1);
    if (text == NULL)
      abort();
    memcpy(text, data, size);
    text[size] = '\0';
    cfg = before;
    err[0] = '\0';
    rc = shoal_config_load_string(&cfg, text, "fuzz", other, NULL, err,
                                  sizeof err);
    if (rc != SHOAL_OK &&
        (memcmp(&cfg, &before, sizeof cfg) != 0 || err[0] == '\0'))
      abort();
    free(text);
  }
  return 0;
}
