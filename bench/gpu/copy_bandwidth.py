"""Device-to-device copy bandwidth (bytes read + bytes written per second), the measured ceiling
that decode throughput is set against. Uses PyTorch (present on the lent GPU image), CUDA events,
a 4 GiB buffer (far past L2), 3 warm-ups and the median of 20 copies."""

import json
import statistics

import torch

n = 4 << 30
src = torch.randint(0, 255, (n,), dtype=torch.uint8, device="cuda")
dst = torch.empty_like(src)
for _ in range(3):
    dst.copy_(src)
torch.cuda.synchronize()
times = []
for _ in range(20):
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    dst.copy_(src)
    b.record()
    b.synchronize()
    times.append(a.elapsed_time(b) / 1000)
med = statistics.median(times)
assert torch.equal(dst[:: 1 << 20], src[:: 1 << 20])
print(json.dumps({
    "device": torch.cuda.get_device_name(0),
    "buffer_bytes": n,
    "median_s": med,
    "copy_bytes_per_s": 2 * n / med,
    "torch": torch.__version__,
}))
