"""PyTorch reference outputs for mathnn's ports of torchvision's VGG-16, VGG-19, ResNet-50 and pytorch-fid's
FID Inception-v3 (issue 19). Run by hand; nothing here is downloaded: every network is built with seeded
random weights.

    ~/torch-peer/bin/python benches/peers/export_torch.py [OUT_DIR]     # default target/torch-fixtures

Needs torch, torchvision, pytorch-fid and safetensors in the peer's venv
(`~/torch-peer/bin/pip install torch torchvision pytorch-fid safetensors`). Writes, for each network NAME:

* `NAME.safetensors`: the state dict exactly as `safetensors.torch.save_file(model.state_dict())` writes it
  (torchvision's names; `num_batches_tracked` dropped) — the file a user converts from an official `.pth`;
* `NAME.io.safetensors`: `x` (inputs in [0, 1], NCHW float32) and the outputs computed from them.
  - Classifiers: `logits` of the ImageNet-normalised input (mathnn's ports normalise inside), and `grad`,
    the gradient of the sum over images of logit `class` (stored as `class`, one per image) with respect
    to `x`; `logits64` and `grad64` the same computed in f64.
  - FID Inception: `pool3` (N × 2048) and `logits_unbiased` (pool3 · fc.weightᵀ, N × 1008) after
    pytorch-fid's own input pipeline (bilinear resize to 299 with align_corners=False, then 2x − 1), for a
    batch smaller than 299² (`x`) and one larger (`x_large`, outputs `pool3_large`).
  - mathnn's own four models (`mathnn-mlp`, `mathnn-lenet`, `mathnn-vgg-small`, `mathnn-resnet-small`,
    built by benches/peers/mathnn_torch.py): `NAME.safetensors` is the file `mathnn import --torch` reads,
    and `logits` are those of 4 images.

Random weights use the networks' own initialisers after `torch.manual_seed(SEED)`; batch-norm weights,
biases and running statistics are then drawn at random too, so that folding them is tested. The files are
≈ 1.3 GB together and stay out of git (target/ is ignored); the Rust parity tests
(`cargo test --release -p adversarial -p gan-eval -p experiments --test torch_parity -- --ignored`)
read them from MATHNN_TORCH_FIXTURES or target/torch-fixtures.
"""
import os
import sys

import numpy as np
import torch
import torchvision
from safetensors.torch import save_file

SEED = 0
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def randomise_batch_norm(model, gen):
    """Batch-norm affine parameters and running statistics away from their identity defaults."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.normal_(0.0, 0.1, generator=gen)
                m.running_mean.normal_(0.0, 0.1, generator=gen)
                m.running_var.uniform_(0.5, 1.5, generator=gen)


def state_dict(model):
    return {k: v.detach().float().contiguous() for k, v in model.state_dict().items()
            if not k.endswith("num_batches_tracked")}


def images(n, side, seed):
    """Smooth images with texture, in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 3, side // 8, side // 8, generator=g)
    x = torch.nn.functional.interpolate(base, size=(side, side), mode="bilinear", align_corners=False)
    x = x + 0.1 * torch.rand(n, 3, side, side, generator=g)
    return x.clamp(0.0, 1.0).contiguous()


def export_classifier(name, builder, out_dir):
    torch.manual_seed(SEED)
    model = builder(weights=None)
    gen = torch.Generator().manual_seed(SEED + 1)
    randomise_batch_norm(model, gen)
    model.eval()
    classes = torch.tensor([3, 517])
    x0 = images(2, 224, SEED + 2)
    save_file(state_dict(model), os.path.join(out_dir, f"{name}.safetensors"))
    io = {"x": x0, "class": classes.to(torch.int64)}
    # f32 as users run it, and f64: with random weights the input gradient is ill-conditioned (PyTorch's
    # own f32 gradient is ≈ 1 % away from its f64 one), so the exact comparison is made in f64.
    for dtype, suffix in [(torch.float32, ""), (torch.float64, "64")]:
        m = model.to(dtype)
        x = x0.to(dtype).clone().requires_grad_(True)
        logits = m((x - MEAN.to(dtype)) / STD.to(dtype))
        logits.gather(1, classes.view(-1, 1)).sum().backward()
        io["logits" + suffix] = logits.detach().contiguous()
        io["grad" + suffix] = x.grad.contiguous()
    model.float()
    save_file(io, os.path.join(out_dir, f"{name}.io.safetensors"))
    noise = (io["grad"].double() - io["grad64"]).abs().max() / io["grad64"].abs().max()
    print(f"{name}: {sum(p.numel() for p in model.parameters()):,} parameters, "
          f"|logit| ≤ {io['logits64'].abs().max().item():.3g}, f32 input gradient {noise.item():.2e} "
          f"from the f64 one")


