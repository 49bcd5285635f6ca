/* topo_xml.c — the check an XML topology passes before hwloc reads it: the
 * form hwloc's own exporter writes, read the same way by both of hwloc's XML
 * readers, and no object that hwloc 2.9 would crash on. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runtime/topo/topo.h"

/* Why the check is this strict. hwloc has two readers: libxml2's (the
 * xml_libxml plugin) and a minimal one (no plugins, or
 * HWLOC_LIBXML_IMPORT=0). The minimal reader ends a tag at the first '>',
 * knows attribute names of [a-z_] written name="value" only, and stops
 * reading a tag's attributes, without an error, at the first one it cannot
 * read (an unknown entity, a value ending at the buffer's end). A tag that
 * libxml2 reads whole can thus lose attributes in the minimal reader. So
 * every tag must be in the exporter's form, where both readers see the
 * same attributes; what libxml2 alone would read differently (other
 * encodings, entities declared in the document, namespaces, CDATA) is
 * refused too.
 *
 * The crash it keeps out: hwloc 2.9.0 requires an object's cpuset and
 * nodeset, but sorts siblings by complete_cpuset without checking that it
 * was given (SEGV in hwloc_bitmap_compare_first); the exporter always
 * writes the four sets together, and hwloc since has required them
 * (open-mpi/hwloc pull request 783). tests/fuzz/known keeps the input. */

/* The largest PU OS index accepted: Linux's CPU numbers stay far below. */
#define PU_OS_MAX ((1u << 20) - 1)

typedef struct scan {
  const char *p, *end, *start;
  char *why;
  size_t cap;
  /* What the tree says, checked as it goes: the NUMA nodes seen, the
   * PUs' OS indices (one bit each), the distance matrix being read. */
  unsigned numa_nodes;
  unsigned char *pu_seen; /* (PU_OS_MAX + 1) / 8 bytes, made on first PU */
  unsigned long dist_n, dist_idx, dist_vals;
} scan;

static int refuse(scan *s, const char *fmt, ...) {
  va_list ap;
  int n = snprintf(s->why, s->cap, "byte %zu: ", (size_t)(s->p - s->start));
  va_start(ap, fmt);
  if (n >= 0 && (size_t)n < s->cap)
    vsnprintf(s->why + n, s->cap - (size_t)n, fmt, ap);
  va_end(ap);
  return SHOAL_EFORMAT;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n'; }

/* The n bytes at p are the word lit. */
static int is_word(const char *lit, const char *p, size_t n) {
  return strlen(lit) == n && memcmp(lit, p, n) == 0;
}

static int starts(const scan *s, const char *lit) {
  size_t n = strlen(lit);
  return (size_t)(s->end - s->p) >= n && memcmp(s->p, lit, n) == 0;
}

static void skip_space(scan *s) {
  while (s->p < s->end && is_space(*s->p))
    s->p++;
}

/* A run of [a-z_] (digits too in tag names), as the minimal reader knows
 * names; its length. */
static size_t name_len(const scan *s, int digits) {
  const char *q = s->p;
  while (q < s->end && ((*q >= 'a' && *q <= 'z') || *q == '_' ||
                        (digits && *q >= '0' && *q <= '9')))
    q++;
  return (size_t)(q - s->p);
}

/* The escapes the minimal reader decodes; any other '&' ends its reading of
 * the tag. */
static size_t escape_len(const char *p, const char *end) {
  static const char *const known[] = {"&#10;", "&#13;", "&#9;", "&quot;",
                                      "&lt;", "&gt;", "&amp;"};
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
    size_t n = strlen(known[i]);
    if ((size_t)(end - p) >= n && memcmp(p, known[i], n) == 0)
      return n;
  }
  return 0;
}

/* The sets an object names: the exporter writes all four, or none for I/O
 * and Misc objects. */
enum {
  CPUSET = 1, COMPLETE_CPUSET = 2, NODESET = 4, COMPLETE_NODESET = 8,
  ALL_SETS = 15
};

/* Objects outside the CPU and memory hierarchy, which have no sets, as
 * the exporter names their types. */
static int no_sets(const char *type, size_t n) {
  static const char *const types[] = {"Bridge", "PCIDev", "OSDev", "Misc"};
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
    if (is_word(types[i], type, n))
      return 1;
  return 0;
}

static unsigned set_bit(const char *name, size_t n) {
  static const struct {
    const char *name;
    unsigned bit;
  } sets[] = {{"cpuset", CPUSET},
              {"complete_cpuset", COMPLETE_CPUSET},
              {"nodeset", NODESET},
              {"complete_nodeset", COMPLETE_NODESET}};
  for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
    if (is_word(sets[i].name, name, n))
      return sets[i].bit;
  return 0;
}

