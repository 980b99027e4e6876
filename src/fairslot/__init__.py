"""fairslot: fair release of scarce hospital appointments, and the tools to catch scalper rings."""

__version__ = "0.1.0"
__all__ = ["__version__"]
