"""The recipes shipped with sortkd-cache (TOML files; see docs/recipes.md)."""
