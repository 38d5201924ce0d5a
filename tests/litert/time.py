"""How fast Google's LiteRT (ai-edge-litert from PyPI, XNNPACK) runs a .tflite file here, for
the benchmark's comparison: the median of RUNS invocations after a warm-up, on 1 thread and
on every core.

usage: time.py MODEL.tflite OUT.json
"""
import json
import os
import sys
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter

RUNS = 50


def median_ms(path, threads):
    interpreter = Interpreter(model_path=path, num_threads=threads)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    rng = np.random.default_rng(1)
    interpreter.set_tensor(inp["index"], rng.integers(0, 256, inp["shape"], dtype=np.uint8).astype(inp["dtype"]))
    interpreter.invoke()
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - started) * 1000)
    return sorted(times)[len(times) // 2]


model, out = sys.argv[1], sys.argv[2]
cores = os.cpu_count() or 1
result = {"runs": RUNS, "cores": cores, "one_thread_ms": median_ms(model, 1), "all_threads_ms": median_ms(model, cores)}
json.dump(result, open(out, "w"), indent=1)
print(f"LiteRT {model}: {result['one_thread_ms']:.1f} ms on 1 thread, {result['all_threads_ms']:.1f} ms on {cores}")
