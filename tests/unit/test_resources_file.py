"""Resources files: the shipped demo file equals the built-in demo; CSV datasets serve."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local_personalize import ARN_PREFIX, Engine
from local_personalize.resources import (
    DEMO_RESOURCES,
    Recipe,
    ResourcesFileError,
    load_resources,
)

CONFIG = Path(__file__).resolve().parents[2] / "config" / "local_resources.toml"


def test_shipped_file_declares_exactly_the_built_in_demo() -> None:
    spec = load_resources(CONFIG)
    assert spec.resources == DEMO_RESOURCES
    assert spec.dataset.demo_seed == 7


def test_file_built_and_built_in_demo_engines_answer_identically(engine: Engine) -> None:
    from_file = Engine.from_resources(CONFIG)
    assert from_file.arns() == engine.arns()
    requests: list[dict[str, Any]] = [
        {"recommenderArn": f"{ARN_PREFIX}recommender/recommended-for-you", "userId": "user-0042"},
        {"recommenderArn": f"{ARN_PREFIX}recommender/best-sellers", "numResults": 50},
        {"campaignArn": f"{ARN_PREFIX}campaign/sims", "itemId": "item-0100"},
        {
            "campaignArn": f"{ARN_PREFIX}campaign/user-personalization",
            "userId": "user-0007",
            "filterArn": f"{ARN_PREFIX}filter/by-category",
            "filterValues": {"CATEGORY": '"shoes"'},
        },
    ]
    for request in requests:
        a, b = from_file.get_recommendations(request), engine.get_recommendations(request)
        assert a["itemList"] == b["itemList"]
    ranking = {
        "campaignArn": f"{ARN_PREFIX}campaign/personalized-ranking",
        "userId": "user-0042",
        "inputList": ["item-0001", "item-0500", "item-1999"],
    }
    assert (
        from_file.get_personalized_ranking(ranking)["personalizedRanking"]
        == engine.get_personalized_ranking(ranking)["personalizedRanking"]
    )


def test_a_file_over_csv_datasets_serves_its_resources(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    rows = ["USER_ID,ITEM_ID,TIMESTAMP"]
    for u in range(30):
        for t, item in enumerate(("a", "b", "c") if u % 2 else ("c", "d")):
            rows.append(f"u{u},{item},{1000 + u * 10 + t}")
    (tmp_path / "data" / "i.csv").write_text("\n".join(rows) + "\n")
    fields = [
        {"name": "USER_ID", "type": "string"},
        {"name": "ITEM_ID", "type": "string"},
        {"name": "TIMESTAMP", "type": "long"},
    ]
    (tmp_path / "data" / "i.json").write_text(
        json.dumps({"type": "record", "name": "Interactions", "fields": fields, "version": "1.0"})
    )
    path = tmp_path / "res.toml"
    path.write_text(
        """
[datasets.interactions]
path = "data/i.csv"
schema = "data/i.json"

[[campaigns]]
arn = "arn:aws:personalize:eu-west-1:123456789012:campaign/similar"
recipe = "aws-sims"
hyperparameters = { neighbours = 5 }

[[recommenders]]
name = "trending"
recipe = "aws-vod-trending-now"
"""
    )
    spec = load_resources(path)
    sims = spec.resources.deployments[1]
    assert sims.recipe is Recipe.SIMS
    assert sims.hyperparameters == (("neighbours", "5"),)
    engine = Engine.from_resources(path)
    answer = engine.get_recommendations(
        {
            "campaignArn": "arn:aws:personalize:eu-west-1:123456789012:campaign/similar",
            "itemId": "a",
            "numResults": 2,
        }
    )
    assert [e["itemId"] for e in answer["itemList"]] == ["b", "c"]
    trending = engine.get_recommendations(
        {"recommenderArn": f"{ARN_PREFIX}recommender/trending", "numResults": 4}
    )
    assert len(trending["itemList"]) == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[campaigns]]\nname = "x"\nrecipe = "aws-magic"\n', "unknown recipe 'aws-magic'"),
        ('[[campaigns]]\nrecipe = "aws-sims"\n', "needs an arn or a name"),
        (
            '[[campaigns]]\narn = "arn:aws:personalize:us-east-1:1:recommender/x"\n'
            'recipe = "aws-sims"\n',
            "not a Personalize campaign ARN",
        ),
        (
            '[[campaigns]]\nname = "x"\nrecipe = "aws-sims"\n[[filters]]\nname = "f"\n',
            "needs an expression",
        ),
        (
            '[datasets]\ndemo = false\n[[campaigns]]\nname = "x"\nrecipe = "aws-sims"\n',
            "needs demo = true or a",
        ),
        ("[datasets]\ndemo = true\n", "declares no"),
        ('[[campaigns]]\nname = "x"\nrecipe = "aws-sims"\n' * 2, "ARN declared twice"),
    ],
)
def test_bad_files_are_refused_with_the_entry_named(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ResourcesFileError, match=message):
        load_resources(path)
