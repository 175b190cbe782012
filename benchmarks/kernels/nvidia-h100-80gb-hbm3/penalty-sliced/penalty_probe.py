"""GPU time of get_token_penalty_multi_scores (cold / warm µs, medians of 50) over batch sizes
and history lengths, for the wheel on sys.path: ``python penalty_probe.py LABEL [torch]``
(``torch``: also the torch reference's cold time for the float32 rows of 8192 ids).
``measure`` is also run with other cases by ``../penalty-switch/crossover_probe.py``."""
import sys
import torch
import fastdeploy_ops
from fastdeploy_ops import penalty
from fastdeploy_ops.bench.timing import Timer
from fastdeploy_ops.bench.penalty import _torch_penalties

# (vocabulary, dtype, batch, history length, ids used in each row's history)
CASES = [(128256, "float32", bs, 8192, 2560) for bs in (1, 4, 16, 32, 64, 66, 96, 128, 256)]
CASES += [(128256, "float32", bs, h, h // 2) for h in (32768, 131072) for bs in (1, 16, 64)]
CASES += [(151936, "bfloat16", bs, 8192, 2560) for bs in (1, 64)]


def measure(label, cases, with_torch=False):
    torch.manual_seed(0)
    timer = Timer(torch)
    print(f"# {label}: {torch.cuda.get_device_name()}")
    print("| V | dtype | bs | history (used) | cold µs | warm µs |" + (" torch cold µs |" if with_torch else ""))
    print("|---|---|---|---|---|---|" + ("---|" if with_torch else ""))
    for vocab, dtype, bs, history, used in cases:
        c = {"device": "cuda"}
        g = torch.Generator(device="cuda").manual_seed(bs)
        logits = torch.randn(bs, vocab, generator=g, **c).to(getattr(torch, dtype))
        ids = torch.full((bs, history), -1, dtype=torch.int64, **c)
        ids[:, :used] = torch.randint(0, vocab, (bs, used), generator=g, **c)
        f = lambda v: torch.full((bs, 1), v, **c)
        i = lambda v: torch.full((bs, 1), v, dtype=torch.int64, **c)
        args = (ids, logits, f(1.05), f(0.1), f(0.1), f(1.01),
                torch.randint(0, vocab, (bs, 8), generator=g, **c), i(8), i(used // 4), i(used - used // 4),
                i(1), torch.tensor([2], dtype=torch.int64, **c))
        fn = lambda: penalty.get_token_penalty_multi_scores(*args)
        cold, warm = timer.graph(fn)
        extra = ""
        if with_torch and dtype == "float32" and history == 8192:
            reference = lambda: _torch_penalties(torch, args[0], args[1], args[2], args[3], args[4], args[5], args[8])
            extra = f" {timer.graph(reference)[0].median_us:.2f} |"
        elif with_torch:
            extra = " |"
        print(f"| {vocab} | {dtype} | {bs} | {history} ({used}) | {cold.median_us:.2f} | {warm.median_us:.2f} |{extra}", flush=True)


if __name__ == "__main__":
    measure(sys.argv[1], CASES, with_torch=sys.argv[2:] == ["torch"])
