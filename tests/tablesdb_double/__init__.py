"""A strict local Appwrite TablesDB server (test double) driven through the real appwrite SDK.

Every rule it enforces cites the Appwrite behaviour it mirrors in /work/shared/appwrite-facts.md.
"""

from .double import TablesDBDouble
from .errors import AppwriteError
from .faults import Fault

__all__ = ["AppwriteError", "Fault", "TablesDBDouble"]
