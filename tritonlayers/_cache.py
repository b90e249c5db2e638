"""The caches of host-side launch work (plans, geometries, direct launches): a training step repeats a few
shapes, so each analysis runs once per shape; a sweep over many shapes must not grow them without end."""


class BoundedCache(dict):
    """A dict emptied when it reaches `limit` entries, before one more is stored."""

    def __init__(self, limit=4096):
        super().__init__()
        self.limit = limit

    def put(self, key, value):
        """Store and return `value`."""
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
        return value
