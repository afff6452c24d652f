"""Property-based fuzzing of the ingestion edge: every adapter's `parse` and the write path.

Runs with the rest of the suite at the small, reproducible `ci` hypothesis profile; set
`HYPOTHESIS_PROFILE=long` for a long random run (see `conftest.py`).
"""
