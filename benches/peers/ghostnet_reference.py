#!/usr/bin/env python3
"""PyTorch twin of yolo-compress's GhostNet-backbone YOLOv5 (`yolov5-ghostnet.yaml`), for reference
numbers and a forward-parity fixture.

What it is
    An independent PyTorch implementation (our own code) of the blocks the Rust crate builds for the
    `GhostNetBottleneck` YAML module and of the plain YOLOv5 7.0 blocks around it (Conv, C3, SPPF,
    nn.Upsample, Concat, Detect). Module attribute names follow the Yolov5-Processing project
    (github.com/Ranking666/Yolov5-Processing, models/common.py: GhostBottleneck, GhostConv, DWConv2,
    SqueezeExcite), so the state-dict keys are the ones a checkpoint of that project has:
        model.{i}.conv.0.primary_conv.{conv.weight,bn.*}       GhostModule (expansion), SiLU
        model.{i}.conv.0.cheap_operation.{conv.weight,bn.*}    3x3 depth-wise cheap op, SiLU
        model.{i}.conv.1.{conv_DW.weight,bn_DW.*}              depth-wise k x k, stride 2 (only s == 2)
        model.{i}.conv.2.{conv_reduce,conv_expand}.{weight,bias}  squeeze-excite (only SE ratio > 0)
        model.{i}.conv.3.primary_conv / cheap_operation        GhostModule (projection), no activation
        model.{i}.shortcut.0.{conv_DW.weight,bn_DW.*}          shortcut (unless c1 == c2 and s == 1)
        model.{i}.shortcut.1.{conv.weight,bn.*}
    The YAML is parsed with the same rules as the Rust parser (crates/model/src/arch/yaml.rs):
    output channels `ceil(c * width / 8) * 8`, expansion sizes unscaled, SE width `int(exp * ratio)`,
    repeats `max(round(n * depth), 1)`. Every BatchNorm has eps 1e-3 (what YOLOv5's
    initialize_weights sets); all SiLU activations are one shared instance, as in ultralytics 7.0,
    so `len(list(model.modules()))` is the "layers" figure ultralytics prints.

What it writes (into crates/model/tests/fixtures/ unless --out-dir is given)
    ghostnet_info.json      params, module count and thop MACs / GFLOPs of yolov5-ghostnet.yaml at
                            nc = 80, unfused and with every BN folded (including the depth-wise
                            ones, which the reference project's fuse() leaves alone), measured
                            directly at 640x640 and 64x64, plus ultralytics' model_info estimate
                            (thop at 32x32 scaled by (640/32)^2). That estimate is 1.2 GFLOPs
                            too high here: squeeze-excite's two 1x1 convs run on the pooled 1x1
                            map, so their cost does not grow with the image, yet it gets scaled
                            by 400 (and the pool's +1 per channel with it).
    ghostnet_tiny.yaml      a small config with every GhostNet block variant (s = 1 / 2, with and
                            without SE, identity and projection shortcuts), nc = 3.
    ghostnet_tiny_random.pt its state_dict: torch.manual_seed(0) default init, BN statistics and
                            affine parameters drawn at random, conv weights rescaled so each
                            pre-BN output has unit std on a calibration input (else a random
                            network's output barely depends on its input).
    ghostnet_tiny_io.safetensors  input `x` [1, 3, 64, 96], every layer's output `layer_{i}` and
                            the raw head outputs `raw_{j}` [1, na, ny, nx, nc + 5] (eval mode).

How to run it (by hand; CI does not run it)
    /work/venv-peers/bin/python benches/peers/ghostnet_reference.py
Needs: torch, pyyaml, safetensors, thop (0.1.1).
"""
import argparse
import json
import math
import os
from copy import deepcopy

import torch
import torch.nn as nn
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONFIG = os.path.join(ROOT, "crates", "model", "src", "arch", "configs", "yolov5-ghostnet.yaml")
FIXDIR = os.path.join(ROOT, "crates", "model", "tests", "fixtures")

BN_EPS, BN_MOMENTUM = 1e-3, 0.03

