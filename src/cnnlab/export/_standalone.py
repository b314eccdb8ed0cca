"""A trained network as a module that needs nothing but torch: pixels in, class probabilities out.

    net = standalone(cfg.model, model, info, mean, std)   # nn.Sequential(scale, network, softmax)
    probabilities = net(images.float())                    # images: [N, C, H, W], 0..255

The normalisation is a fixed depthwise 1x1 conv (x / 255 - mean) / std per channel, and the
built-in families' networks are re-expressed as nn.Sequential of torch's own layers, so the
pickled module loads where cnnlab is not installed. The weights come from a freshly built copy:
the trained model may hold cnnlab's fused blocks, which the copy does not.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cnnlab.models import FeaturesHead, Mlp, create_model


def standalone(
    model_cfg,
    trained: nn.Module,
    input_shape: Sequence[int],
    classes: int,
    mean: Sequence[float],
    std: Sequence[float],
) -> nn.Sequential:
    """fp32, CPU, eval mode: scale -> the network with `trained`'s weights -> softmax."""
    fresh = create_model(model_cfg, input_shape, classes)
    weights = {k: v.detach().to("cpu", torch.float32) for k, v in trained.state_dict().items()}
    fresh.load_state_dict(weights)
    net = nn.Sequential(pixel_scale(mean, std), plain(fresh), nn.Softmax(dim=1))
    return net.to(memory_format=torch.contiguous_format).eval()


def plain(model: nn.Module) -> nn.Module:
    """The built-in families as torch's own containers; a registered family stays as it is
    (loading it then needs the code that defines it)."""
    if isinstance(model, FeaturesHead):
        return nn.Sequential(model.features, model.head)
    if isinstance(model, Mlp):
        return model.head
    return model


def pixel_scale(mean: Sequence[float], std: Sequence[float]) -> nn.Conv2d:
    """0..255 pixels -> the training split's normalisation, as one fixed depthwise 1x1 conv."""
    channels = len(mean)
    conv = nn.Conv2d(channels, channels, 1, groups=channels)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0 / (255.0 * s) for s in std]).view(-1, 1, 1, 1))
        conv.bias.copy_(torch.tensor([-m / s for m, s in zip(mean, std)]))
    conv.requires_grad_(False)
    return conv
