"""Writes a synthetic GGUF of a Llama model's exact shape and tensor types, with random weights.

Decode speed depends on the shapes and quantization types that llama.cpp reads, not on the weight
values, so a file of the real Llama-3.1-8B shape in the real Q4_K_M mix (as llama-quantize lays it
out: Q4_K everywhere, Q6_K for the output and for attn_v / ffn_down in the "more bits" layers)
measures what the real file would, without downloading 4.9 GB. Blocks are random bytes with small,
finite f16 scales (no NaN or Inf reaches the kernels).

Quantized blocks are written directly (gguf-py has no numpy quantizer for K-quants, and quantizing a
16 GB F16 file with llama-quantize would cost minutes of the lease for identical bytes-per-weight).

Usage: python3 write_gguf.py OUT.gguf [--shape llama3-8b|tiny] [--json facts.json]
Needs llama.cpp's gguf-py on PYTHONPATH (it ships inside the same source tree).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGUFWriter, LlamaFileType, TokenType

SHAPES = {
    # meta-llama/Llama-3.1-8B(-Instruct) config.json
    "llama3-8b": dict(
        n_vocab=128256,
        n_embd=4096,
        n_layer=32,
        n_head=32,
        n_head_kv=8,
        n_ff=14336,
        n_ctx_train=131072,
        rope_base=500000.0,
        eps=1e-5,
    ),
    # Small enough to check the writer on a CPU in seconds (same code path, same types).
    "tiny": dict(
        n_vocab=1024,
        n_embd=256,
        n_layer=4,
        n_head=4,
        n_head_kv=2,
        n_ff=512,
        n_ctx_train=2048,
        rope_base=500000.0,
        eps=1e-5,
    ),
}

# Bytes per 256-weight super-block (ggml-common.h): Q4_K: d, dmin (f16), scales[12], qs[128].
# Q6_K: ql[128], qh[64], scales[16] (int8), d (f16).
BLOCK_BYTES = {Q.Q4_K: 144, Q.Q6_K: 210}
QK_K = 256


def use_more_bits(i_layer: int, n_layers: int) -> bool:
    # llama.cpp src/llama-quant.cpp, the Q4_K_M rule for attn_v and ffn_down.
    return (
        i_layer < n_layers // 8
        or i_layer >= 7 * n_layers // 8
        or (i_layer - n_layers // 8) % 3 == 2
    )


class BlockPool:
    """One random buffer per type, sliced per tensor (generating 4.9 GB of randomness would cost
    more time than writing it). Each slice starts on a block boundary, so the scale fields written
    once into the pool are valid in every tensor."""

    def __init__(self, rng: np.random.Generator, qtype: Q, max_bytes: int):
        nb = BLOCK_BYTES[qtype]
        n_blocks = -(-max_bytes // nb)
        pool = rng.integers(0, 256, size=n_blocks * nb, dtype=np.uint8).reshape(n_blocks, nb)
        scale = np.array([0.002], dtype=np.float16).view(np.uint8)
        if qtype == Q.Q4_K:
            pool[:, 0:2] = scale  # d
            pool[:, 2:4] = scale  # dmin
        else:
            pool[:, 208:210] = scale  # d
        self.flat = pool.reshape(-1)

    def take(self, rows: int, cols: int, qtype: Q) -> np.ndarray:
        row_bytes = cols // QK_K * BLOCK_BYTES[qtype]
        return self.flat[: rows * row_bytes].reshape(rows, row_bytes)


def plan(shape: dict) -> list[tuple[str, int, int, Q | None]]:
    """(name, rows, cols, type) in llama.cpp's order; type None = F32 norm vector."""
    e, ff, L = shape["n_embd"], shape["n_ff"], shape["n_layer"]
    kv = e // shape["n_head"] * shape["n_head_kv"]
    out: list[tuple[str, int, int, Q | None]] = [("token_embd.weight", shape["n_vocab"], e, Q.Q4_K)]
    for i in range(L):
        more = use_more_bits(i, L)
        out += [
            (f"blk.{i}.attn_norm.weight", 1, e, None),
            (f"blk.{i}.attn_q.weight", e, e, Q.Q4_K),
            (f"blk.{i}.attn_k.weight", kv, e, Q.Q4_K),
            (f"blk.{i}.attn_v.weight", kv, e, Q.Q6_K if more else Q.Q4_K),
            (f"blk.{i}.attn_output.weight", e, e, Q.Q4_K),
            (f"blk.{i}.ffn_norm.weight", 1, e, None),
            (f"blk.{i}.ffn_gate.weight", ff, e, Q.Q4_K),
            (f"blk.{i}.ffn_up.weight", ff, e, Q.Q4_K),
            (f"blk.{i}.ffn_down.weight", e, ff, Q.Q6_K if more else Q.Q4_K),
        ]
    out += [("output_norm.weight", 1, e, None), ("output.weight", shape["n_vocab"], e, Q.Q6_K)]
    return out


