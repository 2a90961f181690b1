"""A RE-IMPLEMENTATION of Lucent 0.1.8's ``render_vis`` loop, for benchmarks/render.py only.

This is not Lucent. benchmarks/render.py runs the real torch-lucent 0.1.8 (from the venv that
benchmarks/setup_lucent.sh builds) whenever it can, and falls back to this module only when that
venv cannot be built; its JSON then says ``"baseline": "lucent_like"``.

It copies, operation by operation and in the same order, what Lucent 0.1.8 does on the path the
benchmark takes (``param.image(size, batch=B)`` with its FFT parameterisation and colour
decorrelation, ``transform.standard_transforms``, ``preprocess=False`` plus a normalisation
appended by the caller, ``objectives.channel(layer, c, batch=i)``, ``thresholds=(steps,)``):

* a forward hook on every module of the model (named like Lucent: the module path joined with
  "_"), registered by every call and never removed;
* the full forward pass of the model, also past the objective's layer;
* ``optimizer.zero_grad()`` on the image parameters only, ``loss.backward()`` into the model's
  weights too when they require grad, the step run as the closure of ``Adam.step``;
* the transforms one op at a time, each with its own backward: pad 12 (constant 0.5), jitter 8,
  random scale (bilinear ``Upsample`` + pad, with Lucent's x/y pad order), random rotate, jitter 4,
  the caller's transforms, then the silent bilinear upsample to 224 px for images below 224.
  The jitters and the rotation are kornia 0.4.1's ``translate`` / ``warp_affine`` written out
  (pixel-to-normalised homography, ``torch.inverse``, ``affine_grid`` + ``grid_sample`` with
  ``align_corners=False``, zero padding); random draws come from ``numpy.random`` in Lucent's
  order, so one seed gives the same draws as Lucent.

The names mirror Lucent's (``render_vis``, ``image``, ``channel``, ``standard_transforms``) so the
benchmark drives both through the same code.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F

# ---------------------------------------------------------------- parameterisation (param.image)

_COLOR_CORRELATION_SVD_SQRT = np.asarray(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]]
).astype("float32")
_COLOR_CORRELATION_NORMALIZED = _COLOR_CORRELATION_SVD_SQRT / np.max(
    np.linalg.norm(_COLOR_CORRELATION_SVD_SQRT, axis=0)
)


def _rfft2d_freqs(h: int, w: int) -> np.ndarray:
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[: w // 2 + 2] if w % 2 == 1 else np.fft.fftfreq(w)[: w // 2 + 1]
    return np.sqrt(fx * fx + fy * fy)


def _fft_image(shape, sd=None, decay_power=1):
    batch, channels, h, w = shape
    freqs = _rfft2d_freqs(h, w)
    sd = sd or 0.01
    spectrum = (torch.randn(batch, channels, *freqs.shape, 2) * sd).requires_grad_(True)
    scale = 1.0 / np.maximum(freqs, 1.0 / max(w, h)) ** decay_power
    scale = torch.tensor(scale).float()[None, None, ..., None]

    def inner():
        scaled = torch.view_as_complex(scale * spectrum)
        img = torch.fft.irfftn(scaled, s=(h, w), norm="ortho")
        img = img[:batch, :channels, :h, :w]
        return img / 4.0  # Lucid's "magic" constant

    return [spectrum], inner


def _to_valid_rgb(image_f, decorrelate=True):
    matrix = torch.tensor(_COLOR_CORRELATION_NORMALIZED.T)

    def inner():
        img = image_f()
        if decorrelate:
            img = torch.matmul(img.permute(0, 2, 3, 1), matrix).permute(0, 3, 1, 2)
        return torch.sigmoid(img)

    return inner


def image(w, h=None, sd=None, batch=None):
    """``lucent.optvis.param.image(w, h, sd, batch)`` with its defaults (FFT, decorrelated)."""
    h = h or w
    params, image_f = _fft_image([batch or 1, 3, h, w], sd=sd)
    return params, _to_valid_rgb(image_f, decorrelate=True)


# ---------------------------------------------------------------- kornia 0.4.1, as Lucent calls it

_PI = torch.tensor(3.14159265358979323846)


def _normal_transform_pixel(height: int, width: int) -> torch.Tensor:
    tr = torch.tensor([[1.0, 0.0, -1.0], [0.0, 1.0, -1.0], [0.0, 0.0, 1.0]])
    tr[0, 0] = tr[0, 0] * 2.0 / (width - 1.0)
    tr[1, 1] = tr[1, 1] * 2.0 / (height - 1.0)
    return tr.unsqueeze(0)


def _warp_affine(src: torch.Tensor, matrix: torch.Tensor, dsize) -> torch.Tensor:
    """kornia.warp_affine(src, M, dsize): bilinear, zero padding, align_corners=False."""
    b, c, h, w = src.shape
    m3 = F.pad(matrix, [0, 0, 0, 1], "constant", value=0.0)  # convert_affinematrix_to_homography
    m3[..., -1, -1] += 1.0
    src_norm = _normal_transform_pixel(h, w).to(m3)
    dst_norm = _normal_transform_pixel(dsize[0], dsize[1]).to(m3)
    dst_norm_trans_src_norm = dst_norm @ (m3 @ torch.inverse(src_norm))
    src_norm_trans_dst_norm = torch.inverse(dst_norm_trans_src_norm)
    grid = F.affine_grid(src_norm_trans_dst_norm[:, :2, :], [b, c, dsize[0], dsize[1]], align_corners=False)
    return F.grid_sample(src, grid, align_corners=False, mode="bilinear", padding_mode="zeros")


def _translate(img: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """kornia.geometry.transform.translate: translation matrix, expanded over the batch."""
    matrix = torch.eye(3, dtype=translation.dtype).repeat(translation.shape[0], 1, 1)
    dx, dy = torch.chunk(translation, chunks=2, dim=-1)
    matrix[..., 0, 2:3] += dx
    matrix[..., 1, 2:3] += dy
    matrix = matrix[..., :2, :3].expand(img.shape[0], -1, -1)
    return _warp_affine(img, matrix, (img.shape[-2], img.shape[-1]))


def _rotation_matrix2d(center: torch.Tensor, angle: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """kornia.get_rotation_matrix2d (angle in degrees, counter-clockwise)."""
    rad = angle * _PI.to(angle.dtype) / 180.0
    cos_a, sin_a = torch.cos(rad), torch.sin(rad)
    rotation = torch.stack([cos_a, sin_a, -sin_a, cos_a], dim=-1).view(*angle.shape, 2, 2)
    scaling = torch.zeros(2, 2, dtype=rotation.dtype).fill_diagonal_(1).repeat(rotation.size(0), 1, 1)
    scaling = scaling * scale.unsqueeze(dim=2).repeat(1, 1, 2)
    scaled_rotation = rotation @ scaling
    alpha, beta = scaled_rotation[:, 0, 0], scaled_rotation[:, 0, 1]
    x, y = center[..., 0], center[..., 1]
    one = torch.tensor(1.0)
    matrix = torch.zeros(center.shape[0], 2, 3, dtype=center.dtype)
    matrix[..., 0:2, 0:2] = scaled_rotation
    matrix[..., 0, 2] = (one - alpha) * x - beta * y
    matrix[..., 1, 2] = beta * x + (one - alpha) * y
    return matrix


# ---------------------------------------------------------------- transforms (transform.py)

def _roundup(value):
    return np.ceil(value).astype(int)


def jitter(d):
    def inner(image_t):
        dx = np.random.choice(d)
        dy = np.random.choice(d)
        return _translate(image_t, torch.tensor([[dx, dy]]).float())

    return inner


def pad(w, mode="reflect", constant_value=0.5):
    if mode != "constant":
        constant_value = 0

    def inner(image_t):
        return F.pad(image_t, [w] * 4, mode=mode, value=constant_value)

    return inner


def random_scale(scales):
    def inner(image_t):
        scale = np.random.choice(scales)
        shp = image_t.shape[2:]
        scale_shape = [_roundup(scale * d) for d in shp]
        pad_x = max(0, _roundup((shp[1] - scale_shape[1]) / 2))
        pad_y = max(0, _roundup((shp[0] - scale_shape[0]) / 2))
        upsample = torch.nn.Upsample(size=scale_shape, mode="bilinear", align_corners=True)
        return F.pad(upsample(image_t), [pad_y, pad_x] * 2)  # sic: Lucent's order

    return inner


def random_rotate(angles):
    def inner(image_t):
        b, _, h, w = image_t.shape
        alpha = np.random.choice(angles)
        angle = torch.ones(b) * alpha
        scale = torch.ones(b, 2)
        center = torch.ones(b, 2)
        center[..., 0] = (image_t.shape[3] - 1) / 2
        center[..., 1] = (image_t.shape[2] - 1) / 2
        matrix = _rotation_matrix2d(center, angle, scale)
        return _warp_affine(image_t.float(), matrix, dsize=(h, w))

    return inner


def compose(transforms):
    def inner(x):
        for t in transforms:
            x = t(x)
        return x

    return inner


standard_transforms = [
    pad(12, mode="constant", constant_value=0.5),
    jitter(8),
    random_scale([1 + (i - 5) / 50.0 for i in range(11)]),
    random_rotate(list(range(-10, 11)) + 5 * [0]),
    jitter(4),
]


# ---------------------------------------------------------------- objectives

class Objective:
    """Callable on the hook lookup; ``+`` and ``sum()`` combine like Lucent's objectives."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, hook):
        return self.fn(hook)

    def __add__(self, other):
        if isinstance(other, (int, float)):
            return Objective(lambda hook: other + self(hook))
        return Objective(lambda hook: self(hook) + other(hook))

    __radd__ = __add__


