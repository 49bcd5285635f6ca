/* cpu.c — CPU identification through libcpuid: vendor, brand, codename,
 * hypervisor, and the SIMD features the metrics path dispatches on. */
#include <stdint.h>
#include <string.h>

#include <libcpuid.h>

#include "runtime/common.h"
#include "runtime/topo/topo.h"

static const char *const feature_names[] = {
  "sse4.2", "avx2", "avx512f", "avx512bw", "avx512vl",
};

const char *shoal_cpu_feature_name(unsigned bit) {
  for (unsigned i = 0; i < SHOAL__ARRAY_SIZE(feature_names); i++)
    if (bit == (1u << i))
      return feature_names[i];
  return NULL;
}

static void copy_trimmed(char *dst, size_t cap, const char *src) {
  size_t n;
  while (*src == ' ')
    src++;
  n = strlen(src);
  while (n > 0 && src[n - 1] == ' ')
    n--;
  if (n >= cap)
    n = cap - 1;
  memcpy(dst, src, n);
  dst[n] = '\0';
}

static const char *hypervisor_name(hypervisor_vendor_t h) {
  switch (h) {
  case HYPERVISOR_NONE: return "";
  case HYPERVISOR_BHYVE: return "bhyve";
  case HYPERVISOR_HYPERV: return "Hyper-V";
  case HYPERVISOR_KVM: return "KVM";
  case HYPERVISOR_PARALLELS: return "Parallels";
  case HYPERVISOR_QEMU: return "QEMU";
  case HYPERVISOR_VIRTUALBOX: return "VirtualBox";
  case HYPERVISOR_VMWARE: return "VMware";
  case HYPERVISOR_XEN: return "Xen";
  default: return "unknown";
  }
}

/* libcpuid 0.6.2's Intel table (its recog_intel.c) for family 6 models
 * past 15: per full model (extended part included), the names of the
 * parts its entries give. Its match scores brand words and the base model
 * too, so a part whose entries do not fit its brand, or whose model is
 * not listed at all, gets another model's name: 0.6.2 calls an Emerald
 * Rapids Xeon (model 0xCF) "Xeon (Conroe/2M)" and a Rocket Lake-based
 * Xeon (model 0xA7) "Xeon (Wolfdale)". */
static const struct {
  int model;
  const char *names; /* '|'-separated: one must be in the codename */
} intel6[] = {
  {22, "Conroe-L|More than quad-core|Unknown Core"},
  {23, "Penryn|Wolfdale|Yorkfield|Harpertown|More than quad-core|"
       "Unknown Core"},
  {26, "Bloomfield|Gainestown"}, {30, "Lynnfield"},
  {37, "Arrandale|Clarkdale|Lynnfield|Unknown Core"},
  {42, "Sandy Bridge"}, {44, "Gulftown|Westmere"}, {45, "Sandy Bridge-E"},
  {58, "Ivy Bridge"}, {60, "Haswell"}, {61, "Broadwell-U"},
  {62, "Ivy Bridge-E"}, {63, "Haswell-E"}, {69, "Haswell"}, {70, "Haswell"},
  {71, "Broadwell"}, {78, "Skylake"}, {79, "Broadwell-E"}, {85, "Skylake"},
  {94, "Skylake"}, {102, "Cannon Lake"}, {108, "Ice Lake"},
  {122, "Gemini Lake"}, {126, "Ice Lake"}, {138, "Lakefield"},
  {140, "Tiger Lake"},
  {142, "Coffee Lake|Comet Lake|Kaby Lake|Whiskey Lake"},
  {150, "Elkhart Lake"}, {151, "Alder Lake"}, {154, "Alder Lake"},
  {156, "Jasper Lake"}, {158, "Coffee Lake|Kaby Lake"}, {165, "Comet Lake"},
  {167, "Rocket Lake"}, {183, "Raptor Lake"},
};

/* 1 when the codename libcpuid gave a family-6 Intel part past model 15
 * is one of its model's names. Applies to libcpuid 0.6.2 and earlier:
 * later releases know more models and match more strictly. */
int shoal__intel6_name_fits(int family, int model, const char *codename) {
  const char *v = cpuid_lib_version();
  if (family != 6 || model < 16 || strlen(v) != 5 || strncmp(v, "0.", 2) != 0 ||
      strcmp(v, "0.6.2") > 0)
    return 1;
  for (size_t i = 0; i < SHOAL__ARRAY_SIZE(intel6); i++) {
    const char *n = intel6[i].names;
    if (intel6[i].model != model)
      continue;
    while (*n != '\0') {
      size_t len = strcspn(n, "|");
      char word[32];
      if (len < sizeof word) {
        memcpy(word, n, len);
        word[len] = '\0';
        if (strstr(codename, word) != NULL)
          return 1;
      }
      n += len + (n[len] == '|');
    }
    return 0;
  }
  return 0; /* a model the table does not list: matched on another's */
}

/* libcpuid picks the nearest entry of its tables even for a CPU newer than
 * them (0.6.2 calls a family-0x1A EPYC "Athlon X2 (Kuma)"), so a codename
 * counts as known only for the AMD families its tables cover, and for
 * Intel's family 6 only for the models its table lists. */