/* An attribute that hwloc reads as a bitmap: its name ends in cpuset or
 * nodeset. */
static int ends_with(const char *name, size_t n, const char *suffix) {
  size_t k = strlen(suffix);
  return n >= k && memcmp(name + n - k, suffix, k) == 0;
}

static int is_bitmap(const char *name, size_t n) {
  return ends_with(name, n, "cpuset") || ends_with(name, n, "nodeset");
}

/* A bitmap as the exporter writes it: "0xf...f" or a hex word, then words
 * or empty words after commas. hwloc 2.9's parser counts the words from
 * the second byte on, and one more word than it counted (a leading comma)
 * fails its assertion (abort in hwloc_bitmap_sscanf). */
static int bitmap_ok(const char *v, size_t n) {
  size_t i = 0;
  if (n >= 7 && memcmp(v, "0xf...f", 7) == 0)
    i = 7;
  for (int first = 1;; first = 0) {
    size_t d = 0;
    if (!first || i == 0) {
      if (i + 1 < n && v[i] == '0' && v[i + 1] == 'x')
        i += 2;
      while (i < n && d < 16 &&
             ((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f') ||
              (v[i] >= 'A' && v[i] <= 'F')))
        i++, d++;
      if (first && d == 0)
        return 0;
    }
    if (i == n)
      return 1;
    if (v[i] != ',')
      return 0;
    i++;
  }
}

/* hwloc's elements (hwloc.dtd for v1, hwloc2.dtd for v2) and the children
 * each may have: the exporter writes nothing else, and hwloc 2.9 leaks the
 * objects it had built when it meets another. */
enum {
  T_TOPOLOGY, T_ROOT, T_OBJECT, T_PAGE_TYPE, T_INFO, T_USERDATA,
  T_DISTANCES, T_LATENCY, T_DISTANCES2, T_DISTANCES2HETERO, T_INDEXES,
  T_U64VALUES, T_MEMATTR, T_MEMATTR_VALUE, T_SUPPORT, T_CPUKIND, T_COUNT
};
#define B(t) (1u << (t))
static const struct {
  const char *name;
  unsigned children; /* B() of each tag allowed inside */
  int text;          /* holds text (numbers, base64) */
} tags[T_COUNT] = {
  [T_TOPOLOGY] = {"topology", B(T_OBJECT) | B(T_DISTANCES2) |
                  B(T_DISTANCES2HETERO) | B(T_SUPPORT) | B(T_MEMATTR) |
                  B(T_CPUKIND) | B(T_INFO), 0},
  [T_ROOT] = {"root", B(T_OBJECT), 0},
  [T_OBJECT] = {"object", B(T_PAGE_TYPE) | B(T_INFO) | B(T_USERDATA) |
                B(T_OBJECT) | B(T_DISTANCES), 0},
  [T_PAGE_TYPE] = {"page_type", 0, 0},
  [T_INFO] = {"info", 0, 0},
  [T_USERDATA] = {"userdata", 0, 1},
  [T_DISTANCES] = {"distances", B(T_LATENCY), 0},
  [T_LATENCY] = {"latency", 0, 0},
  [T_DISTANCES2] = {"distances2", B(T_INDEXES) | B(T_U64VALUES), 0},
  [T_DISTANCES2HETERO] = {"distances2hetero", B(T_INDEXES) | B(T_U64VALUES),
                          0},
  [T_INDEXES] = {"indexes", 0, 1},
  [T_U64VALUES] = {"u64values", 0, 1},
  [T_MEMATTR] = {"memattr", B(T_MEMATTR_VALUE), 0},
  [T_MEMATTR_VALUE] = {"memattr_value", 0, 0},
  [T_SUPPORT] = {"support", 0, 0},
  [T_CPUKIND] = {"cpukind", B(T_INFO), 0},
};
/* The document holds one of these. */
#define ROOTS (B(T_TOPOLOGY) | B(T_ROOT))
/* Deeper than any machine: hwloc's levels are about a dozen. */
#define DEPTH_MAX 64

static int tag_of(const char *name, size_t n) {
  for (int t = 0; t < T_COUNT; t++)
    if (is_word(tags[t].name, name, n))
      return t;
  return -1;
}

/* The XML declaration: an encoding, if named, must read as bytes do. */
static int declaration(scan *s) {
  const char *close = s->p, *enc;
  while (close + 1 < s->end && !(close[0] == '?' && close[1] == '>'))
    close++;
  if (close + 1 >= s->end)
    return refuse(s, "unterminated XML declaration");
  for (enc = s->p; enc + 9 <= close; enc++) {
    static const char *const ok[] = {"\"UTF-8\"", "'UTF-8'", "\"US-ASCII\"",
                                     "'US-ASCII'", "\"ISO-8859-1\"",
                                     "'ISO-8859-1'"};
    const char *v;
    int found = 0;
    if (memcmp(enc, "encoding", 8) != 0)
      continue;
    v = enc + 8;
    while (v < close && (is_space(*v) || *v == '='))
      v++;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
      size_t n = strlen(ok[i]);
      if ((size_t)(close - v) >= n && strncasecmp(v, ok[i], n) == 0)
        found = 1;
    }
    if (!found)
      return refuse(s, "encoding other than UTF-8 or ASCII");
  }
  s->p = close + 2;
  return SHOAL_OK;
}

