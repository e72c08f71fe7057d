"""The big-LaMa generator (Suvorov et al., "Resolution-robust Large Mask Inpainting with Fourier
Convolutions", WACV 2022) in plain PyTorch, for timing with random weights.

Written from the paper and the published big-lama configuration (FFC-ResNet: a 7x7 stem, three
stride-2 downsamplings, 18 residual blocks of fast Fourier convolutions at 512 channels with 75 %
of the channels in the global (spectral) branch, three transposed-convolution upsamplings, a 7x7
head with a sigmoid). ``ffc_resnet(tiny=True)`` keeps the structure with 16 base channels and two
blocks, for tests. Input: (B, 4, H, W) float — the masked RGB in [0, 1] and the mask; H and W
multiples of 8. Output: (B, 3, H, W) in [0, 1].

The Fourier unit runs in float32 even under autocast: cuFFT's half precision only takes
power-of-two sizes, and the spectrum's range is what the paper's global receptive field rests on.
"""

from __future__ import annotations

import torch
from torch import nn


class FourierUnit(nn.Module):
    """1x1 convolution in the frequency domain: rfft2 -> (real, imag) as channels -> conv/BN/ReLU -> irfft2."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin * 2, cout * 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout * 2)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        with torch.autocast(device_type=x.device.type, enabled=False):
            spec = torch.fft.rfft2(x.float(), norm="ortho")  # (B, C, H, W//2+1) complex
            b, c = spec.shape[:2]
            z = torch.cat([spec.real, spec.imag], dim=1)
            z = self.act(self.bn(self.conv(z)))
            re, im = z.chunk(2, dim=1)
            return torch.fft.irfft2(torch.complex(re, im), s=(h, w), norm="ortho")


class SpectralTransform(nn.Module):
    """The global branch: halve the channels, add the Fourier unit's output, expand back."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.down = nn.AvgPool2d(2, 2) if stride == 2 else nn.Identity()
        mid = cout // 2
        self.conv1 = nn.Sequential(nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True))
        self.fu = FourierUnit(mid, mid)
        self.conv2 = nn.Conv2d(mid, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(self.down(x))
        return self.conv2(x + self.fu(x).to(x.dtype))


class FFC(nn.Module):
    """Fast Fourier convolution: local (l) and global (g) channel groups, four paths between them."""

    def __init__(self, cin: int, cout: int, k: int, ratio_in: float, ratio_out: float, stride: int = 1,
                 padding: int = 0) -> None:
        super().__init__()
        self.gin, self.gout = int(cin * ratio_in), int(cout * ratio_out)
        lin, lout = cin - self.gin, cout - self.gout

        def conv(a: int, b: int) -> nn.Module:
            if a == 0 or b == 0:
                return None
            return nn.Conv2d(a, b, k, stride, padding, bias=False, padding_mode="reflect")

        self.l2l, self.l2g, self.g2l = conv(lin, lout), conv(lin, self.gout), conv(self.gin, lout)
        self.g2g = SpectralTransform(self.gin, self.gout, stride) if self.gin and self.gout else None

    def forward(self, x: tuple[torch.Tensor, torch.Tensor | None]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        xl, xg = x
        out_l = out_g = None
        if self.l2l is not None:
            out_l = self.l2l(xl) + (self.g2l(xg) if self.g2l is not None and xg is not None else 0)
        if self.gout:
            out_g = (self.l2g(xl) if self.l2g is not None else 0) + (self.g2g(xg) if self.g2g is not None else 0)
        return out_l, out_g


class FFCBlock(nn.Module):
    """FFC, then batch norm and ReLU on each group."""

    def __init__(self, cin: int, cout: int, k: int, ratio_in: float, ratio_out: float, stride: int = 1,
                 padding: int = 0) -> None:
        super().__init__()
        self.ffc = FFC(cin, cout, k, ratio_in, ratio_out, stride, padding)
        gout = int(cout * ratio_out)
        self.bn_l = nn.Sequential(nn.BatchNorm2d(cout - gout), nn.ReLU(inplace=True)) if cout - gout else None
        self.bn_g = nn.Sequential(nn.BatchNorm2d(gout), nn.ReLU(inplace=True)) if gout else None

    def forward(self, x: tuple[torch.Tensor, torch.Tensor | None]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        xl, xg = self.ffc(x)
        return (self.bn_l(xl) if self.bn_l is not None else xl), (self.bn_g(xg) if self.bn_g is not None else xg)


class FFCResBlock(nn.Module):
    def __init__(self, dim: int, ratio: float) -> None:
        super().__init__()
        self.conv1 = FFCBlock(dim, dim, 3, ratio, ratio, padding=1)
        self.conv2 = FFCBlock(dim, dim, 3, ratio, ratio, padding=1)

    def forward(self, x: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        yl, yg = self.conv2(self.conv1(x))
        return x[0] + yl, x[1] + yg


class FFCResNetGenerator(nn.Module):
    """big-LaMa's generator: (B, 4, H, W) masked image + mask -> (B, 3, H, W) in [0, 1]."""

    def __init__(self, ngf: int = 64, n_down: int = 3, n_blocks: int = 18, ratio: float = 0.75) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.ReflectionPad2d(3))
        self.first = FFCBlock(4, ngf, 7, 0.0, 0.0)
        downs = []
        for i in range(n_down):
            cin, cout = ngf * 2**i, ngf * 2 ** (i + 1)
            downs.append(FFCBlock(cin, cout, 3, 0.0, ratio if i == n_down - 1 else 0.0, stride=2, padding=1))
        self.downs = nn.ModuleList(downs)
        dim = ngf * 2**n_down
        self.blocks = nn.ModuleList(FFCResBlock(dim, ratio) for _ in range(n_blocks))
        ups = []
        for i in range(n_down):
            cin, cout = ngf * 2 ** (n_down - i), ngf * 2 ** (n_down - i - 1)
            ups += [nn.ConvTranspose2d(cin, cout, 3, 2, padding=1, output_padding=1), nn.BatchNorm2d(cout),
                    nn.ReLU(inplace=True)]
        self.up = nn.Sequential(*ups)
        self.head = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats: tuple[torch.Tensor | None, torch.Tensor | None] = self.first((self.stem(x), None))
        for d in self.downs:
            feats = d(feats)
        for b in self.blocks:
            feats = b(feats)
        xl, xg = feats
        return self.head(self.up(torch.cat([xl, xg.to(xl.dtype)], dim=1)))


def ffc_resnet(tiny: bool = False) -> FFCResNetGenerator:
    """big-LaMa (about 51 M parameters) or, with ``tiny``, the same structure at 16 channels and 2 blocks."""
    return FFCResNetGenerator(ngf=16, n_blocks=2) if tiny else FFCResNetGenerator()
