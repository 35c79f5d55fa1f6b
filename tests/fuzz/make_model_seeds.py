#!/usr/bin/env python3
"""tests/fuzz/make_model_seeds.py: writes the seed inputs of fuzz_model
(tests/fuzz/corpus/model/): tiny CLIP checkpoints in each layout the loader
knows (Hugging Face ViT, OpenAI ViT, OpenAI ModifiedResNet). An input is the
safetensors header JSON, a NUL byte, then the config JSON (fuzz_model_one in
fuzz_targets.h writes the data section itself, zero-filled)."""
import json
import os
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus/model")


class Header:
    def __init__(self):
        self.h, self.off = {}, 0

    def t(self, name, shape, dtype="F16"):
        n = 1
        for d in shape:
            n *= d
        size = n * {"F32": 4, "F16": 2, "BF16": 2, "I64": 8}[dtype]
        self.h[name] = {"dtype": dtype, "shape": shape, "data_offsets": [self.off, self.off + size]}
        self.off += size

    def ln(self, pre, w):
        self.t(pre + ".weight", [w])
        self.t(pre + ".bias", [w])

    def dump(self):
        return json.dumps(self.h, separators=(",", ":")).encode()


def openai_text(h, tw=8, ctx=4, vocab=8, mlp=16, embed=4):
    h.t("token_embedding.weight", [vocab, tw])
    h.t("positional_embedding", [ctx, tw])
    h.ln("ln_final", tw)
    h.t("text_projection", [tw, embed])
    p = "transformer.resblocks.0."
    h.ln(p + "ln_1", tw)
    h.ln(p + "ln_2", tw)
    h.t(p + "attn.in_proj_weight", [3 * tw, tw])
    h.t(p + "attn.in_proj_bias", [3 * tw])
    h.t(p + "attn.out_proj.weight", [tw, tw])
    h.t(p + "attn.out_proj.bias", [tw])
    h.t(p + "mlp.c_fc.weight", [mlp, tw])
    h.t(p + "mlp.c_fc.bias", [mlp])
    h.t(p + "mlp.c_proj.weight", [tw, mlp])
    h.t(p + "mlp.c_proj.bias", [tw])
    h.t("logit_scale", [], "F32")


def openai_vit(w=8, p=2, g=2, mlp=16, embed=4):
    h = Header()
    h.t("visual.conv1.weight", [w, 3, p, p])
    h.t("visual.class_embedding", [w])
    h.t("visual.positional_embedding", [g * g + 1, w])
    h.ln("visual.ln_pre", w)
    h.ln("visual.ln_post", w)
    h.t("visual.proj", [w, embed])
    b = "visual.transformer.resblocks.0."
    h.ln(b + "ln_1", w)
    h.ln(b + "ln_2", w)
    h.t(b + "attn.in_proj_weight", [3 * w, w])
    h.t(b + "attn.in_proj_bias", [3 * w])
    h.t(b + "attn.out_proj.weight", [w, w])
    h.t(b + "attn.out_proj.bias", [w])
    h.t(b + "mlp.c_fc.weight", [mlp, w])
    h.t(b + "mlp.c_fc.bias", [mlp])
    h.t(b + "mlp.c_proj.weight", [w, mlp])
    h.t(b + "mlp.c_proj.bias", [w])
    openai_text(h, embed=embed)
    return h


def bn(h, pre, c):
    for s in ("weight", "bias", "running_mean", "running_var"):
        h.t(pre + "." + s, [c])
    h.t(pre + ".num_batches_tracked", [], "I64")


