"""The flzoo release, in one place (weights files record it; pyproject.toml repeats it for packaging)."""

__version__ = "0.1.0"