def channel(layer, n_channel, batch=None):
    """``objectives.channel``: minus the mean of one channel (of one batch item when given)."""

    def inner(hook):
        t = hook(layer)
        if isinstance(batch, int):
            t = t[batch:batch + 1]
        return -t[:, n_channel].mean()

    return Objective(inner)


# ---------------------------------------------------------------- render_vis

class _ModuleHook:
    def __init__(self, module):
        self.hook = module.register_forward_hook(self.hook_fn)
        self.features = None

    def hook_fn(self, module, inputs, output):
        self.features = output


def _hook_model(model, image_f):
    features = OrderedDict()

    def hook_layers(net, prefix=()):
        for name, layer in net._modules.items():
            if layer is None:
                continue
            features["_".join(prefix + (name,))] = _ModuleHook(layer)
            hook_layers(layer, prefix + (name,))

    hook_layers(model)

    def hook(layer):
        out = image_f() if layer == "input" else features[layer].features
        assert out is not None, f"layer {layer} produced no output"
        return out

    return hook


def _tensor_to_img_array(tensor):
    return np.transpose(tensor.cpu().detach().numpy(), [0, 2, 3, 1])


def render_vis(model, objective_f, param_f=None, optimizer=None, transforms=None, thresholds=(512,),
               preprocess=True, progress=True, show_image=True, fixed_image_size=None):
    """Lucent 0.1.8's render_vis on the benchmark's path. ``preprocess`` must be False (the
    benchmark appends the model's own normalisation); ``progress``/``show_image`` are ignored."""
    if preprocess:
        raise NotImplementedError("lucent_like only re-implements preprocess=False")
    if param_f is None:
        param_f = lambda: image(128)  # noqa: E731
    params, image_f = param_f()
    optimizer = (optimizer or (lambda p: torch.optim.Adam(p, lr=5e-2)))(params)
    transforms = list(transforms if transforms is not None else standard_transforms)
    shape = image_f().shape
    if fixed_image_size is not None:
        new_size = fixed_image_size
    elif shape[2] < 224 or shape[3] < 224:
        new_size = 224
    else:
        new_size = None
    if new_size:
        transforms.append(torch.nn.Upsample(size=new_size, mode="bilinear", align_corners=True))
    transform_f = compose(transforms)
    hook = _hook_model(model, image_f)

    images = []
    for i in range(1, max(thresholds) + 1):
        def closure():
            optimizer.zero_grad()
            try:
                model(transform_f(image_f()))
            except RuntimeError:
                pass
            loss = objective_f(hook)
            loss.backward()
            return loss

        optimizer.step(closure)
        if i in thresholds:
            images.append(_tensor_to_img_array(image_f()))
    return images
