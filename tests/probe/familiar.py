"""Ways of fitting the "none of these" threshold, compared on the same embeddings and draws.

    python familiar.py TRAIN.json TEST.json HARDER.json FOREIGN.json [SHOTS] [DRAWS]

Each file is `fewshot embed` output (every view of each photo). For K photos a class (SHOTS,
default 5,10,30), DRAWS random draws: the share of the test photos, of the harder test photos
(tests/probe/harder.py) and of the foreign photos that each rule flags. The score is
familiar.rs's: mean cosine distance to the 3 nearest reference embeddings.
"""

import json
import sys

import numpy as np

K = 3


def load(path):
    d = json.load(open(path))
    views = np.array([p["views"] for p in d["photos"]], np.float64)  # [n, views, 1280]
    views /= np.linalg.norm(views, axis=2, keepdims=True)
    labels = np.array([p["class"] for p in d["photos"]])  # the index of its class
    return views, labels


def knn_score(sim):
    """Mean distance to the K most similar, per row of a similarity matrix."""
    top = -np.sort(-sim, axis=1)[:, :K]
    return 1 - top.mean(axis=1)


def loo_scores(refs, owner, queries, query_owner):
    """Each query's score against the references that are not of its own photo."""
    sim = queries @ refs.T
    sim[query_owner[:, None] == owner[None, :]] = -np.inf
    return knn_score(sim)


def rules(train_views, y):
    """Each rule: a function from query embeddings [m, views, 1280] to flags."""
    n, v, _ = train_views.shape
    plain = train_views[:, 0]
    ids = np.arange(n)
    every = train_views.reshape(n * v, -1)
    every_owner = np.repeat(ids, v)
    loo = loo_scores(plain, ids, plain, ids)
    out = {}

    def plain_query(threshold, refs=plain):
        return lambda q: knn_score(q[:, 0] @ refs.T) > threshold

    out["LOO q97.5 (today)"] = plain_query(np.quantile(loo, 0.975))
    out["LOO max"] = plain_query(loo.max())
    # Views: each photo's other views scored against the other photos.
    view_scores = np.concatenate([loo_scores(plain, ids, train_views[:, j], ids) for j in range(v)])
    out["views q97.5"] = plain_query(np.quantile(view_scores, 0.975))
    out["views max"] = plain_query(view_scores.max())
    # Cross-validation folds: a fifth held out against the rest.
    rng = np.random.default_rng(0)
    fold = rng.permutation(n) % 5
    cv = np.concatenate([knn_score(plain[fold == f] @ plain[fold != f].T) for f in range(5)])
    out["5-fold q97.5"] = plain_query(np.quantile(cv, 0.975))
    # A margin that grows as photos get fewer: the quantile plus spread / sqrt(n).
    spread = np.quantile(loo, 0.975) - np.median(loo)
    for c in (1.0, 2.0, 3.0):
        out[f"LOO q97.5 + {c:g} spread/sqrt(n/10)"] = plain_query(np.quantile(loo, 0.975) + c * spread / np.sqrt(n / 10))
    for m in (1.25, 1.5):
        out[f"LOO q97.5 x {m:g}"] = plain_query(np.quantile(loo, 0.975) * m)
        out[f"views q97.5 x {m:g}"] = plain_query(np.quantile(view_scores, 0.975) * m)
    # References of every view; queries plain.
    every_loo = loo_scores(every, every_owner, plain, ids)
    out["refs every view, LOO q97.5"] = plain_query(np.quantile(every_loo, 0.975), every)
    every_view_loo = np.concatenate([loo_scores(every, every_owner, train_views[:, j], ids) for j in range(v)])
    out["refs every view, views q97.5"] = plain_query(np.quantile(every_view_loo, 0.975), every)
    for m in (1.25, 1.5):
        out[f"refs every view, views q97.5 x {m:g}"] = plain_query(np.quantile(every_view_loo, 0.975) * m, every)
    view_spread = np.quantile(view_scores, 0.975) - np.median(view_scores)
    for c in (0.5, 1.0):
        out[f"views q97.5 + {c:g} spread/sqrt(n/10)"] = plain_query(np.quantile(view_scores, 0.975) + c * view_spread / np.sqrt(n / 10))
    # The query's best view (the lowest score of its views), calibrated the same way.
    best_loo = np.min(np.stack([loo_scores(plain, ids, train_views[:, j], ids) for j in range(v)]), axis=0)

    def best_query(threshold):
        return lambda q: np.min(np.stack([knn_score(q[:, j] @ plain.T) for j in range(q.shape[1])]), axis=0) > threshold

    out["best view, its LOO q97.5"] = best_query(np.quantile(best_loo, 0.975))
    best_spread = np.quantile(best_loo, 0.975) - np.median(best_loo)
    for c in (0.5, 1.0, 1.5):
        out[f"best view, LOO q97.5 + {c:g} spread/sqrt(n/10)"] = best_query(np.quantile(best_loo, 0.975) + c * best_spread / np.sqrt(n / 10))
    out["best view, views q97.5"] = best_query(np.quantile(view_scores, 0.975))
    # Per class: the nearest class's own threshold.
    per_class = []
    for c in np.unique(y):
        members = ids[y == c]
        s = loo_scores(plain[members], members, plain[members], members)
        per_class.append((members, np.quantile(s, 0.975) if len(s) > 3 else np.inf))

    def by_class(q):
        scores = np.stack([knn_score(q[:, 0] @ plain[m].T) for m, _ in per_class], axis=1)
        best = scores.argmin(axis=1)
        return scores[np.arange(len(q)), best] > np.array([t for _, t in per_class])[best]

    out["per class q97.5"] = by_class
    # Local density: the score over its neighbours' own LOO scores.
    def ratio(q_plain, exclude=None):
        sim = q_plain @ plain.T
        if exclude is not None:
            sim[exclude[:, None] == ids[None, :]] = -np.inf
        order = np.argsort(-sim, axis=1)[:, :K]
        s = 1 - np.take_along_axis(sim, order, 1).mean(axis=1)
        return s / loo[order].mean(axis=1)

    loo_ratio = ratio(plain, ids)
    out["local ratio q97.5"] = lambda q: ratio(q[:, 0]) > np.quantile(loo_ratio, 0.975)
    return out


def main():
    train, ytr = load(sys.argv[1])
    test, _ = load(sys.argv[2])
    harder, _ = load(sys.argv[3])
    foreign, _ = load(sys.argv[4])
    shots = [int(s) for s in (sys.argv[5] if len(sys.argv) > 5 else "5,10,30").split(",")]
    draws = int(sys.argv[6]) if len(sys.argv) > 6 else 5
    table = {}
    for k in shots:
        for d in range(draws):
            rng = np.random.default_rng(100 * k + d)
            chosen = np.concatenate([rng.permutation(np.flatnonzero(ytr == c))[:k] for c in np.unique(ytr)])
            for name, flags in rules(train[chosen], ytr[chosen]).items():
                row = table.setdefault(name, {})
                for set_name, q in (("test", test), ("harder", harder), ("foreign", foreign)):
                    row.setdefault((k, set_name), []).append(flags(q).mean())
    sets = ("test", "harder", "foreign")
    print(f"{'rule':44}" + "".join(f"{f'{k}: ' + '/'.join(sets):>26}" for k in shots))
    for name, row in table.items():
        print(f"{name:44}" + "".join(f"{' / '.join(f'{100 * np.mean(row[(k, s)]):5.1f}' for s in sets):>26}" for k in shots))


if __name__ == "__main__":
    main()
