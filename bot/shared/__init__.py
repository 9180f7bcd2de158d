"""State several replicas share through Redis (REDIS_URL): breaker state, provider rate limits and the chat limits'
windows. Without Redis, or while it is unreachable, breakers and rate limits are each process's own (and it says
so once); the chat limits' windows are then in the database, still shared."""
