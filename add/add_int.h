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

#endif /* ADD_INT_H */
