"""core/diversity."""
