"""The warehouse: Parquet files plus a JSON manifest, committed atomically, read as DuckDB views."""
