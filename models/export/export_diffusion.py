#!/usr/bin/env python3
"""
Export the diffusion engine's ONNX models (DESIGN 6) from the public weights.

    NOT RUN HERE. This script was written without a GPU and without the
    weights (about 15 GB), so it has never been executed by us. Treat it as a
    careful starting point: run it, then let the daemon check every file
    against its contract at start-up (it names any wrong input or output),
    and compare one image against diffusers on the same seed/settings.

What it writes into --out (file names as in models/manifest.json):

  sdxl_text_encoder_l.onnx      input_ids int64 [N,77] -> hidden_states [N,77,768] (penultimate layer)
  sdxl_text_encoder_g.onnx      input_ids int64 [N,77] -> hidden_states [N,77,1280] (penultimate), text_embeds [N,1280]
  sdxl_vae_encoder.onnx         sample [N,3,H,W] in [-1,1] -> latent_parameters [N,8,H/8,W/8] (mean || logvar)
  sdxl_vae_decoder.onnx         latent_sample [N,4,h,w] -> sample [N,3,8h,8w]
  clip_vision_vit_h14.onnx      pixel_values [N,3,224,224] -> hidden_states [N,257,1280] (penultimate)
  ip_adapter_faceid_plusv2_projection.onnx
                                id_embeds [N,512], clip_embeds [N,257,1280] -> id_tokens [N,4,2048], resampler_tokens [N,4,2048]
  sdxl_inpaint_unet_faceid.onnx (+ .onnx.data)
                                sample [N,9,h,w], timestep [1], encoder_hidden_states [N,77,2048], text_embeds [N,1280],
                                time_ids [N,6], ip_tokens [N,4,2048], ip_scale [1] -> out_sample [N,4,h,w]
  sdxl_tokenizer/vocab.json, merges.txt

Sources (public):
  diffusers/stable-diffusion-xl-1.0-inpainting-0.1   UNet (9 channels), text encoders, tokenizer
  madebyollin/sdxl-vae-fp16-fix                     VAE that is safe in fp16 (else export the VAE in fp32)
  h94/IP-Adapter  models/image_encoder              CLIP ViT-H/14 image encoder
  h94/IP-Adapter-FaceID  ip-adapter-faceid-plusv2_sdxl.bin   projection + IP attention + LoRA
  tencent-ailab/IP-Adapter (git)                    ip_adapter package (ProjPlusModel definition)

Requirements (a CUDA machine with ~24 GB GPU memory, ~40 GB disk):
  pip install torch diffusers==0.30.* transformers accelerate onnx onnxconverter-common safetensors huggingface_hub
  pip install git+https://github.com/tencent-ailab/IP-Adapter.git

Usage:
  python models/export/export_diffusion.py --out /srv/models [--fp16]

--fp16 converts the UNet, text encoders, CLIP vision and projection to fp16
weights with float32 inputs and outputs (keep_io_types), which is what the
engine feeds. The VAE stays fp32 unless the fp16-fix VAE is used (it is, by
default).
"""
import argparse
import os
import shutil
import tempfile

import torch
import torch.nn as nn
import torch.nn.functional as F

OPSET = 17
NUM_IP_TOKENS = 4


def save(model_path, fp16, external=False, source=None):
    """Optionally convert to fp16 (float32 I/O kept) and (re-)save `source` (default: model_path) as model_path,
    with external data in one <name>.onnx.data file for models over 2 GB."""
    import onnx

    model = onnx.load(source or model_path, load_external_data=True)
    if fp16:
        from onnxconverter_common import float16

        model = float16.convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=external)
    if external:
        # Models over protobuf's 2 GB limit keep their weights in one file next to them.
        data = os.path.basename(model_path) + ".data"
        onnx.save_model(model, model_path, save_as_external_data=True, all_tensors_to_one_file=True, location=data)
    else:
        onnx.save_model(model, model_path)


