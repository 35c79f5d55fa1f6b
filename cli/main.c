/*
 * cli/main.c: witpipe's entry point: global options, the command table and
 * dispatch, help and version, Ctrl-C handling.
 */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cmd_init(cli_ctx *ctx, int argc, char **argv);
int cmd_status(cli_ctx *ctx, int argc, char **argv);
int cmd_add(cli_ctx *ctx, int argc, char **argv);
int cmd_shard(cli_ctx *ctx, int argc, char **argv);
int cmd_crawl(cli_ctx *ctx, int argc, char **argv);
int cmd_fetch(cli_ctx *ctx, int argc, char **argv);
int cmd_dedup(cli_ctx *ctx, int argc, char **argv);
int cmd_encode(cli_ctx *ctx, int argc, char **argv);
int cmd_clip(cli_ctx *ctx, int argc, char **argv);
int cmd_model(cli_ctx *ctx, int argc, char **argv);

/* Keep in pipeline order; each entry's usage text is its documentation. */
const cli_cmd cli_commands[] = {
    {"init", "create a corpus directory and its catalog",
     "usage: witpipe init DIR\n"
     "\n"
     "Creates DIR (if needed) with an empty catalog (DIR/catalog.db) and image\n"
     "store (DIR/store/). Running it on an existing corpus changes nothing.\n",
     cmd_init, 0},
    {"status", "counts per stage, state and error class",
     "usage: witpipe status [-C DIR] [--json]\n"
     "\n"
     "Prints the corpus's counts: sources by kind, pairs, images by state and\n"
     "error class, decisions by stage and reason, crawl pages, shards, runs.\n"
     "  --json   one JSON object instead of a table\n",
     cmd_status, 0},
    {"add", "add URL+caption lists or local images to the corpus",
     "usage: witpipe add [-C DIR] [OPTIONS] FILE...\n"
     "       witpipe add [-C DIR] --files IMAGEDIR\n"
     "       witpipe add [-C DIR] --files-list LIST\n"
     "\n"
     "Adds (image URL, caption) pairs from lists in img2dataset's input formats:\n"
     "TSV (tab separated, no quoting, header row), CSV (RFC 4180 quoting: fields in\n"
     "double quotes may hold commas, quotes and line breaks; header row) or JSONL\n"
     "(one JSON object per line). Files may be plain or compressed with gzip,\n"
     "zstd, bzip2, xz, lzma or lz4; the format is taken from the name once the\n"
     "compression suffix is stripped (.tsv .tab .csv .jsonl .ndjson .json).\n"
     "FILE '-' reads standard input (give --format).\n"
     "\n"
     "Files are streamed: memory stays flat however long they are. A row with\n"
     "no URL, a URL that is not http(s), invalid UTF-8, bad CSV quoting, the\n"
     "wrong number of fields or an over-long field (URL > 8 KiB, caption >\n"
     "64 KiB, record > 1 MiB) is counted as bad and skipped; the first 10 are\n"
     "reported with file:line, the run goes on. An exact duplicate (same URL and\n"
     "caption) is stored once. A row with an empty caption is stored and counted.\n"
     "\n"
     "  --format tsv|csv|jsonl  the input format (default: from the file name)\n"
     "  --url-col NAME          the column (or JSON member) with the image URL\n"
     "                          (default url)\n"
     "  --text-col NAME         the column with the caption (default caption)\n"
     "  --keep-cols A,B,...     further columns kept as JSON in the pair's extra\n"
     "                          metadata (TSV/CSV: strings; JSONL: any value)\n"
     "  --batch N               rows per catalog transaction (default 50000)\n"
     "  --files IMAGEDIR        import a folder of local images instead (recursively,\n"
     "                          in name order). A file is taken when its header is a\n"
     "                          JPEG, PNG or WebP, or when a caption file of the same\n"
     "                          name with .txt for its extension is beside it. The\n"
     "                          format and size come from the file's header, never\n"
     "                          its name; a captioned file that is no usable image is\n"
     "                          recorded with state error and class not_an_image,\n"
     "                          unsupported, corrupt, too_large or unreadable.\n"
     "  --files-list LIST       import the images named in LIST, lines PATH<TAB>CAPTION\n"
     "                          (relative paths are relative to LIST's folder)\n"
     "\n"
     "Exit status: 0 when every input was read to its end (bad rows included),\n"
     "1 when an input could not be read or broke off (a truncated gzip: rows\n"
     "before the damage are kept), 2 usage error.\n",
     cmd_add, 0},
    {"crawl", "candidate pairs from a live crawl, WARC or WAT files",
     "usage: witpipe crawl [-C DIR] --seeds FILE [options]\n"
     "       witpipe crawl [-C DIR] --warc FILE... [options]\n"
     "       witpipe crawl [-C DIR] --wat FILE... [options]\n"
     "\n"
     "Extracts (image URL, text) candidate pairs into the catalog. The text is\n"
     "the image's alt text by default; title and <figcaption> (and the page\n"
     "title and language) are kept in pairs.extra. A pair (URL, text) is stored\n"
     "once; every further page showing it is recorded as a sighting. Pages whose\n"
     "<meta name=robots> (or one naming our token) or X-Robots-Tag says noai or\n"
     "noimageai give no pairs. Runs resume where they stopped.\n"
     "\n"
     "Sources:\n"
     "  --seeds FILE       live crawl, breadth-first from the URLs in FILE (one a\n"
     "                     line, # comments); frontier kept in the catalog\n"
     "  --warc FILE...     WARC 1.0/1.1 files, plain or gzip: response records\n"
     "                     with HTML payloads (chunked; gzip, deflate or br)\n"
     "  --wat FILE...      Common Crawl WAT files (metadata JSON: IMG@/src links)\n"
     "Extraction:\n"
     "  --text-from LIST   text candidates in order of preference, from alt,\n"
     "                     title, figcaption (default: alt)\n"
     "  --max-text N       longest text in bytes (default 2000)\n"
     "  --long-text MODE   truncate (at a character boundary, default) or drop\n"
     "  --bad-utf8 MODE    repair (U+FFFD, default) or drop texts with invalid UTF-8\n"
     "  --skip-ext LIST    image extensions to drop (default svg,gif; \"\" for none)\n"
     "  --max-page BYTES   larger pages are skipped (default 8388608)\n"
     "  --token NAME       our robots product token (default witpipe)\n"
     "  --no-prefilter     parse whole pages and whole WAT records (slower; the\n"
     "                     reference the fast paths are tested against)\n"
     "Archives:\n"
     "  --part I/N         only part I of N: whole files when there are at least N\n"
     "                     files, else every N-th record of each (for scale-out)\n"
     "  --batch N          records per catalog transaction (default 4096; a\n"
     "                     killed run re-reads at most this many on resume)\n"
     "  --max-record BYTES larger records are skipped (default 67108864)\n"
     "  --dry-run          extract and count only: no pairs stored, no progress\n"
     "                     saved (what a run would give; the bench's no-catalog figure)\n"
     "Live crawl:\n"
     "  --max-depth N      link depth from the seeds (default 3)\n"
     "  --max-pages N      pages to fetch in all, redirects included (default\n"
     "                     10000); a redirect's target is queued like a link and\n"
     "                     checked against robots.txt and scope (at most 5 hops)\n"
     "  --any-domain       follow links off the seeds' registrable domains\n"
     "  --include PAT      only URLs containing PAT (* wildcards; repeatable)\n"
     "  --exclude PAT      never URLs containing PAT (* wildcards; repeatable)\n"
     "  --user-agent UA    User-Agent header (default witpipe/VERSION)\n"
     "  --delay S          seconds between requests to one host (default 1;\n"
     "                     a longer robots.txt Crawl-delay wins)\n"
     "  --timeout S        seconds per request (default 30)\n"
     "  --retries N        retries for timeouts, 429 and 5xx (default 2)\n"
     "  --concurrency N    requests at once (default 16)\n"
     "  --allow-net CIDR   let the SSRF guard pass this range (repeatable)\n",
     cmd_crawl, 0},
    {"fetch", "download, check, resize and store every pending image",
     "usage: witpipe fetch [-C DIR] [OPTIONS]\n"
     "\n"
     "Downloads every image still pending in the catalog, identifies it from its\n"
     "bytes, applies the filters, decodes, resizes, re-encodes and stores it, and\n"
     "records one final state per image (ok, or error with a class: dns, connect,\n"
     "timeout, reset, http_4xx, http_5xx, too_large, opt_out, blocked_address,\n"
     "too_many_redirects, not_an_image, unsupported_format, corrupt,\n"
     "too_many_pixels, too_small, aspect_ratio, too_large_area, ...).\n"
     "Ctrl-C stops taking new work and saves what is done (exit 1); run again to\n"
     "continue. A killed run loses nothing committed and resumes the same way.\n"
     "\n"
     "Network:\n"
     "  --parallel N          transfers at once (default 64)\n"
     "  --per-host N          transfers at once to one host (default 4)\n"
     "  --host-delay S        minimum seconds between requests to one host (default 0)\n"
     "  --connect-timeout S   connect timeout in seconds (default 10)\n"
     "  --timeout S           whole-transfer timeout in seconds (default 60)\n"
     "  --low-speed B         abort below B bytes/s sustained for --low-speed-time\n"
     "                        seconds (defaults 1024 and 10; 0 disables)\n"
     "  --low-speed-time S\n"
     "  --max-bytes N         body size cap after decompression (default 20000000)\n"
     "  --retries N           retries for timeouts, resets, 429 and 5xx, with\n"
     "                        exponential backoff and jitter (default 2)\n"
     "  --user-agent TOKEN    contact token added to the User-Agent; X-Robots-Tag\n"
     "                        directives scoped to TOKEN: (or witpipe:) apply to us\n"
     "  --ignore-directive D  do not honour X-Robots-Tag directive D (repeatable;\n"
     "                        honoured by default: noai, noimageai, noindex,\n"
     "                        noimageindex)\n"
     "  --allow-net CIDR      allow connecting to this range although it is\n"
     "                        loopback/private/link-local/... (repeatable; the SSRF\n"
     "                        guard checks every resolved address, redirects too)\n"
     "Images:\n"
     "  --resize-mode M       no, border, keep_ratio, keep_ratio_largest or\n"
     "                        center_crop (default border)\n"
     "  --image-size N        target size in pixels (default 256)\n"
     "  --resize-only-if-bigger  leave smaller images at their size\n"
     "  --quality Q           JPEG quality of the stored images (default 95)\n"
     "  --no-reencode         with --resize-mode no: store the original bytes\n"
     "  --max-pixels N        refuse images with more pixels, from the header\n"
     "                        (default 89478485)\n"
     "  --min-image-size N    refuse images whose shorter side is below N\n"
     "  --max-aspect-ratio R  refuse images with longer/shorter side above R\n"
     "  --max-image-area N    refuse images with width*height above N\n"
     "Run:\n"
     "  --workers N           image threads (default: one per CPU)\n"
     "  --limit N             handle at most N images in this run\n"
     "  --stats-json          print the run's figures as one JSON line on stdout\n",
     cmd_fetch, 0},
    {"dedup", "drop exact, near-duplicate and semantic duplicates; decontaminate",
     "usage: witpipe dedup [-C DIR] [--exact] [--near] [--semantic] [OPTIONS]\n"
     "\n"
     "Finds duplicate images among the stored pairs and records a drop decision\n"
     "(stage dedup) for all pairs of a group but one, so that shard leaves them\n"
     "out. The kept pair is the one with the highest CLIP score when scores\n"
     "exist, else the largest original image, else the first added. Reasons:\n"
     "exact, near:KEPT, semantic:KEPT, contaminated:SET (KEPT = the kept pair's\n"
     "id). A run replaces the stage's earlier decisions. Without --exact, --near\n"
     "or --semantic, exact and near run.\n"
     "\n"
     "  --exact             same image: same URL, stored bytes or bytes as served\n"
     "  --near              64-bit DCT perceptual hashes within --radius (hashes\n"
     "                      are kept in the catalog; a stopped run resumes)\n"
     "  --radius N          Hamming radius, 0..32 (default 6)\n"
     "  --semantic          SemDeDup over the image embeddings of `encode`: spherical\n"
     "                      k-means, then within each cluster (farthest from the\n"
     "                      centroid first) drop a pair whose cosine to a kept one\n"
     "                      exceeds 1 - eps\n"
     "  --model NAME        embeddings to use (DIR/embeddings/NAME; default the only one)\n"
     "  --clusters K        k-means clusters (default about sqrt(N))\n"
     "  --iters N           k-means rounds (default 20)\n"
     "  --eps E[,E...]      SemDeDup eps (default 0.05); with several values the\n"
     "                      first decides and each one's removal count is printed\n"
     "  --against SET       drop pairs whose image is within --radius of an image\n"
     "                      of an evaluation set: a folder of images or a file\n"
     "                      listing image paths (repeatable; reason contaminated:NAME)\n"
     "  --against-radius R  the pHash radius for --against (default --radius; off: none)\n"
     "  --against-eps E     also drop pairs whose image embedding (--model) has a\n"
     "                      cosine above 1 - E with an evaluation image's, embedded\n"
     "                      with --clip-model DIR (the model that encoded the corpus)\n"
     "  --text-dup N        flag (stage dedup-text, decision keep, for the filter\n"
     "                      stage) pairs whose caption is the whole text of more than\n"
     "                      N images (reason caption_shared: \"logo\", file names) and\n"
     "                      pairs of an image with more than N captions\n"
     "                      (many_captions)\n"
     "  --dry-run           print PAIR_ID<TAB>REASON for every pair it would drop;\n"
     "                      record no decisions\n"
     "  --report FILE       the largest groups as one HTML file with thumbnails\n"
     "                      (default DIR/dedup_groups.html); --no-report: none\n"
     "  --groups N          groups in the report (default 20)\n"
     "  --threads N         hashing threads (default one per core)\n"
     "  --batch N           images hashed per catalog transaction (default 1024)\n",
     cmd_dedup, 1},
    {"encode", "CLIP embeddings of every stored pair (float16 .npy shards)",
     "usage: witpipe encode [-C DIR] --model MDIR [--batch N] [--precision f32|bf16]\n"
     "                      [--name NAME] [--shard-rows N] [--limit N] [--decode-threads N]\n"
     "\n"
     "Embeds every pair whose image is stored ok with the built-in CLIP: image\n"
     "and caption embeddings (L2-normalised, float16) go to\n"
     "DIR/embeddings/NAME/img_emb/img_emb_N.npy and text_emb/text_emb_N.npy,\n"
     "row r of shard N described by line r of metadata/metadata_N.jsonl\n"
     "(pair id, uid, clip_score); the catalog's embeddings table records each\n"
     "pair's shard, row and clip_score (image-text cosine). Resumable: pairs\n"
     "already embedded for NAME are skipped; a stopped run loses at most its\n"
     "unfinished shard. Images that cannot be decoded get an encode:NAME drop\n"
     "decision and are not retried.\n"
     "  --model MDIR       model folder: Hugging Face (config.json +\n"
     "                     model.safetensors) or OpenAI/open_clip\n"
     "                     (open_clip_config.json + open_clip_model.safetensors)\n"
     "  --batch N          pairs per forward pass (default 32, max 1024)\n"
     "  --precision P      f32 (default) or bf16: a ViT image tower's weights\n"
     "                     and activations in bfloat16 (AVX512_BF16 dot\n"
     "                     products where the CPU has them); text towers and\n"
     "                     ModifiedResNets stay f32 (bf16 moved their CLIP\n"
     "                     scores by more than 0.005)\n"
     "  --name NAME        folder under DIR/embeddings and the catalog's model\n"
     "                     key (default: the model folder's name, or its\n"
     "                     parent's when it is called 'model')\n"
     "  --shard-rows N     rows per .npy shard (default 10000)\n"
     "  --limit N          embed at most N pairs this run (default: all)\n"
     "  --decode-threads N threads reading and preprocessing the next batch's\n"
     "                     images while the model runs (default: one per 4\n"
     "                     cores, at least 1, at most 8)\n",
     cmd_encode, 1},
    {"shard", "write WebDataset tar shards of the selected samples",
     "usage: witpipe shard [-C DIR] [-o OUTDIR] [--per-shard N] [--max-bytes N]\n"
     "                     [--shuffle SEED] [--mtime T]\n"
     "\n"
     "Writes the corpus's selected samples (pairs whose image is stored, state ok,\n"
     "and that no stage dropped) as WebDataset shards OUTDIR/00000.tar,\n"
     "00001.tar, ... (use brace notation: {00000..00042}.tar). Each sample is\n"
     "three adjacent members named by its key, the pair uid (32 hex digits, no\n"
     "dots): KEY.jpg (or .png/.webp: the stored bytes unchanged), KEY.txt (the\n"
     "caption, UTF-8) and KEY.json (url, caption, sizes, sha256, source and every\n"
     "decision and score later stages added; schemas/sample.schema.json).\n"
     "\n"
     "Tar members are ustar with fixed owner (0/0, no names), mode 0644 and one\n"
     "mtime, so the same catalog and options give byte-identical shards. Each\n"
     "shard is written as NAME.tmp, synced and renamed: a crash never leaves a\n"
     "shard that looks complete, and running the command again writes only the\n"
     "shards that are missing. OUTDIR also gets manifest.json (per shard: name,\n"
     "samples, bytes, sha256; schemas/manifest.schema.json) and NNNNN_stats.json\n"
     "per shard (the pairs its range covered, by image state, error class and\n"
     "drop reason; schemas/shard_stats.schema.json).\n"
     "\n"
     "  -o, --output OUTDIR  where shards go (default DIR/shards)\n"
     "  --per-shard N        samples per shard (default 10000)\n"
     "  --max-bytes N        also start a new shard before one would pass N bytes\n"
     "                       (a single larger sample still gets its own shard)\n"
     "  --shuffle SEED       order samples by a hash of SEED and their uid instead\n"
     "                       of the order they were added (deterministic)\n"
     "  --mtime T            the mtime of every member, unix seconds (default 0)\n",
     cmd_shard, 0},
    {"clip", "embed images or texts, zero-shot classify (JSON)",
     "usage: witpipe clip embed-image --model MDIR [--normalize] [--precision P] FILE...\n"
     "       witpipe clip embed-text  --model MDIR [--normalize] TEXT...\n"
     "       witpipe clip zeroshot    --model MDIR --labels FILE [--templates FILE]\n"
     "                                [--top K] [--precision P] IMAGE...\n"
     "\n"
     "Runs the built-in CLIP and prints one JSON object on stdout.\n"
     "embed-image: CLIP preprocessing (shorter side to the model's size with\n"
     "PIL's bicubic, centre crop) and the image tower; {\"images\": [{\"file\",\n"
     "\"embedding\"}]}. embed-text: the tokenizer (cut to 77 tokens) and the text\n"
     "tower; {\"texts\": [{\"text\", \"embedding\"}]}. Embeddings are the\n"
     "projected features, un-normalised unless --normalize.\n"
     "zeroshot: every label (one per line of --labels) is put in each prompt\n"
     "template (default: the CLIP paper's 80 ImageNet templates; --templates\n"
     "FILE gives one per line, '{}' marks the label), each prompt embedded and\n"
     "normalised, averaged per label and renormalised; each image gets its top\n"
     "K labels with softmax(logit_scale * cosine) probabilities.\n"
     "  --model MDIR       model folder (see witpipe help encode)\n"
     "  --normalize        L2-normalise the printed embeddings\n"
     "  --precision P      f32 (default) or bf16 (see witpipe help encode)\n"
     "  --labels FILE      zeroshot: class names, one per line\n"
     "  --templates FILE   zeroshot: prompt templates, one per line\n"
     "  --top K            zeroshot: labels printed per image (default 5)\n"
     "Exit status 1 if any file could not be read or decoded.\n",
     cmd_clip, 1},
    {"model", "download a CLIP model folder (pull), inspect one (info)",
     "usage: witpipe model pull REPO [--endpoint URL] [--cache DIR] [--revision REV]\n"
     "       witpipe model info [--precision f32|bf16] MDIR\n"
     "\n"
     "pull: downloads the files a CLIP needs from a Hugging Face style hub:\n"
     "config.json + model.safetensors (or open_clip_config.json +\n"
     "open_clip_model.safetensors), the tokenizer files (vocab.json, merges.txt,\n"
     "tokenizer*.json, bpe_simple_vocab_16e6.txt.gz) and preprocessor_config.json,\n"
     "whichever the repository has. Downloads resume where an interrupted one\n"
     "stopped (FILE.part) and are checked against the size and SHA-256 the hub\n"
     "announces before they are put in place; files already there are kept.\n"
     "Prints the model folder on stdout.\n"
     "  REPO            the repository, org/name\n"
     "  --endpoint URL  the hub (default: $HF_ENDPOINT, else https://huggingface.co)\n"
     "  --cache DIR     the cache root; the model goes to DIR/org/name (default:\n"
     "                  $HF_HOME/witpipe/models, else ~/.cache/witpipe/models)\n"
     "  --revision REV  branch, tag or commit (default: main; the folder then\n"
     "                  gets an @REV suffix)\n"
     "A token in $HF_TOKEN is sent to the hub (never to the CDN it redirects to).\n"
     "\n"
     "info: loads MDIR and prints its architecture as one JSON object: layout\n"
     "(huggingface | openai), vision tower (vit | modified_resnet: width,\n"
     "layers, heads, patch, image size, activation), text tower (width,\n"
     "layers, heads, context length, vocabulary, activation, EOT rule), embed\n"
     "dim, normalisation mean/std, stored dtype, parameter count, logit scale.\n",
     cmd_model, 0},
    {NULL, NULL, NULL, NULL, 0},
};

