"""omealert: alerting rules for OvenMediaEngine's REST stats API."""

__version__ = "0.1.0"

__all__ = ["__version__"]
