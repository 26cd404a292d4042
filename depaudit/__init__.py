"""depaudit: which apt packages must each image install so that every service runs."""

__version__ = "0.1.0"
