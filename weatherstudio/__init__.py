"""WeatherStudio: remove snow and rain from photos and videos, and show what the networks see."""

__version__ = "0.1.0"