static const char global_help[] =
    "witpipe %s: build WIT-style image-text corpora\n"
    "\n"
    "usage: witpipe [-C DIR] [--log-json] [--quiet] COMMAND [ARGS]\n"
    "\n"
    "Global options (anywhere on the line):\n"
    "  -C DIR        the corpus directory (default: the current directory)\n"
    "  --log-json    progress and events as JSON lines on stderr\n"
    "  -q, --quiet   print errors only\n"
    "  -h, --help    this help; witpipe help COMMAND or COMMAND --help for one\n"
    "  --version     print the version\n"
    "\n"
    "Commands:\n";

const cli_cmd *cli_find(const char *name)
{
    for (const cli_cmd *c = cli_commands; c->name != NULL; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

void cli_print_usage(const cli_cmd *c)
{
    fputs(c->usage, stdout);
}

static void print_help(void)
{
    printf(global_help, WP_VERSION);
    for (const cli_cmd *c = cli_commands; c->name != NULL; c++)
        printf("  %-10s %s\n", c->name, c->summary);
    printf("\nExit status: 0 success, 1 the run failed, 2 usage error.\n");
}

static void on_signal(int sig)
{
    int saved = errno; /* the interrupted code may be about to read it */
    (void)sig;
    if (wp_stop_requested()) {
        /* A second Ctrl-C: the user insists. Nothing is lost: the catalog
         * only holds committed batches. */
        signal(SIGINT, SIG_DFL);
        raise(SIGINT);
        errno = saved;
        return;
    }
    wp_request_stop();
    errno = saved;
}

/* Removes the global options from argv wherever they are (before a "--"),
 * filling ctx. Returns CLI_USAGE on a bad one, else 0. */
static int take_globals(cli_ctx *ctx, int *argc, char **argv, int *want_help, int *want_version)
{
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            while (i < *argc)
                argv[out++] = argv[i++];
            break;
        }
        if (strcmp(a, "-C") == 0 || strcmp(a, "--corpus") == 0) {
            if (i + 1 >= *argc) {
                fprintf(stderr, "witpipe: option '%s' needs a directory\n", a);
                return CLI_USAGE;
            }
            ctx->corpus = argv[++i];
        } else if (strncmp(a, "-C", 2) == 0 && a[2] != '\0') {
            ctx->corpus = a + 2;
        } else if (strncmp(a, "--corpus=", 9) == 0) {
            ctx->corpus = a + 9;
        } else if (strcmp(a, "--log-json") == 0) {
            ctx->log_json = 1;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            ctx->quiet = 1;
        } else if (strcmp(a, "--version") == 0 && out == 1) {
            *want_version = 1;
        } else if ((strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) && out == 1) {
            *want_help = 1;
        } else {
            argv[out++] = a;
        }
    }
    *argc = out;
    argv[out] = NULL;
    return 0;
}

