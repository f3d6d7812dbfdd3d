"""Fixture: yolov5n_random.pt fused (BN folded, ultralytics `fuse()`) and saved in fp16, plus the
outputs of that exact fp16-rounded fused model, for testing the loader's fused + half-precision path.

    /work/venv-peers/bin/python benches/peers/make_fused_fp16_fixture.py

Needs torch, safetensors and the `yolov5==7.0.14` pip package (see shared/fixtures/README.md).
Writes crates/model/tests/fixtures/yolov5n_random_fused_fp16.pt and yolov5n_fused_fp16_io.safetensors.
"""
import os

import torch
from safetensors.torch import save_file

torch.set_num_threads(2)
import yolov5  # noqa: E402
from yolov5.models.yolo import Model  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "..", "crates", "model", "tests", "fixtures")
cfg = os.path.join(os.path.dirname(yolov5.__file__), "models", "yolov5n.yaml")

torch.manual_seed(0)
m = Model(cfg, ch=3, nc=80)
m.load_state_dict(torch.load(os.path.join(FIX, "yolov5n_random.pt")))
m = m.eval().fuse()
sd = {k: (v.half() if v.is_floating_point() else v) for k, v in m.state_dict().items()}
torch.save(sd, os.path.join(FIX, "yolov5n_random_fused_fp16.pt"))
# The reference: the same fused model with its weights rounded to fp16, computed in fp32.
m.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()})
torch.manual_seed(2)
x = torch.rand(1, 3, 160, 160)
with torch.no_grad():
    y, raw = m(x)
t = {"x": x, "decoded": y.contiguous()}
for i, r in enumerate(raw):
    t[f"raw_{i}"] = r.contiguous()
save_file(t, os.path.join(FIX, "yolov5n_fused_fp16_io.safetensors"),
          metadata={"generator": "benches/peers/make_fused_fp16_fixture.py"})
print({k: tuple(v.shape) for k, v in t.items()}, len(sd), "tensors")