TINY_YAML = """\
# Small GhostNet-backbone YOLOv5 for the forward-parity fixture (benches/peers/ghostnet_reference.py).
# Every GhostNetBottleneck variant appears: s = 1 and 2, with and without squeeze-excite, identity
# and projection shortcuts (also at stride 1, row 6). SE widths: int(18 * 0.25) = 4, int(30 * 0.25) = 7.
nc: 3
depth_multiple: 0.33
width_multiple: 0.25
anchors:
  - [10,13, 16,30, 33,23]
  - [30,61, 62,45, 59,119]
  - [116,90, 156,198, 373,326]
backbone:
  [[-1, 1, Conv, [16, 3, 2, 1]],                       # 0  /2, 8 ch
   [-1, 1, GhostNetBottleneck, [16, 8, 3, 0, 1]],      # 1  identity shortcut
   [-1, 1, GhostNetBottleneck, [24, 12, 3, 0, 2]],     # 2  /4
   [-1, 1, GhostNetBottleneck, [40, 18, 5, 0.25, 2]],  # 3  /8, SE 4
   [-1, 1, GhostNetBottleneck, [40, 30, 5, 0.25, 1]],  # 4  P3, SE 7
   [-1, 1, GhostNetBottleneck, [80, 40, 3, 0, 2]],     # 5  /16
   [-1, 1, GhostNetBottleneck, [112, 48, 3, 0.25, 1]], # 6  P4, projection at stride 1
   [-1, 1, GhostNetBottleneck, [160, 64, 5, 0.25, 2]], # 7  /32
   [-1, 1, GhostNetBottleneck, [160, 64, 5, 0, 1]],    # 8
   [-1, 1, Conv, [240, 1, 1]],                         # 9
   [-1, 1, SPPF, [256, 5]],                            # 10 P5
  ]
head:
  [[-1, 1, Conv, [128, 1, 1]],                 # 11
   [-1, 1, nn.Upsample, [None, 2, 'nearest']], # 12
   [[-1, 6], 1, Concat, [1]],                  # 13
   [-1, 3, C3, [128, False]],                  # 14
   [-1, 1, Conv, [64, 1, 1]],                  # 15
   [-1, 1, nn.Upsample, [None, 2, 'nearest']], # 16
   [[-1, 4], 1, Concat, [1]],                  # 17
   [-1, 3, C3, [64, False]],                   # 18 out P3
   [-1, 1, Conv, [64, 3, 2]],                  # 19
   [[-1, 15], 1, Concat, [1]],                 # 20
   [-1, 3, C3, [128, False]],                  # 21 out P4
   [-1, 1, Conv, [128, 3, 2]],                 # 22
   [[-1, 11], 1, Concat, [1]],                 # 23
   [-1, 3, C3, [256, False]],                  # 24 out P5
   [[18, 21, 24], 1, Detect, [nc, anchors]],   # 25
  ]
"""


def bn(c):
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=BN_MOMENTUM)


class Conv(nn.Module):
    """Conv2d (no bias, padding k // 2 unless given) + BN + SiLU (one shared instance) or identity."""

    shared_act = nn.SiLU()

    def __init__(self, c1, c2, k=1, s=1, p=None, g=1, act=True):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2 if p is None else p, groups=g, bias=False)
        self.bn = bn(c2)
        self.act = Conv.shared_act if act else nn.Identity()

    def forward(self, x):
        return self.act(self.bn(self.conv(x))) if hasattr(self, "bn") else self.act(self.conv(x))


class DepthwiseBN(nn.Module):
    """Depth-wise k x k conv (padding (k - 1) // 2) + BN, no activation (the reference's DWConv2)."""

    def __init__(self, c, k, s):
        super().__init__()
        self.conv_DW = nn.Conv2d(c, c, k, s, (k - 1) // 2, groups=c, bias=False)
        self.bn_DW = bn(c)

    def forward(self, x):
        x = self.conv_DW(x)
        return self.bn_DW(x) if hasattr(self, "bn_DW") else x


class GhostModule(nn.Module):
    """Primary conv to c2 // 2 channels, then a depth-wise cheap op on those; output is both, concatenated."""

    def __init__(self, c1, c2, k=1, s=1, dw_k=3, act=True):
        super().__init__()
        c_ = c2 // 2
        self.primary_conv = Conv(c1, c_, k, s, None, 1, act)
        self.cheap_operation = Conv(c_, c_, dw_k, 1, None, c_, act)

    def forward(self, x):
        y = self.primary_conv(x)
        return torch.cat([y, self.cheap_operation(y)], 1)


class SqueezeExcite(nn.Module):
    """x * sigmoid(expand(relu(reduce(mean_hw(x))))), 1x1 convs with bias."""

    def __init__(self, c, reduced):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_reduce = nn.Conv2d(c, reduced, 1, bias=True)
        self.act1 = nn.ReLU(inplace=True)
        self.conv_expand = nn.Conv2d(reduced, c, 1, bias=True)
        self.gate_fn = nn.Sigmoid()

    def forward(self, x):
        return x * self.gate_fn(self.conv_expand(self.act1(self.conv_reduce(self.avg_pool(x)))))


class GhostNetBottleneck(nn.Module):
    def __init__(self, c1, c2, exp, k, se_channels, s):
        super().__init__()
        self.conv = nn.Sequential(
            GhostModule(c1, exp),
            DepthwiseBN(exp, k, s) if s == 2 else nn.Identity(),
            SqueezeExcite(exp, se_channels) if se_channels > 0 else nn.Sequential(),
            GhostModule(exp, c2, act=False),
        )
        if c1 == c2 and s == 1:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = nn.Sequential(DepthwiseBN(c1, k, s), Conv(c1, c2, 1, 1, act=False))

    def forward(self, x):
        return self.conv(x) + self.shortcut(x)


class Bottleneck(nn.Module):
    def __init__(self, c1, c2, shortcut=True, e=0.5):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_, c2, 3, 1)
        self.add = shortcut and c1 == c2

    def forward(self, x):
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C3(nn.Module):
    def __init__(self, c1, c2, n=1, shortcut=True, e=0.5):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c1, c_, 1, 1)
        self.cv3 = Conv(2 * c_, c2, 1)
        self.m = nn.Sequential(*(Bottleneck(c_, c_, shortcut, e=1.0) for _ in range(n)))

    def forward(self, x):
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class SPPF(nn.Module):
    def __init__(self, c1, c2, k=5):
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_ * 4, c2, 1, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x):
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))


