"""digest: weekly regional migration-news digests, one per subscriber, delivered exactly once."""

__version__ = "0.1.0"
