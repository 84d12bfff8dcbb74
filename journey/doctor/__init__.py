"""`journey doctor` (SPEC 6.5): check every store, repair what can be repaired, say what not."""
