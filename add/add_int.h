/*
 * add/add_int.h: what the add stage's own files share; not for other
 * modules. The run counts are written by add_run.c's helpers so that the
 * per-commit reports and the final one have the same shape.
 */
#ifndef ADD_INT_H
#define ADD_INT_H

#include "add.h"

/* Stores st as run's counts (elapsed_s included when elapsed >= 0). A NULL
 * run is a no-op. Returns 0, WP_ENOMEM or the catalog's error. */
int add_report_list(cat_run *run, const add_stats *st, double elapsed, wp_err *err);
int add_report_files(cat_run *run, const add_files_stats *st, double elapsed, wp_err *err);

/* The counts JSON of st (what add_report_list stores); NULL when out of
 * memory. The caller frees it. */
char *add_list_counts(const add_stats *st, double elapsed);
char *add_files_counts(const add_files_stats *st, double elapsed);

/* Parquet readers (0 or -1 for text ones): the file's row group count
 * (-1 for a text list), and the part of the run's row groups to read:
 * row group g of this file is read when pq_part_has(rg_base + g, I, N). */
int add_reader_row_groups(const add_reader *r);
int add_reader_row_groups_read(const add_reader *r); /* so far, whole ones */
void add_reader_set_part(add_reader *r, int64_t rg_base, int part_i, int part_n);

/* The list source of path as add_list records it (kind "list", params: the
 * format and columns): its id in *source_id. Returns 0, WP_ENOMEM or the
 * catalog's error. */
int add_source(cat *c, const char *path, const add_reader *r, int64_t *source_id, wp_err *err);
/* One record into the catalog (inside the caller's transaction): a bad
 * one counted by reason in st and the first ADD_BAD_REPORT reported with
 * name:line, a good one stored as a pair of source_id with origin
 * name:line. Returns 0 or the catalog's error. */
int add_store(cat *c, const add_record *rec, const char *name, int64_t source_id, cat_run *run,
              const wp_reporter *rep, add_stats *st, wp_err *err);

#endif /* ADD_INT_H */
