/*
 * cli/main.c: witpipe's entry point: global options, the command table and
 * dispatch, help and version, Ctrl-C handling.
 */
#include "cli.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cmd_init(cli_ctx *ctx, int argc, char **argv);
int cmd_status(cli_ctx *ctx, int argc, char **argv);
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
     cmd_init},
    {"status", "counts per stage, state and error class",
     "usage: witpipe status [-C DIR] [--json]\n"
     "\n"
     "Prints the corpus's counts: sources by kind, pairs, images by state and\n"
     "error class, decisions by stage and reason, crawl pages, shards, runs.\n"
     "  --json   one JSON object instead of a table\n",
     cmd_status},
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
     "  --precision P      f32 (default) or bf16 (image tower weights and\n"
     "                     activations in bfloat16; text stays f32)\n"
     "  --name NAME        folder under DIR/embeddings and the catalog's model\n"
     "                     key (default: the model folder's name, or its\n"
     "                     parent's when it is called 'model')\n"
     "  --shard-rows N     rows per .npy shard (default 10000)\n"
     "  --limit N          embed at most N pairs this run (default: all)\n"
     "  --decode-threads N threads reading and preprocessing the next batch's\n"
     "                     images while the model runs (default: one per 4\n"
     "                     cores, at least 1, at most 8)\n",
     cmd_encode},
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
     "  --precision P      f32 (default) or bf16\n"
     "  --labels FILE      zeroshot: class names, one per line\n"
     "  --templates FILE   zeroshot: prompt templates, one per line\n"
     "  --top K            zeroshot: labels printed per image (default 5)\n"
     "Exit status 1 if any file could not be read or decoded.\n",
     cmd_clip},
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
     cmd_model},
    {NULL, NULL, NULL, NULL},
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
    (void)sig;
    if (wp_stop_requested()) {
        /* A second Ctrl-C: the user insists. Nothing is lost: the catalog
         * only holds committed batches. */
        signal(SIGINT, SIG_DFL);
        raise(SIGINT);
        return;
    }
    wp_request_stop();
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
    int want_help = 0, want_version = 0, rc;
    struct sigaction sa;

    memset(&ctx, 0, sizeof ctx);
    ctx.corpus = ".";
    ctx.tty = isatty(STDERR_FILENO);
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
