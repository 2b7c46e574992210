"""The package version, in its own module so that every submodule can import it."""
__version__ = "0.1.0"
