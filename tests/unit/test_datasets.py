"""Loading Personalize-format CSVs and schemas: good files load, bad rows are named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from local_personalize.datasets import DatasetError, SchemaError, load_dataset, parse_schema
from local_personalize.filters import CompiledFilter

NS = "com.amazonaws.personalize.schema"


def schema(name: str, fields: list[dict[str, object]]) -> str:
    return json.dumps(
        {"type": "record", "name": name, "namespace": NS, "fields": fields, "version": "1.0"}
    )


INTERACTIONS = schema(
    "Interactions",
    [
        {"name": "USER_ID", "type": "string"},
        {"name": "ITEM_ID", "type": "string"},
        {"name": "TIMESTAMP", "type": "long"},
        {"name": "EVENT_TYPE", "type": "string"},
        {"name": "EVENT_VALUE", "type": ["null", "float"]},
        {"name": "DEVICE", "type": ["null", "string"], "categorical": True},
    ],
)
ITEMS = schema(
    "Items",
    [
        {"name": "ITEM_ID", "type": "string"},
        {"name": "GENRES", "type": ["null", "string"], "categorical": True},
        {"name": "PRICE", "type": ["null", "double"]},
        {"name": "CREATION_TIMESTAMP", "type": "long"},
    ],
)
USERS = schema(
    "Users",
    [
        {"name": "USER_ID", "type": "string"},
        {"name": "TIER", "type": "string", "categorical": True},
    ],
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def files(tmp_path: Path, interactions: str, items: str | None = None) -> dict[str, object]:
    out: dict[str, object] = {
        "interactions": (
            write(tmp_path, "i.csv", interactions),
            write(tmp_path, "i.json", INTERACTIONS),
        )
    }
    if items is not None:
        out["items"] = (write(tmp_path, "items.csv", items), write(tmp_path, "items.json", ITEMS))
    return out


GOOD_INTERACTIONS = (
    "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE,DEVICE\n"
    "u1,a,300,click,1.5,ios\n"
    "u1,b,100,click,,web\n"
    "u2,a,200,buy,9,\n"
    "u2,z,250,click,,ios\n"
)
GOOD_ITEMS = (
    "ITEM_ID,GENRES,PRICE,CREATION_TIMESTAMP\na,Comedy|Drama,9.5,10\nb,Drama,,20\nc,,3,30\n"
)


def test_a_good_dataset_loads_in_the_engines_containers(tmp_path: Path) -> None:
    spec = files(tmp_path, GOOD_INTERACTIONS, GOOD_ITEMS)
    loaded = load_dataset(spec["interactions"], items=spec["items"])  # type: ignore[arg-type]
    data = loaded.dataset
    # Items from the Items file first, then items only seen in interactions.
    assert data.items.ids == ("a", "b", "c", "z")
    inter = data.interactions
    assert inter.user_ids == ("u1", "u2")
    u1 = inter.history(inter.user_index["u1"])
    assert [data.items.ids[i] for i in inter.item[u1]] == ["b", "a"]  # oldest first
    assert inter.event_types == ("click", "buy")
    assert np.isnan(inter.extra["EVENT_VALUE"][0])
    assert inter.extra["EVENT_VALUE"][1] == 1.5
    genres = data.items.columns["GENRES"]
    assert genres.strings[0] == "Comedy|Drama"
    # Multi-valued cells match a filter on any of their values.
    comedy = CompiledFilter("f", 'INCLUDE ItemID WHERE Items.GENRES IN ("Comedy")', data)
    drama = CompiledFilter("f", "INCLUDE ItemID WHERE Items.GENRES IN ($G)", data)
    assert comedy.allowed(None, {}).tolist() == [True, False, False, False]
    assert drama.allowed(None, {"G": '"Drama"'}).tolist() == [True, True, False, False]
    price = data.items.columns["PRICE"]
    assert price.strings[:3] == ("9.50", "", "3.00")
    report = loaded.reports["interactions"]
    assert (report.rows_read, report.rows_kept, report.rows_rejected) == (4, 4, 0)


BAD_INTERACTIONS = (
    "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE,DEVICE\n"
    "u1,a,300,click,1.5,ios\n"
    "u1,b,yesterday,click,,web\n"
    ",a,200,buy,9,\n"
    "u2,a,250,click\n"
    "u2,c,260,click,lots,ios\n"
)


def test_bad_rows_are_named_by_file_line_and_column(tmp_path: Path) -> None:
    spec = files(tmp_path, BAD_INTERACTIONS)
    with pytest.raises(DatasetError) as caught:
        load_dataset(spec["interactions"])  # type: ignore[arg-type]
    where = [(Path(e.file).name, e.line, e.column) for e in caught.value.errors]
    assert where == [
        ("i.csv", 3, "TIMESTAMP"),
        ("i.csv", 4, "USER_ID"),
        ("i.csv", 5, None),
        ("i.csv", 6, "EVENT_VALUE"),
    ]
    assert "i.csv:3: column TIMESTAMP: 'yesterday' is not a valid long" in str(caught.value)


def test_lenient_loading_keeps_good_rows_and_counts_the_rest(tmp_path: Path) -> None:
    spec = files(tmp_path, BAD_INTERACTIONS)
    loaded = load_dataset(spec["interactions"], strict=False)  # type: ignore[arg-type]
    report = loaded.reports["interactions"]
    assert (report.rows_read, report.rows_kept, report.rows_rejected) == (5, 1, 4)
    assert len(loaded.dataset.interactions) == 1


def test_duplicate_item_ids_are_rejected(tmp_path: Path) -> None:
    spec = files(tmp_path, GOOD_INTERACTIONS, GOOD_ITEMS + "a,Horror,1,40\n")
    with pytest.raises(DatasetError, match=r"items.csv:5: column ITEM_ID: duplicate"):
        load_dataset(spec["interactions"], items=spec["items"])  # type: ignore[arg-type]


def test_header_must_match_the_schema(tmp_path: Path) -> None:
    spec = files(tmp_path, "USER_ID,ITEM_ID,WHEN\nu1,a,1\n")
    with pytest.raises(SchemaError, match="columns not in the schema: WHEN"):
        load_dataset(spec["interactions"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ([{"name": "USER_ID", "type": "string"}], "non-null long or int field ITEM_ID|ITEM_ID"),
        (
            [
                {"name": "USER_ID", "type": "string"},
                {"name": "ITEM_ID", "type": "string"},
                {"name": "TIMESTAMP", "type": "string"},
            ],
            "TIMESTAMP",
        ),
        (
            [
                {"name": "USER_ID", "type": "string"},
                {"name": "ITEM_ID", "type": "string"},
                {"name": "TIMESTAMP", "type": "long"},
                {"name": "PRICE", "type": "float", "categorical": True},
            ],
            "only strings are categorical",
        ),
    ],
)
def test_invalid_schemas_are_refused(fields: list[dict[str, object]], message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        parse_schema(schema("Interactions", fields), "interactions")


def test_users_file_defines_users_without_interactions(tmp_path: Path) -> None:
    spec = files(tmp_path, GOOD_INTERACTIONS)
    users = (
        write(tmp_path, "u.csv", "USER_ID,TIER\nu9,gold\nu1,free\n"),
        write(tmp_path, "u.json", USERS),
    )
    data = load_dataset(spec["interactions"], users=users).dataset  # type: ignore[arg-type]
    assert data.users.ids == ("u9", "u1")
    assert data.interactions.user_ids == ("u9", "u1", "u2")
    hist = data.interactions.history(data.interactions.user_index["u9"])
    assert hist.stop - hist.start == 0
