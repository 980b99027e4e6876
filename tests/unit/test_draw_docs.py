"""docs/draw.md and docs/examples/ show what the code computes: every value of the worked
example appears on the page, the example files are the documents the code builds, and the
schemas in docs/ are the ones the verifier uses."""

from __future__ import annotations

import json
import pathlib

import pytest

from fairslot.domain.draw.examples import example_files, worked_example

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs"
SCHEMAS = (pathlib.Path(__file__).resolve().parents[2] / "src" / "fairslot" / "domain" / "draw"
           / "schemas")


@pytest.fixture(scope="module")
def page() -> str:
    return (DOCS / "draw.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def worked() -> dict[str, object]:
    return worked_example()


def test_every_value_of_the_worked_example_is_on_the_page(page: str,
                                                         worked: dict[str, object]) -> None:
    ex = worked["example"]
    opening, result = ex.opening, ex.result  # type: ignore[attr-defined]
    values = [
        opening["commitment"], str(opening["beacon_round"]), worked["opening_digest"],
        opening["chain"]["hash"], worked["root"], worked["round_key"], worked["randomness"],
        worked["beacon"]["signature"], result["results"], result["seed"],
        worked["receipt"]["signature"], worked["checkpoint"]["root"],
        worked["receipt"]["hospital_key"],
        *worked["leaves"], *worked["leaf_hashes"], *worked["draw_keys"].values(),
        *worked["proof"]["path"][1:],
        json.dumps(ex.results),  # type: ignore[attr-defined]
    ]
    missing = [v for v in values if v not in page]
    assert not missing, f"docs/draw.md lacks these computed values: {missing}"
    assert "bob, carol, alice, dave" in page
    assert [w.split()[0] for w in ex.results["winners"]] == ["bob", "carol"]  # type: ignore[attr-defined]


def test_the_example_files_are_what_the_code_builds() -> None:
    for name, value in example_files().items():
        published = json.loads((DOCS / "examples" / name).read_text(encoding="utf-8"))
        assert published == value, f"docs/examples/{name} differs from what the code builds"


def test_the_schemas_in_docs_are_the_verifiers() -> None:
    names = sorted(p.name for p in SCHEMAS.glob("*.schema.json"))
    assert names == ["inclusion.schema.json", "log.schema.json", "receipt.schema.json",
                     "round.schema.json"]
    for name in names:
        assert (DOCS / "schemas" / name).read_bytes() == (SCHEMAS / name).read_bytes()


def test_the_production_chain_on_the_page_is_the_built_in_one(page: str) -> None:
    from fairslot.domain.draw.beacon import LOE_DEFAULT, LOE_QUICKNET

    for chain in (LOE_QUICKNET, LOE_DEFAULT):
        for value in (chain.hash.hex(), chain.public_key.hex(), chain.genesis_seed.hex(),
                      str(chain.genesis_time)):
            assert value in page