/* <!DOCTYPE …>: no internal subset (it could declare entities that expand
 * to tags libxml2 reads and this check does not). */
static int doctype(scan *s) {
  char quote = 0;
  for (; s->p < s->end; s->p++) {
    char c = *s->p;
    if (quote != 0) {
      if (c == quote)
        quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '[') {
      return refuse(s, "DOCTYPE with an internal subset");
    } else if (c == '>') {
      s->p++;
      return SHOAL_OK;
    }
  }
  return refuse(s, "unterminated DOCTYPE");
}

/* The one bit a PU's cpuset holds, or -1 when it holds none or several.
 * The exporter writes 32-bit hex words, most significant first. */
static long single_bit(const char *v, size_t n) {
  long bit = -1;
  size_t words = 1, w = 0;
  for (size_t i = 0; i < n; i++)
    words += v[i] == ',';
  for (size_t i = 0; i < n;) {
    unsigned long x;
    char *end;
    if (i + 1 < n && v[i] == '0' && v[i + 1] == 'x')
      i += 2;
    x = strtoul(v + i, &end, 16);
    if (x != 0) {
      if (bit >= 0 || (x & (x - 1)) != 0)
        return -1;
      bit = (long)((words - 1 - w) * 32 + (size_t)__builtin_ctzl(x));
    }
    i = (size_t)(end - v);
    while (i < n && v[i] != ',')
      i++;
    i++;
    w++;
  }
  return bit;
}

/* A PU: an OS index hwloc can use, its cpuset that index alone, and no
 * other PU with it (hwloc would bind two workers to one CPU). */
static int pu_check(scan *s, const char *os, size_t os_n, const char *cpuset,
                    size_t cpuset_n) {
  unsigned long idx;
  char *end;
  if (os == NULL)
    return refuse(s, "a PU without an os_index");
  idx = strtoul(os, &end, 10);
  if (end != os + os_n || os_n == 0 || os_n > 10)
    return refuse(s, "PU os_index '%.*s' is not a number", (int)os_n, os);
  if (idx > PU_OS_MAX)
    return refuse(s, "PU os_index %lu past %u", idx, PU_OS_MAX);
  if (cpuset != NULL && single_bit(cpuset, cpuset_n) != (long)idx)
    return refuse(s, "PU P#%lu whose cpuset '%.*s' is not CPU %lu alone", idx,
                  (int)cpuset_n, cpuset, idx);
  if (s->pu_seen == NULL &&
      (s->pu_seen = shoal__calloc((PU_OS_MAX + 1) / 8, 1)) == NULL)
    return refuse(s, "out of memory");
  if (s->pu_seen[idx / 8] & (1u << (idx % 8)))
    return refuse(s, "a second PU with os_index %lu", idx);
  s->pu_seen[idx / 8] |= (unsigned char)(1u << (idx % 8));
  return SHOAL_OK;
}

/* The numbers of an indexes or u64values element's text, counted. */
static void count_numbers(scan *s, int tag, const char *p, const char *end) {
  unsigned long k = 0;
  while (p < end) {
    while (p < end && is_space(*p))
      p++;
    if (p < end)
      k++;
    while (p < end && !is_space(*p))
      p++;
  }
  if (tag == T_INDEXES)
    s->dist_idx += k;
  else if (tag == T_U64VALUES)
    s->dist_vals += k;
}

