"""Convert pytorch-fid's FID Inception weights to safetensors for `gan_eval::features::FidInceptionV3::load`.

    pip install torch safetensors
    # pt_inception-2015-12-05-6726825d.pth: pytorch-fid downloads it to ~/.cache/torch/hub/checkpoints/
    # on first use (or fetch it from the pytorch-fid GitHub release "fid_weights").
    python3 convert_fid_inception.py pt_inception-2015-12-05-6726825d.pth fid_inception_v3.safetensors

Keeps every tensor except BatchNorm's `num_batches_tracked`, as float32, contiguous, with torchvision's
key names (Conv2d_1a_3x3.conv.weight, Mixed_5b.branch1x1.bn.running_var, ..., fc.weight, fc.bias): 472
tensors. The Rust loader checks every name and shape and names the first one missing.
"""
import sys

import torch
from safetensors.torch import save_file


def main(src, dst):
    sd = torch.load(src, map_location="cpu")
    out = {k: v.float().contiguous() for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    if len(out) != 472 or out["fc.weight"].shape != (1008, 2048):
        sys.exit(f"{src}: not the FID Inception state dict ({len(out)} tensors)")
    save_file(out, dst)
    print(f"wrote {dst}: {len(out)} tensors")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
