"""`python -m local_personalize items`: the items the engine recommends, as the federation
test catalog (federation/catalog.mjs) serves them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from local_personalize.data import generate_demo_dataset
from settings import REPO_ROOT
from tests.unit.test_command_line_errors import resources


def items(*args: str) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "local_personalize", "items", "--format", "json", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert proc.stderr == ""
    listed: list[dict[str, Any]] = json.loads(proc.stdout)["items"]
    return listed


def test_the_demo_items_are_the_generator_s() -> None:
    listed = items()
    table = generate_demo_dataset(7).items
    assert [entry["id"] for entry in listed] == list(table.ids)
    for row, entry in enumerate(listed):
        assert entry == {
            "id": table.ids[row],
            "title": table.columns["TITLE"].strings[row],
            "category": table.columns["CATEGORY"].strings[row],
            "price": float(table.columns["PRICE"].strings[row]),
        }
    assert listed[520] == {
        "id": "item-0521",
        "title": "Maple Row Vintage Sunglasses",
        "category": "accessories",
        "price": 8.99,
    }
    # Another seed, another shop.
    assert items("--seed", "8")[520] != listed[520]


def test_a_resources_file_s_items_without_those_columns_are_null(tmp_path: Path) -> None:
    assert items("--resources", str(resources(tmp_path))) == [
        {"id": "a", "title": None, "category": None, "price": None},
        {"id": "b", "title": None, "category": None, "price": None},
    ]