class Concat(nn.Module):
    def forward(self, xs):
        return torch.cat(xs, 1)


class Detect(nn.Module):
    """Raw outputs only: per level conv -> [b, na, ny, nx, nc + 5]."""

    def __init__(self, nc, anchors, ch, strides):
        super().__init__()
        self.nc, self.no, self.nl, self.na = nc, nc + 5, len(anchors), len(anchors[0]) // 2
        a = torch.tensor(anchors, dtype=torch.float32).view(self.nl, -1, 2)
        self.register_buffer("anchors", a / torch.tensor(strides, dtype=torch.float32).view(-1, 1, 1))
        self.m = nn.ModuleList(nn.Conv2d(c, self.no * self.na, 1) for c in ch)

    def forward(self, xs):
        out = []
        for i, x in enumerate(xs):
            b, _, ny, nx = x.shape
            out.append(self.m[i](x).view(b, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous())
        return out


def make_divisible(x, d=8):
    return math.ceil(x / d) * d


class Model(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        nc, gd, gw = cfg["nc"], cfg.get("depth_multiple", 1.0), cfg.get("width_multiple", 1.0)
        anchors = cfg["anchors"]
        no = len(anchors[0]) // 2 * (nc + 5)
        ch, strides, layers = [], [], []
        for i, (f, n, m, args) in enumerate(cfg["backbone"] + cfg["head"]):
            src = [f] if isinstance(f, int) else f
            src = [None if (i == 0 and s == -1) else (i + s if s < 0 else s) for s in src]
            c_in = [3 if s is None else ch[s] for s in src]
            s_in = [1 if s is None else strides[s] for s in src]
            n = max(round(n * gd), 1) if n > 1 else n

            def c2_of(c):
                return make_divisible(c * gw) if c != no else c

            if m == "Conv":
                c2 = c2_of(args[0])
                k, s = args[1] if len(args) > 1 else 1, args[2] if len(args) > 2 else 1
                p = args[3] if len(args) > 3 else None
                mod, stride = Conv(c_in[0], c2, k, s, p), s_in[0] * s
            elif m == "GhostNetBottleneck":
                c2, exp, k, se, s = c2_of(args[0]), args[1], args[2], args[3], args[4]
                mod = GhostNetBottleneck(c_in[0], c2, exp, k, int(exp * se) if se > 0 else 0, s)
                stride = s_in[0] * s
            elif m == "C3":
                c2 = c2_of(args[0])
                shortcut = args[1] if len(args) > 1 else True
                mod, stride = C3(c_in[0], c2, n, shortcut), s_in[0]
            elif m == "SPPF":
                c2 = c2_of(args[0])
                mod, stride = SPPF(c_in[0], c2, args[1] if len(args) > 1 else 5), s_in[0]
            elif m == "nn.Upsample":
                c2, mod, stride = c_in[0], nn.Upsample(None, args[1], "nearest"), s_in[0] // args[1]
            elif m == "Concat":
                assert len(set(s_in)) == 1
                c2, mod, stride = sum(c_in), Concat(), s_in[0]
            elif m == "Detect":
                c2, mod, stride = no, Detect(nc, anchors, c_in, s_in), 0
            else:
                raise ValueError(f"layer {i}: unsupported module {m}")
            mod.i, mod.src = i, src
            layers.append(mod)
            ch.append(c2)
            strides.append(stride)
        self.model = nn.Sequential(*layers)
        self.ch, self.strides = ch, strides

    def forward(self, x, keep_all=False):
        outs = []
        for m in self.model:
            xs = [x if s is None else outs[s] for s in m.src]
            outs.append(m(xs if isinstance(m, (Concat, Detect)) else xs[0]))
        return outs if keep_all else outs[-1]


def fold_bn(conv, norm):
    """conv(x) followed by norm in eval mode, as one conv with a bias."""
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      groups=conv.groups, bias=True)
    fused.weight.data = conv.weight.data * scale.view(-1, 1, 1, 1)
    fused.bias.data = norm.bias.data - norm.running_mean * scale
    return fused


@torch.no_grad()
def fuse(model):
    for m in model.modules():
        if isinstance(m, Conv) and hasattr(m, "bn"):
            m.conv = fold_bn(m.conv, m.bn)
            delattr(m, "bn")
        elif isinstance(m, DepthwiseBN) and hasattr(m, "bn_DW"):
            m.conv_DW = fold_bn(m.conv_DW, m.bn_DW)
            delattr(m, "bn_DW")
    return model


def thop_macs(model, h, w):
    import thop

    return thop.profile(deepcopy(model), inputs=(torch.zeros(1, 3, h, w),), verbose=False)[0]


def summary(model):
    p = sum(x.numel() for x in model.parameters())
    at640 = thop_macs(model, 640, 640)
    at64 = thop_macs(model, 64, 64)
    at32 = thop_macs(model, 32, 32)
    return {"parameters": p, "layers": len(list(model.modules())),
            "macs_640": at640, "gflops_640": 2 * at640 / 1e9,
            "macs_64": at64,
            "model_info_gflops_640": 2 * at32 / 1e9 * (640 / 32) ** 2}


def randomize(model, seed):
    """Random BN statistics / affine parameters, then conv weights rescaled to unit pre-BN std."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0.0, 0.1, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0.0, 0.1, generator=g)

        def pre_hook(mod, inp):
            c = mod.conv if isinstance(mod, Conv) else mod.conv_DW
            y = nn.functional.conv2d(inp[0], c.weight, None, c.stride, c.padding, c.dilation, c.groups)
            c.weight.mul_(1.0 / float(y.std()))

        hooks = [m.register_forward_pre_hook(pre_hook) for m in model.modules() if isinstance(m, (Conv, DepthwiseBN))]
        model.eval()
        model(torch.rand(1, 3, 64, 96, generator=g))
        for h in hooks:
            h.remove()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", default=FIXDIR)
    args = ap.parse_args()
    torch.set_num_threads(2)
    os.makedirs(args.out_dir, exist_ok=True)

    with open(CONFIG) as fh:
        cfg = yaml.safe_load(fh)
    torch.manual_seed(0)
    full = Model(cfg).eval()
    info = {"source": "benches/peers/ghostnet_reference.py (PyTorch %s, thop 0.1.1), nc=80" % torch.__version__,
            "note": "macs_640 / gflops_640: thop measured at 640x640 (what yolo-compress's info reports); "
                    "model_info_gflops_640: ultralytics' estimate, thop at 32x32 times (640/32)^2, which "
                    "overcounts the squeeze-excite 1x1 convs (they run on a 1x1 pooled map at any size). "
                    "'fused' folds every BN, the depth-wise ones included.",
            "channels": full.ch, "strides": full.strides,
            "unfused": summary(full)}
    info["fused"] = summary(fuse(deepcopy(full)))
    with open(os.path.join(args.out_dir, "ghostnet_info.json"), "w") as fh:
        json.dump(info, fh, indent=1)
    print(json.dumps({k: info[k] for k in ("unfused", "fused")}, indent=1))

    tiny_path = os.path.join(args.out_dir, "ghostnet_tiny.yaml")
    with open(tiny_path, "w") as fh:
        fh.write(TINY_YAML)
    torch.manual_seed(0)
    tiny = Model(yaml.safe_load(TINY_YAML))
    randomize(tiny, 1)
    tiny.eval()
    sd = {k: v.clone() for k, v in tiny.state_dict().items()}
    torch.save(sd, os.path.join(args.out_dir, "ghostnet_tiny_random.pt"))
    x = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        outs = tiny(x, keep_all=True)
    tensors = {"x": x}
    for i, o in enumerate(outs[:-1]):
        tensors[f"layer_{i}"] = o.contiguous()
    for j, r in enumerate(outs[-1]):
        tensors[f"raw_{j}"] = r.contiguous()
    from safetensors.torch import save_file

    save_file(tensors, os.path.join(args.out_dir, "ghostnet_tiny_io.safetensors"))
    print("tiny: %d parameters, %d state-dict entries, raw shapes %s; output std per level %s" % (
        sum(p.numel() for p in tiny.parameters()), len(sd), [list(r.shape) for r in outs[-1]],
        [round(float(r.std()), 3) for r in outs[-1]]))


if __name__ == "__main__":
    main()
