/*
 * tests/lib/testlib.h: helpers shared by the cmocka unit tests: where the
 * reference data lives, scratch directories, small file utilities.
 */
#ifndef TESTLIB_H
#define TESTLIB_H

#include <stddef.h>
#include <stdint.h>

/* The ../shared folder (WITPIPE_SHARED overrides). Returns NULL, after
 * printing a loud "SKIP:" line naming what, when it is absent: the caller
 * then calls cmocka's skip(). */
const char *tl_shared_dir(const char *what);
/* Joins the shared dir and a relative path into a static buffer, or NULL. */
const char *tl_shared_path(const char *rel);
/* A fresh directory under /tmp, removed by tl_rmtree; static buffer. */
char *tl_mkdtemp(void);
int tl_rmtree(const char *dir);
/* Fills path (n bytes) with a fresh scratch folder followed by "/c": a
 * corpus path not made yet. tl_scratch_corpus_rm removes the folder. */
void tl_scratch_corpus(char *path, size_t n);
void tl_scratch_corpus_rm(const char *path);
/* Reads a whole file (malloc'ed, NUL-terminated); NULL on error. */
char *tl_slurp(const char *path, size_t *len);
/* The names in dir that do not start with '.' and end in suffix (NULL:
 * any), in byte order, in *names (malloc'ed, as is each name; free with
 * tl_free_names). Returns how many: 0 with *names NULL when dir cannot be
 * opened, -1 when out of memory. */
int tl_list_sorted(const char *dir, const char *suffix, char ***names);
void tl_free_names(char **names, int n);
/* The first column of the first row of sql over corpus's catalog.db,
 * opened read-only; -1 when there is no row. Fails the test when the
 * catalog cannot be opened or sql is refused. */
int64_t tl_q_int(const char *corpus, const char *sql);
/* tl_q_int with corpus other's catalog attached as b (NULL: none). */
int64_t tl_q_int_with(const char *corpus, const char *other, const char *sql);
/* Runs the shell command printf formats from fmt; its exit status, or -1
 * when it did not exit. */
int tl_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A fuzz target's per-input check: the line of the check that failed, 0
 * when all held, or TL_SKIP when the input does not apply. */
#define TL_SKIP (-1)
typedef int (*tl_check_fn)(const uint8_t *data, size_t len, void *ud);
/* Runs check on the bytes of every file of dir whose name ends in suffix
 * (NULL: any), in tl_list_sorted order (a missing dir has none). Fails the
 * test naming the file, and header:LINE for a failed check. Returns how many
 * inputs were checked (not skipped). */
int tl_replay_dir(const char *dir, const char *suffix, tl_check_fn check, void *ud,
                  const char *header);
/* tl_replay_dir over tests/fuzz/corpus/NAME (the seeds) and then
 * tests/fuzz/regress/NAME (reproducers of found bugs); the sum. */
int tl_replay_corpus(const char *name, tl_check_fn check, void *ud, const char *header);
/* Writes a whole file; 0 or -1. */
int tl_write(const char *path, const void *data, size_t len);
/* A standard normal draw (Box-Muller over two 53-bit uniforms in (0, 1))
 * from the splitmix64 sequence whose state is *s (advanced twice). */
double tl_gauss(uint64_t *s);
/* The witpipe binary under test (WITPIPE_BIN, else build/witpipe). */
const char *tl_witpipe_bin(void);

#endif