static int codename_known(const struct cpu_id_t *id) {
  static const int amd_families[] = {0x0F, 0x10, 0x11, 0x12, 0x14,
                                     0x15, 0x16, 0x17, 0x18, 0x19};
  const char *c = id->cpu_codename;
  if (c[0] == '\0' || strncmp(c, "Unknown", 7) == 0)
    return 0;
  if (id->vendor == VENDOR_AMD || id->vendor == VENDOR_HYGON) {
    for (size_t i = 0; i < SHOAL__ARRAY_SIZE(amd_families); i++)
      if (id->ext_family == amd_families[i])
        return 1;
    return 0;
  }
  return id->vendor != VENDOR_INTEL ||
         shoal__intel6_name_fits(id->family, id->ext_model, id->cpu_codename);
}

/* XCR0: which register states the OS saves (Intel SDM vol. 1, 13.3). AVX
 * needs SSE and YMM state (bits 1-2); AVX-512 also opmask, ZMM_Hi256 and
 * Hi16_ZMM (bits 5-7). Without OSXSAVE, nothing beyond SSE is usable. */
#define XCR0_AVX 0x06u
#define XCR0_AVX512 0xe6u

static uint64_t os_xcr0(const struct cpu_raw_data_t *raw) {
#if defined(__x86_64__) || defined(__i386__)
  uint32_t lo, hi;
  if (!(raw->basic_cpuid[1][2] & (1u << 27))) /* CPUID.1:ECX.OSXSAVE */
    return 0;
  __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t)hi << 32 | lo;
#else
  (void)raw;
  return 0;
#endif
}

/* libcpuid 0.6.2 sets the AVX-512 flags on its Intel path only; the bits
 * are read here from its raw CPUID.7.0:EBX for every vendor. */
static int leaf7_ebx(const struct cpu_raw_data_t *raw, unsigned bit) {
  return raw->basic_cpuid[0][0] >= 7 && (raw->basic_cpuid[7][1] >> bit & 1u);
}

static unsigned simd_features(const struct cpu_raw_data_t *raw,
                              const struct cpu_id_t *id) {
  uint64_t xcr0 = os_xcr0(raw);
  unsigned f = 0;
  if (id->flags[CPU_FEATURE_SSE4_2])
    f |= SHOAL_CPU_SSE42;
  if ((xcr0 & XCR0_AVX) == XCR0_AVX && id->flags[CPU_FEATURE_AVX2])
    f |= SHOAL_CPU_AVX2;
  if ((xcr0 & XCR0_AVX512) == XCR0_AVX512) {
    if (id->flags[CPU_FEATURE_AVX512F] || leaf7_ebx(raw, 16))
      f |= SHOAL_CPU_AVX512F;
    if (id->flags[CPU_FEATURE_AVX512BW] || leaf7_ebx(raw, 30))
      f |= SHOAL_CPU_AVX512BW;
    if (id->flags[CPU_FEATURE_AVX512VL] || leaf7_ebx(raw, 31))
      f |= SHOAL_CPU_AVX512VL;
  }
  return f;
}

int shoal_cpu_identify(shoal_cpu_info *out) {
  struct cpu_raw_data_t raw;
  struct cpu_id_t id;

  if (out == NULL)
    return SHOAL_EINVAL;
  memset(out, 0, sizeof *out);
  if (!cpuid_present())
    return SHOAL_ENOTSUP;
  if (cpuid_get_raw_data(&raw) != 0 || cpu_identify(&raw, &id) != 0)
    return SHOAL_ENOTSUP;

  copy_trimmed(out->vendor, sizeof out->vendor, id.vendor_str);
  copy_trimmed(out->brand, sizeof out->brand, id.brand_str);
  if (codename_known(&id))
    copy_trimmed(out->codename, sizeof out->codename, id.cpu_codename);
  copy_trimmed(out->hypervisor, sizeof out->hypervisor,
               hypervisor_name(cpuid_get_hypervisor(&raw, &id)));
  out->family = id.ext_family;
  out->model = id.ext_model;
  out->stepping = id.stepping;
  out->logical_cpus = id.total_logical_cpus > 0 ? (unsigned)id.total_logical_cpus : 0;
  out->features = simd_features(&raw, &id);
  return SHOAL_OK;
}

/* Whether PREFETCHW may be used: read once by the loader's thread, before
 * any thread of the library runs (os.c's binding is read the same way);
 * read-only after. CPUID.80000001H:ECX bit 8 (3DNowPrefetch), which
 * Intel sets since Broadwell and AMD since the K6-2. */
int shoal__prefetchw_ok;

__attribute__((constructor)) static void prefetchw_probe(void) {
  struct cpu_raw_data_t raw;
  struct cpu_id_t id;
  /* libcpuid 0.6.2 sets the flag on its AMD path only: the bit is read
   * from its raw CPUID.80000001H:ECX as well. */
  shoal__prefetchw_ok =
      cpuid_present() && cpuid_get_raw_data(&raw) == 0 &&
      cpu_identify(&raw, &id) == 0 &&
      (id.flags[CPU_FEATURE_3DNOWPREFETCH] ||
       (raw.ext_cpuid[0][0] >= 0x80000001u && (raw.ext_cpuid[1][2] >> 8 & 1u)));
}