def export(module, args, path, input_names, output_names, dynamic_axes):
    torch.onnx.export(
        module, args, path, input_names=input_names, output_names=output_names,
        dynamic_axes=dynamic_axes, opset_version=OPSET, do_constant_folding=True,
    )


# ---------------------------------------------------------------- text encoders
class TextL(nn.Module):
    def __init__(self, enc):
        super().__init__()
        self.enc = enc

    def forward(self, input_ids):
        out = self.enc(input_ids, output_hidden_states=True)
        return out.hidden_states[-2]


class TextG(nn.Module):
    def __init__(self, enc):
        super().__init__()
        self.enc = enc

    def forward(self, input_ids):
        out = self.enc(input_ids, output_hidden_states=True)
        return out.hidden_states[-2], out.text_embeds


# ---------------------------------------------------------------- VAE
class VaeEncoder(nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, sample):
        # moments = quant_conv(encoder(x)) = mean || logvar, [N,8,H/8,W/8]
        return self.vae.quant_conv(self.vae.encoder(sample))


class VaeDecoder(nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, latent_sample):
        return self.vae.decode(latent_sample).sample


# ---------------------------------------------------------------- CLIP vision
class ClipVision(nn.Module):
    def __init__(self, enc):
        super().__init__()
        self.enc = enc

    def forward(self, pixel_values):
        return self.enc(pixel_values, output_hidden_states=True).hidden_states[-2]


# ---------------------------------------------------------------- FaceID Plus v2 projection
class Projection(nn.Module):
    """ProjPlusModel split so that the engine applies the shortcut itself:
    id_tokens = norm(proj(id).reshape(4, 2048)); resampler_tokens = perceiver(id_tokens, clip).
    ProjPlusModel.forward(shortcut=True, scale=s) = id_tokens + s * resampler_tokens."""

    def __init__(self, proj):
        super().__init__()
        self.p = proj

    def forward(self, id_embeds, clip_embeds):
        x = self.p.proj(id_embeds)
        x = x.reshape(-1, self.p.num_tokens, self.p.cross_attention_dim)
        x = self.p.norm(x)
        out = self.p.perceiver_resampler(x, clip_embeds)
        return x, out


# ---------------------------------------------------------------- UNet with IP-Adapter FaceID attention
class IpState:
    """Holds the IP scale tensor of the current forward (a graph input)."""
    scale = None


