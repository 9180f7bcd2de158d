"""The LLM gateway: any-llm client, tenacity retries, pybreaker breaker, fallbacks, cost."""
