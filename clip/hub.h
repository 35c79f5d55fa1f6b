/*
 * encode/hub.h: fetching a CLIP model folder from a Hugging Face style hub
 * (`witpipe model pull`).
 *
 * The file list comes from GET {endpoint}/api/models/{repo}/revision/{rev}
 * ("siblings"); each file a CLIP needs is then downloaded from
 * {endpoint}/{repo}/resolve/{rev}/{file} (large files are redirected to a
 * CDN). Downloads go to FILE.part and resume with HTTP Range requests
 * (RFC 9110 section 14.2) after an interruption, in the same run or the next
 * one; a finished file is checked against the size and SHA-256 the hub
 * announces (X-Linked-Size / X-Linked-Etag, or Content-Length and a SHA-256
 * ETag) before it is renamed into place. A file already in place is kept.
 */
#ifndef ENCODE_HUB_H
#define ENCODE_HUB_H

#include "common/wp.h"

#define ENC_HUB_ENDPOINT "https://huggingface.co"
#define ENC_HUB_REPO_MAX 200        /* longest "org/name" accepted */
#define ENC_HUB_API_MAX  (8u << 20) /* largest file-list answer read */

enum enc_hub_status {
    ENC_HUB_EHTTP = -660,    /* the hub answered with an error status or not at all */
    ENC_HUB_EVERIFY = -661,  /* a download did not match the announced size or SHA-256 */
    ENC_HUB_ENOFILES = -662, /* the repository has no safetensors CLIP weights */
};

typedef struct enc_hub_opts {
    const char *endpoint;   /* NULL: $HF_ENDPOINT, else ENC_HUB_ENDPOINT */
    const char *cache;      /* root of the model cache; NULL: enc_hub_cache_root() */
    const char *revision;   /* NULL: "main" */
    const char *token;      /* bearer token; NULL: $HF_TOKEN if set */
    long connect_timeout_s; /* 0: 30 */
    long stall_timeout_s;   /* give up on a transfer that stalls this long; 0: 60 */
    int attempts;           /* tries per file (resuming each time); 0: 5 */
    const wp_reporter *rep; /* progress ("pull", bytes) and events; may be NULL */
} enc_hub_opts;

typedef struct enc_hub_result {
    char dir[WP_PATH_MAX]; /* the model folder */
    int fetched;           /* files downloaded now */
    int kept;              /* files already in place */
    int64_t bytes;         /* bytes received now */
} enc_hub_result;

/* The default cache root: $HF_HOME/witpipe/models if HF_HOME is set, else
 * $XDG_CACHE_HOME/witpipe/models, else ~/.cache/witpipe/models. 0 or
 * WP_ELIMIT / WP_EINVAL (no home directory). */
int enc_hub_cache_root(char out[WP_PATH_MAX], wp_err *err);

/* Downloads the CLIP files of repo ("org/name") into CACHE/org/name (with
 * "@REV" appended when the revision is not "main"; '/' in REV becomes '_').
 * Returns 0 and fills res (may be NULL), or WP_EINVAL (bad repo name),
 * ENC_HUB_EHTTP, ENC_HUB_EVERIFY, ENC_HUB_ENOFILES, WP_EIO, WP_ENOMEM,
 * WP_ESTOP (Ctrl-C: partial downloads are kept as .part files), with err
 * naming the URL or file. */
int enc_hub_pull(const char *repo, const enc_hub_opts *opts, enc_hub_result *res, wp_err *err);

#endif
