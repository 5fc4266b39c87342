"""The package version (part of the disk cache key of generated code)."""
__version__ = "0.1.0"
