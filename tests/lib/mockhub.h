/*
 * tests/lib/mockhub.h: a tiny Hugging Face style model hub for tests
 * (libmicrohttpd on 127.0.0.1, ephemeral port), serving one repository from
 * memory:
 *
 *   GET /api/models/REPO/revision/REV   {"siblings": [{"rfilename": ...}]}
 *   GET /REPO/resolve/REV/FILE          plain files: 200 with a SHA-256 ETag;
 *                                       LFS files: 302 to /cdn/FILE with
 *                                       X-Linked-Etag and X-Linked-Size
 *   GET /cdn/FILE                       the bytes; honours Range (206)
 *
 * Per file, the first `cut` answers with a body stop after half of it and
 * drop the connection, and `corrupt` serves a flipped byte, so tests can
 * drive resumption and verification. The server counts requests and
 * remembers the Range headers it saw.
 */
#ifndef TL_MOCKHUB_H
#define TL_MOCKHUB_H

#include <stddef.h>

#define TL_MOCKHUB_LFS     1 /* served through a redirect to /cdn/ */
#define TL_MOCKHUB_CORRUPT 2 /* one byte flipped in every answer */
#define TL_MOCKHUB_AWAY    4 /* LFS: redirected to 127.0.0.2 (another host) instead */
#define TL_MOCKHUB_BARE    8 /* no ETag, chunked (no Content-Length): nothing to verify */

typedef struct tl_mockhub tl_mockhub;

/* Starts the server for repository repo ("org/name"); NULL (after printing
 * why) on failure. */
tl_mockhub *tl_mockhub_start(const char *repo);
/* Adds a file (data is copied). cut: how many answers to break. */
int tl_mockhub_add(tl_mockhub *h, const char *name, const void *data, size_t len, int flags,
                   int cut);
int tl_mockhub_port(const tl_mockhub *h);
/* Requests seen for a path ("/cdn/model.safetensors"), and how many of them
 * carried a Range header starting past byte 0. */
int tl_mockhub_requests(tl_mockhub *h, const char *path, int *ranged);
void tl_mockhub_stop(tl_mockhub *h);

#endif
