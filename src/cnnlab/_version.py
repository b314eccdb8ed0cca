"""The package's version, in the lowest layer: tracking tags every store with it, and nothing
that low may import the package root (which loads the API)."""

__version__ = "0.1.0"  # the same as pyproject.toml's [project] version
