#!/usr/bin/env python3
"""The linear probe: scikit-learn's LogisticRegression (C=1, L-BFGS) on the very same
embeddings and the very same random draws as `fewshot eval`, side by side with Fewshot.

Usage (./build.sh probe runs it):
  fewshot embed TRAIN -o train.json ; fewshot embed TEST -o test.json
  fewshot eval --train TRAIN --test TEST --shots 1,5,10,20,30 --repeats 5 --json > eval.json
  probe.py train.json test.json eval.json
Needs: numpy, scikit-learn.
"""
import json
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression


def load(path):
    d = json.load(open(path))
    x = np.array([p["embedding"] for p in d["photos"]], np.float64)
    y = np.array([p["class"] for p in d["photos"]])
    return x, y


def main(train_path, test_path, eval_path):
    x, y = load(train_path)
    xt, yt = load(test_path)
    ev = json.load(open(eval_path))
    print("| photos a class | Fewshot (mean ± sd) | probe (mean ± sd) | difference |")
    print("| --- | ---: | ---: | ---: |")
    for r in ev["results"]:
        probe = []
        for chosen in r["draws"]:
            model = LogisticRegression(C=1.0, max_iter=5000).fit(x[chosen], y[chosen])
            probe.append(float((model.predict(xt) == yt).mean()))
        ours = np.array(r["accuracies"])
        probe = np.array(probe)
        sd = lambda a: a.std(ddof=1) if len(a) > 1 else 0.0
        shots = r["shots"] if r["shots"] is not None else "all"
        print(f"| {shots} | {100 * ours.mean():.1f} ± {100 * sd(ours):.1f} | {100 * probe.mean():.1f} ± {100 * sd(probe):.1f} "
              f"| {100 * (ours.mean() - probe.mean()):+.1f} |")


if __name__ == "__main__":
    main(*sys.argv[1:4])