def export_fid_inception(out_dir):
    import pytorch_fid.inception as pfi

    # pytorch-fid builds torchvision's Inception-v3, patches the FID blocks, then loads the downloaded
    # weights; here the load is skipped and the random initialisation kept.
    real_load = torch.nn.Module.load_state_dict
    pfi.load_state_dict_from_url = lambda *a, **k: None
    torch.nn.Module.load_state_dict = (
        lambda self, sd, *a, **k: None if sd is None else real_load(self, sd, *a, **k))
    try:
        torch.manual_seed(SEED)
        inception = pfi.fid_inception_v3()
    finally:
        torch.nn.Module.load_state_dict = real_load
    randomise_batch_norm(inception, torch.Generator().manual_seed(SEED + 1))
    pfi.fid_inception_v3 = lambda: inception
    model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]], resize_input=True,
                            normalize_input=True).eval()
    fc = inception.fc.weight.detach()
    out = {}
    with torch.no_grad():
        for suffix, x in [("", images(2, 64, SEED + 3)), ("_large", images(1, 320, SEED + 4))]:
            pool3 = model(x)[0].flatten(1)
            out["x" + suffix] = x
            out["pool3" + suffix] = pool3.contiguous()
            if suffix == "":
                out["logits_unbiased"] = (pool3 @ fc.T).contiguous()
    save_file(state_dict(inception), os.path.join(out_dir, "fid_inception.safetensors"))
    save_file(out, os.path.join(out_dir, "fid_inception.io.safetensors"))
    print(f"fid_inception: pool3 {tuple(out['pool3'].shape)}, |pool3| ≤ {out['pool3'].abs().max().item():.3g}")


def export_mathnn_models(out_dir):
    """mathnn's four classifiers built in PyTorch (benches/peers/mathnn_torch.py, mathnn's parameter names)
    with seeded random weights, saved as `mathnn import --torch` reads them, with their logits."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import mathnn_torch

    spec = {"channels": 1, "height": 28, "width": 28, "num_classes": 10}
    configs = [
        {"kind": "mlp", "input": spec, "mlp_widths": [512, 512], "batch_norm": True},
        {"kind": "lenet", "input": spec, "mlp_widths": [512, 512], "batch_norm": True},
        {"kind": "vgg-small", "input": spec, "mlp_widths": [512, 512], "batch_norm": True},
        {"kind": "resnet-small", "input": spec, "mlp_widths": [512, 512], "batch_norm": True},
    ]
    x = images(4, 32, SEED + 5)[:, :1, 2:30, 2:30].contiguous()
    for config in configs:
        torch.manual_seed(SEED)
        model = mathnn_torch.build(config)
        randomise_batch_norm(model, torch.Generator().manual_seed(SEED + 1))
        model.eval()
        name = "mathnn-" + config["kind"]
        mathnn_torch.save(model, config, os.path.join(out_dir, f"{name}.safetensors"), "mnist")
        with torch.no_grad():
            logits = model(x)
        save_file({"x": x, "logits": logits.contiguous()}, os.path.join(out_dir, f"{name}.io.safetensors"))
        print(f"{name}: {sum(p.numel() for p in model.parameters()):,} parameters, "
              f"|logit| ≤ {logits.abs().max().item():.3g}")


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "torch-fixtures")
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, numpy {np.__version__}")
    export_classifier("vgg16", torchvision.models.vgg16, out_dir)
    export_classifier("vgg19", torchvision.models.vgg19, out_dir)
    export_classifier("resnet50", torchvision.models.resnet50, out_dir)
    export_fid_inception(out_dir)
    export_mathnn_models(out_dir)
    print(f"wrote {out_dir}")


if __name__ == "__main__":
    main()
