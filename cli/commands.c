/*
 * cli/commands.c: the command table `witpipe --help` lists, in pipeline
 * order. Each command with an option table defines its cli_cmd beside its
 * parser (cli/cmd_X.c); encode, clip and model still carry their help as
 * one text here until they get tables of their own.
 */
#include "cli.h"

#include <stddef.h>

int cmd_encode(cli_ctx *ctx, int argc, char **argv);
int cmd_clip(cli_ctx *ctx, int argc, char **argv);
int cmd_model(cli_ctx *ctx, int argc, char **argv);

const cli_cmd cli_cmd_encode = {
    .name = "encode",
    .summary = "CLIP embeddings of every stored pair (float16 .npy shards)",
    .usage =
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
    .run = cmd_encode,
    .uses_openmp = 1,
};

const cli_cmd cli_cmd_clip = {
    .name = "clip",
    .summary = "embed images or texts, zero-shot classify (JSON)",
    .usage = "usage: witpipe clip embed-image --model MDIR [--normalize] [--precision P] FILE...\n"
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
    .run = cmd_clip,
    .uses_openmp = 1,
};

const cli_cmd cli_cmd_model = {
    .name = "model",
    .summary = "download a CLIP model folder (pull), inspect one (info)",
    .usage = "usage: witpipe model pull REPO [--endpoint URL] [--cache DIR] [--revision REV]\n"
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
    .run = cmd_model,
    .uses_openmp = 0,
};

const cli_cmd *const cli_commands[] = {
    &cli_cmd_init,   &cli_cmd_status, &cli_cmd_add,  &cli_cmd_crawl, &cli_cmd_fetch,
    &cli_cmd_encode, &cli_cmd_shard,  &cli_cmd_clip, &cli_cmd_model, NULL,
};
