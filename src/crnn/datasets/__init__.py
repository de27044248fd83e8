"""Small real data sets that ship with crnn (read locally, never downloaded)."""

from ._base import load_seattle_weather

__all__ = ["load_seattle_weather"]
