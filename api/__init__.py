"""The analytics API: SPEC 5 metrics as DuckDB SQL over the warehouse views, served per SPEC 6.2."""