class MergedIPAttnProcessor(nn.Module):
    """out = Attn(q, K_text, V_text) + scale * Attn(q, K_ip, V_ip) (DESIGN 5.5).
    The FaceID LoRA is merged into to_q/to_k/to_v/to_out beforehand, so only
    to_k_ip / to_v_ip are extra. Self-attention layers use this with no IP branch."""

    def __init__(self, hidden_size, cross_attention_dim, ip=True):
        super().__init__()
        self.ip = ip
        if ip:
            self.to_k_ip = nn.Linear(cross_attention_dim, hidden_size, bias=False)
            self.to_v_ip = nn.Linear(cross_attention_dim, hidden_size, bias=False)

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kw):
        b = hidden_states.shape[0]
        q = attn.to_q(hidden_states)
        ctx = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        if self.ip and encoder_hidden_states is not None:
            text, ip = ctx[:, :-NUM_IP_TOKENS], ctx[:, -NUM_IP_TOKENS:]
        else:
            text, ip = ctx, None
        heads = attn.heads

        def split(t):
            return t.view(b, -1, heads, t.shape[-1] // heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(q), split(attn.to_k(text)), split(attn.to_v(text)))
        if ip is not None:
            ip_out = F.scaled_dot_product_attention(split(q), split(self.to_k_ip(ip)), split(self.to_v_ip(ip)))
            out = out + IpState.scale.reshape(1, 1, 1, 1) * ip_out
        out = out.transpose(1, 2).reshape(b, -1, heads * (out.shape[-1]))
        out = attn.to_out[0](out)
        out = attn.to_out[1](out)
        if attn.residual_connection:
            raise NotImplementedError("SDXL attention has no residual_connection")
        return out / attn.rescale_output_factor


def install_faceid(unet, state_dict):
    """Merge the FaceID LoRA into the UNet's attention weights and install the IP processors.
    The .bin's "ip_adapter" dict is keyed by processor order ("1.to_k_ip.weight", "1.to_q_lora.down.weight", ...),
    in the order of unet.attn_processors.keys(), as IPAdapterFaceIDPlusXL.set_ip_adapter builds it."""
    ip_sd = state_dict["ip_adapter"]
    procs = {}
    modules = dict(unet.named_modules())
    for i, name in enumerate(unet.attn_processors.keys()):
        attn = modules[name[: -len(".processor")]]
        cross = not name.endswith("attn1.processor")
        hidden = attn.to_q.out_features
        # LoRA (rank 128), scale 1.0: W += up @ down
        for proj, mod in (("to_q", attn.to_q), ("to_k", attn.to_k), ("to_v", attn.to_v), ("to_out", attn.to_out[0])):
            down = ip_sd.get(f"{i}.{proj}_lora.down.weight")
            up = ip_sd.get(f"{i}.{proj}_lora.up.weight")
            if down is not None and up is not None:
                with torch.no_grad():
                    mod.weight += (up.float() @ down.float()).to(mod.weight.dtype)
        proc = MergedIPAttnProcessor(hidden, unet.config.cross_attention_dim, ip=cross)
        if cross:
            proc.to_k_ip.weight.data.copy_(ip_sd[f"{i}.to_k_ip.weight"])
            proc.to_v_ip.weight.data.copy_(ip_sd[f"{i}.to_v_ip.weight"])
        procs[name] = proc.to(unet.device, unet.dtype)
    unet.set_attn_processor(procs)


class UnetWrapper(nn.Module):
    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states, text_embeds, time_ids, ip_tokens, ip_scale):
        IpState.scale = ip_scale
        ctx = torch.cat([encoder_hidden_states, ip_tokens], dim=1)
        return self.unet(
            sample, timestep, encoder_hidden_states=ctx,
            added_cond_kwargs={"text_embeds": text_embeds, "time_ids": time_ids}, return_dict=False,
        )[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--fp16", action="store_true")
    ap.add_argument("--inpaint", default="diffusers/stable-diffusion-xl-1.0-inpainting-0.1")
    ap.add_argument("--vae", default="madebyollin/sdxl-vae-fp16-fix")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    out = lambda f: os.path.join(args.out, f)  # noqa: E731
    dev = "cuda" if torch.cuda.is_available() else "cpu"

    from huggingface_hub import hf_hub_download
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPVisionModelWithProjection, CLIPTokenizer
    from diffusers import AutoencoderKL, UNet2DConditionModel

    # Tokenizer files
    tok = CLIPTokenizer.from_pretrained(args.inpaint, subfolder="tokenizer")
    tdir = out("sdxl_tokenizer")
    tok.save_pretrained(tdir)  # writes vocab.json and merges.txt (the engine reads only these two)

    ids = torch.zeros(2, 77, dtype=torch.int64, device=dev)
    dyn_ids = {"input_ids": {0: "N"}}
    te1 = CLIPTextModel.from_pretrained(args.inpaint, subfolder="text_encoder").to(dev).eval()
    export(TextL(te1), (ids,), out("sdxl_text_encoder_l.onnx"), ["input_ids"], ["hidden_states"], {**dyn_ids, "hidden_states": {0: "N"}})
    save(out("sdxl_text_encoder_l.onnx"), args.fp16)
    del te1
    te2 = CLIPTextModelWithProjection.from_pretrained(args.inpaint, subfolder="text_encoder_2").to(dev).eval()
    export(TextG(te2), (ids,), out("sdxl_text_encoder_g.onnx"), ["input_ids"], ["hidden_states", "text_embeds"],
           {**dyn_ids, "hidden_states": {0: "N"}, "text_embeds": {0: "N"}})
    save(out("sdxl_text_encoder_g.onnx"), args.fp16, external=True)
    del te2

    vae = AutoencoderKL.from_pretrained(args.vae).to(dev).eval()
    img = torch.zeros(1, 3, 512, 512, device=dev)
    export(VaeEncoder(vae), (img,), out("sdxl_vae_encoder.onnx"), ["sample"], ["latent_parameters"],
           {"sample": {0: "N", 2: "H", 3: "W"}, "latent_parameters": {0: "N", 2: "h", 3: "w"}})
    lat = torch.zeros(1, 4, 64, 64, device=dev)
    export(VaeDecoder(vae), (lat,), out("sdxl_vae_decoder.onnx"), ["latent_sample"], ["sample"],
           {"latent_sample": {0: "N", 2: "h", 3: "w"}, "sample": {0: "N", 2: "H", 3: "W"}})
    del vae

    enc = CLIPVisionModelWithProjection.from_pretrained("h94/IP-Adapter", subfolder="models/image_encoder").to(dev).eval()
    px = torch.zeros(2, 3, 224, 224, device=dev)
    export(ClipVision(enc), (px,), out("clip_vision_vit_h14.onnx"), ["pixel_values"], ["hidden_states"],
           {"pixel_values": {0: "N"}, "hidden_states": {0: "N"}})
    save(out("clip_vision_vit_h14.onnx"), args.fp16, external=True)
    del enc

    from ip_adapter.ip_adapter_faceid import ProjPlusModel

    ckpt = hf_hub_download("h94/IP-Adapter-FaceID", "ip-adapter-faceid-plusv2_sdxl.bin")
    sd = torch.load(ckpt, map_location="cpu")
    proj = ProjPlusModel(cross_attention_dim=2048, id_embeddings_dim=512, clip_embeddings_dim=1280, num_tokens=NUM_IP_TOKENS)
    proj.load_state_dict(sd["image_proj"])
    proj = proj.to(dev).eval()
    export(Projection(proj), (torch.zeros(2, 512, device=dev), torch.zeros(2, 257, 1280, device=dev)),
           out("ip_adapter_faceid_plusv2_projection.onnx"), ["id_embeds", "clip_embeds"], ["id_tokens", "resampler_tokens"],
           {"id_embeds": {0: "N"}, "clip_embeds": {0: "N"}, "id_tokens": {0: "N"}, "resampler_tokens": {0: "N"}})
    save(out("ip_adapter_faceid_plusv2_projection.onnx"), args.fp16)

    # Export in fp32 (about 10 GB of GPU memory), then convert to fp16 weights with float32 I/O (keep_io_types).
    unet = UNet2DConditionModel.from_pretrained(args.inpaint, subfolder="unet", torch_dtype=torch.float32).to(dev).eval()
    assert unet.config.in_channels == 9, "expected the 9-channel inpainting UNet"
    install_faceid(unet, sd)
    z = lambda *s: torch.zeros(*s, device=dev)  # noqa: E731
    feeds = (z(2, 9, 128, 128), torch.tensor([999.0], device=dev), z(2, 77, 2048), z(2, 1280), z(2, 6),
             z(2, NUM_IP_TOKENS, 2048), torch.tensor([1.0], device=dev))
    final = out("sdxl_inpaint_unet_faceid.onnx")
    tmpdir = tempfile.mkdtemp(prefix="unet-export-")
    tmp = os.path.join(tmpdir, "unet.onnx")  # torch writes its own external-data files here
    with torch.no_grad():
        export(UnetWrapper(unet), feeds, tmp,
               ["sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids", "ip_tokens", "ip_scale"], ["out_sample"],
               {"sample": {0: "N", 2: "h", 3: "w"}, "encoder_hidden_states": {0: "N"}, "text_embeds": {0: "N"},
                "time_ids": {0: "N"}, "ip_tokens": {0: "N"}, "out_sample": {0: "N", 2: "h", 3: "w"}})
    del unet
    save(final, args.fp16, external=True, source=tmp)
    shutil.rmtree(tmpdir)
    print("done:", args.out)


if __name__ == "__main__":
    main()
