"""SPEC 5 metrics, each once, as DuckDB SQL over the warehouse views (see README of each module)."""
