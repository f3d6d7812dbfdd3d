"""Turns the JSON lines of side_by_side.sh into the markdown rows of docs/benchmarks.md.

    python3 benches/peers/summarize.py < /tmp/side_by_side.json
"""
import json
import sys

ours, peers = {}, None
for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    d = json.loads(line)
    if "ycomp" in d:
        name = d["ycomp"]["model"].split(".")[0]
        ours[name] = (d["ycomp"]["median_ms"], d["loadavg"])
    else:
        peers = d
print("| model | yolo-compress (flex) ms | PyTorch ms | ONNX Runtime ms | flex / PyTorch | flex / ORT |")
print("|---|---|---|---|---|---|")
for m, (ms, _) in ours.items():
    t = peers["torch"][m]["median_ms"]
    o = peers["onnxruntime"][m]["median_ms"]
    print(f"| {m} | {ms:.1f} | {t:.1f} | {o:.1f} | {ms / t:.2f}x | {ms / o:.2f}x |")
print()
print("load averages:", {m: la for m, (_, la) in ours.items()}, "peers before/after:",
      peers.get("loadavg_before"), peers.get("loadavg_after"), "cpu:", peers.get("cpu"),
      "versions:", peers.get("versions"))
