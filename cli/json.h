/* json.h — a small streaming JSON writer for the CLI's --json outputs:
 * pretty-printed objects, arrays of scalars kept on one line. */
#ifndef SHOAL_CLI_JSON_H
#define SHOAL_CLI_JSON_H

#include <stdio.h>

#define JSON_MAX_DEPTH 16

typedef struct json_writer {
  FILE *f;
  int depth;
  int count[JSON_MAX_DEPTH];  /* members written at each depth */
  int inline_[JSON_MAX_DEPTH];/* this array stays on one line */
} json_writer;

void json_init(json_writer *j, FILE *f);
/* `key` is NULL for a member of an array. */
void json_object_begin(json_writer *j, const char *key);
void json_object_end(json_writer *j);
/* An inline array prints its members on one line (for numbers). */
void json_array_begin(json_writer *j, const char *key, int inline_);
void json_array_end(json_writer *j);
void json_string(json_writer *j, const char *key, const char *v); /* NULL: null */
void json_int(json_writer *j, const char *key, long long v);
void json_uint(json_writer *j, const char *key, unsigned long long v);
void json_double(json_writer *j, const char *key, double v, int decimals);
void json_bool(json_writer *j, const char *key, int v);
void json_null(json_writer *j, const char *key);
/* Ends the document with a newline. */
void json_finish(json_writer *j);

#endif
