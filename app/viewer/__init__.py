"""Viewer links: short-lived tokens that open a read-only, narrowed, embeddable console."""
