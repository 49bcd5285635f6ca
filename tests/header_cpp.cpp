// header_cpp.cpp — shoal.h compiles alone as C++ and links.
#include "shoal.h"

#include <cstring>

int main() {
  shoal_latency_opts o;
  shoal_latency_opts_defaults(&o);
  return o.struct_size == sizeof o && std::strcmp(shoal_err_name(SHOAL_ENOENT), "ENOENT") == 0 ? 0 : 1;
}
