"""What a problem is: instance schemas, solutions, ``evaluate()``, generators and readers.

Imports numpy and pydantic only, never a solver library, so a planner can load and
validate an instance without loading OR-Tools.
"""

from models.base import TOLERANCE, Evaluation
from models.errors import BackendUnavailableError, EcomoptError, InstanceError, Problem, UsageError
from models.front_warehouse import FrontWarehouse, FrontWarehouseSolution
from models.io import FAMILIES, INPUT_FORMATS, evaluate, load_instance, parse_instance

__all__ = [
    "FAMILIES",
    "INPUT_FORMATS",
    "TOLERANCE",
    "BackendUnavailableError",
    "EcomoptError",
    "Evaluation",
    "FrontWarehouse",
    "FrontWarehouseSolution",
    "InstanceError",
    "Problem",
    "UsageError",
    "evaluate",
    "load_instance",
    "parse_instance",
]
