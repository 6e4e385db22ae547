"""Per-frame appearance augmentation (``tcdn.augment``): independence, identity, determinism, range."""

from __future__ import annotations

import math

import pytest
import torch

from tcdn.augment import AppearanceAugment

OFF = {
    "flip": 0.0,
    "crop_scale": 1.0,
    "brightness": 0.0,
    "contrast": 0.0,
    "saturation": 0.0,
    "grey": 0.0,
}


def _frames(n: int = 8, size: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_all_strengths_zero_is_identity() -> None:
    x = _frames()
    assert torch.equal(AppearanceAugment(**OFF)(x, _gen(0)), x)


def test_output_shape_and_range() -> None:
    x = _frames(32)
    y = AppearanceAugment(brightness=1.0, contrast=1.0, saturation=1.0)(x, _gen(1))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert y.min() >= 0 and y.max() <= 1
    assert not torch.equal(y, x)


def test_same_seed_same_output_other_seed_other_output() -> None:
    aug, x = AppearanceAugment(), _frames()
    assert torch.equal(aug(x, _gen(5)), aug(x, _gen(5)))
    assert not torch.equal(aug(x, _gen(5)), aug(x, _gen(6)))


def test_frames_get_independent_parameters() -> None:
    """The same frame repeated in a batch comes out differently: parameters are per frame."""
    one = _frames(1)
    y = AppearanceAugment()(one.expand(16, -1, -1, -1).contiguous(), _gen(2))
    distinct = {tuple(y[i].flatten()[:50].tolist()) for i in range(16)}
    assert len(distinct) == 16
    p = AppearanceAugment().sample_params(4000, _gen(3))
    # brightness and contrast factors of a frame are uncorrelated, and spread over [0.6, 1.4]
    corr = torch.corrcoef(torch.stack([p.brightness, p.contrast]))[0, 1]
    assert abs(float(corr)) < 0.1
    assert p.brightness.min() >= 0.6 and p.brightness.max() <= 1.4
    assert 0.45 < p.theta[:, 0, 0].lt(0).float().mean() < 0.55  # flipped half the time
    assert 0.15 < p.grey.float().mean() < 0.25


def test_a_frame_does_not_depend_on_the_rest_of_the_batch() -> None:
    """Applying the parameters row by row equals applying them to the whole batch (no mixing)."""
    aug, x = AppearanceAugment(), _frames(6)
    params = aug.sample_params(6, _gen(4))
    whole = aug.apply_params(x, params)
    for i in range(6):
        torch.testing.assert_close(
            aug.apply_params(x[i : i + 1], params[i : i + 1]), whole[i : i + 1]
        )


def test_flip_alone_mirrors_the_frame() -> None:
    x = _frames(64)
    y = AppearanceAugment(**{**OFF, "flip": 1.0})(x, _gen(0))
    torch.testing.assert_close(y, x.flip(-1), atol=1e-5, rtol=0)


def test_brightness_alone_scales_intensity() -> None:
    aug = AppearanceAugment(**{**OFF, "brightness": 0.5})
    x = _frames(8) * 0.5  # no clipping at factors <= 1.5
    params = aug.sample_params(8, _gen(7))
    y = aug.apply_params(x, params)
    torch.testing.assert_close(y, x * params.brightness.view(-1, 1, 1, 1))


def test_grey_makes_channels_equal() -> None:
    y = AppearanceAugment(**{**OFF, "grey": 1.0})(_frames(4), _gen(0))
    assert torch.allclose(y[:, 0], y[:, 1]) and torch.allclose(y[:, 1], y[:, 2])


def test_crop_zooms_in() -> None:
    """A centred crop of a quarter of the area shows the frame's centre, magnified twice."""
    aug = AppearanceAugment(**{**OFF, "crop_scale": 0.25})
    x = torch.zeros(1, 3, 32, 32)
    x[..., 8:24, 8:24] = 1.0  # a bright centre square covering a quarter of the frame
    params = aug.sample_params(1, _gen(0))
    params.theta[:] = torch.tensor([[[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]]])
    y = aug.apply_params(x, params)
    assert y[..., 2:30, 2:30].min() > 0.99  # nearly all bright after zooming on the centre


def test_crop_keeps_the_requested_area() -> None:
    p = AppearanceAugment(crop_scale=0.3).sample_params(2000, _gen(9))
    area = (p.theta[:, 0, 0].abs() * p.theta[:, 1, 1]).double()
    assert area.min() >= 0.3 - 1e-4 and area.max() <= 1 + 1e-6
    # the crop stays inside the frame
    assert ((p.theta[:, 0, 2].abs() + p.theta[:, 0, 0].abs()) <= 1 + 1e-5).all()
    assert ((p.theta[:, 1, 2].abs() + p.theta[:, 1, 1]) <= 1 + 1e-5).all()


@pytest.mark.parametrize(
    ("option", "value"),
    [("flip", 1.5), ("crop_scale", 0.0), ("crop_scale", 1.2), ("brightness", -0.1), ("grey", 2.0)],
)
def test_rejects_bad_strengths(option: str, value: float) -> None:
    with pytest.raises(ValueError, match=option):
        AppearanceAugment(**{option: value})


def test_rejects_bad_shapes() -> None:
    aug = AppearanceAugment()
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        aug(torch.rand(4, 16, 16), _gen(0))
    with pytest.raises(ValueError, match="params are for 2 frames"):
        aug.apply_params(_frames(3), aug.sample_params(2, _gen(0)))


def _naive_hue(pixel: list[float], angle: float) -> list[float]:
    """One RGB pixel's chroma rotated by ``angle`` in YIQ, written out by hand."""
    r, g, b = pixel
    y = 0.299 * r + 0.587 * g + 0.114 * b
    i = 0.595716 * r - 0.274453 * g - 0.321263 * b
    q = 0.211456 * r - 0.522591 * g + 0.311135 * b
    i, q = i * math.cos(angle) - q * math.sin(angle), i * math.sin(angle) + q * math.cos(angle)
    # the inverse of the YIQ matrix above (NTSC)
    return [
        y + 0.9563 * i + 0.6210 * q,
        y - 0.2721 * i - 0.6474 * q,
        y - 1.1070 * i + 1.7046 * q,
    ]


def test_hue_alone_rotates_the_chroma_as_a_naive_loop_does() -> None:
    aug = AppearanceAugment(**{**OFF, "hue": 0.5})
    x = 0.25 + 0.5 * _frames(6, size=4)  # away from 0 and 1: no clipping
    params = aug.sample_params(6, _gen(3))
    assert params.hue is not None and params.hue.abs().max() <= 0.5 * math.pi + 1e-6
    assert params.hue.std() > 0  # each frame its own angle
    y = aug.apply_params(x, params)
    for n in range(6):
        for h in range(4):
            for w in range(4):
                want = _naive_hue(x[n, :, h, w].tolist(), float(params.hue[n]))
                got = y[n, :, h, w].clamp(0, 1)
                torch.testing.assert_close(got, torch.tensor(want).clamp(0, 1), atol=2e-3, rtol=0)


def test_hue_keeps_grey_pixels_and_luma() -> None:
    aug = AppearanceAugment(**{**OFF, "hue": 1.0})
    grey = torch.rand(4, 1, 8, 8, generator=_gen(1)).expand(4, 3, 8, 8).contiguous()
    torch.testing.assert_close(aug(grey, _gen(2)), grey, atol=1e-5, rtol=0)


def test_hue_is_drawn_after_the_others() -> None:
    """Adding hue did not move the earlier draws: a config without it gets the same crops and
    colours as before."""
    a = AppearanceAugment().sample_params(16, _gen(4))
    b = AppearanceAugment(hue=0.3).sample_params(16, _gen(4))
    for name in ("theta", "brightness", "contrast", "saturation", "grey"):
        assert torch.equal(getattr(a, name), getattr(b, name))
