"""State several replicas share through Redis (REDIS_URL): breaker state and provider rate limits. Without Redis,
or while it is unreachable, each process keeps its own (today's behaviour) and says so once."""
