"""GPU time of get_token_penalty_multi_scores (cold / warm µs, medians of 50, CUDA graphs) at the
batch sizes and histories around the switch between its forms, for the wheel on
sys.path: ``python crossover_probe.py LABEL``."""
import sys
import torch
import fastdeploy_ops
from fastdeploy_ops import penalty
from fastdeploy_ops.bench.timing import Timer
from fastdeploy_ops.bench.penalty import _torch_penalties

torch.manual_seed(0)
timer = Timer(torch)
print(f"# {sys.argv[1]}: {torch.cuda.get_device_name()}")
with_torch = sys.argv[2:] == ["torch"]
print("| V | dtype | bs | history (used) | cold µs | warm µs |" + (" torch cold µs |" if with_torch else ""))
print("|---|---|---|---|---|---|" + ("---|" if with_torch else ""))
cases = [(128256, "float32", bs, 8192, 2560) for bs in (48, 64, 66, 80, 96, 112, 128, 160, 192, 256)]
cases += [(128256, "float32", bs, 32768, 16384) for bs in (96, 128)]
cases += [(151936, "bfloat16", bs, 8192, 2560) for bs in (66, 96, 128, 256)]
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
