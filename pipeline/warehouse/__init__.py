"""The DuckDB warehouse: schema and migrations, connections with lock retry, reads and writes."""

from pipeline.warehouse.connection import WarehouseLockedError
from pipeline.warehouse.store import Warehouse, append, query, replace_table

__all__ = ["Warehouse", "WarehouseLockedError", "append", "query", "replace_table"]
