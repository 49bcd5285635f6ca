/* json.c — the CLI's JSON writer (see json.h). Strings are escaped per
 * RFC 8259; bytes >= 0x80 pass through, so UTF-8 stays UTF-8. */
#include "json.h"

void json_init(json_writer *j, FILE *f) {
  j->f = f;
  j->depth = 0;
  j->count[0] = 0;
  j->inline_[0] = 0;
}

static void indent(json_writer *j) {
  fputc('\n', j->f);
  for (int i = 0; i < j->depth; i++)
    fputs("  ", j->f);
}

static void put_escaped(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    switch (c) {
    case '"': fputs("\\\"", f); break;
    case '\\': fputs("\\\\", f); break;
    case '\n': fputs("\\n", f); break;
    case '\r': fputs("\\r", f); break;
    case '\t': fputs("\\t", f); break;
    default:
      if (c < 0x20)
        fprintf(f, "\\u%04x", c);
      else
        fputc(c, f);
    }
  }
  fputc('"', f);
}

/* Separator, indentation and key before a member. */
static void member(json_writer *j, const char *key) {
  if (j->depth > 0) {
    if (j->count[j->depth]++ > 0)
      fputc(',', j->f);
    if (j->inline_[j->depth]) {
      if (j->count[j->depth] > 1)
        fputc(' ', j->f);
    } else {
      indent(j);
    }
  }
  if (key != NULL) {
    put_escaped(j->f, key);
    fputs(": ", j->f);
  }
}

static void open_(json_writer *j, const char *key, char c, int inline_) {
  member(j, key);
  fputc(c, j->f);
  if (j->depth + 1 < JSON_MAX_DEPTH)
    j->depth++;
  j->count[j->depth] = 0;
  j->inline_[j->depth] = inline_;
}

static void close_(json_writer *j, char c) {
  int had = j->count[j->depth], inl = j->inline_[j->depth];
  if (j->depth > 0)
    j->depth--;
  if (had > 0 && !inl)
    indent(j);
  fputc(c, j->f);
}

void json_object_begin(json_writer *j, const char *key) { open_(j, key, '{', 0); }
void json_object_end(json_writer *j) { close_(j, '}'); }
void json_array_begin(json_writer *j, const char *key, int inline_) {
  open_(j, key, '[', inline_);
}
void json_array_end(json_writer *j) { close_(j, ']'); }

void json_string(json_writer *j, const char *key, const char *v) {
  member(j, key);
  if (v == NULL)
    fputs("null", j->f);
  else
    put_escaped(j->f, v);
}

void json_int(json_writer *j, const char *key, long long v) {
  member(j, key);
  fprintf(j->f, "%lld", v);
}

void json_uint(json_writer *j, const char *key, unsigned long long v) {
  member(j, key);
  fprintf(j->f, "%llu", v);
}

void json_double(json_writer *j, const char *key, double v, int decimals) {
  member(j, key);
  fprintf(j->f, "%.*f", decimals, v);
}

void json_bool(json_writer *j, const char *key, int v) {
  member(j, key);
  fputs(v ? "true" : "false", j->f);
}

void json_null(json_writer *j, const char *key) {
  member(j, key);
  fputs("null", j->f);
}

void json_finish(json_writer *j) { fputc('\n', j->f); }
