"""The versioned JSON API, mounted under /api/v1."""
