/* Helpers for tests that drive dcnv4-run as a separate process. */
#ifndef DCNV4_RUN_TOOL_UTIL_H
#define DCNV4_RUN_TOOL_UTIL_H

#include <stddef.h>

/* Runs `tool args...` (args already shell-quoted), stderr captured into
 * `err` (first line, may be NULL). Returns the exit status, -1 if it did not
 * exit normally; *stderr_lines gets the number of stderr lines. */
int run_tool(const char *tool, const char *args, char *err, size_t err_size,
             int *stderr_lines);
/* Number of entries (files or folders) in dir; 0 if it does not exist. */
int count_entries(const char *dir);
/* Copies every regular file of src into a new folder dst. */
void copy_case(const char *src, const char *dst);
/* Overwrites dir/name with text, or with `size` bytes of data. */
void write_text(const char *dir, const char *name, const char *text);
void write_bytes(const char *dir, const char *name, const void *data,
                 size_t size);

#endif
