"""Jobs: work handed from a web node to whoever runs it, in this process (`queue`) or through
a Redis Streams consumer group (`streams`) served by `p2p-interview worker` processes
(`worker`). A job is a kind, a JSON body and optional PCM; some want a reply, others only
have effects, written idempotently so that at-least-once delivery is safe."""