def tensor_bytes(rows: int, cols: int, qtype: Q | None) -> int:
    return rows * cols * 4 if qtype is None else rows * cols // QK_K * BLOCK_BYTES[qtype]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--shape", default="llama3-8b", choices=sorted(SHAPES))
    ap.add_argument("--json", help="write the file's facts (bytes per component) here")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    shape = SHAPES[args.shape]
    t0 = time.time()
    rng = np.random.default_rng(args.seed)
    tensors = plan(shape)

    w = GGUFWriter(args.out, "llama")
    w.add_name(f"synthetic-{args.shape}-Q4_K_M")
    w.add_file_type(LlamaFileType.MOSTLY_Q4_K_M)
    w.add_context_length(shape["n_ctx_train"])
    w.add_embedding_length(shape["n_embd"])
    w.add_block_count(shape["n_layer"])
    w.add_feed_forward_length(shape["n_ff"])
    w.add_head_count(shape["n_head"])
    w.add_head_count_kv(shape["n_head_kv"])
    w.add_rope_dimension_count(shape["n_embd"] // shape["n_head"])
    w.add_rope_freq_base(shape["rope_base"])
    w.add_layer_norm_rms_eps(shape["eps"])
    w.add_vocab_size(shape["n_vocab"])
    # A SentencePiece-style vocabulary of the real size: byte tokens, BOS/EOS, filler pieces.
    # llama-bench feeds token ids, never text, so the pieces only have to load.
    n_vocab = shape["n_vocab"]
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL] + [TokenType.BYTE] * 256
    tokens += [f"\u2581t{i}" for i in range(n_vocab - len(tokens))]
    types += [TokenType.NORMAL] * (n_vocab - len(types))
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * n_vocab)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)

    biggest = {q: 0 for q in BLOCK_BYTES}
    for _, rows, cols, q in tensors:
        if q is not None:
            biggest[q] = max(biggest[q], tensor_bytes(rows, cols, q))
    pools = {q: BlockPool(rng, q, n) for q, n in biggest.items() if n}
    ones = {}
    by_kind: dict[str, int] = {}
    for name, rows, cols, q in tensors:
        if q is None:
            arr = ones.setdefault(cols, np.ones(cols, dtype=np.float32))
            w.add_tensor(name, arr)
        else:
            w.add_tensor(name, pools[q].take(rows, cols, q), raw_dtype=q)
        kind = name.split(".")[-2] if name.startswith("blk.") else name.split(".")[0]
        key = f"{kind}:{'F32' if q is None else q.name}"
        by_kind[key] = by_kind.get(key, 0) + tensor_bytes(rows, cols, q)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    weights = sum(tensor_bytes(r, c, q) for _, r, c, q in tensors)
    embd = tensor_bytes(shape["n_vocab"], shape["n_embd"], Q.Q4_K)
    embd_row = embd // shape["n_vocab"]
    facts = {
        "shape": args.shape,
        **shape,
        "ftype": "MOSTLY_Q4_K_M",
        "file_bytes": os.path.getsize(args.out),
        "weight_bytes": weights,
        # Decoding one token reads every weight once, except the embedding table, of which it
        # reads one row. (KV-cache reads are added by the caller: they depend on the depth.)
        "bytes_read_per_token": weights - embd + embd_row,
        "bytes_by_tensor_kind": by_kind,
        "write_s": round(time.time() - t0, 2),
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(facts, f, indent=2)
    json.dump(facts, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
