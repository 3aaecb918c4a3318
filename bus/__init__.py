"""The message bus between processes (`pubsub`: in memory or Redis pub/sub) and the typed
messages that travel on it (`events`)."""
