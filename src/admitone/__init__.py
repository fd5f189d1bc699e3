"""admitone: a self-hostable ticketing backend for on-sales where demand far exceeds supply."""

__version__ = "0.1.0"
