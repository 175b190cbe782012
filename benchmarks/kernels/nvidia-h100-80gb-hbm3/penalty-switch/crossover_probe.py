"""GPU time of get_token_penalty_multi_scores (cold / warm µs, medians of 50, CUDA graphs) at the
batch sizes and histories around the switch between its forms, for the wheel on sys.path:
``python crossover_probe.py LABEL`` (the measurement of ``../penalty-sliced/penalty_probe.py``)."""
import pathlib
import runpy
import sys

probe = runpy.run_path(str(pathlib.Path(__file__).parent.parent / "penalty-sliced" / "penalty_probe.py"))
# (vocabulary, dtype, batch, history length, ids used in each row's history)
CASES = [(128256, "float32", bs, 8192, 2560) for bs in (48, 64, 66, 80, 96, 112, 128, 160, 192, 256)]
CASES += [(128256, "float32", bs, 32768, 16384) for bs in (96, 128)]
CASES += [(151936, "bfloat16", bs, 8192, 2560) for bs in (66, 96, 128, 256)]
probe["measure"](sys.argv[1], CASES)
