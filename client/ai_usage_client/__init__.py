"""The ai-usage-tracker client for game backends (standard library only)."""