def openai_resnet(w=2, embed=4):
    h = Header()
    h.t("visual.conv1.weight", [w // 2, 3, 3, 3])
    bn(h, "visual.bn1", w // 2)
    h.t("visual.conv2.weight", [w // 2, w // 2, 3, 3])
    bn(h, "visual.bn2", w // 2)
    h.t("visual.conv3.weight", [w, w // 2, 3, 3])
    bn(h, "visual.bn3", w)
    inpl = w
    for s in range(4):
        planes = w << s
        pre = "visual.layer%d.0." % (s + 1)
        h.t(pre + "conv1.weight", [planes, inpl, 1, 1])
        bn(h, pre + "bn1", planes)
        h.t(pre + "conv2.weight", [planes, planes, 3, 3])
        bn(h, pre + "bn2", planes)
        h.t(pre + "conv3.weight", [4 * planes, planes, 1, 1])
        bn(h, pre + "bn3", 4 * planes)
        h.t(pre + "downsample.0.weight", [4 * planes, inpl, 1, 1])
        bn(h, pre + "downsample.1", 4 * planes)
        inpl = 4 * planes
    c = 32 * w
    h.t("visual.attnpool.positional_embedding", [2, c])
    for k in "qkv":
        h.t("visual.attnpool.%s_proj.weight" % k, [c, c])
        h.t("visual.attnpool.%s_proj.bias" % k, [c])
    h.t("visual.attnpool.c_proj.weight", [embed, c])
    h.t("visual.attnpool.c_proj.bias", [embed])
    openai_text(h, embed=embed)
    return h


def hf_vit(w=8, p=2, g=2, mlp=16, embed=4, tw=8, ctx=4, vocab=8):
    h = Header()
    e = "vision_model.embeddings."
    h.t(e + "patch_embedding.weight", [w, 3, p, p])
    h.t(e + "class_embedding", [w])
    h.t(e + "position_embedding.weight", [g * g + 1, w])
    h.ln("vision_model.pre_layrnorm", w)
    h.ln("vision_model.post_layernorm", w)
    h.t("visual_projection.weight", [embed, w])
    h.t("text_model.embeddings.token_embedding.weight", [vocab, tw])
    h.t("text_model.embeddings.position_embedding.weight", [ctx, tw])
    h.ln("text_model.final_layer_norm", tw)
    h.t("text_projection.weight", [embed, tw])
    for pre, width in (("vision_model.encoder", w), ("text_model.encoder", tw)):
        b = pre + ".layers.0."
        h.ln(b + "layer_norm1", width)
        h.ln(b + "layer_norm2", width)
        for k in "qkv":
            h.t(b + "self_attn.%s_proj.weight" % k, [width, width])
            h.t(b + "self_attn.%s_proj.bias" % k, [width])
        h.t(b + "self_attn.out_proj.weight", [width, width])
        h.t(b + "self_attn.out_proj.bias", [width])
        h.t(b + "mlp.fc1.weight", [mlp, width])
        h.t(b + "mlp.fc1.bias", [mlp])
        h.t(b + "mlp.fc2.weight", [width, mlp])
        h.t(b + "mlp.fc2.bias", [width])
    h.t("logit_scale", [], "F32")
    return h


def write(name, header, config):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(header.dump())
        if config is not None:
            f.write(b"\0" + json.dumps(config).encode())


os.makedirs(OUT, exist_ok=True)
write("openai_vit_noconfig", openai_vit(), None)
write("openai_vit_config", openai_vit(),
      {"model_cfg": {"quick_gelu": True, "vision_cfg": {"image_size": 4, "head_width": 4},
                     "text_cfg": {"heads": 2}},
       "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}})
write("openai_resnet", openai_resnet(), None)
write("openai_resnet_config", openai_resnet(),
      {"model_cfg": {"vision_cfg": {"image_size": 32, "head_width": 16}, "text_cfg": {"heads": 1}}})
write("hf_vit", hf_vit(),
      {"text_config": {"num_attention_heads": 2, "hidden_act": "quick_gelu", "eos_token_id": 7,
                       "layer_norm_eps": 1e-5},
       "vision_config": {"image_size": 4, "num_attention_heads": 2, "hidden_act": "gelu"}})
