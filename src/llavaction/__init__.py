"""llavaction: measure and improve how multimodal LLMs understand human actions in video."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("llavaction")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
