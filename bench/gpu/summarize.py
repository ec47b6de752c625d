"""Turns llama-bench's JSON into the figures BENCHMARKS.md reports: tokens/s for pp512 and tg128,
bytes read per decoded token, and the fraction of the memory-bandwidth limit
(tokens/s x bytes per token / bandwidth), against the datasheet HBM bandwidth and the measured copy
bandwidth."""

import argparse
import json

# Vendor datasheet HBM bandwidth, bytes/s, by the name nvidia-smi prints.
DATASHEET = [
    ("H200", 4.8e12),
    ("H100 NVL", 3.9e12),
    ("H100 PCIe", 2.0e12),
    ("H100", 3.35e12),  # SXM5 80GB HBM3
]

ap = argparse.ArgumentParser()
for k in ("bench", "model", "copy", "smi", "commit", "arch", "out"):
    ap.add_argument(f"--{k}")
a = ap.parse_args()

bench = json.load(open(a.bench))
model = json.load(open(a.model))
try:
    copy = json.load(open(a.copy))
except Exception:  # noqa: BLE001 - the copy test is optional (CPU dry run)
    copy = None
try:
    smi = open(a.smi).read().strip().splitlines()[1]
except Exception:  # noqa: BLE001
    smi = ""
gpu_name = smi.split(",")[0].strip() if smi else "none"
datasheet = next((bw for key, bw in DATASHEET if key in gpu_name), None)

rows = []
for r in bench:
    n_gen = r.get("n_gen", 0)
    entry = {
        "test": f"pp{r['n_prompt']}" if n_gen == 0 else f"tg{n_gen}",
        "flash_attn": r.get("flash_attn"),
        "tokens_per_s": r["avg_ts"],
        "stddev_tokens_per_s": r.get("stddev_ts"),
        "samples_ts": r.get("samples_ts"),
    }
    if n_gen:
        # KV cache read per token: mean depth n_gen/2, K and V, f16, every layer.
        kv_dim = model["n_embd"] // model["n_head"] * model["n_head_kv"]
        kv = (n_gen / 2) * model["n_layer"] * 2 * kv_dim * 2
        per_token = model["bytes_read_per_token"] + kv
        moved = r["avg_ts"] * per_token
        entry.update({
            "bytes_read_per_token": per_token,
            "achieved_bytes_per_s": moved,
            "fraction_of_datasheet_bw": moved / datasheet if datasheet else None,
            "fraction_of_measured_copy_bw": moved / copy["copy_bytes_per_s"] if copy else None,
            "limit_tokens_per_s_datasheet": datasheet / per_token if datasheet else None,
        })
    rows.append(entry)

result = {
    "gpu": gpu_name,
    "nvidia_smi": smi,
    "datasheet_bandwidth_bytes_per_s": datasheet,
    "measured_copy": copy,
    "llama_cpp_commit": a.commit,
    "cuda_arch": a.arch,
    "build_info": {k: bench[0].get(k) for k in ("build_commit", "build_number", "backends", "gpu_info", "cpu_info", "model_type", "model_size", "model_n_params", "n_batch", "n_ubatch", "type_k", "type_v", "n_gpu_layers")} if bench else {},
    "model": model,
    "results": rows,
}
json.dump(result, open(a.out, "w"), indent=2)
print(f"{'test':8} {'fa':>3} {'tok/s':>10} {'GB/s':>8} {'of datasheet':>13} {'of copy':>8}")
for e in rows:
    gbs = e.get("achieved_bytes_per_s")
    fd = e.get("fraction_of_datasheet_bw")
    fc = e.get("fraction_of_measured_copy_bw")
    print(f"{e['test']:8} {str(e['flash_attn']):>3} {e['tokens_per_s']:10.1f} "
          f"{(gbs or 0) / 1e9:8.1f} {(fd or 0):13.1%} {(fc or 0):8.1%}")
