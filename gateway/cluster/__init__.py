"""Several gateway nodes on one database and one broker (docs/cluster.md)."""