int main(int argc, char **argv)
{
    cli_ctx ctx;
    const cli_cmd *cmd;
    static char **orig_argv; /* static: still reachable on the early returns */
    int want_help = 0, want_version = 0, rc;
    struct sigaction sa;

    memset(&ctx, 0, sizeof ctx);
    ctx.corpus = ".";
    ctx.tty = isatty(STDERR_FILENO);
    /* take_globals reorders argv; a second start needs it as given. */
    orig_argv = malloc((size_t)(argc + 1) * sizeof *argv);
    if (orig_argv != NULL)
        memcpy(orig_argv, argv, (size_t)(argc + 1) * sizeof *argv);
    if (take_globals(&ctx, &argc, argv, &want_help, &want_version) != 0)
        return CLI_USAGE;
    if (want_version) {
        printf("witpipe %s\n", WP_VERSION);
        return CLI_OK;
    }
    if (want_help || argc < 2) {
        print_help();
        return argc < 2 && !want_help ? CLI_USAGE : CLI_OK;
    }
    if (strcmp(argv[1], "help") == 0) {
        if (argc < 3) {
            print_help();
            return CLI_OK;
        }
        cmd = cli_find(argv[2]);
        if (cmd == NULL)
            return cli_usage_error("help", "unknown command '%s'", argv[2]);
        cli_print_usage(cmd);
        return CLI_OK;
    }
    cmd = cli_find(argv[1]);
    if (cmd == NULL) {
        fprintf(stderr, "witpipe: unknown command '%s' (see witpipe --help)\n", argv[1]);
        return CLI_USAGE;
    }
    /* OpenMP workers that spin while they wait hold a CPU that a
     * descheduled team mate needs when the machine is shared (measured:
     * ViT-B/32 at batch 1 beside one busy core, 3.8 -> 9.2 img/s; no loss
     * seen on a quiet machine). libgomp reads the policy only when it
     * loads, so a command that runs OpenMP teams sets it and executes
     * itself again, with its original arguments; when that fails it
     * carries on with the default policy. Other commands skip the second
     * start (a few ms of dynamic linking each time). */
    if (cmd->uses_openmp && orig_argv != NULL && getenv("OMP_WAIT_POLICY") == NULL &&
        getenv("GOMP_SPINCOUNT") == NULL && setenv("OMP_WAIT_POLICY", "passive", 1) == 0)
        execv("/proc/self/exe", orig_argv);
    free(orig_argv);
    orig_argv = NULL;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    cli_reporter_init(&ctx);
    optind = 1;
    rc = cmd->run(&ctx, argc - 1, argv + 1);
    cli_progress_done(&ctx);
    return rc;
}
