/* header_c.c — shoal.h compiles alone as strict C11 and links. */
#include "shoal.h"

#include <string.h>

int main(void) {
  shoal_topo_opts o;
  shoal_topo_opts_defaults(&o);
  return o.struct_size == sizeof o && strcmp(shoal_err_name(SHOAL_EINVAL), "EINVAL") == 0 ? 0 : 1;
}
