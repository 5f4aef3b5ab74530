"""Property test: any mutation of a valid document is either accepted or rejected with
located problems (InstanceError); never another exception."""

import copy
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import InstanceError, parse_instance
from models.front_warehouse import generate

BASE = generate(3, 5, seed=2, n_skus=2, max_minutes=None, scenarios=[("a", 0.5, 1.0), ("b", 0.5, 2.0)])
BASE["lost_sale_cost"] = {"sku-01": 9.0}

junk = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8) | st.sampled_from(["sku-01", "fw-001", "z-0001", "open", "closed", "", "table"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths(value, prefix + (index,))


ALL_PATHS = [p for p in paths(BASE) if p]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(ALL_PATHS), junk, st.booleans()), min_size=1, max_size=4))
def test_mutated_documents_fail_only_with_located_problems(mutations):
    doc = copy.deepcopy(BASE)
    for path, value, delete in mutations:
        parent = doc
        try:
            for key in path[:-1]:
                parent = parent[key]
            if delete and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this place
    try:
        parse_instance(json.loads(json.dumps(doc, allow_nan=True)))
    except InstanceError as exc:
        assert exc.problems and all(str(p) for p in exc.problems)
