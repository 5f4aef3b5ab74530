import csv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INSTANCES = ROOT / "instances"
ORLIB = INSTANCES / "orlib"


def read_tsv(name: str) -> list[dict[str, str]]:
    with open(ORLIB / name, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.fixture
def town_path() -> Path:
    return INSTANCES / "front_warehouse" / "town-12x60.json"


@pytest.fixture(scope="session")
def suburb_peak():
    """The shipped two-scenario example and its solved result document (about 10 s: shared)."""
    from models import load_instance
    from optimizers import solve

    inst = load_instance(INSTANCES / "front_warehouse" / "suburb-peak-25x200.json")
    return inst, solve(inst).to_dict()
