"""Engine fit time and GetRecommendations latency against catalogue size, in one run.

``python -m bench.engine_scaling`` (from the repo root) generates synthetic shops
(``generate_synthetic_dataset``) of 2k, 20k and 100k items with the same users and
events per user, fits the demo resources on each, then times 500 GetRecommendations
calls per recipe through the
engine's public API (validation and response building included). Ratios are against
the 2k-item run measured in the same process, so machine speed cancels out.
The whole run stays under about three minutes.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from local_personalize.data import generate_synthetic_dataset
from local_personalize.engine import Engine
from local_personalize.resources import ARN_PREFIX

CALLS = {
    "user-personalization": ("campaign/user-personalization", "userId"),
    "sims": ("campaign/sims", "itemId"),
    "popularity": ("campaign/popularity", None),
}


def _latencies(engine: Engine, arn: str, key: str | None, calls: int) -> list[float]:
    rng = np.random.default_rng(1)
    users = engine.dataset.interactions.user_ids
    items = engine.dataset.items.ids
    out: list[float] = []
    for _ in range(calls):
        request: dict[str, object] = {"campaignArn": ARN_PREFIX + arn, "numResults": 25}
        if key == "userId":
            request["userId"] = users[int(rng.integers(len(users)))]
        elif key == "itemId":
            request["itemId"] = items[int(rng.integers(len(items)))]
        started = time.perf_counter()
        engine.get_recommendations(request)
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="2000,20000,100000")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    rows: list[tuple[int, int, float, str, dict[str, tuple[float, float]]]] = []
    for n_items in (int(s) for s in args.sizes.split(",")):
        dataset = generate_synthetic_dataset(7, n_items=n_items, n_users=args.users)
        engine = Engine(dataset)
        method = engine._models[ARN_PREFIX + "campaign/user-personalization"]
        name = getattr(method, "method", "?")
        lat = {}
        for label, (arn, key) in CALLS.items():
            ms = _latencies(engine, arn, key, args.calls)
            lat[label] = (float(np.percentile(ms, 50)), float(np.percentile(ms, 99)))
        rows.append((n_items, len(dataset.interactions), engine.build_stats.fit_seconds, name, lat))
        print(f"done {n_items} items", flush=True)

    base = rows[0]
    head = "| items | interactions | UP method | fit s | fit ratio |"
    for label in CALLS:
        head += f" {label} p50 ms | p99 ms |"
    print(head + " UP p50 ratio |")
    print("|" + "---|" * (head.count("|") - 1 + 1))
    for n_items, n_inter, fit, name, lat in rows:
        cells = f"| {n_items:,} | {n_inter:,} | {name} | {fit:.2f} | {fit / base[2]:.1f}x |"
        for label in CALLS:
            cells += f" {lat[label][0]:.3f} | {lat[label][1]:.3f} |"
        ratio = lat["user-personalization"][0] / base[4]["user-personalization"][0]
        print(cells + f" {ratio:.1f}x |")


if __name__ == "__main__":
    main()
