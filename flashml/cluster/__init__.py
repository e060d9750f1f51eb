"""Several FlashML nodes sharing one database and one store: the change feed, heartbeats and the leader lease."""
