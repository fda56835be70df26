"""Image tensors for the vision families: conversion, resizing and seeded affine augmentation."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def to_tensor(images: np.ndarray, invert: bool = False) -> torch.Tensor:
    """uint8 images ``(N, H, W)`` or ``(N, H, W, C)`` to float32 ``(N, C, H, W)`` in ``[0, 1]``.

    Args:
        images: The images.
        invert: Use ``1 - x`` (Omniglot stores paper as 255; models see ink as 1).
    """
    array = np.ascontiguousarray(images)
    if not array.flags.writeable:  # a read-only (memory-mapped or cached) array: torch wants its own
        array = array.copy()
    x = torch.as_tensor(array, dtype=torch.float32) / 255.0
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    return (1.0 - x if invert else x).contiguous()


def resize(x: torch.Tensor, size: int, channels: int) -> torch.Tensor:
    """Antialiased bilinear resize of ``(N, C, H, W)`` to ``size`` squared; grey repeats to ``channels``."""
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    if x.shape[1] != channels:
        x = x.expand(-1, channels, -1, -1) if x.shape[1] == 1 else x.mean(dim=1, keepdim=True)
    return x.contiguous()


def random_affine(
    x: torch.Tensor,
    generator: torch.Generator,
    degrees: float = 360.0,
    translate: float = 0.2,
    scale: tuple[float, float] = (0.8, 1.2),
) -> torch.Tensor:
    """One random affine transform per image (rotation, translation, scale), zero-filled.

    The ranges are those of Leap's Omniglot transform (``RandomAffine((0, 360), (0.2, 0.2),
    (0.8, 1.2))``); draws come only from ``generator``.
    """
    n = x.shape[0]
    u = torch.rand(n, 4, generator=generator, dtype=torch.float64)
    angle = u[:, 0] * math.radians(degrees)
    factor = scale[0] + u[:, 1] * (scale[1] - scale[0])
    shift = (u[:, 2:] * 2 - 1) * translate * 2  # grid coordinates span [-1, 1]
    cos, sin = torch.cos(angle) / factor, torch.sin(angle) / factor
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    ).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
