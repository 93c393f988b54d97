"""The owner check names every mismatch between our entities and the owner's SDL."""

import subprocess
import sys
from pathlib import Path

from federation.owner_check import Entity, expected_entities, mismatches
from settings import REPO_ROOT, FederationSettings

OWNER = """
extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key"])
type User @key(fields: "id") { id: ID! name: String! country: String }
type Product @key(fields: "sku") { sku: String! title: String! price: Float! }
type Query { product(sku: String!): Product }
"""


def test_matching_entities_pass() -> None:
    federation = FederationSettings(
        item_type="Product",
        item_key="sku",
        item_key_scalar="String",
        user_context_fields={"country": "COUNTRY"},
    )
    assert mismatches(OWNER, expected_entities(federation)) == []


def test_every_mismatch_is_named() -> None:
    problems = mismatches(
        OWNER,
        [
            Entity("item", "Item", "id", "ID!"),
            Entity("user", "User", "uid", "ID!", ("age",)),
            Entity("item", "Product", "sku", "ID!"),
        ],
    )
    assert len(problems) == 4
    assert "no type Item (its entities: Product, User)" in problems[0]
    assert "keys are 'id', not 'uid'" in problems[1]
    assert "no field age" in problems[2]
    assert "key sku is String! in the owner, ID! here" in problems[3]


def test_the_command_fails_on_the_default_names_against_a_product_owner(tmp_path: Path) -> None:
    owner = tmp_path / "owner.graphql"
    owner.write_text(OWNER)
    proc = subprocess.run(
        [sys.executable, "-m", "federation.owner_check", str(owner)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "MISMATCH item entity: the owner has no type Item" in proc.stdout
