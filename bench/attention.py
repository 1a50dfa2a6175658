"""PyTorch's scaled-dot-product attention on this CPU: forward and forward + backward, bfloat16 against float32.

    python bench/attention.py [--batch 32] [--length 256] [--repeats 5]

The shapes are a quickstart training step's (4 groups of 8 pairs, MiniLM-L6's 12 heads of 32 dimensions, 256
tokens, the second half of the batch padded from token 200). ``model.attn_implementation=auto`` runs training's
attention in float32 on a CPU because of what this prints (train/attention.py).
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--head-dim", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5, choices=range(1, 1000), metavar="N",
                        help="timed calls after one warm-up call")
    return parser.parse_args(argv)


def milliseconds(args, dtype: torch.dtype, backward: bool) -> float:
    """Mean milliseconds of one attention call (and its backward) in ``dtype``."""
    generator = torch.Generator().manual_seed(0)
    shape = (args.batch, args.heads, args.length, args.head_dim)
    q, k, v = (torch.randn(shape, generator=generator).to(dtype).requires_grad_(backward) for _ in range(3))
    mask = torch.ones(args.batch, 1, args.length, args.length, dtype=torch.bool)
    mask[args.batch // 2:, :, :, int(args.length * 0.78):] = False
    grad = torch.randn(shape, generator=generator).to(dtype)
    with torch.set_grad_enabled(backward):
        for call in range(args.repeats + 1):
            if call == 1:
                start = time.perf_counter()
            output = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            if backward:
                q.grad = k.grad = v.grad = None  # as an optimizer's zero_grad leaves them
                output.backward(grad)
    return (time.perf_counter() - start) / args.repeats * 1000


def main(argv=None) -> None:
    args = parse_args(argv)
    from rerankforge.models.loading import hardware

    rows = {dtype: (milliseconds(args, dtype, False), milliseconds(args, dtype, True))
            for dtype in (torch.bfloat16, torch.float32)}
    print("| dtype | forward ms | forward + backward ms | backward ms |\n|---|---|---|---|")
    for dtype, (forward, both) in rows.items():
        print(f"| {str(dtype).removeprefix('torch.')} | {forward:.1f} | {both:.1f} | {both - forward:.1f} |")
    (bf16_fwd, bf16_both), (fp32_fwd, fp32_both) = rows.values()
    print(f"\nfloat32 / bfloat16 time: forward {fp32_fwd / bf16_fwd:.2f}x, backward "
          f"{(fp32_both - fp32_fwd) / (bf16_both - bf16_fwd):.2f}x, forward + backward {fp32_both / bf16_both:.2f}x")
    print(f"\n{hardware()}")


if __name__ == "__main__":
    main()