/* A distance matrix as it closes: its indexes and values fill it. */
static int matrix_check(scan *s) {
  if (s->dist_idx != s->dist_n || s->dist_vals != s->dist_n * s->dist_n)
    return refuse(s, "a distance matrix of %lu objects with %lu indexes and "
                  "%lu values (%lu wanted)", s->dist_n, s->dist_idx,
                  s->dist_vals, s->dist_n * s->dist_n);
  return SHOAL_OK;
}

/* A start tag from its name, where the tags in `allowed` may open: one of
 * hwloc's, attributes in the exporter's form. *id is its tag, *closed set
 * when it closes itself (<info … />). */
static int start_tag(scan *s, unsigned allowed, int *id, int *closed) {
  const char *tag = s->p;
  size_t tag_n = name_len(s, 1);
  const char *type = "", *value, *os = NULL, *cpuset = NULL;
  size_t type_n = 0, os_n = 0, cpuset_n = 0;
  unsigned long nbobjs = 0;
  unsigned sets = 0;
  int t;
  if (tag_n == 0)
    return refuse(s, "tag name outside [a-z0-9_]");
  if ((t = tag_of(tag, tag_n)) < 0)
    return refuse(s, "<%.*s> is not an hwloc XML element", (int)tag_n, tag);
  if (!(allowed & B(t)))
    return refuse(s, "<%.*s> where hwloc's format has none", (int)tag_n,
                  tag);
  *id = t;
  *closed = 0;
  s->p += tag_n;
  for (;;) {
    const char *name;
    size_t n;
    unsigned bit;
    int spaced = s->p < s->end && is_space(*s->p);
    skip_space(s);
    if (starts(s, "/>") || starts(s, ">")) {
      *closed = *s->p == '/';
      s->p += *closed ? 2 : 1;
      break;
    }
    if (s->p >= s->end)
      return refuse(s, "unterminated tag <%.*s", (int)tag_n, tag);
    name = s->p;
    n = name_len(s, 0);
    if (n == 0)
      return refuse(s, "byte 0x%02x where <%.*s has an attribute name "
                    "([a-z_]) or its end", (unsigned char)*s->p, (int)tag_n,
                    tag);
    if (!spaced)
      return refuse(s, "no space before an attribute of <%.*s", (int)tag_n,
                    tag);
    s->p += n;
    if (!starts(s, "=\""))
      return refuse(s, "attribute %.*s not written name=\"value\"", (int)n,
                    name);
    s->p += 2;
    value = s->p;
    while (s->p < s->end && *s->p != '"') {
      size_t e = 1;
      if (*s->p == '<' || *s->p == '>')
        return refuse(s, "'%c' unescaped in the value of %.*s", *s->p,
                      (int)n, name);
      if (*s->p == '&' && (e = escape_len(s->p, s->end)) == 0)
        return refuse(s, "unknown escape in the value of %.*s", (int)n, name);
      s->p += e;
    }
    if (s->p >= s->end)
      return refuse(s, "unterminated value of %.*s", (int)n, name);
    if (is_bitmap(name, n) && !bitmap_ok(value, (size_t)(s->p - value)))
      return refuse(s, "%.*s is not a bitmap as hwloc writes one", (int)n,
                    name);
    if (is_word("type", name, n)) {
      type = value;
      type_n = (size_t)(s->p - value);
    } else if (is_word("os_index", name, n)) {
      os = value;
      os_n = (size_t)(s->p - value);
    } else if (is_word("cpuset", name, n)) {
      cpuset = value;
      cpuset_n = (size_t)(s->p - value);
    } else if (is_word("nbobjs", name, n)) {
      nbobjs = strtoul(value, NULL, 10);
    }
    s->p++;
    bit = set_bit(name, n);
    if (bit & sets)
      return refuse(s, "%.*s given twice", (int)n, name);
    sets |= bit;
  }
  if (t == T_DISTANCES2 || t == T_DISTANCES2HETERO) {
    if (nbobjs == 0 || nbobjs > 65536)
      return refuse(s, "a distance matrix of %lu objects", nbobjs);
    s->dist_n = nbobjs;
    s->dist_idx = s->dist_vals = 0;
  }
  if (t == T_OBJECT && is_word("NUMANode", type, type_n))
    s->numa_nodes++;
  if (t == T_OBJECT && is_word("PU", type, type_n)) {
    int rc = pu_check(s, os, os_n, cpuset, cpuset_n);
    if (rc != SHOAL_OK)
      return rc;
  }
  if (t == T_OBJECT && sets == 0 && !no_sets(type, type_n))
    return refuse(s, "object of type '%.*s' without cpuset and nodeset",
                  (int)type_n, type);
  if (t == T_OBJECT && sets != 0 && sets != ALL_SETS) {
    static const char *const names[] = {"cpuset", "complete_cpuset",
                                        "nodeset", "complete_nodeset"};
    unsigned have = 0, miss = 0;
    while (!(sets & (1u << have)))
      have++;
    while (sets & (1u << miss))
      miss++;
    return refuse(s, "object with %s but no %s", names[have], names[miss]);
  }
  return SHOAL_OK;
}

