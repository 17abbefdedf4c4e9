"""The queue on Redis Streams (the `redis` extra): client, Lua scripts, the queue, its sink and dead letters."""
