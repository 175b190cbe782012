"""One decode call per shape for ncu: python decode_once.py CACHE BATCH CONTEXT QH KVH [BS]."""
import sys, torch
from fastdeploy_ops import attention
cache, batch, context, qh, kvh = sys.argv[1], *map(int, sys.argv[2:6])
bs = int(sys.argv[6]) if len(sys.argv) > 6 else 16
D = 128
per = -(-context // bs); nb = batch * per
shape = (nb, kvh, bs, D)
dt = {"c16": torch.bfloat16, "int8": torch.int8, "fp8": torch.float8_e4m3fn}[cache]
if dt == torch.int8:
    k = torch.randint(-127, 128, shape, device="cuda", dtype=torch.int8); v = torch.randint(-127, 128, shape, device="cuda", dtype=torch.int8)
else:
    k = torch.randn(shape, device="cuda", dtype=torch.bfloat16).to(dt); v = torch.randn(shape, device="cuda", dtype=torch.bfloat16).to(dt)
tables = torch.randperm(nb, device="cuda", dtype=torch.int32).view(batch, per)
lens = torch.full((batch,), context, device="cuda", dtype=torch.int32)
scales = {} if cache == "c16" else {"key_scale": torch.full((kvh,), 0.02, device="cuda"), "value_scale": torch.full((kvh,), 0.02, device="cuda")}
q = torch.randn(batch, qh, D, device="cuda", dtype=torch.bfloat16)
for _ in range(3):
    out = attention.paged_decode_attention(q, k, v, tables, lens, check_metadata=False, **scales)
torch.cuda.synchronize()
print("ok", out.float().abs().mean().item())