/* The document, element by element. */
static int check(scan *sp) {
  const char *buf = sp->start;
  size_t len = (size_t)(sp->end - sp->start);
  const char *first; /* after a byte order mark */
  int stack[DEPTH_MAX], depth = 0, seen_root = 0;
  if (memchr(buf, '\0', len) != NULL) {
    sp->p = memchr(buf, '\0', len);
    return refuse(sp, "NUL byte (not UTF-8 text)");
  }
  if (starts(sp, "\xEF\xBB\xBF"))
    sp->p += 3;
  first = sp->p;
  while (sp->p < sp->end) {
    const char *lt = memchr(sp->p, '<', (size_t)(sp->end - sp->p));
    int rc = SHOAL_OK;
    /* Text: inside the elements that hold some, or white space. */
    if (depth == 0 || !tags[stack[depth - 1]].text) {
      skip_space(sp);
      if (sp->p < (lt != NULL ? lt : sp->end))
        return refuse(sp, "text %s", depth == 0 ? "outside the topology"
                                                : "where hwloc's format has "
                                                  "none");
    }
    if (depth > 0 && tags[stack[depth - 1]].text)
      count_numbers(sp, stack[depth - 1], sp->p, lt != NULL ? lt : sp->end);
    if (lt == NULL)
      break;
    sp->p = lt;
    if (starts(sp, "<?xml") && sp->p == first) {
      sp->p += 5;
      rc = declaration(sp);
    } else if (starts(sp, "<!--")) {
      const char *q = sp->p + 4;
      while (q + 2 < sp->end && memcmp(q, "-->", 3) != 0)
        q++;
      if (q + 2 >= sp->end)
        return refuse(sp, "unterminated comment");
      sp->p = q + 3;
    } else if (starts(sp, "<!DOCTYPE") && !seen_root) {
      sp->p += 9;
      rc = doctype(sp);
    } else if (starts(sp, "<!") || starts(sp, "<?")) {
      return refuse(sp, "markup other than tags, comments, one XML "
                        "declaration and one DOCTYPE");
    } else if (starts(sp, "</")) {
      const char *name;
      size_t n;
      sp->p += 2;
      name = sp->p;
      n = name_len(sp, 1);
      if (depth == 0 || tag_of(name, n) != stack[depth - 1])
        return refuse(sp, "</%.*s> closes no open element", (int)n, name);
      sp->p += n;
      skip_space(sp);
      if (!starts(sp, ">"))
        return refuse(sp, "malformed closing tag");
      sp->p++;
      depth--;
      if (stack[depth] == T_DISTANCES2 && (rc = matrix_check(sp)) != SHOAL_OK)
        return rc; /* (a heterogeneous one's indexes name types too) */
    } else {
      unsigned allowed = depth > 0 ? tags[stack[depth - 1]].children
                         : seen_root ? 0u
                                     : ROOTS;
      int id = 0, closed = 0;
      sp->p++;
      if (depth == 0 && seen_root)
        return refuse(sp, "a second root element");
      if ((rc = start_tag(sp, allowed, &id, &closed)) != SHOAL_OK)
        return rc;
      seen_root = 1;
      if (!closed) {
        if (depth == DEPTH_MAX)
          return refuse(sp, "elements nested deeper than %d", DEPTH_MAX);
        stack[depth++] = id;
      }
    }
    if (rc != SHOAL_OK)
      return rc;
  }
  if (depth > 0)
    return refuse(sp, "<%s> not closed", tags[stack[depth - 1]].name);
  if (!seen_root)
    return refuse(sp, "no <topology> element");
  return SHOAL_OK;
}

int shoal__topo_xml_check(const char *buf, size_t len, char *why,
                          size_t cap) {
  scan s = {buf, buf + len, buf, why, cap, 0, NULL, 0, 0, 0};
  int rc;
  if (cap > 0)
    why[0] = '\0';
  rc = check(&s);
  if (rc == SHOAL_OK && s.numa_nodes == 0)
    rc = refuse(&s, "no NUMA node (hwloc requires one)");
  shoal__free(s.pu_seen);
  return rc;
}
